"""Annotated corpora for training and evaluating the NLU: SNIPS (json) and SLURP (jsonl).

Both become :class:`core.utterances.Example` records — ``text``, ``intent`` and character
``spans`` ``(start, end, slot)`` — the same records the domain-spec generator produces, so the
model, the trainer and the evaluation never care where examples came from.

* **SNIPS** (sonos/nlu-benchmark, 2017-06-custom-intent-engines): a folder with one sub-folder
  per intent holding ``train_<Intent>_full.json`` (training) and ``validate_<Intent>.json``
  (evaluation). Each file is ``{"<Intent>": [{"data": [{"text", "entity"?}, …]}, …]}``.
* **SLURP** (pswietojanski/slurp, ``devel.jsonl``): one JSON object per line; the intent is
  ``scenario`` + ``_`` + ``action``; slots come from ``sentence_annotation``
  (``"wake me up at [time : eight] o'clock"``).
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from core.errors import InputError
from core.utterances import Example

log = logging.getLogger(__name__)

SNIPS_TRAIN = "train_{intent}_full.json"
SNIPS_EVAL = "validate_{intent}.json"
_SLURP_SLOT = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]*?)\s*\]")


def decode_text(raw: bytes) -> str:
    """UTF-8; else UTF-8 with surrogate pairs written as two 3-byte sequences (CESU-8, as in
    SNIPS' PlayMusic training file, whose emoji are encoded that way); else Latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("utf-8", errors="surrogatepass")
        return text.encode("utf-16", errors="surrogatepass").decode("utf-16")
    except UnicodeError:
        return raw.decode("latin-1")


def _read_json(path: Path):
    try:
        return json.loads(decode_text(path.read_bytes()))
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except json.JSONDecodeError as err:
        raise InputError(path, f"invalid JSON (line {err.lineno}: {err.msg})") from None


def snips_example(intent: str, item, path: Path, where: str) -> Example:
    if not isinstance(item, dict) or not isinstance(item.get("data"), list):
        raise InputError(path, "expected an object with a 'data' list", field=where)
    text, spans = "", []
    for j, chunk in enumerate(item["data"]):
        piece = chunk.get("text") if isinstance(chunk, dict) else None
        if not isinstance(piece, str):
            raise InputError(path, "expected a chunk with a 'text' string", field=f"{where}.data[{j}]")
        entity = chunk.get("entity")
        if entity:
            # Spans never include surrounding spaces ("Classical Relaxations " → trimmed).
            lead = len(piece) - len(piece.lstrip())
            core = piece.strip()
            if core:
                start = len(text) + lead
                spans.append((start, start + len(core), str(entity)))
        text += piece
    return Example(text, intent, tuple(spans))


def read_snips(folder: str | Path, split: str = "train") -> list[Example]:
    """SNIPS examples of every intent folder: ``split`` is ``train`` (the ``_full`` files) or
    ``validate``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such SNIPS folder")
    pattern = {"train": SNIPS_TRAIN, "validate": SNIPS_EVAL}.get(split)
    if pattern is None:
        raise ValueError(f"unknown SNIPS split {split!r}")
    out: list[Example] = []
    intents = sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / pattern.format(intent=p.name)).is_file())
    if not intents:
        raise InputError(folder, f"no SNIPS intent folders with {pattern.format(intent='<Intent>')}")
    for intent in intents:
        path = folder / intent / pattern.format(intent=intent)
        data = _read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get(intent), list):
            raise InputError(path, f'expected {{"{intent}": [...]}}')
        for i, item in enumerate(data[intent]):
            out.append(snips_example(intent, item, path, f"{intent}[{i}]"))
    log.info("read %d SNIPS %s examples over %d intents from %s", len(out), split, len(intents), folder)
    return out


def slurp_example(row, path: Path, where: str) -> Example:
    if not isinstance(row, dict):
        raise InputError(path, "expected a JSON object", field=where)
    try:
        intent = f"{row['scenario']}_{row['action']}"
        annotation = str(row.get("sentence_annotation") or row["sentence"])
    except KeyError as err:
        raise InputError(path, f"missing key {err.args[0]!r}", field=where) from None
    text, spans, pos = "", [], 0
    for m in _SLURP_SLOT.finditer(annotation):
        text += annotation[pos : m.start()]
        words = m.group(2).strip()
        if words:
            spans.append((len(text), len(text) + len(words), m.group(1).strip()))
        text += words
        pos = m.end()
    text += annotation[pos:]
    return Example(text, intent, tuple(spans))


def read_slurp(path: str | Path) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such SLURP file")
    out = []
    for n, line in enumerate(decode_text(path.read_bytes()).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(path, f"invalid JSON ({err.msg})", field=f"line {n}") from None
        out.append(slurp_example(row, path, f"line {n}"))
    if not out:
        raise InputError(path, "no examples")
    log.info("read %d SLURP examples from %s", len(out), path)
    return out


def labels_of(examples: Iterable[Example]) -> tuple[list[str], list[str]]:
    """(intents, slot labels), sorted."""
    intents, labels = set(), set()
    for ex in examples:
        intents.add(ex.intent)
        labels.update(s for _a, _b, s in ex.spans)
    return sorted(intents), sorted(labels)


def stratified_folds(examples: Sequence[Example], k: int, seed: int = 0) -> list[list[int]]:
    """``k`` folds of example indices, each intent spread evenly over the folds."""
    if k < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    by_intent: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_intent.setdefault(ex.intent, []).append(i)
    rng = random.Random(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for intent in sorted(by_intent):
        idx = by_intent[intent]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[(offset + j) % k].append(i)
        offset += len(idx)
    return [sorted(f) for f in folds]


# Real-phrasing corpora for a domain ------------------------------------------------------------

CORPUS_SCHEMA = "assistant.nlu-corpus/1"
PARTS = ("tune", "dev")


@dataclass(frozen=True)
class CorpusItem:
    """A real command labelled for one domain: ``intent`` is the domain's intent, ``__ood__``
    (to be declined) or None (near-domain: about the domain's things but not served by it)."""

    id: str
    text: str
    intent: str | None
    spans: tuple[tuple[int, int, str], ...]
    part: str | None = None
    source_label: str | None = None

    @property
    def example(self) -> Example:
        return Example(self.text, self.intent or "", self.spans)


def read_domain_corpus(path: str | Path, part: str | None = None) -> list[CorpusItem]:
    """A JSON-lines corpus: an optional header ``{"schema": "assistant.nlu-corpus/1", …}``, then
    one ``{"text", "intent", "spans"?, "id"?, "part"?}`` per line (``spans``: ``[start, end,
    slot]`` character spans). ``part`` keeps only lines of that part."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such corpus file")
    if part is not None and part not in PARTS:
        raise InputError(path, f"unknown part {part!r} (known: {', '.join(PARTS)})")
    out = []
    for n, line in enumerate(decode_text(path.read_bytes()).splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(path, f"invalid JSON ({err.msg})", field=where) from None
        if not isinstance(row, dict):
            raise InputError(path, "expected a JSON object", field=where)
        if "schema" in row:
            if row["schema"] != CORPUS_SCHEMA:
                raise InputError(path, f"unknown schema {row['schema']!r} (expected {CORPUS_SCHEMA})", field=where)
            continue
        text, intent = row.get("text"), row.get("intent")
        if not isinstance(text, str) or not text.strip():
            raise InputError(path, "'text' must be a non-empty string", field=where)
        if intent is not None and not isinstance(intent, str):
            raise InputError(path, "'intent' must be a string or null", field=where)
        spans = []
        for j, s in enumerate(row.get("spans") or ()):
            if (
                not isinstance(s, list)
                or len(s) != 3
                or not all(isinstance(x, int) for x in s[:2])
                or not isinstance(s[2], str)
                or not 0 <= s[0] < s[1] <= len(text)
            ):
                raise InputError(
                    path, "each span must be [start, end, slot] inside the text", field=f"{where}.spans[{j}]"
                )
            spans.append((s[0], s[1], s[2]))
        row_part = row.get("part")
        if part is not None and row_part != part:
            continue
        out.append(
            CorpusItem(
                str(row.get("id", f"{path.name}:{n}")),
                text,
                intent,
                tuple(spans),
                row_part if isinstance(row_part, str) else None,
                row.get("slurp"),
            )
        )
    if not out:
        raise InputError(path, "no commands" + (f" in part {part!r}" if part else ""))
    return out

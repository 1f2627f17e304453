"""Label transfer: a failed request annotated with what its successful rephrase meant.

When a user's request fails and the rephrase that follows succeeds (a chain, see
hooks/learn/rewrites.py), the rephrase's interpretation — its intent and its slots — is what
the failed words meant too. Each slot's words are found again in the failed request (exactly,
else the closest run of words by fuzzy match); an example whose slots cannot all be placed is
left out rather than taught with a slot missing. Only production signals pick the pairs and
only the NLU's own output on the rephrase labels them: never gold.

The examples are written as an ``assistant.nlu-corpus/1`` JSON-lines corpus (stages/nlu/corpora.py),
all in part ``tune``, for ``assistant nlu train SPEC --extra CORPUS --out MODEL``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from core.errors import OutputError
from hooks.learn.rewrites import Request, chains, read_requests

log = logging.getLogger(__name__)

ALIGN_MIN = 80.0  # rapidfuzz score (0-100) a slot's words need to be found in the failed words


def align(words: str, text: str) -> tuple[int, int] | None:
    """Where ``words`` (a slot of the rephrase) are in ``text`` (the failed request): an exact
    match on word boundaries, else the best-matching run of whole words."""
    from rapidfuzz import fuzz

    low, target = text.lower(), words.lower().strip()
    if not target:
        return None
    at = f" {low} ".find(f" {target} ")
    if at >= 0:
        return at, at + len(target)
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    n = len(target.split())
    best: tuple[float, int, int] | None = None
    for size in {max(1, n - 1), n, n + 1}:
        for i in range(len(tokens) - size + 1):
            a, b = tokens[i][0], tokens[i + size - 1][1]
            score = fuzz.ratio(low[a:b], target)
            if best is None or score > best[0]:
                best = (score, a, b)
    if best is None or best[0] < ALIGN_MIN:
        return None
    return best[1], best[2]


def transfer(failed: Request, success: Request) -> dict | None:
    """The failed request's words with the successful rephrase's interpretation, or None."""
    if len(success.turns) != 1:
        return None  # the rephrase needed questions: its first reading is not the whole request
    nlu = ((success.turns[0].get("stages") or {}).get("nlu") or {}).get("output") or {}
    intent = nlu.get("intent")
    if not intent or nlu.get("out_of_domain"):
        return None
    said = ((failed.turns[0].get("stages") or {}).get("nlu") or {}).get("output") or {}
    text = failed.text.strip()
    spans = []
    for slot in nlu.get("slots") or ():
        where = align(str(slot.get("text") or ""), text)
        if where is None:
            return None
        spans.append([where[0], where[1], slot["name"]])
    spans.sort()
    if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        return None
    if said.get("intent") == intent and sorted(
        (s.get("name"), s.get("text")) for s in said.get("slots") or ()
    ) == sorted((name, text[a:b]) for a, b, name in spans):
        return None  # the NLU already read it this way: the failure was elsewhere
    return {
        "id": f"{failed.session}#{failed.turn}",
        "text": text,
        "intent": intent,
        "spans": spans,
        "part": "tune",
        "from": success.text,
    }


def learn_labels(
    paths: Iterable[str | Path],
    out: str | Path,
    similar: Callable[[str, str], float] | None = None,
    domain: str = "home",
) -> dict:
    """``assistant learn labels``: write the corpus; returns a summary."""
    found = chains(read_requests(paths), similar)
    pairs = 0
    rows, seen = [], set()
    for chain in found:
        if len(chain) < 2 or not chain[-1].succeeded:
            continue
        for failed in chain[:-1]:
            pairs += 1
            row = transfer(failed, chain[-1])
            if row is not None and (row["text"].lower(), row["intent"]) not in seen:
                seen.add((row["text"].lower(), row["intent"]))
                rows.append(row)
    examples = len(rows)
    out = Path(out)
    header = {
        "schema": "assistant.nlu-corpus/1",
        "domain": domain,
        "source": "assistant learn labels (label transfer from successful rephrases)",
    }
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("".join(json.dumps(r) + "\n" for r in [header, *rows]), encoding="utf-8")
        os.replace(tmp, out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(out, f"cannot write ({err.strerror or err})") from None
    return {"out": str(out), "pairs": pairs, "examples": examples}


def shadow_check(paths: Iterable[str | Path], corpus: str | Path, read: Callable[[str], str | None]) -> dict:
    """How a model retrained with transferred labels reads what the traces it learned from
    hold, with no gold. ``read`` is the retrained NLU (text → intent,
    None when it declines).

    * ``fixed``: failed requests of the corpus it now reads with their rephrase's intent;
    * ``changed``: requests that succeeded as the NLU read them then (the user accepted the
      result) that it now reads with another intent, each time said: the words the NLU read,
      a rewrite's or a taught concept's included.

    A habit is said again and again, so one flipped reading can cost more than the labels
    gain. The loop reports both (``fixes_more``: ``fixed`` > ``changed``); it does not decide by
    them (docs/self-learning.md "The shadow check")."""
    rows = [json.loads(line) for line in Path(corpus).read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    fixed = sum(read(r["text"]) == r["intent"] for r in rows)
    said: dict[tuple[str, str], int] = {}
    for reqs in read_requests(paths):
        for req in reqs:
            served = req.served
            read_as = (served.get("rewrite") or {}).get("text") or req.text
            if req.succeeded and len(req.turns) == 1 and served.get("intent"):
                key = (read_as.strip(), str(served["intent"]))
                said[key] = said.get(key, 0) + 1
    changed = sum(n for (text, intent), n in said.items() if read(text) != intent)
    return {
        "fixed": fixed,
        "examples": len(rows),
        "changed": changed,
        "successes": sum(said.values()),
        "fixes_more": fixed > changed,
    }

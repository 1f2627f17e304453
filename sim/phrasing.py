"""How simulated users phrase things: real people's phrasings and spoken-language variety.

The NLU trains on the spec's templates, the ``tune`` part of slurp_home.jsonl and the
slot-value lists of ``training_phrases``. Simulated users speak from elsewhere, so that the
failures they provoke are the ones real people provoke:

* :class:`PhrasingBank`: real commands of other sources (SLURP devel's ``dev`` part, SNIPS
  training sentences; built by tools/build_sim_phrasings.py) delexicalized into templates,
  and requests said indirectly ("it's so dark in here"), written for the simulator;
* :class:`SpeechStyle`: how one user talks (fillers, hesitations, self-corrections,
  politeness, how they say numbers), sampled once per user and kept for the session;
* :class:`TrainingTexts`: the NLU's training sentences; an utterance that would repeat one
  word for word is said differently (the overlap is 0 by construction, and tested).

Gold stays exact: a transform only adds words around the slot words the gold names, and a
self-correction's final words are the gold's.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.domain import BUILTIN_TYPES, DOMAINS_DIR, SLOT_REF, Domain
from core.normalize import normalize, spoken_number
from core.utterances import surface_builtin

log = logging.getLogger(__name__)

UNLISTED_P = 0.1  # catalog slots said with the real command's own name, not a catalog one
BANK_WEIGHT = 5  # an intent with n real templates uses them n/(n+BANK_WEIGHT) of the time
INDIRECT_P = 0.5  # of a style's requests that can be said indirectly, how often they are
_PUNCT = re.compile(r"[^\w\s']+")
_NUMBER_WORDS = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|"
    r"forty|fifty|sixty|seventy|eighty|ninety|hundred)(?:[ -](?:one|two|three|four|"
    r"five|six|seven|eight|nine))?\b"
)
_DIGITS = re.compile(r"\b\d{1,3}\b(?!:)")
IMPERATIVE = re.compile(
    r"^(?:turn|switch|set|play|add|put|start|open|close|lock|unlock|dim|stop|pause|"
    r"resume|cancel|make|wake|tell|show|give|read|brighten|raise|lower)\b"
)
ON_OFF = re.compile(r"^(turn|switch) (on|off)\b")


def find_words(text: str, words: str, start: int = 0) -> int:
    """Where ``words`` occur in ``text`` as whole words (from ``start``, else anywhere); -1 if not."""
    pattern = re.compile(rf"(?<![\w']){re.escape(words)}(?![\w'])")
    m = pattern.search(text, start) or pattern.search(text)
    return m.start() if m else -1


def plain(text: str) -> str:
    """Text compared for overlap: lower case, no punctuation, single spaces."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


# real phrasings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phrasing:
    id: str
    source: str
    intent: str
    template: str  # the domain's template syntax
    originals: Mapping[str, str]  # slot → the real command's own words (unlisted names)
    implied: Mapping[str, str]  # slot → catalog id the words imply without saying it


class PhrasingBank:
    """Templates per intent from sources the NLU never trains on."""

    def __init__(self, phrasings: tuple[Phrasing, ...]):
        self.by_intent: dict[str, tuple[Phrasing, ...]] = {}
        for p in phrasings:
            self.by_intent[p.intent] = (*self.by_intent.get(p.intent, ()), p)

    @classmethod
    def for_domain(cls, domain: Domain, only: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> PhrasingBank:
        """The domain's bank; ``only``/``exclude`` pick sources by name (held-out phrasing sources)."""
        bank = _bank(domain.name)
        if not only and not exclude:
            return bank
        known = bank.sources()
        unknown = sorted(set(only + exclude) - known)
        if unknown:
            raise ValueError(f"unknown phrasing source {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        kept = tuple(
            p
            for ps in bank.by_intent.values()
            for p in ps
            if (not only or p.source in only) and p.source not in exclude
        )
        return cls(kept)

    def sources(self) -> set[str]:
        return {p.source for ps in self.by_intent.values() for p in ps}

    def share(self, intent: str) -> float:
        n = len([p for p in self.by_intent.get(intent, ()) if not p.implied])
        return n / (n + BANK_WEIGHT)

    def pick(self, intent: str, rng: random.Random, indirect: bool) -> Phrasing | None:
        options = self.by_intent.get(intent, ())
        said_indirectly = [p for p in options if p.implied]
        if indirect and said_indirectly and rng.random() < INDIRECT_P:
            return rng.choice(said_indirectly)
        direct = [p for p in options if not p.implied]
        if direct and rng.random() < self.share(intent):
            return rng.choice(direct)
        return None


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: invalid JSON ({err.msg})") from None
        if "template" in row:
            rows.append(row)
    return rows


@functools.lru_cache(maxsize=4)
def _bank(domain_name: str) -> PhrasingBank:
    out = []
    for name in (f"{domain_name}_sim_phrasings.jsonl", f"{domain_name}_sim_indirect.jsonl"):
        for row in _read_rows(DOMAINS_DIR / name):
            out.append(
                Phrasing(
                    row.get("id", ""),
                    row.get("source", name),
                    row["intent"],
                    row["template"],
                    dict(row.get("originals") or {}),
                    dict(row.get("implied") or {}),
                )
            )
    log.info("%d simulated-user phrasings for %s", len(out), domain_name)
    return PhrasingBank(tuple(out))


def fill_pins(domain: Domain, phrasing: Phrasing, rng: random.Random, style: SpeechStyle) -> str:
    """The template with its builtin literals said this user's way and some catalog slots
    pinned to the real command's own name (one the catalog does not list)."""
    spec = domain.intents[phrasing.intent]

    def sub(m: re.Match) -> str:
        name, literal = m.group(1), m.group(2)
        stype = spec.slots[name].type if name in spec.slots else None
        if literal is not None and stype in BUILTIN_TYPES:
            return "{" + name + ":" + resay_numbers(stype, literal, rng, style.number_words) + "}"
        original = phrasing.originals.get(name)
        catalog = domain.catalog_for(stype) if stype else None
        if (
            literal is None
            and original
            and catalog is not None
            and not catalog.literal
            and all(original not in v.phrases for v in catalog.values)
            and rng.random() < UNLISTED_P
        ):
            return "{" + name + ":" + original + "}"
        return m.group(0)

    return SLOT_REF.sub(sub, phrasing.template)


def resay_numbers(slot_type: str, words: str, rng: random.Random, words_p: float) -> str:
    """The same value with its numbers said another way ("ten am" ↔ "10 am"), when the
    normalizer reads both alike."""
    want = normalize(slot_type, words)
    if rng.random() < words_p:
        other = _DIGITS.sub(lambda m: spoken_number(int(m.group(0))), words)
    else:
        other = _NUMBER_WORDS.sub(lambda m: str(normalize("number", m.group(0)) or m.group(0)), words)
    return other if other != words and normalize(slot_type, other) == want else words


# speech style -------------------------------------------------------------------------------

FILLERS = ("um", "uh", "er", "erm", "hmm", "like", "you know", "so", "well", "okay so", "oh", "right so")
POLITE_BEFORE = ("please", "could you", "can you please", "would you please", "could you please", "hey can you")
POLITE_AFTER = ("please", "thanks", "thank you", "cheers", "if you don't mind", "thanks a lot", "ta")
CORRECTION_CUES = ("no", "no wait", "sorry", "i mean", "no sorry", "actually no", "wait no")


@dataclass(frozen=True)
class SpeechStyle:
    fillers: tuple[str, ...]
    filler_p: float  # a filler word at the start or between words
    hesitation_p: float  # a word said twice ("the the")
    correction_p: float  # starts with the wrong word and corrects it
    polite_p: float
    polite_words: tuple[str, ...]
    indirect: bool  # says some requests without naming them ("it's dark in here")
    number_words: float  # says numbers as words rather than digits


# (filler_p, hesitation_p, correction_p, polite_p, indirect share) per persona
STYLE_BASE = {
    "patient": (0.2, 0.05, 0.05, 0.5, 0.3),
    "impatient": (0.1, 0.1, 0.12, 0.05, 0.1),
    "terse": (0.05, 0.02, 0.05, 0.1, 0.1),
    "chatty": (0.45, 0.12, 0.08, 0.45, 0.6),
    "fickle": (0.3, 0.1, 0.2, 0.2, 0.4),
}


def sample_style(persona_name: str, rng: random.Random) -> SpeechStyle:
    f, h, c, p, i = STYLE_BASE.get(persona_name, (0.2, 0.05, 0.08, 0.25, 0.3))
    jitter = lambda x: round(min(0.9, x * rng.uniform(0.5, 1.5)), 3)
    return SpeechStyle(
        fillers=tuple(rng.sample(FILLERS, 3)),
        filler_p=jitter(f),
        hesitation_p=jitter(h),
        correction_p=jitter(c),
        polite_p=jitter(p),
        polite_words=tuple(rng.sample(POLITE_BEFORE, 2)) + tuple(rng.sample(POLITE_AFTER, 2)),
        indirect=rng.random() < i,
        number_words=round(rng.random(), 3),
    )


class Speaker:
    """Says an act's words the way one user talks; the gold's slot words stay as they are."""

    def __init__(self, domain: Domain, style: SpeechStyle, training: TrainingTexts | None = None):
        self.domain = domain
        self.style = style
        self.training = training

    def say(self, text: str, spans: tuple, rng: random.Random, kind: str, intent: str | None) -> str:
        """``spans``: the gold's (slot, words, value)."""
        st = self.style
        request = kind in ("request", "retry", "change_mind")
        out = text
        if request and rng.random() < st.correction_p:
            out = self._correct(out, spans, rng, intent)
        if rng.random() < st.hesitation_p:
            out = self._hesitate(out, spans, rng)
        if rng.random() < st.filler_p:
            out = self._filler(out, spans, rng)
        if request and rng.random() < st.polite_p:
            out = self._polite(out, rng)
        if self.training is not None:
            for _ in range(8):
                if not self.training.contains(out):
                    break
                out = (
                    self._filler(out, spans, rng, at_start=True) if rng.random() < 0.5 else self._polite(out, rng, True)
                )
        return out

    # transforms ---------------------------------------------------------------------------
    def _protected(self, text: str, spans: tuple) -> list[tuple[int, int]]:
        where, cursor = [], 0
        for _name, words, _value in spans:
            i = find_words(text, words, cursor)
            if i >= 0:
                where.append((i, i + len(words)))
                cursor = i + len(words)
        return where

    def _gaps(self, text: str, spans: tuple) -> list[int]:
        """Word boundaries outside the gold's slot words."""
        keep = self._protected(text, spans)
        return [m.start() for m in re.finditer(r" ", text) if not any(a < m.start() < b for a, b in keep)]

    def _filler(self, text: str, spans: tuple, rng: random.Random, at_start: bool = False) -> str:
        word = rng.choice(self.style.fillers)
        gaps = self._gaps(text, spans)
        if at_start or not gaps or rng.random() < 0.6:
            return f"{word} {text}"
        i = rng.choice(gaps)
        return f"{text[:i]} {word}{text[i:]}"

    def _hesitate(self, text: str, spans: tuple, rng: random.Random) -> str:
        keep = self._protected(text, spans)
        words = [m for m in re.finditer(r"[\w']+", text) if not any(a <= m.start() < b for a, b in keep)]
        short = [m for m in words if len(m.group(0)) <= 5] or words
        if not short:
            return text
        m = rng.choice(short)
        return f"{text[: m.end()]} {m.group(0)}{text[m.end() :]}"

    def _polite(self, text: str, rng: random.Random, force: bool = False) -> str:
        if not force and re.search(r"\b(?:please|thanks|thank you)\b", text):
            return text
        before = [w for w in self.style.polite_words if w in POLITE_BEFORE]
        after = [w for w in self.style.polite_words if w in POLITE_AFTER]
        if before and IMPERATIVE.match(text) and (force or rng.random() < 0.5) and not text.startswith(tuple(before)):
            return f"{rng.choice(before)} {text}"
        return f"{text} {rng.choice(after)}" if after else text

    def _correct(self, text: str, spans: tuple, rng: random.Random, intent: str | None) -> str:
        cue = rng.choice(CORRECTION_CUES)
        m = ON_OFF.match(text)
        if m and intent in ("TurnOn", "TurnOff"):
            wrong = "off" if m.group(2) == "on" else "on"
            # "turn off the — no, on the kitchen lights": the second word is meant
            rest = text[m.end() :].lstrip()
            head = rest.split(" ", 1)[0] if rest.startswith(("the ", "my ")) else ""
            return f"{m.group(1)} {wrong} {head + ' ' if head else ''}— {cue}, {m.group(2)} {rest}".replace("  ", " ")
        candidates = []
        for name, words, value in spans:
            spec = self.domain.intents.get(intent or "")
            if spec is None or name not in spec.slots:
                continue
            wrong = self._other_value(spec.slots[name].type, value, rng)
            if wrong and wrong != words and find_words(text, wrong) < 0 and find_words(text, words) >= 0:
                candidates.append((words, wrong))
        if not candidates:
            return text
        words, wrong = rng.choice(candidates)
        i = find_words(text, words)
        return f"{text[:i]}{wrong} — {cue}, {text[i:]}"

    def _other_value(self, slot_type: str, value: Any, rng: random.Random) -> str | None:
        if slot_type in BUILTIN_TYPES:
            for _ in range(5):
                words = surface_builtin(slot_type, rng)
                if normalize(slot_type, words) not in (None, value):
                    return words
            return None
        catalog = self.domain.catalog_for(slot_type)
        others = [v for v in (catalog.values if catalog else ()) if v.id != value]
        return rng.choice(rng.choice(others).phrases) if others else None


# the NLU's training sentences ---------------------------------------------------------------


class TrainingTexts:
    """The sentences the domain's NLU trains on, compared as :func:`plain` text."""

    def __init__(self, texts):
        self.texts = frozenset(plain(t) for t in texts)

    def contains(self, text: str) -> bool:
        return plain(text) in self.texts

    @classmethod
    def for_domain(cls, domain: Domain) -> TrainingTexts:
        """Generated once per process and domain (a second or two)."""
        from stages.nlu.recipes import spec_training_examples

        found = _TRAINING.get(domain.digest)
        if found is None:
            found = _TRAINING[domain.digest] = cls(ex.text for ex in spec_training_examples(domain))
        return found


_TRAINING: dict[str, TrainingTexts] = {}


def with_text(gold, text: str):
    return replace(gold, transcript=text)

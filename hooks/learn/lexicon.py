"""How a transcript's words fit what the NLU and the resolver made of them, from the domain spec.

The spec's catalogs and builtin value parsers say which words name something the domain knows.
Against the NLU's decision that gives cues a trace alone cannot: words naming a room that no slot
took (a dropped slot), words of a type the chosen intent has no slot for (a wrong intent), a slot
whose words name no catalog value (misheard, or a wrong entity), and how sure the recognizer was
of the very words a slot was built from.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

# builtin types whose values are distinctive enough to spot in free text ("two" alone is not)
SPOTTED_BUILTINS = ("time", "date", "duration", "temperature", "percentage")
LOW_PROB = 0.5


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    type: str


class Lexicon:
    """The domain's catalog phrases and slot types, for matching transcripts."""

    def __init__(self, domain_name: str):
        from core.domain import BUILTIN_TYPES, load_domain

        domain = load_domain(domain_name)
        self.builtin = set(BUILTIN_TYPES)
        self.intent_types = {name: {s.type for s in spec.slots.values()} for name, spec in domain.intents.items()}
        self.slot_type = {
            (name, slot): s.type for name, spec in domain.intents.items() for slot, s in spec.slots.items()
        }
        self.slot_types = dict(domain.slot_types)  # slot name → type, across intents
        phrases: dict[str, str] = {}
        self.catalog_phrases: dict[str, list[str]] = {}
        for catalog in domain.catalogs.values():
            for v in catalog.values:
                for p in v.phrases:
                    self.catalog_phrases.setdefault(catalog.type, []).append(p)
                    if len(p) > 2:
                        phrases.setdefault(p, catalog.type)
        self._types = phrases
        self._pattern = (
            re.compile(r"\b(" + "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True)) + r")\b")
            if phrases
            else None
        )
        self.spotted = [t for t in SPOTTED_BUILTINS if t in set(domain.slot_types.values())]

    def mentions(self, text: str) -> list[Mention]:
        if self._pattern is None:
            return []
        return [Mention(m.start(), m.end(), self._types[m.group(1)]) for m in self._pattern.finditer(text)]

    def builtins(self, text: str) -> frozenset[str]:
        return _builtins(text, tuple(self.spotted))

    def best_match(self, words: str, slot_type: str) -> float:
        """How close a slot's words are to the nearest phrase of its catalog (0–1)."""
        from rapidfuzz import fuzz, process

        choices = self.catalog_phrases.get(slot_type)
        if not choices or not words:
            return 1.0 if not choices else 0.0
        hit = process.extractOne(words.lower(), choices, scorer=fuzz.ratio)
        return hit[1] / 100.0 if hit else 0.0


@lru_cache(maxsize=65536)
def _builtins(text: str, types: tuple[str, ...]) -> frozenset[str]:
    from core.normalize import normalize

    return frozenset(t for t in types if normalize(t, text) is not None)


def untagged_types(lex: Lexicon, text: str, nlu: dict) -> frozenset[str]:
    """Types of the values the words name that no slot took (catalog phrases, builtin values)."""
    low = (text or "").lower()
    slots = [s for s in (nlu.get("slots") or []) if isinstance(s, dict)]
    spans = [(int(s.get("start") or 0), int(s.get("end") or 0)) for s in slots]
    tagged = {str(s.get("type")) for s in slots}
    catalog = {m.type for m in lex.mentions(low) if not any(_overlaps((m.start, m.end), sp) for sp in spans)}
    builtin = {t for t in (lex.builtins(low) if low else ()) if t not in tagged}
    return frozenset(catalog | builtin)


def word_spans(text: str, words: list[dict]) -> list[tuple[int, int, float]]:
    """(start, end, probability) of each recognized word within the transcript text."""
    out, pos, low = [], 0, text.lower()
    for w in words:
        token = str(w.get("text") or "").strip().lower()
        if not token:
            continue
        i = low.find(token, pos)
        if i < 0:
            continue
        out.append((i, i + len(token), float(w.get("probability") if w.get("probability") is not None else 1.0)))
        pos = i + len(token)
    return out


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def fit_features(
    lex: Lexicon, text: str, intent: str | None, nlu: dict, asr_words: list[dict], expects: str | None = None
) -> dict[str, float]:
    """Cues of how the words, the intent and the slots fit each other (names → values);
    ``expects``: the slot the reply asked for, if it asked."""
    low = (text or "").lower()
    mentions = lex.mentions(low)
    slots = [s for s in (nlu.get("slots") or []) if isinstance(s, dict)]
    spans = [(int(s.get("start") or 0), int(s.get("end") or 0)) for s in slots]
    accepted = lex.intent_types.get(intent or "", set())
    tagged_types = {str(s.get("type")) for s in slots}
    present = lex.builtins(low) if low else frozenset()
    f: dict[str, float] = {}
    f["lex_mentions"] = float(len(mentions))
    f["lex_mentions_accepted"] = float(sum(m.type in accepted for m in mentions))
    f["lex_mentions_foreign"] = float(sum(m.type not in accepted for m in mentions)) if intent else 0.0
    untagged = [m for m in mentions if not any(_overlaps((m.start, m.end), s) for s in spans)]
    f["lex_untagged"] = float(len(untagged))
    f["lex_untagged_accepted"] = float(sum(m.type in accepted for m in untagged))
    f["lex_builtins"] = float(len(present))
    f["lex_builtin_untagged"] = float(len({t for t in present if t not in tagged_types}))
    f["lex_builtin_untagged_accepted"] = float(len({t for t in present if t in accepted and t not in tagged_types}))
    # the reply asks for a value the words already hold (a slot the NLU dropped)
    wanted = lex.slot_type.get((intent or "", expects or ""))
    f["lex_asked_for_present"] = float(
        wanted is not None and (wanted in present or any(m.type == wanted for m in mentions))
    )
    # tagged slots: do their words name something, and for which intent?
    catalog_slots = [s for s in slots if str(s.get("type")) not in lex.builtin]
    matches = [lex.best_match(str(s.get("text") or ""), str(s.get("type"))) for s in catalog_slots]
    f["lex_slot_match_min"] = min(matches) if matches else 1.0
    f["lex_slot_match_mean"] = sum(matches) / len(matches) if matches else 1.0
    f["lex_slots_not_accepted"] = float(sum(str(s.get("type")) not in accepted for s in slots)) if intent else 0.0
    f["lex_builtin_slot_unparsed"] = float(
        sum(str(s.get("type")) in lex.builtin and s.get("value") is None for s in slots)
    )
    # how sure the recognizer was of the words the slots came from, and of the rest
    words = word_spans(text or "", asr_words)
    inside = [p for a, b, p in words if any(_overlaps((a, b), s) for s in spans)]
    outside = [p for a, b, p in words if not any(_overlaps((a, b), s) for s in spans)]
    f["slot_word_min_prob"] = min(inside) if inside else 1.0
    f["slot_word_mean_prob"] = sum(inside) / len(inside) if inside else 1.0
    f["slot_words_low"] = float(sum(p < LOW_PROB for p in inside))
    f["other_word_min_prob"] = min(outside) if outside else 1.0
    f["other_words_low"] = float(sum(p < LOW_PROB for p in outside))
    mention_probs = [p for a, b, p in words if any(_overlaps((a, b), (m.start, m.end)) for m in mentions)]
    f["mention_word_min_prob"] = min(mention_probs) if mention_probs else 1.0
    return f

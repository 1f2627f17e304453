"""Wordings a grammar spells near what the recognizer heard ("can I have a lat?" → "can I have
a latte"): the candidates that the recognizer's own decoder then scores against the audio
(stages/asr.py ``DomainRescorer``).

A beam of five rarely holds the domain's word when a small model mishears it; the grammar knows
which words could have been said. Each candidate replaces one or two runs of up to three heard
words with catalog phrases or template words that look or sound alike (spelling ratio or
metaphone ratio), or leaves a heard word out, and is kept only when the grammar spells it.
Numbers count as their words both ways: "12-pound" is near "twelve ounce", and a wording with
"twelve ounce" is also offered as Whisper would write it, "12-ounce".
"""

from __future__ import annotations

import itertools
import logging
import re
from typing import Callable

import jellyfish
from rapidfuzz import fuzz, process

from core.domain import SLOT_REF, Domain
from core.normalize import spoken_number
from stages.nlu.text import NUMBER_VALUES

log = logging.getLogger(__name__)

MAX_RUN = 3  # heard words one phrase may replace
MIN_SIMILARITY = 70  # spelling or sound ratio (0-100) of heard words and a phrase
MAX_SWAPS = 12  # best single replacements combined into pairs
MAX_CANDIDATES = 16  # wordings handed to the decoder per hypothesis
MAX_PLANS = 60  # most alike replacements tried against the grammar per hypothesis
MIN_WORD = 3  # shorter template words are not snapped to ("a", "to")
DROP_SCORE = 60  # a heard word left out ("I don't want to drink") ranks below a close swap

_DIGITS = re.compile(r"\d{1,4}")
UNITS_WRITTEN_JOINED = frozenset("ounce inch foot pound minute hour".split())  # "a 12-ounce latte"
_WORD = re.compile(r"[A-Za-z0-9']+(?:-[A-Za-z0-9']+)*")


def _sound(text: str) -> str:
    return " ".join(jellyfish.metaphone(w) for w in text.split())


def _in_digits(phrase: str) -> str:
    """A phrase's number words as a recognizer writes them: "twelve ounce" → "12-ounce", "two
    sugars" → "2 sugars"."""
    words = phrase.split()
    if not any(w in NUMBER_VALUES for w in words):
        return phrase
    out = [str(NUMBER_VALUES.get(w, w)) for w in words]
    if len(out) == 2 and words[0] in NUMBER_VALUES and words[1] in UNITS_WRITTEN_JOINED:
        return "-".join(out)
    return " ".join(out)


class GrammarSnapper:
    """Candidate wordings for a strict-grammar domain's catalog phrases."""

    def __init__(self, domain: Domain, spells: Callable[[str], bool]):
        self._spells = spells
        phrases = {
            p.lower() for c in domain.catalogs.values() if c.literal for v in c.values for p in v.phrases if p.strip()
        }
        # the templates' own words ("actually", "change") are misheard as well
        phrases |= {
            w
            for intent in domain.intents.values()
            for t in intent.samples
            for w in re.findall(r"[a-z']+", SLOT_REF.sub(" ", t.lower()))
            if len(w) >= MIN_WORD
        }
        self._phrases = tuple(sorted(phrases))
        self._sounds = tuple(_sound(p) for p in self._phrases)

    def _swaps(self, words: list[str]) -> list[tuple[float, int, int, str]]:
        """(similarity, start, end, phrase): a run of heard words that looks or sounds like a
        phrase it is not."""
        out = []
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + MAX_RUN) + 1):
                heard = _DIGITS.sub(lambda m: spoken_number(int(m.group())), " ".join(words[i:j]).lower())
                heard = heard.replace("-", " ")
                best: dict[int, float] = {}
                for query, choices in ((heard, self._phrases), (_sound(heard), self._sounds)):
                    for _match, score, k in process.extract(
                        query, choices, scorer=fuzz.ratio, score_cutoff=MIN_SIMILARITY, limit=None
                    ):
                        best[k] = max(best.get(k, 0.0), score)
                out += [(score, i, j, self._phrases[k]) for k, score in best.items() if self._phrases[k] != heard]
        out.sort(key=lambda s: (-s[0], s[1], s[2], s[3]))
        # a word the recognizer added: the grammar decides whether leaving it out helps
        drops = [(DROP_SCORE, i, i + 1, "") for i in range(len(words))]
        return out[:MAX_SWAPS] + drops

    def candidates(self, text: str) -> list[str]:
        """Wordings the grammar spells, each one or two replacements away from ``text``, most
        alike first; [] when ``text`` is spelled already or nothing near is."""
        if not text.strip() or self._spells(text):
            return []
        matches = list(_WORD.finditer(text))
        words = [m.group() for m in matches]
        swaps = self._swaps(words)
        plans = [(s,) for s in swaps] + [
            (a, b) for a, b in itertools.combinations(swaps, 2) if a[2] <= b[1] or b[2] <= a[1]
        ]
        plans.sort(key=lambda plan: -sum(s[0] for s in plan) / len(plan) + 5 * (len(plan) - 1))
        out: list[str] = []
        for plan in plans[:MAX_PLANS]:
            # words and digits as equals: Whisper writes "12-ounce", the catalog "twelve ounce"
            for digits in (False, True):
                said = text
                for _score, i, j, phrase in sorted(plan, key=lambda s: -s[1]):  # right to left: offsets hold
                    written = _in_digits(phrase) if digits else phrase
                    said = said[: matches[i].start()] + written + said[matches[j - 1].end() :]
                said = re.sub(r"\s+([.,?!])", r"\1", re.sub(r"\s+", " ", said)).strip()
                said = re.sub(r"([.,?!])[.,?!]+", r"\1", said)
                if said not in out and self._spells(said):
                    out.append(said)
            if len(out) >= MAX_CANDIDATES:
                break
        return out[:MAX_CANDIDATES]

"""Hesitations, discourse markers and politeness: words people add to a request, and drop
from it the next time, without changing what they ask ("um, we're out of milk, thank you")."""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

FILLER_WORDS = frozenset(
    "um uh er erm ah hmm oh okay ok so like well right actually mean know cheers ta thanks thank sorry hey just".split()
)
# Sounds that are no words at all: they may fall anywhere in a request ("a, uh, large latte").
HESITATIONS = frozenset("um umm uh uhh uhm er erm ah hmm mm".split())
_HESITATION = re.compile(r"(?:,\s*)?\b(?:" + "|".join(sorted(HESITATIONS)) + r")\b(?:\s*,)?", re.IGNORECASE)
FILLER_PHRASES = re.compile(r"\b(?:if you don't mind|if you would|thank you|you know|i mean)\b")
# What may open or close a slot's words without being part of the value: a tagger trained on
# written examples often takes "garage door thanks a lot" or "okay so coffee" whole.
_EDGE_PHRASES = tuple(
    tuple(p.split())
    for p in (
        "if you don't mind",
        "if you would",
        "thank you very much",
        "thank you so much",
        "thanks very much",
        "thanks so much",
        "thanks a lot",
        "thank you",
        "you know",
        "i mean",
        "please",
    )
)


def without_hesitations(text: str) -> str:
    """``text`` without the hesitations said inside it ("can I have a, uh, large latte" → "can
    I have a large latte"); unchanged when it holds nothing else."""
    out = re.sub(r"\s+", " ", _HESITATION.sub(" ", text)).strip()
    return out if re.search(r"\w", out) else text


def strip_edge_fillers(text: str) -> str:
    """The words without the fillers and politeness that open or close them ("okay so
    coffee" → "coffee", "garage door if you don't mind" → "garage door"); words between
    stay. Names can start with a filler ("right here waiting"): try the words as said first.
    Lower-case words in, the same out; nothing but fillers → the words unchanged."""
    words = text.split()
    start, end = 0, len(words)
    changed = True
    while changed and start < end:
        changed = False
        for phrase in _EDGE_PHRASES:
            n = len(phrase)
            if end - start > n and tuple(words[end - n : end]) == phrase:
                end, changed = end - n, True
            if end - start > n and tuple(words[start : start + n]) == phrase:
                start, changed = start + n, True
        if end - start > 1 and words[end - 1] in FILLER_WORDS:
            end, changed = end - 1, True
        if end - start > 1 and words[start] in FILLER_WORDS:
            start, changed = start + 1, True
    return " ".join(words[start:end])


# the words that may stand before a slot's value ("the", "my") and say nothing on their own
_BARE_WORDS = frozenset("the my our your a an some this that to for in at on me".split())


def says_nothing(text: str) -> bool:
    """Whether a slot's words are nothing but fillers, politeness and articles ("cheers",
    "the", "thanks a lot"): the tagger took them for a value, and there is none."""
    words = text.lower().split()
    rest = set(words) - FILLER_WORDS - _BARE_WORDS
    for phrase in _EDGE_PHRASES:
        if " ".join(phrase) in " ".join(words):
            rest -= set(phrase)
    return not rest

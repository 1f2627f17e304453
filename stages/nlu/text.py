"""How a transcript is cleaned before the NLU model sees it (training and inference alike)."""

from __future__ import annotations

import re

_REPLACEMENTS = (
    (re.compile(r"[’‘`]"), "'"),
    (re.compile(r"(?<=\d),(?=\d{3}\b)"), ""),  # "1,000" → "1000"
    (re.compile(r"\b([ap])\.\s?m\.?(?=\s|$)"), r"\1m"),  # "p.m." → "pm"
    (re.compile(r"(?<=\w)-(?=\w)"), " "),  # "twenty-five" → "twenty five"
    (re.compile(r"(?<!\d)[.,!?;\"()](?!\d)|(?<=\d)[,!?;\"()]|[.,!?](?=\s|$)"), " "),
)


def prepare(text: str, lowercase: bool = True) -> str:
    """Lower-case, drop sentence punctuation, keep what carries values (7:30, 7.5, 30%, it's).

    ``lowercase=False`` keeps the writer's casing (for written corpora, where "Harry Potter"
    is a cue); "P.M." still becomes "pm"."""
    if lowercase:
        text = text.lower()
    else:
        text = re.sub(r"\b([AaPp])\.\s?[Mm]\.?(?=\s|$)", lambda m: m.group(1).lower() + "m", text)
    for pattern, repl in _REPLACEMENTS:
        text = pattern.sub(repl, text)
    return re.sub(r"\s+", " ", text).strip()

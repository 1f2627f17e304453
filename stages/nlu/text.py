"""How a transcript is cleaned before the NLU model sees it (training and inference alike)."""

from __future__ import annotations

import functools
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


# Names people call a voice assistant by. A request that starts with one ("olly, play jazz",
# "hey google what's the time") addresses the assistant; the name is not part of the request.
ASSISTANT_NAMES = ("alexa", "olly", "siri", "assistant", "jarvis", "mycroft", "computer", "google")
GREETINGS = ("hey", "hi", "hello", "ok", "okay")
# Ordinary words as well ("google the word", "computer science news"): an address only after a
# greeting or before a comma.
_ORDINARY = frozenset({"google", "computer"})
_GREETING = "|".join(GREETINGS)


@functools.lru_cache(maxsize=8)
def _address_pattern(names: tuple[str, ...]) -> re.Pattern:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"\s*(?:({_GREETING})[\s,]+)?({alternatives})\b(\s*,)?[\s,.!]*", re.IGNORECASE)


def without_address(text: str, names: tuple[str, ...] = ASSISTANT_NAMES) -> str:
    """``text`` without a leading address to the assistant ("hey olly," / "alexa"); unchanged
    when there is none or nothing would be left."""
    if not names:
        return text
    m = _address_pattern(names).match(text)
    if m is None:
        return text
    greeted, name, comma = m.group(1), m.group(2).lower(), m.group(3)
    if name in _ORDINARY and not (greeted or comma):
        return text
    rest = text[m.end() :]
    return rest if rest.strip() else text

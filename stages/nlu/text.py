"""How a transcript is cleaned before the NLU model sees it (training and inference alike)."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from core.normalize import TENS, UNITS, spoken_number

if TYPE_CHECKING:
    from core.domain import Domain

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


# A number word's value ("oh" is zero only inside a number said digit by digit).
NUMBER_VALUES = {w: n for w, n in {**UNITS, **TENS}.items() if w != "oh"}
_DIGITS = re.compile(r"(?<![\d.:])(\d{1,4})(?![\d:%]|\.\d)(?:\s?(oz)\b)?", re.IGNORECASE)
_UNITS = {"oz": " ounce"}


def numbered_phrases(domain: Domain) -> frozenset[str]:
    """The domain's catalog phrases that hold a number word ("twelve ounce", "two sugars")."""
    return frozenset(
        p.lower()
        for c in domain.catalogs.values()
        for v in c.values
        for p in v.phrases
        if NUMBER_VALUES.keys() & set(p.lower().split())
    )


def spelled_numbers(text: str, phrases: frozenset[str]) -> str:
    """``text`` with a number written in digits spelled out where the words then say one of
    ``phrases`` ("a 12-ounce latte", "a 12oz latte" → "a twelve ounce latte" when a catalog
    lists "twelve ounce"): recognizers write digits, grammars and catalogs words. Other numbers
    ("at 7", "5 minutes") stay as written."""
    if not phrases or not any(ch.isdigit() for ch in text):
        return text

    def spelled(m: re.Match) -> str:
        spoken = spoken_number(int(m.group(1))) + (_UNITS[m.group(2).lower()] if m.group(2) else "")
        said = f"{text[: m.start()]}{spoken}{text[m.end() :]}".lower().replace("-", " ")  # "12-ounce"
        a, b = m.start(), m.start() + len(spoken)
        for phrase in phrases:
            for hit in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", said):
                if hit.start() <= a and b <= hit.end():
                    return spoken
        return m.group()

    return _DIGITS.sub(spelled, text)


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


# Editing terms people put between a slip and its repair ("open the fan, sorry, the garage door",
# "turn off, no wait, on the lights"). A bare "no" counts only after a dash or a comma: "no" is
# an answer and a word in titles.
_CUE = re.compile(
    r"(?:\s*[,—–]\s*|\s+)"
    r"(?:(?:no[\s,]+(?:no|wait|sorry)|wait[\s,]+no|actually[\s,]+no|no[\s,]+actually|actually|sorry|"
    r"i mean|or rather|scratch that)\b[\s,]*)+"
    r"|\s*[—–]\s*no\b[\s,]*|\s*,\s*no\s*,\s*",
    re.IGNORECASE,
)
REPAIR_MAX_WORDS = 4  # a repair replaces at most this many words before its cue


def self_repair(text: str) -> tuple[str, str, str] | None:
    """``(before, cue, after)`` around the last editing term that has words on both sides, or
    None. "open the ac, actually no, the garage" → ("open the ac", ", actually no, ", "the
    garage")."""
    found = None
    for m in _CUE.finditer(text):
        before, after = text[: m.start()].strip(), text[m.end() :].strip()
        if before and re.search(r"\w", after):
            found = (before, m.group(), after)
    return found


_BOUNDARY = frozenset("the a an my your this that to for by in at of from with i me it".split())


def repair_candidates(text: str, slips: tuple[tuple[int, int], ...] = ()) -> list[str]:
    """What ``text`` says once a self-repair is applied, most likely first; [] without one.

    Where the repair starts, in order of trust:
    * ``slips``: character spans of ``text`` a tagger read as a value of the same kind as one
      in the repair: the repair starts at the first ("paris tomorrow night, i mean a month from
      now" → "paris a month from now");
    * the repair's first word said among the last words before the cue: from its last saying
      ("turn on the kitchen, no, the hall light" → "turn on the hall light");
    * the words before the cue back to a function word ("lock the tv, wait no, front door" →
      "lock the front door"), as many as the repair has at most;
    * then each other count of words, up to ``REPAIR_MAX_WORDS``. The first word always stays.
    """
    found = self_repair(text)
    if found is None:
        return []
    before, _cue, after = found
    words, after_words = before.split(), after.split()
    out = [f"{text[:a].rstrip()} {after}".strip() for a, _b in slips if a < len(before)]
    lower = [w.lower() for w in words]
    first = after_words[0].lower()
    near = len(lower) - REPAIR_MAX_WORDS - 1
    if first in lower[max(1, near) :]:
        at = len(lower) - 1 - lower[::-1].index(first)
        out.append(" ".join([*words[:at], after]))
    most = min(REPAIR_MAX_WORDS, len(words) - 1)
    run = 0
    while run < min(most, len(after_words)) and lower[-1 - run] not in _BOUNDARY:
        run += 1
    counts = ([run] if run else []) + [k for k in range(1, most + 1) if k != run]
    out += [" ".join([*words[:-k], after]) for k in counts]
    # "turn on the | the hall light": a word said on both sides of the seam once
    return list(dict.fromkeys(re.sub(r"\b(\w+) \1\b", r"\1", c) for c in out if c))

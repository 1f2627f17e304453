"""Spoken or written builtin values → canonical values.

Transcripts say "seventy two degrees" or "72°", "seven thirty tomorrow morning" or "7:30 am".
Each parser accepts digits and words and returns the canonical value (README "Slot values"):

===========  =======================================  ===================
type         canonical value                          example
===========  =======================================  ===================
number       int or float                             "twenty five" → 25
ordinal      int                                      "third" → 3
percentage   int                                      "half" → 50
temperature  {"value": number, "unit": "F" | "C"}     "72 degrees"
duration     int seconds                              "an hour and a half" → 5400
time         "HH:MM" (24 h)                           "seven thirty pm" → "19:30"
date         "YYYY-MM-DD" (relative to ``now``)       "tomorrow"
===========  =======================================  ===================

A parser returns ``None`` when the text holds no value of its type.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, Callable

log = logging.getLogger(__name__)

UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
        "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
DURATION_UNITS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1, "s": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600,
    "day": 86400, "days": 86400,
}
NUMBER_WORDS = set(UNITS) | set(TENS) | set(SCALES) | {"a", "an", "and", "half", "quarter", "couple"}
# Every word a builtin value may be said with (for vocabulary coverage and ASR biasing).
BUILTIN_WORDS = (NUMBER_WORDS | set(ORDINALS) | set(DURATION_UNITS) | set(WEEKDAYS) | set(MONTHS) | {
    "am", "pm", "a.m", "p.m", "o'clock", "oclock", "noon", "midnight", "midday", "morning", "afternoon",
    "evening", "night", "tonight", "today", "tomorrow", "yesterday", "weekend", "next", "this", "past",
    "to", "after", "before", "degrees", "degree", "celsius", "centigrade", "fahrenheit", "percent",
    "minus", "full", "max", "maximum", "minimum", "day", "of", "the", "in", "on", "at", "for", "st", "nd", "rd", "th",
})


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; keeps digits with their decimal point, colon or percent sign."""
    text = text.lower().replace("-", " ").replace("°", " degrees ")
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", r"\1 \2", text)
    text = re.sub(r"\b([ap])\.?\s?m\b\.?", r"\1m", text)
    text = re.sub(r"(\d)([a-z])", r"\1 \2", text)
    return re.findall(r"\d+(?:[.:]\d+)?|[a-z']+", text)


def _words_to_number(words: list[str]) -> float | None:
    """Parse a whole run of number words ("one hundred and five", "seventy two")."""
    if not words:
        return None
    total, current, seen = 0, 0, False
    for w in words:
        if re.fullmatch(r"\d+(\.\d+)?", w):
            current += float(w) if "." in w else int(w)
            seen = True
        elif w in UNITS:
            current += UNITS[w]
            seen = True
        elif w in TENS:
            current += TENS[w]
            seen = True
        elif w == "hundred":
            current = max(current, 1) * 100
            seen = True
        elif w == "thousand":
            total += max(current, 1) * 1000
            current = 0
            seen = True
        elif w in ("a", "an") and not seen:
            current = 1
            seen = True
        elif w == "and":
            continue
        else:
            return None
    return total + current if seen else None


def _number_runs(toks: list[str]) -> list[tuple[int, int, float]]:
    """Maximal runs of number words/digits: (start, end, value)."""
    runs, i = [], 0
    while i < len(toks):
        if toks[i] in UNITS or toks[i] in TENS or re.fullmatch(r"\d+(\.\d+)?", toks[i]):
            j = i + 1
            while j < len(toks) and (toks[j] in UNITS or toks[j] in TENS or toks[j] in SCALES
                                     or (toks[j] == "and" and j + 1 < len(toks) and toks[j + 1] in UNITS | TENS)):
                # "seven thirty" is a time, not 37; "twenty five" is 25: only join tens + unit
                if toks[j] in UNITS and toks[j - 1] in UNITS:
                    break
                if toks[j] in TENS and toks[j - 1] in UNITS | TENS:
                    break
                j += 1
            value = _words_to_number(toks[i:j])
            if value is not None:
                runs.append((i, j, value))
            i = j
        else:
            i += 1
    return runs


def _as_int(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(float(x), 2)


def parse_number(text: str, now: dt.datetime | None = None) -> int | float | None:
    toks = tokens(text)
    runs = _number_runs(toks)
    if runs:
        return _as_int(runs[0][2])
    if "half" in toks:
        return 0.5
    if "a" in toks or "an" in toks:
        return None
    return None


def parse_ordinal(text: str, now: dt.datetime | None = None) -> int | None:
    toks = tokens(text)
    for i, t in enumerate(toks):
        if t in ORDINALS:
            return ORDINALS[t]
        if t.isdigit() and i + 1 < len(toks) and toks[i + 1] in ("st", "nd", "rd", "th"):
            return int(t)
    n = parse_number(text)
    return int(n) if isinstance(n, (int, float)) and float(n).is_integer() else None


def parse_percentage(text: str, now: dt.datetime | None = None) -> int | None:
    toks = tokens(text)
    if not toks:
        return None
    if "half" in toks and not _number_runs(toks):
        return 50
    if any(t in ("full", "max", "maximum", "brightest") for t in toks):
        return 100
    if any(t in ("minimum", "lowest", "dimmest") for t in toks):
        return 1
    runs = _number_runs(toks)
    if not runs:
        return None
    value = runs[0][2]
    if 0 <= value <= 100:
        return int(round(value))
    return None


def parse_temperature(text: str, now: dt.datetime | None = None) -> dict | None:
    toks = tokens(text)
    runs = _number_runs(toks)
    if not runs:
        return None
    value = runs[0][2]
    if "minus" in toks[: runs[0][0]] or "negative" in toks[: runs[0][0]]:
        value = -value
    unit = "C" if any(t in ("celsius", "centigrade", "c") for t in toks) else "F"
    return {"value": _as_int(value), "unit": unit}


def parse_duration(text: str, now: dt.datetime | None = None) -> int | None:
    """Seconds. "an hour and a half", "1 hour 30 minutes", "half an hour", "90 sec"."""
    toks = [t for t in tokens(text) if t not in ("for", "of", "the")]
    total, i, found = 0.0, 0, False
    pending: float | None = None
    while i < len(toks):
        t = toks[i]
        if t in DURATION_UNITS:
            unit = DURATION_UNITS[t]
            qty = 1.0 if pending is None else pending
            # "an hour and a half": a trailing "and a half" after the unit
            if toks[i + 1: i + 4] == ["and", "a", "half"]:
                qty += 0.5
                i += 3
            total += qty * unit
            found, pending = True, None
        elif t == "half" and i + 2 < len(toks) and toks[i + 1] in ("a", "an") and toks[i + 2] in DURATION_UNITS:
            total += 0.5 * DURATION_UNITS[toks[i + 2]]
            found, pending = True, None
            i += 2
        elif t == "quarter" and i + 2 < len(toks) and toks[i + 1] in ("a", "an") and toks[i + 2] in DURATION_UNITS:
            total += 0.25 * DURATION_UNITS[toks[i + 2]]
            found, pending = True, None
            i += 2
        elif t == "couple":
            pending = 2.0
        elif t in ("a", "an") and pending is None:
            pending = 1.0
        elif t == "and" and i + 2 < len(toks) and toks[i + 1] == "a" and toks[i + 2] == "half" and pending is not None:
            pending += 0.5
            i += 2
        else:
            j = i
            while j < len(toks) and (toks[j] in UNITS or toks[j] in TENS or toks[j] in SCALES
                                     or re.fullmatch(r"\d+(\.\d+)?", toks[j])
                                     or (toks[j] == "and" and j + 1 < len(toks) and toks[j + 1] not in ("a",))):
                j += 1
            if j > i:
                value = _words_to_number([w for w in toks[i:j] if w != "and"])
                if value is not None:
                    pending = float(value)
                i = j
                continue
        i += 1
    if not found:
        return None
    return int(round(total))


_TIME_OF_DAY = {"morning": "am", "afternoon": "pm", "evening": "pm", "tonight": "pm", "night": "pm"}


def parse_time(text: str, now: dt.datetime | None = None) -> str | None:
    """24-hour "HH:MM". Without am/pm or a time of day, hours 1-11 stay as said (morning)."""
    toks = tokens(text)
    if not toks:
        return None
    if "noon" in toks or "midday" in toks:
        return "12:00"
    if "midnight" in toks:
        return "00:00"
    meridiem = next((t for t in toks if t in ("am", "pm")), None)
    if meridiem is None:
        meridiem = next((_TIME_OF_DAY[t] for t in toks if t in _TIME_OF_DAY), None)
    hour = minute = None
    for t in toks:
        m = re.fullmatch(r"(\d{1,2})[:.](\d{2})", t)   # "7:30", and "6.30" as ASR writes it
        if m:
            hour, minute = int(m.group(1)), int(m.group(2))
            break
    if hour is None:
        # "quarter past seven", "half past six", "quarter to eight", "ten to five"
        for i, t in enumerate(toks):
            if t in ("past", "after", "to", "before", "til", "till") and 0 < i < len(toks) - 1:
                left = 15 if toks[i - 1] == "quarter" else 30 if toks[i - 1] == "half" else None
                if left is None:
                    runs = [r for r in _number_runs(toks[:i]) if r[1] == i]
                    left = int(runs[0][2]) if runs else None
                right_runs = _number_runs(toks[i + 1:])
                if left is not None and right_runs and right_runs[0][0] == 0:
                    h = int(right_runs[0][2])
                    if t in ("past", "after"):
                        hour, minute = h, left
                    else:
                        hour, minute = (h - 1) % 24, 60 - left
                    break
    if hour is None:
        nums = [t for t in toks if t in UNITS or t in TENS or t.isdigit()]
        runs = _number_runs(toks)
        if not runs:
            return None
        start, end, value = runs[0]
        # "seven thirty" / "seven oh five" / "730": hour then minutes
        if isinstance(value, (int, float)) and float(value).is_integer():
            value = int(value)
            rest = _number_runs(toks[end:])
            if toks[start].isdigit() and len(toks[start]) in (3, 4) and value >= 100:
                hour, minute = value // 100, value % 100
            elif rest and rest[0][0] == 0 and value <= 24:
                hour = value
                minute_words = toks[end: end + rest[0][1]]
                minute = int(rest[0][2]) if minute_words[0] != "oh" else int(_words_to_number(minute_words[1:]) or 0)
            elif value <= 24:
                hour, minute = value, 0
        del nums
    if hour is None or minute is None or not (0 <= hour <= 24 and 0 <= minute < 60):
        return None
    if meridiem == "pm" and hour < 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    return f"{hour % 24:02d}:{minute:02d}"


def parse_date(text: str, now: dt.datetime | None = None) -> str | None:
    """ISO date, relative to ``now`` (the session clock)."""
    now = now or dt.datetime(2026, 1, 1, 12, 0)
    today = now.date()
    toks = tokens(text)
    joined = " ".join(toks)
    if "day after tomorrow" in joined:
        return (today + dt.timedelta(days=2)).isoformat()
    if "tomorrow" in toks:
        return (today + dt.timedelta(days=1)).isoformat()
    if "yesterday" in toks:
        return (today - dt.timedelta(days=1)).isoformat()
    if any(t in ("today", "tonight", "now") for t in toks) or joined in ("this morning", "this afternoon", "this evening"):
        return today.isoformat()
    if "weekend" in toks:
        days = (5 - today.weekday()) % 7
        return (today + dt.timedelta(days=days)).isoformat()
    for i, t in enumerate(toks):
        if t in WEEKDAYS:
            days = (WEEKDAYS.index(t) - today.weekday()) % 7
            if i > 0 and toks[i - 1] == "next" and days == 0:
                days = 7
            return (today + dt.timedelta(days=days)).isoformat()
    for i, t in enumerate(toks):
        if t in MONTHS:
            month = MONTHS.index(t) + 1
            day = _day_number(toks[i + 1:]) or _day_number(toks[:i], from_end=True)
            if day:
                year = today.year
                try:
                    candidate = dt.date(year, month, day)
                except ValueError:
                    return None
                if candidate < today:
                    candidate = dt.date(year + 1, month, day)
                return candidate.isoformat()
    m = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", text)
    if m:
        return m.group(0)
    if "in" in toks:
        d = parse_duration(text)
        if d and d >= 86400:
            return (today + dt.timedelta(seconds=d)).isoformat()
    return None


def _day_number(toks: list[str], from_end: bool = False) -> int | None:
    seq = list(reversed(toks)) if from_end else toks
    for t in seq[:3]:
        if t in ORDINALS:
            return ORDINALS[t]
        if t.isdigit() and 1 <= int(t) <= 31:
            return int(t)
        if t in ("twenty", "thirty") and not from_end:
            idx = seq.index(t)
            nxt = seq[idx + 1] if idx + 1 < len(seq) else None
            return TENS[t] + (ORDINALS.get(nxt, 0) if nxt else 0)
    return None


PARSERS: dict[str, Callable[[str, dt.datetime | None], Any]] = {
    "number": parse_number,
    "ordinal": parse_ordinal,
    "percentage": parse_percentage,
    "temperature": parse_temperature,
    "duration": parse_duration,
    "time": parse_time,
    "date": parse_date,
}


def normalize(slot_type: str, text: str, now: dt.datetime | None = None) -> Any:
    """Canonical value of ``text`` as ``slot_type``; None if it holds none."""
    parser = PARSERS.get(slot_type)
    if parser is None:
        raise KeyError(f"no normalizer for type {slot_type!r}")
    try:
        return parser(text, now)
    except (ValueError, IndexError) as err:  # malformed numbers in odd transcripts
        log.debug("could not parse %r as %s: %s", text, slot_type, err)
        return None


# Spoken forms, used by replies ("{duration|duration}") and by the utterance generator ----------

def spoken_number(n: int) -> str:
    if n < 0:
        return "minus " + spoken_number(-n)
    if n < 20:
        return next(k for k, v in UNITS.items() if v == n and k != "oh")
    if n < 100:
        tens = next(k for k, v in TENS.items() if v == n - n % 10)
        return tens + ("" if n % 10 == 0 else " " + spoken_number(n % 10))
    if n < 1000:
        rest = n % 100
        return spoken_number(n // 100) + " hundred" + ("" if rest == 0 else " " + spoken_number(rest))
    rest = n % 1000
    return spoken_number(n // 1000) + " thousand" + ("" if rest == 0 else " " + spoken_number(rest))


def say_duration(seconds: int) -> str:
    seconds = int(seconds)
    parts = []
    for name, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        q, seconds = divmod(seconds, size)
        if q:
            parts.append(f"{q} {name}{'s' if q != 1 else ''}")
    return " and ".join(parts) if parts else "0 seconds"


def say_time(hhmm: str) -> str:
    h, m = (int(x) for x in hhmm.split(":"))
    suffix = "AM" if h < 12 else "PM"
    h12 = h % 12 or 12
    return f"{h12}:{m:02d} {suffix}" if m else f"{h12} {suffix}"


def say_day(iso: str | None, today: dt.date | None = None) -> str:
    if not iso:
        return "today"
    d = dt.date.fromisoformat(iso)
    if today is not None:
        if d == today:
            return "today"
        if d == today + dt.timedelta(days=1):
            return "tomorrow"
    return f"{WEEKDAYS[d.weekday()].capitalize()}, {MONTHS[d.month - 1].capitalize()} {d.day}"


def say_temperature(t: dict) -> str:
    unit = "degrees Celsius" if t.get("unit") == "C" else "degrees"
    return f"{t.get('value')} {unit}"

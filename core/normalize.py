"""Spoken or written builtin values → canonical values.

Transcripts say "seventy two degrees" or "72°", "seven thirty tomorrow morning" or "7:30 am".
Each parser accepts digits and words and returns the canonical value (docs/domains.md "Slot values"):

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
quantity     {"value": number, "unit": UNIT}           "12 oz", "half a cup"
===========  =======================================  ===================

A parser returns ``None`` when the text holds no value of its type.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

UNITS = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000}
ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
DURATION_UNITS = {
    "second": 1,
    "seconds": 1,
    "sec": 1,
    "secs": 1,
    "s": 1,
    "minute": 60,
    "minutes": 60,
    "min": 60,
    "mins": 60,
    "hour": 3600,
    "hours": 3600,
    "hr": 3600,
    "hrs": 3600,
    "h": 3600,
    "day": 86400,
    "days": 86400,
    "week": 604800,
    "weeks": 604800,
}
# Quantity units: every spelling → its canonical symbol.
QUANTITY_UNITS = {
    **dict.fromkeys(("oz", "ounce", "ounces", "fl oz"), "oz"),
    **dict.fromkeys(("lb", "lbs", "pound", "pounds"), "lb"),
    **dict.fromkeys(("g", "gram", "grams", "gr"), "g"),
    **dict.fromkeys(("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"), "kg"),
    **dict.fromkeys(("cup", "cups"), "cup"),
    **dict.fromkeys(("tbsp", "tablespoon", "tablespoons"), "tbsp"),
    **dict.fromkeys(("tsp", "teaspoon", "teaspoons"), "tsp"),
    **dict.fromkeys(("pint", "pints", "pt"), "pt"),
    **dict.fromkeys(("quart", "quarts", "qt"), "qt"),
    **dict.fromkeys(("gallon", "gallons", "gal"), "gal"),
    **dict.fromkeys(("l", "liter", "liters", "litre", "litres"), "l"),
    **dict.fromkeys(("ml", "milliliter", "milliliters", "millilitre", "millilitres"), "ml"),
    **dict.fromkeys(("mile", "miles", "mi"), "mi"),
    **dict.fromkeys(("km", "kilometer", "kilometers", "kilometre", "kilometres"), "km"),
    **dict.fromkeys(("foot", "feet", "ft"), "ft"),
    **dict.fromkeys(("inch", "inches"), "in"),
    **dict.fromkeys(("meter", "meters", "metre", "metres"), "m"),
    **dict.fromkeys(("dozen",), "dozen"),
    # countable containers keep their own (singular) name
    **{
        w: w[:-1]
        if w.endswith("s") and w not in ("boxes", "bunches", "loaves")
        else {"boxes": "box", "bunches": "bunch", "loaves": "loaf"}.get(w, w)
        for w in (
            "piece",
            "pieces",
            "item",
            "items",
            "pack",
            "packs",
            "can",
            "cans",
            "bottle",
            "bottles",
            "box",
            "boxes",
            "bag",
            "bags",
            "loaf",
            "loaves",
            "slice",
            "slices",
            "bunch",
            "bunches",
            "jar",
            "jars",
            "carton",
            "cartons",
        )
    },
}
# Abbreviations that are ordinary words too ("g", "l", "in", "can") count only right after digits.
_NEEDS_AMOUNT = {
    "g",
    "gr",
    "l",
    "pt",
    "qt",
    "mi",
    "ft",
    "kg",
    "kgs",
    "km",
    "ml",
    "gal",
    "can",
    "cans",
    "item",
    "items",
    "piece",
    "pieces",
    "box",
    "boxes",
    "bag",
    "bags",
}
FRACTION_WORDS = {"half": 0.5, "halves": 0.5, "quarter": 0.25, "quarters": 0.25, "third": 1 / 3, "thirds": 1 / 3}
NUMBER_WORDS = set(UNITS) | set(TENS) | set(SCALES) | {"a", "an", "and", "half", "quarter", "couple"}
# Every word a builtin value may be said with (for vocabulary coverage and ASR biasing).
BUILTIN_WORDS = (
    NUMBER_WORDS
    | set(ORDINALS)
    | set(DURATION_UNITS)
    | set(WEEKDAYS)
    | set(MONTHS)
    | {
        "am",
        "pm",
        "a.m",
        "p.m",
        "o'clock",
        "oclock",
        "noon",
        "midnight",
        "midday",
        "morning",
        "afternoon",
        "evening",
        "night",
        "tonight",
        "today",
        "tomorrow",
        "yesterday",
        "weekend",
        "next",
        "this",
        "coming",
        "upcoming",
        "past",
        "to",
        "after",
        "before",
        "degrees",
        "degree",
        "celsius",
        "centigrade",
        "fahrenheit",
        "percent",
        "minus",
        "full",
        "max",
        "maximum",
        "minimum",
        "day",
        "of",
        "the",
        "in",
        "on",
        "at",
        "for",
        "st",
        "nd",
        "rd",
        "th",
        "point",
        "dozen",
        "week",
        "month",
        "year",
        "weeks",
        "months",
        "hours",
        "quarters",
        "thirds",
    }
    | {w for k in QUANTITY_UNITS for w in k.split()}
)


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; keeps digits with their decimal point, colon or percent sign."""
    text = text.lower().replace("-", " ").replace("°", " degrees ")
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", r"\1 \2", text)
    text = re.sub(r"\b([ap])\.?\s?m\b\.?", r"\1m", text)
    text = re.sub(r"(\d)([a-z])", r"\1 \2", text)
    return re.findall(r"\d+/\d+|\d+(?:[.:]\d+)?|[a-z']+", text)


def _words_to_number(words: list[str]) -> float | None:
    """Parse a whole run of number words ("one hundred and five", "seventy two")."""
    if not words:
        return None
    total: float = 0
    current: float = 0
    seen = False
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


def _is_digits(t: str) -> bool:
    return re.fullmatch(r"\d+(\.\d+)?", t) is not None


def _number_runs(toks: list[str]) -> list[tuple[int, int, float]]:
    """Maximal runs of number words/digits: (start, end, value). "two point five" → 2.5."""
    runs, i = [], 0
    while i < len(toks):
        if toks[i] in UNITS or toks[i] in TENS or _is_digits(toks[i]):
            j = i + 1
            while j < len(toks) and (
                toks[j] in UNITS
                or toks[j] in TENS
                or toks[j] in SCALES
                or (toks[j] == "and" and j + 1 < len(toks) and toks[j + 1] in UNITS | TENS)
            ):
                # "seven thirty" is a time, not 37; "twenty five" is 25: only join tens + unit
                if toks[j] in UNITS and toks[j - 1] in UNITS:
                    break
                if toks[j] in TENS and toks[j - 1] in UNITS | TENS:
                    break
                j += 1
            value = _words_to_number(toks[i:j])
            # decimals said as digits: "two point five", "98 point 6"
            if value is not None and j + 1 < len(toks) and toks[j] == "point":
                k, digits = j + 1, ""
                while k < len(toks) and (toks[k] in UNITS and UNITS[toks[k]] < 10 or toks[k].isdigit()):
                    digits += str(UNITS.get(toks[k], toks[k]))
                    k += 1
                if digits:
                    value = float(f"{int(value)}.{digits}")
                    j = k
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
            if toks[i + 1 : i + 4] == ["and", "a", "half"]:
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
            while j < len(toks) and (
                toks[j] in UNITS
                or toks[j] in TENS
                or toks[j] in SCALES
                or re.fullmatch(r"\d+(\.\d+)?", toks[j])
                or (toks[j] == "and" and j + 1 < len(toks) and toks[j + 1] not in ("a",))
            ):
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


DEFAULT_CLOCK = dt.datetime(2026, 1, 1, 12, 0)  # ``now`` when a caller has no clock


def relative_seconds(text: str) -> int | None:
    """How far ahead words put a moment relative to now ("two hours from now", "in five
    minutes", "half an hour later"), in seconds; None when they do not ("in the morning")."""
    toks = tokens(text)
    if not toks or not (toks[0] == "in" or re.search(r"\b(?:from now|later)\b", " ".join(toks))):
        return None
    rest = [t for t in toks if t not in ("in", "from", "now", "later")]
    if not rest or not (rest[0] in NUMBER_WORDS or rest[0][0].isdigit()):
        return None  # "in the coming week" is no distance from now
    return parse_duration(" ".join(rest)) or None


def parse_time(text: str, now: dt.datetime | None = None) -> str | None:
    """24-hour "HH:MM". Without am/pm or a time of day, hours 1-11 stay as said (morning). A
    time relative to now ("in two hours") is now plus that, when it falls within a day."""
    ahead = relative_seconds(text)
    if ahead is not None:
        if ahead >= 24 * 3600:
            return None
        moment = (now or DEFAULT_CLOCK) + dt.timedelta(seconds=ahead)
        return f"{moment.hour:02d}:{moment.minute:02d}"
    # "nine o five" is "nine oh five" ("o'clock" stays one token)
    toks = ["oh" if t == "o" else t for t in tokens(text)]
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
        m = re.fullmatch(r"(\d{1,2})[:.](\d{2})", t)  # "7:30", and "6.30" as ASR writes it
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
                right_runs = _number_runs(toks[i + 1 :])
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
                minute_words = toks[end : end + rest[0][1]]
                if minute_words[0] != "oh":
                    minute = int(rest[0][2])
                else:
                    # "nine oh five": "oh" is a run of its own (unit words never join), so the
                    # minutes are the run right after it
                    after = rest[1] if len(rest) > 1 and rest[1][0] == rest[0][1] else None
                    minute = int(after[2]) if after and after[2] < 10 else 0
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


def _day_words(text: str) -> list[str]:
    """Tokens with a day's possessive or plural dropped: "tomorrow's", "tomorrows", "this week's"."""
    out = []
    for t in tokens(text):
        t = t[:-2] if t.endswith("'s") else t
        out.append(t[:-1] if t in ("tomorrows", "todays", "tonights") else t)
    return out


def parse_date(text: str, now: dt.datetime | None = None) -> str | None:
    """ISO date, relative to ``now`` (the session clock)."""
    now = now or DEFAULT_CLOCK
    ahead = relative_seconds(text)
    if ahead is not None:  # "in two days", "three weeks from now"
        return (now + dt.timedelta(seconds=ahead)).date().isoformat()
    today = now.date()
    toks = _day_words(text)
    joined = " ".join(toks)
    if "day after tomorrow" in joined:
        return (today + dt.timedelta(days=2)).isoformat()
    if "tomorrow" in toks:
        return (today + dt.timedelta(days=1)).isoformat()
    if "yesterday" in toks:
        return (today - dt.timedelta(days=1)).isoformat()
    if any(t in ("today", "tonight", "now") for t in toks) or re.search(
        r"\bthis (morning|afternoon|evening|night)\b", joined
    ):
        return today.isoformat()
    if "weekend" in toks:
        days = (5 - today.weekday()) % 7
        if "next" in toks and days == 0:
            days = 7
        return (today + dt.timedelta(days=days)).isoformat()
    if re.search(r"\b(?:this|coming|upcoming) week\b", joined):  # the week from today
        return today.isoformat()
    if re.search(r"\bnext week\b", joined):
        return (today + dt.timedelta(days=7)).isoformat()
    for i, t in enumerate(toks):
        if t in WEEKDAYS:
            days = (WEEKDAYS.index(t) - today.weekday()) % 7
            if i > 0 and toks[i - 1] == "next" and days == 0:
                days = 7
            return (today + dt.timedelta(days=days)).isoformat()
    for i, t in enumerate(toks):
        if t in MONTHS:
            month = MONTHS.index(t) + 1
            day = _day_number(toks[i + 1 :]) or _day_number(toks[:i], from_end=True)
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
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?", next((t for t in toks if "/" in t), "")) or re.search(
        r"\b(\d{1,2})/(\d{1,2})/(\d{2,4})\b", text
    )
    if m:  # US order: month/day[/year]
        year = int(m.group(3)) if m.group(3) else today.year
        year += 2000 if year < 100 else 0
        try:
            candidate = dt.date(year, int(m.group(1)), int(m.group(2)))
        except ValueError:
            return None
        if not m.group(3) and candidate < today:
            candidate = dt.date(year + 1, candidate.month, candidate.day)
        return candidate.isoformat()
    day = next((ORDINALS[t] for t in toks if t in ORDINALS and ORDINALS[t] <= 31), None)
    if day is None:
        day = next(
            (
                int(t)
                for i, t in enumerate(toks)
                if t.isdigit() and i + 1 < len(toks) and toks[i + 1] in ("st", "nd", "rd", "th") and 1 <= int(t) <= 31
            ),
            None,
        )
    if day is not None and ("the" in toks or "on" in toks or len(toks) <= 2):
        # "on the fifth": the next such day of a month
        year, month = today.year, today.month
        for _ in range(3):
            on_day: dt.date | None
            try:
                on_day = dt.date(year, month, day)
            except ValueError:
                on_day = None
            if on_day is not None and on_day >= today:
                return on_day.isoformat()
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return None
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


def _amount_before(words: list[str]) -> float | None:
    """The amount said just before a unit: "12", "two and a half", "half a", "three quarters of a"."""
    words = list(words)
    while words and words[-1] == "of":
        words.pop()
    if not words:
        return None
    last = words[-1]
    if last in ("a", "an"):
        k = len(words) - 2
        if k >= 0 and words[k] == "of":
            k -= 1
        if k >= 0 and words[k] in FRACTION_WORDS:  # "half a cup", "three quarters of a cup"
            runs = [r for r in _number_runs(words[:k]) if r[1] == k]
            return (runs[0][2] if runs else 1.0) * FRACTION_WORDS[words[k]]
        return 1.0
    if last in FRACTION_WORDS:
        frac = FRACTION_WORDS[last]
        if words[-3:-1] == ["and", "a"] or words[-3:-1] == ["and", "an"]:  # "one and a half"
            runs = [r for r in _number_runs(words[:-3]) if r[1] == len(words) - 3]
            return (runs[0][2] if runs else 1.0) + frac
        runs = [r for r in _number_runs(words[:-1]) if r[1] == len(words) - 1]
        return runs[0][2] * frac if runs else frac  # "three quarters", "a quarter"
    m = re.fullmatch(r"(\d+)/(\d+)", last)
    if m and int(m.group(2)):
        frac = int(m.group(1)) / int(m.group(2))
        whole = words[-2] if len(words) >= 2 and words[-2].isdigit() else None
        return frac + (int(whole) if whole else 0)
    runs = [r for r in _number_runs(words) if r[1] == len(words)]
    return runs[0][2] if runs else None


def parse_quantity(text: str, now: dt.datetime | None = None) -> dict | None:
    """{"value": number, "unit": symbol}. "12 oz", "two pounds", "half a cup", "1 1/2 cups",
    "a gallon and a half", "a dozen" (12, "count"); a bare number has unit None."""
    toks = tokens(text)
    for u, t in enumerate(toks):
        two = " ".join(toks[u : u + 2])
        if two in QUANTITY_UNITS:
            t = two
        if t not in QUANTITY_UNITS:
            continue
        amount = _amount_before(toks[:u])
        if t in _NEEDS_AMOUNT and not (
            u and (_is_digits(toks[u - 1]) or "/" in toks[u - 1] or toks[u - 1] in UNITS or toks[u - 1] in TENS)
        ):
            continue  # "g", "l", "can" alone are words, not units
        if amount is None:
            amount = 1.0
        rest = toks[u + len(t.split()) :]
        if rest[:3] in (["and", "a", "half"], ["and", "an", "half"]):
            amount += 0.5
        unit = QUANTITY_UNITS[t]
        if unit == "dozen":
            return {"value": _as_int(amount * 12), "unit": "count"}
        return {"value": _as_int(round(amount, 3)), "unit": unit}
    runs = _number_runs(toks)
    if runs:
        return {"value": _as_int(runs[0][2]), "unit": None}
    amount = _amount_before(toks)
    return {"value": _as_int(round(amount, 3)), "unit": None} if amount is not None and "half" in toks else None


PARSERS: dict[str, Callable[[str, dt.datetime | None], Any]] = {
    "number": parse_number,
    "ordinal": parse_ordinal,
    "percentage": parse_percentage,
    "temperature": parse_temperature,
    "duration": parse_duration,
    "time": parse_time,
    "date": parse_date,
    "quantity": parse_quantity,
}


_MERIDIEM_WORDS = {"am": "am", "pm": "pm", **_TIME_OF_DAY}


def says_a_time(text: str) -> bool:
    """Whether the words mark a time of day ("7 pm", "seven o'clock", "half past six", "7:30",
    "noon", "in the evening"), not just a number a tagger may have called a time ("four")."""
    toks = tokens(text)
    return (
        any(t in _MERIDIEM_WORDS or t in ("o'clock", "noon", "midday", "midnight") for t in toks)
        or any(re.fullmatch(r"\d{1,2}[:.]\d{2}", t) for t in toks)
        or any(
            t in ("past", "to", "after", "before", "til", "till") and 0 < i < len(toks) - 1 for i, t in enumerate(toks)
        )
    )


def meridiem_hint(text: str) -> str | None:
    """ "am"/"pm" when the words say which half of the day ("tomorrow morning", "tonight")."""
    return next((_MERIDIEM_WORDS[t] for t in tokens(text) if t in _MERIDIEM_WORDS), None)


def builtin_value(slot_type: str, words: str, now=None, context: str | None = None):
    """The canonical value of ``words`` when they are nothing but a ``slot_type`` value (every
    word one a builtin value is said with), else None: "tomorrow in miami" is no date."""
    said = _day_words(words)
    if not said or not all(w in BUILTIN_WORDS or w[0].isdigit() for w in said):
        return None
    return normalize(slot_type, words, now, context=context)


def normalize(slot_type: str, text: str, now: dt.datetime | None = None, context: str | None = None) -> Any:
    """Canonical value of ``text`` as ``slot_type``; None if it holds none.

    ``context`` is the whole utterance the words came from: a time said without am/pm takes
    it from the rest ("seven thirty" in "seven thirty tomorrow evening" is 19:30)."""
    parser = PARSERS.get(slot_type)
    if parser is None:
        raise KeyError(f"no normalizer for type {slot_type!r}")
    if slot_type == "time" and context and meridiem_hint(text) is None:
        hint = meridiem_hint(context)
        if hint is not None:
            text = f"{text} {hint}"
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


def say_temperature(t: Mapping) -> str:
    unit = "degrees Celsius" if t.get("unit") == "C" else "degrees"
    return f"{t.get('value')} {unit}"

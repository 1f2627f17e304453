"""Builtin values from digits or words, as transcripts write them."""

from __future__ import annotations

import datetime as dt

import pytest

from core.normalize import normalize, say_duration, say_time, spoken_number

NOW = dt.datetime(2026, 3, 14, 8, 0)  # a Saturday

CASES = [
    ("duration", "ten minutes", 600),
    ("duration", "10 minutes", 600),
    ("duration", "an hour and a half", 5400),
    ("duration", "half an hour", 1800),
    ("duration", "1 hour and 30 minutes", 5400),
    ("duration", "90 seconds", 90),
    ("duration", "two and a half hours", 9000),
    ("duration", "a minute", 60),
    ("duration", "twenty five minutes", 1500),
    ("duration", "5 min", 300),
    ("duration", "a couple of minutes", 120),
    ("duration", "one hour thirty minutes", 5400),
    ("time", "seven thirty", "07:30"),
    ("time", "7:30 am", "07:30"),
    ("time", "7:30 p.m.", "19:30"),
    ("time", "6 pm", "18:00"),
    ("time", "noon", "12:00"),
    ("time", "midnight", "00:00"),
    ("time", "quarter past seven", "07:15"),
    ("time", "half past six", "06:30"),
    ("time", "quarter to eight", "07:45"),
    ("time", "seven o'clock", "07:00"),
    ("time", "seven thirty tomorrow morning", "07:30"),
    ("time", "six in the evening", "18:00"),
    ("time", "7 oh five", "07:05"),
    ("time", "ten fifteen pm", "22:15"),
    ("time", "6.30 tomorrow", "06:30"),
    ("time", "730", "07:30"),
    # "oh" minutes spelled out: the simulator's users say times this way
    ("time", "nine oh five pm", "21:05"),
    ("time", "seven oh nine", "07:09"),
    ("time", "nine o five am", "09:05"),
    ("time", "twelve oh five am", "00:05"),
    ("time", "ten oh one in the evening", "22:01"),
    ("temperature", "seventy two degrees", {"value": 72, "unit": "F"}),
    ("temperature", "72°", {"value": 72, "unit": "F"}),
    ("temperature", "21 degrees celsius", {"value": 21, "unit": "C"}),
    ("temperature", "68", {"value": 68, "unit": "F"}),
    ("percentage", "30 percent", 30),
    ("percentage", "30%", 30),
    ("percentage", "thirty percent", 30),
    ("percentage", "half", 50),
    ("percentage", "one hundred percent", 100),
    ("date", "tomorrow", "2026-03-15"),
    ("date", "today", "2026-03-14"),
    ("date", "on friday", "2026-03-20"),
    ("date", "next monday", "2026-03-16"),
    ("date", "march 3rd", "2027-03-03"),
    ("date", "the day after tomorrow", "2026-03-16"),
    ("date", "april twenty first", "2026-04-21"),
    ("date", "saturday", "2026-03-14"),
    ("date", "next saturday", "2026-03-21"),
    ("number", "seventy two", 72),
    ("number", "one hundred and five", 105),
    ("number", "twenty-five", 25),
    ("number", "1,000", 1000),
    ("ordinal", "third", 3),
    ("ordinal", "3rd", 3),
    # relative to now (08:00 on the 14th)
    ("time", "two hours from now", "10:00"),
    ("time", "in five minutes", "08:05"),
    ("time", "in an hour and a half", "09:30"),
    ("time", "half an hour later", "08:30"),
    ("date", "in two days", "2026-03-16"),
    ("date", "three weeks from now", "2026-04-04"),
]


@pytest.mark.parametrize("slot_type, text, expected", CASES)
def test_normalize(slot_type, text, expected):
    if slot_type == "number" and "," in text:
        from stages.nlu.text import prepare

        text = prepare(text)
    assert normalize(slot_type, text, NOW) == expected


@pytest.mark.parametrize(
    "slot_type, text",
    [
        ("duration", "the kitchen lights"),
        ("time", "play some jazz"),
        ("temperature", "the oven"),
        ("date", "the living room"),
        ("percentage", "brighter"),
        ("time", "in two days"),  # no time of day
    ],
)
def test_no_value_is_none(slot_type, text):
    assert normalize(slot_type, text, NOW) is None


def test_spoken_forms_round_trip():
    for n in (0, 7, 13, 20, 42, 99, 100, 105, 999, 1200):
        assert normalize("number", spoken_number(n)) == n
    assert say_duration(5400) == "1 hour and 30 minutes"
    assert say_time("19:05") == "7:05 PM"


def test_spoken_clock_times_round_trip():
    # every time the simulated users can say as words ("nine oh five", "ten forty five")
    for h in range(1, 13):
        for m in range(1, 60):
            minute = spoken_number(m) if m >= 10 else f"oh {spoken_number(m)}"
            assert normalize("time", f"{spoken_number(h)} {minute} pm") == f"{h % 12 + 12:02d}:{m:02d}"


@pytest.mark.parametrize(
    "text, marked",
    [
        ("7 pm", True),
        ("seven o'clock", True),
        ("half past six", True),
        ("7:30", True),
        ("noon", True),
        ("eight in the evening", True),
        ("four people", False),
        ("four", False),
        ("the 4", False),
    ],
)
def test_a_time_of_day_is_told_from_a_bare_number(text, marked):
    from core.normalize import says_a_time

    assert says_a_time(text) is marked

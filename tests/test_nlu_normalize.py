"""Normalization beyond the basics: quantities with units, decimals, dates said loosely, and a
time that takes am/pm from the rest of the utterance."""

from __future__ import annotations

import datetime as dt

import pytest

from core.normalize import meridiem_hint, normalize

NOW = dt.datetime(2026, 3, 14, 8, 0)  # a Saturday


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12 oz", {"value": 12, "unit": "oz"}),
        ("12oz", {"value": 12, "unit": "oz"}),
        ("twelve ounces", {"value": 12, "unit": "oz"}),
        ("2 lbs of apples", {"value": 2, "unit": "lb"}),
        ("two pounds", {"value": 2, "unit": "lb"}),
        ("half a cup", {"value": 0.5, "unit": "cup"}),
        ("three quarters of a cup", {"value": 0.75, "unit": "cup"}),
        ("1 1/2 cups", {"value": 1.5, "unit": "cup"}),
        ("one and a half liters", {"value": 1.5, "unit": "l"}),
        ("a gallon and a half", {"value": 1.5, "unit": "gal"}),
        ("two point five liters", {"value": 2.5, "unit": "l"}),
        ("a quarter pound", {"value": 0.25, "unit": "lb"}),
        ("a dozen", {"value": 12, "unit": "count"}),
        ("half a dozen", {"value": 6, "unit": "count"}),
        ("two cans of soup", {"value": 2, "unit": "can"}),
        ("5 g", {"value": 5, "unit": "g"}),
        ("three", {"value": 3, "unit": None}),
    ],
)
def test_quantity(text, expected):
    assert normalize("quantity", text, NOW) == expected


@pytest.mark.parametrize("text", ["the kitchen", "a g", "in the can"])
def test_no_quantity(text):
    assert normalize("quantity", text, NOW) is None


@pytest.mark.parametrize(
    "slot_type, text, expected",
    [
        ("number", "two point five", 2.5),
        ("number", "ninety eight point six", 98.6),
        ("temperature", "twenty one point five degrees celsius", {"value": 21.5, "unit": "C"}),
        ("temperature", "seventy two degrees", {"value": 72, "unit": "F"}),
        ("duration", "two weeks", 1209600),
        ("date", "tomorrow morning", "2026-03-15"),
        ("date", "seven thirty tomorrow morning", "2026-03-15"),
        ("date", "this evening", "2026-03-14"),
        ("date", "next week", "2026-03-21"),
        ("date", "in two weeks", "2026-03-28"),
        ("date", "on the fifth", "2026-04-05"),
        ("date", "the 20th", "2026-03-20"),
        ("date", "3/20", "2026-03-20"),
        ("date", "next weekend", "2026-03-21"),
    ],
)
def test_more_values(slot_type, text, expected):
    assert normalize(slot_type, text, NOW) == expected


@pytest.mark.parametrize(
    "words, utterance, expected",
    [
        ("seven thirty", "wake me up at seven thirty tomorrow morning", "07:30"),
        ("seven thirty", "wake me up at seven thirty tomorrow evening", "19:30"),
        ("7", "set an alarm for 7 tonight", "19:00"),
        ("7 am", "set an alarm for 7 am tonight", "07:00"),  # said explicitly: kept
        ("six", "remind me at six", "06:00"),
    ],
)
def test_time_takes_am_pm_from_the_utterance(words, utterance, expected):
    assert normalize("time", words, NOW, context=utterance) == expected


def test_meridiem_hint():
    assert meridiem_hint("tomorrow evening") == "pm" and meridiem_hint("in the morning") == "am"
    assert meridiem_hint("tomorrow") is None


@pytest.mark.parametrize(
    "words, expected",
    [
        ("tomorrow's", "2026-01-02"),
        ("tomorrows", "2026-01-02"),
        ("this week's", "2026-01-01"),
        ("in coming week", "2026-01-01"),
    ],
)
def test_a_day_said_with_a_possessive_or_as_the_coming_week(words, expected):
    from core.normalize import builtin_value

    assert builtin_value("date", words) == expected

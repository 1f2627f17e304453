"""Multi-turn dialogue through the real NLU (trained from the home spec), resolver and
responder: carryover, anaphora, elicitation, and users who change their minds."""

from __future__ import annotations

import pytest

from tests.conftest import say

pytestmark = pytest.mark.models


def test_changing_your_mind_drops_the_pending_request(assistant, fresh):
    s = fresh()
    t = say(assistant, s, "set a timer")
    assert t.outcome.reply_type == "elicit" and s.dialogue.pending.intent == "SetTimer"
    t = say(assistant, s, "actually, set an alarm for 7 am")
    assert t.outcome.intent == "SetAlarm" and t.outcome.args["time"] == "07:00"
    assert s.dialogue.pending is None and s.world.get("alarms")[0]["time"] == "07:00"
    # the timer question is gone: a duration now is not its answer
    t = say(assistant, s, "ten minutes")
    assert t.outcome.intent != "SetTimer" and s.world.get("timers") == []


def test_a_correction_redoes_the_last_request_with_the_new_slot(assistant, fresh):
    s = fresh()
    t = say(assistant, s, "turn on the kitchen lights")
    assert s.world.get("devices.kitchen_light.power") == "on"
    t = say(assistant, s, "no, the bedroom")
    assert t.outcome.intent == "TurnOn" and dict(t.outcome.args) == {"device": "light", "room": "bedroom"}
    assert "device" in t.resolution.carried
    assert s.world.get("devices.bedroom_light.power") == "on"


def test_a_follow_up_carries_the_other_slots_over(assistant, fresh):
    s = fresh()
    t = say(assistant, s, "what's the weather in seattle")
    assert t.outcome.args["place"] == "seattle"
    t = say(assistant, s, "what about tomorrow")
    assert t.outcome.intent == "GetWeather" and t.outcome.args["place"] == "seattle"
    assert t.outcome.args["date"] == "2026-03-15" and "place" in t.resolution.carried


def test_anaphora_play_it_again(assistant, fresh):
    s = fresh()
    say(assistant, s, "play purple haze")
    assert s.world.get("player.state") == "playing"
    say(assistant, s, "stop")
    assert s.world.get("player.state") == "stopped"
    t = say(assistant, s, "play it again")
    assert t.outcome.intent == "ResumeMedia" and s.world.get("player.item") == "purple_haze"
    assert s.world.get("player.state") == "playing"


def test_elicitation_then_an_answer_with_words_around_it(assistant, fresh):
    s = fresh()
    t = say(assistant, s, "wake me up")
    assert t.outcome.reply_type == "elicit" or t.outcome.intent == "SetAlarm"
    t = say(assistant, s, "set an alarm")
    assert t.outcome.reply_type == "elicit" and t.outcome.expects == "time"
    t = say(assistant, s, "at seven thirty tomorrow evening")
    assert t.outcome.intent == "SetAlarm" and t.outcome.args["time"] == "19:30"


def test_time_and_date_said_in_words(assistant, fresh):
    s = fresh()
    t = say(assistant, s, "set an alarm for seven thirty tomorrow morning")
    assert t.outcome.intent == "SetAlarm"
    assert t.outcome.args["time"] == "07:30" and t.outcome.args["date"] == "2026-03-15"
    t = say(assistant, s, "set the thermostat to seventy two degrees")
    assert t.outcome.args["temperature"] == {"value": 72, "unit": "F"}
    # relative to the session's clock, and the moment needs no date ("in two hours" at 23:00 is tomorrow)
    t = say(assistant, fresh(), "set an alarm for two hours from now")
    assert t.outcome.intent == "SetAlarm" and dict(t.outcome.args) == {"time": "10:00"}


def test_requests_wrapped_in_filler_words(assistant, fresh):
    for text, intent in [
        ("okay um turn off the kitchen lights please", "TurnOff"),
        ("hey could you tell me what time it is", "GetTime"),
        ("so what's on my shopping list", "ReadList"),
    ]:
        t = say(assistant, fresh(), text)
        assert t.outcome.intent == intent, (text, t.interpretation.nbest[:3])


def test_a_reply_leaves_out_the_words_that_lead_up_to_a_value_not_said():
    """ "I couldn't find a {device} in the {room}." for a request without a room said "… in the.";
    the article goes with the value's first sound."""
    from core.templates import render

    template = "I couldn't find a {device} in the {room}."
    assert render(template, {"device": "overhead"}, {}) == "I couldn't find an overhead."
    assert render(template, {"device": "unit"}, {}) == "I couldn't find a unit."
    assert render("Setting a {duration} timer.", {"duration": "one minute"}, {}) == "Setting a one minute timer."
    assert render("Setting a {duration} timer.", {"duration": "eight minute"}, {}) == "Setting an eight minute timer."
    assert render(template, {"device": "fan", "room": "den"}, {}) == "I couldn't find a fan in the den."
    assert render("Added {item} to your {list} list.", {"item": "milk"}, {}) == "Added milk to your list."

"""Typed requests through the real NLU (trained from the home spec), resolver and responder."""

from __future__ import annotations

import pytest

from tests.conftest import say

pytestmark = pytest.mark.models


def test_lights_by_room_and_anaphora(assistant, fresh):
    s = fresh()
    t = say(assistant, s, "turn on the bedroom lights")
    assert t.outcome.intent == "TurnOn" and dict(t.outcome.args) == {"device": "light", "room": "bedroom"}
    assert s.world.get("devices.bedroom_light.power") == "on"
    t = say(assistant, s, "turn them off")
    assert t.outcome.intent == "TurnOff" and set(t.resolution.carried) == {"device", "room"}
    assert s.world.get("devices.bedroom_light.power") == "off"


def test_missing_slot_is_elicited_then_filled(assistant, fresh):
    s = fresh()
    t = say(assistant, s, "set a timer")
    assert t.outcome.reply_type == "elicit" and t.outcome.expects == "duration"
    t = say(assistant, s, "ten minutes")
    assert t.outcome.intent == "SetTimer" and t.outcome.args["duration"] == 600
    assert len(s.world.get("timers")) == 1


def test_temperature_means_the_oven_when_the_oven_is_on(assistant, fresh):
    s = fresh()
    assert say(assistant, s, "what's the temperature").outcome.args["device"] == "thermostat"
    say(assistant, s, "turn on the oven")
    t = say(assistant, s, "what's the temperature")
    assert t.outcome.args["device"] == "oven" and "oven" in t.outcome.reply


@pytest.mark.parametrize("screen, expected", [(True, "harry_potter_movie"), (False, "harry_potter_audiobook")])
def test_play_harry_potter_depends_on_the_screen(assistant, fresh, screen, expected):
    s = fresh(device={"screen": screen})
    t = say(assistant, s, "play harry potter")
    assert t.outcome.args["title"] == expected
    kinds = {c.id for c in t.resolution.entity("title").candidates}
    assert {"harry_potter_movie", "harry_potter_audiobook"} <= kinds


def test_wilkerson_follows_the_users_history(assistant, fresh):
    s = fresh(user={"history": {"place": {"wilkerson_ca": 2}}})
    assert say(assistant, s, "what's the weather in wilkerson").outcome.args["place"] == "wilkerson_ca"
    s = fresh(user={"history": {"place": {"wilkerson_wa": 1}}})
    assert say(assistant, s, "what's the weather in wilkerson").outcome.args["place"] == "wilkerson_wa"


def test_ambiguous_place_without_context_asks_and_takes_the_answer(assistant, fresh):
    s = fresh(user={"home": "seattle"})
    t = say(assistant, s, "what's the weather in springfield")
    assert t.outcome.reply_type == "clarify" and "Missouri" in t.outcome.reply
    t = say(assistant, s, "the one in missouri")
    assert t.outcome.intent == "GetWeather" and t.outcome.args["place"] == "springfield_mo"


def test_home_location_decides_springfield(assistant, fresh):
    s = fresh(user={"home": "springfield_il"})
    assert say(assistant, s, "what's the weather in springfield").outcome.args["place"] == "springfield_il"


def test_sounds_alike_artist(assistant, fresh):
    t = say(assistant, fresh(), "play jimmy hendrix")
    assert t.outcome.intent == "PlayMusic" and t.outcome.args == {"artist": "jimi_hendrix"}


def test_unlock_is_confirmed_and_can_be_declined(assistant, fresh):
    s = fresh()
    t = say(assistant, s, "unlock the front door")
    assert t.outcome.reply_type == "confirm" and s.world.get("devices.front_door.locked") is True
    t = say(assistant, s, "no")
    assert t.outcome.status == "cancelled" and s.world.get("devices.front_door.locked") is True
    say(assistant, s, "unlock the front door")
    t = say(assistant, s, "yes")
    assert t.outcome.intent == "UnlockDoor" and s.world.get("devices.front_door.locked") is False


def test_out_of_domain_is_declined(assistant, fresh):
    for text in ("what's the capital of peru", "book a table for two at an italian place"):
        t = say(assistant, fresh(), text)
        assert t.outcome.reply_type == "out_of_domain" and t.outcome.intent is None


def test_shopping_list_round_trip(assistant, fresh):
    s = fresh()
    say(assistant, s, "add milk to my shopping list")
    say(assistant, s, "put paper towels on the shopping list")
    t = say(assistant, s, "what's on my shopping list")
    assert t.outcome.reply == "Your shopping list has milk and paper towels."


def test_the_clock_is_the_sessions_not_the_machines(assistant, fresh):
    s = fresh(start_time="2026-07-04T19:45:00")
    assert say(assistant, s, "what time is it").outcome.reply == "It's 7:45 PM."

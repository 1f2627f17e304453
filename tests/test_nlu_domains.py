"""A second domain written only as a spec (core/domains/restaurant.yaml): it loads, trains and
answers through the real NLU, resolver and responder, with declarative APIs only."""

from __future__ import annotations

import pytest

from assistant.runner import Assistant
from core.domain import load_domain
from tests.conftest import say

pytestmark = pytest.mark.models


def test_the_restaurant_spec_needs_no_code():
    d = load_domain("restaurant")
    kinds = {api.kind for api in d.apis.values()}
    assert "python" not in kinds
    assert kinds == {"create", "lookup", "state", "list_add", "list_remove", "list_read"}
    # it does not decline its own kind of request
    assert not any("book a table" in s or s == "order a pizza" for s in d.out_of_domain)


@pytest.fixture(scope="module")
def restaurant(config):
    return Assistant(config.with_overrides({"session.domain": "restaurant"}))


def test_book_a_table_in_one_go(restaurant):
    s = restaurant.new_session("book")
    t = say(restaurant, s, "book a table for four at luigi's tomorrow at 7 pm")
    assert t.outcome.intent == "BookTable", t.interpretation
    assert dict(t.outcome.args) == {"restaurant": "luigis", "party_size": 4, "time": "19:00", "date": "2026-03-15"}
    assert s.world.get("reservations")[0]["restaurant"] == "luigis"
    assert t.outcome.reply == "Booked a table for 4 at Luigi's Trattoria at 7 PM tomorrow."


def test_missing_details_are_asked_for(restaurant):
    s = restaurant.new_session("elicit")
    t = say(restaurant, s, "book a table at sakura")
    assert t.outcome.reply_type == "elicit" and t.outcome.expects == "party_size"
    t = say(restaurant, s, "four people")
    assert t.outcome.reply_type == "elicit" and t.outcome.expects == "time"
    t = say(restaurant, s, "eight thirty pm")
    assert t.outcome.intent == "BookTable" and t.outcome.args["party_size"] == 4
    assert t.outcome.args["time"] == "20:30" and t.outcome.args["restaurant"] == "sakura"
    assert len(s.world.get("reservations")) == 1


def test_lookups_and_state_changes(restaurant):
    s = restaurant.new_session("look")
    t = say(restaurant, s, "when does golden dragon open")
    assert t.outcome.intent == "GetHours" and t.outcome.reply == "Golden Dragon is open from noon to 11 PM."
    t = say(restaurant, s, "find me a sushi place")
    assert t.outcome.intent == "FindRestaurant" and "Sakura Sushi" in t.outcome.reply
    t = say(restaurant, s, "save el toro to my favorites")
    assert t.outcome.intent == "SaveFavorite" and s.world.get("restaurants.el_toro.favorite") is True


def test_a_takeout_order_list(restaurant):
    s = restaurant.new_session("order")
    say(restaurant, s, "add spring rolls to my order")
    say(restaurant, s, "i'll have the fried rice")
    t = say(restaurant, s, "what's in my order")
    assert t.outcome.reply == "Your order has spring rolls and fried rice."
    say(restaurant, s, "remove the spring rolls from my order")
    assert s.world.get("lists.order") == ["fried rice"]


def test_other_domains_requests_are_declined(restaurant):
    for text in ("turn on the kitchen lights", "what's the capital of peru"):
        t = say(restaurant, restaurant.new_session("ood"), text)
        assert t.outcome.reply_type == "out_of_domain", (text, t.interpretation.nbest[:2])

"""Honest judging (a sorry, a decline or an unasked-for question is never correct) and literal
catalogs, whose values differ only by a leading word ("milk", "some milk")."""

from __future__ import annotations

import logging

import pytest

from assistant.runner import Assistant
from core.config import Config
from core.correctness import judge
from core.domain import load_domain
from core.errors import InputError
from core.records import Interpretation, Outcome, Slot, frozen_map
from core.session import Gold, Turn
from stages.resolve import ResolveOptions, Resolver, catalog_collisions

# --- judge -------------------------------------------------------------------------------

TIMER = Gold(transcript="set a timer for ten minutes", intent="SetTimer", slots={"duration": 600}, wake=True)
BARE_TIMER = Gold(transcript="set a timer", intent="SetTimer", wake=True)  # duration not said
ASKED_TIMER = Gold(transcript="set a timer", intent="SetTimer", wake=True, reply_type="elicit")
MILK = Gold(transcript="add milk to my shopping list", intent="AddToList", entities={"item": "milk"}, wake=True)


def judged(gold: Gold, **outcome) -> bool | None:
    return judge(Turn(session="s", index=1, gold=gold, outcome=Outcome(**outcome)))


def test_the_matching_action_is_correct():
    assert judged(TIMER, intent="SetTimer", args=frozen_map({"duration": 600}), reply_type="action") is True
    assert judged(MILK, intent="AddToList", args=frozen_map({"item": "milk"}), status="unchanged") is True


@pytest.mark.parametrize(
    "outcome",
    [
        # the request was understood, and yet the user got a "sorry"
        dict(
            intent="AddToList",
            args=frozen_map({"item": "milk"}),
            status="not_found",
            reply_type="apology",
            reply="Sorry, I couldn't find that.",
        ),
        dict(intent="AddToList", args=frozen_map({"item": "milk"}), status="failed", reply_type="apology"),
        dict(intent=None, status="error", reply_type="apology"),
        dict(intent=None, status="unsupported", reply_type="out_of_domain"),
        # a question about what the user did say
        dict(intent="AddToList", status="elicit", reply_type="elicit", expects="item"),
        dict(
            intent="AddToList",
            status="clarify",
            reply_type="clarify",
            expects="item",
            reply="Did you mean some milk or milk?",
        ),
    ],
)
def test_sorry_decline_and_unasked_questions_are_wrong(outcome):
    assert judged(MILK, **outcome) is False


def test_an_apology_for_an_understood_request_is_wrong_even_with_matching_args():
    # Before: intent and args matched the gold, so "Sorry, I couldn't find that" counted as correct.
    out = dict(intent="AddToList", args=frozen_map({"item": "milk"}), status="not_found", reply_type="apology")
    assert judged(MILK, **out) is False
    assert judged(Gold(intent="AddToList", entities={"item": "milk"}, reply_type="apology"), **out) is True


def test_an_expected_question_is_correct():
    elicit = dict(intent="SetTimer", status="elicit", reply_type="elicit", expects="duration")
    assert judged(ASKED_TIMER, **elicit) is True  # the gold says a question is right
    assert judged(BARE_TIMER, **elicit) is True  # the user left out a required slot
    assert judged(TIMER, **elicit) is False  # the user said it: asking is a miss
    assert judged(ASKED_TIMER, intent="SetTimer", args=frozen_map({"duration": 600})) is False
    confirm = dict(
        intent="UnlockDoor",
        args=frozen_map({"device": "lock"}),
        status="confirm",
        reply_type="confirm",
        expects="confirmation",
    )
    assert judged(Gold(intent="UnlockDoor", entities={"device": "lock"}, reply_type="confirm"), **confirm) is True
    assert judged(Gold(intent="UnlockDoor", entities={"device": "lock"}, reply_type="action"), **confirm) is False


def test_out_of_domain_gold_wants_the_decline():
    ood = Gold(transcript="tell me a joke", out_of_domain=True)
    assert judged(ood, intent=None, status="unsupported", reply_type="out_of_domain") is True
    assert judged(ood, intent="GetTime", reply_type="answer") is False


# --- literal catalogs --------------------------------------------------------------------

PANTRY = """\
domain: pantry
entities:
  item:
    {flags}
    values:
      - {{id: milk, name: milk}}
      - {{id: some_milk, name: some milk}}
      - {{id: sugar, name: sugar}}
      - {{id: some_sugar, name: some sugar}}
intents:
  AddToList:
    slots:
      item: {{type: item, required: true, prompt: "What should I add?"}}
    api: list_add
    samples:
      - "add {{item}} to my shopping list"
apis:
  list_add:
    list_add: {{list: lists.shopping, value: "{{item}}"}}
world:
  lists: {{shopping: []}}
"""


def pantry(tmp_path, flags: str, name: str = "pantry.yaml"):
    path = tmp_path / name
    path.write_text(PANTRY.format(flags=flags), encoding="utf-8")
    return load_domain(path)


class ScriptedNlu:
    """ "add X to my shopping list" → AddToList with item X, as tests/test_resolve_context.py does."""

    name = "nlu"

    def __init__(self, domain):
        self.domain = domain

    def run(self, transcript, ctx):
        text = transcript.text
        words = text.removeprefix("add ").removesuffix(" to my shopping list")
        start = text.find(words)
        slot = Slot(name="item", text=words, value=words, type="item", start=start, end=start + len(words))
        return Interpretation(text=text, domain=self.domain.name, intent="AddToList", confidence=0.99, slots=(slot,))


def scripted(domain_path) -> Assistant:
    a = Assistant(Config.load(None, {"session.domain": str(domain_path), "resolve.embedding": False}))
    a.stages.override("nlu", ScriptedNlu(a.domain))
    return a


def add(a, session, words):
    return a.run_turn(session, a.text_turn(session, f"add {words} to my shopping list"), start="nlu", stop="respond")


def test_a_literal_catalog_tells_some_milk_from_milk(tmp_path):
    domain = pantry(tmp_path, "literal: true")
    assert domain.catalogs["item"].literal and not domain.catalogs["item"].open
    a = scripted(tmp_path / "pantry.yaml")
    s = a.new_session("literal")
    for words, expected in (
        ("some milk", "some_milk"),
        ("milk", "milk"),
        ("some sugar", "some_sugar"),
        ("sugar", "sugar"),
        ("Some  Milk", "some_milk"),
        # words no value has are dropped only as far as a value as said
        ("the milk", "milk"),
        ("the some sugar", "some_sugar"),
    ):
        t = add(a, s, words)
        e = t.resolution.entity("item")
        assert t.resolution.clarification is None, (words, t.outcome.reply)
        assert (e.id, e.method) == (expected, "exact"), words
        assert [c.id for c in e.candidates] == [expected]  # no sounds-alike rival
        assert t.outcome.reply_type == "action" and t.outcome.args["item"] == expected
    assert s.world.get("lists.shopping") == ["some milk", "milk", "some sugar", "sugar"]  # no duplicates


def test_without_literal_the_leading_word_is_dropped_and_the_values_collide(tmp_path, caplog):
    domain = pantry(tmp_path, "literal: false", name="loose.yaml")
    assert catalog_collisions(domain) == [
        ("item", "milk", ("milk", "some_milk")),
        ("item", "sugar", ("sugar", "some_sugar")),
    ]
    with caplog.at_level(logging.WARNING, logger="stages.resolve"):
        Resolver(domain, ResolveOptions(embedding=False))
        Resolver(domain, ResolveOptions(embedding=False))  # once per loaded domain
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "no context rule" in r.message]
    assert len(warnings) == 1 and "'milk': milk, some_milk" in warnings[0].message
    a = scripted(tmp_path / "loose.yaml")
    t = add(a, a.new_session("loose"), "some milk")
    assert t.outcome.reply_type == "clarify"  # "Did you mean milk or some milk?"


def test_a_literal_open_catalog_keeps_unknown_words_whole(tmp_path):
    pantry(tmp_path, "literal: true\n    open: true")
    a = scripted(tmp_path / "pantry.yaml")
    t = add(a, a.new_session("open"), "some flour")
    assert t.outcome.args["item"] == "some flour" and t.resolution.entity("item").method == "open"


def test_literal_must_be_a_boolean(tmp_path):
    with pytest.raises(InputError) as err:
        pantry(tmp_path, 'literal: "false"', name="quoted.yaml")
    assert "entities.item.literal" in str(err.value)
    with pytest.raises(InputError) as err:
        pantry(tmp_path, "literl: true", name="typo.yaml")
    assert "literl" in str(err.value)


def test_collisions_list_the_home_titles_and_nothing_for_a_literal_catalog(tmp_path, caplog):
    home = load_domain("home")
    found = {(t, p): ids for t, p, ids in catalog_collisions(home)}
    assert found[("title", "harry potter")] == ("harry_potter_book", "harry_potter_audiobook", "harry_potter_movie")
    assert ("title", "dune") in found and ("place", "springfield") in found
    assert catalog_collisions(pantry(tmp_path, "literal: true")) == []
    # The home collisions are on purpose, settled by context rules (screen, home region): no warning.
    with caplog.at_level(logging.WARNING, logger="stages.resolve"):
        Resolver(home, ResolveOptions(embedding=False))
    assert not [r for r in caplog.records if "no context rule" in r.message]

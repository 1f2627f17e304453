"""Oracle failure points by counterfactual gold substitution: one turn per class."""

from __future__ import annotations

import pytest

from assistant.runner import Assistant
from core.audio import Audio
from core.records import Transcript, Utterance
from core.session import Gold, Turn
from hooks.bus import HookBus
from sim.faults import FaultInjector, FaultSpec
from sim.oracle import OracleLabeler

pytestmark = pytest.mark.models


class HeardAs:
    """An ASR double that hears a fixed text (the error under test)."""

    name = "asr"

    def __init__(self, text):
        self.text = text

    def run(self, utterance, ctx):
        return Transcript(text=self.text, avg_logprob=-0.3, model="test")


class Asleep:
    name = "wake"

    def run(self, utterance, ctx):
        from dataclasses import replace

        return replace(utterance, endpoint="no_wake")


def labeler(assistant, faults="", asr_text=None, asleep=False):
    a = Assistant(assistant.config, HookBus())
    for name in ("nlu", "resolve", "respond"):
        a.stages.override(name, assistant.stages[name])
    if asr_text is not None:
        a.stages.override("asr", HeardAs(asr_text))
    if asleep:
        a.stages.override("wake", Asleep())
    spec = FaultSpec.parse(faults)
    a.bus.add_interceptor(FaultInjector(spec, a.domain, seed=5))
    a.bus.add_interceptor(
        OracleLabeler(
            a, replay_faults=lambda kinds: FaultInjector(FaultSpec({k: 1.0 for k in kinds}), a.domain, seed=5)
        )
    )
    return a


def run(a, gold, start="asr", text=None, **session):
    s = a.new_session("oracle", **session)
    utt = Utterance(audio=Audio.silence(0.5), spoken=gold.transcript)
    turn = Turn(
        session=s.id,
        index=1,
        start_s=1.0,
        utterance=utt if start in ("wake", "asr") else None,
        text_input=text,
        gold=gold,
    )
    return a.run_turn(s, turn, start=start, stop="respond")


KITCHEN = Gold(
    transcript="turn on the kitchen lights",
    intent="TurnOn",
    entities={"device": "light", "room": "kitchen"},
    act="TurnOn",
    wake=True,
    spans=(("room", "kitchen", "kitchen"), ("device", "lights", "light")),
)


def label(turn):
    return turn.labels["oracle"]["failure_point"]


def test_an_asr_error_the_pipeline_recovers_from_is_correct(assistant):
    t = run(labeler(assistant, asr_text="Turn on a kitchen light."), KITCHEN)
    assert t.transcript.text != KITCHEN.transcript
    assert label(t) == "correct" and t.labels["oracle"]["defect"] is False


def test_asr(assistant):
    t = run(labeler(assistant, asr_text="Turn off the kitchen lights."), KITCHEN)
    assert t.outcome.intent == "TurnOff" and label(t) == "asr"


def test_wake_missed(assistant):
    t = run(labeler(assistant, asr_text="turn on the kitchen lights", asleep=True), KITCHEN, start="wake")
    assert t.outcome is None and label(t) == "wake"


def test_wake_false_accept(assistant):
    gold = Gold(transcript="we should go to the park", wake=False)
    t = run(labeler(assistant, asr_text="we should go to the park"), gold)
    assert label(t) == "wake"


def test_nlu(assistant):
    t = run(labeler(assistant, faults="nlu=1", asr_text="turn on the kitchen lights"), KITCHEN)
    assert t.labels["faults"][0].startswith("nlu:") and label(t) == "nlu"


def test_an_injected_wrong_intent_looks_like_a_real_misclassification(assistant):
    """The wrong intent takes the top score and the right one the runner-up's: the n-best stays
    in order with its usual gap, so a fault is not told apart by a tie at the top."""
    a = labeler(assistant, asr_text="turn on the kitchen lights")
    honest = run(a, KITCHEN).interpretation
    for seed in range(12):  # half of NLU faults drop a slot instead; find a swapped intent
        a = Assistant(assistant.config, HookBus())
        a.stages.override("nlu", assistant.stages["nlu"])
        a.stages.override("asr", HeardAs("turn on the kitchen lights"))
        a.bus.add_interceptor(FaultInjector(FaultSpec.parse("nlu=1"), a.domain, seed=seed))
        wrong = run(a, KITCHEN).interpretation
        if wrong.intent != honest.intent:
            break
    assert wrong.intent != "TurnOn" and [x.intent for x in wrong.nbest][:2] == [wrong.intent, "TurnOn"]
    assert [x.score for x in wrong.nbest] == [x.score for x in honest.nbest]
    assert wrong.nbest[0].score > wrong.nbest[1].score


def test_resolve(assistant):
    gold = Gold(
        transcript="what's the weather in springfield",
        intent="GetWeather",
        entities={"place": "springfield_mo"},
        act="GetWeather",
        wake=True,
        spans=(("place", "springfield", "springfield_mo"),),
    )
    t = run(labeler(assistant, asr_text="What's the weather in Springfield?"), gold, user={"home": "springfield_il"})
    assert t.outcome.args["place"] == "springfield_il" and label(t) == "resolve"


def test_result(assistant):
    t = run(labeler(assistant, faults="result=1", asr_text="turn on the kitchen lights"), KITCHEN)
    assert t.outcome.status == "failed" and label(t) == "result"


def test_text_turns_start_at_nlu_and_are_labeled_too(assistant):
    t = run(labeler(assistant), KITCHEN, start="nlu", text="turn on the kitchen lights")
    assert label(t) == "correct"


def test_world_copies_are_deep_and_equal_to_deepcopy():
    import copy
    from collections import OrderedDict
    from types import MappingProxyType

    from core.world import copy_tree

    tree = {
        "devices": {"lamp": {"power": "on", "level": 0.5, "tags": ["a", {"b": None}]}},
        "timers": [],
        "proxy": MappingProxyType({"x": [1, 2]}),
        "ordered": OrderedDict(k=True),
        "pair": (1, [2]),
        "n": 3,
    }
    copied = copy_tree(tree)
    assert copied == copy.deepcopy({**tree, "proxy": {"x": [1, 2]}, "ordered": {"k": True}})
    assert type(copied["proxy"]) is dict and type(copied["ordered"]) is dict
    copied["devices"]["lamp"]["tags"][1]["b"] = 1
    copied["pair"][1].append(3)
    copied["proxy"]["x"].append(3)
    assert tree["devices"]["lamp"]["tags"][1] == {"b": None} and tree["pair"] == (1, [2])
    assert tree["proxy"]["x"] == [1, 2]

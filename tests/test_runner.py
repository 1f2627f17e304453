"""Runner guarantees: bracketed stages, contained failures, harmless observers, interceptors.

The stages here are small test doubles so that these properties are checked in isolation;
the real models are exercised in test_pipeline.py and test_integration.py.
"""

from __future__ import annotations

import logging

import pytest

from assistant.runner import Assistant
from core.audio import Audio
from core.config import Config
from core.records import Interpretation, Speech
from hooks.bus import HookBus, Interceptor


class Recorder:
    def __init__(self):
        self.events = []

    def on_event(self, event):
        self.events.append(event)


class EchoNlu:
    name = "nlu"

    def __init__(self, fail_on=None):
        self.fail_on = fail_on

    def run(self, transcript, ctx):
        if transcript.text == self.fail_on:
            raise RuntimeError("boom")
        return Interpretation(text=transcript.text, domain="home", intent="GetTime", confidence=0.9)


class Say:
    name = "tts"

    def run(self, outcome, ctx):
        return Speech(text=outcome.reply, audio=Audio.silence(0.1), backend="test", voice="test")


@pytest.fixture()
def runner():
    bus = HookBus()
    rec = bus.add_observer(Recorder())
    a = Assistant(Config.load(None, {}), bus)
    a.stages.override("nlu", EchoNlu(fail_on="second"))
    a.stages.override("tts", Say())
    return a, rec


def test_a_failing_stage_ends_its_turn_gracefully_and_the_session_goes_on(runner):
    a, rec = runner
    s = a.new_session("s")
    turns = [a.run_turn(s, a.text_turn(s, t), start="nlu") for t in ("first", "second", "third", "fourth")]
    assert [bool(t.errors) for t in turns] == [False, True, False, False]
    failed = turns[1]
    assert failed.errors[0].code == "nlu-failed" and "boom" in failed.errors[0].message
    assert failed.outcome.reply_type == "apology" and failed.speech is not None
    assert all(t.outcome.intent == "GetTime" and "It's" in t.outcome.reply for t in (turns[0], turns[2], turns[3]))
    kinds = [(e.kind, e.stage) for e in rec.events if e.turn == 2]
    assert ("stage_error", "nlu") in kinds and ("stage_end", "tts") in kinds and kinds[-1] == ("turn_end", None)


def test_every_stage_start_has_an_end_or_error(runner):
    a, rec = runner
    s = a.new_session("s")
    for t in ("first", "second", "third"):
        a.run_turn(s, a.text_turn(s, t), start="nlu")
    open_stages = {}
    for e in rec.events:
        key = (e.turn, e.stage)
        if e.kind == "stage_start":
            assert key not in open_stages
            open_stages[key] = e
        elif e.kind in ("stage_end", "stage_error"):
            assert open_stages.pop(key) is not None
    assert not open_stages
    assert sum(e.kind == "turn_end" for e in rec.events) == 3


def test_a_raising_observer_is_disabled_once_and_never_breaks_the_turn(runner, caplog):
    a, rec = runner

    class Broken:
        calls = 0

        def on_event(self, event):
            Broken.calls += 1
            raise ValueError("observer bug")

    a.bus.add_observer(Broken())
    s = a.new_session("s")
    with caplog.at_level(logging.WARNING):
        t1 = a.run_turn(s, a.text_turn(s, "first"), start="nlu")
        t2 = a.run_turn(s, a.text_turn(s, "third"), start="nlu")
    assert not t1.errors and not t2.errors
    assert Broken.calls == 1
    assert sum("disabled" in r.message for r in caplog.records) == 1


def test_interceptors_replace_outputs_and_their_failures_are_stage_errors(runner):
    a, rec = runner

    class Gold(Interceptor):
        def before(self, stage, data, ctx):
            if stage == "nlu":
                return Interpretation(text="x", domain="home", intent="GetTime", confidence=1.0)
            return None

    class Bad(Interceptor):
        def after(self, stage, data, output, ctx):
            if stage == "resolve":
                return "not a resolution"
            return output

    s = a.new_session("s")
    gold = a.bus.add_interceptor(Gold())
    t = a.run_turn(s, a.text_turn(s, "second"), start="nlu")  # the failing NLU never runs
    assert not t.errors and t.interpretation.text == "x"
    a.bus.remove_interceptor(gold)
    a.bus.add_interceptor(Bad())
    t = a.run_turn(s, a.text_turn(s, "first"), start="nlu")
    assert t.errors[0].code == "resolve-failed" and "not a resolution" not in (t.outcome.reply or "")


def test_start_and_stop_anywhere(runner):
    a, rec = runner
    s = a.new_session("s")
    t = a.run_turn(s, a.text_turn(s, "first"), start="nlu", stop="resolve")
    assert t.resolution is not None and t.outcome is None and t.speech is None
    assert set(t.ms) == {"nlu", "resolve"}
    with pytest.raises(ValueError):
        a.run_turn(s, a.text_turn(s, "x"), start="tts", stop="nlu")


def test_stage_timeouts_fail_with_a_timeout_code():
    import time

    class Slow(EchoNlu):
        def run(self, transcript, ctx):
            time.sleep(0.5)
            return super().run(transcript, ctx)

    a = Assistant(Config.load(None, {"timeouts.nlu": "0.05"}))
    a.stages.override("nlu", Slow())
    a.stages.override("tts", Say())
    s = a.new_session("s")
    t = a.run_turn(s, a.text_turn(s, "first"), start="nlu")
    assert t.errors[0].code == "nlu-timeout"
    assert t.outcome.reply_type == "apology"


def test_records_are_frozen(runner):
    a, _ = runner
    s = a.new_session("s")
    t = a.run_turn(s, a.text_turn(s, "first"), start="nlu")
    with pytest.raises(AttributeError):
        t.outcome.reply = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        t.outcome.args["x"] = 1  # type: ignore[index]


class _CountingListener:
    """Says a command on every third chunk; fails on the chunk "boom"."""

    def __init__(self):
        self.fed = 0

    def feed(self, chunk):
        if chunk == "boom":
            raise RuntimeError("listener broke")
        self.fed += 1
        return [f"cmd{self.fed}"] if self.fed % 3 == 0 else []

    def finish(self):
        return ["last"]


def test_listening_ahead_yields_every_command_in_order_and_stops_with_its_consumer():
    import threading

    from assistant.runner import listen_ahead

    got = [cmd for cmd, _ms, _t0 in listen_ahead(_CountingListener(), iter(range(9)))]
    assert got == ["cmd3", "cmd6", "cmd9", "last"]

    listener = _CountingListener()
    ahead = listen_ahead(listener, iter(range(10_000)), depth=2)
    assert next(ahead)[0] == "cmd3"
    ahead.close()  # the consumer stops: the feeding thread ends too
    assert not any(t.name == "listen-ahead" for t in threading.enumerate())
    assert listener.fed < 10_000

    with pytest.raises(RuntimeError, match="listener broke"):
        list(listen_ahead(_CountingListener(), iter([1, 2, "boom", 3])))


def test_interceptors_added_or_removed_between_turns_take_effect():
    class Upper(Interceptor):
        def after(self, stage, stage_input, output, ctx):
            return output.upper() if stage == "x" else output

    bus = HookBus()
    assert bus.after("x", None, "a", None) == "a"
    upper = bus.add_interceptor(Upper())
    assert bus.after("x", None, "a", None) == "A"
    bus.remove_interceptor(upper)
    assert bus.after("x", None, "a", None) == "a"

"""Self-learning: the rewrite step, rewrites learned from rephrase chains, retrieval, label
transfer and taught concepts (docs/self-learning.md). Hand-built traces and test doubles for
the stages, so that each property is checked in isolation and fast."""
from __future__ import annotations

import json

import pytest

from assistant.audio import Audio
from assistant.config import Config
from assistant.records import Interpretation, Speech
from assistant.rewriting import TABLE_FORMAT
from assistant.runner import Assistant
from hooks.bus import HookBus
from hooks.traces import read_records, validation_errors


class EchoNlu:
    """Understands one sentence ("turn on the lights"); anything else is out of domain."""

    def __init__(self):
        self.read = []

    def run(self, transcript, ctx):
        self.read.append(transcript.text)
        ok = transcript.text == "turn on the lights"
        return Interpretation(text=transcript.text, domain="home", intent="TurnOn" if ok else None,
                              confidence=0.9 if ok else 0.1, out_of_domain=not ok)


class Say:
    def run(self, outcome, ctx):
        return Speech(text=outcome.reply, audio=Audio.silence(0.1), backend="test", voice="test")


def _table(tmp_path, rows, threshold=0.5):
    path = tmp_path / "rewrites.json"
    path.write_text(json.dumps({"format": TABLE_FORMAT, "threshold": threshold, "rewrites": rows}))
    return path


def _assistant(values):
    a = Assistant(Config.load(None, values), HookBus())
    nlu = EchoNlu()
    a.stages.override("nlu", nlu)
    a.stages.override("tts", Say())
    return a, nlu


def test_the_rewrite_step_is_off_without_an_artifact_and_traced_like_a_stage_with_one(tmp_path):
    a, nlu = _assistant({})
    assert a.rewriter is None
    table = _table(tmp_path, [{"from": "turn on the lice", "to": "turn on the lights", "probability": 0.9,
                               "support": 3}])
    b, nlu_b = _assistant({"rewrite.artifacts": str(table), "trace.audio": False})
    b.trace_to(tmp_path / "traces")
    s = b.new_session("s1")
    turn = b.run_turn(s, b.text_turn(s, "Turn on the lice"), start="nlu", stop="respond")
    b.run_turn(s, b.text_turn(s, "what time is it"), start="nlu", stop="respond")
    b.end_session(s)
    assert nlu_b.read == ["turn on the lights", "what time is it"]
    assert turn.rewrite.original == "Turn on the lice" and turn.interpretation.text == "turn on the lights"
    assert turn.rewrite.source == "table" and turn.rewrite.score == 0.9 and turn.rewrite.support == 3
    records = read_records(tmp_path / "traces" / "s1.jsonl")
    stages = [(r["event"], r["stage"]) for r in records if r["event"].startswith("stage") and r["turn"] == 1]
    assert stages[:2] == [("stage_start", "rewrite"), ("stage_end", "rewrite")]
    end = next(r for r in records if r["event"] == "stage_end" and r["stage"] == "rewrite")
    assert end["output"]["original"] == "Turn on the lice" and end["output"]["text"] == "turn on the lights"
    assert end["signals"] == {"changed": True, "source": "table", "score": 0.9}
    turn_end = next(r for r in records if r["event"] == "turn_end" and r["turn"] == 1)
    assert turn_end["rewrite"]["source"] == "table"
    assert all(not validation_errors(r) for r in records)


def test_a_rewrite_below_the_threshold_is_not_applied(tmp_path):
    table = _table(tmp_path, [{"from": "turn on the lice", "to": "turn on the lights", "probability": 0.4,
                               "support": 3}], threshold=0.5)
    a, nlu = _assistant({"rewrite.artifacts": str(table)})
    s = a.new_session("s")
    turn = a.run_turn(s, a.text_turn(s, "turn on the lice"), start="nlu", stop="respond")
    assert nlu.read == ["turn on the lice"] and not turn.rewrite.changed


def test_a_bad_artifact_is_named(tmp_path):
    from assistant.errors import InputError

    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="bad.json"):
        _assistant({"rewrite.artifacts": str(bad)})

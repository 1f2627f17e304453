"""Traces: complete, schema-valid, durable under kill -9, exportable, with implicit signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from assistant.runner import Assistant
from core.audio import Audio
from core.config import Config
from core.records import Interpretation, Speech
from hooks import trace_reader as traces
from hooks.signals import session_signals
from tests.conftest import RECORDINGS, ROOT


def check_complete(path):
    records = traces.read_records(path)
    open_stages, turns_started, turn_ends = {}, set(), set()
    for r in records:
        assert traces.validation_errors(r) == [], (r["event"], traces.validation_errors(r))
        key = (r["turn"], r["stage"])
        if r["event"] == "stage_start":
            assert key not in open_stages
            open_stages[key] = r
        elif r["event"] in ("stage_end", "stage_error"):
            assert open_stages.pop(key, None) is not None, key
        elif r["event"] == "turn_start":
            turns_started.add(r["turn"])
        elif r["event"] == "turn_end":
            turn_ends.add(r["turn"])
    assert not open_stages
    assert turns_started == turn_ends and turns_started
    assert records[0]["event"] == "session_start" and records[-1]["event"] == "session_end"
    return records


@pytest.mark.models
def test_replay_traces_are_complete_and_valid(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant",
            "replay",
            str(RECORDINGS / "continuous"),
            str(RECORDINGS / "real-speech"),
            "--trace",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    files = sorted(tmp_path.glob("*.jsonl"))
    assert [f.stem for f in files] == ["continuous", "real-speech"]
    for f in files:
        records = check_complete(f)
        ends = [r for r in records if r["event"] == "turn_end"]
        for r in ends:
            for _kind, ref in r["audio"].items():
                assert (f.parent / ref).is_file(), ref
    cont = [r for r in traces.read_records(tmp_path / "continuous.jsonl") if r["event"] == "turn_end"]
    assert len(cont) == 4 and all(r["wake"]["word"] == "alexa" for r in cont)
    assert {r["stage"] for r in traces.read_records(tmp_path / "continuous.jsonl") if r["event"] == "stage_end"} == {
        "wake",
        "asr",
        "nlu",
        "resolve",
        "respond",
        "tts",
    }
    # the trace's turn_end and the --json line describe the same turn
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [(r["transcript"], r["intent"]) for r in cont] == [(x["transcript"], x["intent"]) for x in lines[:4]]


class FailOnSecond:
    name = "nlu"

    def __init__(self, real):
        self.real = real
        self.calls = 0

    def run(self, transcript, ctx):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("injected failure")
        return self.real.run(transcript, ctx)


@pytest.mark.models
def test_a_stage_failing_on_turn_2_of_4_is_traced_and_the_rest_complete(tmp_path, assistant):
    a = Assistant(assistant.config)
    a.stages.override("nlu", FailOnSecond(assistant.stages["nlu"]))
    a.stages.override("tts", assistant.stages["tts"])
    a.trace_to(tmp_path)
    s = a.new_session("fault")
    for text in ("turn on the kitchen lights", "what time is it", "add eggs to my shopping list", "stop"):
        a.run_turn(s, a.text_turn(s, text), start="nlu")
    a.end_session(s)
    records = check_complete(tmp_path / "fault.jsonl")
    errors = [r for r in records if r["event"] == "stage_error"]
    assert [(r["turn"], r["stage"], r["error"]["code"]) for r in errors] == [(2, "nlu", "nlu-failed")]
    ends = {r["turn"]: r for r in records if r["event"] == "turn_end"}
    assert ends[2]["reply_type"] == "apology" and ends[2]["errors"][0]["code"] == "nlu-failed"
    assert "reply" in ends[2]["audio"]
    assert [ends[t]["intent"] for t in (1, 3, 4)] == ["TurnOn", "AddToList", "Stop"]


@pytest.mark.models
def test_kill_9_leaves_a_trace_that_parses_to_its_last_line(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assistant",
            "replay",
            str(RECORDINGS / "home-demo"),
            "--trace",
            str(tmp_path),
            "--stop",
            "respond",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    path = tmp_path / "home-demo.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if path.is_file() and path.read_bytes().count(b"\n") >= 40:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    data = path.read_bytes()
    assert data.count(b"\n") >= 40 and data.endswith(b"\n")
    for line in data.splitlines():
        assert traces.validation_errors(json.loads(line)) == []
    events = [json.loads(line)["event"] for line in data.splitlines()]
    assert "session_end" not in events and "turn_end" in events


def test_a_torn_last_line_is_skipped_and_other_damage_is_named(tmp_path):
    good = {
        "schema": "assistant.trace/1",
        "session": "s",
        "turn": None,
        "stage": None,
        "event": "session_start",
        "t": 1.0,
        "meta": {},
    }
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(good) + "\n" + '{"schema": "assistant.tr')
    assert traces.read_records(path) == [good]
    path.write_text("not json\n" + json.dumps(good) + "\n")
    with pytest.raises(Exception, match="line 1"):
        traces.read_records(path)


@pytest.mark.models
def test_parquet_export_round_trips_every_turn_end_field(tmp_path, assistant):
    a = Assistant(assistant.config)
    for name in ("nlu", "tts"):
        a.stages.override(name, assistant.stages[name])
    a.trace_to(tmp_path / "traces")
    s = a.new_session("pq", user={"history": {"place": {"wilkerson_ca": 1}}})
    for text in ("what's the weather in wilkerson", "set a timer", "ten minutes", "tell me a joke"):
        a.run_turn(s, a.text_turn(s, text), start="nlu")
    a.end_session(s)
    records = traces.turn_ends([tmp_path / "traces"])
    out = traces.export_parquet(records, tmp_path / "turns.parquet")
    back = traces.read_parquet(out)
    assert back == records
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert {"signal_barge_in", "oracle_failure_point", "transcript", "intent"} <= set(table.column_names)


def _turn(a, s, text, at):
    return a.run_turn(s, a.text_turn(s, text, start_s=at), start="nlu")


class Silent:
    name = "tts"

    def run(self, outcome, ctx):
        return Speech(text=outcome.reply, audio=Audio.silence(2.0), backend="test", voice="test")


@pytest.mark.models
def test_implicit_signals(assistant):
    a = Assistant(assistant.config)
    a.stages.override("nlu", assistant.stages["nlu"])
    a.stages.override("tts", Silent())
    s = a.new_session("signals")
    _turn(a, s, "play the hobbit please", 0.0)
    _turn(a, s, "play the hobbit", 1.0)  # during the 2 s reply: barge-in, rephrase
    _turn(a, s, "no that's wrong", 10.0)
    _turn(a, s, "what's the capital of peru", 20.0)  # declined, and nothing follows
    sig = session_signals(s.turns, similarity=None, ended=True)
    assert sig[0].barge_in and sig[0].next_is_rephrase and not sig[0].rephrase_of_previous
    assert sig[1].rephrase_of_previous and sig[1].repeat_count == 1 and sig[1].next_negative_feedback
    assert sig[2].negative_feedback and not sig[2].rephrase_of_previous
    assert sig[3].abandoned and sig[3].time_to_next_turn_s is None
    assert sig[1].time_to_next_turn_s > 0


def test_a_reply_that_was_not_synthesized_is_timed_from_its_text_and_can_be_barged_into():
    """Simulated turns stop before synthesis and carry a modelled latency: the reply is said
    after it, for its words' length, and a user who spoke over it barged in."""
    from core.records import Outcome
    from core.session import Turn
    from hooks.signals import SECONDS_PER_REPLY_CHAR, reply_window

    reply = Outcome(intent="PlayMedia", status="ok", reply="Playing The Hobbit.", reply_type="action")
    first = Turn(
        session="s", index=1, start_s=2.0, text_input="play the hobbit", outcome=reply, latency_s=0.6, ms={"nlu": 250.0}
    )  # measured times do not move a modelled reply
    start, end = reply_window(first)
    assert start == pytest.approx(2.6) and end == pytest.approx(2.6 + len(reply.reply) * SECONDS_PER_REPLY_CHAR)
    over = Turn(session="s", index=2, start_s=4.0, text_input="play the hobbit", barge_in=True, latency_s=0.6)
    later = Turn(session="s", index=2, start_s=end + 1.5, text_input="thanks", latency_s=0.6)
    barged, _ = session_signals([first, over], similarity=None)
    calm, _ = session_signals([first, later], similarity=None)
    assert barged.barge_in and not calm.barge_in
    assert calm.time_to_next_turn_s == pytest.approx(1.5)


def test_hooks_from_config_and_entry_points(tmp_path, monkeypatch):
    pkg = tmp_path / "demo_hook.py"
    pkg.write_text(
        "class Counter:\n"
        "    seen = []\n"
        "    def __init__(self, config):\n"
        "        self.config = config\n"
        "    def on_event(self, event):\n"
        "        Counter.seen.append(event.kind)\n"
        "class Tagger:\n"
        "    def before(self, stage, data, ctx):\n"
        "        return None\n"
        "    def after(self, stage, data, out, ctx):\n"
        "        return out\n"
        "    def finish_turn(self, turn, session):\n"
        "        import dataclasses\n"
        "        return dataclasses.replace(turn, labels={'predicted': {'failure_point': 'correct', 'defect': False}})\n"
    )
    dist = tmp_path / "demo_hook-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-hook\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[voice_assistant_sim.hooks]\ntagger = demo_hook:Tagger\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    a = Assistant(Config.load(None, {"hooks.observers": "demo_hook:Counter"}))
    assert any("demo_hook:Counter" in n for n in a.hooks) and any("tagger" in n for n in a.hooks)

    class Echo:
        name = "nlu"

        def run(self, transcript, ctx):
            return Interpretation(text=transcript.text, domain="home", intent="GetTime", confidence=1.0)

    a.stages.override("nlu", Echo())
    s = a.new_session("hooks")
    t = a.run_turn(s, a.text_turn(s, "time"), start="nlu", stop="respond")
    import demo_hook

    assert "turn_end" in demo_hook.Counter.seen
    assert t.labels["predicted"]["failure_point"] == "correct"


def test_a_bad_hook_reference_is_a_one_line_config_error():
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="no_such_module"):
        Assistant(Config.load(None, {"hooks.observers": "no_such_module:Thing"}))


@pytest.mark.models
def test_turn_end_records_reuse_stage_end_conversions_unchanged(tmp_path, assistant):
    """The tracer converts each stage output once (for stage_end) and reuses it in turn_end;
    what it writes must be what converting the finished turn afresh gives."""
    from hooks.tracer import Tracer

    a = Assistant(assistant.config)
    a.stages.override("nlu", FailOnSecond(assistant.stages["nlu"]))  # turn 2: an apology instead
    a.stages.override("tts", Silent())
    tracer = a.trace_to(tmp_path)
    s = a.new_session("reuse")
    for text in ("turn on the kitchen lights", "what time is it", "set a timer", "ten minutes"):
        a.run_turn(s, a.text_turn(s, text), start="nlu")
    a.end_session(s)
    ends = [r for r in traces.read_records(tmp_path / "reuse.jsonl") if r["event"] == "turn_end"]
    assert len(ends) == len(s.turns) == 4
    fresh = Tracer(tmp_path / "unused", audio=False, embeddings=False)
    for turn, written in zip(s.turns, ends):
        again = json.loads(
            json.dumps(fresh.turn_end_record(turn, written["signals"], written["audio"]), ensure_ascii=False)
        )
        timing = ("t", "time")
        assert {k: v for k, v in again.items() if k not in timing} == {
            k: v for k, v in written.items() if k not in timing
        }
    assert not tracer._sessions  # nothing kept once the session is written

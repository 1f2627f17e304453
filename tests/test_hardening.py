"""Nothing escapes, nothing is lost silently: paths stay in the folders the user named, bad
manifests and audio are refused by name while the other inputs run, write failures are errors
(exit 3) that leave no torn file, and simulate never mixes runs and stops cleanly on signals.

Replay runs with stand-in NLU and TTS stages (no model loads); simulate runs for real, small."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import assistant.commands.replay as replay_cmd
from assistant.cli import main
from assistant.recorded_sessions import load_recording
from assistant.runner import Assistant
from core.audio import Audio, load_audio, write_wav
from core.errors import InputError, OutputError
from core.paths import safe_name
from core.records import Interpretation, Speech
from hooks import trace_reader as traces
from hooks.tracer import LineWriter

ROOT = Path(__file__).resolve().parents[1]
ASSISTANT = ROOT / ".venv" / "bin" / "assistant"


# replay with stand-in stages -------------------------------------------------------------------


class EchoNlu:
    name = "nlu"

    def run(self, transcript, ctx):
        return Interpretation(text=transcript.text, domain="home", intent="GetTime", confidence=0.9)


class Say:
    name = "tts"

    def run(self, outcome, ctx):
        return Speech(text=outcome.reply, audio=Audio.silence(0.1), backend="test", voice="test")


class FastAssistant(Assistant):
    def __init__(self, config=None, bus=None):
        super().__init__(config, bus)
        self.stages.override("nlu", EchoNlu())
        self.stages.override("tts", Say())


@pytest.fixture()
def fast(monkeypatch):
    monkeypatch.setattr(replay_cmd, "Assistant", FastAssistant)


def cli(capsys, *args):
    """(exit code, stdout lines, stderr lines) of one `assistant` command, run in this process."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out.splitlines(), [line for line in out.err.splitlines() if line.strip()]


def session(folder: Path, manifest: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (folder / "session.json").write_text(text, encoding="utf-8")
    return folder


def text_session(folder: Path, sid: str, **extra) -> Path:
    return session(folder, {"id": sid, "turns": [{"text": "what time is it"}], **extra})


def all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


# 1. paths confined ----------------------------------------------------------------------------


def test_safe_name_keeps_safe_ids_and_disambiguates_the_rest():
    assert safe_name("home-demo") == "home-demo" and safe_name("sim-s3-00012") == "sim-s3-00012"
    names = [safe_name(i) for i in ("a/b", "a_b", "a\\b", "..", ".", "", "/abs/x", "../../x", "-rf", "x" * 400)]
    assert len(set(names)) == len(names)  # no two ids share a file
    for n in names:
        assert n and "/" not in n and "\\" not in n and not n.startswith((".", "-")) and len(n) <= 100
    assert safe_name("a/b") == safe_name("a/b")  # stable across runs


def test_session_ids_cannot_steer_replay_outputs_outside_their_folders(tmp_path, fast, capsys):
    ids = ["/abs/x", "../../x", "..", "..", "a/b", "a_b"]  # ".." twice: two inputs, one id
    folders = [text_session(tmp_path / "in" / f"s{i}", sid) for i, sid in enumerate(ids)]
    out, trace = tmp_path / "deep" / "out", tmp_path / "deep" / "trace"
    before = all_files(tmp_path)
    code, stdout, err = cli(capsys, "replay", *folders, "--out", out, "--trace", trace, "--json")
    assert code == 0, err
    created = all_files(tmp_path) - before
    assert created and all(p == out.parent or p.is_relative_to(out) or p.is_relative_to(trace) for p in created)
    assert not Path("/abs").exists()
    rows = [json.loads(line) for line in stdout]
    assert len(rows) == len(ids) and len({r["session"] for r in rows}) == len(ids)
    replies = [Path(r["reply_audio"]) for r in rows]
    assert len(set(replies)) == len(ids) and all(p.is_file() and p.is_relative_to(out) for p in replies)
    trace_files = sorted(trace.glob("*.jsonl"))
    assert len(trace_files) == len(ids)  # nothing overwritten
    assert {r["session"] for f in trace_files for r in traces.read_records(f)} == {r["session"] for r in rows}


def test_turn_audio_outside_the_session_folder_is_refused_unless_allowed(tmp_path):
    write_wav(tmp_path / "outside.wav", Audio(0.3 * np.sin(np.arange(8000) / 5.0), 16000))
    inner = tmp_path / "sessions"
    for i, ref in enumerate(["../../outside.wav", str(tmp_path / "outside.wav"), "link.wav"]):
        folder = session(inner / f"s{i}", {"id": f"s{i}", "turns": [{"audio": ref}]})
        (folder / "link.wav").symlink_to(tmp_path / "outside.wav")  # a link out counts as out
        with pytest.raises(InputError) as err:
            load_recording(folder)
        assert err.value.field == "turns[0].audio" and "outside the session folder" in str(err.value)
        assert err.value.path == str(folder / "session.json")
    stream = session(inner / "st", {"id": "st", "audio": "../../outside.wav", "turns": []})
    with pytest.raises(InputError, match="audio: .*outside"):
        load_recording(stream)
    rec = load_recording(inner / "s0", allow_outside=True)  # replay --allow-outside
    assert rec.turns[0].audio is not None


def test_a_manifest_cannot_pick_a_domain_file(tmp_path, config):
    from assistant.commands.replay import domain_for
    from assistant.recorded_sessions import load_recording as load

    for bad in ("/etc/passwd", "../../x.yaml", "_dialogue", "home.yaml"):
        rec = load(text_session(tmp_path / "x", "x", domain=bad))
        with pytest.raises(InputError) as err:
            domain_for(rec, config)
        assert err.value.field == "domain" and err.value.path.endswith("session.json")
    assert domain_for(load(text_session(tmp_path / "c", "c", domain="coffee")), config) == "coffee"
    spec = ROOT / "core" / "domains" / "restaurant.yaml"  # named on the command line: allowed
    by_flag = config.with_overrides({"session.domain": str(spec)})
    assert domain_for(load(text_session(tmp_path / "r", "r", domain=str(spec))), by_flag) == str(spec)


# 2. types validated ---------------------------------------------------------------------------

BAD_MANIFESTS = {
    "text": ({"turns": [{"text": 123}]}, "turns[0].text"),
    "audio": ({"turns": [{"audio": 42}]}, "turns[0].audio"),
    "device": ({"device": "notadict", "turns": [{"text": "hi"}]}, "device"),
    "device-screen": ({"device": {"screen": "yes"}, "turns": [{"text": "hi"}]}, "device.screen"),
    "user": ({"user": [], "turns": [{"text": "hi"}]}, "user"),
    "history": ({"user": {"history": {"place": {"x": "2"}}}, "turns": [{"text": "hi"}]}, "user.history.place.x"),
    "world": ({"world": 3, "turns": [{"text": "hi"}]}, "world"),
    "turns": ({"turns": {"text": "hi"}}, "turns"),
    "turn": ({"turns": ["hi"]}, "turns[0]"),
    "start_time": ({"start_time": "yesterday", "turns": [{"text": "hi"}]}, "start_time"),
    "id": ({"id": 5, "turns": [{"text": "hi"}]}, "id"),
    "at_s": ({"turns": [{"text": "hi", "at_s": "soon"}]}, "turns[0].at_s"),
    "gold": ({"turns": [{"text": "hi", "gold": "GetTime"}]}, "turns[0].gold"),
    "gold-intent": ({"turns": [{"text": "hi", "gold": {"intent": 7}}]}, "turns[0].gold.intent"),
    "gold-slots": ({"turns": [{"text": "hi", "gold": {"slots": ["a"]}}]}, "turns[0].gold.slots"),
    "gold-entity": ({"turns": [{"text": "hi", "gold": {"entities": {"room": 1}}}]}, "turns[0].gold.entities.room"),
    "gold-ood": ({"turns": [{"text": "hi", "gold": {"out_of_domain": "no"}}]}, "turns[0].gold.out_of_domain"),
    "gold-wake": ({"turns": [{"text": "hi", "gold": {"wake": 1}}]}, "turns[0].gold.wake"),
    "gold-reply": ({"turns": [{"text": "hi", "gold": {"reply_type": "song"}}]}, "turns[0].gold.reply_type"),
    "unknown-intent": ({"turns": [{"text": "hi", "gold": {"intent": "MakeCoffee"}}]}, "turns[0].gold.intent"),
    "unknown-slot": (
        {"turns": [{"text": "hi", "gold": {"intent": "TurnOn", "slots": {"colour": "red"}}}]},
        "turns[0].gold.slots.colour",
    ),
    "unknown-entity": (
        {"turns": [{"text": "hi", "gold": {"intent": "GetTime", "entities": {"room": "kitchen"}}}]},
        "turns[0].gold.entities.room",
    ),
    "outside": ({"turns": [{"audio": "../../../etc/passwd"}]}, "turns[0].audio"),
    "domain": ({"domain": "/etc/passwd", "turns": [{"text": "hi"}]}, "domain"),
}


def test_every_bad_manifest_is_named_and_the_other_sessions_still_run(tmp_path, fast, capsys):
    folders = [session(tmp_path / name, manifest) for name, (manifest, _field) in BAD_MANIFESTS.items()]
    good = text_session(tmp_path / "good", "good")
    code, stdout, err = cli(capsys, "replay", folders[0], good, *folders[1:], "--json")
    assert code == 2
    assert [json.loads(line)["session"] for line in stdout] == ["good"]
    assert len(err) == len(BAD_MANIFESTS), err
    for (name, (_manifest, field)), line in zip(BAD_MANIFESTS.items(), err):
        assert line.startswith(f"assistant: {tmp_path / name / 'session.json'}: {field}: "), line
        assert "internal error" not in line


# 3. audio with NaN / inf ----------------------------------------------------------------------


def test_audio_with_some_nan_or_inf_is_repaired_with_a_warning(tmp_path, caplog):
    x = (0.3 * np.sin(np.arange(16000) / 5.0)).astype(np.float32)
    x[100:200], x[300], x[301] = np.nan, np.inf, -np.inf
    for name, samples, rate in (("mono.wav", x, 16000), ("stereo44.wav", np.stack([x, x], 1), 44100)):
        sf.write(tmp_path / name, samples, rate, subtype="FLOAT")
        with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
            warnings.simplefilter("error")  # no numpy RuntimeWarning may leak
            audio = load_audio(tmp_path / name)
        assert np.isfinite(audio.samples).all() and 0.25 < audio.peak <= 0.32
        assert any(name in r.getMessage() and "NaN or infinite" in r.getMessage() for r in caplog.records)
        audio.to_int16()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_audio_of_nothing_but_nan_or_inf_is_refused_by_name(tmp_path, value):
    path = tmp_path / "bad.wav"
    sf.write(path, np.full(1600, value, np.float32), 16000, subtype="FLOAT")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="NaN or infinite") as err:
            load_audio(path)
    assert err.value.path == str(path)


# 4. write failures are errors -----------------------------------------------------------------


def test_unwritable_outputs_are_refused_before_any_work(tmp_path, fast, capsys):
    good = text_session(tmp_path / "good", "good")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for flag, target in (("--trace", blocker / "traces"), ("--out", blocker), ("--trace", blocker)):
        code, stdout, err = cli(capsys, "replay", good, flag, target)
        assert code == 3 and stdout == [] and len(err) == 1 and str(target) in err[0], (flag, err)
    assert blocker.read_text() == "not a folder"


def _fail_writes_to(monkeypatch, file: Path, after: int, short: bool):
    """os.write to ``file`` fails from its ``after``-th call on: a short write of half the
    bytes (what a full disk does) or half written, then ENOSPC raised."""
    real, calls = os.write, {"n": 0}

    def fake(fd, data):
        try:
            target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            return real(fd, data)
        if target != file:
            return real(fd, data)
        calls["n"] += 1
        if calls["n"] < after:
            return real(fd, data)
        half = real(fd, bytes(data)[: len(data) // 2])
        if short:
            return half
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", fake)


@pytest.mark.parametrize("short", [True, False])
def test_line_writer_cuts_a_failed_write_back_to_the_last_complete_line(tmp_path, monkeypatch, short):
    writer = LineWriter(tmp_path / "x.jsonl")
    _fail_writes_to(monkeypatch, tmp_path / "x.jsonl", after=3, short=short)
    writer.write({"n": 1})
    writer.write({"n": 2})
    with pytest.raises(OutputError, match="x.jsonl: cannot write .*No space left"):
        writer.write({"n": 3, "pad": "x" * 100})
    writer.close()
    assert (tmp_path / "x.jsonl").read_text() == '{"n":1}\n{"n":2}\n'


def test_a_full_disk_mid_run_is_named_stops_the_trace_cleanly_and_exits_3(tmp_path, fast, capsys, monkeypatch, caplog):
    folders = [
        session(tmp_path / f"s{i}", {"id": f"s{i}", "turns": [{"text": "what time is it"}] * 3}) for i in range(3)
    ]
    trace = tmp_path / "trace"
    _fail_writes_to(monkeypatch, trace / "s1.jsonl", after=12, short=True)  # the second session's 2nd turn
    with caplog.at_level(logging.ERROR):
        code, stdout, err = cli(capsys, "replay", *folders, "--trace", trace, "--json")
    assert code == 3
    assert len(stdout) == 9  # every turn still ran and was reported
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1 and "s1.jsonl: cannot write" in failures[0], failures
    for f in trace.glob("*.jsonl"):  # every file ends with a complete line
        assert f.read_bytes().endswith(b"\n")
        traces.read_records(f)
    assert traces.read_records(trace / "s0.jsonl")[-1]["event"] == "session_end"
    assert traces.read_records(trace / "s1.jsonl")[-1]["event"] != "session_end"
    assert not (trace / "s2.jsonl").exists()  # stopped: nothing more written there


def test_a_reply_that_cannot_be_written_is_named_and_exits_3(tmp_path, fast, capsys, caplog):
    folders = [text_session(tmp_path / f"s{i}", f"s{i}") for i in range(2)]
    out = tmp_path / "out"
    out.mkdir()
    (out / "s0").write_text("in the way")  # s0's reply folder cannot be made
    with caplog.at_level(logging.ERROR):
        code, stdout, _err = cli(capsys, "replay", *folders, "--out", out, "--json")
    assert code == 3 and len(stdout) == 2
    assert any("turn01-reply.wav: cannot write" in r.getMessage() for r in caplog.records)
    assert (out / "s0").read_text() == "in the way"
    assert not list(out.rglob(".*.tmp"))


def test_write_wav_leaves_no_torn_file(tmp_path, monkeypatch):
    target = tmp_path / "r.wav"
    write_wav(target, Audio.silence(0.1))
    before = target.read_bytes()

    def broken(self, *args, **kwargs):  # the header is on disk by now: a torn file to clean up
        raise sf.LibsndfileError(0, "Error writing: No space left on device")

    monkeypatch.setattr(sf.SoundFile, "write", broken)  # write_wav writes in blocks
    with pytest.raises(OutputError, match="r.wav: cannot write"):
        write_wav(target, Audio.silence(0.2))
    assert target.read_bytes() == before and sorted(tmp_path.iterdir()) == [target]


# 5. simulate never mixes runs -----------------------------------------------------------------

SIM = ["simulate", "--fidelity", "text", "--workers", "1", "--quiet"]


def _records(folder: Path) -> list[str]:
    measured = {"t", "time", "duration_ms", "ms"}

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in measured}
        return [strip(v) for v in x] if isinstance(x, list) else x

    return sorted(json.dumps(strip(r), sort_keys=True) for r in traces.iter_records([folder]))


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "run"
    assert main(SIM + ["--sessions", "3", "--seed", "1", "--out", str(out)]) == 0
    return out


@pytest.mark.models
def test_simulate_refuses_a_folder_holding_another_run(sim_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(sim_run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _o, err = cli(capsys, *SIM, "--sessions", "3", "--seed", "1", "--out", out)
    assert code == 2 and "holds a simulation run" in err[-1] and "--resume" in err[-1]
    code, _o, err = cli(capsys, *SIM, "--sessions", "3", "--seed", "2", "--out", out, "--resume")
    assert code == 2 and "run.json" in err[-1] and "seed 1 → 2" in err[-1]
    code, _o, err = cli(capsys, *SIM, "--sessions", "3", "--seed", "1", "--goals", "1-2", "--out", out, "--resume")
    assert code == 2 and "goals" in err[-1]
    (out / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"], ["--resume"]):
        code, _o, err = cli(capsys, *SIM, "--sessions", "3", "--seed", "1", "--out", out, *extra)
        assert code == 2 and "notes.txt" in err[-1], extra
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "notes.txt"} == before


@pytest.mark.models
def test_simulate_overwrite_clears_only_its_own_files(sim_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(sim_run, out)
    code, _o, err = cli(capsys, *SIM, "--sessions", "2", "--seed", "2", "--out", out, "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "run.json",
        "run.progress",
        "sim-s2-00000.jsonl",
        "sim-s2-00001.jsonl",
    ]
    assert json.loads((out / "run.json").read_text())["options"]["seed"] == 2


@pytest.mark.models
def test_simulate_resume_runs_only_the_missing_sessions_and_matches_a_fresh_run(sim_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(sim_run, out)
    kept = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    code, _o, err = cli(capsys, *SIM, "--sessions", "5", "--seed", "1", "--out", out, "--resume")
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl") if p.name in kept} == kept  # not rerun
    summary = json.loads((out / "run.json").read_text())
    assert summary["sessions"] == 5 and summary["complete"] and not summary["interrupted"]
    fresh = tmp_path / "fresh"
    assert main(SIM + ["--sessions", "5", "--seed", "1", "--out", str(fresh)]) == 0
    assert _records(out) == _records(fresh)
    assert summary["turns"] == json.loads((fresh / "run.json").read_text())["turns"]


def _interruptible() -> None:
    """In the child: Ctrl-C as a terminal's foreground job has it. A shell starts background
    jobs with SIGINT ignored, and Python then keeps ignoring it: a test run launched that way
    would otherwise see the simulation shrug off the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(out: Path, workers: int) -> subprocess.Popen:
    """A run in its own process group (a terminal's Ctrl-C reaches the whole group), too long to
    end before the test stops it (40 sessions once took 6 s: the signal came too late);
    stderr goes to ``out``.err (a pipe nobody reads could fill and stall it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out}.err", "w") as err:
        return subprocess.Popen(
            [
                str(ASSISTANT),
                *SIM[:3],
                "--workers",
                str(workers),
                "--quiet",
                "--sessions",
                "2000",
                "--seed",
                "5",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            stderr=err,
            start_new_session=True,
            preexec_fn=_interruptible,
        )


def _stderr(out: Path) -> str:
    return Path(f"{out}.err").read_text()


def _wait_for_sessions(proc: subprocess.Popen, out: Path, n: int, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        progress = out / "run.progress"
        if progress.is_file() and len(progress.read_text().splitlines()) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {n} finished sessions ({proc.poll()=})")


def _workers(proc: subprocess.Popen) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found if "multiprocessing-fork" in Path(f"/proc/{p}/cmdline").read_text()]


def _alive(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_text())  # a zombie has no command line
    except OSError:
        return False


def _check_interrupted(out: Path, signame: str) -> None:
    summary = json.loads((out / "run.json").read_text())
    assert summary["interrupted"] is True and summary["complete"] is False and summary["signal"] == signame
    done = len((out / "run.progress").read_text().splitlines())
    assert summary["sessions"] == done >= 2
    assert len(list(out.glob("*.jsonl"))) == done  # unfinished sessions' traces removed
    for f in out.glob("*.jsonl"):
        assert traces.read_records(f)[-1]["event"] == "session_end"


@pytest.mark.models
def test_simulate_stops_on_sigterm_keeps_finished_sessions_and_its_workers_die(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, workers=2)
    _wait_for_sessions(proc, out, 2)
    workers = _workers(proc)
    assert len(workers) == 2
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    took = time.monotonic() - t0
    err = _stderr(out)
    assert code == 143 and took < 5, (code, took, err)
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err and "leaked" not in err, err
    time.sleep(0.5)
    assert not [w for w in workers if _alive(w)]
    _check_interrupted(out, "SIGTERM")


@pytest.mark.models
def test_simulate_stops_on_ctrl_c(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, workers=1)
    _wait_for_sessions(proc, out, 2)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    code = proc.wait(timeout=30)
    err = _stderr(out)
    assert code == 130 and time.monotonic() - t0 < 5, (code, err)
    assert "interrupted (SIGINT)" in err and "Traceback" not in err, err
    _check_interrupted(out, "SIGINT")


@pytest.mark.models
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks /proc")
def test_simulate_workers_die_with_a_killed_parent(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, workers=2)
    _wait_for_sessions(proc, out, 1)
    workers = _workers(proc)
    assert workers
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)]

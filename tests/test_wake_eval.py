"""`assistant wake eval` and `replay --stop wake` on real recordings (tests/data, recordings/)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.cli import main
from assistant.wake_eval import Span, clopper_pearson, match, poisson_interval
from tests.conftest import DATA, RECORDINGS


def test_detections_count_for_the_clip_whose_span_holds_them():
    spans = [Span("a", 1.0, 2.0), Span("b", 5.0, 6.5)]
    found, extra, stray = match(spans, [1.9, 2.3, 3.5, 6.9])
    # 2.3 is within LAG_S of a's end (the detector fires at the end of the word): a double count;
    # 6.9 is b's (lag); 3.5 is between clips: stray, not a ±2 s guess
    assert found == [True, True] and extra == 1 and stray == 1


def test_intervals_are_exact():
    lo, hi = poisson_interval(0)
    assert lo == 0 and hi == pytest.approx(3.689, abs=1e-3)  # the "rule of 3.7" for 0 events
    lo, hi = clopper_pearson(1, 60)
    assert lo == pytest.approx(0.00042, abs=1e-5) and hi == pytest.approx(0.0894, abs=1e-4)


@pytest.mark.models
def test_wake_eval_scores_real_clips_and_draws_the_det_curve(tmp_path, capsys):
    clips = [str(DATA / n) for n in ("alexa-5.flac", "alexa-12.flac", "alexa-27.flac")]
    args = [
        "wake",
        "eval",
        "--negatives",
        str(DATA / "keywords-no-alexa.wav"),
        "--thresholds",
        "0.5",
        "0.99",
        "--model",
        "--verify",
        "--report",
        str(tmp_path / "rep"),
        "--json",
    ]
    for c in clips:
        args += ["--positives", c]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["detector"], r["threshold"]): r for r in report["rows"]}
    for detector in ("listener", "verified", "model"):  # the second look keeps every real wake
        r = rows[(detector, 0.5)]
        assert (r["positives"], r["missed"], r["extra"], r["stray"], r["false_accepts"]) == (3, 0, 0, 0, 0)
        assert r["fa_per_hour_95"][1] > 100  # 11.5 s of negatives says little
    assert rows[("model", 0.99)]["missed"] >= rows[("model", 0.5)]["missed"]
    assert report["refused"] == [{"condition": "clean", "positives": [], "negatives": []}]
    assert (tmp_path / "rep" / "report.json").is_file()
    assert any((tmp_path / "rep" / f"det.{ext}").is_file() for ext in ("png", "svg"))


def test_wake_eval_names_a_bad_file_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "clips"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"RIFF not really")
    assert main(["wake", "eval", "--positives", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken.wav" in err


@pytest.mark.models
def test_replay_can_stop_at_wake_and_gives_wake_times(capsys):
    assert main(["replay", str(RECORDINGS / "continuous"), "--stop", "wake", "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 4 and all(o["correct"] for o in out)  # 4 of 4 commands, by span
    for o in out:
        assert o["wake"]["start_s"] <= o["wake"]["detected_at_s"] < o["command"]["start_s"] < o["command"]["end_s"]


@pytest.mark.models
def test_lean_onnx_sessions_score_exactly_as_openwakeword_does():
    """The listener builds openWakeWord without onnxruntime's memory arena (120 MB less a
    listener): every frame of a real recording must score the same."""
    import warnings

    import numpy as np
    from openwakeword.model import Model

    from core.audio import Audio, load_audio
    from core.model_files import openwakeword_model
    from stages.wake import FRAME, lean_onnx_sessions

    stream = Audio.concat([Audio.silence(0.5), load_audio(DATA / "alexa-12.flac"), Audio.silence(1.0)])
    pcm = (np.clip(stream.samples, -1, 1) * 32767).astype(np.int16)

    def scores(lean: bool) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if lean:
                with lean_onnx_sessions():
                    model = Model(wakeword_model_paths=[str(openwakeword_model("alexa"))])
            else:
                model = Model(wakeword_model_paths=[str(openwakeword_model("alexa"))])
        key = next(iter(model.models))
        return np.array([model.predict(pcm[i : i + FRAME])[key] for i in range(0, len(pcm) - FRAME + 1, FRAME)])

    lean, again, default = scores(True), scores(True), scores(False)  # again: starting features reused
    assert default.max() >= 0.5
    np.testing.assert_array_equal(lean, default)
    np.testing.assert_array_equal(again, default)


def test_synthetic_negatives_are_seeded_and_never_say_the_word():
    from sim.wake_negatives import negative_texts, synthetic_negatives

    texts = negative_texts("alexa")
    assert len(texts) > 1000 and not any("alex" in t.lower() for t in texts)
    first = list(synthetic_negatives(0.2, seed=3))
    again = list(synthetic_negatives(0.2, seed=3))
    other = list(synthetic_negatives(0.2, seed=4))
    assert len(first) == 1 and first[0].duration_s >= 12
    assert np.array_equal(first[0].samples, again[0].samples)
    assert not np.array_equal(first[0].samples[:16000], other[0].samples[:16000])


@pytest.mark.models
def test_wake_eval_plays_synthetic_negatives_in_one_command(capsys):
    args = ["wake", "eval", "--synthetic-negatives", "0.5", "--thresholds", "0.5", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["negative_s"] >= 30
    assert [r["false_accepts"] for r in report["rows"]] == [0]


def test_wake_eval_refuses_a_bad_minute_count(capsys):
    assert main(["wake", "eval", "--synthetic-negatives", "-3"]) == 2
    assert "--synthetic-negatives" in capsys.readouterr().err


@pytest.mark.models
def test_replay_says_how_close_a_missed_command_came(tmp_path, capsys):
    """A real "alexa" and a command, recorded as a continuous session with its gold: a device
    asking more than this voice gives misses it, and the missed command carries the detector's
    peak there (a near miss), in --json and in the text line."""
    import soundfile as sf

    from core.audio import Audio, load_audio
    from stages.wake import NEAR_MISS_FLOOR, WakeListener, WakeOptions, scan

    speech = load_audio(RECORDINGS / "real-speech" / "austen-0930.wav").slice(0.0, 1.2)
    stream = Audio.concat(
        [Audio.silence(1.0), load_audio(DATA / "alexa-5.flac"), Audio.silence(0.3), speech, Audio.silence(1.5)]
    )
    wake = scan(WakeListener(WakeOptions()), stream)[0].wake
    folder = tmp_path / "session"
    folder.mkdir()
    sf.write(folder / "stream.wav", stream.samples, stream.sample_rate)
    gold = {"transcript": "alexa", "wake": True}
    manifest = {
        "schema": "assistant.session/1",
        "id": "near",
        "audio": "stream.wav",
        "turns": [{"at_s": wake.end_s, "gold": gold}],
    }
    (folder / "session.json").write_text(json.dumps(manifest))
    strict = f"wake.threshold={min(1.0, wake.score + 0.005):.4f}"
    assert main(["replay", str(folder), "--stop", "wake", "--json", "--set", strict]) == 0
    (missed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert missed["missed"] and NEAR_MISS_FLOOR <= missed["near_miss"] <= wake.score
    assert main(["replay", str(folder), "--json", "--set", strict]) == 0  # the whole pipeline: the same
    (again,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert again["missed"] and again["near_miss"] == missed["near_miss"]
    assert main(["replay", str(folder), "--stop", "wake", "--set", strict]) == 0
    assert f"MISSED command at {wake.end_s:.1f}s (near miss, peak {missed['near_miss']:.2f})" in capsys.readouterr().out
    assert main(["replay", str(folder), "--stop", "wake", "--json"]) == 0  # the configured threshold: heard
    (heard,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert heard["correct"] and "near_miss" not in heard

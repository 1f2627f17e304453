"""`assistant asr-errors check`: audio- against text-fidelity word error rates per condition."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sim.report import compare_wer
from tests.conftest import ROOT


def _trace(path, turns):
    """A trace with one turn_end per (condition, what was said, what was heard, ASR source)."""
    with open(path, "w", encoding="utf-8") as f:
        for i, (condition, said, heard, source) in enumerate(turns, 1):
            f.write(
                json.dumps(
                    {
                        "schema": "assistant.trace/1",
                        "session": path.stem,
                        "turn": i,
                        "stage": None,
                        "event": "turn_end",
                        "gold": {"transcript": said},
                        "stages": {
                            "wake": {"output": {"condition": condition}},
                            "asr": {"output": {"text": heard, "source": source}},
                        },
                    }
                )
                + "\n"
            )
    return path


@pytest.fixture()
def traces(tmp_path):
    said = "turn on the kitchen lights"  # 5 words
    audio = _trace(
        tmp_path / "audio.jsonl",
        [("clean", said, "turn on the kitchen light", "asr")] * 10  # 1 error in 5: 20 %
        + [("pink@10dB", said, "turn the kitchen", "asr")] * 10  # 2 in 5: 40 %
        + [("clean", said, said, "gold")] * 10,
    )  # gold text: not heard
    text = _trace(
        tmp_path / "text.jsonl",
        [("clean", said, "turn on the kitchen light", "simulated")] * 9
        + [("clean", said, "turn of the kitchen light", "simulated")]  # 11 in 50: 22 %
        + [("pink@10dB", said, "turn on the kitchen light", "simulated")] * 10  # 20 %
        + [("white@10dB", said, "", "simulated")],
    )  # not in the audio run
    return audio, text


def test_each_condition_compares_heard_words_only(traces):
    audio, text = traces
    rows = {r["condition"]: r for r in compare_wer([audio], [text])}
    assert set(rows) == {"clean", "pink@10dB"}
    clean, pink = rows["clean"], rows["pink@10dB"]
    assert clean["audio_wer"] == pytest.approx(0.2) and clean["audio_words"] == 50  # the gold turns are not counted
    assert clean["text_wer"] == pytest.approx(0.22) and clean["relative"] == pytest.approx(0.1)
    assert clean["within"] is True
    assert pink["relative"] == pytest.approx(-0.5) and pink["within"] is False
    lo, hi = clean["audio_ci95"]
    assert lo == hi == pytest.approx(0.2)  # every utterance alike: no room for chance


def test_check_cli_prints_one_json_object_per_condition(traces):
    audio, text = traces
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "asr-errors", "check", str(audio), "--text", str(text), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["condition"] for r in rows] == ["clean", "pink@10dB"]
    assert {"audio_wer", "audio_ci95", "text_wer", "relative", "within"} <= set(rows[0])

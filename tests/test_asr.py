"""Speech recognition: the fitted encoder window hears what the full one hears, and a decode
that loops is redone with the full window."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.audio import PIPELINE_RATE, load_audio
from core.wer import edit_distance, normalize_words
from stages import asr as asr_module
from stages.asr import AsrOptions, WhisperAsr, fitted_window_s

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"

pytestmark = pytest.mark.models


def _clips():
    for name in ("real-speech", "home-demo"):
        session = json.loads((RECORDINGS / name / "session.json").read_text())
        for turn in session["turns"][:5]:
            yield load_audio(RECORDINGS / name / turn["audio"]), turn["gold"]["transcript"]


@pytest.fixture(scope="module")
def models():
    return WhisperAsr(AsrOptions(context="fit")), WhisperAsr(AsrOptions(context="full"))


def test_fitted_window_is_the_audio_plus_a_second_between_15_and_30_s():
    assert fitted_window_s(2 * PIPELINE_RATE) == 15
    assert fitted_window_s(int(16.2 * PIPELINE_RATE)) == 18
    assert fitted_window_s(45 * PIPELINE_RATE) == 30


def test_fitted_window_hears_real_speech_as_well_as_the_full_window(models):
    fit, full = models
    errors = {"fit": 0, "full": 0}
    words = 0
    for audio, reference in _clips():
        ref = normalize_words(reference)
        words += len(ref)
        errors["fit"] += edit_distance(ref, normalize_words(fit.transcribe(audio.samples).text))
        errors["full"] += edit_distance(ref, normalize_words(full.transcribe(audio.samples).text))
    assert words > 80
    assert errors["fit"] <= errors["full"] + 2, errors
    assert errors["fit"] / words < 0.08
    assert fit.fallbacks == 0


def test_a_looping_fitted_decode_is_redone_with_the_full_window(models, monkeypatch):
    fit, _full = models
    audio = load_audio(RECORDINGS / "home-demo" / "turn02.wav")
    real_decode = fit._decode
    windows = []

    def decode(samples, window_s):
        windows.append(window_s)
        if window_s is not None:  # what a looping decode looks like
            text = " Turn them off." * 12
            return [
                SimpleNamespace(
                    text=text,
                    tokens=list(range(60)),
                    compression_ratio=4.1,
                    no_speech_prob=0.01,
                    avg_logprob=-0.2,
                    words=[],
                )
            ]
        return real_decode(samples, window_s)

    monkeypatch.setattr(fit, "_decode", decode)
    before = fit.fallbacks
    text = fit.transcribe(audio.samples).text
    assert windows == [15, None]
    assert fit.fallbacks == before + 1
    assert normalize_words(text) == ["turn", "them", "off"]


def test_an_unknown_window_setting_is_named():
    with pytest.raises(ValueError, match="asr.context"):
        WhisperAsr(AsrOptions(context="half"))


def test_the_token_ceiling_grows_with_the_audio():
    assert asr_module.max_tokens(1.0) < asr_module.max_tokens(5.0) <= 12 + 8 * 5

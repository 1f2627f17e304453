"""Synthetic user voices: the catalog, rate and pitch, sampling with held-out voices, the cache."""

from __future__ import annotations

import random

import numpy as np
import pytest

from core.audio import PIPELINE_RATE
from core.wer import wer
from sim import voices
from sim.channel import Channel, apply
from sim.voices import Voice, held_out, sample_voice, speak, voice_catalog
from tests.tiny_piper import build_tiny_voice

COMMAND = "turn on the kitchen lights"


def median_f0(samples: np.ndarray, rate: int = PIPELINE_RATE) -> float:
    """Median pitch of the voiced 40 ms frames, by autocorrelation (60-450 Hz)."""
    frame, f0s = int(0.04 * rate), []
    x = samples.astype(np.float64)
    for start in range(0, len(x) - frame, frame // 2):
        seg = x[start : start + frame] - x[start : start + frame].mean()
        if np.sqrt(np.mean(seg**2)) < 0.03 * np.abs(x).max():
            continue
        ac = np.correlate(seg, seg, "full")[frame - 1 :]
        lo, hi = rate // 450, rate // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            f0s.append(rate / lag)
    return float(np.median(f0s))


@pytest.mark.models
def test_catalog_has_three_synthesizers_and_every_voice_speaks():
    catalog = voice_catalog()
    assert {"festival", "flite", "espeak-ng"} <= {v.backend for v in catalog}
    assert len({v.id for v in catalog}) == len(catalog)
    assert "flite:awb_time" not in {v.base for v in catalog}  # can only tell the time
    for voice in catalog:
        audio = speak(voice, COMMAND)
        assert audio.sample_rate == PIPELINE_RATE, voice.id
        assert 0.8 < audio.duration_s < 3.5, voice.id
        assert audio.peak > 0.05, voice.id


@pytest.mark.parametrize(
    "base",
    [Voice("festival", "cmu_us_slt_arctic_hts"), Voice("flite", "awb"), Voice("espeak-ng", "en-gb")],
    ids=lambda v: v.backend,
)
@pytest.mark.models
def test_rate_changes_duration(base):
    slow = speak(Voice(base.backend, base.name, rate=0.8), COMMAND).duration_s
    fast = speak(Voice(base.backend, base.name, rate=1.25), COMMAND).duration_s
    assert slow / fast == pytest.approx(1.25 / 0.8, rel=0.15)


@pytest.mark.parametrize(
    "base",
    [
        Voice("festival", "cmu_us_slt_arctic_hts"),
        Voice("flite", "slt"),
        Voice("flite", "rms"),
        Voice("espeak-ng", "en-us"),
    ],
    ids=lambda v: v.base,
)
@pytest.mark.models
def test_pitch_shifts_f0_and_keeps_duration(base):
    """+4 semitones is 1.26 x the fundamental, whether the tool shifts it or it is resampled."""
    plain = speak(base, COMMAND)
    higher = speak(Voice(base.backend, base.name, pitch=4.0), COMMAND)
    assert median_f0(higher.samples) / median_f0(plain.samples) == pytest.approx(2 ** (4 / 12), rel=0.08)
    assert higher.duration_s == pytest.approx(plain.duration_s, rel=0.05)


def test_voice_ids_and_checks():
    assert Voice("flite", "awb", rate=0.9).id == "flite:awb:r0.9"
    assert Voice("espeak-ng", "en-us+f3", rate=1.1, pitch=-1.5).id == "espeak-ng:en-us+f3:r1.1:p-1.5"
    assert Voice("piper", "/models/en_US-lessac-medium.onnx").base == "piper:en_US-lessac-medium"
    for kwargs, field in [
        ({"backend": "sam"}, "backend"),
        ({"rate": 0.0}, "rate"),
        ({"pitch": float("nan")}, "pitch"),
        ({"name": " "}, "name"),
        ({"rate": "fast"}, "rate"),
    ]:
        with pytest.raises(ValueError, match=field):
            Voice(**{"backend": "flite", "name": "awb", **kwargs})
    with pytest.raises(ValueError, match="name"):  # would be Scheme code
        Voice("festival", 'kal_diphone) (system "ls"')
    with pytest.raises(ValueError, match="text"):
        speak(Voice("flite", "awb"), "  ")


def test_sampling_is_deterministic_and_varies_rate_and_pitch():
    first = [sample_voice(random.Random(5)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng_a, rng_b = random.Random(11), random.Random(11)
    run_a = [sample_voice(rng_a) for _ in range(40)]
    assert run_a == [sample_voice(rng_b) for _ in range(40)]
    rng_c = random.Random(12)
    assert run_a != [sample_voice(rng_c) for _ in range(40)]
    assert all(0.85 <= v.rate <= 1.2 and -2 <= v.pitch <= 2 for v in run_a)
    assert len({v.base for v in run_a}) >= 6 and len({v.rate for v in run_a}) >= 10


def test_held_out_voices_are_never_sampled():
    exclude = ["festival", "flite:awb", "en-us+f3"]
    rng = random.Random(3)
    drawn = {sample_voice(rng, exclude=exclude).base for _ in range(300)}
    assert drawn.isdisjoint({"festival:cmu_us_slt_arctic_hts", "flite:awb", "espeak-ng:en-us+f3"})
    assert "espeak-ng:en-us" in drawn  # a name holds out that voice only
    everything = [v.base for v in voice_catalog()]
    with pytest.raises(ValueError, match="exclude"):
        sample_voice(rng, exclude=everything)
    with pytest.raises(ValueError, match="exclude: 'flite:bogus'"):  # a typo must not leak test voices
        held_out(voice_catalog(), ["flite:bogus"])


@pytest.mark.models
def test_disk_cache_is_content_addressed_and_used(tmp_path, monkeypatch):
    voice = Voice("flite", "kal16", rate=1.1)
    first = speak(voice, COMMAND, cache_dir=tmp_path)
    files = list(tmp_path.rglob("*.wav"))
    assert len(files) == 1
    speak(voice, "set a timer", cache_dir=tmp_path)
    assert len(list(tmp_path.rglob("*.wav"))) == 2
    voices._synthesize.cache_clear()
    monkeypatch.setattr(voices, "_synth", lambda v: pytest.fail("synthesized despite the cache"))
    again = speak(voice, COMMAND, cache_dir=tmp_path)
    assert np.array_equal(again.samples, first.samples) and again.sample_rate == PIPELINE_RATE


@pytest.mark.models
def test_piper_voices_join_the_catalog_when_configured(tmp_path):
    model = build_tiny_voice(tmp_path)
    catalog = voice_catalog(piper_models=[str(model)])
    piper = [v for v in catalog if v.backend == "piper"]
    assert [v.base for v in piper] == ["piper:tiny-voice"]
    audio = speak(Voice("piper", str(model), rate=0.9, pitch=2.0), "hello there")
    assert audio.sample_rate == PIPELINE_RATE and audio.peak > 0


@pytest.mark.models
def test_asr_understands_clean_synthetic_speech_and_degrades_in_noise():
    from stages.asr import AsrOptions, WhisperAsr

    asr = WhisperAsr(AsrOptions())
    clean = speak(Voice("festival", "cmu_us_slt_arctic_hts"), COMMAND)
    noisy = apply(Channel(snr_db=-5, noise="white"), clean, random.Random(0))
    clean_wer = wer(COMMAND, asr.transcribe(clean.samples).text)
    noisy_wer = wer(COMMAND, asr.transcribe(noisy.samples).text)
    assert clean_wer <= 0.2
    assert noisy_wer >= clean_wer + 0.3

"""The acoustic channel: SNR, noise colours, reverberation, gain/clipping, mixing, conditions."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import welch

from core.audio import Audio, load_audio
from sim.channel import (
    CONDITIONS,
    Channel,
    active_power,
    apply,
    babble_noise,
    describe,
    mix,
    parse_condition,
    parse_snr,
    pink_noise,
    room_impulse_response,
    white_noise,
)
from sim.voices import Voice, speak
from tests.conftest import DATA

RATE = 16000


@pytest.fixture(scope="module")
def speech() -> Audio:
    """A real synthesized command with half a second of silence either side (pauses must not
    count towards the speech level)."""
    words = speak(Voice("flite", "slt"), "turn on the kitchen lights")
    pause = Audio.silence(0.5)
    return Audio.concat([pause, words, pause])


@pytest.fixture(scope="module")
def talkers() -> list[Audio]:
    texts = [
        "the weather was lovely at the beach",
        "we bought a new sofa for the lounge",
        "she will call you back after lunch",
        "nobody knows where the keys are",
    ]
    voices = [Voice("flite", "awb"), Voice("flite", "rms"), Voice("espeak-ng", "en-gb"), Voice("flite", "kal16")]
    return [speak(v, t) for v, t in zip(voices, texts)]


def measured_snr(clean: Audio, noisy: Audio) -> float:
    noise = noisy.samples.astype(np.float64) - clean.samples
    return 10 * math.log10(active_power(clean.samples) / np.mean(noise**2))


def spectral_slope_db_per_octave(x: np.ndarray) -> float:
    f, p = welch(x, RATE, nperseg=4096)
    band = (f > 50) & (f < 7000)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0])


def schroeder_rt60(h: np.ndarray) -> float:
    """RT60 from the energy decay curve's slope between -5 and -25 dB (T20), as ISO 3382."""
    edc = np.cumsum((h.astype(np.float64) ** 2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
    idx = np.where((edc_db <= -5) & (edc_db >= -25))[0]
    slope = np.polyfit(idx / RATE, edc_db[idx], 1)[0]
    return -60.0 / slope


def test_active_power_ignores_pauses():
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)
    with_pause = np.concatenate([tone, np.zeros(RATE)])
    assert active_power(with_pause) == pytest.approx(0.125, rel=0.02)  # A²/2, not A²/4
    assert active_power(np.zeros(RATE)) == 0.0


@pytest.mark.models
@pytest.mark.parametrize("kind", ["white", "pink", "babble", "file"])
@pytest.mark.parametrize("snr", [20, 5, -5])
def test_snr_is_what_was_asked(kind, snr, speech, talkers, tmp_path):
    noise_file = None
    if kind == "file":  # 0.4 s of a real recording as FLAC, shorter than the speech: looped
        noise_file = str(tmp_path / "noise.flac")
        sf.write(noise_file, load_audio(DATA / "keywords-no-alexa.wav").samples[RATE : RATE + 6400], RATE)
    channel = Channel(snr_db=snr, noise=kind, noise_file=noise_file)
    noisy = apply(channel, speech, random.Random(7), babble=talkers)
    assert len(noisy.samples) == len(speech.samples) and noisy.sample_rate == RATE
    assert measured_snr(speech, noisy) == pytest.approx(snr, abs=1.0)
    # against the whole signal (pauses included) it would read about 3 dB lower: activity matters
    whole = 10 * math.log10(
        np.mean(speech.samples.astype(np.float64) ** 2)
        / np.mean((noisy.samples.astype(np.float64) - speech.samples) ** 2)
    )
    assert whole < snr - 1.5


def test_pink_noise_falls_3db_per_octave_and_white_is_flat():
    assert spectral_slope_db_per_octave(pink_noise(10 * RATE, 1)) == pytest.approx(-3.0, abs=1.0)
    assert spectral_slope_db_per_octave(white_noise(10 * RATE, 1)) == pytest.approx(0.0, abs=1.0)


@pytest.mark.models
def test_babble_is_speech_shaped_and_level_normalized(talkers):
    b = babble_noise(talkers, 3 * RATE, random.Random(3))
    assert np.mean(b**2) == pytest.approx(1.0, rel=1e-6)
    # speech has most of its energy below 1 kHz; white noise would have 1/8 of it there
    f, p = welch(b, RATE, nperseg=1024)
    assert p[f < 1000].sum() / p.sum() > 0.5
    with pytest.raises(ValueError, match="babble"):
        babble_noise([Audio.silence(1.0)], RATE, random.Random(3))


@pytest.mark.parametrize("rt60", [0.3, 0.6, 1.0])
def test_impulse_response_decays_60db_in_rt60(rt60):
    h = room_impulse_response(rt60, random.Random(int(rt60 * 10)))
    assert h[0] == 1.0 and np.argmax(np.abs(h)) == 0  # direct path first and strongest
    assert schroeder_rt60(h) == pytest.approx(rt60, rel=0.3)
    reverberant = np.sum(h[1:] ** 2)
    assert 10 * math.log10(1.0 / reverberant) == pytest.approx(3.0, abs=0.01)  # default DRR


@pytest.mark.models
def test_reverb_through_the_channel(speech):
    click = np.zeros(2 * RATE, np.float32)
    click[0] = 0.5
    out = apply(Channel(rt60_s=0.6), Audio(click, RATE), random.Random(1))
    assert schroeder_rt60(out.samples) == pytest.approx(0.6, rel=0.3)
    wet = apply(Channel(rt60_s=0.6), speech, random.Random(1))
    assert len(wet.samples) == len(speech.samples)
    level = 10 * math.log10(active_power(wet.samples) / active_power(speech.samples))
    assert abs(level) < 1.0
    # it smears: energy now fills the pause after the words
    tail = slice(len(speech.samples) - RATE // 2, len(speech.samples) - RATE // 2 + RATE // 10)
    assert np.mean(wet.samples[tail] ** 2) > 1e-3 * active_power(speech.samples)


@pytest.mark.models
def test_gain_then_clipping(speech):
    quieter = apply(Channel(gain_db=-6), speech, random.Random(0))
    np.testing.assert_allclose(quieter.samples, speech.samples * 10 ** (-6 / 20), rtol=1e-5, atol=1e-7)
    clipped = apply(Channel(gain_db=12, clip_level=0.3), speech, random.Random(0))
    assert clipped.peak == pytest.approx(0.3)
    assert np.mean(np.abs(clipped.samples) >= 0.3 - 1e-6) > 0.05  # really driven into the clip
    assert np.max(np.abs(apply(Channel(clip_level=0.3), speech, random.Random(0)).samples)) <= 0.3


@pytest.mark.models
def test_same_seed_same_samples_other_seed_other_samples(speech, talkers):
    channel = parse_condition("babble@5+rt0.4+gain-3+clip0.9")
    a = apply(channel, speech, random.Random(42), babble=talkers)
    b = apply(channel, speech, random.Random(42), babble=talkers)
    c = apply(channel, speech, random.Random(43), babble=talkers)
    assert np.array_equal(a.samples, b.samples)
    assert not np.allclose(a.samples, c.samples)
    assert apply(Channel(), speech, random.Random(1)).samples.tolist() == speech.samples.tolist()


@pytest.mark.models
def test_mix_places_background_at_a_relative_level(speech, talkers):
    bg = talkers[0]
    out = mix(speech, bg, at_s=1.0, level_db=-6)
    start = RATE
    assert len(out.samples) == start + len(bg.samples)  # grows to hold both
    assert np.array_equal(out.samples[:start], speech.samples[:start])  # untouched before at_s
    added = out.samples[start:].astype(np.float64)
    added[: len(speech.samples) - start] -= speech.samples[start:]
    assert 10 * math.log10(active_power(added) / active_power(speech.samples)) == pytest.approx(-6, abs=0.1)
    with pytest.raises(ValueError, match="background"):
        mix(speech, Audio(bg.samples, 22050), 0.0, 0.0)
    with pytest.raises(ValueError, match="at_s"):
        mix(speech, bg, -1.0, 0.0)


def test_conditions_parse_and_ids_round_trip():
    assert parse_condition("pink@10") == Channel(snr_db=10, noise="pink")
    assert parse_condition("babble@5dB+reverb0.6") == Channel(snr_db=5, noise="babble", rt60_s=0.6)
    assert parse_condition("clean") == Channel() and Channel().id == "clean"
    assert Channel(snr_db=10, noise="pink", rt60_s=0.4).id == "pink@10dB+rt0.4"
    for name, channel in CONDITIONS.items():
        assert parse_condition(channel.id) == channel, name
    odd = Channel(
        snr_db=-2.5, noise="file", noise_file="/tmp/fans+hum.wav", rt60_s=0.8, drr_db=-3, gain_db=6, clip_level=0.7
    )
    assert parse_condition(odd.id) == odd
    assert "pink noise at 10 dB SNR" in describe(CONDITIONS["pink@10"])
    assert parse_snr(["20", 10, "clean"]) == (Channel(snr_db=20), Channel(snr_db=10), Channel())
    assert parse_snr("5", noise="pink") == (Channel(snr_db=5, noise="pink"),)


@pytest.mark.parametrize(
    "text, field",
    [
        ("pink@ten", "condition"),
        ("rt0.5+rt0.6", "room"),
        ("purple@10", "condition"),
        ("rt9", "rt60_s"),
        ("clip0", "clip_level"),
    ],
)
def test_bad_conditions_say_what_is_wrong(text, field):
    with pytest.raises(ValueError, match=field):
        parse_condition(text)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"snr_db": float("nan")}, "snr_db"),
        ({"noise": "brown", "snr_db": 5}, "noise"),
        ({"noise": "file", "snr_db": 5}, "noise_file"),
        ({"noise": "pink"}, "snr_db"),
        ({"rt60_s": -0.1}, "rt60_s"),
        ({"clip_level": 1.5}, "clip_level"),
        ({"gain_db": "6"}, "gain_db"),
    ],
)
def test_channel_checks_its_fields(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Channel(**kwargs)


def test_silent_or_foreign_audio_is_refused():
    with pytest.raises(ValueError, match="silent"):
        apply(Channel(snr_db=10), Audio.silence(1.0), random.Random(0))
    with pytest.raises(ValueError, match="16000"):
        apply(Channel(), Audio(np.ones(100, np.float32), 8000), random.Random(0))
    with pytest.raises(ValueError, match="snr"):
        parse_snr(["loud"])

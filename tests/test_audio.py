"""The audio boundary: any common file becomes 16 kHz mono once; bad files are named."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from core.audio import PIPELINE_RATE, Audio, load_audio, write_wav
from core.errors import InputError
from tests.conftest import DATA, RECORDINGS


def test_44k_stereo_flac_becomes_16k_mono():
    path = RECORDINGS / "real-speech" / "jfk.flac"
    info = sf.info(str(path))
    assert (info.samplerate, info.channels) == (44100, 2)
    audio = load_audio(path)
    assert audio.sample_rate == PIPELINE_RATE
    assert audio.samples.ndim == 1
    assert abs(audio.duration_s - info.duration) < 0.01


def test_flac_that_libsndfile_rejects_decodes_with_pyav():
    path = DATA / "alexa-32-libsndfile-fails.flac"
    with pytest.raises(sf.LibsndfileError):
        sf.read(str(path))
    audio = load_audio(path)
    assert audio.sample_rate == PIPELINE_RATE
    assert 1.0 < audio.duration_s < 3.0
    assert audio.peak > 0.05


def test_raw_pcm_is_read_as_16k_16bit(tmp_path):
    samples = (np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440) * 10000).astype("<i2")
    raw = tmp_path / "tone.raw"
    raw.write_bytes(samples.tobytes())
    audio = load_audio(raw)
    assert audio.duration_s == pytest.approx(1.0)
    assert audio.peak == pytest.approx(10000 / 32768, rel=1e-3)


def test_resampling_keeps_a_tone_at_its_frequency(tmp_path):
    rate = 22050
    t = np.arange(rate) / rate
    stereo = np.stack([np.sin(2 * np.pi * 1000 * t)] * 2, axis=1) * 0.5
    path = tmp_path / "tone.wav"
    sf.write(str(path), stereo, rate)
    audio = load_audio(path)
    spectrum = np.abs(np.fft.rfft(audio.samples))
    peak_hz = np.argmax(spectrum) * PIPELINE_RATE / len(audio.samples)
    assert peak_hz == pytest.approx(1000, abs=2)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is not audio\n"), "not a readable audio file"),
        (lambda p: p.write_bytes((RECORDINGS / "home-demo" / "turn01.wav").read_bytes()[:20000]), "truncated WAV"),
        (lambda p: sf.write(str(p), np.zeros(16000), 16000), "silent"),
    ],
)
def test_bad_files_are_named_with_a_reason(tmp_path, make, reason):
    path = tmp_path / "input.wav"
    make(path)
    with pytest.raises(InputError) as err:
        load_audio(path)
    message = str(err.value)
    assert str(path) in message and reason in message
    assert "\n" not in message


def test_audio_is_immutable_and_slices_share_format(tmp_path):
    audio = Audio(np.linspace(-1, 1, 16000, dtype=np.float32), 16000)
    with pytest.raises(ValueError):
        audio.samples[0] = 0.5
    with pytest.raises(AttributeError):
        audio.sample_rate = 8000  # type: ignore[misc]
    part = audio.slice(0.25, 0.5)
    assert part.sample_rate == 16000 and len(part.samples) == 4000
    out = write_wav(tmp_path / "x.wav", part)
    assert sf.info(str(out)).samplerate == 16000


def test_audio_refuses_wrong_shapes():
    with pytest.raises(ValueError):
        Audio(np.zeros((10, 2), np.float32), 16000)
    with pytest.raises(ValueError):
        Audio(np.zeros(10, np.float32), 0)
    with pytest.raises(ValueError):
        Audio.concat([Audio.silence(0.1, 16000), Audio.silence(0.1, 8000)])

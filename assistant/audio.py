"""Audio as it travels between stages, and the one boundary where files become it.

Every piece of audio inside the pipeline is an :class:`Audio`: float32 mono samples in
[-1, 1] together with their sample rate. Files of any common container, rate and channel
count are converted once, here, to the pipeline rate (16 kHz mono).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.errors import InputError, OutputError

log = logging.getLogger(__name__)

PIPELINE_RATE = 16000
# Below this peak level (about -60 dBFS) a whole file is treated as silence, not speech.
SILENCE_PEAK = 1e-3
RAW_SUFFIXES = (".raw", ".pcm")


@dataclass(frozen=True, eq=False)
class Audio:
    """Immutable mono audio with its format. The sample array is made read-only."""

    samples: np.ndarray
    sample_rate: int
    channels: int = field(default=1)

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.channels != 1:
            raise ValueError("pipeline audio is mono; mix down before building Audio")
        arr = np.asarray(self.samples, dtype=np.float32)
        if arr.ndim != 1:
            raise ValueError(f"samples must be 1-D, got shape {arr.shape}")
        if arr.flags.writeable:
            arr = arr.copy() if arr is self.samples else arr
            arr.flags.writeable = False
        object.__setattr__(self, "samples", arr)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def peak(self) -> float:
        return float(np.max(np.abs(self.samples))) if len(self.samples) else 0.0

    def slice(self, start_s: float, end_s: float) -> "Audio":
        a = max(0, int(round(start_s * self.sample_rate)))
        b = min(len(self.samples), int(round(end_s * self.sample_rate)))
        return Audio(self.samples[a:b], self.sample_rate)

    def to_int16(self) -> np.ndarray:
        return (np.clip(self.samples, -1.0, 1.0) * 32767).astype(np.int16)

    @staticmethod
    def silence(seconds: float, sample_rate: int = PIPELINE_RATE) -> "Audio":
        return Audio(np.zeros(int(round(seconds * sample_rate)), np.float32), sample_rate)

    @staticmethod
    def concat(parts: "list[Audio]") -> "Audio":
        if not parts:
            raise ValueError("nothing to concatenate")
        rates = {p.sample_rate for p in parts}
        if len(rates) != 1:
            raise ValueError(f"cannot concatenate audio of different rates {sorted(rates)}")
        return Audio(np.concatenate([p.samples for p in parts]), parts[0].sample_rate)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """High-quality resampling (soxr); a no-op when the rates already match."""
    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(samples, dtype=np.float32), from_rate, to_rate, quality="HQ")


def to_pipeline(samples: np.ndarray, rate: int) -> Audio:
    """Mix any (frames, channels) or (frames,) float array down to mono and resample once."""
    arr = np.asarray(samples, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr.mean(axis=1)
    return Audio(resample(arr, rate, PIPELINE_RATE), PIPELINE_RATE)


def _check_wav_complete(path: Path, data: bytes) -> None:
    """libsndfile reads a truncated WAV without complaint; compare the header with the bytes."""
    if not data[:4] == b"RIFF" or data[8:12] != b"WAVE":
        return
    try:
        with wave.open(io.BytesIO(data)) as w:
            declared = w.getnframes() * w.getsampwidth() * w.getnchannels()
            header_end = data.find(b"data") + 8
    except (wave.Error, EOFError):
        return  # not plain PCM; let the decoders judge it
    available = len(data) - header_end
    if header_end > 8 and available < declared:
        raise InputError(
            path, f"truncated WAV: header declares {declared} bytes of audio, file holds {available}"
        )


def _decode_soundfile(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples, rate


def _decode_pyav(path: Path) -> tuple[np.ndarray, int]:
    """Fallback decoder: FFmpeg through PyAV handles files libsndfile rejects."""
    import av

    chunks = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=PIPELINE_RATE)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        raise ValueError("no audio frames decoded")
    return np.concatenate(chunks)[:, None], PIPELINE_RATE


def load_audio(path: str | Path, raw_rate: int = PIPELINE_RATE) -> Audio:
    """Read an audio file as 16 kHz mono. Raises :class:`InputError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    data = path.read_bytes()
    if not data:
        raise InputError(path, "empty file")
    if path.suffix.lower() in RAW_SUFFIXES:
        # Headerless PCM carries no format: by convention 16-bit little-endian mono.
        if len(data) % 2:
            raise InputError(path, "raw PCM length is not a whole number of 16-bit samples")
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        audio = to_pipeline(samples, raw_rate)
    else:
        _check_wav_complete(path, data)
        try:
            samples, rate = _decode_soundfile(data)
        except Exception as sf_error:  # libsndfile raises several types; any failure → PyAV
            log.debug("libsndfile could not read %s (%s); trying PyAV", path, sf_error)
            try:
                samples, rate = _decode_pyav(path)
            except Exception as av_error:
                raise InputError(path, f"not a readable audio file ({_first_line(av_error)})") from None
        audio = to_pipeline(_finite(samples, path), rate)
    if len(audio.samples) == 0:
        raise InputError(path, "no audio samples")
    if audio.peak < SILENCE_PEAK:
        raise InputError(path, f"silent (peak {audio.peak:.1e} below {SILENCE_PEAK:.0e})")
    return audio


def _finite(samples: np.ndarray, path: Path) -> np.ndarray:
    """Float files can hold NaN or infinite samples, which would spread through resampling and
    every stage: a few are replaced by silence (with a warning), a file of nothing else is refused."""
    finite = np.isfinite(samples)
    if finite.all():
        return samples
    bad = int(samples.size - np.count_nonzero(finite))
    if bad == samples.size:
        raise InputError(path, "every sample is NaN or infinite")
    log.warning("%s: %d of %d samples are NaN or infinite; replaced by 0", path, bad, samples.size)
    return np.where(finite, samples, np.float32(0.0)).astype(np.float32, copy=False)


def write_wav(path: str | Path, audio: Audio) -> Path:
    """Write 16-bit PCM WAV (the format every tool reads) through a temporary file and a rename,
    so a failed write leaves no torn file. Raises :class:`OutputError` naming ``path``."""
    import soundfile as sf

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(tmp), audio.to_int16(), audio.sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:   # libsndfile reports a full disk as a RuntimeError
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        reason = err.strerror if isinstance(err, OSError) and err.strerror else _first_line(err)
        raise OutputError(path, f"cannot write ({reason})") from None
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__

"""Audio as it travels between stages, and the one boundary where files become it.

Every piece of audio inside the pipeline is an :class:`Audio`: float32 mono samples in
[-1, 1] together with their sample rate. Files of any common container, rate and channel
count are converted once, here, to the pipeline rate (16 kHz mono).
"""

from __future__ import annotations

import contextlib
import logging
import os
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import InputError, OutputError

log = logging.getLogger(__name__)

PIPELINE_RATE = 16000
# Below this peak level (about -60 dBFS) a whole file is treated as silence, not speech.
SILENCE_PEAK = 1e-3
RAW_SUFFIXES = (".raw", ".pcm")
BLOCK_S = 1  # files are decoded and resampled this many seconds at a time…
BLOCK_SAMPLES = 1 << 20  # … but no more samples (all channels) than this at once
MAX_PREALLOC_S = 4 * 3600  # a length a header claims is allocated up to this; longer grows
RATES = (1000, 768000)  # sample rates accepted: a damaged header's 1 Hz would resample 16,000-fold


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
        # max and -min: np.abs would copy the samples (230 MB for an hour)
        return max(float(np.max(self.samples)), -float(np.min(self.samples))) if len(self.samples) else 0.0

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


def _check_wav_complete(path: Path) -> None:
    """libsndfile reads a truncated WAV without complaint; compare the header with the file size.
    Only the header is read: the file may be an hour long."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return
            f.seek(0)
            with wave.open(f) as w:
                declared = w.getnframes() * w.getsampwidth() * w.getnchannels()
                header_end = f.tell()  # wave stops reading at the start of the data chunk
    except Exception:  # wave raises several types (Error, EOFError, RuntimeError…) on damaged headers
        return  # not plain PCM, or not readable as such: let the decoders judge it
    available = path.stat().st_size - header_end
    if header_end > 8 and available < declared:
        raise InputError(path, f"truncated WAV: header declares {declared} bytes of audio, file holds {available}")


class _Sink:
    """Collects decoded audio block by block as 16 kHz mono float32: each block is checked for
    NaN/inf, mixed down and resampled (a soxr stream, the same samples as one-shot resampling)
    into one preallocated buffer. An hour at 44.1 kHz stereo would otherwise be held as several
    full-length float copies (1.3 GB each for the decoded file alone)."""

    def __init__(self, path: Path, rate: int, frames_hint: int | None = None):
        if not RATES[0] <= rate <= RATES[1]:
            raise InputError(path, f"unsupported sample rate {rate} Hz (reads {RATES[0]}–{RATES[1]} Hz)")
        self.path = path
        self.n = 0
        self.total = 0  # input samples seen (all channels), for the NaN/inf count
        self.bad = 0
        estimate = int(np.ceil(frames_hint * PIPELINE_RATE / rate)) + 64 if frames_hint else PIPELINE_RATE * 60
        # a header may lie about the length: trust it up to MAX_PREALLOC_S, grow beyond
        self._buf = np.empty(min(max(estimate, PIPELINE_RATE), MAX_PREALLOC_S * PIPELINE_RATE), np.float32)
        self._stream = None
        if rate != PIPELINE_RATE:
            import soxr

            self._stream = soxr.ResampleStream(rate, PIPELINE_RATE, 1, dtype="float32", quality="HQ")

    def add(self, block: np.ndarray, last: bool = False) -> None:
        """``block``: (frames, channels) or (frames,) floats at the input rate."""
        block = np.asarray(block, dtype=np.float32)
        if block.size:
            finite = np.isfinite(block)
            self.total += block.size
            if not finite.all():
                self.bad += int(block.size - np.count_nonzero(finite))
                block = np.where(finite, block, np.float32(0.0))
        if block.ndim == 2:
            block = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        out = self._stream.resample_chunk(block, last=last) if self._stream is not None else block
        if len(out):
            if self.n + len(out) > len(self._buf):
                grown = np.empty(max(int(len(self._buf) * 1.5), self.n + len(out)), np.float32)
                grown[: self.n] = self._buf[: self.n]
                self._buf = grown
            self._buf[self.n : self.n + len(out)] = out
            self.n += len(out)

    def audio(self) -> Audio:
        if self.total and self.bad == self.total:
            raise InputError(self.path, "every sample is NaN or infinite")
        if self.bad:
            log.warning("%s: %d of %d samples are NaN or infinite; replaced by 0", self.path, self.bad, self.total)
        samples = self._buf[: self.n]
        samples.flags.writeable = False  # Audio keeps a read-only array as it is: no copy
        return Audio(samples, PIPELINE_RATE)


def _decode_raw(path: Path, rate: int) -> Audio:
    """Headerless PCM carries no format: by convention 16-bit little-endian mono."""
    size = path.stat().st_size
    if size % 2:
        raise InputError(path, "raw PCM length is not a whole number of 16-bit samples")
    sink = _Sink(path, rate, size // 2)
    step = min(rate * BLOCK_S, BLOCK_SAMPLES)
    with path.open("rb") as f:
        while True:
            block = np.fromfile(f, dtype="<i2", count=step)
            last = len(block) < step
            sink.add(block.astype(np.float32) / 32768.0, last=last)
            if last:
                return sink.audio()


def _decode_soundfile(path: Path) -> Audio:
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        sink = _Sink(path, f.samplerate, f.frames if f.seekable() else None)
        step = max(1, min(f.samplerate * BLOCK_S, BLOCK_SAMPLES // max(1, f.channels)))
        while True:
            block = f.read(step, dtype="float32", always_2d=True)
            last = len(block) < step
            sink.add(block, last=last)
            if last:
                return sink.audio()


def _decode_pyav(path: Path) -> Audio:
    """Fallback decoder: FFmpeg through PyAV handles files libsndfile rejects."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        if stream.rate and not RATES[0] <= stream.rate <= RATES[1]:
            raise InputError(path, f"unsupported sample rate {stream.rate} Hz (reads {RATES[0]}–{RATES[1]} Hz)")
        seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        sink = _Sink(path, PIPELINE_RATE, int(seconds * PIPELINE_RATE) if seconds else None)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=PIPELINE_RATE)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                sink.add(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            sink.add(out.to_ndarray().reshape(-1))
    if not sink.n:
        raise ValueError("no audio frames decoded")
    return sink.audio()


def load_audio(path: str | Path, raw_rate: int = PIPELINE_RATE) -> Audio:
    """Read an audio file as 16 kHz mono. Raises :class:`InputError` naming the file.

    Decoded and resampled in blocks, so memory is the 16 kHz result (230 MB an hour) and not
    several full-length copies of the file's own format."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        empty = path.stat().st_size == 0
    except OSError as err:
        raise InputError(path, f"cannot read ({err.strerror or err})") from None
    if empty:
        raise InputError(path, "empty file")
    if path.suffix.lower() in RAW_SUFFIXES:
        audio = _decode_raw(path, raw_rate)
    else:
        _check_wav_complete(path)
        try:
            audio = _decode_soundfile(path)
        except InputError:
            raise
        except Exception as sf_error:  # libsndfile raises several types; any failure → PyAV
            log.debug("libsndfile could not read %s (%s); trying PyAV", path, sf_error)
            try:
                audio = _decode_pyav(path)
            except InputError:
                raise
            except Exception as av_error:
                raise InputError(path, f"not a readable audio file ({_first_line(av_error)})") from None
    if len(audio.samples) == 0:
        raise InputError(path, "no audio samples")
    if audio.peak < SILENCE_PEAK:
        raise InputError(path, f"silent (peak {audio.peak:.1e} below {SILENCE_PEAK:.0e})")
    return audio


def write_wav(path: str | Path, audio: Audio) -> Path:
    """Write 16-bit PCM WAV (the format every tool reads) through a temporary file and a rename,
    so a failed write leaves no torn file. Raises :class:`OutputError` naming ``path``."""
    import soundfile as sf

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with sf.SoundFile(str(tmp), "w", samplerate=audio.sample_rate, channels=1, subtype="PCM_16", format="WAV") as f:
            step = BLOCK_SAMPLES  # in blocks: an hour-long turn (a trace's utterance) is no extra copy
            for i in range(0, len(audio.samples), step):
                f.write(Audio(audio.samples[i : i + step], audio.sample_rate).to_int16())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # libsndfile reports a full disk as a RuntimeError
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        reason = err.strerror if isinstance(err, OSError) and err.strerror else _first_line(err)
        raise OutputError(path, f"cannot write ({reason})") from None
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__

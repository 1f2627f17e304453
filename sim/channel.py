"""The acoustic channel between a simulated user and the microphone.

``apply`` runs speech through, in the order sound meets it: the room (reverberation from a
synthetic impulse response), ambient noise at a chosen SNR, the microphone's gain, and the
converter's clipping. SNR is measured against the speech's *active* level (its loud frames,
not its pauses), as speech benchmarks do, and against the reverberant speech that reaches the
microphone. Every random choice comes from the ``random.Random`` passed in, so a seed
reproduces the output exactly. All audio is 16 kHz mono pipeline audio; the output keeps the
input's length and timing (the direct path arrives at sample 0).
"""

from __future__ import annotations

import functools
import logging
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy.signal import fftconvolve

from core.audio import PIPELINE_RATE, Audio, load_audio

log = logging.getLogger(__name__)

NOISE_KINDS = ("white", "pink", "babble", "file")
SNR_LIMITS = (-20.0, 80.0)
RT60_LIMITS = (0.05, 3.0)
DRR_LIMITS = (-20.0, 30.0)
GAIN_LIMITS = (-60.0, 60.0)
# Active level: 20 ms frames within 40 dB of the loudest frame count as speech.
ACTIVE_FRAME_S = 0.02
ACTIVE_RANGE_DB = 40.0
# Impulse response: direct path at 0, a few early reflections within 3-25 ms, then a diffuse
# exponential tail from 5 ms, computed for 1.2 x RT60 (by then it is 72 dB down).
DEFAULT_DRR_DB = 3.0  # direct-to-reverberant ratio of a speaker a couple of metres away
EARLY_REFLECTIONS = 4
EARLY_WINDOW_S = (0.003, 0.025)
TAIL_ONSET_S = 0.005
RIR_LENGTH_RT60 = 1.2
BABBLE_TALKERS = 6  # fewer talkers than this and the words become intelligible
BABBLE_TEXTS = (
    "I think we should leave a bit earlier tomorrow because the traffic was terrible this morning.",
    "Did you see the game last night? They played much better in the second half.",
    "My sister is coming over on Sunday, so we need to clean the guest room.",
    "The new cafe downtown has really good sandwiches but it gets crowded at noon.",
    "He said the report would be finished by Friday, but I doubt it.",
    "We could paint the fence this weekend if the weather stays dry.",
    "Remember to call your grandmother, it is her birthday next week.",
    "That movie was far too long, and the ending made no sense at all.",
)


@dataclass(frozen=True)
class Channel:
    """An acoustic condition. ``snr_db`` None means no noise; ``rt60_s`` None, no room."""

    snr_db: float | None = None
    noise: str = "white"  # white | pink | babble | file
    noise_file: str | None = None  # for noise == "file": any format load_audio reads
    rt60_s: float | None = None
    drr_db: float = DEFAULT_DRR_DB  # direct-to-reverberant ratio, with rt60_s
    gain_db: float = 0.0
    clip_level: float | None = None  # hard clip at ±this (full scale 1.0), after gain

    def __post_init__(self) -> None:
        _check_number("snr_db", self.snr_db, SNR_LIMITS, optional=True)
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"Channel.noise: {self.noise!r} is not one of {', '.join(NOISE_KINDS)}")
        if (self.noise == "file") != bool(self.noise_file):
            raise ValueError("Channel.noise_file: give a file exactly when noise is 'file'")
        if self.snr_db is None and self.noise != "white":
            raise ValueError(f"Channel.snr_db: noise {self.noise!r} needs an SNR")
        _check_number("rt60_s", self.rt60_s, RT60_LIMITS, optional=True)
        _check_number("drr_db", self.drr_db, DRR_LIMITS)
        _check_number("gain_db", self.gain_db, GAIN_LIMITS)
        _check_number("clip_level", self.clip_level, (1e-6, 1.0), optional=True)

    @property
    def id(self) -> str:
        """Stable name for traces, e.g. ``pink@10dB+rt0.4``; ``parse_condition`` reads it back."""
        return "+".join(token for token, _ in _components(self)) or "clean"


def _components(channel: Channel) -> list[tuple[str, str]]:
    """Each part of the condition as (id token, words), in the order sound meets them."""
    parts = []
    if channel.snr_db is not None:
        is_file = channel.noise == "file"
        kind = f"file:{channel.noise_file}" if is_file else channel.noise
        words = f"noise from {Path(channel.noise_file).name}" if is_file else f"{channel.noise} noise"
        parts.append((f"{kind}@{channel.snr_db:g}dB", f"{words} at {channel.snr_db:g} dB SNR"))
    if channel.rt60_s is not None:
        drr = f",drr{channel.drr_db:g}" if channel.drr_db != DEFAULT_DRR_DB else ""
        parts.append(
            (f"rt{channel.rt60_s:g}{drr}", f"reverberation RT60 {channel.rt60_s:g} s (DRR {channel.drr_db:g} dB)")
        )
    if channel.gain_db:
        parts.append((f"gain{channel.gain_db:+g}dB", f"gain {channel.gain_db:+g} dB"))
    if channel.clip_level is not None:
        parts.append((f"clip{channel.clip_level:g}", f"clipped at {channel.clip_level:g}"))
    return parts


def _check_number(field: str, value, limits: tuple[float, float], optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"Channel.{field}: {value!r} is not a finite number")
    if not limits[0] <= value <= limits[1]:
        raise ValueError(f"Channel.{field}: {value:g} is outside {limits[0]:g}..{limits[1]:g}")


def describe(channel: Channel) -> str:
    """The condition in words, for reports."""
    return ", ".join(words for _, words in _components(channel)) or "clean"


# ---------------------------------------------------------------- levels and noise


def _np_rng(rng: random.Random | int) -> np.random.Generator:
    """A numpy generator drawn from the caller's Random (or seed), so one seed drives everything."""
    seed = rng if isinstance(rng, int) else rng.getrandbits(64)
    return np.random.default_rng(seed)


def active_power(samples: np.ndarray, rate: int = PIPELINE_RATE) -> float:
    """Mean power over the frames within ACTIVE_RANGE_DB of the loudest (pauses do not count)."""
    x = np.asarray(samples, dtype=np.float64)
    frame = max(1, int(ACTIVE_FRAME_S * rate))
    n = len(x) // frame
    if n == 0:
        return float(np.mean(x**2)) if len(x) else 0.0
    powers = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    top = powers.max()
    if top <= 0:
        return 0.0
    return float(powers[powers >= top * 10 ** (-ACTIVE_RANGE_DB / 10)].mean())


def white_noise(n: int, rng: random.Random | int) -> np.ndarray:
    return _np_rng(rng).standard_normal(n)


def pink_noise(n: int, rng: random.Random | int) -> np.ndarray:
    """1/f power (-3 dB per octave): white noise shaped by 1/sqrt(f) in the frequency domain."""
    spectrum = np.fft.rfft(_np_rng(rng).standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0.0  # no DC offset
    pink = np.fft.irfft(spectrum, n)
    return pink / (np.sqrt(np.mean(pink**2)) or 1.0)


def _loop(samples: np.ndarray, n: int, offset: int) -> np.ndarray:
    """``n`` samples of ``samples`` repeated end to end, starting at ``offset``."""
    return samples[(offset + np.arange(n)) % len(samples)]


def babble_noise(
    sources: Sequence[Audio], n: int, rng: random.Random | int, talkers: int = BABBLE_TALKERS
) -> np.ndarray:
    """Several talkers at once: up to ``talkers`` of ``sources``, each looped from a random
    point and brought to the same active level, summed and normalized to unit power."""
    usable = [s for s in sources if _check_pipeline("babble", s) and active_power(s.samples) > 0]
    if not usable:
        raise ValueError("babble: no non-silent speech to build babble from")
    g = _np_rng(rng)
    chosen = g.choice(len(usable), size=min(talkers, len(usable)), replace=False)
    mix = np.zeros(n)
    for i in chosen:
        speech = usable[i].samples.astype(np.float64)
        mix += _loop(speech, n, int(g.integers(len(speech)))) / math.sqrt(active_power(speech))
    return mix / (np.sqrt(np.mean(mix**2)) or 1.0)


@functools.lru_cache(maxsize=4)
def babble_sources(count: int = 2 * BABBLE_TALKERS, cache_dir: str | None = None) -> tuple[Audio, ...]:
    """Chatter from the local voices (each sentence by a different voice, in catalog order):
    the default material for babble. Fixed, so it is synthesized once per process."""
    from sim.voices import speak, voice_catalog

    voices = voice_catalog()
    if not voices:
        raise ValueError("babble: no synthesizer installed to make babble from")
    log.info("synthesizing %d babble utterances", count)
    return tuple(speak(voices[i % len(voices)], BABBLE_TEXTS[i % len(BABBLE_TEXTS)], cache_dir) for i in range(count))


@functools.lru_cache(maxsize=8)
def _noise_recording(path: str) -> np.ndarray:
    return load_audio(path).samples.astype(np.float64)


def _noise(channel: Channel, n: int, g: np.random.Generator, babble: Sequence[Audio] | None) -> np.ndarray:
    seed = int(g.integers(2**63))
    if channel.noise == "white":
        return white_noise(n, seed)
    if channel.noise == "pink":
        return pink_noise(n, seed)
    if channel.noise == "babble":
        return babble_noise(babble_sources() if babble is None else babble, n, seed)
    recording = _noise_recording(str(channel.noise_file))
    return _loop(recording, n, int(g.integers(len(recording))))


# ---------------------------------------------------------------- room


def room_impulse_response(
    rt60_s: float, rng: random.Random | int, drr_db: float = DEFAULT_DRR_DB, rate: int = PIPELINE_RATE
) -> np.ndarray:
    """A synthetic room: unit direct path at sample 0, a few early reflections, and Gaussian
    noise decaying 60 dB in ``rt60_s``; the reverberant part scaled to the given DRR."""
    _check_number("rt60_s", rt60_s, RT60_LIMITS)
    _check_number("drr_db", drr_db, DRR_LIMITS)
    g = _np_rng(rng)
    n = int(RIR_LENGTH_RT60 * rt60_s * rate)
    t = np.arange(n) / rate
    reverberant = g.standard_normal(n) * np.exp(-math.log(1000.0) * t / rt60_s)
    reverberant[: int(TAIL_ONSET_S * rate)] = 0.0
    early = g.integers(int(EARLY_WINDOW_S[0] * rate), int(EARLY_WINDOW_S[1] * rate), EARLY_REFLECTIONS)
    # each reflection about as strong as the tail around it, so the tail still decays smoothly
    reverberant[early] += (
        g.choice([-1.0, 1.0], EARLY_REFLECTIONS)
        * g.uniform(2.0, 4.0, EARLY_REFLECTIONS)
        * np.exp(-math.log(1000.0) * t[early] / rt60_s)
    )
    reverberant *= math.sqrt(10 ** (-drr_db / 10) / np.sum(reverberant**2))
    reverberant[0] = 1.0
    return reverberant


def _reverberate(x: np.ndarray, channel: Channel, g: np.random.Generator) -> np.ndarray:
    rir = room_impulse_response(channel.rt60_s, int(g.integers(2**63)), channel.drr_db)
    wet = fftconvolve(x, rir)[: len(x)]
    # keep the level comparable: the same active power as the dry speech
    dry_p, wet_p = active_power(x), active_power(wet)
    return wet * math.sqrt(dry_p / wet_p) if wet_p > 0 else wet


# ---------------------------------------------------------------- the channel


def _check_pipeline(field: str, audio: Audio) -> bool:
    if not isinstance(audio, Audio):
        raise ValueError(f"{field}: expected core.audio.Audio, got {type(audio).__name__}")
    if audio.sample_rate != PIPELINE_RATE:
        raise ValueError(
            f"{field}: {audio.sample_rate} Hz; the channel works on {PIPELINE_RATE} Hz "
            "pipeline audio (core.audio.to_pipeline)"
        )
    return True


def apply(channel: Channel, audio: Audio, rng: random.Random | int, babble: Sequence[Audio] | None = None) -> Audio:
    """``audio`` as the microphone hears it through ``channel``. ``babble``: speech to build
    babble noise from (default: babble_sources(), synthesized once per process)."""
    _check_pipeline("audio", audio)
    g = _np_rng(rng)
    x = audio.samples.astype(np.float64)
    if channel.rt60_s is not None:
        x = _reverberate(x, channel, g)
    if channel.snr_db is not None:
        speech_p = active_power(x)
        if speech_p <= 0:
            raise ValueError("audio: silent, so an SNR cannot be set (it is measured against the speech)")
        noise = _noise(channel, len(x), g, babble)
        noise_p = float(np.mean(noise**2))
        x = x + noise * math.sqrt(speech_p / (noise_p * 10 ** (channel.snr_db / 10)))
    if channel.gain_db:
        x = x * 10 ** (channel.gain_db / 20)
    if channel.clip_level is not None:
        x = np.clip(x, -channel.clip_level, channel.clip_level)
    return Audio(x.astype(np.float32), audio.sample_rate)


def mix(foreground: Audio, background: Audio, at_s: float, level_db: float) -> Audio:
    """``background`` (e.g. speech not addressed to the assistant) added to ``foreground``
    from ``at_s`` seconds, its active level ``level_db`` relative to the foreground's. The
    result is as long as needed to hold both."""
    _check_pipeline("foreground", foreground)
    _check_pipeline("background", background)
    if not (math.isfinite(at_s) and at_s >= 0):
        raise ValueError(f"at_s: {at_s!r} must be a time in seconds >= 0")
    if not math.isfinite(level_db):
        raise ValueError(f"level_db: {level_db!r} is not a finite number")
    fg_p, bg_p = active_power(foreground.samples), active_power(background.samples)
    if fg_p <= 0 or bg_p <= 0:
        raise ValueError(f"{'foreground' if fg_p <= 0 else 'background'}: silent, so level_db has no reference")
    start = int(round(at_s * foreground.sample_rate))
    out = np.zeros(max(len(foreground.samples), start + len(background.samples)))
    out[: len(foreground.samples)] = foreground.samples
    scale = math.sqrt(fg_p / bg_p * 10 ** (level_db / 10))
    out[start : start + len(background.samples)] += background.samples * scale
    return Audio(out.astype(np.float32), foreground.sample_rate)


# ---------------------------------------------------------------- named conditions

CONDITIONS: dict[str, Channel] = {
    "clean": Channel(),
    "white@20": Channel(snr_db=20, noise="white"),
    "white@10": Channel(snr_db=10, noise="white"),
    "white@5": Channel(snr_db=5, noise="white"),
    "pink@20": Channel(snr_db=20, noise="pink"),
    "pink@10": Channel(snr_db=10, noise="pink"),
    "pink@5": Channel(snr_db=5, noise="pink"),
    "babble@10": Channel(snr_db=10, noise="babble"),
    "babble@5": Channel(snr_db=5, noise="babble"),
    "reverb0.3": Channel(rt60_s=0.3),
    "reverb0.6": Channel(rt60_s=0.6),
    "far-field": Channel(snr_db=10, noise="pink", rt60_s=0.6, drr_db=0.0),
    "clipped": Channel(gain_db=12, clip_level=0.5),
}

_NUM = r"[+-]?\d+(?:\.\d+)?"
_PARTS = (
    ("noise", re.compile(rf"(?P<kind>white|pink|babble|file:.+)@(?P<snr>{_NUM})(?:db)?", re.I)),
    ("room", re.compile(rf"(?:rt|reverb)(?P<rt>{_NUM})(?:,drr(?P<drr>{_NUM}))?", re.I)),
    ("gain", re.compile(rf"gain(?P<gain>{_NUM})(?:db)?", re.I)),
    ("clip", re.compile(rf"clip(?P<clip>{_NUM})", re.I)),
)
# Parts are joined by "+", but "+" also signs a gain ("gain+6dB") and may sit in a file name:
# split only where a part's keyword follows.
_SPLIT = re.compile(r"\+(?=white|pink|babble|file:|rt|reverb|gain|clip|clean)", re.I)


def _condition_fields(part: str) -> tuple[str, dict]:
    for what, pattern in _PARTS:
        m = pattern.fullmatch(part)
        if not m:
            continue
        if what == "noise":
            kind = m["kind"]
            fields = {"snr_db": float(m["snr"]), "noise": kind.lower()}
            if kind.lower().startswith("file:"):
                fields.update(noise="file", noise_file=kind[len("file:") :])
            return what, fields
        if what == "room":
            return what, {"rt60_s": float(m["rt"]), **({"drr_db": float(m["drr"])} if m["drr"] else {})}
        if what == "gain":
            return what, {"gain_db": float(m["gain"])}
        return what, {"clip_level": float(m["clip"])}
    raise ValueError(
        f"condition: cannot read {part!r}; expected white|pink|babble@SNR, file:PATH@SNR, "
        f"rt SECONDS, gain DB, clip LEVEL, or one of {', '.join(CONDITIONS)}"
    )


def parse_condition(text: str) -> Channel:
    """A channel from a name in CONDITIONS or a ``+``-joined id such as ``pink@10+rt0.4+gain-6``
    (what ``Channel.id`` writes)."""
    text = text.strip()
    if text in CONDITIONS:
        return CONDITIONS[text]
    fields: dict = {}
    seen: set[str] = set()
    for part in _SPLIT.split(text) if text else ["clean"]:
        if part == "clean":
            continue
        what, values = _condition_fields(part)
        if what in seen:
            raise ValueError(f"condition {text!r}: more than one {what} part")
        seen.add(what)
        fields.update(values)
    return Channel(**fields)


def parse_snr(values: Iterable[str | float], noise: str = "white") -> tuple[Channel, ...]:
    """Channels for ``--snr 20 10 5`` (``clean``/``inf`` for no noise), all with one noise kind."""
    if isinstance(values, (str, int, float)):
        values = [values]
    channels = []
    for value in values:
        if isinstance(value, str) and value.strip().lower() in ("clean", "inf", "none"):
            channels.append(Channel())
            continue
        try:
            snr = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"snr: {value!r} is not a number of dB (or 'clean')") from None
        channels.append(Channel(snr_db=snr, noise=noise))
    return tuple(channels)

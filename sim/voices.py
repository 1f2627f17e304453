"""Synthetic user voices: which local voices exist, sampling one per simulated user, speaking.

A :class:`Voice` is a synthesizer voice plus a speaking rate and a pitch shift; ``speak`` turns
text into 16 kHz mono pipeline audio with it. Voices can be held out (``exclude``) so that
training and test sets are spoken by different voices.

Synthesis is slow (festival ~0.5 s per call), so results are memoized in process and,
when a cache folder is given, stored there as float WAV files named by the hash of
(voice, text): any process may share the folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from core.audio import Audio, to_pipeline
from core.model_files import piper_voice
from stages.tts import EspeakSynth, FestivalSynth, FliteSynth, PiperSynth, Synthesizer

log = logging.getLogger(__name__)

BACKENDS = ("festival", "flite", "espeak-ng", "piper")
RATE_LIMITS = (0.5, 2.0)  # beyond these the OS synthesizers stop sounding like speech
PITCH_LIMIT = 12.0  # semitones either way
RATE_RANGE = (0.85, 1.2)  # what sample_voice draws from
PITCH_RANGE = (-2.0, 2.0)
# flite's awb_time is a limited-domain voice: it can only say the time.
FLITE_LIMITED = frozenset({"awb_time"})
# espeak-ng voices (language[+variant]) offered when installed: distinct accents and timbres.
ESPEAK_VOICES = ("en-us", "en-us+f3", "en-us+m3", "en-gb", "en-gb+f4", "en-gb-scotland")
# festival voice names become Scheme code, (voice_NAME): allow nothing else.
FESTIVAL_NAME = re.compile(r"[A-Za-z0-9_]+")
CACHE_VERSION = 1  # bump when synthesis changes so old cache files are not reused
MEMO_SIZE = 512
LIST_TIMEOUT_S = 20


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker. ``name`` is the synthesizer's voice (festival: a voice name,
    flite: -voice, espeak-ng: language[+variant], piper: the .onnx model path); ``pitch`` is in
    semitones relative to the voice's own."""

    backend: str
    name: str
    rate: float = 1.0
    pitch: float = 0.0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"Voice.backend: {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("Voice.name: empty")
        if self.backend == "festival" and not FESTIVAL_NAME.fullmatch(self.name):
            raise ValueError(f"Voice.name: {self.name!r} is not a festival voice name (letters, digits, _)")
        if not (_is_number(self.rate) and RATE_LIMITS[0] <= self.rate <= RATE_LIMITS[1]):
            raise ValueError(f"Voice.rate: {self.rate} is outside {RATE_LIMITS[0]}..{RATE_LIMITS[1]}")
        if not (_is_number(self.pitch) and abs(self.pitch) <= PITCH_LIMIT):
            raise ValueError(f"Voice.pitch: {self.pitch} semitones is outside ±{PITCH_LIMIT:g}")

    @property
    def short_name(self) -> str:
        """The voice's name without a path (piper models are named by their file's stem)."""
        return Path(self.name).stem if self.backend == "piper" else self.name

    @property
    def base(self) -> str:
        """The voice without rate and pitch, e.g. ``flite:awb``."""
        return f"{self.backend}:{self.short_name}"

    @property
    def id(self) -> str:
        """Stable id for traces, e.g. ``flite:awb:r0.9`` or ``espeak-ng:en-gb:r1.1:p-1.5``."""
        pitch = f":p{self.pitch:+g}" if self.pitch else ""
        return f"{self.base}:r{self.rate:g}{pitch}"


def _synth(voice: Voice) -> Synthesizer:
    if voice.backend == "festival":
        return FestivalSynth(voice.name, voice.rate, semitones=voice.pitch)
    if voice.backend == "flite":
        return FliteSynth(voice.name, voice.rate, semitones=voice.pitch)
    if voice.backend == "espeak-ng":
        return EspeakSynth(voice.name, voice.rate, semitones=voice.pitch)
    return _piper(voice)


@functools.lru_cache(maxsize=8)
def _piper(voice: Voice) -> PiperSynth:
    """Loading a piper model takes a while; keep a few loaded."""
    return PiperSynth(voice.name, voice.rate, semitones=voice.pitch)


@functools.lru_cache(maxsize=MEMO_SIZE)
def _synthesize(voice: Voice, text: str) -> Audio:
    audio = _synth(voice).synthesize(text)
    if len(audio.samples) == 0:
        raise RuntimeError(f"{voice.id} produced no audio for {text!r}")
    return to_pipeline(audio.samples, audio.sample_rate)


def _cache_path(cache_dir: Path, voice: Voice, text: str) -> Path:
    key = json.dumps([CACHE_VERSION, voice.backend, voice.name, voice.rate, voice.pitch, text])
    digest = hashlib.sha256(key.encode()).hexdigest()
    return cache_dir / digest[:2] / f"{digest}.wav"


def _read_cached(path: Path) -> Audio:
    import soundfile as sf

    samples, rate = sf.read(str(path), dtype="float32")
    return Audio(samples, rate)


def _write_cached(path: Path, audio: Audio) -> None:
    """Float WAV (exactly what was synthesized), written atomically so readers never see half."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".wav", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, audio.samples, audio.sample_rate, subtype="FLOAT")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def speak(voice: Voice, text: str, cache_dir: str | Path | None = None) -> Audio:
    """``text`` spoken by ``voice`` as 16 kHz mono audio (memoized; on disk too with cache_dir)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text: nothing to speak")
    text = " ".join(text.split())
    if cache_dir is None:
        return _synthesize(voice, text)
    path = _cache_path(Path(cache_dir), voice, text)
    if path.is_file():
        return _read_cached(path)
    audio = _synthesize(voice, text)
    _write_cached(path, audio)
    return audio


def _tool_output(cmd: list[str]) -> str:
    if not shutil.which(cmd[0]):
        return ""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=LIST_TIMEOUT_S).stdout
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("could not list voices with %s: %s", cmd[0], err)
        return ""


def _festival_voices() -> list[str]:
    if not shutil.which("text2wave"):
        return []
    lists = re.findall(r"\(([^()]*)\)", _tool_output(["festival", "-b", "(print (voice.list))"]))
    return [n for n in lists[-1].split() if FESTIVAL_NAME.fullmatch(n)] if lists else []


def _flite_voices() -> list[str]:
    out = _tool_output(["flite", "-lv"])
    names = out.split(":", 1)[1].split() if ":" in out else []
    return [n for n in names if n not in FLITE_LIMITED]


def _espeak_table(selector: str, column: int) -> set[str]:
    """One column of ``espeak-ng --voices=SELECTOR`` (its header line skipped)."""
    rows = _tool_output(["espeak-ng", f"--voices={selector}"]).splitlines()[1:]
    return {r.split()[column] for r in rows if len(r.split()) > column}


def _espeak_voices() -> list[str]:
    languages = _espeak_table("en", 1)
    variants = {f.split("/")[-1] for f in _espeak_table("variant", 4)}
    found = []
    for name in ESPEAK_VOICES:
        lang, _, variant = name.partition("+")
        if lang in languages and (not variant or variant in variants):
            found.append(name)
    return found


@functools.lru_cache(maxsize=1)
def _os_voices() -> tuple[Voice, ...]:
    voices = [Voice("festival", n) for n in _festival_voices()]
    voices += [Voice("flite", n) for n in _flite_voices()]
    voices += [Voice("espeak-ng", n) for n in _espeak_voices()]
    log.info("voices on this machine: %s", ", ".join(v.base for v in voices))
    return tuple(voices)


def voice_catalog(piper_models: Iterable[str] = ()) -> tuple[Voice, ...]:
    """Every voice installed here (rate 1, pitch 0), in a stable order; piper voices for the
    given model paths (a missing model raises ModelMissing saying how to get one)."""
    if isinstance(piper_models, str):
        piper_models = (piper_models,)
    piper = tuple(Voice("piper", str(piper_voice(m))) for m in piper_models if m)
    return _os_voices() + piper


def _matches(voice: Voice, key: str) -> bool:
    return key in (voice.id, voice.base, voice.short_name, voice.name, voice.backend)


def held_out(voices: Sequence[Voice], exclude: Iterable[str]) -> list[Voice]:
    """``voices`` without those named in ``exclude`` (a voice id, ``backend:name``, a bare
    name, or a whole backend). A name matching nothing is an error: a typo would silently let
    test voices into training."""
    keys = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    for key in keys:
        if not any(_matches(v, key) for v in voices):
            known = ", ".join(v.base for v in voices)
            raise ValueError(f"exclude: {key!r} names no voice in the catalog ({known})")
    return [v for v in voices if not any(_matches(v, k) for k in keys)]


def _check_range(field: str, bounds: tuple[float, float], limits: tuple[float, float]) -> None:
    low, high = bounds
    if not (limits[0] <= low <= high <= limits[1]):
        raise ValueError(f"{field}: {bounds} must be (low, high) within {limits[0]:g}..{limits[1]:g}")


def sample_voice(
    rng: random.Random,
    exclude: Iterable[str] = (),
    catalog: Sequence[Voice] | None = None,
    rate_range: tuple[float, float] = RATE_RANGE,
    pitch_range: tuple[float, float] = PITCH_RANGE,
) -> Voice:
    """A voice from the catalog (minus ``exclude``) with a random rate and pitch; the same
    ``rng`` state gives the same voice. Rate and pitch are rounded so ids (and the cache)
    repeat."""
    _check_range("rate_range", rate_range, RATE_LIMITS)
    _check_range("pitch_range", pitch_range, (-PITCH_LIMIT, PITCH_LIMIT))
    pool = held_out(voice_catalog() if catalog is None else catalog, exclude)
    if not pool:
        raise ValueError("exclude: every voice in the catalog is held out")
    base = pool[rng.randrange(len(pool))]
    return replace(
        base, rate=round(rng.uniform(*rate_range), 2), pitch=round(rng.uniform(*pitch_range), 1) + 0.0
    )  # + 0.0: no -0.0

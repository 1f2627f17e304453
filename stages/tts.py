"""Speech synthesis: piper when a voice model is configured, else the OS synthesizers.

Replies are synthesized sentence by sentence, and the first sentence is ready before the rest
are started, so a player can begin speaking early; ``Speech.first_chunk_ms`` records when.
Audio keeps the synthesizer's own sample rate (it travels with the audio).
"""

from __future__ import annotations

import abc
import atexit
import concurrent.futures
import logging
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from core.audio import Audio
from core.errors import ModelMissing
from core.model_files import piper_voice
from core.records import Outcome, Speech

log = logging.getLogger(__name__)

SUBPROCESS_TIMEOUT_S = 30
OS_BACKENDS = ("festival", "flite", "espeak-ng")
# festival's Scheme heap in cells. Debian's default makes a resident 325 MB interpreter; 1M
# cells is ~50 MB with the HTS voice and synthesizes a 294-word sentence (replies go a sentence
# at a time; docs/wake.md "Memory"). Too small a heap fails with "SIOD ERROR: ran out of storage".
FESTIVAL_HEAP = 1_000_000
# espeak-ng's -p scale (0-99, 50 = the voice's own pitch) moves f0 by about one semitone per 7
# units near the middle (measured with en-us: -p 20/50/80 gave 87/109/143 Hz).
ESPEAK_P_PER_SEMITONE = 7.0
PREPARED_MAX = 4  # first chunks synthesized ahead and not yet spoken (a guess the user talked past is dropped)
MIN_CLAUSE_WORDS = 2  # a first clause said on its own, and what follows it, have at least this many words
# flite voices that ignore the f0_shift feature (measured: same samples with and without it).
FLITE_FIXED_F0 = frozenset({"rms"})


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p.strip()]
    return parts or ([text.strip()] if text.strip() else [])


def speech_chunks(text: str) -> list[str]:
    """What is synthesized at a time: sentences, and the first sentence's first clause on its
    own when it ends in a comma, colon or semicolon and both sides have two words or more
    ("In Wilkerson," / "tomorrow: sunny, high of 72…"): the player starts on a short chunk
    while the rest is made, as streaming TTS splits at punctuation."""
    parts = sentences(text)
    clause = re.search(r"[,;:]\s", parts[0]) if parts else None
    if clause is not None:
        head, rest = parts[0][: clause.start() + 1], parts[0][clause.end() :]
        if len(head.split()) >= MIN_CLAUSE_WORDS and len(rest.split()) >= MIN_CLAUSE_WORDS:
            parts[:1] = [head, rest]
    return parts


class Synthesizer(Protocol):
    name: str
    voice: str

    def synthesize(self, text: str) -> Audio: ...


def _read_wav(path: Path) -> Audio:
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return Audio(data.mean(axis=1), rate)


def pitch_factor(semitones: float) -> float:
    return 2.0 ** (semitones / 12.0)


def replay_faster(audio: Audio, factor: float) -> Audio:
    """The same samples labelled with a higher rate: played ``factor`` times faster they sound
    ``factor`` higher in pitch and formants (a smaller speaker) and shorter. Synthesizers without
    a pitch control shift pitch this way, after speaking ``factor`` times slower."""
    if factor == 1.0:
        return audio
    return Audio(audio.samples, int(round(audio.sample_rate * factor)))


def _run(cmd: list[str], what: str, stdin: str | None = None) -> None:
    try:
        subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=True, timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.CalledProcessError as err:
        msg = (err.stderr or "").strip().splitlines()
        raise RuntimeError(f"{what} failed: {msg[-1] if msg else err}") from None


class _OsSynth:
    """An OS synthesizer's voice settings: rate, and pitch relative to the voice's own."""

    name = ""
    voice = ""
    rate = 1.0
    semitones = 0.0  # pitch relative to the voice's own
    native_pitch = True  # False: pitch is shifted by replay_faster after slower speech

    @property
    def _tempo(self) -> float:
        """The speaking rate to ask the tool for (slower when replay_faster will speed it up)."""
        return self.rate if self.native_pitch else self.rate / pitch_factor(self.semitones)


class _FileSynth(_OsSynth, abc.ABC):
    """An OS synthesizer run once per call, writing a WAV file."""

    @abc.abstractmethod
    def _command(self, text: str, out: Path) -> tuple[list[str], str | None]:
        """The command line (and its stdin) that writes ``text`` as speech to ``out``."""

    def synthesize(self, text: str) -> Audio:
        with tempfile.TemporaryDirectory(prefix="tts-") as tmp:
            out = Path(tmp) / "speech.wav"
            cmd, stdin = self._command(text, out)
            _run(cmd, self.name, stdin)
            audio = _read_wav(out)
        return audio if self.native_pitch else replay_faster(audio, pitch_factor(self.semitones))


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


class FestivalProcess:
    """One festival interpreter kept running for a voice: starting festival and loading an HTS
    voice costs ~0.4 s, more than synthesizing a short reply (measured in docs/results.md "Benchmarks").
    Requests go in on stdin; each answers a marker line on stdout once its WAV is written."""

    MARK = "@@assistant-done"

    def __init__(self, voice: str):
        self.voice = voice
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="festival-"))
        self._n = 0

    def _start(self) -> subprocess.Popen:
        # stdbuf: festival's stdout is block-buffered on a pipe, so the marker would never arrive
        cmd = (["stdbuf", "-o0"] if shutil.which("stdbuf") else []) + [
            "festival",
            "--heap",
            str(FESTIVAL_HEAP),
            "--pipe",
        ]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
        )
        said = self._send(proc, f'(print (member_string "{self.voice}" (voice.list)))')
        if "nil" in said.split():
            proc.stdin.close()
            raise ModelMissing(f"festival/{self.voice}", "festival has no such voice (see `festival` (voice.list))")
        self._send(proc, f"(voice_{self.voice})(set! assistant_hts_base hts_engine_params)")
        return proc

    def _send(self, proc: subprocess.Popen, scheme: str) -> str:
        """Run ``scheme``; returns what it printed."""
        proc.stdin.write(f'{scheme}\n(print "{self.MARK}")\n')
        proc.stdin.flush()
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        said: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"festival exited (voice {self.voice})")
            if self.MARK in line:
                return "".join(said)
            said.append(line)
        raise RuntimeError("festival did not answer in time")

    def warm(self) -> None:
        """Start the interpreter in the background now: the first reply should not pay for it,
        and neither should start-up (the first synthesize waits for it if need be)."""

        def start() -> None:
            with self._lock:
                if self._proc is None or self._proc.poll() is not None:
                    try:
                        self._proc = self._start()
                    except Exception as err:  # reported again, with its cause, when first used
                        log.debug("festival warm-up failed: %s", err)

        threading.Thread(target=start, name="festival-warm", daemon=True).start()

    def synthesize(self, text: str, tempo: float) -> Audio:
        if self.voice.endswith("_hts"):
            speed = f'(set! hts_engine_params (cons (list "-r" {tempo:.3f}) assistant_hts_base))'
        else:
            speed = f"(Parameter.set 'Duration_Stretch {1.0 / tempo:.3f})"
        with self._lock:
            self._n += 1
            out = self._tmp / f"say{self._n % 2}.wav"
            request = f'{speed}(utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) "{out}" \'riff)'
            for attempt in (1, 2):  # a festival that died is started again once
                try:
                    if self._proc is None or self._proc.poll() is not None:
                        self._proc = self._start()
                    out.unlink(missing_ok=True)
                    self._send(self._proc, request)
                    if out.is_file():
                        return _read_wav(out)
                    raise RuntimeError(f"festival wrote no audio for {text[:40]!r}")
                except (OSError, RuntimeError) as err:
                    self.close_process()
                    if attempt == 2:
                        raise RuntimeError(f"festival failed: {err}") from None
        raise AssertionError("unreachable")

    def close_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=2)
            except Exception:  # already gone, or stuck: make sure it is gone
                proc.kill()

    def close(self) -> None:
        with self._lock:
            self.close_process()
        shutil.rmtree(self._tmp, ignore_errors=True)


_FESTIVALS: dict[str, FestivalProcess] = {}
_FESTIVALS_LOCK = threading.Lock()


def festival_process(voice: str) -> FestivalProcess:
    """The shared festival interpreter for ``voice`` (one per voice per process)."""
    with _FESTIVALS_LOCK:
        if voice not in _FESTIVALS:
            _FESTIVALS[voice] = FestivalProcess(voice)
        return _FESTIVALS[voice]


@atexit.register
def _close_festivals() -> None:
    for proc in list(_FESTIVALS.values()):
        proc.close()


class FestivalSynth(_OsSynth):
    """festival, through a festival interpreter kept running per voice. HTS voices ignore
    Duration_Stretch and honour only the engine's speed (-r) among hts_engine_params (measured:
    -fm, -a, -b change nothing), so pitch is shifted by replay_faster."""

    name = "festival"
    native_pitch = False

    def __init__(self, voice: str = "cmu_us_slt_arctic_hts", rate: float = 1.0, semitones: float = 0.0):
        self.voice = voice
        self.rate = rate
        self.semitones = semitones

    def warm(self) -> None:
        festival_process(self.voice).warm()

    def synthesize(self, text: str) -> Audio:
        audio = festival_process(self.voice).synthesize(text, max(self._tempo, 0.1))
        return replay_faster(audio, pitch_factor(self.semitones))


class FliteSynth(_FileSynth):
    name = "flite"

    def __init__(self, voice: str = "slt", rate: float = 1.0, semitones: float = 0.0):
        self.voice = voice
        self.rate = rate
        self.semitones = semitones
        self.native_pitch = voice not in FLITE_FIXED_F0

    def _command(self, text: str, out: Path) -> tuple[list[str], str | None]:
        stretch = 1.0 / max(self._tempo, 0.1)
        pitch = (
            ["--setf", f"f0_shift={pitch_factor(self.semitones):.4f}"] if self.native_pitch and self.semitones else []
        )
        return (
            [
                "flite",
                "-voice",
                self.voice,
                "--setf",
                f"duration_stretch={stretch:.3f}",
                *pitch,
                "-t",
                text,
                "-o",
                str(out),
            ],
            None,
        )


class EspeakSynth(_FileSynth):
    name = "espeak-ng"

    def __init__(self, voice: str = "en-us", rate: float = 1.0, pitch: int = 50, semitones: float = 0.0):
        self.voice = voice
        self.rate = rate
        self.pitch = pitch  # espeak-ng's own -p scale
        self.semitones = semitones  # added to it

    def _command(self, text: str, out: Path) -> tuple[list[str], str | None]:
        wpm = int(round(175 * self.rate))
        p = int(round(min(99.0, max(0.0, self.pitch + ESPEAK_P_PER_SEMITONE * self.semitones))))
        return (["espeak-ng", "-v", self.voice, "-s", str(wpm), "-p", str(p), "-w", str(out), text], None)


class PiperSynth:
    name = "piper"

    def __init__(self, model_path: str, rate: float = 1.0, speaker: int | None = None, semitones: float = 0.0):
        from piper import PiperVoice, SynthesisConfig

        path = piper_voice(model_path)
        self.voice = path.stem
        self._voice = PiperVoice.load(str(path))
        # piper has no pitch control: speak slower, then replay faster (see replay_faster)
        self._factor = pitch_factor(semitones)
        self._config = SynthesisConfig(speaker_id=speaker, length_scale=self._factor / max(rate, 0.1))

    def chunks(self, text: str) -> Iterator[Audio]:
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            yield replay_faster(Audio(chunk.audio_float_array.reshape(-1), chunk.sample_rate), self._factor)

    def synthesize(self, text: str) -> Audio:
        return Audio.concat(list(self.chunks(text)))


def available_os_backends() -> list[str]:
    tools = {"festival": "text2wave", "flite": "flite", "espeak-ng": "espeak-ng"}
    return [b for b in OS_BACKENDS if shutil.which(tools[b])]


def make_synth(backend: str = "auto", voice: str = "", rate: float = 1.0) -> Synthesizer:
    """The configured synthesizer; ``auto`` is piper with a voice, else the first OS one."""
    if backend == "piper" or (backend == "auto" and voice):
        if not voice:
            raise ModelMissing("piper", "set tts.voice to a piper .onnx voice file")
        return PiperSynth(voice, rate)
    if backend == "auto":
        found = available_os_backends()
        if not found:
            raise ModelMissing("tts", "install festival festvox-us-slt-hts, flite or espeak-ng (Debian packages)")
        backend = found[0]
    if backend == "festival":
        return FestivalSynth(voice or "cmu_us_slt_arctic_hts", rate)
    if backend == "flite":
        return FliteSynth(voice or "slt", rate)
    if backend == "espeak-ng":
        return EspeakSynth(voice or "en-us", rate)
    raise ModelMissing(f"tts/{backend}", f"unknown TTS backend (choose auto, piper, {', '.join(OS_BACKENDS)})")


@dataclass(frozen=True)
class TtsOptions:
    backend: str = "auto"
    voice: str = ""
    rate: float = 1.0


class TtsStage:
    name = "tts"

    def __init__(self, options: TtsOptions):
        self.synth = make_synth(options.backend, options.voice, options.rate)
        warm = getattr(self.synth, "warm", None)
        if warm is not None:
            warm()
        self._prepared: dict[str, concurrent.futures.Future] = {}  # first chunk's text → its audio
        self._prepared_lock = threading.Lock()

    def prepare(self, text: str) -> bool:
        """Synthesize the first chunk of a reply the assistant is about to give (the live loop
        guesses it while the endpointer waits out the last silence), so that :meth:`speak` starts
        on it at once. The audio is what :meth:`speak` would make; a chunk never asked for is
        dropped after :data:`PREPARED_MAX` newer ones. False: already prepared, or nothing to say."""
        parts = speech_chunks(text)
        if not parts:
            return False
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._prepared_lock:
            if parts[0] in self._prepared:
                return False
            self._prepared[parts[0]] = future
            while len(self._prepared) > PREPARED_MAX:
                del self._prepared[next(iter(self._prepared))]
        try:
            future.set_result(self.synth.synthesize(parts[0]))
        except Exception as err:  # speak() synthesizes it again and reports the failure
            future.set_exception(err)
        return True

    def _first_chunk(self, part: str) -> Audio:
        with self._prepared_lock:
            future = self._prepared.pop(part, None)
            log.debug("first chunk %s: %r", "prepared" if future is not None else "not prepared", part)
        if future is not None:
            try:
                return future.result(timeout=SUBPROCESS_TIMEOUT_S)  # waits if still being made
            except Exception as err:
                log.debug("prepared chunk unusable (%s: %s)", type(err).__name__, err)
        return self.synth.synthesize(part)

    def speak(self, text: str, on_chunk: Callable[[Audio], None] | None = None) -> Speech:
        """The reply as speech; ``on_chunk`` gets the first sentence's audio as soon as it is
        ready (a player starts on it), then the rest."""
        started = time.perf_counter()
        parts = speech_chunks(text)
        if not parts:
            return Speech(
                text=text,
                audio=Audio(np.zeros(0, np.float32), 16000),
                backend=self.synth.name,
                voice=self.synth.voice,
                first_chunk_ms=0.0,
            )
        audios, first_ms = [], 0.0
        for part in parts:  # a chunk at a time: the first plays while the next is made
            audios.append(self._first_chunk(part) if not audios else self.synth.synthesize(part))
            if len(audios) == 1:
                first_ms = (time.perf_counter() - started) * 1000
            if on_chunk is not None:
                on_chunk(audios[-1])
        rates = {a.sample_rate for a in audios}
        if len(rates) > 1:  # never expected from one synthesizer; keep the first rate
            from core.audio import resample

            target = audios[0].sample_rate
            audios = [Audio(resample(a.samples, a.sample_rate, target), target) for a in audios]
        return Speech(
            text=text,
            audio=Audio.concat(audios),
            backend=self.synth.name,
            voice=self.synth.voice,
            first_chunk_ms=round(first_ms, 1),
        )

    def run(self, outcome: Outcome, ctx) -> Speech:
        return self.speak(outcome.reply)

    def run_streaming(self, outcome: Outcome, ctx, on_chunk: Callable[[Audio], None]) -> Speech:
        return self.speak(outcome.reply, on_chunk)

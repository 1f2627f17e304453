"""Wake word detection (openWakeWord 0.4.0) and command endpointing (Silero VAD).

:class:`WakeListener` is streaming: feed it audio in any chunk size and it returns each
command it has finished cutting — the wake event plus the speech that followed, ended by
silence. Replay of a recording and the live microphone loop use the same listener, so a
recording fed in real time gives the same turns as one fed as fast as possible. The live loop
also opens a capture without a wake word (:meth:`WakeListener.listen_now`: a follow-up answer,
speech that barged in); such commands carry ``wake=None``.

Re-arming (docs/wake.md): the detector listens during a capture too. A wake word heard while
waiting for or capturing a command restarts the turn: speech before it is cut as a command of
its own (endpoint ``wake_word``), the word itself belongs to neither, and a new capture starts
after it. The detector's state is cleared after every wake word, so one word never counts twice.

Near misses: a run of speech heard while waiting whose peak score reached ``NEAR_MISS_FLOOR``
without waking the device is kept as its times and peak, never its audio
(:meth:`WakeListener.take_near_misses`); the learned wake thresholds are fitted on them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import warnings
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from core.audio import PIPELINE_RATE, Audio
from core.memory import release_freed_memory
from core.model_files import openwakeword_model
from core.records import Utterance, WakeEvent
from stages.turn_end import TurnEnd

log = logging.getLogger(__name__)

FRAME = 1280  # openWakeWord's native step: 80 ms at 16 kHz
FRAME_S = FRAME / PIPELINE_RATE
VAD_CHUNK = 640  # Silero is run on two 40 ms chunks per frame
WAKE_TAIL_GUARD_S = 0.25  # speech this soon after detection is the wake word's own tail
SPEECH_PAD_S = 0.25  # kept before the first and after the last speech frame
HYSTERESIS = 0.15  # VAD: speech at >= threshold, silence below threshold - this
# A peak this high without a wake is logged as a near miss: speech the detector ignored peaks
# far lower (tools/measure_wake_peaks.py: background speech ~0.001, a missed wake word ~0.1-0.4)
NEAR_MISS_FLOOR = 0.05
NEAR_MISS_TAIL_S = 0.5  # a run of speech heard while idle ends this long after its last speech frame:
# the detector's score trails the audio by a few frames


def near_miss_peak(score: float) -> float | None:
    """What a device logs of speech that did not wake it: the detector's peak (4 decimals) when it
    reached ``NEAR_MISS_FLOOR``, else None."""
    return round(score, 4) if score >= NEAR_MISS_FLOOR else None


@dataclass(frozen=True)
class WakeOptions:
    word: str = "alexa"
    threshold: float = 0.5
    refractory_s: float = 1.5
    vad_threshold: float = 0.5
    silence_ms: int = 700
    max_command_s: float = 10.0
    no_speech_timeout_s: float = 4.0
    semantic_endpoint: bool = True  # a complete request ends the command at its first pause
    complete_confidence: float = 0.8  # NLU confidence a complete request needs
    complete_silence_ms: int = 300  # silence that ends a complete request (a pause inside it is shorter)
    incomplete_silence_ms: int = 1500  # silence waited for after words that cannot end a request
    verify: bool = True  # a second look at each wake: the recognizer must hear the word (stages/wake_verify.py)


@dataclass(frozen=True)
class WakeCommand:
    wake: WakeEvent | None  # None: captured by listen_now(), no wake word
    utterance: Utterance
    detected_at_s: float  # stream time the detector fired (or listen_now() opened the capture)
    ended_at_s: float  # stream time the command was endpointed
    speech_end_s: float | None = None  # stream time the last speech frame ended (None: no speech)


class WakeListener:
    name = "wake"

    def __init__(self, options: WakeOptions, source: str = "", judge=None):
        from openwakeword.model import Model
        from openwakeword.vad import VAD

        self.options = options
        self.source = source
        # (audio so far, woke) → TurnEnd | None, asked at each pause (stages/turn_end.py); None: off
        self.judge = judge
        # (samples, wake model word) → WakeCheck, when the wake word is over (stages/wake_verify.py); None: off
        self.verifier = None
        self.rejected: list[tuple[float, object]] = []  # (detection time, WakeCheck) of wakes the verifier refused
        path = openwakeword_model(options.word)
        with warnings.catch_warnings(), lean_onnx_sessions():
            # openWakeWord asks onnxruntime for CUDA first; on a CPU-only machine that is noise.
            warnings.filterwarnings("ignore", message=".*CUDAExecutionProvider.*")
            self._oww = Model(wakeword_model_paths=[str(path)])
            self._vad = VAD()
        self._tail = _AudioTail(self._oww.preprocessor)
        features = self._oww.preprocessor
        # openWakeWord's own starting buffers, to go back to on reset()
        self._fresh = (features.melspectrogram_buffer.copy(), features.feature_buffer.copy())
        self._key = next(iter(self._oww.models))
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames: deque[tuple[float, np.ndarray, float]] = deque()  # (t, int16 frame, vad prob)
        self._t = 0.0
        self._state = "idle"
        self._refractory_until = 0.0
        self._cmd: dict = {}
        self.frames_seen = 0
        self.speech_since: float | None = None  # start of the current run of speech frames
        self.idle_peak = 0.0  # the highest score while waiting for a wake word (a near miss's peak)
        self._near_run: list[float] | None = None  # [start, end of its last speech frame, peak] while idle
        self._near: deque[Utterance] = deque()  # near misses not yet taken (take_near_misses)
        self._early: Audio | None = None
        self._complete: tuple[TurnEnd, float] | None = None
        log.debug("wake listener for %r (threshold %.2f)", options.word, options.threshold)

    # streaming ------------------------------------------------------------------------
    @property
    def stream_time_s(self) -> float:
        return self._t

    @property
    def capturing(self) -> bool:
        """A command is being captured (after a wake word or :meth:`listen_now`)."""
        return self._state == "command"

    @property
    def capture_started_s(self) -> float | None:
        """Stream time the current capture began (the ``detected_at_s`` its command will have)."""
        return round(self._cmd["detect"], 3) if self._state == "command" else None

    @property
    def capture_has_wake(self) -> bool:
        return self._state == "command" and self._cmd["wake"]

    def listen_now(self, no_speech_s: float | None = None, since_s: float | None = None) -> bool:
        """Capture a command from now on without a wake word (a follow-up answer, a barge-in).

        With no speech within ``no_speech_s`` the capture ends with no command at all. ``since_s``
        says speech has been going on since then (still in the buffer): the command starts there.
        Returns False when a command is already being captured.
        """
        if self._state == "command":
            return False
        self._state = "command"
        self._near_run = None  # the speech is a command, not a near miss
        detect = self._t if since_s is None else max(0.0, since_s - SPEECH_PAD_S)
        self._cmd = {
            "detect": detect,
            "peak": 0.0,
            "wake_end": detect,
            "onset": since_s,
            "last_speech": self._t if since_s is not None else None,
            "in_speech": since_s is not None,
            "wake": False,
            "guard_s": 0.0,
            "no_speech_s": self.options.no_speech_timeout_s if no_speech_s is None else no_speech_s,
        }
        return True

    def feed(self, samples: np.ndarray) -> list[WakeCommand]:
        """Feed float32 [-1, 1] or int16 mono 16 kHz samples; returns commands completed."""
        if samples.dtype != np.int16:
            samples = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
        self._pending = np.concatenate([self._pending, samples])
        done = []
        while len(self._pending) >= FRAME:
            frame, self._pending = self._pending[:FRAME], self._pending[FRAME:]
            cmd = self._step(frame)
            if cmd is not None:
                done.append(cmd)
        return done

    def take_early(self) -> Audio | None:
        """The command's audio as it will be if nobody speaks again before the endpoint.

        Set once the speech has been followed by ``SPEECH_PAD_S`` of silence: from then on the
        cut is fixed unless speech resumes, so a recognizer can start on it while the endpointer
        still waits out ``silence_ms`` (the live loop does). Returned once, then cleared."""
        early, self._early = self._early, None
        return early

    def take_complete(self) -> tuple[TurnEnd, float] | None:
        """A "complete" verdict just given, and the stream time the command will be cut at
        unless speech resumes: the live loop prepares the reply meanwhile. Returned once."""
        done, self._complete = self._complete, None
        return done

    def take_near_misses(self, before_s: float | None = None) -> list[Utterance]:
        """Runs of speech heard while waiting for a wake word whose peak score reached
        ``NEAR_MISS_FLOOR`` without waking the device, oldest first, each once: an utterance
        with no audio (a device keeps nothing else of speech it did not wake for),
        ``endpoint="no_wake"`` and its ``near_miss`` peak. ``before_s``: only those that
        ended by then. Safe to call from another thread than the one feeding the listener."""
        out = []
        while self._near and (before_s is None or self._near[0].end_s <= before_s):
            out.append(self._near.popleft())
        return out

    def finish(self) -> list[WakeCommand]:
        """End of input: a command being captured is cut where the audio ends."""
        if self._state == "idle":
            self._end_near_run()
        if self._state != "command" or self._unheard_window():
            return []
        return [self._cut("end_of_input", self._t)]

    def reset(self) -> None:
        """Forget everything heard: the state of a listener just built."""
        self._clear_detector()
        self._vad.reset_states()
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames.clear()
        self._t = 0.0
        self._state = "idle"
        self._refractory_until = 0.0
        self._cmd = {}
        self.speech_since = None
        self._early = None
        self._complete = None
        self.rejected = []
        self.idle_peak = 0.0
        self._near_run = None
        self._near.clear()

    # internals -----------------------------------------------------------------------
    def _clear_detector(self) -> None:
        """openWakeWord as just built. Its own reset() empties only the prediction buffer and
        keeps the audio and features of the word just heard, from which the score can rise
        again; the buffers are put back to what they were at construction (and for its first
        5 frames after a reset openWakeWord scores 0)."""
        features = self._oww.preprocessor
        features.melspectrogram_buffer = self._fresh[0].copy()
        features.feature_buffer = self._fresh[1].copy()
        features.accumulated_samples = 0
        self._tail.clear()
        self._oww.reset()

    def _new_capture(self, detect: float, score: float) -> None:
        self._state = "command"
        self._refractory_until = detect + self.options.refractory_s
        self._cmd = {
            "detect": detect,
            "peak": score,
            "wake_end": None,
            "onset": None,
            "last_speech": None,
            "in_speech": False,
            "wake": True,
            "guard_s": WAKE_TAIL_GUARD_S,
            "no_speech_s": self.options.no_speech_timeout_s,
        }

    def _rearm(self, t: float, score: float) -> WakeCommand | None:
        """A wake word during a capture: the speech before the word's own run of speech is the
        command (none: the wake that opened the capture ends without one), then a new capture."""
        c = self._cmd
        cut = None
        before = c.get("before_run")
        if before is not None:
            c["last_speech"] = before
            cut = self._cut("wake_word", t + FRAME_S)
        elif c["wake"]:  # the wake is reported, with no command
            c["onset"] = None
            cut = self._cut("wake_word", t + FRAME_S)
        self._new_capture(t + FRAME_S, score)
        log.debug("wake word again at %.2fs: capture restarted", t)
        return cut

    def _step(self, frame: np.ndarray) -> WakeCommand | None:
        t = self._t
        score = float(self._oww.predict(frame)[self._key])
        vad = float(self._vad.predict(frame, frame_size=VAD_CHUNK))
        self._t += FRAME_S
        self.frames_seen += 1
        self._frames.append((t, frame, vad))
        self._trim()
        o = self.options
        speaking = vad >= o.vad_threshold or (self.speech_since is not None and vad >= o.vad_threshold - HYSTERESIS)
        self.speech_since = (t if self.speech_since is None else self.speech_since) if speaking else None
        if self._state == "idle":
            self.idle_peak = max(self.idle_peak, score)
            if score >= o.threshold and t >= self._refractory_until:
                self._near_run = None  # it woke
                self._new_capture(t + FRAME_S, score)
            elif t >= self._refractory_until:  # before then, speech is the last wake word's tail
                self._track_near_miss(t, speaking, score)
            return None
        # capturing a command
        c = self._cmd
        if c["wake_end"] is None:
            if score >= o.threshold:
                c["peak"] = max(c["peak"], score)
            else:
                c["wake_end"] = t
                self._clear_detector()  # the word is over: it must not be heard again
                if self.verifier is not None and c["wake"] and not self._verified(t):
                    return None
        elif score >= o.threshold and t >= self._refractory_until:
            return self._rearm(t, score)
        frame_end = t + FRAME_S
        if t >= c["detect"] + c["guard_s"]:
            if vad >= o.vad_threshold or (c["in_speech"] and vad >= o.vad_threshold - HYSTERESIS):
                if not c["in_speech"]:  # a new run of speech (a wake word may be in it)
                    c["before_run"] = c["last_speech"]
                    c["hold_s"] = c["complete_at"] = None  # speech resumed: the verdict is void
                    c["note"] = ""
                c["in_speech"] = True
                c["onset"] = t if c["onset"] is None else c["onset"]
                c["last_speech"] = frame_end
            elif c["in_speech"]:
                c["in_speech"] = False
                if self.judge is not None and o.semantic_endpoint:
                    cut = self._judge_pause(frame_end)
                    if cut is not None:
                        return cut
        if c["onset"] is not None and frame_end - c["last_speech"] >= (c.get("hold_s") or o.silence_ms / 1000):
            return self._cut("complete" if c.get("complete_at") else "silence", frame_end)
        if (
            c["onset"] is not None
            and not c["in_speech"]
            and c.get("early_for") != c["last_speech"]
            and frame_end - c["last_speech"] >= SPEECH_PAD_S
        ):
            c["early_for"] = c["last_speech"]
            start, end = max(c["detect"], c["onset"] - SPEECH_PAD_S), c["last_speech"] + SPEECH_PAD_S
            self._early = Audio(self._slice(start, end), PIPELINE_RATE)
        if frame_end - c["detect"] >= o.max_command_s:
            return self._cut("max_length", frame_end)
        if c["onset"] is None and frame_end - c["detect"] >= c["no_speech_s"]:
            return None if self._unheard_window() else self._cut("no_speech", frame_end)
        return None

    def _track_near_miss(self, t: float, speaking: bool, score: float) -> None:
        run = self._near_run
        if speaking:
            if run is None:
                self._near_run = [t, t + FRAME_S, score]
            else:
                run[1], run[2] = t + FRAME_S, max(run[2], score)
        elif run is not None:
            run[2] = max(run[2], score)
            if t + FRAME_S - run[1] >= NEAR_MISS_TAIL_S:
                self._end_near_run()

    def _end_near_run(self) -> None:
        run, self._near_run = self._near_run, None
        if run is None:
            return
        start, end, score = run
        peak = near_miss_peak(score)
        if peak is None:
            return
        log.debug("near miss at %.2f-%.2fs: peak %.3f", start, end, peak)
        self._near.append(
            Utterance(
                audio=Audio(np.zeros(0, np.float32), PIPELINE_RATE),
                start_s=round(start, 3),
                end_s=round(end, 3),
                endpoint="no_wake",
                source=self.source,
                near_miss=peak,
            )
        )

    def _judge_pause(self, now: float) -> WakeCommand | None:
        """The first silent frame after speech: a complete request ends after
        ``complete_silence_ms`` of silence (endpoint ``complete``; its audio is what was judged,
        so the judge's transcript serves the turn), a clearly incomplete one after
        ``incomplete_silence_ms``. Speech before then voids the verdict."""
        c = self._cmd
        start = max(c["detect"], c["onset"] - SPEECH_PAD_S)
        verdict = self.judge(Audio(self._slice(start, now), PIPELINE_RATE), c["wake"])
        if verdict is None:
            return None
        c["note"] = f"{verdict.kind}: {verdict.reason}"
        log.debug("pause at %.2fs: %s", now, c["note"])
        o = self.options
        if verdict.kind == "complete":
            c["complete_at"] = now
            c["hold_s"] = min(o.complete_silence_ms, o.silence_ms) / 1000
            self._complete = (verdict, c["last_speech"] + c["hold_s"])
        else:
            c["hold_s"] = max(o.incomplete_silence_ms, o.silence_ms) / 1000
        return None

    def _verified(self, now: float) -> bool:
        """The second look (stages/wake_verify.py): a wake the recognizer does not hear as the
        wake word is dropped, with its capture, and the listener is idle again."""
        from stages.wake_verify import BEFORE_S

        c = self._cmd
        samples = self._slice(max(0.0, c["detect"] - BEFORE_S), now + FRAME_S)
        check = self.verifier(samples, self.options.word)
        if check.accepted:
            c["heard"] = check.heard
            return True
        log.debug("wake at %.2fs refused: heard %r", c["detect"], check.heard)
        self.rejected.append((c["detect"], check))
        self._state, self._cmd = "idle", {}
        return False

    def _unheard_window(self) -> bool:
        """A listen_now() capture nobody spoke in ends with no command: nobody addressed us."""
        if self._cmd["wake"] or self._cmd["onset"] is not None:
            return False
        self._state, self._cmd = "idle", {}
        return True

    def _trim(self) -> None:
        keep_s = self.options.max_command_s + 3.0
        while self._frames and self._frames[0][0] < self._t - keep_s:
            if self._state == "command" and self._frames[0][0] >= self._cmd["detect"] - 1.0:
                break
            self._frames.popleft()

    def _slice(self, start: float, end: float) -> np.ndarray:
        """The heard samples from stream time ``start`` to ``end`` (float32)."""
        samples = [f for (t, f, _v) in self._frames if t + FRAME_S > start and t < end]
        audio = np.concatenate(samples).astype(np.float32) / 32767.0 if samples else np.zeros(0, np.float32)
        first_t = next((t for (t, _f, _v) in self._frames if t + FRAME_S > start), start)
        a = max(0, int(round((start - first_t) * PIPELINE_RATE)))
        b = a + max(0, int(round((end - start) * PIPELINE_RATE)))
        return audio[a:b]

    def _cut(self, reason: str, now: float) -> WakeCommand:
        c = self._cmd
        o = self.options
        detect = c["detect"]
        if c["onset"] is None:
            start, end = detect, detect
        else:
            start = max(detect, c["onset"] - SPEECH_PAD_S)
            end = min(now, c["last_speech"] + SPEECH_PAD_S) if reason in ("silence", "wake_word") else now
            if reason == "complete":
                end = c["complete_at"]
        self._early = None
        wake = (
            WakeEvent(
                word=o.word,
                score=round(c["peak"], 4),
                start_s=round(detect - FRAME_S, 3),
                end_s=round(c["wake_end"] if c["wake_end"] is not None else now, 3),
                model=f"openwakeword/{o.word}_v0.1",
                heard=c.get("heard"),
            )
            if c["wake"]
            else None
        )
        utt = Utterance(
            audio=Audio(self._slice(start, end), PIPELINE_RATE),
            start_s=round(start, 3),
            end_s=round(end, 3),
            endpoint=reason if c["onset"] is not None or reason == "wake_word" else "no_speech",
            wake=wake,
            source=self.source,
            endpoint_note=c.get("note", ""),
        )
        self._state = "idle"
        self._refractory_until = max(now, detect + o.refractory_s) if wake is not None else now
        self._cmd = {}
        speech_end = round(c["last_speech"], 3) if c["last_speech"] is not None else None
        return WakeCommand(
            wake=wake, utterance=utt, detected_at_s=round(detect, 3), ended_at_s=round(now, 3), speech_end_s=speech_end
        )


_ORT_PATCH = threading.Lock()
_SILENCE_FEATURES: dict[int, np.ndarray] = {}  # openWakeWord's starting features, by input length


@contextmanager
def lean_onnx_sessions():
    """openWakeWord (and Silero) built inside with onnxruntime sessions that have no CPU memory
    arena, the freed heap given back after. openWakeWord fills its feature buffer at
    construction by embedding 10 s of silence: ~150 MB for a moment, which the arena then kept
    (~120 MB a listener, for models of 3 MB). Those features are the same every time, so they
    are computed once per process (a listener built later, beside the other models, would add
    its moment to the peak). Frames of 80 ms need no arena: scores and speed are the same
    (docs/wake.md, "Memory")."""
    import onnxruntime as ort
    from openwakeword.utils import AudioFeatures

    with _ORT_PATCH:
        options, embed = ort.SessionOptions, AudioFeatures._get_embeddings

        def no_arena():
            o = options()
            o.enable_cpu_mem_arena = False
            return o

        def embed_once(self, x, *args, **kwargs):
            if args or kwargs or np.any(x):
                return embed(self, x, *args, **kwargs)
            if len(x) not in _SILENCE_FEATURES:
                _SILENCE_FEATURES[len(x)] = embed(self, x)
            return _SILENCE_FEATURES[len(x)].copy()

        ort.SessionOptions, AudioFeatures._get_embeddings = no_arena, embed_once
        try:
            yield
        finally:
            ort.SessionOptions, AudioFeatures._get_embeddings = options, embed
    release_freed_memory()


class _AudioTail:
    """openWakeWord 0.4.0 keeps the raw audio in a 160,000-element deque of Python ints and
    copies all of it into a list on every 80 ms frame, only to take the last ~1,760 samples:
    a third of the listener's time. This keeps the tail it reads in an int16 array instead and
    takes over those two methods; the melspectrogram model gets the same samples, so scores
    are unchanged."""

    def __init__(self, features):
        self.features = features
        self.samples = np.zeros(0, dtype=np.int16)
        features._buffer_raw_data = self.add
        features._streaming_melspectrogram = self.melspectrogram
        features.raw_data_buffer.clear()  # no longer read; don't keep 10 s of Python ints alive

    def clear(self) -> None:
        self.samples = np.zeros(0, dtype=np.int16)

    def add(self, x) -> None:
        x = np.asarray(x, dtype=np.int16)
        if len(x) < 400:
            raise ValueError("openWakeWord needs at least 400 samples (25 ms) at a time")
        # what the next melspectrogram reads: the samples since the last one + 480 of context
        keep = self.features.accumulated_samples + len(x) + 160 * 3
        self.samples = np.concatenate([self.samples, x])[-keep:]

    def melspectrogram(self, n_samples: int) -> None:
        f = self.features
        spec = f._get_melspectrogram(self.samples[-n_samples - 160 * 3 :])
        f.melspectrogram_buffer = np.vstack((f.melspectrogram_buffer, spec))
        if f.melspectrogram_buffer.shape[0] > f.melspectrogram_max_len:
            f.melspectrogram_buffer = f.melspectrogram_buffer[-f.melspectrogram_max_len :, :]


def peak_score(model, audio: Audio, pad_s: float = 1.0) -> float:
    """openWakeWord's (``model``, an ``openwakeword.model.Model``) highest score over a clip
    padded with ``pad_s`` of silence each side, scored frame by frame as the listener does."""
    model.reset()
    pcm = (np.clip(audio.samples, -1, 1) * 32767).astype(np.int16)
    pad = np.zeros(int(pad_s * PIPELINE_RATE), np.int16)
    stream = np.concatenate([pad, pcm, pad])
    peak = 0.0
    for i in range(0, len(stream) - FRAME + 1, FRAME):
        peak = max(peak, max(model.predict(stream[i : i + FRAME]).values()))
    return float(peak)


def scan(listener: WakeListener, audio: Audio, chunk_s: float = 0.5) -> list[WakeCommand]:
    """Every command in a recording, fed through the streaming listener in ``chunk_s`` pieces."""
    step = int(chunk_s * audio.sample_rate)
    out: list[WakeCommand] = []
    for i in range(0, len(audio.samples), step):
        out.extend(listener.feed(audio.samples[i : i + step]))
    out.extend(listener.finish())
    return out


class SegmentWake:
    """The wake stage for one turn's audio (simulated users, recorded clips with a wake word):
    the streaming listener runs over the clip and the first command it cuts is the utterance.
    No wake word heard → an utterance with ``endpoint="no_wake"`` (with its ``near_miss`` peak
    when the detector came close) and the turn goes no further. A device's learned threshold
    (``ctx.device.wake_threshold``) replaces the configured one."""

    name = "wake"

    def __init__(self, options: WakeOptions):
        self.options = options
        self._listeners: dict[float, WakeListener] = {options.threshold: WakeListener(options)}

    @property
    def listener(self) -> WakeListener:
        return self._listeners[self.options.threshold]

    def _listener(self, ctx) -> WakeListener:
        device = getattr(ctx, "device", None)
        threshold = getattr(device, "wake_threshold", None)
        if threshold is None:
            return self.listener
        if threshold not in self._listeners:
            self._listeners[threshold] = WakeListener(dataclasses.replace(self.options, threshold=threshold))
        return self._listeners[threshold]

    def run(self, utterance: Utterance, ctx) -> Utterance:
        listener = self._listener(ctx)
        listener.reset()
        padded = Audio.concat([utterance.audio, Audio.silence(listener.options.silence_ms / 1000 + 0.5)])
        commands = scan(listener, padded)
        if not commands:
            return dataclasses.replace(
                utterance,
                audio=Audio(np.zeros(0, np.float32), PIPELINE_RATE),
                endpoint="no_wake",
                wake=None,
                near_miss=near_miss_peak(listener.idle_peak),
            )
        # a wake word said again restarts the turn: the command is the first one not cut short by it
        cmd = next((c for c in commands if c.utterance.endpoint != "wake_word"), commands[0])
        return dataclasses.replace(
            utterance,
            audio=cmd.utterance.audio,
            start_s=utterance.start_s + cmd.utterance.start_s,
            end_s=utterance.start_s + cmd.utterance.end_s,
            endpoint=cmd.utterance.endpoint,
            wake=cmd.wake,
        )

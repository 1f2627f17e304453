"""The live loop: listen all the time, cut commands, run turns, speak replies, hear barge-ins.

Three threads, bounded queues between them:

- the capture loop (the caller's thread, so Ctrl-C lands there) reads blocks from the source,
  feeds the :class:`~stages.wake.WakeListener`, stops a reply the user talks over, opens the
  follow-up window after a question, and records what it heard;
- one worker runs the turns, in order (``Assistant.run_turn`` is not re-entrant for a session);
- the player speaks each reply the moment the tts stage ends, from its own callback thread.

The listener keeps being fed while a turn is processed and while its reply plays: that is how
a barge-in is heard. It is fed the same samples in the same order as ``replay`` feeds it, and
it does not care how they are chunked or paced, so a recording fed through this loop gives the
same commands (and, with the same context, the same turns) as replay.

Per-turn timestamps (:class:`LiveTurn`) are ``time.monotonic()`` seconds, the clock of the
trace's ``t``: when the command's endpoint was detected (the block that ended it had arrived),
when the worker took it, when its reply went to the player. ``eos_to_reply_ms`` is the
difference of the first and the last: what ``assistant bench`` measures.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import queue
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from assistant.live_audio import DeviceLost, NullPlayer, Player, Source
from assistant.recorded_sessions import MANIFEST, SCHEMA, gold_json, write_manifest
from assistant.runner import Assistant
from core.audio import PIPELINE_RATE, SILENCE_PEAK, Audio
from core.errors import ConfigError, UserError
from core.pipeline import STAGES
from core.records import Transcript
from core.session import Gold, Session, Turn, device_context
from core.turn_summary import turn_summary
from hooks.bus import Event
from stages.asr import spoken_wake_word
from stages.wake import WakeCommand, WakeListener

log = logging.getLogger(__name__)

FOLLOW_UP_REPLIES = ("elicit", "confirm", "clarify")  # replies that wait for an answer
BARGE_IN_MODES = ("wake", "speech", "off")
READ_TIMEOUT_S = 0.1
STATUS_EVERY_S = 0.1
STREAM_FILE = "stream.wav"
GUESS_WAIT_S = 0.3  # the longest a turn waits for its reply being prepared


@dataclass(frozen=True)
class TalkOptions:
    """The ``[talk]`` configuration section (docs/talk.md "Talking to it")."""

    device: str = ""
    output_device: str = ""
    follow_up_s: float = 5.0
    barge_in: str = "wake"
    barge_in_speech_ms: int = 240
    block_ms: int = 80
    queue_s: float = 2.0
    max_pending: int = 3
    stall_s: float = 2.0
    early_asr: bool = True  # recognize while the endpointer waits out the silence
    prepare_reply: bool = True  # a complete request: guess its reply and synthesize it meanwhile

    def __post_init__(self) -> None:
        if self.barge_in not in BARGE_IN_MODES:
            raise ConfigError(f"talk.barge_in: expected one of {', '.join(BARGE_IN_MODES)}, got {self.barge_in!r}")
        for name in ("follow_up_s", "barge_in_speech_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"talk.{name}: must be 0 or more, got {getattr(self, name)}")
        for name in ("block_ms", "queue_s", "max_pending", "stall_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"talk.{name}: must be positive, got {getattr(self, name)}")

    @classmethod
    def from_config(cls, config, **overrides: Any) -> "TalkOptions":
        return cls(**{**config.section("talk"), **overrides})

    @property
    def block(self) -> int:
        return max(1, int(round(self.block_ms * PIPELINE_RATE / 1000)))


@dataclass(frozen=True)
class LiveTurn:
    """A finished turn and when things happened to it (monotonic seconds; stream seconds ``*_s``)."""

    turn: Turn
    endpoint_at: float  # the endpoint was detected (the ending block had arrived)
    started_at: float  # the worker began the turn
    reply_at: float | None  # the reply audio went to the player (None: nothing was said)
    endpoint_s: float  # stream time of the endpoint
    speech_end_s: float | None  # stream time the last speech frame ended
    follow_up: bool = False  # heard in a follow-up window, without the wake word

    @property
    def eos_to_reply_ms(self) -> float | None:
        """Endpoint detected → first reply audio handed to the player."""
        return None if self.reply_at is None else round((self.reply_at - self.endpoint_at) * 1000, 1)

    @property
    def endpoint_delay_ms(self) -> float | None:
        """Last speech → endpoint: the silence the endpointer waits for (``wake.silence_ms``)."""
        return None if self.speech_end_s is None else round((self.endpoint_s - self.speech_end_s) * 1000, 1)

    def summary(self) -> dict:
        """``replay --json``'s object for this turn, plus the live keys (docs/talk.md "Talking to it")."""
        out = turn_summary(self.turn)
        delay, eos = self.endpoint_delay_ms, self.eos_to_reply_ms
        out.update(
            {
                "barge_in": self.turn.barge_in,
                "follow_up": self.follow_up,
                "eos_to_reply_ms": eos,
                "live": {
                    "endpoint_at": round(self.endpoint_at, 6),
                    "started_at": round(self.started_at, 6),
                    "reply_at": None if self.reply_at is None else round(self.reply_at, 6),
                    "endpoint_s": self.endpoint_s,
                    "speech_end_s": self.speech_end_s,
                    "endpoint_delay_ms": delay,
                    "queue_ms": round((self.started_at - self.endpoint_at) * 1000, 1),
                    "speech_end_to_reply_ms": None if eos is None or delay is None else round(eos + delay, 1),
                },
            }
        )
        return out


@dataclass(frozen=True)
class LiveStatus:
    state: str  # listening | wake | follow_up | thinking | speaking
    level_db: float  # loudest block since the last status, dBFS
    stream_s: float
    turns: int
    overflows: int
    dropped: int


@dataclass(frozen=True)
class LiveResult:
    session: str
    ended: str  # end_of_input | stopped | interrupted | device_lost
    message: str
    turns: tuple[LiveTurn, ...]
    stats: Mapping[str, Any] = field(default_factory=dict)
    missed: tuple[tuple[float, Gold | None], ...] = ()  # gold commands no wake word started


@dataclass(frozen=True)
class _Job:
    cmd: WakeCommand
    endpoint_at: float
    wake_ms: float
    wake_started: float
    barge_in: bool
    follow_up: bool
    gold: Gold | None


def level_db(samples: np.ndarray) -> float:
    if len(samples) == 0:
        return -120.0
    x = samples.astype(np.float32) / (32768.0 if samples.dtype == np.int16 else 1.0)
    rms = float(np.sqrt(np.mean(x * x)))
    return max(-120.0, 20 * np.log10(rms)) if rms > 0 else -120.0


@contextmanager
def _ctrl_c_sets(flag: threading.Event):
    """Ctrl-C sets ``flag`` for the capture loop to act on, instead of raising wherever the main
    thread happens to be: raised inside a finalizer (tqdm's, for one) a KeyboardInterrupt is only
    printed, and the session would never end. A second Ctrl-C raises at once. Off the main
    thread, where no handler can be installed, Ctrl-C raises as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _warm_in_background(stages, name: str) -> threading.Thread:
    """:meth:`Stages.warm` beside the listener, not in the middle of a request. A failure here
    surfaces, with its cause, in that request instead.

    Not a daemon, and :meth:`LiveLoop.run` joins it: a daemon thread still inside torch (MiniLM
    loading or embedding) when the interpreter exits is unwound by ``pthread_exit`` through C++
    frames, and the process aborts ("terminate called without an active exception", exit -6) —
    the flaky ``talk --input`` exit. Waiting for a model load (seconds) is the orderly end."""

    def run() -> None:
        try:
            stages.warm(name)
        except Exception as err:
            log.debug("%s warm-up failed: %s", name, err)

    thread = threading.Thread(target=run, name="warm-up")
    thread.start()
    return thread


class SessionRecorder:
    """Writes what a live session heard as a recorded session (docs/recorded-sessions.md "Recorded sessions").

    Each command becomes a pre-segmented turn in 32-bit float WAV — exactly the samples the ASR
    got, so ``assistant replay`` of the folder hears the same audio. The whole input goes to
    ``stream.wav`` for reference (``replay DIR/stream.wav --continuous``). The manifest is
    rewritten after every turn (atomically), so a session that ends any way leaves a valid folder.
    """

    def __init__(self, folder: str | Path, session_id: str, header: Mapping | None = None, subtype: str = "FLOAT"):
        import soundfile as sf

        self.folder = Path(folder)
        if (self.folder / MANIFEST).exists():
            raise UserError(f"{self.folder}: already holds a recorded session; record into another folder")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._stream = sf.SoundFile(
                str(self.folder / STREAM_FILE), "w", samplerate=PIPELINE_RATE, channels=1, subtype=subtype
            )
        except (OSError, RuntimeError) as err:
            raise UserError(f"{self.folder}: cannot record there ({err})") from None
        self._manifest: dict[str, Any] = {
            "schema": SCHEMA,
            "id": session_id,
            **dict(header or {}),
            "turns": [],
            "live": {"stream": STREAM_FILE},
        }
        self._lock = threading.Lock()
        self._closed = False

    def add_stream(self, samples: np.ndarray) -> None:
        if not self._closed:
            self._stream.write(samples)

    def add_turn(self, audio: Audio, gold: Gold | None, note: str) -> str | None:
        """Save one command; None when there is no audio to save (nothing was said)."""
        import soundfile as sf

        if len(audio.samples) == 0 or audio.peak < SILENCE_PEAK:
            return None
        with self._lock:
            name = f"turn{len(self._manifest['turns']) + 1:02d}.wav"
            sf.write(str(self.folder / name), audio.samples, audio.sample_rate, subtype="FLOAT")
            self._manifest["turns"].append({"audio": name, "note": note, **({"gold": gold_json(gold)} if gold else {})})
            self._write()
        return name

    def close(self, stats: Mapping[str, Any]) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._stream.close()
            self._manifest["live"].update(stats)
            self._write()

    def _write(self) -> None:
        write_manifest(self.folder, self._manifest)


class _ReplyStarter:
    """Observer: a reply starts playing with its first synthesized sentence (a ``stage_chunk``),
    the rest queued behind it; a tts stage that does not stream plays when it ends. Either way
    before the turn is finished (finishing includes the previous turn's trace signals)."""

    def __init__(self, speak: Callable[[int, Audio], None], more: Callable[[Audio], None], session_id: str):
        self.speak = speak
        self.more = more
        self.session_id = session_id
        self._streamed: set[int] = set()

    def on_event(self, event: Event) -> None:
        if event.stage != "tts" or event.session != self.session_id or event.data is None:
            return
        if event.kind == "stage_chunk" and len(event.data.samples):
            if event.turn in self._streamed:
                self.more(event.data)
            else:
                self._streamed.add(event.turn)
                self.speak(event.turn, event.data)
        elif event.kind == "stage_end" and len(event.data.audio.samples):
            if event.turn in self._streamed:
                self._streamed.discard(event.turn)
            else:
                self.speak(event.turn, event.data.audio)


class LiveLoop:
    """One live session: ``run()`` listens until the input ends, Ctrl-C, or the device is lost.

    ``on_turn(LiveTurn)`` is called on the worker thread after each turn; ``on_status(LiveStatus)``
    on the capture thread about ten times a second. Neither may block for long.
    """

    def __init__(
        self,
        assistant: Assistant,
        source: Source,
        *,
        player: Player | None = None,
        options: TalkOptions | None = None,
        session_id: str = "talk",
        session_args: Mapping[str, Any] | None = None,
        gold_for: Callable[[float], Gold | None] | None = None,
        recorder: SessionRecorder | None = None,
        on_turn: Callable[[LiveTurn], None] | None = None,
        on_status: Callable[[LiveStatus], None] | None = None,
        stop: str = "tts",
    ):
        self.assistant = assistant
        self.source = source
        self.player: Player = player  # None: a NullPlayer on the stream clock, made in run()
        self.options = options or TalkOptions()
        self.session_id = session_id
        self.session_args = dict(session_args or {})
        self.gold_for = gold_for
        self.recorder = recorder
        self.on_turn = on_turn
        self.on_status = on_status
        self.stop = stop
        self.listener: WakeListener | None = None
        self.turns: list[LiveTurn] = []
        self.dropped = 0
        self.barge_ins = 0
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=self.options.max_pending)
        self._replies: dict[int, float] = {}  # turn → when its reply went to the player
        self._busy = False
        self._follow_up_due = False
        self._follow_at: float | None = None  # capture_started_s of the follow-up capture
        self._barge_at: float | None = None  # capture_started_s of the capture that barged in
        self._seen_capture: float | None = None
        self._worker_error: BaseException | None = None
        self.worker_abandoned = False  # a second Ctrl-C left a turn running (see talk)
        self._stop_requested = threading.Event()
        self._ctrl_c = threading.Event()
        self._session: Session | None = None
        self._session_lock = threading.Lock()  # held by the worker while a turn changes the session
        self._guessing: concurrent.futures.Future | None = None
        self._guesser: concurrent.futures.ThreadPoolExecutor | None = None

    def request_stop(self) -> None:
        """End the session from any thread, as if the input had ended: commands heard still run."""
        self._stop_requested.set()

    # state ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        lst = self.listener
        if lst is None:
            return "starting"
        if lst.capturing:
            return "wake" if lst.capture_has_wake else "follow_up"
        if self.player is not None and self.player.playing:
            return "speaking"
        if self._busy or not self._jobs.empty() or self._follow_up_due:
            return "thinking"
        return "listening"

    # the session ---------------------------------------------------------------------
    def run(self) -> LiveResult:
        a = self.assistant
        a.stages.prepare(STAGES[1 : STAGES.index(self.stop) + 1])  # models load before listening
        # The listener first: its imports (openWakeWord → scikit-learn) and the warm-up's
        # (transformers) on two threads at once can deadlock Python's module locks.
        listener = a.stages.wake_listener(self.source.name, self.stop)
        warming = _warm_in_background(a.stages, "resolve") if "resolve" in a.stages.loaded() else None
        if self.player is None:
            self.player = NullPlayer(lambda: listener.stream_time_s)
        self.source.start()
        self.listener = listener
        session = a.new_session(self.session_id, **self.session_args)
        if session.device.wake_threshold is not None:  # the device's learned threshold
            listener.options = dataclasses.replace(listener.options, threshold=session.device.wake_threshold)
        starter = a.bus.add_observer(_ReplyStarter(self._speak, self._speak_more, session.id))
        worker = threading.Thread(target=self._work, args=(session,), name="talk-worker", daemon=True)
        worker.start()
        self._session = session
        ended, message = "end_of_input", ""
        try:
            try:
                with _ctrl_c_sets(self._ctrl_c):
                    self._capture(listener)
                    for cmd in listener.finish():
                        self._submit(cmd, time.monotonic(), 0.0, time.monotonic())
                    if self._ctrl_c.is_set():
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                ended, message = "interrupted", "interrupted (Ctrl-C)"
                self._drop_pending()
            except DeviceLost as err:
                ended, message = "device_lost", str(err)
            finally:
                self.source.close()
                self._stop_worker(worker)
                a.note_near_misses(session, listener)
                if self._guesser is not None:
                    self._guesser.shutdown(wait=True)
            if ended == "end_of_input" and self._stop_requested.is_set():
                ended = "stopped"
            if ended in ("end_of_input", "stopped"):
                self._wait_for_reply()
        finally:
            self.player.stop()
            a.bus.remove_observer(starter)
            stats = {
                "source": self.source.name,
                "ended": ended,
                "overflows": self.source.overflows,
                "dropped_commands": self.dropped,
                "barge_ins": self.barge_ins,
                "follow_ups": sum(t.follow_up for t in self.turns),
                "turns": len(self.turns),
                "stream_s": round(listener.stream_time_s, 3),
            }
            session.meta["live"] = stats
            a.end_session(session)
            if self.recorder is not None:
                self.recorder.close(stats)
            a.stages.return_listener(listener)
            if warming is not None:
                warming.join()
        if self._worker_error is not None:
            raise self._worker_error
        missed = tuple(self.gold_for.missed()) if hasattr(self.gold_for, "missed") else ()
        return LiveResult(session.id, ended, message, tuple(self.turns), stats, missed)

    def _wait_for_reply(self) -> None:
        wait = getattr(self.player, "wait", None)
        if wait is not None:
            wait()

    def _stop_worker(self, worker: threading.Thread) -> None:
        try:
            while worker.is_alive():
                try:
                    self._jobs.put(None, timeout=0.5)
                    break
                except queue.Full:
                    continue
            worker.join()
        except KeyboardInterrupt:  # a second Ctrl-C: do not wait for the turn in progress
            log.warning("not waiting for the turn in progress")
            self.worker_abandoned = True

    def _drop_pending(self) -> None:
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                return

    # capture thread ------------------------------------------------------------------
    def _capture(self, listener: WakeListener) -> None:
        busy_ms, listen_t0 = 0.0, time.monotonic()
        loudest, next_status = -120.0, 0.0
        while self._worker_error is None and not self._stop_requested.is_set():
            if self._ctrl_c.is_set():
                raise KeyboardInterrupt
            block = self.source.read(READ_TIMEOUT_S)
            if block is None:
                if self.source.ended:
                    return
            else:
                if self.recorder is not None:
                    self.recorder.add_stream(block.samples)
                t0 = time.perf_counter()
                commands = listener.feed(block.samples)
                busy_ms += (time.perf_counter() - t0) * 1000
                self._prefetch(listener)
                self._prepare_reply(listener)
                self._watch_barge_in(listener)
                for cmd in commands:
                    self._submit(cmd, block.t, busy_ms, listen_t0)
                    busy_ms, listen_t0 = 0.0, time.monotonic()
                loudest = max(loudest, level_db(block.samples))
            self._open_follow_up(listener)
            if self.on_status is not None and time.monotonic() >= next_status:
                next_status = time.monotonic() + STATUS_EVERY_S
                self._status(loudest, listener)
                loudest = -120.0

    def _prefetch(self, listener: WakeListener) -> None:
        """Start recognizing a command once its cut is fixed, while the endpointer still waits
        out the silence: the endpoint then finds its transcript (nearly) ready."""
        early = listener.take_early()
        if early is None or not self.options.early_asr:
            return
        asr = self.assistant.stages["asr"]
        if hasattr(asr, "prefetch"):
            asr.prefetch(early.samples, spoken_wake_word(listener.options.word if listener.capture_has_wake else None))

    def _prepare_reply(self, listener: WakeListener) -> None:
        """A request judged complete is cut after a short silence unless speech resumes: guess its
        reply on a snapshot of the session and synthesize the first chunk meanwhile, so the reply
        starts the moment the cut comes (docs/wake.md "The reply prepared during the last
        silence"). Only when no turn is running or waiting (the snapshot must be the state the
        turn will start from)."""
        complete = listener.take_complete()
        if complete is None or not self.options.prepare_reply or self.stop != "tts":
            return
        verdict, cut_s = complete
        if verdict.transcript is None or not verdict.transcript.text.strip():
            return
        if self._guessing is not None and not self._guessing.done():
            return
        if not self._jobs.empty() or not self._session_lock.acquire(blocking=False):
            return
        try:
            if self._session is None:
                return
            snapshot = self._session.snapshot()
        finally:
            self._session_lock.release()
        if self._guesser is None:
            self._guesser = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="talk-guess")
        self._guessing = self._guesser.submit(self._guess, snapshot, verdict.transcript, cut_s)

    def _guess(self, snapshot: Session, transcript: Transcript, cut_s: float) -> None:
        try:
            reply = self.assistant.prepare_reply(snapshot, transcript, cut_s)
            log.debug("prepared reply for %r: %r", transcript.text, reply)
        except Exception as err:  # only a guess: the turn runs as usual
            log.debug("preparing a reply failed (%s: %s)", type(err).__name__, err)

    def _status(self, loudest: float, listener: WakeListener) -> None:
        status = LiveStatus(
            self.state,
            round(loudest, 1),
            round(listener.stream_time_s, 2),
            len(self.turns),
            self.source.overflows,
            self.dropped,
        )
        try:
            self.on_status(status)
        except Exception as err:  # a broken view must not end the session
            log.warning("status view failed (%s: %s); it is off now", type(err).__name__, err)
            self.on_status = None

    def _watch_barge_in(self, listener: WakeListener) -> None:
        mode = self.options.barge_in
        started = listener.capture_started_s
        new_wake = listener.capture_has_wake and started != self._seen_capture
        if started is not None:
            self._seen_capture = started
        if mode == "off" or not self.player.playing:
            return
        if not new_wake:
            if mode != "speech" or listener.capturing or listener.speech_since is None:
                return
            if listener.stream_time_s - listener.speech_since < self.options.barge_in_speech_ms / 1000:
                return
            listener.listen_now(since_s=listener.speech_since)  # the speech itself is the command
            self._seen_capture = listener.capture_started_s
        self.player.stop()
        self._barge_at = listener.capture_started_s
        self._follow_up_due = False  # the user moved on; this capture is the answer
        self.barge_ins += 1
        log.info("barge-in at %.2fs", listener.stream_time_s)

    def _open_follow_up(self, listener: WakeListener) -> None:
        if not self._follow_up_due or self.player.playing:
            return
        self._follow_up_due = False
        if listener.listen_now(no_speech_s=self.options.follow_up_s):
            self._follow_at = listener.capture_started_s

    def _submit(self, cmd: WakeCommand, endpoint_at: float, wake_ms: float, wake_started: float) -> None:
        gold = self.gold_for(cmd.detected_at_s) if self.gold_for is not None and cmd.wake is not None else None
        job = _Job(
            cmd,
            endpoint_at,
            wake_ms,
            wake_started,
            barge_in=cmd.detected_at_s == self._barge_at,
            follow_up=cmd.wake is None and cmd.detected_at_s == self._follow_at,
            gold=gold,
        )
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            log.warning(
                "still busy with %d commands: the command at %.1fs is dropped",
                self.options.max_pending,
                cmd.detected_at_s,
            )

    # worker thread -------------------------------------------------------------------
    def _speak_more(self, audio: Audio) -> None:
        try:
            self.player.append(audio)
        except Exception as err:
            log.warning("could not play the reply (%s: %s)", type(err).__name__, err)

    def _speak(self, turn: int, audio: Audio) -> None:
        try:
            self.player.play(audio)
        except Exception as err:  # a failing speaker must not fail the turn
            log.warning("could not play the reply (%s: %s)", type(err).__name__, err)
            return
        self._replies[turn] = time.monotonic()

    def _work(self, session: Session) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._busy = True
            try:
                with self._session_lock:
                    self._run_job(session, job)
            except Exception as err:  # a bug: end the session cleanly, report it from run()
                log.debug("turn failed", exc_info=True)
                self._worker_error = err
                return
            finally:
                self._busy = False

    def _run_job(self, session: Session, job: _Job) -> None:
        cmd = job.cmd
        started = time.monotonic()
        guessing = self._guessing
        if guessing is not None and not guessing.done():
            # Its reply is most likely this turn's, and its synthesis holds the synthesizer: the
            # turn would wait for it anyway, so it waits here and then starts on the prepared chunk.
            concurrent.futures.wait([guessing], timeout=GUESS_WAIT_S)
        self.assistant.note_near_misses(session, self.listener, before_s=cmd.detected_at_s)
        at = cmd.wake.start_s if cmd.wake is not None else cmd.utterance.start_s
        turn = Turn(
            session=session.id,
            index=len(session.turns) + 1,
            source=f"{self.source.name}@{at:.2f}s",
            start_s=cmd.ended_at_s,
            wake=cmd.wake,
            utterance=cmd.utterance,
            gold=job.gold,
            barge_in=job.barge_in,
        )
        if self.recorder is not None:
            how = "follow-up" if job.follow_up else ("barge-in" if job.barge_in else "")
            self.recorder.add_turn(cmd.utterance.audio, job.gold, f"{turn.source} {how}".strip())
        turn = self.assistant.run_turn(
            session,
            turn,
            start="asr",
            stop=self.stop,
            wake_ms=job.wake_ms if cmd.wake is not None else None,
            wake_started=job.wake_started,
        )
        out = turn.outcome
        if self.options.follow_up_s > 0 and out is not None and out.reply_type in FOLLOW_UP_REPLIES:
            self._follow_up_due = True
        live = LiveTurn(
            turn,
            endpoint_at=job.endpoint_at,
            started_at=started,
            reply_at=self._replies.pop(turn.index, None),
            endpoint_s=cmd.ended_at_s,
            speech_end_s=cmd.speech_end_s,
            follow_up=job.follow_up,
        )
        self.turns.append(live)
        if self.on_turn is not None:
            try:
                self.on_turn(live)
            except Exception as err:
                log.warning("turn output failed (%s: %s)", type(err).__name__, err)


def manifest_header(session_args: Mapping[str, Any], config) -> dict:
    """What a recording needs to replay in the same context as the live session."""
    out: dict[str, Any] = {
        "start_time": session_args.get("start_time") or config["session.start_time"],
        "device": dataclasses.asdict(device_context(session_args.get("device"), config)),
    }
    for key in ("user", "world"):
        if session_args.get(key):
            out[key] = json.loads(json.dumps(dict(session_args[key]), default=dict))
    return out


__all__ = [
    "FOLLOW_UP_REPLIES",
    "LiveLoop",
    "LiveResult",
    "LiveStatus",
    "LiveTurn",
    "SessionRecorder",
    "TalkOptions",
    "manifest_header",
]

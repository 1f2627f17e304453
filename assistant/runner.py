"""The runner: stages in order, every boundary an event, every failure contained.

Guarantees (DESIGN "Hook points"): each ``stage_start`` is followed by its ``stage_end`` or
``stage_error``; an exception in a stage or an interceptor becomes a ``stage_error`` with a
stable code and the turn ends with a spoken apology instead of ending the session; observers
can never break a turn (see :class:`hooks.bus.HookBus`).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import queue
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from core.audio import Audio, write_wav
from core.config import Config
from core.domain import Domain, load_domain
from core.errors import OutputError
from core.memory import release_freed_memory
from core.paths import safe_name
from core.pipeline import STAGE_OUTPUTS, STAGES
from core.records import Outcome, StageError, Transcript, Utterance, frozen_map
from core.session import Gold, Session, Turn, TurnContext, UserContext, device_context
from core.world import World, deep_merge
from hooks.bus import Event, HookBus
from stages.base import StageFailure

if TYPE_CHECKING:
    from hooks.tracer import Tracer

log = logging.getLogger(__name__)

IDLE_LISTENERS = 2  # wake listeners kept for reuse (one per concurrent stream is the most needed)


class Stages:
    """Builds each stage on first use, once per process (models load once)."""

    def __init__(self, config: Config, domain: Domain):
        self.config = config
        self.domain = domain
        self._built: dict[str, Any] = {}
        self._warmed_nlu = False
        self._warm_lock = threading.Lock()
        self._idle_listeners: list = []
        self._listeners_lock = threading.Lock()
        self._builders: dict[str, Callable[[], Any]] = {
            "wake": self._wake,
            "asr": self._asr,
            "nlu": self._nlu,
            "resolve": self._resolve,
            "respond": self._respond,
            "tts": self._tts,
        }

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            self._built[name] = self._builders[name]()
        return self._built[name]

    def override(self, name: str, stage: Any) -> None:
        """Use ``stage`` for ``name`` (tests, custom backends)."""
        self._built[name] = stage

    def prepare(self, names) -> None:
        """Build these stages now, so that no turn pays for loading a model (the NLU's
        pretrained encoders included: seconds, loaded here and not on a thread, which an exit
        during the load would abort in native code)."""
        for name in names:
            self[name]
        if "nlu" in names and not self._warmed_nlu:
            self.warm("nlu")
            self._warmed_nlu = True

    def loaded(self) -> tuple[str, ...]:
        return tuple(self._built)

    def _wake(self):
        from stages.wake import SegmentWake, WakeOptions

        return SegmentWake(WakeOptions(**self.config.section("wake")))

    def _asr(self):
        from stages.asr import AsrOptions, WhisperAsr

        return WhisperAsr(AsrOptions(**self.config.section("asr")), self.domain)

    def _nlu(self):
        from stages.nlu import NluOptions, NluStage
        from stages.nlu.stage import configured_model

        model = configured_model(self.domain, self.config, progress=_training_progress)
        return NluStage(self.domain, model, NluOptions.from_config(self.config))

    def _resolve(self):
        from stages.resolve import ResolveOptions, Resolver

        return Resolver(self.domain, ResolveOptions(**self.config.section("resolve")))

    def _respond(self):
        from stages.respond import Responder

        return Responder(self.domain)

    def _tts(self):
        from stages.tts import TtsOptions, TtsStage

        return TtsStage(TtsOptions(**self.config.section("tts")))

    def wake_listener(self, source: str = "", stop: str = "wake", threshold: float | None = None):
        """A wake listener in the state of a new one, for one stream; hand it back with
        :meth:`return_listener`. Each listener loads openWakeWord's ONNX models and Silero's,
        so they are kept and reused: a listener built per stream loaded them every time, and
        the freed native memory stayed with the process (+120 MB per replay in the bench).
        Turns that run to ``stop`` at or past the NLU get the turn-end judge (semantic
        endpointing, ``wake.semantic_endpoint``); turns that recognize speech get the wake
        verifier (``wake.verify``). ``threshold``: a device's learned wake threshold in place of
        the configured one (``DeviceContext.wake_threshold``)."""
        from stages.wake import WakeListener, WakeOptions

        options = WakeOptions(**self.config.section("wake"))
        if threshold is not None:
            options = replace(options, threshold=threshold)
        with self._listeners_lock:
            listener = self._idle_listeners.pop() if self._idle_listeners else None
        if listener is None:
            listener = WakeListener(options, source=source)
        else:
            listener.reset()
            listener.source = source
            listener.options = options  # a listener lent before may have had a device's threshold
        listener.judge = self._turn_end_judge(listener.options) if STAGES.index(stop) >= STAGES.index("nlu") else None
        listener.verifier = self._wake_verifier(listener.options) if STAGES.index(stop) >= STAGES.index("asr") else None
        return listener

    def _wake_verifier(self, options):
        if not options.verify:
            return None
        from stages.wake_verify import WakeVerifier

        asr = self["asr"]
        return WakeVerifier(asr) if hasattr(asr, "said_last_logprob") else None  # a stand-in recognizer cannot

    def _turn_end_judge(self, options):
        if not options.semantic_endpoint:
            return None
        from stages.turn_end import TurnEndJudge

        asr, nlu = self["asr"], self["nlu"]
        if not hasattr(asr, "transcribe_ahead") or not hasattr(nlu, "interpret"):
            return None  # a stage replaced by one that cannot judge (tests, hooks)
        return TurnEndJudge(asr, nlu, options.word, options.complete_confidence)

    def warm(self, name: str) -> None:
        """Load now what stage ``name`` would otherwise load in the first call that needs it
        (the resolver's MiniLM: seconds), when the stage has such a step (``warm()``)."""
        warm = getattr(self[name], "warm", None)
        if callable(warm):
            # One warm-up at a time: two threads importing torch/transformers at once can
            # deadlock on Python's module locks (talk warms the resolver on a thread).
            with self._warm_lock:
                warm()

    def return_listener(self, listener) -> None:
        with self._listeners_lock:
            if len(self._idle_listeners) < IDLE_LISTENERS:
                self._idle_listeners.append(listener)


def _training_progress(message: str) -> None:
    """A first use of a spec trains its NLU model (up to a minute): say so on stderr."""
    print(f"assistant: {message}", file=sys.stderr, flush=True)


class Assistant:
    def __init__(self, config: Config | None = None, bus: HookBus | None = None):
        self.config = config or Config.load()
        self.domain = load_domain(self.config["session.domain"])
        self.bus = bus or HookBus()
        from hooks.registry import install

        self.hooks = install(self.bus, self.config)
        self.stages = Stages(self.config, self.domain)
        from assistant.rewriting import rewrite_step

        self.rewriter = rewrite_step(self.config, self.domain)  # None unless a learned artifact switches it on
        self.reply_dir: Path | None = None  # when set, each reply is written there as WAV
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._reply_errors: list[OutputError] = []
        self._tracers: list[Tracer] = []
        self._guesser: Assistant | None = None  # prepare_reply's silent copy

    def fork(self, bus: HookBus) -> "Assistant":
        """The same assistant (config, domain, loaded stages) reporting to another bus."""
        other = object.__new__(Assistant)
        other.config, other.domain, other.stages = self.config, self.domain, self.stages
        other.rewriter = self.rewriter
        other.bus, other.hooks, other.reply_dir, other._executor = bus, [], None, None
        other._reply_errors, other._tracers, other._guesser = [], [], None
        return other

    # sessions -------------------------------------------------------------------------
    def new_session(
        self,
        session_id: str,
        world: Mapping | None = None,
        device: Mapping | None = None,
        user: Mapping | None = None,
        start_time: str | None = None,
        meta: Mapping | None = None,
    ) -> Session:
        start = dt.datetime.fromisoformat(start_time or self.config["session.start_time"])
        state = deep_merge(self.domain.world, world or {})
        w = World(state, start)
        dev = device_context(device, self.config)
        u = user or {}
        user_id = u.get("id", "user")
        said = {t: dict(v) for t, v in (u.get("history") or {}).items()}
        if self.rewriter is not None:
            said = self.rewriter.history(user_id, said)  # what the user chose before (learned)
            learned = self.rewriter.wake_threshold(user_id)
            if learned is not None:
                dev = replace(dev, wake_threshold=learned)
        history = {t: frozen_map(v) for t, v in said.items()}
        usr = UserContext(id=user_id, home=u.get("home", state.get("home")), history=frozen_map(history))
        session = Session(session_id, self.domain, w, dev, usr, meta)
        self.bus.emit(Event("session_start", session_id, data=None, meta=session))
        return session

    def trace_to(self, directory: str | Path) -> Tracer:
        """Write traces of every session from now on into ``directory``."""
        from hooks.tracer import Tracer

        tracer = Tracer(
            directory,
            audio=self.config["trace.audio"],
            embeddings=self.config["trace.embeddings"],
            fsync=self.config["trace.fsync"],
        )
        self.bus.add_observer(tracer)
        self._tracers.append(tracer)
        return tracer

    @property
    def output_errors(self) -> list[OutputError]:
        """Outputs that failed to be written (each stopped at its first failure, logged once):
        the command's exit code must say the results were not all saved."""
        return self._reply_errors + [t.error for t in self._tracers if t.error is not None]

    def decode_ahead(self, utterance: Utterance, stop: str = "tts") -> None:
        """Start recognizing a command a later turn will run (replay knows its next turns), so
        that recognition overlaps this turn's understanding and synthesis. The asr stage takes
        the result when that turn reaches it; decoding is deterministic, so transcripts are the
        same either way. A backend without ``prefetch_utterance`` just decodes in its turn.
        Nothing happens when the turns stop (``stop``) before recognition."""
        if not self.config["asr.decode_ahead"] or not utterance.heard or STAGES.index(stop) < STAGES.index("asr"):
            return
        try:
            ahead = getattr(self.stages["asr"], "prefetch_utterance", None)
            if ahead is not None:
                ahead(utterance)
        except Exception as err:  # the turn then decodes (and reports any failure) itself
            log.debug("decode ahead failed (%s: %s)", type(err).__name__, err)

    def prepare_reply(self, session: Session, transcript: Transcript, start_s: float) -> str | None:
        """Guess the next turn's reply and synthesize its first chunk ahead (tts ``prepare``).

        ``session`` must be a :meth:`Session.snapshot` the caller took: the guess runs understanding
        to response on it, with no hooks, no trace and no rewrite step (the rewrite step keeps
        state), so nothing of the live session changes. When the real turn says the same words,
        its speech starts on the prepared chunk; otherwise the chunk is never used. Returns the
        reply guessed, or None (no tts stage that prepares, or the guess failed)."""
        prepare = getattr(self.stages["tts"], "prepare", None)
        if prepare is None:
            return None
        if self._guesser is None:
            self._guesser = self.fork(HookBus())
            self._guesser.rewriter = None
        turn = Turn(
            session=session.id, index=len(session.turns) + 1, source="guess", start_s=start_s, transcript=transcript
        )
        done = self._guesser.run_turn(session, turn, start="nlu", stop="respond")
        if done.errors or done.outcome is None or not done.outcome.reply:
            return None
        prepare(done.outcome.reply)
        return done.outcome.reply

    # what a driver (the simulator) asks of the assistant -------------------------------
    def use_stage(self, name: str, stage: Any) -> None:
        """Run ``stage`` as stage ``name`` from now on (simulated acoustic stages, tests)."""
        log.debug("stage %s: %s", name, type(stage).__name__)
        self.stages.override(name, stage)

    def prepare(self, names: tuple[str, ...], warm: tuple[str, ...] = ()) -> None:
        """Build these stages (and warm those in ``warm``) now, so no turn pays for loading."""
        self.stages.prepare(names)
        for name in warm:
            self.stages.warm(name)

    def context_default(self, slot: Any, ctx: TurnContext) -> Any:
        """What the resolver's context rules give a slot the user did not say (None: nothing)."""
        value = self.stages["resolve"].context_default(slot, ctx)
        log.debug("%s #%d: context default of %s: %r", ctx.session, ctx.turn, getattr(slot, "name", slot), value)
        return value

    def try_api(self, api: str, args: Mapping, names: Mapping, ctx: TurnContext) -> Any:
        """The domain API's result on a copy of the world (the world itself does not change)."""
        result = self.stages["respond"].apis.call(api, args, names, ctx.world.snapshot(), ctx)
        log.debug("%s #%d: tried %s%s: %s", ctx.session, ctx.turn, api, dict(args), result.status)
        return result

    def wake_check(self, session: Session, utterance: Utterance) -> Utterance:
        """Would the wake stage, with the bus's interceptors (injected faults), wake on
        ``utterance`` as the session's next turn? No turn is kept and nothing is traced (a
        production trace holds no turn for speech that did not wake it); interceptors forget
        what they noted for it."""
        index = len(session.turns) + 1
        ctx = session.context(index)
        try:
            out = self.bus.before("wake", utterance, ctx)
            if out is None:
                out = self.stages["wake"].run(utterance, ctx)
            out = self.bus.after("wake", utterance, out, ctx)
        finally:
            self.bus.discard_turn(session.id, index)
        log.debug("%s #%d: wake check: %s", session.id, index, "woke" if out.heard else "asleep")
        if not out.heard:
            self._near_miss(session, index, out)
        return out

    def _near_miss(self, session: Session, index: int, utterance: Utterance) -> None:
        """Speech that came close to waking the device: the one thing a device keeps of speech
        it did not wake for (hooks/learn/wake_threshold.py learns from it)."""
        if utterance.near_miss is not None:
            self.bus.emit(Event("near_miss", session.id, index, "wake", data=utterance))

    def note_near_misses(self, session: Session, listener, before_s: float | None = None) -> None:
        """Trace the near misses a streaming listener heard (those that ended by ``before_s``;
        None: all), numbered as the session's next turn, as the wake stage's are."""
        for utterance in listener.take_near_misses(before_s):
            self._near_miss(session, len(session.turns) + 1, utterance)

    def end_session(self, session: Session) -> None:
        self.bus.emit(Event("session_end", session.id, data={"turns": len(session.turns)}, meta=session))

    # one turn -------------------------------------------------------------------------
    def run_turn(
        self,
        session: Session,
        turn: Turn,
        start: str = "asr",
        stop: str = "tts",
        wake_ms: float | None = None,
        wake_started: float | None = None,
    ) -> Turn:
        """Run stages ``start``..``stop`` on a turn that holds the input for ``start``."""
        if start not in STAGES or stop not in STAGES or STAGES.index(start) > STAGES.index(stop):
            raise ValueError(f"cannot run from {start!r} to {stop!r}")
        if start == "wake" and turn.heard_from is None:
            turn = replace(turn, heard_from=turn.utterance)  # keep the raw input: the cut replaces it
        now = session.clock_at(turn.start_s)
        session.world.advance_to(now)
        ctx = session.context(turn.index, now)
        self.bus.start_turn(turn, session)
        self.bus.emit(Event("turn_start", session.id, turn.index, data=turn, meta=session))
        if turn.utterance is not None and turn.wake is not None and wake_ms is not None:
            # The wake stage ran while listening; bracket it now that it produced this turn.
            t0 = wake_started if wake_started is not None else time.monotonic()
            self.bus.emit(Event("stage_start", session.id, turn.index, "wake", t=t0))
            turn = turn.with_stage("wake", turn.utterance, wake_ms)
            self.bus.emit(Event("stage_end", session.id, turn.index, "wake", duration_ms=wake_ms, data=turn.utterance))
        data: Any = self._initial_input(turn, start)
        order = STAGES[STAGES.index(start) : STAGES.index(stop) + 1]
        for stage in order:
            if stage == "asr" and isinstance(data, Utterance) and not data.heard:
                self._near_miss(session, turn.index, data)
                break  # no wake word: the assistant stays asleep
            if stage == "nlu" and isinstance(data, Transcript) and not data.text.strip():
                break  # nothing was said: the assistant goes back to listening, silently
            if stage == "nlu" and self.rewriter is not None:
                turn, data = self._rewrite(session, turn, data, ctx)
                if turn.rewrite is not None and turn.rewrite.dismissed:
                    break  # speech nobody addressed to it: back to sleep, silently
                if turn.outcome is not None:  # the step answered itself (a teaching question)
                    if STAGES.index(stop) >= STAGES.index("tts"):
                        turn, _out, _failed = self._run_stage(session, turn, "tts", turn.outcome, ctx)
                    break
            turn, data, failed = self._run_stage(session, turn, stage, data, ctx)
            if failed:
                turn = self._apologize(session, turn, ctx, stop)
                break
            if stage == "respond":
                self._after_respond(session, turn)
        turn = self._finish(session, turn)
        return turn

    def _initial_input(self, turn: Turn, start: str) -> Any:
        if start in ("wake", "asr"):
            if turn.utterance is None:
                raise ValueError(f"a turn starting at {start} needs an utterance")
            return turn.utterance
        if start == "nlu":
            text = (
                turn.text_input if turn.text_input is not None else (turn.transcript.text if turn.transcript else None)
            )
            if text is None:
                raise ValueError("a turn starting at nlu needs text")
            transcript = turn.transcript or Transcript(text=text, source="text")
            return transcript
        prev = STAGES[STAGES.index(start) - 1]
        value = getattr(turn, STAGE_OUTPUTS[prev].field)
        if value is None:
            raise ValueError(f"a turn starting at {start} needs the {prev} record")
        return value

    def _call(self, stage: str, data: Any, ctx, on_chunk: Callable[[Any], None]) -> Any:
        timeout = float(self.config[f"timeouts.{stage}"]) if stage in STAGES else 0.0
        runner = self.stages[stage]
        streaming = getattr(runner, "run_streaming", None)
        run = (lambda d, c: streaming(d, c, on_chunk)) if streaming is not None else runner.run
        if timeout <= 0:
            return run(data, ctx)
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage")
        future = self._executor.submit(run, data, ctx)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            # The call cannot be killed; its result is discarded when it returns.
            raise StageFailure(f"{stage}-timeout", f"{stage} took longer than {timeout:g} s") from None

    def _run_stage(self, session: Session, turn: Turn, stage: str, data: Any, ctx) -> tuple[Turn, Any, bool]:
        self.bus.emit(Event("stage_start", session.id, turn.index, stage, data=data))
        t0 = time.perf_counter()
        try:
            out = self.bus.before(stage, data, ctx)
            if out is None:
                out = self._call(
                    stage,
                    data,
                    ctx,
                    lambda chunk: self.bus.emit(Event("stage_chunk", session.id, turn.index, stage, data=chunk)),
                )
            out = self.bus.after(stage, data, out, ctx)
            want = STAGE_OUTPUTS[stage].record
            if not isinstance(out, want):
                raise StageFailure(f"{stage}-failed", f"{stage} returned {type(out).__name__}, not {want.__name__}")
        except Exception as err:  # contained: the session goes on
            ms = (time.perf_counter() - t0) * 1000
            code = err.code if isinstance(err, StageFailure) else f"{stage}-failed"
            error = StageError(
                stage, code, f"{type(err).__name__}: {err}" if not isinstance(err, StageFailure) else str(err)
            )
            log.warning("turn %d: %s (%s)", turn.index, code, error.message)
            turn = turn.with_error(error, ms)
            self.bus.emit(Event("stage_error", session.id, turn.index, stage, duration_ms=ms, data=error))
            return turn, None, True
        ms = (time.perf_counter() - t0) * 1000
        turn = turn.with_stage(stage, out, ms)
        if stage == "tts" and self.reply_dir is not None and len(out.audio.samples):
            try:
                path = write_wav(
                    self.reply_dir / safe_name(turn.session) / f"turn{turn.index:02d}-reply.wav", out.audio
                )
                turn = replace(turn, reply_audio=str(path))
            except OutputError as err:  # the turn is fine; that output stops, the exit code tells
                log.error("%s; no further replies are written to %s", err, self.reply_dir)
                self._reply_errors.append(err)
                self.reply_dir = None
        self.bus.emit(Event("stage_end", session.id, turn.index, stage, duration_ms=ms, data=out))
        return turn, out, False

    def _rewrite(self, session: Session, turn: Turn, transcript: Transcript, ctx) -> tuple[Turn, Transcript]:
        """The rewrite step, traced like a stage; a failure in it is contained (the request
        goes on as heard). A rewrite replaces the words the NLU reads, never the transcript."""
        self.bus.emit(Event("stage_start", session.id, turn.index, "rewrite", data=transcript))
        t0 = time.perf_counter()
        try:
            nlu = self.stages["nlu"]
            rewrite = self.rewriter.run(
                transcript,
                ctx,
                read=getattr(nlu, "interpret", None),
                woken=turn.wake is not None,
                wake_score=turn.wake.score if turn.wake is not None else None,
            )
        except Exception as err:
            ms = (time.perf_counter() - t0) * 1000
            error = StageError("rewrite", "rewrite-failed", f"{type(err).__name__}: {err}")
            log.warning("turn %d: rewrite-failed (%s)", turn.index, error.message)
            self.bus.emit(Event("stage_error", session.id, turn.index, "rewrite", duration_ms=ms, data=error))
            return turn, transcript
        ms = (time.perf_counter() - t0) * 1000
        turn = replace(turn, rewrite=rewrite, ms=frozen_map({**turn.ms, "rewrite": round(ms, 2)}))
        if rewrite.reply is not None:
            asks = rewrite.expects is not None
            turn = replace(
                turn,
                outcome=Outcome(
                    intent=None,
                    status="elicit" if asks else "ok",
                    reply=rewrite.reply,
                    reply_type="elicit" if asks else "answer",
                    expects=rewrite.expects,
                ),
            )
        self.bus.emit(Event("stage_end", session.id, turn.index, "rewrite", duration_ms=ms, data=rewrite))
        if rewrite.changed:
            transcript = replace(transcript, text=rewrite.text, words=())
        return turn, transcript

    def _apologize(self, session: Session, turn: Turn, ctx, stop: str) -> Turn:
        """After a failure: say sorry (synthesized if tts is in range and is not what failed)."""
        from stages.dialogue import next_dialogue

        failed_stage = turn.errors[-1].stage
        if failed_stage != "tts":
            # the request was not carried out: drop any question in flight, keep what is salient
            session.dialogue = next_dialogue(session.dialogue, replace(turn, outcome=None))
            outcome = Outcome(intent=None, status="error", reply=self.domain.responses["error"], reply_type="apology")
            turn = replace(turn, outcome=outcome)
            if STAGES.index(stop) >= STAGES.index("tts"):
                turn, _out, _failed = self._run_stage(session, turn, "tts", outcome, ctx)
        return turn

    def _after_respond(self, session: Session, turn: Turn) -> None:
        from stages.dialogue import EXECUTED, next_dialogue

        session.dialogue = next_dialogue(session.dialogue, turn)
        outcome = turn.outcome
        if outcome is not None and outcome.status in EXECUTED and turn.resolution is not None:
            for e in turn.resolution.entities:
                if e.id is not None and e.method not in ("default", "context", "carried"):
                    session.user = session.user.remember(e.type, e.id)

    def _finish(self, session: Session, turn: Turn) -> Turn:
        try:
            turn = self.bus.finish_turn(turn, session)
        except Exception as err:  # a broken labeler must not lose the turn
            log.warning("turn %d: finishing interceptor failed (%s: %s)", turn.index, type(err).__name__, err)
        session.turns.append(turn)
        self.bus.emit(Event("turn_end", session.id, turn.index, data=turn, meta=session))
        if turn.utterance is not None and turn.utterance.audio is not None:
            release_freed_memory()  # a decode's transient buffers (core/memory.py); the reply is out
        return turn

    # continuous audio -------------------------------------------------------------------
    def run_stream(
        self,
        session: Session,
        chunks: Iterator[Any],
        listener=None,
        gold_for: Callable[[float], Gold | None] | None = None,
        source: str = "",
        stop: str = "tts",
    ) -> Iterator[Turn]:
        """Listen for wake words in a stream of audio chunks; run a turn per command.

        The listener scans ahead on its own thread while earlier commands are processed, as it
        does live (nothing a turn does changes what the listener hears here, so the commands are
        the same); its ONNX models and the ASR overlap on separate cores. Each command it cuts
        starts recognition at once (:meth:`decode_ahead`)."""
        lent = listener is None
        listener = listener or self.stages.wake_listener(source, stop, session.device.wake_threshold)
        ahead = listen_ahead(listener, chunks, on_cut=lambda cmd: self.decode_ahead(cmd.utterance, stop))
        try:
            for cmd, wake_ms, listen_t0 in ahead:
                self.note_near_misses(session, listener, before_s=cmd.detected_at_s)
                yield self._command_turn(session, cmd, wake_ms, listen_t0, gold_for, source, stop)
        finally:
            ahead.close()  # its thread has stopped feeding the listener
            self.note_near_misses(session, listener)
            if lent:
                self.stages.return_listener(listener)

    def _command_turn(self, session, cmd, wake_ms, listen_t0, gold_for, source, stop) -> Turn:
        turn = Turn(
            session=session.id,
            index=len(session.turns) + 1,
            source=f"{source}@{cmd.wake.start_s:.2f}s",
            start_s=cmd.ended_at_s,
            wake=cmd.wake,
            utterance=cmd.utterance,
            gold=gold_for(cmd.detected_at_s) if gold_for else None,
        )
        return self.run_turn(session, turn, start="asr", stop=stop, wake_ms=wake_ms, wake_started=listen_t0)

    def utterance_turn(
        self, session: Session, audio: Audio, source: str = "", gold: Gold | None = None, start_s: float | None = None
    ) -> Turn:
        """A pre-segmented (push-to-talk) turn: the wake stage is skipped."""
        offset = start_s if start_s is not None else (session.turns[-1].start_s + 10.0 if session.turns else 0.0)
        utt = Utterance(
            audio=audio, start_s=offset, end_s=offset + audio.duration_s, endpoint="pre_segmented", source=source
        )
        return Turn(
            session=session.id,
            index=len(session.turns) + 1,
            source=source,
            start_s=offset + audio.duration_s,
            utterance=utt,
            gold=gold,
        )

    def text_turn(self, session: Session, text: str, gold: Gold | None = None, start_s: float | None = None) -> Turn:
        offset = start_s if start_s is not None else (session.turns[-1].start_s + 5.0 if session.turns else 0.0)
        return Turn(
            session=session.id, index=len(session.turns) + 1, source="text", start_s=offset, text_input=text, gold=gold
        )


_END = object()


def listen_ahead(
    listener, chunks: Iterator[Any], depth: int = 8, on_cut: Callable[[Any], None] | None = None
) -> Iterator[tuple[Any, float, float]]:
    """(command, ms the listener spent since the previous one, when that listening began),
    with ``listener`` fed on a worker thread up to ``depth`` commands ahead of the consumer;
    ``on_cut`` sees each command on that thread as soon as it is cut."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def feed() -> None:
        busy_ms, listen_t0 = 0.0, time.monotonic()
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                t0 = time.perf_counter()
                commands = listener.feed(chunk)
                busy_ms += (time.perf_counter() - t0) * 1000
                for cmd in commands:
                    if on_cut is not None:
                        on_cut(cmd)
                    if not put((cmd, busy_ms, listen_t0)):
                        return
                    busy_ms, listen_t0 = 0.0, time.monotonic()
            for cmd in listener.finish():
                if on_cut is not None:
                    on_cut(cmd)
                if not put((cmd, busy_ms, listen_t0)):
                    return
            put(_END)
        except BaseException as err:  # handed to the consumer, raised there
            put(err)

    worker = threading.Thread(target=feed, name="listen-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()

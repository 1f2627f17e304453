"""The simulator: goal-driven users talk to the real pipeline; every turn traced and labeled.

One session = one simulated user (persona, voice, acoustic condition, device, home, history)
pursuing 1–4 goals. Everything a session does derives from (run seed, session index), so a run
is reproducible whatever the number of workers or the backend. Sessions run in worker
processes (all cores by default) or on Ray (``--backend ray``); each writes its own trace file.

Fidelities:
* ``text``  — the acoustic stages are the fitted error model (sim/asr_errors.py): fast.
* ``audio`` — users speak through local synthesizers and an acoustic channel, and the real
  openWakeWord and faster-whisper listen.

An output folder holds one run: a folder with another run's files, or anything simulate does
not write, is refused unless ``overwrite`` (simulate's own files are cleared first) or
``resume`` (same seed and settings: finished sessions are kept, the rest run). Each finished
session is appended to ``run.progress``; Ctrl-C or SIGTERM stops the run within a second or
two, removes the unfinished sessions' traces and writes ``run.json`` with ``"interrupted": true``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from core.audio import PIPELINE_RATE, Audio
from core.config import Config, cache_dir
from core.domain import DOMAINS_DIR
from core.errors import OutputError, UserError
from core.normalize import normalize, relative_seconds
from core.paths import ensure_output_dir, safe_name, write_json_atomic
from core.records import Utterance, frozen_map
from core.session import Gold, Turn
from core.wer import normalize_words
from hooks.signals import reply_window
from hooks.tracer import LineWriter
from sim.asr_errors import DEFAULT_MODEL, AsrErrorModel, align
from sim.faults import DEFAULT_FAULTS, FaultInjector, FaultSpec
from sim.oracle import OracleLabeler
from sim.text_stages import SimulatedAsr, SimulatedWake, turn_rng
from sim.user import CONCEPT_NAMES, HOUSE_NAME_USERS, SimulatedUser, UserAct, sample_persona
from sim.wake_peaks import DEFAULT_PEAKS, WakePeaks

log = logging.getLogger(__name__)

RUN_FORMAT = "assistant.sim-run/1"
FIDELITIES = ("text", "audio")
DEFAULT_AUDIO_CONDITIONS = ("clean", "pink@20dB", "pink@10dB")
SECONDS_PER_WORD = 0.38  # speaking time per word at rate 1 (text fidelity's timeline)
# The simulated assistant answers this long after the user stops, whatever this machine took:
# measured times would make the session clock, and with it timers and the signals' time gaps,
# differ from run to run. About the live loop's end of speech → first reply audio (README).
LATENCY_S = 0.6
HOMES = ("springfield_il", "springfield_mo", "seattle", "chicago", "austin", "boston", "wilkerson_ca")
SIM_OOD_FILE = DOMAINS_DIR / "home_ood_sim.txt"
PROGRESS = "run.progress"  # a JSON line per finished session (not .jsonl: trace readers glob those)
# Options that do not change what a session is: a run may be resumed with other values.
NOT_SETTINGS = ("sessions", "workers", "out", "backend", "overwrite", "resume")
_SESSION_NAME = re.compile(r"sim-s-?\d+-\d{5,}")
_SESSION_AUDIO = re.compile(r"\.?turn\d{3}-\w+\.wav(\.tmp)?")  # the tracer's audio (and its temp file)
_RUN_FILES = ("run.json", ".run.json.tmp", PROGRESS)
# What `assistant report` and `assistant view` write into a run's folder by default: about the
# run, not part of it, so neither refused nor cleared (but stale once the run changes).
DERIVED = ("report", "view")


@dataclass(frozen=True)
class SimOptions:
    sessions: int = 10
    seed: int = 0
    fidelity: str = "text"
    out: str = "sim-out"
    workers: int = 0  # 0: every core
    faults: str = DEFAULT_FAULTS
    conditions: tuple[str, ...] = ()  # acoustic conditions (channel ids); () → defaults
    voices: tuple[str, ...] = ()  # only these voices (audio); () → all
    exclude_voices: tuple[str, ...] = ()  # never these (held-out sets)
    phrasings: tuple[str, ...] = ()  # real users: only these phrasing sources; () → all
    exclude_phrasings: tuple[str, ...] = ()  # never these (held-out sets)
    goals: tuple[int, int] = (1, 4)
    background_rate: float = 0.5  # chance per goal of speech not addressed to it
    ood_rate: float = 0.08  # share of requests the domain cannot serve
    asr_model: str = str(DEFAULT_MODEL)
    backend: str = "local"  # local | ray
    embeddings: bool = False  # MiniLM rephrase similarity in traces (slow: ~20 ms/turn)
    profile: str = ""  # the traffic profile that set the defaults (sim/profiles.py)
    asr_scale: float = 1.0  # text: factor on the error model's word-error rates
    wake_scale: float = 1.0  # text: factor on its wake-miss rates
    users: str = "real"  # real: phrasings the NLU never trains on, spoken variety;
    # spec: the spec's own templates (the NLU's training words)
    population: int = 0  # >0: sessions belong to this many recurring users (the same
    # users whatever the seed: id, persona, home, habits)
    house_names: float = HOUSE_NAME_USERS  # share of recurring users' homes with names of their own for devices
    overwrite: bool = False  # clear another run's files from ``out`` first
    resume: bool = False  # continue the run in ``out`` (same seed and settings)

    def validate(self) -> None:
        if self.sessions < 1:
            raise UserError(f"--sessions must be at least 1, got {self.sessions}")
        if self.population < 0:
            raise UserError(f"--population must be 0 or more, got {self.population}")
        if not 0.0 <= self.house_names <= 1.0:
            raise UserError(f"--house-names must be a share from 0 to 1, got {self.house_names}")
        if self.fidelity not in FIDELITIES:
            raise UserError(f"--fidelity must be one of {', '.join(FIDELITIES)}, got {self.fidelity!r}")
        if self.users not in ("real", "spec"):
            raise UserError(f"--users must be real or spec, got {self.users!r}")
        if self.backend not in ("local", "ray"):
            raise UserError(f"--backend must be local or ray, got {self.backend!r}")
        if self.goals[0] < 1 or self.goals[1] < self.goals[0]:
            raise UserError(f"goals per session must be a range like 1-4, got {self.goals}")
        if self.overwrite and self.resume:
            raise UserError("--overwrite and --resume exclude each other")
        FaultSpec.parse(self.faults)

    def settings(self) -> dict:
        """What makes the sessions what they are, as run.json stores it."""
        opts = json.loads(json.dumps({**dataclasses.asdict(self), "goals": list(self.goals)}))
        return {k: v for k, v in opts.items() if k not in NOT_SETTINGS}


def session_id(seed: int, index: int) -> str:
    return f"sim-s{seed}-{index:05d}"


# What SessionStats.wake counts per condition, in the order its lists (and run stats files) keep them.
WAKE_COUNTS = ("addressed", "missed", "background", "false_accepts")


@dataclass
class SessionStats:
    turns: int = 0
    labels: Counter = field(default_factory=Counter)
    defects: int = 0
    words: dict = field(default_factory=dict)  # condition → [errors, words]
    wake: dict = field(default_factory=dict)  # condition → counts in WAKE_COUNTS order
    replays: int = 0

    def count_wake(self, condition: str, what: str, n: int = 1) -> None:
        """Add ``n`` to one of :data:`WAKE_COUNTS` for ``condition``."""
        self.wake.setdefault(condition, [0] * len(WAKE_COUNTS))[WAKE_COUNTS.index(what)] += n

    def merge(self, other: "SessionStats") -> None:
        self.turns += other.turns
        self.labels.update(other.labels)
        self.defects += other.defects
        self.replays += other.replays
        for c, (e, n) in other.words.items():
            cur = self.words.setdefault(c, [0, 0])
            cur[0] += e
            cur[1] += n
        for c, vals in other.wake.items():
            for what, v in zip(WAKE_COUNTS, vals):
                self.count_wake(c, what, v)

    def to_json(self) -> dict:
        return {
            "turns": self.turns,
            "labels": dict(self.labels),
            "defects": self.defects,
            "words": self.words,
            "wake": self.wake,
            "replays": self.replays,
        }

    @staticmethod
    def from_json(raw: dict) -> "SessionStats":
        return SessionStats(
            turns=int(raw["turns"]),
            labels=Counter(raw["labels"]),
            defects=int(raw["defects"]),
            words={c: list(v) for c, v in raw["words"].items()},
            wake={c: list(v) for c, v in raw["wake"].items()},
            replays=int(raw["replays"]),
        )


def _sentences(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    return tuple(
        line.split("\t")[-1].strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )


class SessionSimulator:
    """Runs simulated sessions against one assistant (one per worker process)."""

    def __init__(self, config: Config, opts: SimOptions):
        from assistant.runner import Assistant

        self.opts = opts
        self.assistant = Assistant(config)
        a = self.assistant
        self.domain = a.domain
        self.model = AsrErrorModel.load(opts.asr_model) if opts.fidelity == "text" else None
        if self.model is not None and (opts.asr_scale, opts.wake_scale) != (1.0, 1.0):
            self.model = dataclasses.replace(self.model, scale={"asr": opts.asr_scale, "wake": opts.wake_scale})
        self.conditions = self._conditions()
        if opts.fidelity == "text":
            peaks = WakePeaks.load() if DEFAULT_PEAKS.is_file() else None
            a.use_stage("wake", SimulatedWake(self.model, config["wake.word"], opts.seed, peaks))
            from core.domain import domain_vocabulary

            a.use_stage("asr", SimulatedAsr(self.model, opts.seed, domain_vocabulary(self.domain)))
        # MiniLM (the resolver's) loads here, not in whichever turn first needs it
        a.prepare(("wake", "asr", "nlu", "resolve", "respond"), warm=("resolve",))
        spec = FaultSpec.parse(opts.faults)
        wake_word = config["wake.word"]
        a.bus.add_interceptor(FaultInjector(spec, self.domain, opts.seed, wake_word))

        def replay_faults(kinds):
            # certain to fire again, with the same random draws, so the same fault recurs
            return FaultInjector(FaultSpec({k: 1.0 for k in kinds}), self.domain, opts.seed, wake_word)

        self.oracle = a.bus.add_interceptor(OracleLabeler(a, replay_faults=replay_faults))
        if a.rewriter is not None:  # the oracle also judges each rewrite: a win, a loss or neither
            from sim.rewrite_judge import RewriteJudge

            a.bus.add_interceptor(RewriteJudge(a, replay_faults=replay_faults))
        self.tracer = a.trace_to(opts.out)
        self.ood = _sentences(SIM_OOD_FILE)
        self.phrasings = self.training = None
        if opts.users == "real":
            from sim.phrasing import TrainingTexts

            self.phrasings = _phrasing_bank(self.domain, opts)
            self.training = TrainingTexts.for_domain(self.domain)
        self.background = tuple(s for s in _sentences(DOMAINS_DIR / "_out_of_domain.txt") if len(s.split()) > 4)
        self.voice_pool = self._voices()
        self._channels: dict[str, Any] = {}

    def _conditions(self) -> tuple[str, ...]:
        if self.opts.conditions:
            return tuple(self.opts.conditions)
        if self.model is not None:
            # the default mix of conditions, as far as the model knows them
            found = tuple(c for c in DEFAULT_AUDIO_CONDITIONS if c in self.model.conditions)
            return found or tuple(c for c in self.model.conditions if c != "*") or ("clean",)
        return DEFAULT_AUDIO_CONDITIONS

    def _voices(self):
        """Audio: the installed voices; text: those the error model knows (when it knows any).
        Both sorted by name, so one seed draws the same voices at either fidelity."""
        from sim.voices import Voice, held_out, voice_catalog

        if self.model is not None:
            catalog = tuple(Voice(*base.split(":", 1)) for base in self.model.voice_bases())
            if not catalog:
                return ()
        else:
            catalog = voice_catalog()
        catalog = tuple(sorted(catalog, key=lambda v: v.base))
        if self.opts.voices:
            wanted = set(self.opts.voices)
            catalog = tuple(v for v in catalog if {v.id, v.base, v.name, v.backend} & wanted)
            if not catalog:
                where = "in the ASR error model" if self.model is not None else "installed here"
                raise UserError(f"--voices: none of {sorted(wanted)} is {where}")
        pool = held_out(catalog, self.opts.exclude_voices) if self.opts.exclude_voices else list(catalog)
        if not pool:
            raise UserError("no voices left after --exclude-voices")
        return tuple(pool)

    # one session ---------------------------------------------------------------------------
    def run(self, index: int) -> SessionStats:
        opts = self.opts
        rng = turn_rng(opts.seed, "session", index)
        if self.tracer.error is not None:  # an earlier session's trace could not be written
            raise self.tracer.error
        sid = session_id(opts.seed, index)
        user_id, habits, concept, house = "user", (), None, None
        who = rng
        if opts.population:
            # a recurring user: who they are comes from their number alone, not from the run's seed
            number = rng.randrange(opts.population)
            user_id, who = f"u{number:04d}", turn_rng(0, "population-user", number)
            habits = tuple(who.randrange(1 << 30) for _ in range(who.randint(2, 5)))
            if who.random() < 0.5:  # half of them have a concept of their own to teach
                concept = (who.choice(CONCEPT_NAMES), who.randrange(1 << 30))
            if turn_rng(0, "population-house", number).random() < opts.house_names:
                house = number  # calls some of its devices by names of its own
        persona = sample_persona(who)
        condition = who.choice(self.conditions)
        screen = who.random() < 0.3
        device = {
            "id": "living_room_display" if screen else "kitchen_speaker",
            "room": "living_room" if screen else "kitchen",
            "screen": screen,
        }
        home = who.choice(HOMES)
        history = {}
        if who.random() < 0.3:
            history = {"place": {who.choice(["wilkerson_ca", "wilkerson_wa", "springfield_mo"]): who.randint(1, 3)}}
        start = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(6, 22):02d}:{rng.choice([0, 15, 30, 45]):02d}:00"
        voice = None
        if self.voice_pool:
            from sim.voices import sample_voice

            # a recurring user speaks with one voice (and one accent, sim/asr_errors.py) in every session
            voice_rng = turn_rng(0, "population-voice", int(user_id[1:])) if opts.population else rng
            voice = sample_voice(voice_rng, catalog=self.voice_pool)
            voice = dataclasses.replace(voice, rate=round(voice.rate * persona.rate, 3))
        meta = {
            "persona": persona.name,
            "condition": condition,
            "voice": voice.id if voice else None,
            "fidelity": opts.fidelity,
            "seed": opts.seed,
            "index": index,
            "faults": opts.faults,
        }
        session = self.assistant.new_session(
            sid, device=device, user={"id": user_id, "home": home, "history": history}, start_time=start, meta=meta
        )
        style = None
        if self.phrasings is not None:
            from sim.phrasing import sample_style

            # how this user talks: their own draw, the same in every session of a recurring user
            style = sample_style(
                persona.name,
                turn_rng(0, "population-style", int(user_id[1:]))
                if opts.population
                else turn_rng(opts.seed, "style", index),
            )
        user = SimulatedUser(
            self.domain,
            persona,
            rng,
            self.assistant.context_default,
            ood_sentences=self.ood,
            ood_rate=opts.ood_rate,
            plausible=self._plausible,
            habits=habits,
            concept=concept,
            house=house,
            style=style,
            phrasings=self.phrasings,
            training=self.training,
        )
        stats = SessionStats()
        t = 1.0
        try:
            for _goal in range(rng.randint(*opts.goals)):
                if self.background and rng.random() < opts.background_rate:
                    t = self._background(session, rng, condition, voice, t, stats)
                act: UserAct | None = user.start(user.new_goal(session.context(len(session.turns) + 1)))
                while act is not None:
                    turn, t = self._turn(session, act, condition, voice, persona, t, rng, stats)
                    act = user.react(turn, session.context(len(session.turns) + 1))
                    reply_start, reply_end = reply_window(turn)
                    if act is not None and act.barge_in:
                        t = reply_start + rng.uniform(0.3, 0.8) * (reply_end - reply_start)
                    else:
                        t = reply_end + rng.uniform(*persona.think_s)
                if rng.random() < 0.15:
                    break  # the user is done for now
        finally:
            self.assistant.end_session(session)
        if self.tracer.error is not None:  # the session ran, but its trace is not all there
            raise self.tracer.error
        stats.replays = self.oracle.take_replays()
        return stats

    def _plausible(self, intent: str, args, ctx) -> bool:
        """Would the request find its target? Tried on a copy of the world."""
        spec = self.domain.intents[intent]
        if spec.api is None:
            return True
        names = {}
        for slot, value in args.items():
            catalog = self.domain.catalog_for(spec.slots[slot].type) if slot in spec.slots else None
            v = catalog.get(value) if catalog and isinstance(value, str) else None
            if v is not None:
                names[slot] = v.name
            elif catalog is not None and isinstance(value, str):
                names[slot] = value  # a name the catalog does not list: the user's own words
        result = self.assistant.try_api(spec.api, {**spec.args, **args}, names, ctx)
        return result.status not in ("not_found", "failed")

    def _utterance(self, text: str, wake: bool, condition: str, voice, t: float, rng: random.Random) -> Utterance:
        spoken = f"{self.assistant.config['wake.word'].replace('_', ' ').title()}, {text}" if wake else text
        if self.opts.fidelity == "text":
            duration = len(spoken.split()) * SECONDS_PER_WORD
            audio = Audio(np.zeros(0, np.float32), PIPELINE_RATE)
        else:
            from sim.channel import apply, parse_condition
            from sim.voices import speak

            speech = speak(voice, spoken, cache_dir=cache_dir(self.assistant.config) / "voices")
            padded = Audio.concat([Audio.silence(0.4), speech, Audio.silence(0.3)])
            channel = self._channels.setdefault(condition, parse_condition(condition))
            audio = apply(channel, padded, turn_rng(self.opts.seed, "channel", t, text))
            duration = audio.duration_s
        return Utterance(
            audio=audio,
            start_s=round(t, 3),
            end_s=round(t + duration, 3),
            source="sim",
            spoken=spoken,
            condition=condition,
            voice=voice.id if voice else "",
        )

    def _turn(self, session, act: UserAct, condition: str, voice, persona, t: float, rng, stats):
        utt = self._utterance(act.text, act.wake, condition, voice, t, rng)
        turn = Turn(
            session=session.id,
            index=len(session.turns) + 1,
            source=f"sim:{act.kind}",
            start_s=utt.end_s,
            utterance=utt,
            gold=self._reclocked(act.gold, session.clock_at(utt.end_s)),
            barge_in=act.barge_in,
            latency_s=LATENCY_S,
        )
        done = self.assistant.run_turn(session, turn, start="wake" if act.wake else "asr", stop="respond")
        self._count(done, condition, stats)
        return done, utt.end_s

    def _reclocked(self, gold: Gold | None, now) -> Gold | None:
        """The gold of a time or date said relative to now ("two hours from now") at the clock
        of the turn that says it: the user drew the goal a turn or a minute earlier."""
        spec = self.domain.intents.get(gold.intent) if gold is not None and gold.intent else None
        if gold is None or spec is None or not gold.spans:
            return gold
        slots, spans, changed = dict(gold.slots), [], False
        for name, words, value in gold.spans:
            sspec = spec.slots.get(name)
            if sspec is not None and sspec.type in ("time", "date") and relative_seconds(words) is not None:
                value, changed = normalize(sspec.type, words, now), True
                if name in slots:
                    slots[name] = value
            spans.append((name, words, value))
        return dataclasses.replace(gold, slots=frozen_map(slots), spans=tuple(spans)) if changed else gold

    def _background(self, session, rng, condition, voice, t: float, stats) -> float:
        """Speech nobody addressed to the assistant (a TV, a conversation): false-wake bait."""
        text = rng.choice(self.background)
        utt = self._utterance(text, False, condition, voice, t, rng)
        stats.count_wake(condition, "background")
        index = len(session.turns) + 1
        # Will the wake stage (faults included) wake up? Only then is there a turn to trace.
        woke = self.assistant.wake_check(session, utt)
        if woke.heard:
            gold = Gold(transcript=text, wake=False)
            turn = Turn(
                session=session.id,
                index=index,
                source="sim:background",
                start_s=utt.end_s,
                utterance=utt,
                gold=gold,
                latency_s=LATENCY_S,
            )
            done = self.assistant.run_turn(session, turn, start="wake", stop="respond")
            self._count(done, condition, stats)
            return reply_window(done)[1] + 2.0
        return utt.end_s + rng.uniform(1.0, 3.0)

    @staticmethod
    def _count(turn: Turn, condition: str, stats: SessionStats) -> None:
        stats.turns += 1
        label = (turn.labels.get("oracle") or {}).get("failure_point")
        if label:
            stats.labels[label] += 1
            stats.defects += label != "correct"
        gold = turn.gold
        if gold is not None and gold.wake is True and turn.utterance is not None:
            stats.count_wake(condition, "addressed")
            stats.count_wake(condition, "missed", int(not turn.utterance.heard))
        if gold is not None and gold.wake is False:
            stats.count_wake(condition, "false_accepts")
        if gold is not None and gold.transcript and turn.transcript is not None and turn.transcript.source != "gold":
            ref, hyp = normalize_words(gold.transcript), normalize_words(turn.transcript.text)
            errors = sum(1 for r, h in align(ref, hyp) if r != h)
            w = stats.words.setdefault(condition, [0, 0])
            w[0] += errors
            w[1] += len(ref)


# running many sessions ---------------------------------------------------------------------

_WORKER: SessionSimulator | None = None
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int) -> None:
    """A worker must not outlive its parent (killed, crashed): it would keep writing traces
    into a run that is over. Linux: the kernel kills it (PR_SET_PDEATHSIG); elsewhere a thread
    watches the parent."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            armed = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError) as err:
            log.debug("prctl(PR_SET_PDEATHSIG) unavailable: %s", err)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    if not armed:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_stop(signum, frame) -> None:
    """The parent stops this worker: release what libraries registered with multiprocessing's
    resource tracker (else it warns of leaked semaphores), then exit at once."""
    from multiprocessing import util

    with contextlib.suppress(Exception):
        util._run_finalizers(0)
    os._exit(128 + signum)


def _init_worker(config_values: dict, opts: SimOptions, parent_pid: int | None = None) -> None:
    global _WORKER
    if parent_pid is not None:  # a worker process, not the parent running sessions itself
        _die_with_parent(parent_pid)
        # Ctrl-C reaches the whole process group; the parent decides what stops, and how
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _worker_stop)
    logging.getLogger().setLevel(logging.WARNING)
    values = {**config_values, "trace.embeddings": opts.embeddings}
    _WORKER = SessionSimulator(Config.load(None, values, override_source="simulate"), opts)


def _run_in_worker(index: int) -> tuple[int, SessionStats]:
    return index, _WORKER.run(index)


def _phrasing_bank(domain, opts: SimOptions):
    """The real users' phrasings of the sources ``opts`` keeps; an unknown source is a UserError."""
    from sim.phrasing import PhrasingBank

    try:
        return PhrasingBank.for_domain(domain, opts.phrasings, opts.exclude_phrasings)
    except ValueError as err:
        raise UserError(f"--phrasings: {err}") from None


def check_phrasings(config: Config, opts: SimOptions) -> None:
    """Unknown phrasing sources are refused before anything is written or a worker starts."""
    if opts.users == "real" and (opts.phrasings or opts.exclude_phrasings):
        from core.domain import load_domain

        _phrasing_bank(load_domain(config["session.domain"]), opts)


def _prepare(config: Config, opts: SimOptions) -> None:
    """Train the NLU once before workers start, so they do not all train it. A cached model is
    not loaded here (seconds before any session starts): each worker loads its own."""
    from core.config import cache_dir
    from core.domain import load_domain
    from stages.nlu.recipes import configured_spec
    from stages.nlu.stage import configured_model, is_cached

    domain = load_domain(config["session.domain"])
    if str(config["nlu.model_dir"]).strip() or not is_cached(domain, cache_dir(config), configured_spec(config)):
        configured_model(domain, config)


def _warm_up_worker(config_values: dict, opts: SimOptions, parent_pid: int) -> None:
    _init_worker(config_values, opts, parent_pid)
    _WORKER.run(opts.sessions)  # an index outside the timed ones: first-use costs fall here


def _worker_pid(_task: int) -> int:
    time.sleep(0.2)  # long enough that every worker takes one of these tasks
    return os.getpid()


def warm_throughput(config: Config, opts: SimOptions, workers: int) -> float:
    """Turns per second of ``workers`` worker processes over sessions 0…``opts.sessions`` − 1,
    timed once every worker has loaded its models and run one session: the steady state of a
    long run, without start-up (the bench compares one worker with two). ``opts.backend``
    picks local worker processes or Ray actors."""
    import multiprocessing

    _prepare(config, opts)
    if opts.backend == "ray":
        return _ray_warm_throughput(config.to_dict(), opts, workers)
    ctx = multiprocessing.get_context("spawn")
    values = config.to_dict()
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_warm_up_worker, initargs=(values, opts, os.getpid())
    ) as pool:
        while len(set(pool.map(_worker_pid, range(2 * workers)))) < workers:
            pass
        started = time.perf_counter()
        turns = sum(stats.turns for _i, stats in pool.map(_run_in_worker, range(opts.sessions), chunksize=2))
        return turns / (time.perf_counter() - started)


# the output folder ---------------------------------------------------------------------------


def _session_files(out: Path, seed: int, index: int) -> tuple[Path, Path]:
    name = safe_name(session_id(seed, index))
    return out / f"{name}.jsonl", out / name


def _sorted_contents(out: Path) -> tuple[list[Path], list[Path]]:
    """(what simulate writes, anything else but DERIVED folders) in ``out``."""
    own, foreign = [], []
    for p in sorted(out.iterdir()):
        if p.name in DERIVED and p.is_dir() and not p.is_symlink():
            continue
        if p.is_symlink():
            foreign.append(p)
        elif p.is_file() and (
            p.name in _RUN_FILES
            or p.name.startswith(".write-check-")
            or (p.suffix == ".jsonl" and _SESSION_NAME.fullmatch(p.stem))
        ):
            own.append(p)
        elif (
            p.is_dir()
            and _SESSION_NAME.fullmatch(p.name)
            and all(q.is_file() and not q.is_symlink() and _SESSION_AUDIO.fullmatch(q.name) for q in p.iterdir())
        ):
            own.append(p)
        else:
            foreign.append(p)
    return own, foreign


def _names(paths: list[Path], most: int = 3) -> str:
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in paths[:most])
    return shown + (f" and {len(paths) - most} more" if len(paths) > most else "")


def _remove(paths: Iterable[Path]) -> None:
    for p in paths:
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        except OSError as err:
            raise OutputError(p, f"cannot remove ({err.strerror or err})") from None


def _read_progress(out: Path, opts: SimOptions) -> dict[int, SessionStats]:
    """Sessions a previous run finished (the last line per session counts; a torn line does
    not), as far as their traces are still there."""
    path, done = out / PROGRESS, {}
    if path.is_file():
        for line in path.read_bytes().splitlines():
            try:
                rec = json.loads(line)
                done[int(rec["index"])] = SessionStats.from_json(rec["stats"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return {i: st for i, st in done.items() if i < opts.sessions and _session_files(out, opts.seed, i)[0].is_file()}


def _claim(out: Path, opts: SimOptions) -> dict[int, SessionStats]:
    """Make ``out`` this run's folder; returns the sessions already finished (``resume``).
    A folder is never shared between runs: see the module docstring."""
    ensure_output_dir(out)
    own, foreign = _sorted_contents(out)
    if foreign:
        raise UserError(
            f"{out}: holds files simulate did not write ({_names(foreign)}); choose another folder "
            "(--overwrite clears only simulate's own files)"
        )
    if not own:
        return {}
    stale = [p.name for p in map(out.joinpath, DERIVED) if p.is_dir()]
    if stale and (opts.overwrite or opts.resume):
        log.warning(
            "%s: %s describe%s the run before this one; run `assistant %s` again afterwards",
            out,
            " and ".join(f"{n}/" for n in stale),
            "" if len(stale) > 1 else "s",
            " / ".join(stale),
        )
    if opts.overwrite:
        _remove(own)
        return {}
    run_json = out / "run.json"
    try:
        previous = json.loads(run_json.read_text(encoding="utf-8"))
        before = previous["options"]
        before_settings = {k: v for k, v in before.items() if k not in NOT_SETTINGS}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"{out}: holds simulation traces but no readable run.json; --overwrite replaces them") from None
    if not opts.resume:
        raise UserError(
            f"{out}: holds a simulation run (seed {before.get('seed')}, {before.get('sessions')} sessions); "
            "--resume continues it, --overwrite replaces it"
        )
    now = opts.settings()
    changed = [
        f"{k} {before_settings.get(k)!r} → {now.get(k)!r}"
        for k in sorted(set(now) | set(before_settings))
        if now.get(k) != before_settings.get(k)
    ]
    if changed:
        raise UserError(
            f"{run_json}: the run there has other settings ({'; '.join(changed)}); "
            "--resume needs the same seed and settings"
        )
    if opts.sessions < int(before.get("sessions", 0)):
        raise UserError(f"{run_json}: the run there has {before['sessions']} sessions; --resume needs at least as many")
    return _read_progress(out, opts)


# running -------------------------------------------------------------------------------------


class _Stop(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


@contextlib.contextmanager
def _interruptible():
    """SIGTERM raises :class:`_Stop` in the main thread (as Ctrl-C raises KeyboardInterrupt), once:
    a second signal must not cut short the cleanup that keeps the finished sessions."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def on_term(signum, frame):
        if not fired:
            fired.append(signum)
            raise _Stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _shielded():
    """Ctrl-C and SIGTERM wait while the run's files are being put in order."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop now: pending sessions are cancelled and running ones killed (their traces are
    removed afterwards); waiting for them could take minutes."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 1.0
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(0.5)
    # its manager thread sees the dead workers and releases the queues (else: "leaked semaphore" warnings)
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(1.0)


def _run_pool(
    values: dict, opts: SimOptions, indices: list[int], workers: int, record: Callable[[int, SessionStats], None]
) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(values, opts, os.getpid())
    )
    try:
        futures = [pool.submit(_run_in_worker, i) for i in indices]
        for fut in as_completed(futures):
            record(*fut.result())
    except BaseException:
        with _shielded():
            _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def run(config: Config, opts: SimOptions, on_session: Callable[[int], None] | None = None) -> dict:
    """Simulate ``opts.sessions`` sessions; writes traces and ``run.json`` into ``opts.out``.

    Returns the summary run.json holds; ``summary["interrupted"]`` is true when Ctrl-C or
    SIGTERM stopped the run (the finished sessions are kept). Raises :class:`OutputError` when
    a trace could not be written."""
    opts.validate()
    check_phrasings(config, opts)
    out = Path(opts.out)
    done = _claim(out, opts)
    workers = opts.workers or os.cpu_count() or 1
    todo = [i for i in range(opts.sessions) if i not in done]
    workers = max(1, min(workers, len(todo) or 1))
    write_json_atomic(out / "run.json", _summary(opts, _total(done), 0.0, workers, set(done), complete=False))
    progress = LineWriter(out / PROGRESS, append=bool(done))

    def record(index: int, stats: SessionStats) -> None:
        progress.write({"index": index, "stats": stats.to_json()})
        if on_session:
            on_session(1)

    started = time.perf_counter()
    stopped: BaseException | None = None
    values = config.to_dict()
    try:
        with _interruptible():
            _prepare(config, opts)
            if not todo:
                pass
            elif opts.backend == "ray":
                for i, stats in _run_ray(values, opts, todo, workers):
                    record(i, stats)
            elif workers == 1:
                _init_worker(values, opts)
                try:
                    for i in todo:
                        record(*_run_in_worker(i))
                finally:
                    _WORKER.tracer.close()
            else:
                _run_pool(values, opts, todo, workers, record)
    except BaseException as err:  # whatever stopped it, the finished sessions are put in order
        stopped = err
    with _shielded():
        progress.close()
        # run.progress is the record of what finished, whenever the signal came
        if stopped is not None:
            recorded = _read_progress(out, opts)
            try:  # traces of sessions that did not finish would read as short sessions
                _remove(p for i in todo if i not in recorded for p in _session_files(out, opts.seed, i))
            except OutputError as err:
                log.error("%s", err)
        finished = _read_progress(out, opts)
        summary = _summary(
            opts,
            _total(finished),
            time.perf_counter() - started,
            workers,
            set(finished),
            complete=stopped is None,
            interrupted=isinstance(stopped, KeyboardInterrupt),
        )
        if isinstance(stopped, KeyboardInterrupt):
            summary["signal"] = "SIGTERM" if isinstance(stopped, _Stop) else "SIGINT"
        elif stopped is not None:
            summary["error"] = f"{type(stopped).__name__}: {stopped}"
        try:
            if stopped is not None and not isinstance(stopped, KeyboardInterrupt) and not finished:
                # failed before any session finished (a bad --voices, a model missing): leave
                # the folder as it was, so the corrected command is not refused as a second run
                _remove(out / name for name in _RUN_FILES)
            else:
                write_json_atomic(out / "run.json", summary)
        except OutputError as err:
            if stopped is None:
                raise
            log.error("%s", err)  # the failure that stopped the run is the one to report
    if stopped is not None and not isinstance(stopped, KeyboardInterrupt):
        raise stopped
    return summary


def _total(done: dict[int, SessionStats]) -> SessionStats:
    total = SessionStats()
    for index in sorted(done):
        total.merge(done[index])
    return total


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs Ray: pip install 'voice-assistant-sim[ray]'") from None
    return ray


@contextlib.contextmanager
def _ray_actors(values: dict, opts: SimOptions, workers: int):
    """``workers`` Ray actors, each a SessionSimulator; Ray is started here (and stopped after)
    unless it already runs."""
    ray = _ray()
    started_here = not ray.is_initialized()
    if started_here:
        # Joins the cluster named by RAY_ADDRESS, else starts a single-node Ray on this machine.
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)

    @ray.remote
    class Worker:
        def __init__(self, config_values, options):
            _init_worker(config_values, options)

        def run(self, index):
            return _run_in_worker(index)

    try:
        yield [Worker.remote(values, opts) for _ in range(workers)]
    finally:
        if started_here:
            ray.shutdown()


def _on_actors(actors: list, indices: Iterable[int]) -> list[tuple[int, SessionStats]]:
    """Sessions ``indices`` dealt to the actors in turn, their results in that order."""
    return _ray().get([actors[i % len(actors)].run.remote(i) for i in indices])


def _run_ray(values: dict, opts: SimOptions, indices: Iterable[int], workers: int) -> list[tuple[int, SessionStats]]:
    with _ray_actors(values, opts, workers) as actors:
        return _on_actors(actors, indices)


def _ray_warm_throughput(values: dict, opts: SimOptions, workers: int) -> float:
    """:func:`warm_throughput` on Ray actors: each runs a session outside the timed ones first."""
    with _ray_actors(values, opts, workers) as actors:
        _on_actors(actors, range(opts.sessions, opts.sessions + workers))
        started = time.perf_counter()
        done = _on_actors(actors, range(opts.sessions))
        return sum(stats.turns for _i, stats in done) / (time.perf_counter() - started)


def _summary(
    opts: SimOptions,
    total: SessionStats,
    elapsed: float,
    workers: int,
    finished: set[int],
    complete: bool,
    interrupted: bool = False,
) -> dict:
    n = max(total.turns, 1)
    labeled = sum(total.labels.values()) or 1
    return {
        "format": RUN_FORMAT,
        "options": {**dataclasses.asdict(opts), "goals": list(opts.goals)},
        "complete": complete,
        "interrupted": interrupted,
        "sessions": len(finished),
        "sessions_planned": opts.sessions,
        "turns": total.turns,
        "workers": workers,
        "elapsed_s": round(elapsed, 2),
        "turns_per_s": round(total.turns / max(elapsed, 1e-9), 1),
        "turns_per_s_per_worker": round(total.turns / max(elapsed, 1e-9) / workers, 1),
        "failure_points": dict(sorted(total.labels.items())),
        "failure_point_share": {k: round(v / labeled, 4) for k, v in sorted(total.labels.items())},
        "defect_rate": round(total.defects / n, 4),
        "wer_by_condition": {c: round(e / w, 4) for c, (e, w) in sorted(total.words.items()) if w},
        "words_by_condition": {c: w for c, (_e, w) in sorted(total.words.items())},
        "wake_by_condition": {c: dict(zip(WAKE_COUNTS, counts)) for c, counts in sorted(total.wake.items())},
        "oracle_replays": total.replays,
    }

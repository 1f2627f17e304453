"""``assistant bench``: how fast and how lean the assistant is, every figure from one run.

Each measurement is taken beside its reference in the same run (ASR alone on the very audio
the pipeline replays; tracing off and on, interleaved), so ratios stay meaningful on a shared,
noisy machine. Times are medians and 95th percentiles over turns; see docs/results.md "Benchmarks".
"""

from __future__ import annotations

import importlib.util
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.audio import Audio
from core.config import Config, cache_dir
from core.pipeline import STAGES
from core.wer import percentile

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = ROOT / "recordings"
BENCH_SESSIONS = ("real-speech", "home-demo", "continuous")
LIVE_GAP_S = 4.0  # silence after each synthetic command (its reply plays in it)
LIVE_COMMAND_S = (2.0, 4.0)  # issue 8: end-of-speech latency for 2-4 s commands


@dataclass(frozen=True)
class BenchOptions:
    repeat: int = 2  # replay passes with tracing off and on (interleaved)
    live_commands: int = 8  # synthetic live commands beside the bundled continuous recording
    sim_text_sessions: int = 40
    sim_scaling_sessions: int = 200  # text sessions per run of the one- and two-worker comparison
    sim_audio_sessions: int = 3
    cold_runs: int = 3
    train_nlu: bool = True


def _train_nlu(domain: str, cache_root: Path, spec) -> None:
    from core.domain import load_domain
    from stages.nlu import load_or_train

    load_or_train(load_domain(domain), cache_root, spec)


def _p50_p95(values: list[float]) -> dict:
    return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "n": len(values)}


def _rss_mb(pid: int | None = None) -> float:
    """Resident memory now (MB) of ``pid`` (None: this process's peak)."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Bench:
    def __init__(self, config: Config, options: BenchOptions, say: Callable[[str], None]):
        self.config = config
        self.options = options
        self.say = say
        self.tmp = Path(tempfile.mkdtemp(prefix="assistant-bench-"))
        self.result: dict = {"machine": machine()}

    # the pieces ------------------------------------------------------------------------
    def run(self) -> dict:
        try:
            return self._run()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)  # the traces and simulations it wrote

    def _run(self) -> dict:
        from assistant.runner import Assistant

        r = self.result
        self._nlu_trained_apart()
        self.say("loading models…")
        t0 = time.perf_counter()
        assistant = Assistant(self.config)
        assistant.stages.prepare(STAGES)
        from core.embeddings import embed_one

        embed_one("warm up")  # the resolver's last resort and the trace signals use MiniLM
        r["load_s"] = round(time.perf_counter() - t0, 2)
        self._replay(assistant)
        self._asr_alone(assistant)
        self._live(assistant)
        self._endpointing(assistant)
        r["peak_rss_mb"] = round(_rss_mb() + self._festival_rss(), 1)
        r["rss_parts_mb"] = {"python": round(_rss_mb(), 1), "festival": round(self._festival_rss(), 1)}
        self._cold_start()
        self._nlu()
        self._simulation()
        return r

    def _nlu_trained_apart(self) -> None:
        """A spec whose model is not cached yet trains in a child process: training's memory
        is not the assistant's, and the peak RSS measured below is what a user's assistant uses.
        With ``nlu.model_dir`` the assistant loads that folder, and nothing trains."""
        import multiprocessing

        from core.domain import load_domain
        from stages.nlu.recipes import configured_spec
        from stages.nlu.stage import is_cached

        if str(self.config["nlu.model_dir"]).strip():
            return  # a trained model folder is named: the spec's own model is not used
        domain = self.config["session.domain"]
        spec = configured_spec(self.config)
        if is_cached(load_domain(domain), cache_dir(self.config), spec):
            return
        self.say("training the NLU model first, in a child process…")
        child = multiprocessing.get_context("spawn").Process(
            target=_train_nlu, args=(domain, cache_dir(self.config), spec)
        )
        child.start()
        child.join()  # a failure shows again, with its message, when the assistant loads

    def _recordings(self):
        from assistant.recorded_sessions import load_recording

        return [load_recording(RECORDINGS / name) for name in BENCH_SESSIONS]

    def _replay_once(self, assistant, recs, trace_dir: Path | None) -> tuple[float, list, float]:
        """(wall seconds, the turns, seconds spent inside the tracer)."""
        from assistant.replay import replay

        tracer = None
        if trace_dir is not None:
            tracer = _TimedObserver(assistant.trace_to(trace_dir))
            assistant.bus.remove_observer(tracer.inner)
            assistant.bus.add_observer(tracer)
        listener = _TurnCollector()
        assistant.bus.add_observer(listener)
        try:
            t0 = time.perf_counter()
            for rec in recs:
                for _summary in replay(assistant, rec):
                    pass
            elapsed = time.perf_counter() - t0
        finally:
            assistant.bus.remove_observer(listener)
            if tracer is not None:
                assistant.bus.remove_observer(tracer)
        return elapsed, listener.turns, tracer.seconds if tracer is not None else 0.0

    def _replay(self, assistant) -> None:
        recs = self._recordings()
        audio_s = sum(_audio_seconds(rec) for rec in recs)
        self.say(f"replaying {len(recs)} sessions ({audio_s:.0f} s of audio), tracing off/on × {self.options.repeat}…")
        self._replay_once(assistant, recs[:1], None)  # warm-up: first decodes are slower
        off, on, in_tracer, inline, turns = [], [], [], [], []
        config = assistant.config
        for i in range(self.options.repeat):
            t, got, _ = self._replay_once(assistant, recs, None)
            off.append(t)
            turns = turns or got
            t, _, traced = self._replay_once(assistant, recs, self.tmp / f"traces-{i}")
            on.append(t)
            in_tracer.append(traced)
            # the same replay with each command decoded in its own turn (asr.decode_ahead off)
            assistant.config = config.with_overrides({"asr.decode_ahead": False})
            try:
                inline.append(self._replay_once(assistant, recs, None)[0])
            finally:
                assistant.config = config
        self.turns = turns
        stage_ms = {s: _p50_p95([t.ms[s] for t in turns if s in t.ms]) for s in STAGES}
        r = self.result
        r["stage_ms"] = {s: v for s, v in stage_ms.items() if v["n"]}
        r["replay_audio_s"] = round(audio_s, 1)
        r["replay_turns"] = len(turns)
        r["replay_s"] = round(statistics.median(off), 3)
        r["replay_rtf"] = round(statistics.median(off) / audio_s, 4)
        r["replay_traced_s"] = round(statistics.median(on), 3)
        r["replay_inline_s"] = round(statistics.median(inline), 3)
        # The tracer works synchronously inside its event callbacks, so the CPU time spent there
        # is its whole cost; the wall-clock A/B difference is kept beside it (noisy on a shared box).
        r["trace_overhead"] = round(statistics.median(in_tracer) / statistics.median(off), 4)
        r["trace_overhead_wall"] = round(statistics.median(on) / statistics.median(off) - 1, 4)

    def _asr_alone(self, assistant) -> None:
        """faster-whisper by itself on exactly the audio the asr stage got during replay."""
        asr = assistant.stages["asr"]
        clips = [
            t.utterance.audio.samples
            for t in self.turns
            if t.utterance is not None and t.utterance.endpoint not in ("no_wake",) and "asr" in t.ms
        ]
        self.say(f"ASR alone on the same {len(clips)} clips…")
        runs, decode_ms = [], []
        for _ in range(self.options.repeat):
            t0 = time.perf_counter()
            for samples in clips:
                t1 = time.perf_counter()
                asr.transcribe(samples)
                decode_ms.append((time.perf_counter() - t1) * 1000)
            runs.append(time.perf_counter() - t0)
        r = self.result
        r["asr_s"] = round(statistics.median(runs), 3)
        r["asr_rtf"] = round(statistics.median(runs) / r["replay_audio_s"], 4)
        r["asr_decode_ms"] = _p50_p95(decode_ms)
        r["pipeline_over_asr"] = round(r["replay_s"] / r["asr_s"], 3)
        r["pipeline_over_asr_inline"] = round(r["replay_inline_s"] / r["asr_s"], 3)

    def _live(self, assistant) -> None:
        """End of speech → first reply audio, through the live loop fed in real time."""
        from assistant.recorded_sessions import load_recording

        streams = [("continuous", load_recording(RECORDINGS / "continuous").stream)]
        if self.options.live_commands:
            streams.append(("synthetic", synthetic_stream(self.options.live_commands)))
        total = sum(a.duration_s for _n, a in streams)
        self.say(f"live loop in real time ({total:.0f} s of audio)…")
        eos, speech_end, asr_wait, endpoints = [], [], [], []
        for name, audio in streams:
            for live in run_live(assistant, audio, f"bench-live-{name}"):
                if live.eos_to_reply_ms is None or live.turn.utterance is None:
                    continue
                spoken = live.turn.utterance.audio.duration_s
                eos.append(live.eos_to_reply_ms)
                speech_end.append(live.eos_to_reply_ms + (live.endpoint_delay_ms or 0.0))
                asr_wait.append(live.turn.ms.get("asr", 0.0))
                endpoints.append(live.turn.utterance.endpoint)
                log.debug("live %s: %.1f s command, %.0f ms", name, spoken, live.eos_to_reply_ms)
        r = self.result
        r["latency_eos_to_reply_ms_p50"] = percentile(eos, 0.5)
        r["latency_eos_to_reply_ms_p95"] = percentile(eos, 0.95)
        r["latency_speech_end_to_reply_ms_p50"] = percentile(speech_end, 0.5)
        r["latency_speech_end_to_reply_ms_p95"] = percentile(speech_end, 0.95)
        r["live_endpoints"] = dict(sorted(Counter(endpoints).items()))
        r["live_asr_wait_ms_p50"] = percentile(asr_wait, 0.5)
        r["live_turns"] = len(eos)

    def _endpointing(self, assistant) -> None:
        """Semantic endpointing on the bundled commands: how often it cuts a command before its
        speech is over (real speech and synthesized commands apart), and the wait it saves."""
        from assistant.recorded_sessions import load_recording

        real = [t.audio for name in ("real-speech", "coffee-order") for t in load_recording(RECORDINGS / name).turns]
        synthetic = [t.audio for t in load_recording(RECORDINGS / "home-demo").turns if t.audio is not None]
        self.say(f"semantic endpointing on {len(real)} real and {len(synthetic)} synthetic commands…")
        self.result["endpoint_cuts"] = {
            "real": endpoint_cuts(assistant, real),
            "synthetic": endpoint_cuts(assistant, synthetic),
        }

    def _festival_rss(self) -> float:
        from stages.tts import _FESTIVALS

        return sum(_rss_mb(p._proc.pid) for p in _FESTIVALS.values() if p._proc is not None)

    def _cold_start(self) -> None:
        """A fresh process: start → the first reply's summary printed (models cached on disk)."""
        runs = []
        cmd = [sys.executable, "-m", "assistant", "replay", str(RECORDINGS / "real-speech"), "--json"]
        self.say(f"cold start × {self.options.cold_runs}…")
        for _ in range(self.options.cold_runs):
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=os.environ.copy()
            )
            line = proc.stdout.readline()
            elapsed = time.perf_counter() - t0
            proc.kill()
            proc.wait()
            if line.strip():
                runs.append(elapsed)
        self.result["cold_start_s"] = round(statistics.median(runs), 2) if runs else None

    def _nlu(self) -> None:
        from stages.nlu.bench import benchmark

        if self.options.train_nlu:
            self.say("NLU: training the home domain from scratch, timing inference…")
            nlu = benchmark("home", train=True)
        else:  # the model setup.sh trained (trained here only when the cache has none)
            self.say("NLU: timing inference of the home domain's cached model…")
            nlu = benchmark("home", cache_root=cache_dir(self.config), train=False)
        self.result["nlu_train_s"] = nlu["train_s"]
        self.result["nlu_ms_p50"] = nlu["median_ms"]

    def _simulation(self) -> None:
        text = sim_throughput(self.config, "text", self.options.sim_text_sessions, self.tmp / "sim-text")
        self.say(f"simulation, text: {text:.0f} turns/s on one core; audio…")
        audio = sim_throughput(self.config, "audio", self.options.sim_audio_sessions, self.tmp / "sim-audio")
        self.result["sim_text_turns_per_s"] = round(text, 1)
        # what `assistant simulate` runs: its traffic profiles (few failures, so few oracle replays,
        # in the realistic one)
        from sim.profiles import PROFILES

        self.result["sim_text_profile_turns_per_s"] = {
            name: round(
                sim_throughput(
                    self.config,
                    "text",
                    self.options.sim_text_sessions,
                    self.tmp / f"sim-text-{name}",
                    name,
                    seed=12 + i,
                ),
                1,
            )
            for i, name in enumerate(PROFILES)
        }
        self.result["sim_audio_turns_per_s"] = round(audio, 2)
        self.result["sim_cores"] = 1
        if (os.cpu_count() or 1) >= 2:
            self.say("simulation, text: one worker against two…")
            one, two = (
                sim_workers_throughput(
                    self.config, workers, self.options.sim_scaling_sessions, self.tmp / f"sim-{workers}"
                )
                for workers in (1, 2)
            )
            self.result["sim_text_workers_turns_per_s"] = {"1": round(one, 1), "2": round(two, 1)}
            self.result["sim_two_core_scaling"] = round(two / (2 * one), 3)
            if importlib.util.find_spec("ray") is not None:  # the optional extra
                self.say("simulation, text: one Ray actor against two…")
                one, two = (
                    sim_workers_throughput(
                        self.config,
                        workers,
                        self.options.sim_scaling_sessions,
                        self.tmp / f"sim-ray-{workers}",
                        backend="ray",
                    )
                    for workers in (1, 2)
                )
                self.result["sim_ray_workers_turns_per_s"] = {"1": round(one, 1), "2": round(two, 1)}
                self.result["sim_ray_two_core_scaling"] = round(two / (2 * one), 3)


class _TurnCollector:
    def __init__(self):
        self.turns = []

    def on_event(self, event) -> None:
        if event.kind == "turn_end":
            self.turns.append(event.data)


class _TimedObserver:
    """Forwards events to an observer and adds up the CPU time it takes there (the tracer's own
    cost). Thread CPU time, not wall time: while the recognizer decodes the next command on its
    own thread, wall time inside a callback also counts waits for the interpreter lock, which
    moved the figure between 1.9 % and 6.9 % from one run to the next."""

    def __init__(self, inner):
        self.inner = inner
        self.seconds = 0.0

    def on_event(self, event) -> None:
        t0 = time.thread_time()
        try:
            self.inner.on_event(event)
        finally:
            self.seconds += time.thread_time() - t0


def _audio_seconds(rec) -> float:
    if rec.continuous:
        return rec.stream.duration_s
    return sum(t.audio.duration_s for t in rec.turns if t.audio is not None)


def synthetic_stream(n: int) -> Audio:
    """``n`` live commands: a real wake word (cut from the bundled continuous recording) then a
    2-4 s synthesized home-demo command, then silence for the reply."""
    from assistant.recorded_sessions import load_recording

    wakes = _real_wakes()
    demo = load_recording(RECORDINGS / "home-demo")
    commands = [
        t.audio
        for t in demo.turns
        if t.audio is not None and LIVE_COMMAND_S[0] <= t.audio.duration_s <= LIVE_COMMAND_S[1]
    ]
    parts = [Audio.silence(1.0)]
    for i in range(n):
        parts += [wakes[i % len(wakes)], commands[i % len(commands)], Audio.silence(LIVE_GAP_S)]
    return Audio.concat(parts)


def endpoint_cuts(assistant, commands: list[Audio], early_s: float = 0.1) -> dict:
    """Each command after a real wake word, through the listener with the turn-end judge and
    without it. A cut is too early when the plain endpointer heard speech more than ``early_s``
    after it; ``saved_ms``: how much sooner the command ended (p50 over all commands)."""
    from stages.wake import scan

    wake = _real_wakes()[0]
    with_judge = assistant.stages.wake_listener("endpoint-study", "tts")
    plain = assistant.stages.wake_listener("endpoint-study", "wake")
    try:
        kinds, early, saved = Counter(), [], []
        for audio in commands:
            stream = Audio.concat([Audio.silence(0.5), wake, Audio.silence(0.3), audio, Audio.silence(3.0)])
            with_judge.reset()
            plain.reset()
            a, b = scan(with_judge, stream), scan(plain, stream)
            if not a or not b:
                continue
            kinds[a[0].utterance.endpoint] += 1
            speech_end = b[0].speech_end_s if b[0].speech_end_s is not None else b[0].ended_at_s
            if a[0].utterance.endpoint == "complete" and a[0].ended_at_s < speech_end - early_s:
                early.append(a[0].utterance.endpoint_note)
            saved.append((b[0].ended_at_s - a[0].ended_at_s) * 1000)
    finally:
        assistant.stages.return_listener(with_judge)
        assistant.stages.return_listener(plain)
    n = sum(kinds.values())
    return {
        "commands": n,
        "endpoints": dict(sorted(kinds.items())),
        "too_early": len(early),
        "too_early_rate": round(len(early) / n, 4) if n else None,
        "saved_ms_p50": percentile(saved, 0.5) if saved else None,
    }


def _real_wakes() -> list[Audio]:
    """The real wake words of the bundled continuous recording (at_s: where each ends)."""
    from assistant.recorded_sessions import load_recording

    cont = load_recording(RECORDINGS / "continuous")
    return [cont.stream.slice(max(0.0, t.at_s - 1.0), t.at_s + 0.1) for t in cont.turns if t.at_s is not None]


def run_live(assistant, audio: Audio, session_id: str) -> list:
    from assistant.live import LiveLoop, TalkOptions
    from assistant.live_audio import FileSource

    options = TalkOptions.from_config(assistant.config)
    source = FileSource(audio, session_id, block=options.block, queue_s=options.queue_s)
    loop = LiveLoop(assistant, source, options=options, session_id=session_id)
    return list(loop.run().turns)


def sim_throughput(config: Config, fidelity: str, sessions: int, out: Path, profile: str = "", seed: int = 11) -> float:
    """Turns per second of one simulator on one core (after one warm-up session); ``profile``:
    a traffic profile's settings (sim/profiles.py), else the simulator's own defaults. Runs in
    one process take different seeds: the NLU's predictions stay cached between them."""
    from sim.profiles import PROFILES
    from sim.simulator import SessionSimulator, SimOptions

    fields = PROFILES[profile].sim_fields() if profile else {}
    opts = SimOptions(sessions=sessions, seed=seed, fidelity=fidelity, out=str(out), workers=1, **fields)
    sim = SessionSimulator(config, opts)
    sim.run(sessions)  # warm-up (an index outside the timed ones)
    t0 = time.perf_counter()
    turns = sum(sim.run(i).turns for i in range(sessions))
    return turns / (time.perf_counter() - t0)


def sim_workers_throughput(config: Config, workers: int, sessions: int, out: Path, backend: str = "local") -> float:
    """Turns per second of ``workers`` simulation worker processes (``backend`` ray: Ray
    actors on a single-node Ray), once warm (text fidelity)."""
    from sim.simulator import SimOptions, warm_throughput

    opts = SimOptions(sessions=sessions, seed=11, fidelity="text", out=str(out), workers=workers, backend=backend)
    return warm_throughput(config, opts, workers)


def machine() -> dict:
    import platform

    cpu = ""
    try:
        cpu = next(
            (
                l.split(":", 1)[1].strip()
                for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


REQUIRED_KEYS = (
    "latency_eos_to_reply_ms_p50",
    "latency_eos_to_reply_ms_p95",
    "stage_ms",
    "replay_rtf",
    "asr_rtf",
    "pipeline_over_asr",
    "trace_overhead",
    "sim_text_turns_per_s",
    "sim_audio_turns_per_s",
    "nlu_train_s",
    "peak_rss_mb",
    "cold_start_s",
)

__all__ = ["Bench", "BenchOptions", "REQUIRED_KEYS", "percentile", "synthetic_stream"]

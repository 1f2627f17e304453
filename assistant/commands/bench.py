"""Measure speed and footprint: stage latency, end of speech → first reply audio, replay
real-time factor beside ASR alone, tracing overhead, NLU training, simulation throughput,
peak memory and cold start, all in one run (a few minutes). docs/results.md "Benchmarks" explains
each figure."""

from __future__ import annotations

import argparse
import json
import sys

from core.config import Config
from core.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=2, help="replay passes, tracing off and on (default 2)")
    parser.add_argument(
        "--live",
        type=int,
        default=8,
        metavar="N",
        help="synthetic live commands besides the bundled continuous recording (default 8)",
    )
    parser.add_argument(
        "--sim-sessions", type=int, default=40, metavar="N", help="text-fidelity sessions timed (default 40; audio: 3)"
    )
    parser.add_argument("--no-train", action="store_true", help="skip timing NLU training (nlu_train_s: null)")


def run(args: argparse.Namespace, config: Config) -> int:
    from assistant.bench import Bench, BenchOptions

    if args.repeat < 1 or args.live < 0 or args.sim_sessions < 1:
        raise UserError("--repeat and --sim-sessions must be at least 1, --live at least 0")
    options = BenchOptions(
        repeat=args.repeat, live_commands=args.live, sim_text_sessions=args.sim_sessions, train_nlu=not args.no_train
    )
    result = Bench(config, options, say=lambda m: print(m, file=sys.stderr, flush=True)).run()
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    return 0


def _print(r: dict) -> None:
    m = r["machine"]
    print(f"machine: {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), load {m['load_avg_1m']}")
    print(
        f"end of speech → first reply audio: p50 {r['latency_eos_to_reply_ms_p50']} ms, "
        f"p95 {r['latency_eos_to_reply_ms_p95']} ms ({r['live_turns']} live turns; from the last "
        f"speech frame, endpoint silence included: p50 {r['latency_speech_end_to_reply_ms_p50']} ms, "
        f"p95 {r.get('latency_speech_end_to_reply_ms_p95')} ms; endpoints {r.get('live_endpoints')})"
    )
    for stage, s in r["stage_ms"].items():
        print(f"  {stage:<8} p50 {s['p50']:>7} ms   p95 {s['p95']:>7} ms   (n={s['n']})")
    d = r["asr_decode_ms"]
    print(
        f"  (asr in replay is the wait for a command decoded ahead; one decode alone: p50 {d['p50']} ms, "
        f"p95 {d['p95']} ms)"
    )
    print(
        f"replay RTF {r['replay_rtf']}  ASR alone RTF {r['asr_rtf']}  pipeline/ASR {r['pipeline_over_asr']} "
        f"({r['pipeline_over_asr_inline']} decoding each command in its own turn)"
    )
    print(f"tracing overhead {r['trace_overhead']:+.1%}")
    print(
        f"simulation: text {r['sim_text_turns_per_s']} turns/s, audio {r['sim_audio_turns_per_s']} turns/s (one core)"
    )
    if "sim_text_profile_turns_per_s" in r:
        shown = ", ".join(f"{name} {v}" for name, v in r["sim_text_profile_turns_per_s"].items())
        print(f"simulation, text, by traffic profile: {shown} turns/s (one core)")
    for what, rates, scaling in (
        ("workers", "sim_text_workers_turns_per_s", "sim_two_core_scaling"),
        ("Ray actors", "sim_ray_workers_turns_per_s", "sim_ray_two_core_scaling"),
    ):
        if scaling in r:
            w = r[rates]
            print(
                f"simulation, text, warm {what}: one {w['1']} turns/s, two {w['2']} turns/s "
                f"(two-core scaling {r[scaling]:.0%})"
            )
    print(f"NLU training (home) {r['nlu_train_s']} s, inference p50 {r['nlu_ms_p50']} ms")
    for kind, e in r.get("endpoint_cuts", {}).items():
        print(
            f"semantic endpointing, {kind} commands: {e['too_early']} of {e['commands']} cut too early "
            f"({e['endpoints']}); the command ends {e['saved_ms_p50']} ms sooner (p50)"
        )
    print(f"peak RSS {r['peak_rss_mb']} MB  cold start {r['cold_start_s']} s")

"""Learn from traces, without annotation (docs/self-learning.md).

  assistant learn rewrites TRACES… --out REWRITES.json [--threshold P] [--min-support N] [--lexical]
  assistant learn index    TRACES… --out INDEX.npz
  assistant learn labels   TRACES… --out CORPUS.jsonl
  assistant learn gate     TRACES… --out GATE.json
  assistant learn wake     TRACES… --out THRESHOLDS.json
  assistant learn loop     --out DIR [--population N] [--sessions N] …

``rewrites``: rephrase chains → an absorbing Markov chain → each failing request's best rewrite
(with its probability and support), each user's own rephrases, and each user's choices among
entities that share a name (the resolver ranks with them). ``index``: successful requests for online retrieval (a global
and a per-user layer). Switch either on with ``--rewrite-artifacts FILE[,FILE]`` on any command
that runs the assistant (simulate, replay, talk). ``labels``: failed requests annotated with the
interpretation of their successful rephrase, for ``assistant nlu train SPEC --extra CORPUS``.
``gate``: the wake score below which a request read as out of domain is dismissed silently, as
speech nobody addressed to the assistant (switch it on with ``--rewrite-artifacts`` too).
``wake``: each device's wake threshold, from the near misses it logged and the repeats after them.
``loop``: a simulated week, learning, the next week with the artifacts on; before/after figures.
Only what production has is read from traces: never gold or oracle labels.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.config import Config
from core.errors import UserError
from sim.profiles import DEFAULT_PROFILE, PROFILES
from sim.user import HOUSE_NAME_USERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="learn_command", metavar="ACTION", parser_class=type(parser))
    rw = sub.add_parser(
        "rewrites",
        help="rewrites of failing requests, from rephrase chains",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rw.add_argument("paths", nargs="+", metavar="TRACES", help="trace folders or files")
    rw.add_argument("--out", required=True, metavar="FILE", help="the rewrite table (JSON)")
    rw.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        metavar="P",
        help="apply a rewrite only when P(success) is at least this (default 0.5; stored in the file)",
    )
    rw.add_argument("--min-support", type=int, default=1, metavar="N", help="… and N chains support it (default 1)")
    rw.add_argument("--lexical", action="store_true", help="restatements by word overlap only (no MiniLM)")
    rw.add_argument("--json", action="store_true")
    _from_traces(sub, "index", "the retrieval index of successful requests (global and per user)", "the index (.npz)")
    lb = _from_traces(
        sub,
        "labels",
        "NLU training examples from failed requests and their successful rephrase",
        "the corpus (JSON lines, assistant.nlu-corpus/1)",
    )
    lb.add_argument("--lexical", action="store_true", help="restatements by word overlap only (no MiniLM)")
    _from_traces(
        sub,
        "gate",
        "the wake gate: when a woken request nobody addressed is dismissed",
        "the gate (JSON, assistant.wake-gate/1)",
    )
    _from_traces(
        sub,
        "wake",
        "wake thresholds: each device's, from the near misses it logged",
        "the thresholds (JSON, assistant.wake-threshold/1)",
    )
    lp = sub.add_parser("loop", help="simulate a week, learn, simulate the next week with what was learned")
    lp.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder for the weeks and the report")
    lp.add_argument("--population", type=int, default=40, help="recurring users (default 40)")
    lp.add_argument("--sessions", type=int, default=800, help="sessions per week (default 800)")
    lp.add_argument(
        "--house-names",
        type=float,
        default=HOUSE_NAME_USERS,
        metavar="SHARE",
        help=f"share of users whose homes call devices by names of their own (default {HOUSE_NAME_USERS})",
    )
    lp.add_argument("--learn-seed", type=int, default=101, help="the week learned from")
    lp.add_argument("--eval-seeds", type=int, nargs="+", default=[102], help="the weeks after (new seeds, same users)")
    lp.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default=DEFAULT_PROFILE,
        help="the traffic of every week: realistic (default) or stress (docs/simulation.md)",
    )
    lp.add_argument("--faults", default=None, metavar="SPEC", help="injected fault rates (default: the profile's)")
    lp.add_argument("--workers", type=int, default=1)
    lp.add_argument(
        "--layers",
        default="table,index,concepts,labels,gate,wake",
        help="what to learn and switch on, comma-separated: table, index, concepts, labels "
        "(label transfer + the NLU retrained with it, a few minutes), gate, wake (default all)",
    )
    lp.add_argument(
        "--exclude-phrasings",
        nargs="+",
        metavar="SRC",
        default=[],
        help="phrasing sources no simulated user speaks (slurp-dev, snips-train, written): "
        "to measure what was learned on a corpus the weeks never said",
    )
    lp.add_argument("--json", action="store_true")


def _from_traces(sub, name: str, what: str, out: str) -> argparse.ArgumentParser:
    """A learner that reads traces and writes one artifact."""
    p = sub.add_parser(name, help=what)
    p.add_argument("paths", nargs="+", metavar="TRACES")
    p.add_argument("--out", required=True, metavar="FILE", help=out)
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace, config: Config) -> int:
    from hooks.learn import rewrites as R

    if args.learn_command == "rewrites":
        R.check_threshold(args.threshold)
        if args.min_support < 1:
            raise UserError("--min-support must be at least 1")
        summary = R.learn_table(
            args.paths, args.out, args.threshold, args.min_support, None if args.lexical else R.minilm_similarity()
        )
        _print(
            args,
            summary,
            f"{summary['rewrites']} rewrites ({summary['applied_at_threshold']} at threshold "
            f"{args.threshold}) from {summary['rephrase_chains']} rephrase chains in "
            f"{summary['requests']} requests; {summary['personal_rephrases']} users' own rephrases, "
            f"{summary['entity_preferences']} entity choices → {args.out} ({summary['learn_s']} s)",
        )
        return 0
    if args.learn_command == "index":
        summary = R.learn_index(args.paths, args.out)
        _print(
            args,
            summary,
            f"{summary['successful_utterances']} successful requests "
            f"({summary['personal_rows']} personal rows, {summary['users']} users) → {args.out} "
            f"({summary['learn_s']} s)",
        )
        return 0
    if args.learn_command == "labels":
        from hooks.learn.labels import learn_labels

        summary = learn_labels(
            args.paths, args.out, None if args.lexical else R.minilm_similarity(), domain=config["session.domain"]
        )
        _print(
            args,
            summary,
            f"{summary['examples']} annotated examples from {summary['pairs']} failed requests "
            f"with a successful rephrase → {args.out}",
        )
        return 0
    if args.learn_command == "gate":
        from hooks.learn.wake_gate import describe, learn_gate

        summary = learn_gate(args.paths, args.out)
        _print(args, summary, f"{describe(summary)} → {args.out}")
        return 0
    if args.learn_command == "wake":
        from hooks.learn.wake_threshold import describe, learn_wake_threshold

        summary = learn_wake_threshold(args.paths, args.out, config["wake.threshold"])
        _print(args, summary, f"{describe(summary)} → {args.out}")
        return 0
    if args.learn_command == "loop":
        from assistant.learning_loop import LoopOptions, run_loop

        opts = LoopOptions(
            out=args.out,
            population=args.population,
            sessions=args.sessions,
            learn_seed=args.learn_seed,
            eval_seeds=tuple(args.eval_seeds),
            profile=args.profile,
            faults=args.faults,
            workers=args.workers,
            layers=tuple(x.strip() for x in args.layers.split(",") if x.strip()),
            exclude_phrasings=tuple(args.exclude_phrasings),
            house_names=args.house_names,
        )
        report = run_loop(config, opts, progress=lambda m: print(f"assistant: {m}", file=sys.stderr, flush=True))
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            from assistant.learning_loop import format_report

            print(format_report(report))
        return 0
    raise UserError("usage: assistant learn {rewrites,index,labels,gate,wake,loop} ... (see assistant learn --help)")


def _print(args: argparse.Namespace, summary: dict, line: str) -> None:
    print(json.dumps(summary) if args.json else line)

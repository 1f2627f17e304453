"""Simulate goal-driven users talking to the assistant; write traced, oracle-labeled sessions.

Every session is reproducible from --seed (whatever --workers). Text fidelity corrupts the
users' words with the fitted ASR error model; audio fidelity synthesizes them, adds the acoustic
channel and runs the real wake word and ASR models. Writes DIR/<session>.jsonl and DIR/run.json.

DIR holds one run: a folder with another run, or files simulate did not write, is refused
(exit 2) unless --overwrite (clears simulate's own files) or --resume (same seed and settings:
finished sessions are kept). Ctrl-C or SIGTERM stops within a second or two, keeps the finished
sessions and marks run.json "interrupted"; a trace that cannot be written stops the run (exit 3).
"""

from __future__ import annotations

import argparse
import sys

from core.config import Config
from core.errors import UserError
from sim import simulator
from sim.faults import DEFAULT_FAULTS
from sim.profiles import DEFAULT_PROFILE, PROFILES
from sim.simulator import SimOptions
from sim.user import HOUSE_NAME_USERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sessions", type=int, default=20, help="how many sessions (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fidelity", choices=("text", "audio"), default="text")
    parser.add_argument("--out", required=True, metavar="DIR", help="trace folder")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default: every core)")
    parser.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        default=DEFAULT_PROFILE,
        help="traffic: realistic (default: natural errors only, a household's rooms and voices; "
        "docs/simulation.md) or stress (high injected fault rates, every failure point common)",
    )
    parser.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help=f"injected fault rates per stage, e.g. {DEFAULT_FAULTS!r}; '' for none (default: the profile's)",
    )
    parser.add_argument("--snr", nargs="+", metavar="DB", help="noise conditions by SNR in dB ('clean' allowed)")
    parser.add_argument("--noise", default="pink", choices=("white", "pink", "babble"), help="noise for --snr")
    parser.add_argument("--conditions", nargs="+", metavar="C", help="acoustic conditions, e.g. pink@10dB reverb0.6")
    parser.add_argument(
        "--voices", nargs="+", metavar="V", help="only these voices (text: of those the error model knows)"
    )
    parser.add_argument(
        "--exclude-voices", nargs="+", metavar="V", default=[], help="never these voices (held-out sets)"
    )
    parser.add_argument(
        "--phrasings",
        nargs="+",
        metavar="SRC",
        help="real users: only these phrasing sources (slurp-dev, snips-train, written)",
    )
    parser.add_argument(
        "--exclude-phrasings", nargs="+", metavar="SRC", default=[], help="never these phrasing sources (held-out sets)"
    )
    parser.add_argument("--goals", default="1-4", metavar="A-B", help="goals per session (default 1-4)")
    parser.add_argument("--error-model", metavar="FILE", help="text: the ASR error model (default: the bundled one)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local", help="ray: run on a Ray cluster")
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="MiniLM rephrase similarity in the traces (about 20 ms a turn; lexical overlap always)",
    )
    parser.add_argument(
        "--population",
        type=int,
        default=0,
        metavar="N",
        help="sessions belong to N recurring users (the same users whatever --seed; 0: each session a new user)",
    )
    parser.add_argument(
        "--house-names",
        type=float,
        default=HOUSE_NAME_USERS,
        metavar="SHARE",
        help="share of recurring users whose homes call some devices by names of their own "
        f'("the big light"; default {HOUSE_NAME_USERS}; needs --population)',
    )
    parser.add_argument(
        "--users",
        choices=("real", "spec"),
        default="real",
        help="real (default): users phrase requests as real people do, in words the NLU never "
        "trained on (docs/simulation.md); spec: the spec's own templates",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="DIR holds another run: clear simulate's files first")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in DIR (same seed and settings): finished sessions are kept",
    )


def _conditions(args: argparse.Namespace) -> tuple[str, ...]:
    from sim.channel import parse_condition, parse_snr

    conds: list[str] = []
    if args.snr:
        try:
            conds += [c.id for c in parse_snr(args.snr, noise=args.noise)]
        except ValueError as err:
            raise UserError(f"--snr: {err}") from None
    for c in args.conditions or []:
        try:
            conds.append(parse_condition(c).id)
        except ValueError as err:
            raise UserError(f"--conditions: {err}") from None
    return tuple(dict.fromkeys(conds))


def options_from(args: argparse.Namespace) -> SimOptions:
    """The run's options: the profile's defaults, then what the command line says."""
    try:
        lo, hi = (int(x) for x in args.goals.split("-", 1)) if "-" in args.goals else (int(args.goals),) * 2
    except ValueError:
        raise UserError(f"--goals must look like 1-4, got {args.goals!r}") from None
    profile = PROFILES[args.profile]
    conditions = _conditions(args) or profile.conditions
    opts = SimOptions(
        **{
            **profile.sim_fields(),
            "conditions": conditions,
            **({} if args.faults is None else {"faults": args.faults}),
        },
        sessions=args.sessions,
        seed=args.seed,
        fidelity=args.fidelity,
        out=args.out,
        workers=args.workers,
        voices=tuple(args.voices or ()),
        exclude_voices=tuple(args.exclude_voices),
        phrasings=tuple(args.phrasings or ()),
        exclude_phrasings=tuple(args.exclude_phrasings),
        goals=(lo, hi),
        backend=args.backend,
        embeddings=args.embeddings,
        population=args.population,
        house_names=args.house_names,
        users=args.users,
        overwrite=args.overwrite,
        resume=args.resume,
        **({"asr_model": args.error_model} if args.error_model else {}),
    )
    opts.validate()
    return opts


def run_command(args: argparse.Namespace, config: Config) -> dict:
    opts = options_from(args)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=opts.sessions, unit="session", file=sys.stderr, desc=f"simulate ({opts.fidelity})")
    try:
        summary = simulator.run(config, opts, on_session=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    return summary


def run(args: argparse.Namespace, config: Config) -> int:
    summary = run_command(args, config)
    if summary.get("interrupted"):
        print(
            f"assistant: interrupted ({summary.get('signal', 'signal')}): {summary['sessions']} of "
            f"{summary['sessions_planned']} sessions finished and kept in {args.out} (run.json says "
            f'"interrupted": true); --resume continues',
            file=sys.stderr,
        )
        return 143 if summary.get("signal") == "SIGTERM" else 130
    shares = ", ".join(f"{k} {v:.1%}" for k, v in summary["failure_point_share"].items())
    wer = ", ".join(f"{k} {v:.1%}" for k, v in summary["wer_by_condition"].items())
    print(
        f"{summary['sessions']} sessions, {summary['turns']} turns in {summary['elapsed_s']} s "
        f"({summary['turns_per_s']} turns/s, {summary['workers']} workers) → {args.out}"
    )
    print(f"profile {summary['options'].get('profile') or 'custom'}; failure points: {shares}")
    print(f"defect rate {summary['defect_rate']:.1%}; WER by condition: {wer or 'n/a'}")
    return 0

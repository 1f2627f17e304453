"""Checks on the simulator itself.

assistant sim check [--users N] [--corpus FILE] [--part dev] [--json]
    the NLU's error rate on simulated users' requests (text, no faults) against its error
    rate on real people's commands of the same domain, with 95 % bootstrap intervals, and
    the exact-text overlap of the simulated requests with the NLU's training sentences
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from core.config import Config
from core.domain import DOMAINS_DIR
from core.errors import InputError, UserError

DEFAULT_CORPUS = DOMAINS_DIR / "slurp_home.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))
    check = sub.add_parser("check", help="do simulated users trouble the NLU as much as real people do?")
    check.add_argument(
        "--users", type=int, default=1000, metavar="N", help="simulated users, one request each (default 1000)"
    )
    check.add_argument("--seed", type=int, default=0)
    check.add_argument(
        "--corpus",
        default=str(DEFAULT_CORPUS),
        metavar="FILE",
        help="real commands labelled for the domain (default: the SLURP-devel home mapping)",
    )
    check.add_argument("--part", default="dev", help="the corpus part never trained on (default dev)")
    check.add_argument(
        "--phrasing",
        choices=("real", "spec"),
        default="real",
        help="the simulated users' phrasing (spec: the NLU's own templates, for comparison)",
    )
    check.add_argument("--tolerance", type=float, default=0.25, help="relative difference allowed (default 0.25)")
    check.add_argument("--errors", type=int, default=0, metavar="N", help="list N simulated requests the NLU got wrong")
    check.add_argument("--json", action="store_true", help="one JSON object")


def run(args: argparse.Namespace, config: Config) -> int:
    from sim.phrasing import TrainingTexts
    from sim.realism import compare, score, simulated_requests, slots_that_matter
    from sim.simulator import SessionSimulator, SimOptions
    from stages.nlu.corpora import read_domain_corpus

    if args.users < 10:
        raise UserError(f"--users must be at least 10, got {args.users}")
    corpus = Path(args.corpus)
    if not corpus.is_file():
        raise InputError(corpus, "no such corpus file")
    real_items = read_domain_corpus(corpus, args.part)
    with tempfile.TemporaryDirectory(prefix="sim-check-") as out:
        sim = SessionSimulator(config, SimOptions(sessions=1, seed=args.seed, out=out, faults="", users=args.phrasing))
        nlu = sim.assistant.stages["nlu"]
        simulated = simulated_requests(sim, args.users, args.seed)
        matter = slots_that_matter(real_items)
        real = score(nlu.interpret, real_items)
        scored = score(nlu.interpret, simulated, matter)
        training = TrainingTexts.for_domain(sim.domain)
        overlap = sum(training.contains(it.text) for it in simulated)
        result = compare(scored, real, tolerance=args.tolerance)
        result.update(
            {
                "corpus": str(corpus),
                "part": args.part,
                "phrasing": args.phrasing,
                "overlap_with_training": overlap,
                "training_sentences": len(training.texts),
                "model": getattr(nlu, "model", None) and nlu.model.name,
            }
        )
        wrong = [s for s in scored if not s.ok][: max(0, args.errors)]
    if args.json:
        result["errors"] = [{"text": s.text, "gold": s.intent, "got": s.got} for s in wrong]
        print(json.dumps(result))
        return 0
    r, s, w = result["real"], result["simulated"], result["simulated_real_mix"]
    print(
        f"real ({corpus.name} {args.part}): NLU error {r['error_rate']:.1%} (95 % {r['ci95'][0]:.1%}–{r['ci95'][1]:.1%}, n={r['n']})"
    )
    print(
        f"simulated ({args.phrasing} users): NLU error {s['error_rate']:.1%} (95 % {s['ci95'][0]:.1%}–{s['ci95'][1]:.1%}, "
        f"n={s['n']}); with the real intent mix {w['error_rate']:.1%} (95 % {w['ci95'][0]:.1%}–{w['ci95'][1]:.1%})"
    )
    rel = result["relative"]
    lo, hi = result["relative_ci95"]
    print(
        f"relative difference {'n/a' if rel is None else f'{rel:+.0%}'} (95 % {lo:+.0%}–{hi:+.0%}): "
        f"{'within' if result['within'] else 'outside'} ±{args.tolerance:.0%}"
    )
    print(
        f"exact-text overlap with the NLU's {result['training_sentences']} training sentences: "
        f"{result['overlap_with_training']} of {s['n']}"
    )
    width = max(len(k) for k in result["per_intent"])
    for intent, p in result["per_intent"].items():
        re_ = "—" if p["real_error"] is None else f"{p['real_error']:.0%}"
        se = "—" if p["sim_error"] is None else f"{p['sim_error']:.0%}"
        print(f"  {intent:<{width}}  real {re_:>5} (n={p['real_n']:<3})  simulated {se:>5} (n={p['sim_n']})")
    for e in wrong:
        print(f'  "{e.text}" → {e.got or "declined"} (gold {e.intent})')
    return 0

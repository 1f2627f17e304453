"""Evaluate a labeler against the oracle labels in traces.

--json prints one object with exactly these keys: fp_accuracy, fp_macro_f1, fp_per_class
(class → {precision, recall, f1, n}), defect_auc, defect_f1, n_turns. Only the turns a
production trace would hold are scored (a wake word the simulation says was missed is not).
"""

from __future__ import annotations

import argparse
import json

from core.config import Config
from hooks.learn.pipeline import evaluate_paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="TRACES", help="trace folders or files (oracle-labeled)")
    parser.add_argument("--model", required=True, metavar="MODEL", help="model folder from `assistant train`")
    parser.add_argument(
        "--kind",
        choices=("gbm", "sequence", "ensemble"),
        help="which of the model's labelers (default: the one train kept)",
    )
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, config: Config) -> int:
    m = evaluate_paths(args.paths, args.model, args.kind)
    if args.json:
        print(json.dumps(m))
        return 0
    print(
        f"{m['n_turns']} turns: failure point accuracy {m['fp_accuracy']:.1%}, "
        f"macro F1 {m['fp_macro_f1']:.3f}; defect AUC {_num(m['defect_auc'])}, F1 {m['defect_f1']:.3f}"
    )
    for name, c in m["fp_per_class"].items():
        print(f"  {name:8} P {c['precision']:.3f}  R {c['recall']:.3f}  F1 {c['f1']:.3f}  n {c['n']}")
    return 0


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"

"""Evaluate a labeler against the oracle labels in traces.

--json prints one object: fp_accuracy, fp_macro_f1, fp_per_class (class → precision, recall,
f1, n), defect_auc, defect_f1, n_turns.
"""
from __future__ import annotations

import argparse
import json

from assistant.config import Config
from hooks.learn.pipeline import evaluate_paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="TRACES")
    parser.add_argument("--model", required=True, metavar="MODEL")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, config: Config) -> int:
    m = evaluate_paths(args.paths, args.model)
    if args.json:
        print(json.dumps(m))
        return 0
    print(f"{m['n_turns']} turns ({m['model']}): failure point accuracy {m['fp_accuracy']:.1%}, "
          f"macro F1 {m['fp_macro_f1']:.3f}; defect AUC {m['defect_auc']:.3f}, F1 {m['defect_f1']:.3f}")
    for name, c in m["fp_per_class"].items():
        print(f"  {name:8} P {c['precision']:.3f}  R {c['recall']:.3f}  F1 {c['f1']:.3f}  n {c['n']}")
    return 0

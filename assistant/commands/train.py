"""Train the defect detector and failure-point labeler on oracle-labeled traces.

Both a gradient-boosting model and a dialogue-level Transformer are trained and saved, and their
ensemble (probabilities averaged, the weight chosen on validation); the one with the best
validation score (mean of failure-point accuracy and macro F1) is kept as the model's default,
and model.json reports all three (`eval --kind` scores the others).
"""

from __future__ import annotations

import argparse
import json

from core.config import Config
from hooks.learn.pipeline import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="TRACES", help="trace folders or files (oracle-labeled)")
    parser.add_argument("--out", required=True, metavar="MODEL", help="model folder to write")
    parser.add_argument("--val", nargs="+", metavar="TRACES", help="validation traces (default: 15 %% of sessions)")
    parser.add_argument("--kind", default="best", choices=("best", "gbm", "sequence", "ensemble"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-embeddings", action="store_true", help="leave out the MiniLM features")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, config: Config) -> int:
    info = train(
        args.paths,
        args.out,
        val_paths=args.val,
        kind=args.kind,
        domain=config["session.domain"],
        seed=args.seed,
        embeddings=not args.no_embeddings,
    )
    if args.json:
        print(json.dumps(info))
        return 0
    for kind, c in info["candidates"].items():
        v = c["validation"]
        print(
            f"{kind:9} fit {c['train_s']:6.1f} s  validation: fp accuracy {v.get('fp_accuracy')}, "
            f"macro F1 {v.get('fp_macro_f1')}, defect AUC {v.get('defect_auc')}"
        )
    print(f"kept {info['chosen']}: {info['train_turns']} training turns, {info['total_s']} s in all → {args.out}")
    return 0

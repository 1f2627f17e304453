"""Write learned labels (failure point, defect, class probabilities) into traces' turn_end records."""

from __future__ import annotations

import argparse

from core.config import Config
from hooks.learn.pipeline import label


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="TRACES", help="trace folders or files; rewritten in place")
    parser.add_argument("--model", required=True, metavar="MODEL", help="model folder from `assistant train`")
    parser.add_argument(
        "--kind",
        choices=("gbm", "sequence", "ensemble"),
        help="which of the model's labelers (default: the one train kept)",
    )


def run(args: argparse.Namespace, config: Config) -> int:
    n = label(args.paths, args.model, args.kind)
    print(f"labeled {n} turns")
    return 0

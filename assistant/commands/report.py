"""Plots and an HTML summary of a trace folder: failure points, WER per condition, defect
rate, per-stage latency, and the predicted-vs-oracle confusion matrix when labels exist."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.config import Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="DIR", help="trace folders or files")
    parser.add_argument("--out", metavar="DIR", help="where to write the page (default: DIR/report)")


def run(args: argparse.Namespace, config: Config) -> int:
    from sim.report import render

    out = Path(args.out) if args.out else Path(args.paths[0]) / "report"
    page = render(args.paths, out)
    print(f"wrote {page}")
    return 0

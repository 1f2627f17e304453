"""Benchmark the NLU: how long the domain's model takes to train, and per-utterance latency.

    .venv/bin/python tools/bench_nlu.py [--domain home] [--no-train] [--n 300] [--json]

Training runs into a fresh temporary cache (so it is always measured); inference times the
whole NLU stage one utterance at a time on held-out generated requests, after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from stages.nlu.bench import benchmark  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--domain", default="home", help="domain name or spec path (default home)")
    p.add_argument("--no-train", action="store_true", help="use the cached model instead of training one")
    p.add_argument("--n", type=int, default=300, help="utterances to time (default 300)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cache = None
    if args.no_train:
        from core.config import Config, cache_dir

        cache = cache_dir(Config.load())
    r = benchmark(args.domain, cache_root=cache, train=not args.no_train, utterances=args.n)
    if args.json:
        print(json.dumps(r))
    else:
        train = f"trained in {r['train_s']} s ({r['examples']} examples); " if r["train_s"] is not None else ""
        print(
            f"{r['domain']}: {train}inference median {r['median_ms']} ms, p90 {r['p90_ms']} ms, "
            f"mean {r['mean_ms']} ms over {r['n']} utterances"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

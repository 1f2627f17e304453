"""List the models each stage uses: installed or not, where each lives and comes from."""

from __future__ import annotations

import argparse
import json

from core.config import Config
from core.model_files import inventory
from core.records import to_jsonable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per model")


def run(args: argparse.Namespace, config: Config) -> int:
    rows = inventory(config)
    if args.json:
        for r in rows:
            print(json.dumps(to_jsonable(r)))
        return 0
    width = max(len(r.name) for r in rows)
    for r in rows:
        mark = "installed" if r.installed else "missing  "
        print(f"{r.stage:8} {r.name:{width}}  {mark}  {r.source}")
        if r.location:
            print(f"{'':8} {'':{width}}  {'':9}  {r.location}")
    return 0

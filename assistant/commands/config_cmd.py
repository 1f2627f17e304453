"""Print the effective configuration and where each value came from."""

from __future__ import annotations

import argparse
import json

from core.config import Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object: key → {value, source}")


def run(args: argparse.Namespace, config: Config) -> int:
    items = sorted(config.items())
    if args.json:
        print(json.dumps({k: {"value": s.value, "source": s.source} for k, s in items}))
        return 0
    width = max(len(k) for k, _s in items)
    for key, setting in items:
        print(f"{key:{width}} = {json.dumps(setting.value):24} # {setting.source}")
    return 0

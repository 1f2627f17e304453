"""Read traces: a per-turn view, schema validation, Parquet export.

assistant trace show FILE          each turn: what was heard, understood, done, timings, signals
assistant trace validate PATH…     check every record against hooks/trace.schema.json
assistant trace export PATH… --parquet OUT   turn_end records as one Parquet table
"""

from __future__ import annotations

import argparse
import sys

from core.config import Config
from core.errors import UserError
from hooks import trace_reader as traces


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))
    show = sub.add_parser("show", help="a readable per-turn view of one trace file")
    show.add_argument("file")
    validate = sub.add_parser("validate", help="validate trace records against the JSON Schema")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    export = sub.add_parser("export", help="export turn_end records to Parquet")
    export.add_argument("paths", nargs="+", metavar="PATH")
    export.add_argument("--parquet", required=True, metavar="OUT")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.action == "show":
        print(traces.show(traces.trace_files([args.file])[0]))
        return 0
    if args.action == "validate":
        bad = 0
        files = traces.trace_files(args.paths)
        n = 0
        for f in files:
            for i, rec in enumerate(traces.read_records(f), 1):
                n += 1
                for err in traces.validation_errors(rec):
                    bad += 1
                    print(f"{f}: record {i} ({rec.get('event')}): {err}", file=sys.stderr)
        print(f"{n} records in {len(files)} files, {bad} problems")
        return 2 if bad else 0
    if args.action == "export":
        records = traces.turn_ends(args.paths)
        if not records:
            raise UserError("no turn_end records to export")
        out = traces.export_parquet(records, args.parquet)
        print(f"wrote {len(records)} turns to {out}")
        return 0
    raise UserError(f"unknown action {args.action}")

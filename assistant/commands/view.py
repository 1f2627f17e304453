"""A trace browser: every session and turn of trace folders as a static page (opens from disk).

  assistant view TRACES… [--out DIR] [--serve [PORT]]

The sessions list (outcome, defects, oracle and predicted failure points, signals; filters and
search), and per session its turns: audio, heard against said, intent and slots with n-best,
resolver candidates, the reply, a per-stage waterfall, injected faults, oracle and predicted
labels. Writes only into --out (default: TRACES/view, the first folder's, beside the folder
`assistant report` writes, whose figures link here); a folder that is not empty must be a view
from an earlier run. --serve serves it on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.config import Config
from core.errors import UserError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="TRACES", help="trace folders or files")
    parser.add_argument(
        "--out", metavar="DIR", help="where to write the view (default: TRACES/view of the first folder named)"
    )
    parser.add_argument(
        "--serve",
        nargs="?",
        const=8000,
        type=int,
        metavar="PORT",
        help="then serve it on 127.0.0.1:PORT (default 8000; 0: any free port) until Ctrl-C",
    )


def default_out(paths: list[str]) -> Path:
    """``view`` in the first folder named (or the folder of the first file named) that exists."""
    for p in map(Path, paths):
        if p.is_dir():
            return p / "view"
        if p.is_file():
            return p.parent / "view"
    return Path("view")  # nothing exists: build() stops before writing anything


def run(args: argparse.Namespace, config: Config) -> int:
    from hooks import view

    out = Path(args.out) if args.out else default_out(args.paths)
    if args.serve is not None and not 0 <= args.serve <= 65535:
        raise UserError(f"--serve: {args.serve} is not a port")
    try:
        result = view.build(args.paths, out)
    except view.NothingToView as err:
        if not err.problems:
            raise
        for problem in err.problems:  # one line each input, naming it; no view is written
            print(f"assistant: {problem}", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(f"assistant: {problem}", file=sys.stderr)
    print(f"wrote {result.page} ({result.sessions} sessions, {result.turns} turns, {result.audio_files} audio files)")
    if args.serve is not None:
        httpd = view.server(out, args.serve)
        print(f"serving http://127.0.0.1:{httpd.server_address[1]}/ (Ctrl-C stops)", flush=True)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
        finally:
            httpd.server_close()
    return 2 if result.problems else 0

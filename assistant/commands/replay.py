"""Replay recorded sessions or audio files through the assistant.

PATH is a session folder (session.json + audio) or an audio file (WAV, FLAC, MP3, OGG; any
rate and channel count), which is a one-turn session of its own. Bad inputs are reported one
line each; the other inputs still run; the exit code is then 2. --out and --trace are checked
before any session runs; an output that cannot be written is named, stops, and the exit code
is 3.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import sys
from pathlib import Path

from assistant.recorded_sessions import MANIFEST, RecordedSession, check_gold, load_recording
from assistant.replay import replay
from assistant.runner import Assistant
from core.config import Config
from core.domain import DOMAINS_DIR, load_domain, resolve_domain_path
from core.errors import InputError, UserError
from core.paths import ensure_output_dir
from core.pipeline import STAGES

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="session folders or audio files")
    parser.add_argument("--json", action="store_true", help="one JSON object per turn on stdout")
    parser.add_argument("--out", metavar="DIR", help="write each reply as WAV under DIR/<session>/")
    parser.add_argument("--trace", metavar="DIR", help="write a JSONL trace per session (and its audio) into DIR")
    parser.add_argument(
        "--stop",
        choices=STAGES,
        default="tts",
        help="last stage to run (default tts; wake: the wake words a continuous recording holds, no recognition)",
    )
    parser.add_argument(
        "--continuous",
        action="store_true",
        help="treat plain audio files as continuous recordings (listen for the wake word)",
    )
    parser.add_argument(
        "--allow-outside",
        action="store_true",
        help="let session.json name audio outside its session folder (e.g. ../shared/x.wav)",
    )


def _line(summary: dict) -> str:
    if summary.get("missed"):
        near = f" (near miss, peak {summary['near_miss']:.2f})" if summary.get("near_miss") is not None else ""
        return f"{summary['session']}  MISSED command at {summary['at_s']:.1f}s{near}: {summary['gold']}"
    mark = {True: "  ok", False: "  WRONG", None: ""}[summary.get("correct")]
    if "command" in summary:  # --stop wake
        w, c = summary["wake"], summary["command"]
        return (
            f"{summary['session']} #{summary['turn']}  [{w['word']} {w['score']:.2f}] at {w['detected_at_s']:.2f}s"
            f"  command {c['start_s']:.2f}-{c['end_s']:.2f}s ({c['endpoint']}){mark}"
        )
    wake = f"[{summary['wake']['word']} {summary['wake']['score']:.2f}] " if summary.get("wake") else ""
    errs = "".join(f"  !{e['code']}" for e in summary.get("errors", []))
    return (
        f'{summary["session"]} #{summary["turn"]}  {wake}"{summary["transcript"] or ""}" → '
        f"{summary['intent']} {json.dumps(summary['entities'] | summary['slots'])} → "
        f'"{summary["reply"] or ""}"{mark}{errs}'
    )


def bundled_domains() -> list[str]:
    return sorted(p.stem for p in DOMAINS_DIR.glob("*.yaml") if not p.name.startswith("_"))


def _same_file(a: str, b: str) -> bool:
    pa, pb = resolve_domain_path(a), resolve_domain_path(b)
    return pa.is_file() and pb.is_file() and pa.resolve() == pb.resolve()


def domain_for(rec: RecordedSession, config: Config) -> str:
    """The domain a session runs in. A manifest may name a bundled domain, or the one the
    configuration names (command line, config file): never an arbitrary file of its own choosing."""
    wanted, configured = rec.domain, config["session.domain"]
    if wanted is None or wanted == configured or _same_file(wanted, configured):
        return configured
    if re.fullmatch(r"[A-Za-z0-9][\w-]*", wanted) and wanted in bundled_domains():
        return wanted
    raise InputError(
        Path(rec.path) / MANIFEST,
        f"{wanted!r} is not a bundled domain ({', '.join(bundled_domains())}); "
        "name another spec on the command line (--session-domain PATH)",
        field="domain",
    )


def _unique_id(rec: RecordedSession, used: set[str]) -> RecordedSession:
    """Two inputs with one session id (two folders' turn01.wav) would share replies and traces."""
    new, n = rec.id, 1
    while new in used:
        n += 1
        new = f"{rec.id}-{n}"
    used.add(new)
    if new != rec.id:
        log.warning("%s: session id %r is already taken on this command line; it runs as %r", rec.path, rec.id, new)
        return dataclasses.replace(rec, id=new)
    return rec


def run(args: argparse.Namespace, config: Config) -> int:
    # Outputs first: finding out after an hour of replay that nothing could be saved helps nobody.
    for folder in (args.out, args.trace):
        if folder:
            ensure_output_dir(folder)
    sessions, failed, used = [], False, set()
    for p in args.paths:
        try:
            rec = load_recording(p, continuous=args.continuous, allow_outside=args.allow_outside)
            domain = domain_for(rec, config)
            check_gold(rec, load_domain(domain))
            sessions.append((_unique_id(rec, used), domain))
        except UserError as err:
            print(f"assistant: {err}", file=sys.stderr)
            failed = True
    assistants: dict[str, Assistant] = {}
    for rec, domain in sessions:
        if domain not in assistants:
            cfg = (
                config
                if domain == config["session.domain"]
                else config.with_overrides({"session.domain": domain}, rec.path)
            )
            assistants[domain] = Assistant(cfg)
            if args.out:
                assistants[domain].reply_dir = Path(args.out)
            if args.trace:
                assistants[domain].trace_to(args.trace)
        for summary in replay(assistants[domain], rec, stop=args.stop):
            print(json.dumps(summary, ensure_ascii=False) if args.json else _line(summary), flush=True)
    # each failed output was named when it failed; results not all saved outranks a bad input
    if any(a.output_errors for a in assistants.values()):
        return 3
    return 2 if failed else 0

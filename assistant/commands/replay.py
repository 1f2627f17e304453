"""Replay recorded sessions or audio files through the assistant.

PATH is a session folder (session.json + audio) or an audio file (WAV, FLAC, MP3, OGG; any
rate and channel count), which is a one-turn session of its own. Bad inputs are reported one
line each; the other inputs still run; the exit code is then 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from assistant.config import Config
from assistant.errors import UserError
from assistant.records import STAGES
from assistant.recording import load_recording
from assistant.replay import replay
from assistant.runner import Assistant

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="session folders or audio files")
    parser.add_argument("--json", action="store_true", help="one JSON object per turn on stdout")
    parser.add_argument("--out", metavar="DIR", help="write each reply as WAV under DIR/<session>/")
    parser.add_argument("--trace", metavar="DIR", help="write a JSONL trace per session (and its audio) into DIR")
    parser.add_argument("--stop", choices=STAGES[1:], default="tts", help="last stage to run (default tts)")
    parser.add_argument("--continuous", action="store_true",
                        help="treat plain audio files as continuous recordings (listen for the wake word)")


def _line(summary: dict) -> str:
    if summary.get("missed"):
        return f"{summary['session']}  MISSED command at {summary['at_s']:.1f}s: {summary['gold']}"
    mark = {True: "  ok", False: "  WRONG", None: ""}[summary.get("correct")]
    wake = f"[{summary['wake']['word']} {summary['wake']['score']:.2f}] " if summary.get("wake") else ""
    errs = "".join(f"  !{e['code']}" for e in summary.get("errors", []))
    return (f"{summary['session']} #{summary['turn']}  {wake}\"{summary['transcript'] or ''}\" → "
            f"{summary['intent']} {json.dumps(summary['entities'] | summary['slots'])} → "
            f"\"{summary['reply'] or ''}\"{mark}{errs}")


def run(args: argparse.Namespace, config: Config) -> int:
    sessions, failed = [], False
    for p in args.paths:
        try:
            sessions.append(load_recording(p, continuous=args.continuous))
        except UserError as err:
            print(f"assistant: {err}", file=sys.stderr)
            failed = True
    assistants: dict[str, Assistant] = {}
    for rec in sessions:
        domain = rec.domain or config["session.domain"]
        if domain not in assistants:
            cfg = config if domain == config["session.domain"] else config.with_overrides({"session.domain": domain}, rec.path)
            assistants[domain] = Assistant(cfg)
            if args.out:
                assistants[domain].reply_dir = Path(args.out)
            if args.trace:
                assistants[domain].trace_to(args.trace)
        for summary in replay(assistants[domain], rec, stop=args.stop):
            print(json.dumps(summary, ensure_ascii=False) if args.json else _line(summary), flush=True)
    return 2 if failed else 0

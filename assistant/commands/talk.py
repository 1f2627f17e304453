"""Talk to the assistant: microphone (or a file paced like one), wake word, spoken reply.

Say the wake word, then the command; it ends after `wake.silence_ms` of silence. Saying the
wake word while a reply plays stops it (a barge-in, `talk.barge_in`); after a question the
assistant listens `talk.follow_up_s` for the answer without the wake word. Ctrl-C ends the
session (the recording and the trace are kept).

--input FILE feeds an audio file (or a continuous session folder) through the same loop in
real time, as if it came from the microphone; --json prints replay's per-turn JSON plus the
live keys (barge_in, follow_up, eos_to_reply_ms, live).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from assistant import live_audio as audio_io
from assistant.commands.replay import domain_for
from assistant.live import LiveLoop, LiveStatus, LiveTurn, SessionRecorder, TalkOptions, manifest_header
from assistant.recorded_sessions import check_gold, load_recording
from assistant.replay import GoldMatcher
from assistant.runner import Assistant
from core.config import Config
from core.domain import load_domain
from core.errors import InputError, UserError
from core.paths import ensure_output_dir
from core.turn_summary import gold_summary

log = logging.getLogger(__name__)

STATE_LABELS = {
    "starting": "starting",
    "listening": "listening",
    "wake": "wake word heard",
    "follow_up": "listening (follow-up)",
    "thinking": "thinking",
    "speaking": "speaking",
}
STATE_COLORS = {"listening": "32", "wake": "33", "follow_up": "33", "thinking": "36", "speaking": "35"}
METER_WIDTH = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list-devices", action="store_true", help="list the audio devices and exit")
    parser.add_argument("--device", metavar="DEV", help="input device: index or part of its name (talk.device)")
    parser.add_argument(
        "--input", metavar="PATH", help="feed an audio file or a continuous session folder instead of the microphone"
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, metavar="X", help="with --input: pace X times real time (default 1)"
    )
    parser.add_argument("--play", action="store_true", help="with --input: play the replies on the output device")
    parser.add_argument("--json", action="store_true", help="one JSON object per turn on stdout")
    parser.add_argument("--quiet", action="store_true", help="no terminal view on stderr")
    parser.add_argument("--record", metavar="DIR", help="save the session as a recorded session folder")
    parser.add_argument("--trace", metavar="DIR", help="write the session's JSONL trace (and its audio) into DIR")
    parser.add_argument("--out", metavar="DIR", help="write each reply as WAV under DIR/<session>/")


class TerminalView:
    """Plain ANSI on a stream: one status line redrawn in place, a block per turn above it."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.tty = stream.isatty()
        self._lock = threading.Lock()
        self._line = ""

    def _color(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.tty else text

    def status(self, s: LiveStatus) -> None:
        if not self.tty:
            return  # no redraws into a file or a pipe
        filled = int(round(max(0.0, min(1.0, (s.level_db + 60) / 60)) * METER_WIDTH))
        meter = "█" * filled + "·" * (METER_WIDTH - filled)
        label = f"● {STATE_LABELS.get(s.state, s.state):<22}"
        extra = f"  overflows {s.overflows}" if s.overflows else ""
        extra += f"  dropped {s.dropped}" if s.dropped else ""
        rest = f" {meter} {s.level_db:6.1f} dB  {s.stream_s:7.1f} s  turns {s.turns}{extra}"
        # a line wider than the terminal wraps, and \r then redraws only its last row
        rest = rest[: max(0, shutil.get_terminal_size().columns - 1 - len(label))]
        line = self._color(STATE_COLORS.get(s.state, "0"), label) + rest
        with self._lock:
            self._line = line
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()

    def turn(self, live: LiveTurn) -> None:
        sm = live.summary()
        head = f"#{sm['turn']}"
        if sm["wake"]:
            head += f" [{sm['wake']['word']} {sm['wake']['score']:.2f}]"
        tags = [t for t, on in (("follow-up", live.follow_up), ("barge-in", sm["barge_in"])) if on]
        if tags:
            head += " (" + ", ".join(tags) + ")"
        args = json.dumps({**sm["slots"], **sm["entities"]}, ensure_ascii=False)
        timings = " · ".join(f"{k} {v:.0f}" for k, v in sm["ms"].items()) + " ms"
        if sm["eos_to_reply_ms"] is not None:
            timings += f"   end of speech → reply {sm['eos_to_reply_ms']:.0f} ms"
        lines = [
            f'{self._color("1", head)}  "{sm["transcript"] or ""}"',
            f"   → {sm['intent']}  {args}",
            f'   → "{sm["reply"] or ""}"',
        ]
        lines += [f"   ! {e['stage']}: {e['code']}" for e in sm["errors"]]
        lines.append(self._color("2", f"   {timings}"))
        self.block("\n".join(lines))

    def block(self, text: str) -> None:
        with self._lock:
            clear = "\r\x1b[K" if self.tty else ""
            self.stream.write(clear + text + "\n" + (self._line if self.tty else ""))
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            with self._lock:
                self.stream.write("\r\x1b[K")
                self.stream.flush()


def _input(path: str, config: Config) -> tuple[Any, dict, str]:
    """(audio, session keyword arguments, session id) for --input; a folder must be continuous."""
    p = Path(path)
    rec = load_recording(p, continuous=True)
    if not rec.continuous:
        raise InputError(
            p,
            "a pre-segmented session has no stream to listen to (`assistant replay` runs it); "
            "talk --input needs an audio file or a continuous session",
        )
    args = {
        "world": rec.world,
        "device": rec.device,
        "user": rec.user,
        "start_time": rec.start_time,
        "meta": {"source": rec.path, **rec.meta},
    }
    return rec, args, rec.id


def run(args: argparse.Namespace, config: Config) -> int:
    if args.list_devices:
        devs = audio_io.devices()
        for d in devs:
            print(
                f"{d['index']:3}  {d['name']}  (in {d['max_input_channels']}, out {d['max_output_channels']}, "
                f"{d['default_samplerate']:g} Hz)"
            )
        if not devs:
            print("no audio devices")
        return 0
    options = TalkOptions.from_config(config, **({"device": args.device} if args.device is not None else {}))
    if args.input and args.device is not None:
        raise UserError("--device and --input exclude each other")
    if not args.input and (args.speed != 1.0 or args.play):
        raise UserError("--speed and --play go with --input")
    for folder in (args.out, args.trace):  # as replay: outputs are checked before anything runs
        if folder:
            ensure_output_dir(folder)

    session_args: dict[str, Any] = {}
    gold_for = None
    player = None
    domain = config["session.domain"]
    if args.input:
        rec, session_args, session_id = _input(args.input, config)
        domain = domain_for(rec, config)  # replay's rules: never a file the manifest picks
        check_gold(rec, load_domain(domain))
        gold_for = GoldMatcher(rec) if rec.turns else None
        source = audio_io.FileSource(
            rec.stream, Path(rec.stream_path).name, block=options.block, queue_s=options.queue_s, speed=args.speed
        )
        if args.play:
            player = _speaker(options)
    else:
        index, name = audio_io.input_device(options.device)  # before any model loads: fail fast
        source = audio_io.MicrophoneSource(
            index, name, block=options.block, queue_s=options.queue_s, stall_s=options.stall_s
        )
        session_id = "talk-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        session_args = {"meta": {"source": f"microphone: {name}"}}
        player = _speaker(options)

    assistant = Assistant(
        config if domain == config["session.domain"] else config.with_overrides({"session.domain": domain}, args.input)
    )
    if args.out:
        assistant.reply_dir = Path(args.out)
    if args.trace:
        assistant.trace_to(args.trace)
    recorder = (
        SessionRecorder(args.record, session_id, manifest_header(session_args, config), subtype=source.subtype)
        if args.record
        else None
    )

    view = None if args.quiet else TerminalView(sys.stderr)
    lock = threading.Lock()

    def on_turn(live: LiveTurn) -> None:
        if args.json:
            with lock:
                print(json.dumps(live.summary(), ensure_ascii=False), flush=True)
        if view is not None:
            view.turn(live)

    loop = LiveLoop(
        assistant,
        source,
        player=player,
        options=options,
        session_id=session_id,
        session_args=session_args,
        gold_for=gold_for,
        recorder=recorder,
        on_turn=on_turn,
        on_status=view.status if view is not None else None,
    )
    if view is not None:
        view.block(
            f'{source.name}: say "{config["wake.word"].replace("_", " ")}", then your request'
            + ("" if args.input else "; Ctrl-C ends the session")
        )
    try:
        result = loop.run()
    finally:
        if view is not None:
            view.close()
    for at, gold in result.missed:
        miss = {
            "session": result.session,
            "turn": None,
            "missed": True,
            "at_s": at,
            "gold": gold_summary(gold),
            "correct": False,
        }
        if args.json:
            print(json.dumps(miss, ensure_ascii=False), flush=True)
        elif view is not None:
            view.block(f"MISSED command at {at:.1f}s: {miss['gold']}")
    saved = [f"recording in {args.record}" if args.record else "", f"trace in {args.trace}" if args.trace else ""]
    saved_text = "; ".join(s for s in saved if s)
    if result.ended == "device_lost":
        print(
            f"assistant: {result.message}; session ended" + (f" ({saved_text})" if saved_text else ""), file=sys.stderr
        )
    elif view is not None:
        ending = "session ended (Ctrl-C)" if result.ended == "interrupted" else "end of input"
        view.block(f"{ending}: {len(result.turns)} turns" + (f"; {saved_text}" if saved_text else ""))
    # as replay: each failed output was named when it failed; not all saved outranks the rest
    code = 3 if assistant.output_errors else 2 if result.ended == "device_lost" else 0
    if loop.worker_abandoned:
        # A second Ctrl-C left a turn running, maybe inside CTranslate2 or onnxruntime: unwinding
        # that thread at interpreter exit aborts the process (-6). run() has closed the recording
        # and the trace (every line is whole), so flush and leave without the unwinding.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 130)
    return code


def _speaker(options: TalkOptions):
    out = audio_io.output_device(options.output_device)
    if out is None:
        log.warning("no output audio device: replies are not played")
        return None
    return audio_io.SoundDevicePlayer(out[0])

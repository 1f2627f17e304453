"""Evaluate the wake word: false rejects and false accepts per hour, a threshold sweep, a DET curve.

`assistant wake eval --positives DIR --negatives PATH [--synthetic-negatives MINUTES]
[--snr clean 10 --noise pink] [--model] [--verify] [--report DIR]`. Positives (clips of the wake
word) are joined into one stream with 2-3 s between them and each is scored by its span;
negatives (files or folders of audio without the wake word, or synthetic speech) are played as
streams and every wake in them is a false accept. Runs the pipeline's own listener
(endpointing and re-arming included) and, with --model, the bare openWakeWord model beside it;
no speech recognition. docs/wake.md explains the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.config import Config
from core.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    ev = sub.add_parser("eval", help="false rejects, false accepts per hour, threshold sweep, DET curve")
    ev.add_argument(
        "--positives",
        action="append",
        default=[],
        metavar="PATH",
        help="a folder of wake-word clips, or one clip (repeatable)",
    )
    ev.add_argument(
        "--negatives",
        action="append",
        default=[],
        metavar="PATH",
        help="audio without the wake word: a file or a folder of files, each played as a stream (repeatable)",
    )
    ev.add_argument(
        "--synthetic-negatives",
        type=float,
        metavar="MINUTES",
        help="also this many minutes of synthetic speech without the wake word (every installed voice reading "
        "real commands; seeded by --seed): stress, not a false-accept rate of real speech",
    )
    ev.add_argument(
        "--snr",
        nargs="+",
        default=["clean"],
        metavar="DB",
        help="conditions: 'clean' and/or SNRs in dB of --noise mixed in (default clean)",
    )
    ev.add_argument(
        "--noise",
        default="pink",
        metavar="KIND|FILE",
        help="white, pink, babble (the simulator's generators) or a noise recording (default pink)",
    )
    ev.add_argument("--gap", default="2-3", metavar="A-B", help="seconds of silence between positives (default 2-3)")
    ev.add_argument(
        "--thresholds",
        nargs="+",
        type=float,
        metavar="T",
        help="thresholds swept (default 0.3 … 0.9); wake.threshold is always included",
    )
    ev.add_argument("--model", action="store_true", help="also score the bare openWakeWord model on the same audio")
    ev.add_argument(
        "--verify",
        action="store_true",
        help="also the listener with the second look at each wake (Whisper must hear the word; wake.verify)",
    )
    ev.add_argument(
        "--split",
        action="store_true",
        help="report the positives' two halves (by a hash of the file name: tune, held_out) apart",
    )
    ev.add_argument("--seed", type=int, default=0, help="gaps and noise (default 0)")
    ev.add_argument("--report", metavar="DIR", help="write report.json, report.txt and the DET curve into DIR")
    ev.add_argument("--json", action="store_true", help="print the report as one JSON object")


def _gap(text: str) -> tuple[float, float]:
    try:
        a, _, b = text.partition("-")
        lo, hi = float(a), float(b or a)
    except ValueError:
        raise UserError(f"--gap: expected seconds A-B such as 2-3, got {text!r}") from None
    if not 0 <= lo <= hi <= 60:
        raise UserError(f"--gap: expected 0 <= A <= B <= 60, got {text!r}")
    return lo, hi


def _conditions(snrs: list[str], noise: str) -> list:
    from sim.channel import NOISE_KINDS, Channel, parse_snr

    kind, noise_file = (noise, None) if noise in NOISE_KINDS[:-1] else ("file", noise)
    if noise_file is not None and not Path(noise_file).is_file():
        raise UserError(f"--noise: {noise_file}: not white, pink, babble or a noise file")
    try:
        channels = parse_snr(snrs, noise="white" if kind == "file" else kind)
        if noise_file is not None:
            channels = tuple(
                c if c.snr_db is None else Channel(snr_db=c.snr_db, noise="file", noise_file=noise_file)
                for c in channels
            )
    except ValueError as err:
        raise UserError(f"--snr: {err}") from None
    if noise_file is not None and any(c.snr_db is not None for c in channels):
        from core.audio import load_audio

        load_audio(noise_file)  # a bad noise file is named before any work
    return list(channels)


def run(args: argparse.Namespace, config: Config) -> int:
    from assistant.wake_eval import (
        SWEEP,
        EvalOptions,
        audio_files,
        evaluate,
        negative_streams,
        synthetic_streams,
        table,
        write_report,
    )
    from stages.wake import WakeOptions

    if args.action != "eval":
        raise UserError("wake: expected an action: eval")
    if args.synthetic_negatives is not None and not 0 < args.synthetic_negatives <= 24 * 60:
        raise UserError("--synthetic-negatives: expected minutes between 0 and 1440")
    if not args.positives and not args.negatives and not args.synthetic_negatives:
        raise UserError("wake eval: give --positives and/or --negatives or --synthetic-negatives")
    if any(not 0 < t < 1 for t in args.thresholds or ()):
        raise UserError("--thresholds: each must be between 0 and 1")
    wake = WakeOptions(**config.section("wake"))
    conditions = _conditions(args.snr, args.noise)
    positives = [f for p in args.positives for f in audio_files(p)]
    from core.audio import load_audio

    for f in positives:  # a bad clip is named before any work
        load_audio(f)
    negatives = negative_streams(args.negatives)  # decoded now: a bad file is named before any work
    if args.synthetic_negatives:
        negatives += synthetic_streams(
            args.synthetic_negatives, wake.word, args.seed, say=lambda m: print(m, file=sys.stderr, flush=True)
        )
    options = EvalOptions(
        word=wake.word,
        thresholds=tuple(args.thresholds or SWEEP),
        threshold=wake.threshold,
        refractory_s=wake.refractory_s,
        gap_s=_gap(args.gap),
        seed=args.seed,
        model=args.model,
        split=args.split,
    )
    verifier = None
    if args.verify:
        from stages.asr import AsrOptions, WhisperAsr
        from stages.wake_verify import WakeVerifier

        verifier = WakeVerifier(WhisperAsr(AsrOptions(**config.section("asr"))))
    report = evaluate(
        positives,
        negatives,
        conditions,
        wake,
        options,
        say=lambda m: print(m, file=sys.stderr, flush=True),
        verifier=verifier,
    )
    if args.report:
        written = write_report(report, Path(args.report))
        report["files"] = [str(p) for p in written]
    if args.json:
        print(json.dumps(report))
    else:
        print(table(report))
        if args.report:
            print("wrote " + ", ".join(report["files"]))
    return 0

"""The ASR error model text fidelity uses: fit it from audio-fidelity traces, or show one.

assistant asr-errors fit TRACES… --out FILE   align what users said with what the ASR heard
assistant asr-errors show [FILE]              rates and top confusions per condition
assistant asr-errors check AUDIO… --text TEXT… [--json]
                                              does text fidelity reproduce audio fidelity's WER per condition?
"""

from __future__ import annotations

import argparse
import json

from core.config import Config
from core.errors import UserError
from sim.asr_errors import DEFAULT_MODEL, AsrErrorModel, samples_from_traces


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))
    fit = sub.add_parser("fit", help="fit a model from audio-fidelity traces")
    fit.add_argument("paths", nargs="+", metavar="TRACES")
    fit.add_argument("--out", required=True, metavar="FILE")
    show = sub.add_parser("show", help="summarize a model")
    show.add_argument("file", nargs="?", default=str(DEFAULT_MODEL))
    check = sub.add_parser(
        "check", help="word error rate per condition: audio-fidelity traces against text-fidelity ones"
    )
    check.add_argument("paths", nargs="+", metavar="AUDIO_TRACES")
    check.add_argument("--text", nargs="+", required=True, metavar="TEXT_TRACES")
    check.add_argument("--tolerance", type=float, default=0.2, help="relative difference allowed (default 0.2)")
    check.add_argument("--json", action="store_true", help="one JSON object per condition")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.action == "check":
        return _check(args)
    if args.action == "fit":
        samples, wake = samples_from_traces(args.paths)
        if not samples:
            raise UserError("no audio-fidelity ASR turns in those traces (simulate with --fidelity audio)")
        model = AsrErrorModel.fit(samples, wake, source=" ".join(args.paths))
        model.save(args.out)
        print(f"fitted {len(samples)} utterances, {len(wake)} wake observations → {args.out}")
    model = AsrErrorModel.load(args.out if args.action == "fit" else args.file)
    for name, c in model.conditions.items():
        top = sorted(((sum(v.values()), w, max(v, key=v.get)) for w, v in c["confusions"].items()), reverse=True)[:4]
        conf = ", ".join(f"{w}→{h or '∅'}" for _n, w, h in top)
        wake = c.get("wake") or {}
        print(
            f"{name:14} WER {c['wer']:.1%} (sub {c['sub_rate']:.1%} del {c['del_rate']:.1%} ins {c['ins_rate']:.1%}) "
            f"over {c['words']} words; wake miss {wake.get('false_reject', 0):.1%}; {conf}"
        )
    for voice, f in model.voices.items():
        print(f"voice {voice:30} word errors ×{f['asr']['factor']:.2f}, wake misses ×{f['wake']['factor']:.2f}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from sim.report import compare_wer

    rows = compare_wer(args.paths, args.text, tolerance=args.tolerance)
    if not rows:
        raise UserError("no acoustic condition has heard turns in both the audio and the text traces")
    for row in rows:
        if args.json:
            print(json.dumps(row))
            continue
        lo, hi = row["audio_ci95"]
        rel = "n/a" if row["relative"] is None else f"{row['relative']:+.0%}"
        print(
            f"{row['condition']:14} audio {row['audio_wer']:.1%} (95 % {lo:.1%}–{hi:.1%}, {row['audio_words']} words) "
            f"text {row['text_wer']:.1%} ({row['text_words']} words) {rel} "
            f"{'within' if row['within'] else 'outside'} ±{args.tolerance:.0%}"
        )
    return 0

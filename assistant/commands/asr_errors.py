"""The ASR error model text fidelity uses: fit it from audio-fidelity traces, or show one.

  assistant asr-errors fit TRACES… --out FILE   align what users said with what the ASR heard
  assistant asr-errors show [FILE]              rates and top confusions per condition
"""
from __future__ import annotations

import argparse

from assistant.config import Config
from assistant.errors import UserError
from sim.asr_errors import DEFAULT_MODEL, AsrErrorModel, samples_from_traces


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))
    fit = sub.add_parser("fit", help="fit a model from audio-fidelity traces")
    fit.add_argument("paths", nargs="+", metavar="TRACES")
    fit.add_argument("--out", required=True, metavar="FILE")
    show = sub.add_parser("show", help="summarize a model")
    show.add_argument("file", nargs="?", default=str(DEFAULT_MODEL))


def run(args: argparse.Namespace, config: Config) -> int:
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
        print(f"{name:14} WER {c['wer']:.1%} (sub {c['sub_rate']:.1%} del {c['del_rate']:.1%} ins {c['ins_rate']:.1%}) "
              f"over {c['words']} words; wake miss {wake.get('false_reject', 0):.1%}; {conf}")
    for voice, f in model.voices.items():
        print(f"voice {voice:30} word errors ×{f['asr']['factor']:.2f}, wake misses ×{f['wake']['factor']:.2f}")
    return 0

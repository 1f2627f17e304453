"""Word error rate and decode time of Whisper's fitted encoder window against the full 30 s one.

Compares the shortest fitted windows given by ``--min-s`` (stages.asr.CONTEXT_MIN_S).

    python tools/asr_context_eval.py [--smoke ../shared/data/smoke] [--synthetic 60] [--json]

Clips: the bundled home-demo recordings (festival), the real speech clips of ``--smoke`` when
given, and ``--synthetic`` SLURP-style commands spoken by the simulator's voices through clean
and noisy channels. Both windows decode the same clips in one process, interleaved.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import stages.asr  # noqa: E402
from core.audio import load_audio  # noqa: E402
from core.wer import edit_distance, normalize_words  # noqa: E402
from stages.asr import AsrOptions, WhisperAsr  # noqa: E402


def _home_demo():
    session = json.loads((ROOT / "recordings/home-demo/session.json").read_text())
    for turn in session["turns"]:
        yield "home-demo", load_audio(ROOT / "recordings/home-demo" / turn["audio"]), turn["gold"]["transcript"]


def _smoke(folder: Path):
    for line in (folder / "TRANSCRIPTS.tsv").read_text().splitlines()[2:]:
        path, ref = line.split("\t")[:2]
        if path.endswith(".raw"):
            continue
        audio = load_audio(folder / path)
        if audio.duration_s <= 29:
            yield "real", audio, ref


def _synthetic(n: int, seed: int):
    from sim.channel import Channel, apply
    from sim.voices import sample_voice, speak

    texts = [json.loads(line)["sentence"] for line in (ROOT / "tests/data/slurp-mini.jsonl").read_text().splitlines()]
    rng = random.Random(seed)
    conditions = (Channel(), Channel(snr_db=10, noise="pink"), Channel(snr_db=5, noise="white", rt60_s=0.5))
    for i in range(n):
        text = texts[i % len(texts)]
        channel = conditions[i % len(conditions)]
        audio = apply(channel, speak(sample_voice(rng), text), rng)
        yield f"synthetic {channel.id}", audio, text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", type=Path)
    ap.add_argument("--synthetic", type=int, default=60)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument(
        "--min-s",
        type=float,
        nargs="+",
        default=[stages.asr.CONTEXT_MIN_S],
        help="shortest fitted windows to compare (seconds)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    clips = list(_home_demo())
    if args.smoke:
        clips += list(_smoke(args.smoke))
    clips += list(_synthetic(args.synthetic, args.seed))
    full = WhisperAsr(AsrOptions(context="full"))
    fit = WhisperAsr(AsrOptions(context="fit"))
    models = {"full": (full, None)} | {f"fit{m:g}": (fit, m) for m in args.min_s}
    errors = {c: {} for c in models}
    times = {c: [] for c in models}
    for group, audio, ref in clips:
        for c, (asr, min_s) in models.items():
            if min_s is not None:
                stages.asr.CONTEXT_MIN_S = min_s
            t = time.perf_counter()
            hyp = asr.transcribe(audio.samples).text
            times[c].append(time.perf_counter() - t)
            r = normalize_words(ref)
            e, n = edit_distance(r, normalize_words(hyp)), len(r)
            tot = errors[c].setdefault(group, [0, 0])
            tot[0] += e
            tot[1] += n
    out = {
        "clips": len(clips),
        "median_s": {c: round(statistics.median(t), 4) for c, t in times.items()},
        "wer": {c: {g: round(e / max(n, 1), 4) for g, (e, n) in groups.items()} for c, groups in errors.items()},
        "words": {g: n for g, (_e, n) in errors["full"].items()},
    }
    out["fallbacks"] = fit.fallbacks
    out["speedup"] = {c: round(out["median_s"]["full"] / t, 2) for c, t in out["median_s"].items() if c != "full"}
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

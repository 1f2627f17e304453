"""Synthetic negative speech for wake-word stress runs: every installed voice (festival, flite,
espeak-ng; rate and pitch varied) reading the real-phrasing corpus's commands, none of which
holds the wake word, written as 10-minute 16 kHz WAV files.

Synthetic speech is for stress, never for a reported false-accept rate of real speech
(docs/wake.md): it shows what the second look refuses when the detector fires in noise.

    .venv/bin/python tools/make_wake_negatives.py --minutes 120 --out /tmp/wake-negatives
    .venv/bin/assistant wake eval --negatives /tmp/wake-negatives --snr clean 10 --noise babble --verify
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.audio import Audio, write_wav  # noqa: E402
from sim.voices import Voice, speak, voice_catalog  # noqa: E402

log = logging.getLogger("make_wake_negatives")
CORPUS = ROOT / "core" / "domains" / "slurp_home.jsonl"
FILE_S = 600.0
GAP_S = (0.3, 1.5)


def sentences(word: str) -> list[str]:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    texts = [r["text"] for r in rows if "text" in r]  # the first line is the header
    stem = word.replace("_", " ").split()[-1][:4].lower()
    return sorted({t for t in texts if stem not in t.lower()})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--out", required=True, help="folder for the WAV files (created)")
    ap.add_argument("--word", default="alexa", help="sentences holding this word are left out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts, voices = sentences(args.word), voice_catalog()
    total, parts, length, n = 0.0, [], 0.0, 0
    while total < args.minutes * 60:
        base = rng.choice(voices)
        voice = Voice(
            base.backend, base.name, rate=round(rng.uniform(0.85, 1.15), 2), pitch=round(rng.uniform(-3, 3), 1)
        )
        audio = speak(voice, rng.choice(texts))
        parts += [audio, Audio.silence(rng.uniform(*GAP_S))]
        length += audio.duration_s + parts[-1].duration_s
        total += audio.duration_s + parts[-1].duration_s
        if length >= FILE_S or total >= args.minutes * 60:
            write_wav(out / f"negatives-{n:03d}.wav", Audio.concat(parts))
            log.info("%s: %.0f s (%.0f of %.0f min)", out / f"negatives-{n:03d}.wav", length, total / 60, args.minutes)
            parts, length, n = [], 0.0, n + 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

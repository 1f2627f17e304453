"""Write the synthetic negative speech of `assistant wake eval --synthetic-negatives` as
10-minute 16 kHz WAV files (sim/wake_negatives.py), to play them elsewhere or to keep them.

Synthetic speech is for stress, never for a reported false-accept rate of real speech
(docs/wake.md).

    .venv/bin/python tools/make_wake_negatives.py --minutes 120 --out /tmp/wake-negatives
    .venv/bin/assistant wake eval --negatives /tmp/wake-negatives --snr clean 10 --noise babble --verify
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.audio import write_wav  # noqa: E402
from sim.wake_negatives import synthetic_negatives  # noqa: E402

log = logging.getLogger("make_wake_negatives")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--out", required=True, help="folder for the WAV files (created)")
    ap.add_argument("--word", default="alexa", help="sentences holding this word are left out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for n, audio in enumerate(synthetic_negatives(args.minutes, args.word, args.seed, say=log.info)):
        write_wav(out / f"negatives-{n:03d}.wav", audio)
        log.info("%s: %.0f s", out / f"negatives-{n:03d}.wav", audio.duration_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

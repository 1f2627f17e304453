"""How close the wake model comes when it does not fire: the peak openWakeWord score of each
utterance, spoken by the simulator's synthetic voices in each acoustic condition.

Two kinds of speech: *addressed* ("Alexa, " + a real home command from SLURP devel, CC BY 4.0,
core/domains/slurp_home.jsonl) and *background* (the simulator's own false-wake bait,
core/domains/_out_of_domain.txt, no wake word). Each clip is synthesized, padded and passed
through the condition's channel as the simulator's audio fidelity does, then scored at 80 ms
steps; the peak is kept. Text fidelity draws the near-miss score of a missed wake from these
peaks (sim/wake_peaks.py), which is what lets a lowered, learned wake threshold be simulated.

Usage: python tools/measure_wake_peaks.py --out sim/data/wake_peaks.json [--per-condition 80]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.audio import Audio
from sim.channel import apply, parse_condition
from sim.voices import sample_voice, speak
from sim.wake_peaks import FIRE_THRESHOLD, FORMAT
from stages.wake import openwakeword_model, peak_score

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = ("clean", "pink@20dB", "pink@10dB", "rt0.6", "babble@10dB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-condition", type=int, default=80)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--cache", default=None, help="voice cache folder (synthesis is slow)")
    args = ap.parse_args()
    from openwakeword.model import Model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDAExecutionProvider.*")
        model = Model(wakeword_model_paths=[str(openwakeword_model("alexa"))])
    rows = [json.loads(x) for x in (ROOT / "core/domains/slurp_home.jsonl").read_text().splitlines()[1:]]
    commands = sorted({r["text"] for r in rows if r.get("text")})
    background = [
        s.strip()
        for s in (ROOT / "core/domains/_out_of_domain.txt").read_text().splitlines()
        if s.strip() and not s.startswith("#") and len(s.split()) > 4
    ]
    rng = random.Random(args.seed)
    out: dict = {}
    t0 = time.time()
    for condition in CONDITIONS:
        channel = parse_condition(condition)
        peaks: dict[str, list[float]] = {"addressed": [], "background": []}
        for _ in range(args.per_condition):
            voice = sample_voice(rng)
            for kind, text in (("addressed", f"Alexa, {rng.choice(commands)}"), ("background", rng.choice(background))):
                speech = speak(voice, text, cache_dir=args.cache)
                padded = Audio.concat([Audio.silence(0.4), speech, Audio.silence(0.3)])
                peaks[kind].append(round(peak_score(model, apply(channel, padded, rng.randrange(1 << 30))), 4))
        out[condition] = {k: sorted(v) for k, v in peaks.items()}
        a = np.array(peaks["addressed"])
        print(
            f"{condition}: addressed missed {int((a < FIRE_THRESHOLD).sum())}/{len(a)}, "
            f"background fired {sum(p >= FIRE_THRESHOLD for p in peaks['background'])}/{len(a)} "
            f"({time.time() - t0:.0f} s)",
            flush=True,
        )
    Path(args.out).write_text(
        json.dumps(
            {
                "format": FORMAT,
                "source": "tools/measure_wake_peaks.py: openWakeWord 0.4.0 'alexa' on synthetic voices; "
                "addressed = 'Alexa, ' + SLURP devel home commands (CC BY 4.0)",
                "threshold": FIRE_THRESHOLD,
                "seed": args.seed,
                "peaks": out,
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()

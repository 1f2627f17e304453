"""How often the wake model misses real people saying the wake word: every clip in a folder of
single "alexa" recordings (../shared/data/wakeword/alexa: Picovoice wake-word-benchmark clips,
Apache-2.0), padded with a second of silence, scored by openWakeWord at the configured threshold.
The realistic traffic profile takes its wake-miss scale from this (docs/simulation.md).

Usage: python tools/measure_wake_real.py ../shared/data/wakeword/alexa [--threshold 0.5]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.audio import load_audio
from stages.wake import openwakeword_model, peak_score


def main(folder: Path, threshold: float = 0.5) -> None:
    from openwakeword.model import Model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDAExecutionProvider.*")
        model = Model(wakeword_model_paths=[str(openwakeword_model("alexa"))])
    clips = sorted(folder.glob("*.flac"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    hits, peaks = 0, []
    for clip in clips:
        peak = peak_score(model, load_audio(clip))
        peaks.append(peak)
        hits += peak >= threshold
    print(
        f"{folder}: {hits} of {len(clips)} detected at threshold {threshold} "
        f"(miss rate {1 - hits / len(clips):.1%}); median peak score {np.median(peaks):.2f}"
    )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.5)

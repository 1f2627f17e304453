"""How close the wake model came when it did not fire, for text fidelity.

Measured peaks (tools/measure_wake_peaks.py → sim/data/wake_peaks.json) per acoustic condition,
for speech addressed to the assistant and for background speech. A missed wake draws its peak
from the addressed peaks below the firing threshold; background speech that did not wake draws
from the background peaks below it. With a lowered wake threshold a peak above it wakes.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from core.artifacts import read_json_artifact
from core.errors import InputError

log = logging.getLogger(__name__)

FORMAT = "assistant.wake-peaks/1"
FIRE_THRESHOLD = 0.5  # openWakeWord's default: the error model's wake rates were fitted at it
DEFAULT_PEAKS = Path(__file__).resolve().parent / "data" / "wake_peaks.json"


@dataclass(frozen=True)
class WakePeaks:
    """Sorted sub-threshold peaks per condition and kind ("addressed", "background")."""

    below: Mapping[str, Mapping[str, tuple[float, ...]]]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PEAKS) -> "WakePeaks":
        path = Path(path)
        data = read_json_artifact(
            path, FORMAT, "wake peak measurements", "no wake peak measurements (tools/measure_wake_peaks.py)"
        )
        threshold = float(data.get("threshold", FIRE_THRESHOLD))
        below: dict[str, dict[str, tuple[float, ...]]] = {}
        for condition, kinds in (data.get("peaks") or {}).items():
            below[condition] = {
                kind: tuple(sorted(float(p) for p in peaks if float(p) < threshold)) for kind, peaks in kinds.items()
            }
        if not below:
            raise InputError(path, "no conditions", field="peaks")
        return cls(below)

    def draw(self, condition: str, kind: str, rng: random.Random) -> float:
        """A sub-threshold peak for speech of this kind in this condition (an unknown condition:
        the peaks of all conditions together)."""
        peaks = (self.below.get(condition) or {}).get(kind) or self._pooled(kind)
        if not peaks:
            return 0.0
        return peaks[min(len(peaks) - 1, int(rng.random() * len(peaks)))]

    def _pooled(self, kind: str) -> tuple[float, ...]:
        return tuple(sorted(p for kinds in self.below.values() for p in kinds.get(kind, ())))

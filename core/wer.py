"""Word error rate with the normalization speech benchmarks use (case, punctuation, numbers),
and the percentiles benchmarks report."""

from __future__ import annotations

import math
import re

from core.normalize import spoken_number

_ABBREV = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def normalize_words(text: str) -> list[str]:
    """Lower-case words; digits spelled out ("10" → "ten"), so "10 meters" equals "ten meters"."""
    text = text.lower().replace("%", " percent").replace("-", " ")
    words = re.findall(r"[a-z']+|\d+", text)
    out: list[str] = []
    for w in words:
        if w.isdigit() and len(w) < 7:
            out.extend(spoken_number(int(w)).split())
        else:
            out.append(_ABBREV.get(w, w).strip("'"))
    return [w for w in out if w]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def percentile(values: list[float], q: float, digits: int = 1) -> float | None:
    """The ``q`` quantile (0..1), interpolated between the nearest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), digits)

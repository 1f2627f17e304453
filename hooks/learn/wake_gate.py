"""``assistant learn gate``: the wake gate's threshold, from what production sees.

Two kinds of woken turn say something about the wake score of speech that *was* addressed to
the assistant and of speech that was not, with no annotation:

* **engaged** turns: the request was carried out and the user did not disown it (no barge-in,
  no rephrase, no "no" after it). Someone was talking to the assistant.
* **declined** turns: the assistant read the request as out of domain. Some were people asking
  for something it cannot do; the rest were speech nobody addressed to it, which the detector
  woke on.

A wake's score depends on how the wake word sounded, not on the request after it, so the
addressed share of the declined turns scores like the engaged turns. Above the engaged turns'
median score, declined turns are taken as addressed (false wakes score near the detector's
threshold); that fixes how many declined turns were addressed, and the engaged scores say how
many of those fall below any threshold. The threshold kept maximizes the declined turns
dismissed minus ``1 + ADDRESSED_COST`` times the addressed ones expected among them: dismissing
a request someone made costs them a repeat, so it must be rarer than the false wakes it
silences. The gate stays off (threshold 0) when no threshold gains, or when there are too few
engaged turns to tell.

Only production fields are read (hooks/learn/rewrites.py ``production_view``): never gold or
oracle labels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from assistant.wake_gate import GATE_FORMAT
from core.paths import write_json_atomic
from hooks.learn.rewrites import carried_out, disowned, production_view
from hooks.trace_reader import iter_records

log = logging.getLogger(__name__)

ADDRESSED_COST = 3.0  # a request dismissed though someone made it, against one false wake silenced
MIN_ENGAGED = 30  # engaged turns needed to say how addressed wakes score


def woken_scores(paths: Iterable[str | Path]) -> tuple[list[float], list[float], int]:
    """(engaged turns' wake scores, declined turns' wake scores, sessions read)."""
    engaged: list[float] = []
    declined: list[float] = []
    sessions = set()
    for rec in iter_records(paths):
        if rec.get("event") != "turn_end":
            continue
        view = production_view(rec)
        sessions.add(view["session"])
        score = (view.get("wake") or {}).get("score")
        if score is None or not (view.get("transcript") or "").strip():
            continue  # not begun by the wake word (an answer to a question), or nothing heard
        if view.get("reply_type") == "out_of_domain":
            declined.append(float(score))
        elif carried_out(view) and not disowned(view):
            engaged.append(float(score))
    return engaged, declined, len(sessions)


def choose_threshold(engaged: list[float], declined: list[float], cost: float = ADDRESSED_COST) -> dict:
    """The threshold (and what it is expected to do) from the two kinds of woken turn."""
    off = {"threshold": 0.0, "expected_dismissed": 0, "expected_addressed": 0.0}
    if len(engaged) < MIN_ENGAGED or not declined:
        return off
    e = np.sort(np.asarray(engaged, dtype=np.float64))
    d = np.sort(np.asarray(declined, dtype=np.float64))
    median = float(np.median(e))
    above = float(np.mean(e >= median))
    addressed = float(np.sum(d >= median)) / max(above, 1e-9)  # declined turns someone made
    best, best_gain = off, 0.0
    cuts = np.unique(d)
    for tau in (cuts[:-1] + cuts[1:]) / 2:  # halfway between declined scores: no score sits on a cut
        dismissed = int(np.searchsorted(d, tau, side="left"))  # declined turns scored below tau
        lost = addressed * float(np.searchsorted(e, tau, side="left")) / len(e)
        gain = dismissed - (1.0 + cost) * lost
        if gain > best_gain:
            best_gain = gain
            best = {
                "threshold": round(float(tau), 4),
                "expected_dismissed": dismissed,
                "expected_addressed": round(lost, 1),
            }
    return best


def learn_gate(paths: Iterable[str | Path], out: str | Path, cost: float = ADDRESSED_COST) -> dict:
    """``assistant learn gate``: write the gate (``assistant.wake-gate/1``) and return a summary."""
    started = time.perf_counter()
    paths = list(paths)
    engaged, declined, sessions = woken_scores(paths)
    chosen = choose_threshold(engaged, declined, cost)
    gate = {
        "format": GATE_FORMAT,
        **chosen,
        "addressed_cost": cost,
        "engaged_turns": len(engaged),
        "declined_turns": len(declined),
        "sessions": sessions,
    }
    write_json_atomic(Path(out), gate)
    log.info(
        "wake gate: threshold %.3f from %d engaged and %d declined turns",
        gate["threshold"],
        *map(len, (engaged, declined)),
    )
    return {**gate, "out": str(out), "learn_s": round(time.perf_counter() - started, 2)}


def describe(summary: dict) -> str:
    """One line on a learned gate (``assistant learn gate`` and the loop's report print it)."""
    return (
        f"wake gate: threshold {summary['threshold']} from {summary['engaged_turns']} engaged and "
        f"{summary['declined_turns']} declined woken turns (expected to dismiss "
        f"{summary['expected_dismissed']}, {summary['expected_addressed']} of them addressed)"
    )

"""``assistant learn wake``: each device's wake threshold, from the near misses it logged.

A device keeps one thing of speech it did not wake for: a *near miss*, the detector's peak when
it came close (``near_miss`` trace records, ``Utterance.near_miss``). A near miss followed
within ``REPEAT_S`` by a wake, or by another near miss, is someone who had to say the wake word
again: waking on it would have served them at once. A near miss nobody followed up is speech not meant for the device, or
someone who gave up; waking on it risks a false wake. For each threshold below the configured
one the learner counts both among the near misses it would have woken for, and keeps the
threshold with the most repeats saved net of ``UNHEARD_COST`` times the others.

Two layers, as the rewrites have: a device whose own log holds at least ``MIN_OWN`` repeated
near misses, and on which its own best threshold gains ``OWN_MARGIN`` more than the global one,
gets its own (the personal layer: a voice the detector scores low, a loud TV); every other
device gets the one learned from all near misses together (the global layer), which needs
``MIN_REPEATED`` of them. A layer with no gain keeps the configured threshold.

Only production records are read: near misses and the wake events of woken turns, with their
times. Never gold, oracle labels or the turns the device did not wake for.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from assistant.wake_threshold import THRESHOLD_FORMAT
from core.paths import write_json_atomic
from hooks.trace_reader import read_records, trace_files
from stages.wake import NEAR_MISS_FLOOR

log = logging.getLogger(__name__)

REPEAT_S = 10.0  # speech that woke it this soon after a near miss ended: the wake word said again
UNHEARD_COST = 1.0  # a near miss nobody repeated, woken for, against one repeat saved
MIN_REPEATED = 10  # repeated near misses the global layer needs
MIN_OWN = 4  # a device's own repeated near misses for a threshold of its own
OWN_MARGIN = 3.0  # net repeats saved its own threshold must add, on its own log, over the global one
STEP = 0.025  # thresholds tried: the configured one down to the lowest peak a near miss logs


@dataclass(frozen=True)
class NearMiss:
    user: str
    score: float
    repeated: bool  # a wake or another near miss followed within REPEAT_S


def _speech_start(turn_end: dict) -> float:
    """When a woken turn's speech began, in session time: the wake stage's utterance, or the
    wake word's own start where a streaming listener cut the turn (no wake stage ran)."""
    utt = ((turn_end.get("stages") or {}).get("wake") or {}).get("output") or {}
    if "start_s" in utt:
        return float(utt["start_s"] or 0.0)
    wake = turn_end.get("wake") or {}
    return float(wake.get("start_s", turn_end.get("start_s")) or 0.0)


def session_near_misses(records: list[dict]) -> list[NearMiss]:
    """The near misses of one session's trace, each marked repeated or not."""
    start = next((r for r in records if r.get("event") == "session_start"), {})
    user = str(((start.get("meta") or {}).get("user") or {}).get("id") or "user")
    wakes = sorted(_speech_start(r) for r in records if r.get("event") == "turn_end" and r.get("wake") is not None)
    near = [r for r in records if r.get("event") == "near_miss" and r.get("score") is not None]
    tries = sorted([*wakes, *(float(r.get("start_s") or 0.0) for r in near)])
    out = []
    for r in near:
        t = float(r.get("end_s") or r.get("start_s") or 0.0)
        repeated = any(t < w <= t + REPEAT_S for w in tries)
        out.append(NearMiss(user, float(r["score"]), repeated))
    return out


def read_near_misses(paths: Iterable[str | Path]) -> tuple[list[NearMiss], int]:
    """(every near miss, sessions read)."""
    found: list[NearMiss] = []
    sessions = 0
    for f in trace_files(paths):
        sessions += 1
        found += session_near_misses(read_records(f))
    return found, sessions


def net_gain(near: list[NearMiss], threshold: float | None, cost: float = UNHEARD_COST) -> float:
    """Repeats saved minus ``cost`` × the others, over the near misses ``threshold`` wakes for."""
    if threshold is None:
        return 0.0
    return sum(1.0 if n.repeated else -cost for n in near if n.score >= threshold)


def choose_threshold(near: list[NearMiss], configured: float, min_repeated: int, cost: float = UNHEARD_COST) -> dict:
    """The threshold with the best net gain over ``near`` (None: keep the configured one)."""
    repeated = sum(n.repeated for n in near)
    best: dict = {
        "threshold": None,
        "gain": 0.0,
        "repeats_saved": 0,
        "unheard_woken": 0,
        "repeated": repeated,
        "near": len(near),
    }
    if repeated < min_repeated:
        return best
    steps = int(round((configured - NEAR_MISS_FLOOR) / STEP))
    for i in range(1, steps + 1):
        tau = round(configured - i * STEP, 4)
        gain = net_gain(near, tau, cost)
        if gain > best["gain"]:
            woken = [n for n in near if n.score >= tau]
            saved = sum(n.repeated for n in woken)
            best = {**best, "threshold": tau, "gain": gain, "repeats_saved": saved, "unheard_woken": len(woken) - saved}
    return best


def learn_wake_threshold(
    paths: Iterable[str | Path], out: str | Path, configured: float = 0.5, cost: float = UNHEARD_COST
) -> dict:
    """``assistant learn wake``: write the thresholds (``assistant.wake-threshold/1``) and
    return a summary."""
    started = time.perf_counter()
    near, sessions = read_near_misses(paths)
    everyone = choose_threshold(near, configured, MIN_REPEATED, cost)
    by_user: dict[str, list[NearMiss]] = defaultdict(list)
    for n in near:
        by_user[n.user].append(n)
    users = {}
    for user, own in sorted(by_user.items()):
        chosen = choose_threshold(own, configured, MIN_OWN, cost)
        if chosen["threshold"] is None or chosen["threshold"] == everyone["threshold"]:
            continue
        if chosen["gain"] - net_gain(own, everyone["threshold"], cost) >= OWN_MARGIN:
            users[user] = chosen["threshold"]
    artifact = {
        "format": THRESHOLD_FORMAT,
        "global": everyone["threshold"],
        "users": users,
        "configured": configured,
        "unheard_cost": cost,
        "near_misses": len(near),
        "repeated": everyone["repeated"],
        "expected_repeats_saved": everyone["repeats_saved"],
        "expected_unheard_woken": everyone["unheard_woken"],
        "sessions": sessions,
    }
    write_json_atomic(Path(out), artifact)
    log.info(
        "wake thresholds: global %s, %d devices of their own, from %d near misses (%d repeated)",
        everyone["threshold"],
        len(users),
        len(near),
        everyone["repeated"],
    )
    return {**artifact, "out": str(out), "learn_s": round(time.perf_counter() - started, 2)}


def describe(summary: dict) -> str:
    """One line on learned thresholds (``assistant learn wake`` and the loop's report print it)."""
    return (
        f"wake thresholds: global {summary['global']}, {len(summary['users'])} devices of their own, from "
        f"{summary['near_misses']} near misses ({summary['repeated']} repeated within seconds)"
    )

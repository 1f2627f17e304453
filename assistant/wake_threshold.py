"""Learned wake thresholds: a device wakes for the voice it hears, not for an average one.

A wake-word detector misses some people far more often than others (a voice, an accent, a
noisy room): their wake word peaks at 0.2-0.4 where the configured threshold asks 0.5, and
they must say it again. Such a device logs near misses (the peak of speech that did not wake
it, ``Utterance.near_miss``); a near miss followed within seconds by a wake is someone who had
to repeat themselves. hooks/learn/wake_threshold.py learns from those a lower threshold for the
devices that need one: the device's own (its user's, the personal layer) when its history
is long enough, everyone's (the global layer) otherwise.

Off unless a threshold file is named in ``rewrite.artifacts``. The runner gives each session's
device its threshold (``DeviceContext.wake_threshold``); the wake stage applies it. A wake that
only the lowered threshold let through scores below the configured threshold, and the wake
gate (assistant/wake_gate.py) still dismisses it when it is speech the assistant cannot serve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from core.artifacts import artifact_number
from core.errors import InputError

log = logging.getLogger(__name__)

THRESHOLD_FORMAT = "assistant.wake-threshold/1"


def _threshold(path: Path, value, where: str) -> float | None:
    """A threshold in (0, 1], or None (null: the configured one)."""
    return None if value is None else artifact_number(path, value, where, 0.0, 1.0, open_low=True)


@dataclass(frozen=True)
class WakeThresholds:
    everyone: float | None  # the global layer; None: the configured threshold
    users: Mapping[str, float] = field(default_factory=dict)  # the personal layer

    def for_user(self, user: str) -> float | None:
        """The threshold of the device this user talks to: their own when learned."""
        return self.users.get(user, self.everyone)

    @classmethod
    def load(cls, path: Path, raw: dict) -> "WakeThresholds":
        everyone = _threshold(path, raw.get("global"), "global")
        users_raw = raw.get("users") or {}
        if not isinstance(users_raw, dict):
            raise InputError(path, "must map user ids to thresholds", field="users")
        users = {}
        for user, value in users_raw.items():
            t = _threshold(path, value, f"users.{user}")
            if t is not None:
                users[str(user)] = t
        log.info("wake thresholds from %s: global %s, %d users of their own", path, everyone, len(users))
        return cls(everyone, users)

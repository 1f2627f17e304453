"""The wake gate: speech nobody addressed to the assistant gets no answer.

A wake-word detector fires now and then on speech near the device that was not meant for it (a
TV, people talking). The assistant then declines whatever it heard ("Sorry, I can't help with
that") to people who were not talking to it. The gate is learned from traces
(hooks/learn/wake_gate.py): when the wake word scored below the learned threshold and the NLU
reads the request as out of domain, the request is dismissed silently, and the assistant goes
back to sleep as if it had never woken. A request it understands is never dismissed.

Off unless a gate file is named in ``rewrite.artifacts``; the rewrite step applies it and
traces the decision (source ``gate``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.artifacts import artifact_number

log = logging.getLogger(__name__)

GATE_FORMAT = "assistant.wake-gate/1"


@dataclass(frozen=True)
class WakeGate:
    threshold: float  # a wake scored below this, on a request read as out of domain, is dismissed

    def doubts(self, wake_score: float | None) -> bool:
        """Whether a wake this sure may have been speech addressed to nobody."""
        return wake_score is not None and wake_score < self.threshold

    def dismisses(self, wake_score: float | None, reading: Any) -> bool:
        """``reading``: the NLU's interpretation of the request (None: not read)."""
        return self.doubts(wake_score) and reading is not None and bool(getattr(reading, "out_of_domain", False))

    @classmethod
    def load(cls, path: Path, raw: dict) -> "WakeGate":
        value = artifact_number(path, raw.get("threshold"), "threshold", 0.0, 1.0)
        log.info("wake gate from %s: threshold %.3f", path, value)
        return cls(value)

"""The oracle's verdict on each rewrite (docs/self-learning.md): the turn the rewrite step
changed (or dismissed, by the wake gate) is run again from the same state without the step; a
*win* turns a defect into a success, a *loss* a success into a defect. A turn that only a
learned wake threshold woke (its wake scored below the configured threshold) is judged against
staying asleep, source ``wake``."""

from __future__ import annotations

import logging
from dataclasses import replace

from core.correctness import judge
from core.records import frozen_map
from hooks.bus import LABEL, HookBus, Interceptor
from sim.oracle import fault_kinds, first_stage, original_input

log = logging.getLogger(__name__)


class RewriteJudge(Interceptor):
    """Labels each turn the rewrite step changed with what the rewrite did, by the oracle:
    the turn is run again from the same state without the step (``labels.rewrite``)."""

    order = LABEL  # reads the finished turn, as the oracle does

    def __init__(self, assistant, replay_faults=None):
        self.assistant = assistant
        self.replay_faults = replay_faults
        self.configured_threshold = float(assistant.config["wake.threshold"])
        self._before: dict = {}
        warm = getattr(assistant.rewriter, "warm", None)
        if callable(warm):
            warm()

    def start_turn(self, turn, session) -> None:
        self._before[session.id] = session.snapshot()

    def finish_turn(self, turn, session):
        before = self._before.pop(session.id, None)
        woken_below = turn.wake is not None and turn.wake.score < self.configured_threshold
        if woken_below and turn.gold is not None and turn.gold.wake is not None:
            return self._label(turn, "wake", judge(turn), turn.gold.wake is False)
        rw = turn.rewrite
        if (
            before is None
            or rw is None
            or not (rw.changed or rw.reply is not None or rw.dismissed)
            or turn.gold is None
        ):
            return turn
        bus = HookBus()
        kinds = fault_kinds(turn.labels.get("faults") or ())
        if kinds and self.replay_faults is not None:
            bus.add_interceptor(self.replay_faults(kinds))
        shadow = self.assistant.fork(bus)
        shadow.rewriter = None
        plain = shadow.run_turn(before.snapshot(), original_input(turn), start=first_stage(turn), stop="respond")
        return self._label(turn, rw.source, judge(turn), judge(plain))

    @staticmethod
    def _label(turn, source: str, now, then):
        label = {
            "source": source,
            "win": bool(now and not then),
            "loss": bool(then and not now),
            "without": "correct" if then else "defect",
        }
        return replace(turn, labels=frozen_map({**turn.labels, "rewrite": label}))

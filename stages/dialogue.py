"""The dialogue state after a turn, derived from the turn's records (a pure function)."""

from __future__ import annotations

from core.records import frozen_map
from core.session import DialogueState, Pending, Turn

ASKING = ("elicit", "confirm", "clarify")
EXECUTED = ("ok", "unchanged", "empty", "set_point")


def next_dialogue(prev: DialogueState, turn: Turn) -> DialogueState:
    outcome = turn.outcome
    if outcome is None:  # nothing was heard, or a stage failed
        return DialogueState(last_intent=prev.last_intent, last_args=prev.last_args, salient=prev.salient)
    if outcome.status in ASKING and outcome.intent:
        options = ()
        res = turn.resolution
        if outcome.status == "clarify" and res is not None and res.clarification is not None:
            options = res.clarification.options
        pending = Pending(
            kind=outcome.status,
            intent=outcome.intent,
            args=outcome.args,
            slot=outcome.expects,
            options=options,
            question=outcome.reply,
        )
        return DialogueState(
            pending=pending, last_intent=prev.last_intent, last_args=prev.last_args, salient=prev.salient
        )
    if outcome.status in EXECUTED and outcome.api:
        salient = dict(prev.salient)
        for e in turn.resolution.entities if turn.resolution else ():
            if e.id is not None and e.slot in outcome.args:
                salient[e.type] = frozen_map({"id": e.id, "name": e.name})
        return DialogueState(last_intent=outcome.intent, last_args=outcome.args, salient=frozen_map(salient))
    return DialogueState(last_intent=prev.last_intent, last_args=prev.last_args, salient=prev.salient)

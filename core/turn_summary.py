"""A turn as one JSON object (replay --json, traces); its correctness comes from core/correctness.py."""

from __future__ import annotations

import logging

from core.correctness import judge
from core.records import to_jsonable
from core.session import Gold, Turn

log = logging.getLogger(__name__)


def gold_summary(gold: Gold | None) -> dict | None:
    if gold is None:
        return None
    return {
        "transcript": gold.transcript,
        "intent": gold.intent,
        "slots": to_jsonable(dict(gold.slots)),
        "entities": to_jsonable(dict(gold.entities)),
        "out_of_domain": gold.out_of_domain,
        "wake": gold.wake,
        **({"act": gold.act, "spans": to_jsonable(gold.spans)} if gold.act else {}),
    }


def turn_summary(turn: Turn) -> dict:
    """The per-turn object of ``replay --json`` (docs/commands.md "Replay output")."""
    interp, res, out = turn.interpretation, turn.resolution, turn.outcome
    intent = (
        out.intent
        if out is not None and out.intent not in ("Affirm", "Deny")
        else (res.intent if res is not None else (interp.intent if interp is not None else None))
    )
    summary = {
        "session": turn.session,
        "turn": turn.index,
        "wake": {
            "word": turn.wake.word,
            "score": round(turn.wake.score, 3),
            "start_s": turn.wake.start_s,
            "end_s": turn.wake.end_s,
            "heard": turn.wake.heard,
        }
        if turn.wake
        else None,
        "transcript": turn.transcript.text if turn.transcript is not None else turn.text_input,
        "intent": intent,
        "slots": {s.name: to_jsonable(s.value) for s in interp.slots} if interp is not None else {},
        "entities": {e.slot: e.id for e in res.entities} if res is not None else {},
        "reply": out.reply if out is not None else None,
        "reply_audio": turn.reply_audio,
        "ms": {k: round(v, 1) for k, v in turn.ms.items()},
        "errors": [{"stage": e.stage, "code": e.code, "message": e.message} for e in turn.errors],
    }
    if turn.gold is not None:
        summary["gold"] = gold_summary(turn.gold)
        summary["correct"] = judge(turn)
    return summary

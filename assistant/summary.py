"""A turn as one JSON object (replay --json, traces), and whether its outcome met the gold."""
from __future__ import annotations

import json
import logging
from typing import Any

from assistant.records import Outcome, to_jsonable
from assistant.session import Gold, Turn

log = logging.getLogger(__name__)


def _canon(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True)


def expected_args(gold: Gold) -> dict[str, Any]:
    return {**dict(gold.slots), **dict(gold.entities)}


QUESTIONS = ("elicit", "confirm", "clarify")   # it asks instead of acting
SETBACKS = ("apology", "out_of_domain")         # it says sorry or declines
BROKEN = ("failed", "error")                    # it broke: never what anyone asked for


def judge(turn: Turn) -> bool | None:
    """True when the outcome matches the user's goal; None when there is no gold outcome.

    Upstream differences that change nothing (a dropped "the") do not matter: only the
    request the assistant acted on (intent and arguments), the kind of reply it gave
    (:func:`reply_fits`) or its out-of-domain decision count. This is the one rule: replay,
    traces, the oracle's labels and the simulated users all ask it.
    """
    gold = turn.gold
    if gold is None:
        return None
    woke = turn.utterance is None or turn.utterance.heard
    if gold.wake is False:                  # nobody addressed it: right only if it stayed asleep
        return not woke
    if gold.wake is True and not woke:      # addressed, and it did not hear the wake word
        return False
    if not gold.has_outcome:
        return None
    out = turn.outcome
    if out is None:
        return False
    if gold.out_of_domain:
        return out.reply_type == "out_of_domain"
    if not reply_fits(gold, out):
        return False
    return out.intent == gold.intent and _canon(dict(out.args)) == _canon(expected_args(gold))


def reply_fits(gold: Gold, out: Outcome) -> bool:
    """Whether the kind of reply can be right for an in-domain gold, whatever request it names.

    A failure never is. A gold ``reply_type`` names the one kind that is right. Without one,
    a decline or an apology ("Sorry, I couldn't find that") is wrong even when the request
    behind it was understood, and a question is right only when the gold request gives it
    cause: an elicit or clarify for a slot the gold request lacks (the user left it out), or a
    confirm, which the spec demands before acting on that intent. The caller still checks that
    the request asked about is the gold's.
    """
    if out.status in BROKEN:
        return False
    if gold.reply_type is not None:
        return out.reply_type == gold.reply_type
    if out.reply_type in SETBACKS:
        return False
    if out.reply_type == "confirm":         # the spec asks before acting on this intent
        return True
    if out.reply_type in QUESTIONS:         # asking for what the user did say is a miss
        return out.expects is not None and out.expects not in expected_args(gold)
    return True


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
    """The per-turn object of ``replay --json`` (README "Replay output")."""
    interp, res, out = turn.interpretation, turn.resolution, turn.outcome
    intent = out.intent if out is not None and out.intent not in ("Affirm", "Deny") else (
        res.intent if res is not None else (interp.intent if interp is not None else None))
    summary = {
        "session": turn.session,
        "turn": turn.index,
        "wake": {"word": turn.wake.word, "score": round(turn.wake.score, 3), "start_s": turn.wake.start_s,
                 "end_s": turn.wake.end_s} if turn.wake else None,
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

"""Whether a turn's outcome met the user's goal: the one correctness rule that replay, traces,
the oracle's labels and the simulated users all ask."""

from __future__ import annotations

import json
from typing import Any

from core.records import Outcome, to_jsonable
from core.session import Gold, Turn


def _canon(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True)


def expected_args(gold: Gold) -> dict[str, Any]:
    return {**dict(gold.slots), **dict(gold.entities)}


QUESTIONS = ("elicit", "confirm", "clarify")  # it asks instead of acting
SETBACKS = ("apology", "out_of_domain")  # it says sorry or declines
BROKEN = ("failed", "error")  # it broke: never what anyone asked for


def responded_as_addressed(turn: Turn) -> bool:
    """Whether the assistant took the turn as speech addressed to it: it woke (or the turn
    needed no wake word) and did not dismiss the request as nobody's (the wake gate)."""
    heard = turn.utterance is None or turn.utterance.heard
    return heard and not (turn.rewrite is not None and turn.rewrite.dismissed)


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
    woke = responded_as_addressed(turn)
    if gold.wake is False:  # nobody addressed it: right only if it stayed asleep
        return not woke
    if gold.wake is True and not woke:  # addressed, and it did not hear the wake word
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
    if out.reply_type == "confirm":  # the spec asks before acting on this intent
        return True
    if out.reply_type in QUESTIONS:  # asking for what the user did say is a miss
        return out.expects is not None and out.expects not in expected_args(gold)
    return True

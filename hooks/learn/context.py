"""Dialogue context of a turn: how the turns before and after it relate to it.

A user whose request failed says it again (the same words, or other words), corrects a part
("no, I said the garage"), answers a question without the wake word, or gives up; one whose
request worked moves on to something else. These cues compare a turn with its neighbors among
the turns a production trace would hold.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from hooks.signals import is_negative, jaccard

log = logging.getLogger(__name__)

PAIR_KEYS = (
    "sim",
    "jaccard",
    "same_text",
    "same_intent",
    "same_entities",
    "same_slots",
    "same_outcome",
    "gap_s",
    "pause_s",
    "no_wake",
    "negative",
    "said",
    "slot_words_repeated",
    "runner_up_same_intent",
    "untagged_now_tagged",
    "missing",
)
_SAID = re.compile(r"\bi said\b|\bi meant\b|\bnot what i\b")


def _text(r: dict) -> str:
    return (r.get("transcript") or "").strip().lower()


def _slots(r: dict) -> list[dict]:
    nlu = ((r.get("stages") or {}).get("nlu") or {}).get("output") or {}
    return [s for s in (nlu.get("slots") or []) if isinstance(s, dict)]


def _slot_words(r: dict) -> list[str]:
    return [str(s.get("text")).lower() for s in _slots(r) if s.get("text")]


def _slot_types(r: dict) -> set[str]:
    return {str(s.get("type")) for s in _slots(r)}


def _outcome(r: dict) -> tuple:
    return (
        r.get("intent"),
        repr(sorted((r.get("slots") or {}).items())),
        repr(sorted((r.get("entities") or {}).items())),
        r.get("reply"),
    )


@dataclass(frozen=True)
class Reading:
    """What the feature builder already made of a turn that its neighbors are compared with."""

    vec: np.ndarray | None = None  # transcript embedding
    runner_up: str | None = None  # the NLU's second-best intent
    untagged: frozenset = frozenset()  # types of values the words name that no slot took


def pair(a: dict, b: dict | None, xa: Reading, xb: Reading | None) -> dict[str, float]:
    """How turn ``b`` (a neighbor) relates to turn ``a``: the user saying the same again, a
    correction, the intent the NLU ranked second in ``a`` turning up in ``b``, a value ``a``'s
    words held that no slot took becoming ``b``'s slot (the user insisting on it)."""
    if b is None:
        return {k: 0.0 for k in PAIR_KEYS} | {"missing": 1.0}
    ta, tb = _text(a), _text(b)
    words = _slot_words(a)
    return {
        "sim": float(np.dot(xa.vec, xb.vec)) if xa.vec is not None and xb.vec is not None and ta and tb else 0.0,
        "jaccard": jaccard(ta, tb),
        "same_text": float(bool(ta) and ta == tb),
        "same_intent": float(a.get("intent") is not None and a.get("intent") == b.get("intent")),
        "same_entities": float(bool(a.get("entities")) and a.get("entities") == b.get("entities")),
        "same_slots": float(bool(a.get("slots")) and a.get("slots") == b.get("slots")),
        "same_outcome": float(a.get("intent") is not None and _outcome(a) == _outcome(b)),
        "gap_s": float(np.clip(abs(_num(b.get("start_s")) - _num(a.get("start_s"))), 0, 60)),
        "pause_s": float(np.clip(pause(a, b), -10, 30)),
        "no_wake": float(b.get("wake") is None),
        "negative": float(is_negative(tb)) if tb else 0.0,
        "said": float(bool(_SAID.search(tb))),
        "slot_words_repeated": (sum(w in tb for w in words) / len(words)) if words and tb else 0.0,
        "runner_up_same_intent": float(xa.runner_up is not None and xa.runner_up == b.get("intent")),
        "untagged_now_tagged": float(len(xa.untagged & _slot_types(b))),
        "missing": 0.0,
    }


def reply_end(r: dict) -> float:
    """Session seconds at which a turn's reply ended: as the trace says (``reply_end_s``), or,
    in traces from before it did, its processing after the utterance and then its audio."""
    if r.get("reply_end_s") is not None:
        return _num(r["reply_end_s"])
    ms = r.get("ms") or {}
    processing = sum(_num(v) for k, v in ms.items() if k != "wake") / 1000.0
    reply_s = _num((((r.get("stages") or {}).get("tts") or {}).get("signals") or {}).get("reply_s"))
    return _num(r.get("start_s")) + processing + reply_s


def input_start(r: dict) -> float:
    """Session seconds at which the user began a turn: the wake stage's utterance start, else the
    end of the utterance less the recognized words' extent."""
    utt = ((r.get("stages") or {}).get("wake") or {}).get("output") or {}
    if "start_s" in utt:
        return _num(utt.get("start_s"))
    words = (((r.get("stages") or {}).get("asr") or {}).get("output") or {}).get("words") or []
    extent = max((_num(w.get("end_s")) for w in words if isinstance(w, dict)), default=0.0)
    return _num(r.get("start_s")) - extent


def pause(a: dict, b: dict) -> float:
    """From the end of ``a``'s reply to the start of ``b`` (negative: ``b`` spoke over it);
    for a previous turn ``a`` and this turn ``b`` the same way round."""
    first, second = (a, b) if _num(a.get("start_s")) <= _num(b.get("start_s")) else (b, a)
    return input_start(second) - reply_end(first)


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0

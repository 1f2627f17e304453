"""Implicit user signals: what the user did around a turn, read from the session alone.

These are the defect cues a production assistant has without gold: the user rephrasing the
request, saying "no, that's wrong", interrupting the reply, pausing, or giving up. Signals of a
turn depend on the next turn, so they are computed once that turn (or the session's end) is known.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Sequence

from core.session import Turn
from core.wer import normalize_words

NEGATIVE = re.compile(
    r"^(?:no|nope|nah|wrong|stop|cancel|never mind|nevermind)\b"
    r"|\b(?:that's|that is|you're|you are) (?:not|wrong)\b"
    r"|\bnot what i (?:said|asked|meant|wanted)\b|\bi said\b|\bi didn't say\b|\bwrong\b"
)
FAILURE_REPLIES = ("apology", "out_of_domain", "elicit", "clarify", "confirm")
REPHRASE_COSINE = 0.75
REPHRASE_JACCARD = 0.5
REPHRASE_WINDOW_S = 60.0
SECONDS_PER_REPLY_CHAR = 0.065  # how long a reply that was not synthesized (simulation) takes to say


@dataclass(frozen=True)
class Signals:
    barge_in: bool = False  # the user spoke over this turn's reply
    time_to_next_turn_s: float | None = None  # from the end of this reply to the next user turn
    rephrase_of_previous: bool = False  # this turn restates the previous request
    similarity_to_previous: float | None = None
    lexical_overlap_previous: float | None = None
    next_is_rephrase: bool = False  # the user restated this turn's request next
    negative_feedback: bool = False  # this turn is "no", "that's wrong", "stop", …
    next_negative_feedback: bool = False  # the user's next turn said so about this one
    abandoned: bool = False  # no further turn after a reply that did not serve
    repeat_count: int = 0  # consecutive restatements ending in this turn

    def to_json(self) -> dict:
        return asdict(self)


def text_of(turn: Turn) -> str:
    if turn.transcript is not None:
        return turn.transcript.text
    return turn.text_input or ""


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def jaccard(a: str, b: str) -> float:
    wa, wb = words(a), words(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def unsure_words(heard: Iterable[tuple[str, float]], below: float) -> set[str]:
    """The words of (word, recognizer probability) pairs heard below ``below``, normalized as
    requests are compared (``core.wer.normalize_words``: "5" is "five", "30%" "thirty percent"):
    where the recognizer itself doubts what it heard."""
    return {n for w, p in heard if p < below for n in normalize_words(w)}


def is_negative(text: str) -> bool:
    return bool(NEGATIVE.search(text.lower().strip()))


def reply_window(turn: Turn) -> tuple[float, float]:
    """When this turn's reply played, in session time: after processing (the turn's modelled
    latency, else its stages' measured times), for the length of its audio — or, for a reply
    that was not synthesized, of its words said. (start, start) when there was no reply."""
    if turn.latency_s is not None:
        processing = turn.latency_s
    else:
        processing = sum(v for k, v in turn.ms.items() if k != "wake") / 1000.0
    start = turn.start_s + processing
    if turn.speech is not None:
        duration = turn.speech.audio.duration_s
    elif turn.outcome is not None and turn.outcome.reply:
        duration = len(turn.outcome.reply) * SECONDS_PER_REPLY_CHAR
    else:
        duration = 0.0
    return start, start + duration


def input_start(turn: Turn) -> float:
    if turn.utterance is not None:
        return turn.utterance.start_s
    return turn.start_s


def _rephrase(
    prev: Turn, turn: Turn, similarity: Callable[[str, str], float] | None
) -> tuple[bool, float | None, float]:
    a, b = text_of(prev), text_of(turn)
    if not a.strip() or not b.strip() or input_start(turn) - prev.start_s > REPHRASE_WINDOW_S:
        return False, None, 0.0
    lexical = jaccard(a, b)
    cosine = similarity(a, b) if similarity is not None else None
    if is_negative(b) and len(words(b)) <= 3:
        return False, cosine, lexical  # a bare "no" is feedback, not a restatement
    same = lexical >= REPHRASE_JACCARD or (cosine is not None and cosine >= REPHRASE_COSINE)
    return same and a.strip().lower() != "", cosine, lexical


def session_signals(
    turns: Sequence[Turn], similarity: Callable[[str, str], float] | None = None, ended: bool = True
) -> list[Signals]:
    """Signals for every turn; the last turn's forward-looking signals need ``ended``."""
    out: list[Signals] = []
    rephrases = []
    for i, turn in enumerate(turns):
        prev = turns[i - 1] if i > 0 else None
        if prev is not None:
            rephrases.append(_rephrase(prev, turn, similarity))
        else:
            rephrases.append((False, None, 0.0))
    for i, turn in enumerate(turns):
        nxt = turns[i + 1] if i + 1 < len(turns) else None
        is_reph, cosine, lexical = rephrases[i]
        count = 0
        j = i
        while j > 0 and rephrases[j][0]:
            count += 1
            j -= 1
        reply_start, reply_end = reply_window(turn)
        served = turn.outcome is not None and turn.outcome.reply_type not in FAILURE_REPLIES and not turn.errors
        out.append(
            Signals(
                barge_in=bool(
                    nxt is not None and reply_end > reply_start and (nxt.barge_in or input_start(nxt) < reply_end)
                ),
                time_to_next_turn_s=round(input_start(nxt) - reply_end, 3) if nxt is not None else None,
                rephrase_of_previous=is_reph,
                similarity_to_previous=round(cosine, 4) if cosine is not None else None,
                lexical_overlap_previous=round(lexical, 4) if i > 0 else None,
                next_is_rephrase=bool(nxt is not None and rephrases[i + 1][0]),
                negative_feedback=is_negative(text_of(turn)),
                next_negative_feedback=bool(nxt is not None and is_negative(text_of(nxt))),
                abandoned=bool(nxt is None and ended and not served and turn.outcome is not None),
                repeat_count=count,
            )
        )
    return out

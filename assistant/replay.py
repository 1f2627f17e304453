"""Replaying recorded sessions through the assistant, turn by turn, deterministically."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

from assistant.recorded_sessions import RecordedSession
from assistant.runner import Assistant
from core.errors import InputError
from core.pipeline import STAGES
from core.records import Utterance
from core.session import Gold
from core.turn_summary import gold_summary, turn_summary

log = logging.getLogger(__name__)

# A gold command's at_s is where its wake word ends (docs/wake.md); the detector fires from
# inside the word to shortly after it: a detection in [at_s - WORD_S, at_s + LAG_S] is that word.
WAKE_WORD_S = 1.5
WAKE_LAG_S = 0.5


def missed_summary(session: str, at_s: float, gold: Gold, near_miss: float | None = None) -> dict:
    """The ``replay --json`` record of a gold command no wake word started (``near_miss``: the
    detector's peak there, when it came close)."""
    out = {
        "session": session,
        "turn": None,
        "missed": True,
        "at_s": at_s,
        "gold": gold_summary(gold),
        "correct": False,
    }
    if near_miss is not None:
        out["near_miss"] = near_miss
    return out


class _NearMisses:
    """Watches the bus for the near misses one session's stream traces (it changes nothing)."""

    def __init__(self, session: str):
        self.session = session
        self.heard: list[Utterance] = []

    def on_event(self, event) -> None:
        if event.kind == "near_miss" and event.session == self.session:
            self.heard.append(event.data)


def near_miss_at(near: list[Utterance], at_s: float) -> float | None:
    """The highest near-miss peak whose speech could hold a wake word ending at ``at_s``."""
    peaks = [
        n.near_miss for n in near if n.near_miss is not None and n.start_s - WAKE_LAG_S <= at_s <= n.end_s + WAKE_LAG_S
    ]
    return max(peaks) if peaks else None


class GoldMatcher:
    """Pairs commands found in a continuous recording with the gold commands it contains."""

    def __init__(self, rec: RecordedSession):
        self._open = [(t.at_s, t.gold) for t in rec.turns if t.at_s is not None]
        self.used: set[int] = set()

    def __call__(self, wake_s: float) -> Gold:
        best, best_d = None, None
        for i, (at, _gold) in enumerate(self._open):
            d = abs(at - wake_s)
            if i not in self.used and at - WAKE_WORD_S <= wake_s <= at + WAKE_LAG_S and (best_d is None or d < best_d):
                best, best_d = i, d
        if best is None:
            return Gold(wake=False)  # a wake with no command there: a false accept
        self.used.add(best)
        return self._open[best][1] or Gold(wake=True)

    def missed(self) -> list[tuple[float, Gold | None]]:
        return [(at, g) for i, (at, g) in enumerate(self._open) if i not in self.used]


def replay(assistant: Assistant, rec: RecordedSession, stop: str = "tts") -> Iterator[dict]:
    """Run a recorded session; yields one summary per turn (and one per missed gold command).

    Reply audio is written where ``assistant.reply_dir`` points, if anywhere.
    """
    if stop == "wake":
        yield from _wakes_only(assistant, rec)
        return
    start = "nlu" if not rec.continuous and all(t.audio is None for t in rec.turns) else "asr"
    assistant.stages.prepare(STAGES[STAGES.index(start) : STAGES.index(stop) + 1])
    session = assistant.new_session(
        rec.id,
        world=rec.world,
        device=rec.device,
        user=rec.user,
        start_time=rec.start_time,
        meta={"source": rec.path, **rec.meta},
    )
    try:
        if rec.continuous:
            matcher = GoldMatcher(rec)
            step = int(0.5 * rec.stream.sample_rate)
            chunks = (rec.stream.samples[i : i + step] for i in range(0, len(rec.stream.samples), step))
            near = assistant.bus.add_observer(_NearMisses(session.id))
            try:
                for turn in assistant.run_stream(
                    session,
                    chunks,
                    gold_for=matcher if rec.turns else None,
                    source=Path(rec.stream_path).name,
                    stop=stop,
                ):
                    yield turn_summary(turn)
            finally:
                assistant.bus.remove_observer(near)
            for at, gold in matcher.missed():
                yield missed_summary(rec.id, at, gold, near_miss_at(near.heard, at))
            return
        offset = 0.0
        for i, rt in enumerate(rec.turns):
            following = rec.turns[i + 1] if i + 1 < len(rec.turns) else None
            if following is not None and following.audio is not None:
                # the next command is known: recognize it while this turn is answered
                assistant.decode_ahead(Utterance(audio=following.audio), stop)
            if rt.audio is not None:
                turn = assistant.utterance_turn(
                    session, rt.audio, source=Path(rt.audio_path).name, gold=rt.gold, start_s=offset
                )
                offset += rt.audio.duration_s + 6.0
                turn = assistant.run_turn(session, turn, start="asr", stop=stop)
            else:
                turn = assistant.text_turn(session, rt.text, gold=rt.gold, start_s=offset)
                offset += 6.0
                turn = assistant.run_turn(session, turn, start="nlu", stop=stop)
            yield turn_summary(turn)
    finally:
        assistant.end_session(session)


def _wakes_only(assistant: Assistant, rec: RecordedSession) -> Iterator[dict]:
    """``replay --stop wake``: the listener alone over a continuous recording (no recognition);
    one summary per wake word heard, with its times, the command it cut and the gold it matches."""
    from stages.wake import scan

    if not rec.continuous:
        raise InputError(
            rec.path,
            '--stop wake needs a continuous recording (a session with "audio", '
            "or --continuous): pre-segmented turns skip the wake stage",
        )
    matcher = GoldMatcher(rec)
    listener = assistant.stages.wake_listener(Path(rec.stream_path).name)
    try:
        commands = scan(listener, rec.stream)
        near = listener.take_near_misses()
    finally:
        assistant.stages.return_listener(listener)
    n = 0
    for cmd in commands:
        if cmd.wake is None:
            continue
        n += 1
        gold = matcher(cmd.detected_at_s) if rec.turns else None
        u = cmd.utterance
        out = {
            "session": rec.id,
            "turn": n,
            "wake": {
                "word": cmd.wake.word,
                "score": round(cmd.wake.score, 3),
                "start_s": cmd.wake.start_s,
                "end_s": cmd.wake.end_s,
                "detected_at_s": cmd.detected_at_s,
                "heard": cmd.wake.heard,
            },
            "command": {
                "start_s": u.start_s,
                "end_s": u.end_s,
                "endpoint": u.endpoint,
                "seconds": round(u.audio.duration_s, 3),
            },
        }
        if gold is not None:
            out["gold"], out["correct"] = gold_summary(gold), gold.wake is not False
        yield out
    for at, gold in matcher.missed():
        yield missed_summary(rec.id, at, gold, near_miss_at(near, at))

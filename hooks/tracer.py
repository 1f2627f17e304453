"""The tracer: one JSONL file per session, a record per stage boundary, audio beside it.

Each record is one line written with a single ``write`` and flushed to the OS before the
pipeline moves on, so a process killed at any moment leaves a file that parses up to its last
complete line (readers skip a torn last line). A write that fails (full disk, lost mount) cuts
the file back to its last complete line and stops the tracer: ``Tracer.error`` names the file,
and the commands exit non-zero. Records are described in ``trace.schema.json`` and docs/traces.md "Traces".

A turn's ``turn_end`` carries implicit signals that depend on what the user did next, so it is
written when the next turn ends (or the session ends), after that turn's stage records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.audio import Audio, write_wav
from core.errors import OutputError
from core.paths import safe_name
from core.pipeline import STAGE_OUTPUTS, STAGES
from core.records import StageError, to_jsonable
from core.session import Turn
from core.turn_summary import turn_summary
from hooks.bus import Event
from hooks.signals import reply_window, session_signals

log = logging.getLogger(__name__)

SCHEMA = "assistant.trace/1"
# json.dumps with these settings, without building an encoder per record
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def confidence_signals(stage: str, output: Any) -> dict:
    """The quality signals a stage's output carries, flattened for analysis."""
    if output is None:
        return {}
    if stage == "wake":
        return {
            "wake_score": output.wake.score if output.wake else None,
            "endpoint": output.endpoint,
            "utterance_s": round(output.audio.duration_s, 3),
        }
    if stage == "asr":
        probs = [w.probability for w in output.words]
        return {
            "avg_logprob": output.avg_logprob,
            "no_speech_prob": output.no_speech_prob,
            "confidence": round(output.confidence, 4),
            "compression_ratio": output.compression_ratio,
            "min_word_prob": round(min(probs), 4) if probs else None,
            "mean_word_prob": round(sum(probs) / len(probs), 4) if probs else None,
            "words": len(output.words),
        }
    if stage == "rewrite":
        return {"changed": output.changed, "source": output.source, "score": output.score}
    if stage == "nlu":
        return {
            "intent_confidence": output.confidence,
            "intent_margin": round(output.margin, 4),
            "coverage": output.coverage,
            "out_of_domain": output.out_of_domain,
            "slots": len(output.slots),
        }
    if stage == "resolve":
        gaps = [e.candidates[0].score - e.candidates[1].score for e in output.entities if len(e.candidates) > 1]
        return {
            "min_entity_score": round(output.min_score, 4),
            "unresolved": sum(e.id is None for e in output.entities),
            "candidate_gap": round(min(gaps), 4) if gaps else None,
            "clarification": output.clarification is not None,
            "carried": len(output.carried),
        }
    if stage == "respond":
        return {"status": output.status, "reply_type": output.reply_type}
    if stage == "tts":
        return {"first_chunk_ms": output.first_chunk_ms, "reply_s": round(output.audio.duration_s, 3)}
    return {}


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


class LineWriter:
    """Appends whole JSON lines to one file; each record is a single ``write``, flushed at once.

    A failed or short write is cut back to the last complete line (no torn line stays) and
    raised as :class:`OutputError` naming the file. ``append``: keep what the file holds (a
    torn last line is cut first), else start it empty."""

    def __init__(self, path: Path, fsync: bool = False, append: bool = False):
        self.path = path
        self.fsync = fsync
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | (0 if append else os.O_TRUNC), 0o644)
        except OSError as err:
            raise OutputError(path, f"cannot create ({_reason(err)})") from None
        self._size = 0
        if append:
            data = path.read_bytes()
            self._size = data.rfind(b"\n") + 1
            self._cut()

    def write(self, record: dict) -> None:
        # a lone surrogate (a "\ud800" escape in a manifest's id or text) is written as that
        # escape again, valid JSON: strict UTF-8 would raise here and lose the whole trace
        data = (_encode(record) + "\n").encode("utf-8", "backslashreplace")
        try:
            n = os.write(self._fd, data)
            if n != len(data):  # a regular file writes short only when it is out of space
                raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: {n} of {len(data)} bytes written")
            if self.fsync:
                os.fsync(self._fd)
        except OSError as err:
            self._cut()
            raise OutputError(
                self.path, f"cannot write ({_reason(err)}); the file ends at its last complete record"
            ) from None
        self._size += n

    def _cut(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)
            os.lseek(self._fd, self._size, os.SEEK_SET)
        except OSError as err:
            log.debug("%s: could not cut back to %d bytes (%s)", self.path, self._size, err)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


@dataclass
class _SessionTrace:
    writer: LineWriter
    audio_dir: Path
    turns: list[Turn] = field(default_factory=list)  # finished turns, in order
    written: int = 0  # how many turn_end records are on disk
    repeats: list = field(default_factory=list)  # repeat_count of each written turn
    audio: dict[int, dict[str, str]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # as written at session_start
    # (turn, stage) → (output, its JSON, its signals) as written at stage_end: the turn_end
    # record repeats every stage's output, and converting a record twice cost as much as writing it
    outputs: dict[tuple[int, str], tuple[Any, Any, dict]] = field(default_factory=dict)


class Tracer:
    """An observer that writes ``DIR/<session>.jsonl`` (and ``DIR/<session>/*.wav``)."""

    def __init__(self, directory: str | Path, audio: bool = True, embeddings: bool = True, fsync: bool = False):
        self.directory = Path(directory)
        self.write_audio = audio
        self.embeddings = embeddings
        self.fsync = fsync
        self._sessions: dict[str, _SessionTrace] = {}
        self._names: set[str] = set()
        self.files: list[Path] = []
        self.error: OutputError | None = None  # the write failure that stopped this tracer

    # observer ------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        if self.error is not None:
            return
        handler = getattr(self, f"_on_{event.kind}")
        try:
            handler(event)
        except OutputError as err:
            self._stop(err)

    def _stop(self, err: OutputError) -> None:
        """After a write failure: every file is closed as it is (each ends with a complete
        record), nothing more is written, and the failure is reported once."""
        self.error = err
        log.error("%s; no further traces are written to %s", err, self.directory)
        self.close()

    def close(self) -> None:
        """Close every open trace file without ending its session (an interrupted run)."""
        for st in self._sessions.values():
            st.writer.close()
        self._sessions.clear()

    def _name(self, session: str) -> str:
        """The file name of a session's trace: its id made safe, and unique within this tracer
        (a second session with the same id must not overwrite the first one's trace)."""
        base = name = safe_name(session)
        n = 1
        while name in self._names:
            n += 1
            name = f"{base}-{n}"
        self._names.add(name)
        return name

    def _base(self, event: Event) -> dict:
        return {
            "schema": SCHEMA,
            "session": event.session,
            "turn": event.turn,
            "stage": event.stage,
            "event": event.kind,
            "t": round(event.t, 6),
            "time": time.time(),
        }

    def _on_session_start(self, event: Event) -> None:
        safe = self._name(event.session)
        writer = LineWriter(self.directory / f"{safe}.jsonl", self.fsync)
        self.files.append(writer.path)
        st = _SessionTrace(writer, self.directory / safe)
        self._sessions[event.session] = st
        session = event.meta
        meta = {}
        if session is not None:
            meta = {
                "domain": session.domain.name,
                "start_time": session.start_clock.isoformat(),
                "device": to_jsonable(session.device),
                "user": to_jsonable(session.user),
                **{k: to_jsonable(v) for k, v in session.meta.items()},
            }
        st.meta = meta
        st.writer.write({**self._base(event), "meta": meta})

    def _on_turn_start(self, event: Event) -> None:
        st = self._sessions[event.session]
        turn: Turn = event.data
        record = {
            **self._base(event),
            "source": turn.source,
            "start_s": turn.start_s,
            "input": "text" if turn.text_input is not None else "audio",
        }
        if turn.utterance is not None:
            ref = self._audio(st, turn.index, "utterance", turn.utterance.audio)
            if ref:
                record["audio"] = {"utterance": ref}
        st.writer.write(record)

    def _on_stage_start(self, event: Event) -> None:
        st = self._sessions[event.session]
        st.writer.write(
            {**self._base(event), "input_type": type(event.data).__name__ if event.data is not None else None}
        )

    def _on_near_miss(self, event: Event) -> None:
        """What a device logs of speech it nearly woke for: when, and how close it came."""
        utt = event.data
        self._sessions[event.session].writer.write(
            {
                **self._base(event),
                "start_s": utt.start_s,
                "end_s": utt.end_s,
                "score": utt.near_miss,
                "condition": utt.condition,
            }
        )

    def _on_stage_chunk(self, event: Event) -> None:
        """Partial audio is for players; the stage's end record carries the whole reply."""

    def _on_stage_end(self, event: Event) -> None:
        st = self._sessions[event.session]
        converted = (event.data, to_jsonable(event.data), confidence_signals(event.stage, event.data))
        st.outputs[(event.turn, event.stage)] = converted
        record = {
            **self._base(event),
            "duration_ms": round(event.duration_ms or 0.0, 3),
            "output": converted[1],
            "signals": converted[2],
        }
        if event.stage == "tts" and event.data is not None:
            ref = self._audio(st, event.turn, "reply", event.data.audio)
            if ref:
                record["audio"] = {"reply": ref}
        st.writer.write(record)

    def _on_stage_error(self, event: Event) -> None:
        st = self._sessions[event.session]
        err: StageError = event.data
        st.writer.write(
            {
                **self._base(event),
                "duration_ms": round(event.duration_ms or 0.0, 3),
                "error": {"code": err.code, "message": err.message},
            }
        )

    def _on_turn_end(self, event: Event) -> None:
        st = self._sessions[event.session]
        st.turns.append(event.data)
        # The previous turn's signals are now complete: write its turn_end.
        self._flush(st, ended=False)

    def _on_session_end(self, event: Event) -> None:
        st = self._sessions.pop(event.session, None)
        if st is None:
            return
        try:
            self._flush(st, ended=True)
            record = {**self._base(event), "turns": len(st.turns)}
            # what the session learned about itself while it ran (a live session: overflows, how it ended)
            session = event.meta
            changed = {
                k: to_jsonable(v)
                for k, v in (session.meta.items() if session is not None else ())
                if st.meta.get(k) != to_jsonable(v)
            }
            if changed:
                record["meta"] = changed
            st.writer.write(record)
        finally:
            st.writer.close()

    # internals -----------------------------------------------------------------------
    def _similarity(self):
        if not self.embeddings:
            return None
        from core.embeddings import similarity

        return similarity

    def _flush(self, st: _SessionTrace, ended: bool) -> None:
        upto = len(st.turns) if ended else len(st.turns) - 1
        if upto <= st.written:
            return
        # Only the turns being written, with one turn of context on each side (signals look at
        # the previous and the next turn); repeat counts continue from the turns already written.
        lo = max(0, st.written - 1)
        window = st.turns[lo : upto + 1]
        signals = session_signals(window, self._similarity(), ended=ended and upto == len(st.turns))
        for i in range(st.written, upto):
            sig = signals[i - lo]
            chain = (st.repeats[i - 1] + 1 if i > 0 else 1) if sig.rephrase_of_previous else 0
            sig = dataclasses.replace(sig, repeat_count=chain)
            st.repeats.append(chain)
            turn = st.turns[i]
            st.writer.write(self.turn_end_record(turn, sig.to_json(), st.audio.get(turn.index, {}), st.outputs))
            for stage in STAGES:
                st.outputs.pop((turn.index, stage), None)
        st.written = upto

    def turn_end_record(
        self,
        turn: Turn,
        signals: dict,
        audio: dict,
        converted: dict[tuple[int, str], tuple[Any, Any, dict]] | None = None,
    ) -> dict:
        """``converted``: stage outputs already converted for their stage_end records (reused
        when the turn still holds that very output)."""
        summary = turn_summary(turn)
        out = turn.outcome
        stages = {}
        for stage, attr in ((s, STAGE_OUTPUTS[s].field) for s in STAGES):
            value = getattr(turn, attr)
            if value is None:
                continue
            known = converted.get((turn.index, stage)) if converted else None
            if known is not None and known[0] is value:
                stages[stage] = {"output": known[1], "signals": known[2]}
            else:
                stages[stage] = {"output": to_jsonable(value), "signals": confidence_signals(stage, value)}
        labels = {"oracle": None, "predicted": None, **to_jsonable(dict(turn.labels))}
        reply_start, reply_end = reply_window(turn)
        record = {
            "schema": SCHEMA,
            "session": turn.session,
            "turn": turn.index,
            "stage": None,
            "event": "turn_end",
            "t": round(time.monotonic(), 6),
            "time": time.time(),
            "source": turn.source,
            "start_s": turn.start_s,
            "reply_start_s": round(reply_start, 3),
            "reply_end_s": round(reply_end, 3),
            "wake": summary["wake"],
            "transcript": summary["transcript"],
            "intent": summary["intent"],
            "slots": summary["slots"],
            "entities": summary["entities"],
            "reply": summary["reply"],
            "reply_type": out.reply_type if out is not None else None,
            "status": out.status if out is not None else None,
            "ms": summary["ms"],
            "errors": summary["errors"],
            "stages": stages,
            "signals": signals,
            "gold": summary.get("gold"),
            "correct": summary.get("correct"),
            "labels": labels,
            "audio": audio,
        }
        if turn.rewrite is not None:  # the rewrite step ran (on only with a learned artifact)
            record["rewrite"] = to_jsonable(turn.rewrite)
        return record

    def _audio(self, st: _SessionTrace, turn: int, kind: str, audio: Audio) -> str | None:
        if not self.write_audio or audio is None or len(audio.samples) == 0:
            return None
        name = f"turn{turn:03d}-{kind}.wav"
        write_wav(st.audio_dir / name, audio)
        ref = f"{st.audio_dir.name}/{name}"
        st.audio.setdefault(turn, {})[kind] = ref
        return ref

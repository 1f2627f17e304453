"""Recorded sessions: a folder with ``session.json`` and its audio, or a plain audio file.

Everything is validated and decoded before any audio flows through the pipeline, so a bad
manifest or file is reported (one line, naming the file and field) before work starts.
Manifest format: docs/recorded-sessions.md "Recorded sessions".
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from core.audio import Audio, load_audio
from core.domain import Domain
from core.errors import InputError
from core.paths import is_inside
from core.records import REPLY_TYPES, frozen_map
from core.session import Gold

log = logging.getLogger(__name__)

MANIFEST = "session.json"
SCHEMA = "assistant.session/1"
GOLD_KEYS = {"transcript", "intent", "slots", "entities", "out_of_domain", "wake", "reply_type"}
TURN_KEYS = {"audio", "text", "gold", "at_s", "note"}


@dataclass(frozen=True)
class RecordedTurn:
    audio: Audio | None = None
    audio_path: str | None = None
    text: str | None = None
    gold: Gold | None = None
    at_s: float | None = None  # continuous sessions: where the wake word ends (docs/wake.md)


@dataclass(frozen=True)
class RecordedSession:
    id: str
    path: str
    continuous: bool
    turns: tuple[RecordedTurn, ...]
    stream: Audio | None = None
    stream_path: str | None = None
    start_time: str | None = None
    domain: str | None = None
    device: Mapping = field(default_factory=frozen_map)
    user: Mapping = field(default_factory=frozen_map)
    world: Mapping = field(default_factory=frozen_map)
    meta: Mapping = field(default_factory=frozen_map)


_JSON_TYPE = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
    dict: "an object",
    list: "a list",
}


def _check(value: Any, types: tuple[type, ...], path: Path, where: str, optional: bool = True) -> Any:
    """``value`` if it has one of ``types`` (``None`` allowed when ``optional``), else an
    InputError naming the field. Booleans are not numbers here, though Python says they are."""
    if value is None and optional:
        return None
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        want = " or ".join(dict.fromkeys(_JSON_TYPE.get(t, t.__name__) for t in types))
        raise InputError(path, f"must be {want}, got {json.dumps(value)[:40]}", field=where)
    return value


def parse_gold(raw: Any, path: Path, where: str) -> Gold | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InputError(path, "gold must be an object", field=where)
    unknown = set(raw) - GOLD_KEYS
    if unknown:
        raise InputError(path, f"unknown gold keys {sorted(unknown)} (known: {sorted(GOLD_KEYS)})", field=where)
    for key in ("transcript", "intent", "reply_type"):
        _check(raw.get(key), (str,), path, f"{where}.{key}")
    for key in ("out_of_domain", "wake"):
        _check(raw.get(key), (bool,), path, f"{where}.{key}")
    for key in ("slots", "entities"):
        if key in raw and not isinstance(raw[key], Mapping):
            raise InputError(path, f"{key} must be an object", field=f"{where}.{key}")
    for name, value in (raw.get("entities") or {}).items():
        _check(value, (str,), path, f"{where}.entities.{name}", optional=False)  # a catalog id
    if raw.get("reply_type") is not None and raw["reply_type"] not in REPLY_TYPES:
        raise InputError(
            path,
            f"unknown reply type {raw['reply_type']!r} (known: {', '.join(REPLY_TYPES)})",
            field=f"{where}.reply_type",
        )
    return Gold(
        transcript=raw.get("transcript"),
        intent=raw.get("intent"),
        slots=frozen_map(raw.get("slots") or {}),
        entities=frozen_map(raw.get("entities") or {}),
        out_of_domain=bool(raw.get("out_of_domain", False)),
        wake=raw.get("wake"),
        reply_type=raw.get("reply_type"),
    )


def check_gold(rec: RecordedSession, domain: Domain) -> None:
    """Gold must name intents the domain has, and slots those intents have: a misspelt name
    would otherwise only ever make the turn count as wrong."""
    path = Path(rec.path) / MANIFEST if Path(rec.path).is_dir() else Path(rec.path)
    for i, turn in enumerate(rec.turns):
        gold, where = turn.gold, f"turns[{i}].gold"
        if gold is None or gold.intent is None:
            continue
        spec = domain.intents.get(gold.intent)
        if spec is None:
            raise InputError(
                path,
                f"intent {gold.intent!r} is not in domain {domain.name!r} (known: {', '.join(sorted(domain.intents))})",
                field=f"{where}.intent",
            )
        known = set(spec.slots) | set(spec.args)
        for key in ("slots", "entities"):
            for name in getattr(gold, key):
                if name not in known:
                    raise InputError(
                        path,
                        f"{gold.intent} has no slot {name!r} (slots: {', '.join(sorted(known)) or 'none'})",
                        field=f"{where}.{key}.{name}",
                    )


def _member(folder: Path, rel: Any, mpath: Path, where: str, allow_outside: bool) -> str:
    """The audio file ``rel`` names, which must lie inside the session folder: a manifest must
    not make replay read (and trace, copying it) any file on the machine."""
    _check(rel, (str,), mpath, where, optional=False)
    path = folder / rel
    if not allow_outside and not is_inside(path, folder):
        raise InputError(
            mpath, f"{rel!r} is outside the session folder (replay --allow-outside permits it)", field=where
        )
    return str(path)


def _check_contexts(raw: Mapping, mpath: Path) -> None:
    for key in ("id", "start_time", "domain", "audio"):
        _check(raw.get(key), (str,), mpath, key)
    if raw.get("id") == "":
        raise InputError(mpath, "must not be empty", field="id")
    if raw.get("start_time") is not None:
        try:
            dt.datetime.fromisoformat(raw["start_time"])
        except ValueError:
            raise InputError(mpath, f"not an ISO date and time ({raw['start_time']!r})", field="start_time") from None
    for key in ("device", "user", "world"):
        _check(raw.get(key), (dict,), mpath, key)
    device, user = raw.get("device") or {}, raw.get("user") or {}
    for key in ("id", "room"):
        _check(device.get(key), (str,), mpath, f"device.{key}")
    _check(device.get("screen"), (bool,), mpath, "device.screen")
    for key in ("id", "home"):
        _check(user.get(key), (str,), mpath, f"user.{key}")
    history = _check(user.get("history"), (dict,), mpath, "user.history") or {}
    for etype, counts in history.items():
        for eid, n in (_check(counts, (dict,), mpath, f"user.history.{etype}", optional=False)).items():
            _check(n, (int,), mpath, f"user.history.{etype}.{eid}", optional=False)


def _load_manifest(folder: Path, allow_outside: bool = False) -> RecordedSession:
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise InputError(folder, f"not a recorded session (no {MANIFEST})")
    try:
        raw = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(mpath, f"invalid JSON at line {err.lineno} ({err.msg})") from None
    except UnicodeDecodeError:
        raise InputError(mpath, "not UTF-8 text") from None
    if not isinstance(raw, Mapping):
        raise InputError(mpath, "the manifest must be a JSON object")
    schema = raw.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise InputError(mpath, f"unsupported schema {schema!r} (expected {SCHEMA})", field="schema")
    turns_raw = raw.get("turns", [])
    if not isinstance(turns_raw, list):
        raise InputError(mpath, "turns must be a list", field="turns")
    _check_contexts(raw, mpath)
    # Every field is checked before any audio is decoded (decoding is the slow part).
    for i, t in enumerate(turns_raw):
        where = f"turns[{i}]"
        if not isinstance(t, Mapping):
            raise InputError(mpath, "each turn must be an object", field=where)
        unknown = set(t) - TURN_KEYS
        if unknown:
            raise InputError(mpath, f"unknown keys {sorted(unknown)}", field=where)
        for key in ("audio", "text", "note"):
            _check(t.get(key), (str,), mpath, f"{where}.{key}")
        if _check(t.get("at_s"), (int, float), mpath, f"{where}.at_s") is not None and t["at_s"] < 0:
            raise InputError(mpath, "must not be negative", field=f"{where}.at_s")
        parse_gold(t.get("gold"), mpath, f"{where}.gold")
    stream, stream_path = None, None
    if raw.get("audio"):
        stream_path = _member(folder, raw["audio"], mpath, "audio", allow_outside)
        stream = load_audio(stream_path)
    turns = []
    for i, t in enumerate(turns_raw):
        where = f"turns[{i}]"
        audio, apath = None, None
        if t.get("audio"):
            apath = _member(folder, t["audio"], mpath, f"{where}.audio", allow_outside)
            audio = load_audio(apath)
        elif not t.get("text") and stream is None:
            raise InputError(mpath, "a turn needs audio or text", field=where)
        turns.append(
            RecordedTurn(
                audio=audio,
                audio_path=apath,
                text=t.get("text"),
                gold=parse_gold(t.get("gold"), mpath, f"{where}.gold"),
                at_s=t.get("at_s"),
            )
        )
    if stream is None and not turns:
        raise InputError(mpath, "a session needs turns or a continuous audio file", field="turns")
    if stream is not None and any(t.audio is not None for t in turns):
        raise InputError(mpath, "a continuous session's turns carry gold only, not audio", field="turns")
    meta = {k: raw[k] for k in ("description", "provenance", "license") if k in raw}
    return RecordedSession(
        id=raw.get("id") or folder.name,
        path=str(folder),
        continuous=stream is not None,
        turns=tuple(turns),
        stream=stream,
        stream_path=stream_path,
        start_time=raw.get("start_time"),
        domain=raw.get("domain"),
        device=frozen_map(raw.get("device") or {}),
        user=frozen_map(raw.get("user") or {}),
        world=frozen_map(raw.get("world") or {}),
        meta=frozen_map(meta),
    )


def load_recording(path: str | Path, continuous: bool = False, allow_outside: bool = False) -> RecordedSession:
    """A session folder, or an audio file as a one-turn session (or a stream with ``continuous``).
    ``allow_outside``: a manifest may name audio outside its folder (``../shared/x.wav``)."""
    p = Path(path)
    if p.is_dir():
        return _load_manifest(p, allow_outside)
    audio = load_audio(p)
    if continuous:
        return RecordedSession(id=p.stem, path=str(p), continuous=True, turns=(), stream=audio, stream_path=str(p))
    return RecordedSession(
        id=p.stem, path=str(p), continuous=False, turns=(RecordedTurn(audio=audio, audio_path=str(p)),)
    )


def write_manifest(folder: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``session.json`` (the one writer of manifests: talk --record, tools/make_recordings.py).
    Atomic: a reader sees the previous manifest or this one, never a torn file."""
    path = Path(folder) / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(
        json.dumps({"schema": SCHEMA, **dict(manifest)}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    os.replace(tmp, path)
    return path


def gold_json(gold: Gold) -> dict:
    out: dict[str, Any] = {}
    if gold.transcript is not None:
        out["transcript"] = gold.transcript
    if gold.out_of_domain:
        out["out_of_domain"] = True
    if gold.intent is not None:
        out["intent"] = gold.intent
    if gold.slots:
        out["slots"] = dict(gold.slots)
    if gold.entities:
        out["entities"] = dict(gold.entities)
    if gold.wake is not None:
        out["wake"] = gold.wake
    if gold.reply_type is not None:
        out["reply_type"] = gold.reply_type
    return out

"""Property-based: no session manifest, trace file or audio header makes a command fail with a
traceback or exit 1. Every input is either used (exit 0) or refused by name (exit 2,
InputError in-process).

Derandomized (the same examples every run, no example database) and in-process; replay runs
with the stand-in NLU and TTS of test_hardening, so no model loads.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import assistant.commands.replay as replay_cmd
from assistant.cli import main
from assistant.recorded_sessions import load_recording
from assistant.replay import replay
from core.audio import load_audio
from core.errors import InputError
from hooks import trace_reader as traces
from tests.test_hardening import FastAssistant

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# any JSON value, NaN and lone surrogates ("\ud800" escapes) included: json.loads gives both
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "",
            "..",
            "../x.wav",
            "/etc/passwd",
            "turn01.wav",
            "home",
            "coffee",
            "TurnOn",
            "GetTime",
            "SetTimer",
            "out_of_domain",
            "2026-03-14T08:00:00",
            "2026-13-99",
            "\ud800",
            "a\x00b",
            "assistant.session/1",
        ]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(["id", "audio", "gold"]), inner, max_size=3)
    ),
    max_leaves=8,
)


class Blob(bytes):
    """Bytes that print as their length: a failing example names the fixture, not all of it."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes>"


def run_cli(*args) -> int:
    """Exit code of one command run in this process, stdout and stderr as a terminal has them
    (UTF-8, strict: what cannot be encoded fails here as it fails there). An exit 1 raises with
    the command's last line, which names the internal error."""
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8") for _ in range(2))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    err.flush()
    said = err.buffer.getvalue().decode("utf-8", "replace").strip().splitlines()
    assert code != 1, (args[:2], said[-1:])
    return code


# manifests --------------------------------------------------------------------------------

BASE = {
    "schema": "assistant.session/1",
    "id": "s",
    "start_time": "2026-03-14T08:00:00",
    "domain": "home",
    "device": {"id": "kitchen_speaker", "room": "kitchen", "screen": False},
    "user": {"id": "u", "home": "springfield_il", "history": {"place": {"wilkerson_ca": 2}}},
    "world": {"devices": {"oven": {"power": "on"}}},
    "turns": [
        {"text": "what time is it", "note": "n", "gold": {"intent": "GetTime", "transcript": "what time is it"}},
        {
            "text": "set a timer for ten minutes",
            "gold": {
                "intent": "SetTimer",
                "slots": {"duration": 600},
                "entities": {},
                "out_of_domain": False,
                "wake": True,
                "reply_type": "action",
            },
        },
    ],
}
FIELDS = [
    (),
    ("schema",),
    ("id",),
    ("start_time",),
    ("domain",),
    ("audio",),
    ("description",),
    ("device",),
    ("device", "id"),
    ("device", "room"),
    ("device", "screen"),
    ("user",),
    ("user", "id"),
    ("user", "home"),
    ("user", "history"),
    ("user", "history", "place"),
    ("user", "history", "place", "wilkerson_ca"),
    ("world",),
    ("world", "devices"),
    ("world", "devices", "oven"),
    ("turns",),
    ("turns", 0),
    ("turns", 1, "extra"),
]
FIELDS += [
    ("turns", i, *rest)
    for i in (0, 1)
    for rest in [
        ("text",),
        ("audio",),
        ("at_s",),
        ("note",),
        ("gold",),
        ("gold", "intent"),
        ("gold", "slots"),
        ("gold", "slots", "duration"),
        ("gold", "entities"),
        ("gold", "entities", "device"),
        ("gold", "transcript"),
        ("gold", "out_of_domain"),
        ("gold", "wake"),
        ("gold", "reply_type"),
        ("gold", "unknown"),
    ]
]


def mutated(changes: list[tuple[tuple, object]]):
    """BASE with each (field path, value) set; a path through a value that is no longer a
    container (an earlier change replaced it) is skipped."""
    doc = json.loads(json.dumps(BASE))
    for path, value in changes:
        if not path:
            doc = value
            continue
        node = doc
        for key in path[:-1]:
            if isinstance(node, dict):
                node = node.setdefault(key, {})
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                node = None
                break
        last = path[-1]
        if isinstance(node, dict):
            node[last] = value
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = value
    return doc


@pytest.fixture(scope="module")
def work():
    folder = Path(tempfile.mkdtemp(prefix="properties-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@PROPERTY
@given(changes=st.lists(st.tuples(st.sampled_from(FIELDS), JSON), min_size=1, max_size=3))
@example(changes=[(("id",), "\ud800"), (("turns", 0, "text"), "x\ud800"), (("domain",), None)])
@example(changes=[(("turns", 1, "gold", "slots", "duration"), float("nan")), (("domain",), "/etc/passwd")])
def test_no_manifest_escapes_as_a_traceback(changes, work, monkeypatch):
    monkeypatch.setattr(replay_cmd, "Assistant", FastAssistant)
    folder = Path(tempfile.mkdtemp(dir=work))
    (folder / "session.json").write_text(json.dumps(mutated(changes)), encoding="utf-8")
    try:
        load_recording(folder)
    except InputError as err:
        assert err.path.startswith(str(folder)) and "\n" not in str(err)
    code = run_cli("replay", folder, "--json", "--trace", folder / "trace", "--out", folder / "out")
    assert code in (0, 2)
    if code == 0:  # and nothing was lost on the way: the trace is whole
        assert run_cli("trace", "validate", folder / "trace") == 0
        (trace,) = (folder / "trace").glob("*.jsonl")
        assert traces.read_records(trace)[-1]["event"] == "session_end"


@PROPERTY
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_no_manifest_bytes_escape_as_a_traceback(data, work):
    folder = Path(tempfile.mkdtemp(dir=work))
    (folder / "session.json").write_bytes(data)
    with pytest.raises(InputError):
        load_recording(folder)


# traces -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_trace(work) -> bytes:
    """A trace the tracer wrote: two turns of a text session."""
    session = work / "traced"
    session.mkdir()
    (session / "session.json").write_text(json.dumps(BASE), encoding="utf-8")
    a = FastAssistant()
    a.trace_to(work / "traces")
    list(replay(a, load_recording(session)))
    return Blob((work / "traces" / "s.jsonl").read_bytes())


def trace_commands(path: Path, out: Path) -> list[int]:
    return [
        run_cli("trace", "validate", path),
        run_cli("trace", "show", path),
        run_cli("trace", "export", path, "--parquet", out),
    ]


@PROPERTY
@given(cut=st.integers(min_value=0), junk=st.binary(max_size=40))
def test_no_truncated_or_damaged_trace_escapes_as_a_traceback(real_trace, cut, junk, work):
    folder = Path(tempfile.mkdtemp(dir=work))
    path = folder / "t.jsonl"
    at = cut % (len(real_trace) + 1)
    path.write_bytes(real_trace[:at] + junk + real_trace[at + len(junk) :])
    assert set(trace_commands(path, folder / "t.parquet")) <= {0, 2}


@PROPERTY
@given(lines=st.lists(JSON.map(lambda v: json.dumps(v)) | st.text(max_size=30), max_size=4), torn=st.booleans())
def test_no_jsonl_of_random_values_escapes_as_a_traceback(lines, torn, work):
    folder = Path(tempfile.mkdtemp(dir=work))
    path = folder / "t.jsonl"
    path.write_bytes(("\n".join(lines) + ("" if torn else "\n")).encode("utf-8", "surrogatepass"))
    assert set(trace_commands(path, folder / "t.parquet")) <= {0, 2}


@PROPERTY
@example(index=0, key="session", value="\ud800")
@given(
    index=st.integers(min_value=0),
    key=st.sampled_from(
        [
            "turn",
            "stage",
            "event",
            "session",
            "t",
            "wake",
            "transcript",
            "slots",
            "entities",
            "errors",
            "signals",
            "stages",
            "labels",
            "gold",
            "ms",
            "meta",
            "duration_ms",
            "error",
            "audio",
            "reply",
            "extra",
        ]
    ),
    value=JSON,
)
def test_no_record_with_a_field_of_another_type_escapes_as_a_traceback(real_trace, index, key, value, work):
    records = [json.loads(line) for line in real_trace.splitlines()]
    records[index % len(records)][key] = value
    folder = Path(tempfile.mkdtemp(dir=work))
    path = folder / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert set(trace_commands(path, folder / "t.parquet")) <= {0, 2}


# audio headers ----------------------------------------------------------------------------


def _encoded(fmt: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    tone = (0.3 * np.sin(np.arange(4000) / 3.0)).astype(np.float32)
    sf.write(buf, np.stack([tone, tone], 1), 22050, format=fmt, subtype=subtype)
    return buf.getvalue()


FILES = {"wav": _encoded("WAV", "PCM_16"), "flac": _encoded("FLAC", "PCM_16"), "float.wav": _encoded("WAV", "FLOAT")}


@PROPERTY
@given(kind=st.sampled_from(sorted(FILES)), cut=st.integers(0, 200), at=st.integers(0, 80), junk=st.binary(max_size=12))
def test_no_truncated_or_damaged_audio_header_escapes(kind, cut, at, junk, work):
    data = FILES[kind]
    data = data[: len(data) - cut] if cut % 2 else data[:cut]  # cut the header or the tail
    data = data[:at] + junk + data[at + len(junk) :]
    path = Path(tempfile.mkdtemp(dir=work)) / f"x.{kind}"
    path.write_bytes(data)
    try:
        audio = load_audio(path)
    except InputError as err:
        assert err.path == str(path) and "\n" not in str(err)
    else:
        assert audio.sample_rate == 16000 and np.isfinite(audio.samples).all()


@PROPERTY
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".wav", ".flac", ".mp3", ".ogg", ".raw", ".pcm", ""]))
def test_no_random_bytes_escape_the_audio_loader(data, suffix, work):
    path = Path(tempfile.mkdtemp(dir=work)) / f"x{suffix}"
    path.write_bytes(data)
    try:
        audio = load_audio(path)
    except InputError as err:
        assert err.path == str(path)
    else:
        assert audio.sample_rate == 16000 and np.isfinite(audio.samples).all()

"""The trace browser: a static site for reading every turn of many sessions (``assistant view``).

What it writes into its folder (it opens from disk, file://, or over ``serve``):

  index.html, view.css, view.js   the page (hooks/view_assets/: no framework, no network)
  data/manifest.js                counts, facets (conditions, voices, intents), the index shards
  data/index-NNNN.js              the sessions list, ``SHARD`` sessions a file, as compact rows
  data/s/<key>.js                 one session's turns, loaded when the session is opened
  audio/<key>/*.wav               the traces' WAVs (hard links where possible, else copies)
  .assistant-view                 marks the folder as ours, so a rerun may replace it

Data files are scripts calling ``VIEW.*`` rather than JSON files: Chromium blocks fetch() of
file:// URLs, but loads <script src>. The list opens once its first shard is in and the others
follow in the background, so a 10,000-session view opens as fast as a 500-session one.

URL hash, shared with ``assistant report``'s links (build them with ``href``):
``#fp=asr&pred=nlu&mismatch=1&defect=1&cond=…&voice=…&intent=…&q=…&sort=…&page=2&s=KEY&t=3``
  fp, pred, mismatch  a turn whose oracle failure point is fp, predicted one is pred, and (with
                      mismatch=1) the two differ: all on the same turn
  defect=1            a session with at least one oracle defect
  cond, voice, intent the session's condition and voice; an intent asked for or understood
  q                   words in the session (what was said, heard, replied; its id)
  sort                turns | defects | a stage (slowest first); page: page of the list
  s, t                the session (its key) and turn shown
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import socketserver
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

from core.errors import InputError, UserError
from core.paths import safe_name
from core.pipeline import FAILURE_POINTS as CLASSES
from core.pipeline import STAGES
from hooks.trace_reader import read_records, trace_files

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("view_assets")
ASSET_FILES = ("index.html", "view.css", "view.js")
MARKER = ".assistant-view"
SHARD = 500  # sessions per index file: a first shard loads in milliseconds
# one letter per failure point: a session's turns become a short string in the index
FP_CODE = {"wake": "w", "asr": "a", "nlu": "n", "resolve": "r", "result": "x", "correct": "c"}
SIGNALS = ("barge_in", "rephrase_of_previous", "negative_feedback", "abandoned")
HASH_KEYS = ("fp", "pred", "mismatch", "defect", "cond", "voice", "intent", "q", "sort", "page", "s", "t")
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def href(page: str = "index.html", **filters: str | int | None) -> str:
    """A link into a view, e.g. ``href("../view/index.html", fp="asr")`` → ``…#fp=asr``."""
    unknown = set(filters) - set(HASH_KEYS)
    if unknown:
        raise ValueError(f"unknown view filter(s): {', '.join(sorted(unknown))}")
    parts = [f"{k}={quote(str(v), safe='')}" for k, v in filters.items() if v not in (None, "")]
    return page + ("#" + "&".join(parts) if parts else "")


class NothingToView(UserError):
    """No input could be read: each one's problem is in ``problems``."""

    def __init__(self, problems: Sequence[InputError]):
        self.problems = tuple(problems)
        super().__init__("no traces to view" + (f" ({len(self.problems)} inputs left out)" if self.problems else ""))


@dataclass(frozen=True)
class ViewResult:
    page: Path
    sessions: int
    turns: int
    audio_files: int
    problems: tuple[InputError, ...]  # inputs left out, each naming itself


# reading ----------------------------------------------------------------------------------


def _words(text: str | None) -> list[str]:
    return (text or "").split()


def _norm(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalnum() or c == "'")


def align_words(said: str | None, heard: str | None) -> list[tuple[str, str | None, str | None]]:
    """Word alignment of what was said with what was heard: (op, said word, heard word), op one of
    ``=`` same, ``~`` substituted, ``-`` not heard, ``+`` heard but not said. Compared without
    case and punctuation; the words are kept as written."""
    ref, hyp = _words(said), _words(heard)
    a, b = [_norm(w) for w in ref], [_norm(w) for w in hyp]
    n, m = len(a), len(b)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]), cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    ops: list[tuple[str, str | None, str | None]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]):
            ops.append(("=" if a[i - 1] == b[j - 1] else "~", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            ops.append(("-", ref[i - 1], None))
            i -= 1
        else:
            ops.append(("+", None, hyp[j - 1]))
            j -= 1
    return ops[::-1]


def _output(stages: dict, stage: str) -> dict:
    return ((stages.get(stage) or {}).get("output")) or {}


def _waterfall(records: list[dict], end: dict) -> tuple[list[dict], list[dict]]:
    """Each stage's start (ms after the turn began) and duration, from its records; chunks (a
    stage's partial output) as ticks. Without stage records: the turn's ``ms``, one after another."""
    t0 = next((r["t"] for r in records if r["event"] == "turn_start"), None)
    starts = {r["stage"]: r["t"] for r in records if r["event"] == "stage_start"}
    if t0 is None and starts:
        t0 = min(starts.values())
    bars, chunks = [], []
    for r in records:
        if r["event"] not in ("stage_end", "stage_error") or t0 is None:
            continue
        ms = float(r.get("duration_ms") or 0.0)
        start = starts.get(r["stage"], r["t"] - ms / 1000.0)
        bar = {"stage": r["stage"], "start": round((start - t0) * 1000.0, 2), "ms": round(ms, 2)}
        if r["event"] == "stage_error":
            bar["error"] = (r.get("error") or {}).get("code")
        bars.append(bar)
    for r in records:
        if r["event"] == "stage_chunk" and t0 is not None:
            chunks.append({"stage": r["stage"], "at": round((r["t"] - t0) * 1000.0, 2)})
    if not bars:  # a trace without stage records: what turn_end says, back to back
        at = 0.0
        for stage in STAGES:
            if stage in (end.get("ms") or {}):
                bars.append({"stage": stage, "start": round(at, 2), "ms": end["ms"][stage]})
                at += float(end["ms"][stage])
    tts = next((b for b in bars if b["stage"] == "tts"), None)
    first = _output(end.get("stages") or {}, "tts").get("first_chunk_ms")
    if tts and first and not any(c["stage"] == "tts" for c in chunks):
        chunks.append({"stage": "tts", "at": round(tts["start"] + float(first), 2), "first": True})
    bars.sort(key=lambda b: (STAGES.index(b["stage"]) if b["stage"] in STAGES else 99, b["start"]))
    return bars, chunks


def _turn(end: dict, records: list[dict], audio: dict[str, str]) -> dict:
    stages = end.get("stages") or {}
    utt, asr = _output(stages, "wake"), _output(stages, "asr")
    gold = end.get("gold") or {}
    said = gold.get("transcript")
    heard = end.get("transcript")
    bars, chunks = _waterfall(records, end)
    labels = end.get("labels") or {}
    tts = {k: v for k, v in _output(stages, "tts").items() if k != "audio"}
    return {
        "n": end["turn"],
        "source": end.get("source"),
        "start_s": end.get("start_s"),
        "reply_start_s": end.get("reply_start_s"),
        "reply_end_s": end.get("reply_end_s"),
        "spoken": utt.get("spoken"),
        "said": said,
        "heard": heard,
        "diff": [list(op) for op in align_words(said, heard)] if said is not None and heard is not None else None,
        "words": [[w.get("text"), w.get("probability")] for w in asr.get("words") or []],
        "wake": {
            "word": (end.get("wake") or {}).get("word"),
            "score": (end.get("wake") or {}).get("score"),
            "endpoint": utt.get("endpoint"),
            "condition": utt.get("condition"),
            "voice": utt.get("voice"),
            "start_s": utt.get("start_s"),
            "end_s": utt.get("end_s"),
        }
        if utt or end.get("wake")
        else None,
        "asr": {k: asr.get(k) for k in ("model", "source", "avg_logprob", "no_speech_prob")} if asr else None,
        "nlu": _output(stages, "nlu") or None,
        "resolve": _output(stages, "resolve") or None,
        "respond": _output(stages, "respond") or None,
        "tts": tts or None,
        "intent": end.get("intent"),
        "slots": end.get("slots"),
        "entities": end.get("entities"),
        "reply": end.get("reply"),
        "reply_type": end.get("reply_type"),
        "status": end.get("status"),
        "correct": end.get("correct"),
        "gold": gold or None,
        "errors": end.get("errors") or [],
        "faults": list(labels.get("faults") or []),
        "oracle": labels.get("oracle"),
        "predicted": labels.get("predicted"),
        "signals": end.get("signals") or {},
        "ms": end.get("ms") or {},
        "waterfall": bars,
        "chunks": chunks,
        "audio": audio,
    }


@dataclass(frozen=True)
class _Session:
    key: str
    id: str
    file: str
    meta: dict
    turns: tuple[dict, ...]


def _sessions(path: Path, records: list[dict], audio_out, taken: set[str]) -> list[_Session]:
    """The sessions in one trace file (normally one), their turns digested for the page."""
    by_session: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_session[str(r["session"])].append(r)
    out = []
    for sid, recs in by_session.items():
        key = base = safe_name(sid)
        n = 1
        while key in taken:  # the same id from two runs: both shown, the second suffixed
            n += 1
            key = f"{base}~{n}"
        taken.add(key)
        meta: dict = {}
        for r in recs:
            if r["event"] in ("session_start", "session_end") and isinstance(r.get("meta"), dict):
                meta.update(r["meta"])
        per_turn: dict[int, list[dict]] = defaultdict(list)
        for r in recs:
            if r.get("turn") is not None:
                per_turn[r["turn"]].append(r)
        turns = []
        for r in recs:
            if r["event"] != "turn_end":
                continue
            refs = dict(r.get("audio") or {})
            for x in per_turn[r["turn"]]:  # a turn_end not yet written still leaves these
                refs.update({k: v for k, v in (x.get("audio") or {}).items() if k not in refs})
            turns.append(_turn(r, per_turn[r["turn"]], audio_out(path, key, refs)))
        turns.sort(key=lambda t: t["n"])
        out.append(_Session(key, sid, str(path), meta, tuple(turns)))
    return out


def _read(path: Path) -> list[dict]:
    records = read_records(path)
    if not records:
        raise InputError(path, "no trace records")
    if not all(
        isinstance(r.get("session"), str) and str(r.get("schema", "")).startswith("assistant.trace/") for r in records
    ):
        raise InputError(path, "not a trace (records need schema assistant.trace/1 and a session)")
    return records


# writing ----------------------------------------------------------------------------------


def _prepare(out: Path) -> None:
    """An empty folder, or one this module wrote before (emptied of what it wrote): never
    anyone else's files."""
    if out.exists():
        if not out.is_dir():
            raise InputError(out, "exists and is not a folder", field="--out")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise InputError(out, "exists, is not empty and is not a view; choose another --out", field="--out")
        for name in ("data", "audio"):
            shutil.rmtree(out / name, ignore_errors=True)
    try:
        (out / "data" / "s").mkdir(parents=True, exist_ok=True)
        (out / "audio").mkdir(exist_ok=True)
        (out / MARKER).write_text(
            "written by `assistant view`; rerunning it replaces this folder's data/ and audio/\n", encoding="utf-8"
        )
    except OSError as err:
        raise InputError(out, f"cannot write ({err.strerror})", field="--out") from None


def _script(path: Path, call: str, *args) -> None:
    path.write_text(f"{call}({','.join(_encode(a) for a in args)});\n", encoding="utf-8")


class _Audio:
    """Brings a session's WAVs into the view, by hard link (no extra disk) or copy."""

    def __init__(self, out: Path):
        self.out = out
        self.count = 0

    def __call__(self, trace: Path, key: str, refs: dict[str, str]) -> dict[str, str]:
        found = {}
        for kind, ref in sorted(refs.items()):
            src = trace.parent / ref
            if trace.parent.resolve() not in src.resolve().parents:  # a trace names its own audio only
                log.warning("%s: audio %s is outside the trace's folder; left out", trace, ref)
                continue
            if not src.is_file():
                log.warning("%s: audio %s is missing; the turn shows without it", trace, ref)
                continue
            dst = self.out / "audio" / key / safe_name(Path(ref).name)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                try:
                    os.link(src, dst)
                except OSError:  # another file system, or links not allowed
                    shutil.copyfile(src, dst)
                self.count += 1
            found[kind] = f"audio/{key}/{dst.name}"
        return found


def _row(s: _Session, facets: dict[str, dict[str, int]]) -> list:
    """A session as one compact row of the index (see view.js ``ROW``)."""

    def idx(facet: str, value) -> int:
        table = facets[facet]
        return table.setdefault(str(value) if value is not None else "n/a", len(table))

    def code(label) -> str:
        return FP_CODE.get((label or {}).get("failure_point"), "-")

    turns = s.turns
    intents = {t["intent"] for t in turns if t["intent"]} | {(t["gold"] or {}).get("intent") for t in turns}
    signals = [sum(bool(t["signals"].get(k)) for t in turns) for k in SIGNALS]
    ms = [round(max((float(t["ms"].get(st) or 0.0) for t in turns), default=0.0), 1) for st in STAGES]
    text = " ".join(
        filter(None, [s.id] + [x for t in turns for x in (t["spoken"] or t["said"], t["heard"], t["reply"])])
    )
    last = turns[-1] if turns else {}
    cond = s.meta.get("condition") or next(
        (t["wake"]["condition"] for t in turns if t["wake"] and t["wake"]["condition"]), None
    )
    return [
        s.key,
        s.id,
        len(turns),
        "".join(code(t["oracle"]) for t in turns),
        "".join(code(t["predicted"]) for t in turns),
        signals,
        idx("conditions", cond),
        idx("voices", s.meta.get("voice")),
        sorted(idx("intents", i) for i in intents if i),
        text.lower(),
        ms,
        last.get("status") or "",
    ]


def build(paths: Sequence[str | Path], out: str | Path) -> ViewResult:
    """Write the view of every readable trace under ``paths`` into ``out``. Inputs that cannot be
    read are left out and named in ``problems``; raises NothingToView when none could be found."""
    out = Path(out)
    problems: list[InputError] = []
    named: dict[Path, None] = {}  # in order, each once (a folder and a file in it may both be named)
    for p in paths:
        try:
            named.update(dict.fromkeys(trace_files([p])))
        except InputError as err:
            problems.append(err)
    resolved_out = out.resolve()
    files = [f for f in named if resolved_out not in f.resolve().parents]  # never our own output
    if not files:
        raise NothingToView(problems)
    audio = _Audio(out)
    taken: set[str] = set()
    facets: dict[str, dict[str, int]] = {"conditions": {}, "voices": {}, "intents": {}}
    rows: list[list] = []
    turns = 0
    prepared = False
    for f in files:
        try:
            records = _read(f)
        except InputError as err:
            problems.append(err)
            continue
        except OSError as err:
            problems.append(InputError(f, f"cannot read ({err.strerror})"))
            continue
        except ValueError as err:  # bytes that are not UTF-8 (a WAV named .jsonl)
            problems.append(InputError(f, f"not a trace ({type(err).__name__})"))
            continue
        if not prepared:  # the first readable trace: only now is there a view to write
            _prepare(out)
            for name in ASSET_FILES:
                shutil.copyfile(ASSETS / name, out / name)
            prepared = True
        try:
            found = _sessions(f, records, audio, taken)
        except (KeyError, TypeError, ValueError, AttributeError) as err:  # trace-shaped, but not as the tracer writes
            log.debug("%s", f, exc_info=True)
            problems.append(InputError(f, f"not a trace this view can read ({type(err).__name__}: {err})"))
            continue
        for s in found:
            _script(
                out / "data" / "s" / f"{s.key}.js",
                "VIEW.session",
                s.key,
                {"id": s.id, "file": s.file, "meta": s.meta, "turns": s.turns},
            )
            rows.append(_row(s, facets))
            turns += len(s.turns)
    if not rows:
        raise NothingToView(problems)
    shards = 0
    for start in range(0, len(rows), SHARD):
        _script(out / "data" / f"index-{shards:04d}.js", "VIEW.index", shards, rows[start : start + SHARD])
        shards += 1
    manifest = {
        "format": "assistant.view/1",
        "sessions": len(rows),
        "turns": turns,
        "shards": shards,
        "shard_size": SHARD,
        "classes": CLASSES,
        "stages": STAGES,
        "signals": SIGNALS,
        **{k: list(v) for k, v in facets.items()},
        "inputs": [str(p) for p in paths],
        "problems": [str(p) for p in problems],
    }
    (out / "data" / "manifest.js").write_text(f"window.VIEW_MANIFEST={_encode(manifest)};\n", encoding="utf-8")
    log.info("view: %d sessions, %d turns, %d audio files → %s", len(rows), turns, audio.count, out)
    return ViewResult(out / "index.html", len(rows), turns, audio.count, tuple(problems))


# serving ----------------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    timeout = 15  # an idle or stalled client does not hold a worker for long

    def list_directory(self, path):  # files only: the page links to everything it needs
        self.send_error(404, "no listing")
        return None

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """127.0.0.1 only, at most ``MAX`` requests at once (the rest wait in the listen queue)."""

    MAX = 8
    daemon_threads = True
    request_queue_size = 32

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(self.MAX)

    def process_request(self, request, client_address):
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def server(folder: str | Path, port: int = 8000) -> http.server.HTTPServer:
    """A server for ``folder`` on 127.0.0.1 (port 0: any free one); call ``serve_forever``."""
    directory = str(Path(folder).resolve())

    def handler(*args, **kwargs):
        return _Handler(*args, directory=directory, **kwargs)

    try:
        return _Server(("127.0.0.1", port), handler)
    except OSError as err:
        raise UserError(f"--serve: cannot listen on 127.0.0.1:{port} ({err.strerror})") from None

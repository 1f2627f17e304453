"""Reading traces back: tolerant parsing, schema validation, Parquet export, a readable view."""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from core.errors import InputError, OutputError

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("trace.schema.json")
# turn_end keys stored as JSON text in Parquet (nested, variable shape); the rest are columns.
NESTED_KEYS = ("wake", "slots", "entities", "ms", "errors", "stages", "signals", "gold", "labels", "audio")


def trace_files(paths: Iterable[str | Path]) -> list[Path]:
    """Trace files named directly, or every ``*.jsonl`` inside the folders named."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*.jsonl")))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(p, "no such trace file or folder")
    if not out:
        raise InputError(", ".join(map(str, paths)), "no trace files (*.jsonl) found")
    return out


def read_records(path: str | Path) -> list[dict]:
    """Every complete record. A last line without its newline (a killed writer) is skipped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(path, f"cannot read ({err.strerror or err})") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        log.warning("%s: skipping a torn last line (%d bytes)", path, len(lines[-1]))
        lines.pop()
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(path, "not UTF-8 text", field=f"line {n}") from None
        except json.JSONDecodeError as err:
            raise InputError(path, f"not JSON ({err.msg})", field=f"line {n}") from None
        except RecursionError:
            raise InputError(path, "JSON nested too deeply", field=f"line {n}") from None
        if not isinstance(rec, dict) or "event" not in rec:
            raise InputError(path, "not a trace record", field=f"line {n}")
        out.append(rec)
    return out


def iter_records(paths: Iterable[str | Path]) -> Iterator[dict]:
    for f in trace_files(paths):
        yield from read_records(f)


def turn_ends(paths: Iterable[str | Path]) -> list[dict]:
    return [r for r in iter_records(paths) if r["event"] == "turn_end"]


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def validation_errors(record: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(record)'}: {e.message}" for e in _validator().iter_errors(record)
    ]


# Parquet ------------------------------------------------------------------------------


def to_row(record: dict) -> dict:
    row = {}
    for key, value in record.items():
        row[key] = json.dumps(value, ensure_ascii=False, sort_keys=True) if key in NESTED_KEYS else value
    for key, value in _obj(record.get("signals")).items():  # flat copies for quick analysis (DuckDB, pandas)
        row[f"signal_{key}"] = value
    labels = _obj(record.get("labels"))
    for source in ("oracle", "predicted"):
        lab = _obj(labels.get(source))
        row[f"{source}_failure_point"] = lab.get("failure_point")
        row[f"{source}_defect"] = lab.get("defect")
    return row


def from_row(row: dict) -> dict:
    record = {}
    for key, value in row.items():
        if key.startswith("signal_") or key.endswith(("_failure_point", "_defect")):
            continue
        record[key] = json.loads(value) if key in NESTED_KEYS and value is not None else value
    return record


def export_parquet(records: list[dict], out: str | Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    rows = [to_row(r) for r in records]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    try:
        table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
    except (pa.ArrowException, OverflowError, UnicodeError) as err:
        # a column whose values have no common type (an edited or foreign trace)
        first = str(err).strip().splitlines()
        raise InputError(
            "turn_end records", f"do not form one table ({first[0] if first else type(err).__name__})"
        ) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out)
    except OSError as err:
        raise OutputError(out, f"cannot write ({err.strerror or err})") from None
    return out


def read_parquet(path: str | Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [from_row({k: v for k, v in row.items()}) for row in pq.read_table(path).to_pylist()]


# A readable view ------------------------------------------------------------------------


def _obj(value) -> dict:
    """``value`` if it is a JSON object, else empty: a reader of any file must not trip on a
    record whose field has another type (``trace validate`` names those)."""
    return value if isinstance(value, dict) else {}


def _num(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def show(path: str | Path) -> str:
    records = read_records(path)
    lines: list[str] = []
    stage_ms: dict = {}
    for r in records:
        turn, stage = r.get("turn"), r.get("stage")
        if r["event"] in ("stage_end", "stage_error") and isinstance(turn, int) and isinstance(stage, str):
            stage_ms.setdefault(turn, {})[stage] = r.get("duration_ms", 0.0)
    meta = _obj(next((r.get("meta") for r in records if r["event"] == "session_start"), None))
    session = records[0].get("session") if records else Path(path).stem
    lines.append(
        f"session {session}  domain={meta.get('domain')}  start={meta.get('start_time')}  "
        f"device={_obj(meta.get('device')).get('id')}"
    )
    for r in records:
        if r["event"] == "near_miss":
            lines.append(
                f"\n  … near miss at {_num(r.get('start_s'), '.1f')} s: wake score {_num(r.get('score'), '.2f')}"
            )
            continue
        if r["event"] != "turn_end":
            continue
        wake = _obj(r.get("wake"))
        wake = f"[{wake.get('word')} {_num(wake.get('score'), '.2f')}] " if wake else ""
        lines.append(f'\nturn {r.get("turn")}  {wake}"{r.get("transcript") or ""}"')
        rewrite = _obj(r.get("rewrite"))
        if rewrite.get("dismissed"):
            lines.append(f"  ✕ dismissed by the {rewrite.get('source')}: nobody addressed it (no reply)")
        elif rewrite.get("source") not in (None, "none"):
            lines.append(f'  ↻ {rewrite.get("source")}: "{rewrite.get("text")}" ({_num(rewrite.get("score"), ".2f")})')
        lines.append(f"  → {r.get('intent')} {json.dumps(r.get('entities') or {})} {json.dumps(r.get('slots') or {})}")
        lines.append(f'  ← "{r.get("reply") or ""}" ({r.get("reply_type")}, {r.get("status")})')
        turn = r.get("turn")
        timing = "  ".join(
            f"{k} {_num(v, '.0f')}ms" for k, v in (stage_ms.get(turn, {}) if isinstance(turn, int) else {}).items()
        )
        lines.append(f"  ms: {timing}")
        for err in r.get("errors") if isinstance(r.get("errors"), list) else []:
            err = _obj(err)
            lines.append(f"  ! {err.get('code')}: {err.get('message')}")
        sig = _obj(r.get("signals"))
        flags = [k for k, v in sig.items() if v is True]
        lines.append(f"  signals: {', '.join(flags) or 'none'}; next turn after {sig.get('time_to_next_turn_s')} s")
        stages = _obj(r.get("stages"))
        conf = []
        if "asr" in stages:
            conf.append(f"asr logprob {_obj(_obj(stages['asr']).get('signals')).get('avg_logprob')}")
        if "nlu" in stages:
            nlu = _obj(_obj(stages["nlu"]).get("signals"))
            conf.append(f"nlu p={nlu.get('intent_confidence')} margin={nlu.get('intent_margin')}")
        if conf:
            lines.append("  confidence: " + ", ".join(conf))
        labels = _obj(r.get("labels"))
        for source in ("oracle", "predicted"):
            label = _obj(labels.get(source))
            if label:
                lines.append(f"  {source}: {label.get('failure_point')} (defect={label.get('defect')})")
        if r.get("correct") is not None:
            lines.append(f"  gold: {'correct' if r['correct'] else 'WRONG'}")
    return "\n".join(lines)

"""How fast a big trace view opens, and how much memory it takes, in headless Chromium.

  .venv/bin/python tools/view_bench.py SMALL_RUN_DIR [--sessions 10000] [--work DIR]

Simulating 10,000 sessions takes a long while, so this replicates a small run's sessions under
new ids (``<id>-r0042``) into WORK/traces until there are --sessions of them, builds the view
(``hooks.view.build``) into WORK/view and opens it in headless Chromium: the time from navigation
to the first rendered table (performance.now), to the whole index loaded, a filter over every
session, opening a session; and the JS heap (DevTools Runtime.getHeapUsage). Prints JSON.
Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hooks.trace_reader import read_records, trace_files  # noqa: E402
from hooks.view import build  # noqa: E402
from tests import chromium  # noqa: E402

log = logging.getLogger("view_bench")


def replicate(src: Path, dst: Path, sessions: int) -> int:
    """Copies of ``src``'s sessions with new ids until there are ``sessions``; returns how many."""
    files = trace_files([src])
    originals = [(f, read_records(f)) for f in files]
    dst.mkdir(parents=True, exist_ok=True)
    n = 0
    copy = 0
    while n < sessions:
        for f, records in originals:
            if n >= sessions:
                break
            sid = f"{records[0]['session']}-r{copy:04d}"
            lines = []
            for r in records:
                r = dict(r, session=sid)
                for key in ("audio",):  # audio references follow the new session folder
                    if isinstance(r.get(key), dict):
                        r[key] = {k: f"{sid}/{Path(v).name}" for k, v in r[key].items()}
                lines.append(json.dumps(r, ensure_ascii=False, separators=(",", ":")))
            (dst / f"{sid}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
            audio = f.with_suffix("")
            if audio.is_dir():
                (dst / sid).mkdir(exist_ok=True)
                for wav in audio.glob("*.wav"):
                    os.link(wav, dst / sid / wav.name)
            n += 1
        copy += 1
    return n


def renderer_memory_mb(root_pid: int) -> dict | None:
    """The page's renderer process under ``root_pid`` (chromedriver), from /proc: resident,
    proportional (shared pages split between the processes using them) and private dirty memory
    (what Chrome's task manager calls the tab's footprint, near enough)."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            children.setdefault(int(fields["PPid"]), []).append(int(fields["Pid"]))
        except (OSError, KeyError, ValueError):
            continue
    todo, found = [root_pid], []
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"--type=renderer" not in cmd or b"--top-chrome-webui" in cmd:
                continue
            roll = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
            kb = {line.split(":")[0]: int(line.split()[1]) for line in roll}
            found.append(
                {
                    "rss": round(kb["Rss"] / 1024, 1),
                    "pss": round(kb["Pss"] / 1024, 1),
                    "private_dirty": round(kb["Private_Dirty"] / 1024, 1),
                }
            )
        except (OSError, KeyError, ValueError, IndexError):
            continue
    return max(found, key=lambda m: m["private_dirty"]) if found else None


def measure(page: Path) -> dict:
    found = chromium.find()
    if found is None:
        raise SystemExit("view_bench: chromium and chromium-driver are not installed")
    with chromium.Browser(*found, width=1280, height=900, timeout=60) as b:
        b.cdp("HeapProfiler.enable")
        b.get(page.as_uri())
        b.wait("window.VIEW_TIMING && window.VIEW_TIMING.firstRender")
        first = b.js("return window.VIEW_TIMING.firstRender")
        heap_first = b.cdp("Runtime.getHeapUsage")
        b.wait("window.VIEW_TIMING.allLoaded", timeout=120)
        timing = b.js("return window.VIEW_TIMING")
        b.cdp("HeapProfiler.collectGarbage")
        heap_all = b.cdp("Runtime.getHeapUsage")
        # a filter over every session, from the change to the rendered table
        t0 = time.perf_counter()
        filt = b.js(
            "const t = performance.now(); location.hash = '#fp=asr'; "
            "window.dispatchEvent(new HashChangeEvent('hashchange')); "
            "return [performance.now() - t, document.querySelector('#count').textContent];"
        )
        filt_wall = time.perf_counter() - t0
        key = b.js("return document.querySelector('#sessions tbody tr').dataset.key")
        t0 = time.perf_counter()
        b.js("location.hash = arguments[0];", f"#fp=asr&s={key}")
        b.wait("document.querySelector('#turn-detail')")
        open_session = time.perf_counter() - t0
        b.cdp("HeapProfiler.collectGarbage")
        heap_session = b.cdp("Runtime.getHeapUsage")
        rss = renderer_memory_mb(b.proc.pid)
        mem = b.js(
            "return performance.memory ? {used: performance.memory.usedJSHeapSize, "
            "total: performance.memory.totalJSHeapSize} : null"
        )
    mb = 1024 * 1024
    return {
        "first_table_ms": round(first, 1),
        "index_loaded_ms": round(timing["allLoaded"], 1),
        "shards": timing["shards"],
        "filter_ms_in_page": round(filt[0], 1),
        "filter_wall_s": round(filt_wall, 3),
        "filter_count": filt[1],
        "open_session_wall_s": round(open_session, 3),
        "heap_used_mb_first_table": round(heap_first["usedSize"] / mb, 1),
        "heap_used_mb_index_loaded": round(heap_all["usedSize"] / mb, 1),
        "heap_used_mb_session_open": round(heap_session["usedSize"] / mb, 1),
        "heap_total_mb": round(heap_session["totalSize"] / mb, 1),
        "renderer_mb": rss,
        "performance_memory_mb": {k: round(v / mb, 1) for k, v in mem.items()} if mem else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="a small run's trace folder")
    parser.add_argument("--sessions", type=int, default=10000)
    parser.add_argument("--work", help="where to write the copies and the view (default: a temporary folder, removed)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="view-bench-"))
    try:
        traces = work / "traces"
        shutil.rmtree(traces, ignore_errors=True)
        t0 = time.perf_counter()
        n = replicate(Path(args.src), traces, args.sessions)
        replicate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = build([traces], work / "view")
        build_s = time.perf_counter() - t0
        data = work / "view" / "data"
        index_bytes = sum(p.stat().st_size for p in data.glob("index-*.js"))
        session_bytes = sum(p.stat().st_size for p in (data / "s").glob("*.js"))
        out = {
            "sessions": n,
            "turns": result.turns,
            "replicate_s": round(replicate_s, 1),
            "build_s": round(build_s, 1),
            "index_mb": round(index_bytes / 2**20, 2),
            "session_files_mb": round(session_bytes / 2**20, 1),
            **measure(result.page),
        }
        print(json.dumps(out, indent=1))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where outputs go: file names made from ids, paths kept inside their folder, output checks.

Ids come from manifests and command lines, so they are untrusted: ``/abs/x``, ``../../x`` or
``..`` must never steer a write outside the folder the user named. Every path built from an id
goes through :func:`safe_name`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from core.errors import OutputError

log = logging.getLogger(__name__)

MAX_NAME = 100  # well under every file system's 255-byte limit, with room for suffixes


def safe_name(ident: str) -> str:
    """``ident`` as one file name component: unchanged when already safe, otherwise with unsafe
    characters replaced and a short hash of the original appended, so that two ids that only
    differ in unsafe characters (``a/b``, ``a_b``) never share a file."""
    # no leading dot or dash: no hidden files, no names a shell tool reads as an option
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in ident).lstrip(".-")
    if name and name == ident and len(name.encode("utf-8")) <= MAX_NAME:
        return name
    digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{name[: MAX_NAME // 2] or 'id'}-{digest}"


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (symlinks and ``..`` resolved) lies inside ``folder``."""
    base, target = folder.resolve(), path.resolve()
    return target != base and base in target.parents


def ensure_output_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and prove a file can be written there, before any work starts.

    Raises :class:`OutputError` naming the folder. (``os.access`` is no test: root passes it.)"""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(p, "exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=p, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(p, f"cannot write to this folder ({err.strerror or err})") from None
    return p


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON through a temporary file and a rename: readers see the old file or the new
    one, never half of one. Raises :class:`OutputError` naming ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputError(path, f"cannot write ({err.strerror or err})") from None
    return path

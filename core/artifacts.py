"""Reading the project's JSON artifacts (error models, measurements, learned files): a missing
file, broken JSON, another format or a bad field is one InputError naming the file."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from core.errors import InputError

log = logging.getLogger(__name__)


def read_json_artifact(path: str | Path, fmt: str, what: str, missing: str) -> dict[str, Any]:
    """The artifact at ``path`` as a dict whose ``format`` is ``fmt``. ``what``: the kind, with
    its article ("an ASR error model"); ``missing``: the error for a file that is not there."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, missing) from None
    except json.JSONDecodeError as err:
        raise InputError(path, f"invalid JSON ({err.msg})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise InputError(path, f"not {what} (format must be {fmt})", field="format")
    return data


def artifact_number(path: str | Path, value: Any, field: str, low: float, high: float, open_low: bool = False) -> float:
    """``value`` as a float within [low, high] ((low, high] with ``open_low``), else an
    InputError naming the file and field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(path, f"must be a number, got {value!r}", field=field)
    if not (low < value if open_low else low <= value) or value > high:
        raise InputError(path, f"must be within {'(' if open_low else '['}{low:g}, {high:g}], got {value}", field=field)
    return float(value)

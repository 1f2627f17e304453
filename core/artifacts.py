"""Reading the project's JSON artifacts (error models, measurements, learned files): a missing
file, broken JSON or another format is one InputError naming the file."""

from __future__ import annotations

import json
import logging
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

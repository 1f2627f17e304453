"""Errors the user can act on. Each prints as one line; the CLI maps them to exit code 2."""
from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input or usage: reported as one line, exit code 2, never a traceback."""


class InputError(UserError):
    """A file (or a field inside one) that cannot be used, named in the message."""

    def __init__(self, path: str | Path, reason: str, field: str | None = None):
        self.path = str(path)
        self.reason = reason
        self.field = field
        where = f"{self.path}: {field}" if field else self.path
        super().__init__(f"{where}: {reason}")


class ConfigError(UserError):
    """A configuration key or value that is not valid."""


class ModelMissing(UserError):
    """A model that is not installed, with how to get it."""

    def __init__(self, model: str, how: str):
        self.model = model
        super().__init__(f"model {model!r} is not installed: {how}")

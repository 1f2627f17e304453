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


class OutputError(Exception):
    """An output (file or folder) that could not be written, named in the message.

    Not a :class:`UserError`: the CLI maps it to exit code 3, so scripts can tell "your input is
    bad" (2) from "the results were not all saved" (3)."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # raised in simulator worker processes and pickled back to the parent
        return (type(self), (self.path, self.reason))

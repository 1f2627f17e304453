"""What every stage is: a name, a record type it returns, and ``run(input, ctx)``."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


class StageFailure(Exception):
    """A stage's own, expected failure with a stable code (e.g. ``nlu-no-intent``)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@runtime_checkable
class Stage(Protocol):
    name: str

    def run(self, stage_input: Any, ctx: Any) -> Any: ...

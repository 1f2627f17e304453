"""The hook bus: observers watch stage-boundary events, interceptors may replace stage outputs.

Observers never change anything and can never break the pipeline: one that raises is
disabled with a single warning. Interceptors are part of the computation (fault injection,
gold substitution); an interceptor that raises fails its stage like the stage itself would.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

EVENT_KINDS = (
    "session_start",
    "turn_start",
    "stage_start",
    "stage_end",
    "stage_chunk",  # a streaming stage's partial output (tts: a sentence of audio, playable now)
    "stage_error",
    "near_miss",  # speech the wake stage did not wake for, though it came close (data: the Utterance)
    "turn_end",
    "session_end",
)


@dataclass(frozen=True)
class Event:
    kind: str
    session: str
    turn: int | None = None
    stage: str | None = None
    t: float = field(default_factory=time.monotonic)  # monotonic seconds
    duration_ms: float | None = None
    data: Any = None  # the stage's input (start), output record (end), StageError, Turn …
    meta: Any = None  # extra context: the session object on session events, etc.

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")


@runtime_checkable
class Observer(Protocol):
    def on_event(self, event: Event) -> None: ...


# Where an interceptor runs among the bus's others, whatever the order they were added in
# (lower first; equal orders keep the order of adding).
INJECT = 0  # changes stage outputs (fault injection, plugins)
SUBSTITUTE = 50  # overrides them (gold substitution: a fault in a stage gold replaces does not apply)
LABEL = 100  # reads the finished turn with what the others recorded in it (oracle labels)


class Interceptor:
    """Base class: override any hook. Returning ``None`` from ``before`` runs the stage.
    ``order`` places it among the bus's interceptors (:data:`INJECT`, :data:`SUBSTITUTE`,
    :data:`LABEL`)."""

    order: int = INJECT

    def before(self, stage: str, stage_input: Any, ctx: Any) -> Any | None:
        return None

    def after(self, stage: str, stage_input: Any, output: Any, ctx: Any) -> Any:
        return output

    def start_turn(self, turn: Any, session: Any) -> None:
        """Called before a turn's first stage (labelers snapshot the session here)."""

    def finish_turn(self, turn: Any, session: Any) -> Any:
        """The finished turn before ``turn_end`` is emitted (labelers attach labels here)."""
        return turn

    def discard_turn(self, session: str, turn: int) -> None:
        """Stages ran for a turn that will not exist (a wake check that did not wake): forget
        what was noted for it."""


class HookBus:
    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self._interceptors: list[Interceptor] = []
        self._hooks_by_name: dict[str, list] = {}  # bound hook methods, until the list changes

    # registration -------------------------------------------------------------------
    def add_observer(self, observer: Observer) -> Observer:
        if not callable(getattr(observer, "on_event", None)):
            raise TypeError(f"{observer!r} has no on_event(event) method")
        self._observers.append(observer)
        return observer

    def remove_observer(self, observer: Observer) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def add_interceptor(self, interceptor: Interceptor) -> Interceptor:
        self._interceptors.append(interceptor)
        self._interceptors.sort(key=lambda i: getattr(i, "order", INJECT))  # stable: ties keep adding order
        self._hooks_by_name.clear()
        return interceptor

    def remove_interceptor(self, interceptor: Interceptor) -> None:
        if interceptor in self._interceptors:
            self._interceptors.remove(interceptor)
            self._hooks_by_name.clear()

    @property
    def observers(self) -> tuple[Observer, ...]:
        return tuple(self._observers)

    @property
    def interceptors(self) -> tuple[Interceptor, ...]:
        return tuple(self._interceptors)

    # dispatch -----------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        for observer in tuple(self._observers):
            try:
                observer.on_event(event)
            except Exception as err:  # an observer must never break the pipeline
                self._observers.remove(observer)
                log.warning(
                    "observer %s raised on %s (%s: %s); it is disabled for the rest of the run",
                    type(observer).__name__,
                    event.kind,
                    type(err).__name__,
                    err,
                )

    # Interceptors may be duck-typed (plugins): a missing hook method means "no change".
    # Looked up once per bus and hook, not at every stage boundary.
    def _hooks(self, name: str):
        hooks = self._hooks_by_name.get(name)
        if hooks is None:
            hooks = [h for h in (getattr(i, name, None) for i in self._interceptors) if callable(h)]
            self._hooks_by_name[name] = hooks
        return hooks

    def before(self, stage: str, stage_input: Any, ctx: Any) -> Any | None:
        for hook in self._hooks("before"):
            replaced = hook(stage, stage_input, ctx)
            if replaced is not None:
                return replaced
        return None

    def after(self, stage: str, stage_input: Any, output: Any, ctx: Any) -> Any:
        for hook in self._hooks("after"):
            output = hook(stage, stage_input, output, ctx)
        return output

    def start_turn(self, turn: Any, session: Any) -> None:
        for hook in self._hooks("start_turn"):
            hook(turn, session)

    def finish_turn(self, turn: Any, session: Any) -> Any:
        for hook in self._hooks("finish_turn"):
            turn = hook(turn, session)
        return turn

    def discard_turn(self, session: str, turn: int) -> None:
        for hook in self._hooks("discard_turn"):
            hook(session, turn)

"""Sessions, turns and the context stages see.

A :class:`Turn` is an immutable record of everything one request produced, stage by stage.
A :class:`Session` holds the turns, the world and the dialogue state; stages receive a
read-only :class:`TurnContext` built from it and never own it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from core.config import Config
from core.domain import Domain
from core.pipeline import STAGE_OUTPUTS
from core.records import (
    Candidate,
    Interpretation,
    Outcome,
    Resolution,
    Rewrite,
    Speech,
    StageError,
    Transcript,
    Utterance,
    WakeEvent,
    frozen_map,
)
from core.world import World

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceContext:
    """The assistant device the user talks to (built by :func:`device_context`)."""

    id: str
    room: str
    screen: bool
    # this device's learned wake threshold (assistant/wake_threshold.py); None: the configured one
    wake_threshold: float | None = None


def device_context(device: Mapping | None, config: Config) -> DeviceContext:
    """The device a session names; the configured one (``session.device_*``) for what it leaves out."""
    named = device or {}
    return DeviceContext(
        id=named.get("id", config["session.device_id"]),
        room=named.get("room", config["session.device_room"]),
        screen=bool(named.get("screen", config["session.screen"])),
    )


@dataclass(frozen=True)
class UserContext:
    id: str = "user"
    home: str | None = None  # place id of the user's home
    history: Mapping[str, Mapping[str, int]] = field(default_factory=frozen_map)  # type → id → count

    def count(self, entity_type: str, entity_id: str) -> int:
        return int(self.history.get(entity_type, {}).get(entity_id, 0))

    def remember(self, entity_type: str, entity_id: str) -> "UserContext":
        by_type = dict(self.history.get(entity_type, {}))
        by_type[entity_id] = by_type.get(entity_id, 0) + 1
        history = dict(self.history)
        history[entity_type] = frozen_map(by_type)
        return replace(self, history=frozen_map(history))


@dataclass(frozen=True)
class Pending:
    """A question the assistant asked and is waiting on."""

    kind: str  # elicit | confirm | clarify
    intent: str
    args: Mapping = field(default_factory=frozen_map)
    slot: str | None = None  # the slot elicited or clarified
    options: tuple[Candidate, ...] = ()
    question: str = ""  # what the assistant asked, to ask again


@dataclass(frozen=True)
class DialogueState:
    pending: Pending | None = None
    last_intent: str | None = None
    last_args: Mapping = field(default_factory=frozen_map)
    salient: Mapping[str, Mapping] = field(default_factory=frozen_map)  # type → {"id", "name"}


@dataclass(frozen=True)
class Gold:
    """What the user meant and what should have happened (when known)."""

    transcript: str | None = None
    intent: str | None = None  # None with ``out_of_domain`` = the request is not servable
    slots: Mapping[str, Any] = field(default_factory=frozen_map)
    entities: Mapping[str, str] = field(default_factory=frozen_map)
    out_of_domain: bool = False
    wake: bool | None = None  # was the assistant addressed (for continuous audio)
    reply_type: str | None = None
    act: str | None = None  # what the NLU should say: the utterance's own intent
    spans: tuple[tuple[str, str, Any], ...] = ()  # (slot, words, value) the NLU should find

    @property
    def has_outcome(self) -> bool:
        return self.out_of_domain or self.intent is not None


@dataclass(frozen=True)
class Turn:
    session: str
    index: int
    source: str = ""  # where the input came from (file, offset)
    start_s: float = 0.0  # position in the session's audio timeline
    text_input: str | None = None  # typed / simulated text when the turn starts at nlu
    wake: WakeEvent | None = None
    utterance: Utterance | None = None  # what the ASR hears (the wake stage's cut, or the input)
    transcript: Transcript | None = None
    interpretation: Interpretation | None = None
    resolution: Resolution | None = None
    outcome: Outcome | None = None
    speech: Speech | None = None
    errors: tuple[StageError, ...] = ()
    ms: Mapping[str, float] = field(default_factory=frozen_map)
    gold: Gold | None = None
    reply_audio: str | None = None  # path of the written reply, when written
    barge_in: bool = False  # this turn's speech began while the previous reply played
    heard_from: Utterance | None = None  # the raw input of a turn that starts at the wake stage
    labels: Mapping[str, Any] = field(default_factory=frozen_map)  # "oracle" / "predicted" → label
    latency_s: float | None = None  # modelled input end → reply start (simulated users, so that
    # runs repeat exactly); None: the stages' measured times
    rewrite: Rewrite | None = None  # the rewrite step's decision, when on

    def with_stage(self, stage: str, output: Any, ms: float) -> "Turn":
        key = STAGE_OUTPUTS[stage].field
        timings = dict(self.ms)
        timings[stage] = round(ms, 2)
        changes = {key: output, "ms": frozen_map(timings)}
        if stage == "wake" and output is not None:
            changes["wake"] = output.wake
        return _evolve(self, changes)

    def with_error(self, error: StageError, ms: float) -> "Turn":
        timings = dict(self.ms)
        timings[error.stage] = round(ms, 2)
        return _evolve(self, {"errors": self.errors + (error,), "ms": frozen_map(timings)})


def _evolve(turn: Turn, changes: dict) -> Turn:
    """``dataclasses.replace`` for a Turn (which has no ``__post_init__`` or init-only fields):
    the fields copied as they are. A turn is rebuilt after every stage of every run and oracle
    replay, and replace's walk over the fields cost several times the copy."""
    new = object.__new__(type(turn))
    new.__dict__.update(turn.__dict__)
    new.__dict__.update(changes)
    return new


@dataclass(frozen=True)
class TurnContext:
    session: str
    turn: int
    now: dt.datetime
    domain: Domain
    device: DeviceContext
    user: UserContext
    dialogue: DialogueState
    world: World  # read it; only the respond stage's APIs change it


class Session:
    def __init__(
        self,
        session_id: str,
        domain: Domain,
        world: World,
        device: DeviceContext,
        user: UserContext | None = None,
        meta: Mapping | None = None,
    ):
        self.id = session_id
        self.domain = domain
        self.world = world
        self.device = device
        self.user = user or UserContext(home=world.get("home"))
        self.dialogue = DialogueState()
        self.turns: list[Turn] = []
        self.meta = dict(meta or {})
        self.start_clock = world.clock

    def clock_at(self, offset_s: float) -> dt.datetime:
        return self.start_clock + dt.timedelta(seconds=offset_s)

    def snapshot(self) -> "Session":
        """An independent copy (world included) for counterfactual replays."""
        other = Session(self.id, self.domain, self.world.snapshot(), self.device, self.user, self.meta)
        other.dialogue = self.dialogue
        other.turns = list(self.turns)
        other.start_clock = self.start_clock
        return other

    def context(self, turn_index: int, now: dt.datetime | None = None) -> TurnContext:
        return TurnContext(
            session=self.id,
            turn=turn_index,
            now=now or self.world.clock,
            domain=self.domain,
            device=self.device,
            user=self.user,
            dialogue=self.dialogue,
            world=self.world,
        )

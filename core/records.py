"""Immutable records exchanged between stages.

Each stage returns one record carrying what it decided *and* how sure it was. Records are
frozen; a stage that wants to change something builds a new record (``dataclasses.replace``),
so a trace shows exactly what each stage received and returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from types import MappingProxyType
from typing import Any, Mapping

from core.audio import Audio


def frozen_map(d: Mapping | None = None) -> Mapping:
    """A read-only view of a copy of ``d`` (records must not share mutable state)."""
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class WakeEvent:
    word: str  # e.g. "alexa"
    score: float  # peak detector score in [0, 1]
    start_s: float  # where the wake word was first heard, in stream time
    end_s: float  # where the detector's score fell back below threshold
    model: str = ""
    heard: str | None = None  # what the wake verifier heard (stages/wake_verify.py); None: not verified


@dataclass(frozen=True)
class Utterance:
    """A command's audio as cut from the input, with where it came from."""

    audio: Audio
    start_s: float = 0.0
    end_s: float = 0.0
    endpoint: str = "pre_segmented"  # silence | complete | max_length | end_of_input | no_speech | wake_word | pre_segmented | no_wake
    wake: WakeEvent | None = None
    source: str = ""
    spoken: str | None = None  # the words said, when known (simulated users); never gold
    condition: str = ""  # acoustic condition id (simulation), e.g. "pink@10"
    voice: str = ""  # the synthetic speaker's voice id (simulation), e.g. "flite:kal:r1.1"
    endpoint_note: str = (
        ""  # the turn-end judge's last verdict (stages/turn_end.py), e.g. 'complete: TurnOn 0.98, slots complete'
    )
    # no wake: the detector's peak score when it came close (>= stages.wake.NEAR_MISS_FLOOR),
    # what a device logs as a near miss; None otherwise
    near_miss: float | None = None

    @property
    def heard(self) -> bool:
        """False when the wake stage heard no wake word: the assistant stays asleep."""
        return self.endpoint != "no_wake"


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    model: str = ""
    source: str = "asr"  # asr | text (typed or simulated input) | gold

    @property
    def confidence(self) -> float:
        """exp(avg_logprob): the mean per-token probability, a rough [0, 1] confidence."""
        return float(math.exp(self.avg_logprob)) if self.text else 0.0


@dataclass(frozen=True)
class Slot:
    name: str
    text: str  # the words as heard
    value: Any  # normalized value (see docs/domains.md "Slot values")
    type: str  # catalog type or builtin
    start: int = -1  # character span in the interpreted text
    end: int = -1
    confidence: float | None = None  # None: the tagger gives no per-span probability


@dataclass(frozen=True)
class IntentScore:
    intent: str
    score: float


@dataclass(frozen=True)
class Interpretation:
    text: str
    domain: str
    intent: str | None  # None when out of domain
    confidence: float
    slots: tuple[Slot, ...] = ()
    nbest: tuple[IntentScore, ...] = ()
    out_of_domain: bool = False
    model: str = ""
    coverage: float = 1.0  # share of the words the domain's language knows

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)

    @property
    def margin(self) -> float:
        """Top-1 minus top-2 intent score: small margins mark confusable turns."""
        if len(self.nbest) < 2:
            return self.confidence
        return self.nbest[0].score - self.nbest[1].score


@dataclass(frozen=True)
class Candidate:
    id: str
    name: str
    score: float
    method: str  # exact | fuzzy | partial | phonetic | embedding | context


@dataclass(frozen=True)
class Entity:
    slot: str
    type: str
    text: str
    id: str | None  # None when nothing matched well enough
    name: str | None
    score: float
    candidates: tuple[Candidate, ...] = ()
    method: str = ""  # how the winner was found, plus "+context" if context decided
    attributes: Mapping = field(default_factory=frozen_map)


@dataclass(frozen=True)
class Clarification:
    slot: str
    question: str
    options: tuple[Candidate, ...]


@dataclass(frozen=True)
class Resolution:
    intent: str | None
    entities: tuple[Entity, ...] = ()
    values: Mapping = field(default_factory=frozen_map)  # builtin slot name → normalized value
    clarification: Clarification | None = None
    carried: tuple[str, ...] = ()  # slots filled from dialogue context

    def entity(self, slot: str) -> Entity | None:
        return next((e for e in self.entities if e.slot == slot), None)

    @property
    def min_score(self) -> float:
        return min((e.score for e in self.entities), default=1.0)


REPLY_TYPES = ("action", "answer", "elicit", "confirm", "clarify", "apology", "out_of_domain")


@dataclass(frozen=True)
class Outcome:
    """What the assistant did: the request it executed (or is building) and what it said."""

    intent: str | None
    args: Mapping = field(default_factory=frozen_map)  # the request's arguments, ids/values
    api: str | None = None
    status: str = "ok"  # ok | elicit | confirm | clarify | failed | unsupported | error
    result: Mapping = field(default_factory=frozen_map)  # what the API returned
    reply: str = ""
    reply_type: str = "action"
    expects: str | None = None  # slot being elicited or the question pending

    def __post_init__(self) -> None:
        if self.reply_type not in REPLY_TYPES:
            raise ValueError(f"reply_type {self.reply_type!r} not in {REPLY_TYPES}")


@dataclass(frozen=True)
class Speech:
    text: str
    audio: Audio
    backend: str
    voice: str
    first_chunk_ms: float = 0.0  # time until the first sentence's audio was ready


@dataclass(frozen=True)
class StageError:
    stage: str
    code: str  # e.g. "asr-failed", "nlu-timeout"
    message: str


def to_jsonable(obj: Any) -> Any:
    """Records → plain JSON values. Audio becomes a short description (written elsewhere)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Audio):
        return {"sample_rate": obj.sample_rate, "duration_s": round(obj.duration_s, 3)}
    if is_dataclass(obj):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalar
        return to_jsonable(obj.item())
    return str(obj)


@dataclass(frozen=True)
class Rewrite:
    """What the rewrite step decided for one request."""

    original: str
    text: str  # what the NLU reads (``original`` when nothing changed)
    source: str = "none"  # table[_personal|_near] | personal | global | concept | teach | forget | gate | none
    score: float = 0.0  # the table's probability of success, or the ranking score
    support: int = 0  # chains (table) or successful requests (index) behind it
    considered: str = ""  # the best candidate, also when it was not good enough
    reply: str | None = None  # the step answers itself (the teaching dialogue)
    expects: str | None = None  # … with a question: what the next turn should say ("concept")
    dismissed: bool = False  # nobody addressed it (the wake gate): no answer, back to sleep

    @property
    def changed(self) -> bool:
        return self.text != self.original

"""The pipeline's fixed vocabulary, in one place: its stages in order, the record each stage
returns and the :class:`~core.session.Turn` field that keeps it, and the failure points the
oracle and the learned labelers assign to a turn."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Mapping

from core.records import Interpretation, Outcome, Resolution, Speech, Transcript, Utterance


class Stage(str, Enum):
    WAKE = "wake"
    ASR = "asr"
    NLU = "nlu"
    RESOLVE = "resolve"
    RESPOND = "respond"
    TTS = "tts"


STAGES: tuple[str, ...] = tuple(s.value for s in Stage)  # in the order they run


@dataclass(frozen=True)
class StageOutput:
    record: type  # what the stage must return (an interceptor returning anything else fails it)
    field: str  # the Turn field that keeps it


STAGE_OUTPUTS: Mapping[str, StageOutput] = MappingProxyType(
    {
        Stage.WAKE.value: StageOutput(Utterance, "utterance"),  # the wake stage's cut of the input
        Stage.ASR.value: StageOutput(Transcript, "transcript"),
        Stage.NLU.value: StageOutput(Interpretation, "interpretation"),
        Stage.RESOLVE.value: StageOutput(Resolution, "resolution"),
        Stage.RESPOND.value: StageOutput(Outcome, "outcome"),
        Stage.TTS.value: StageOutput(Speech, "speech"),
    }
)


class FailurePoint(str, Enum):
    """The first stage whose error made a turn wrong (``result``: the domain API or the reply;
    ``correct``: nothing did)."""

    WAKE = "wake"
    ASR = "asr"
    NLU = "nlu"
    RESOLVE = "resolve"
    RESULT = "result"
    CORRECT = "correct"


FAILURE_POINTS: tuple[str, ...] = tuple(f.value for f in FailurePoint)

"""Oracle failure-point labels by counterfactual gold substitution (DESIGN "Failure points").

A turn is correct when its outcome matches what the user asked for. For an incorrect turn the
turn is replayed from the session as it was before the turn, with gold outputs substituted for
stages 1..k (k = wake, asr, nlu, resolve); the failure point is the first k whose substitution
makes the outcome correct, else ``result`` (the response stage itself went wrong). Replays run
on a forked assistant whose bus holds only the gold substitution and the run's fault injector,
so they write no trace and meet the same injected faults.

Double failures: the failure point is the *first* component that failed irrecoverably. The
prefix rule alone names the last of two failures — a garbled transcript, then an NLU fault on it,
is labeled ``nlu``; a garbled transcript of a request the resolver would also have got wrong is
labeled ``resolve`` — although the later component never saw a right input to fail on and nothing
in the turn shows its failure. So a stage k that got its input right (gold before it) and whose
own output, followed by healthy later stages (their natural behavior, no injected faults), gives
a wrong outcome that gold at k would have changed, is the failure point even when gold at k
alone does not make the outcome right.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from core.correctness import judge, responded_as_addressed
from core.domain import BUILTIN_TYPES, Domain
from core.pipeline import STAGES
from core.records import (
    Candidate,
    Entity,
    Interpretation,
    Resolution,
    Slot,
    Transcript,
    Utterance,
    WakeEvent,
    frozen_map,
    to_jsonable,
)
from core.session import Gold, Session, Turn
from hooks.bus import LABEL, SUBSTITUTE, HookBus, Interceptor

log = logging.getLogger(__name__)

SUBSTITUTABLE = ("wake", "asr", "nlu", "resolve")


def gold_output(stage: str, gold: Gold, stage_input: Any, domain: Domain, wake_word: str) -> Any:
    """What a perfect ``stage`` would have returned for this turn (a wake stage listening for
    ``wake_word``)."""
    if stage == "wake":
        utt: Utterance = stage_input
        if gold.wake is False:
            return replace(utt, endpoint="no_wake", wake=None)
        return replace(
            utt,
            endpoint="silence",
            spoken=gold.transcript,
            wake=WakeEvent(word=wake_word, score=1.0, start_s=utt.start_s, end_s=utt.start_s, model="gold"),
        )
    if stage == "asr":
        return Transcript(text=gold.transcript or "", source="gold", model="gold")
    if stage == "nlu":
        if gold.out_of_domain or gold.act is None:
            return Interpretation(
                text=gold.transcript or "",
                domain=domain.name,
                intent=None,
                confidence=1.0,
                out_of_domain=True,
                model="gold",
            )
        types = domain.slot_types
        slots = tuple(
            Slot(
                name=name,
                text=words,
                value=value if types.get(name) in BUILTIN_TYPES else words,
                type=types.get(name, name),
            )
            for name, words, value in gold.spans
        )
        return Interpretation(
            text=gold.transcript or "", domain=domain.name, intent=gold.act, confidence=1.0, slots=slots, model="gold"
        )
    if stage == "resolve":
        if gold.out_of_domain:
            return Resolution(intent=None)
        if gold.act in ("Affirm", "Deny"):
            return Resolution(intent=gold.act)
        spec = domain.intents.get(gold.intent)
        entities = []
        for slot, value_id in gold.entities.items():
            slot_type = spec.slots[slot].type if spec and slot in spec.slots else slot
            catalog = domain.catalog_for(slot_type)
            v = catalog.get(value_id) if catalog else None
            name = v.name if v else str(value_id)
            entities.append(
                Entity(
                    slot=slot,
                    type=slot_type,
                    text=name,
                    id=value_id,
                    name=name,
                    score=1.0,
                    candidates=(Candidate(value_id, name, 1.0, "gold"),),
                    method="gold",
                )
            )
        return Resolution(
            intent=gold.intent,
            entities=tuple(sorted(entities, key=lambda e: e.slot)),
            values=frozen_map(dict(gold.slots)),
        )
    raise ValueError(f"no gold for stage {stage}")


class GoldSubstitution(Interceptor):
    """Replaces the outputs of the stages up to and including ``upto`` with gold."""

    order = SUBSTITUTE  # after injectors: a fault injected into a stage gold replaces does not apply

    def __init__(self, gold: Gold, upto: str, domain: Domain, wake_word: str):
        self.gold = gold
        self.stages = STAGES[: STAGES.index(upto) + 1]
        self.domain = domain
        self.wake_word = wake_word

    def before(self, stage: str, stage_input: Any, ctx) -> Any | None:
        if stage in self.stages:
            return gold_output(stage, self.gold, stage_input, self.domain, self.wake_word)
        return None

    def after(self, stage: str, stage_input: Any, output: Any, ctx) -> Any:
        if stage in self.stages:
            return gold_output(stage, self.gold, stage_input, self.domain, self.wake_word)
        return output


def agrees_with_gold(stage: str, turn: Turn, domain: Domain) -> bool:
    """Whether ``stage``'s output in this run already is what gold substitution would give."""
    from stages.nlu.text import prepare

    gold = turn.gold
    if stage == "wake":
        heard = responded_as_addressed(turn)
        return heard == (gold.wake is not False)
    if stage == "asr":
        return turn.transcript is not None and prepare(turn.transcript.text) == prepare(gold.transcript or "")
    if stage == "nlu":
        interp = turn.interpretation
        if interp is None:
            return False
        if gold.out_of_domain or gold.act is None:
            return interp.out_of_domain
        found = sorted((s.name, s.text) for s in interp.slots)
        return interp.intent == gold.act and found == sorted((n, w) for n, w, _v in gold.spans)
    return False


def fault_kinds(faults) -> tuple[str, ...]:
    """Fault kinds (as in --faults) from a turn's recorded faults ("wake:false-accept", …)."""
    kinds = []
    for f in faults:
        stage, _sep, what = str(f).partition(":")
        kinds.append("false_wake" if stage == "wake" and what == "false-accept" else stage)
    return tuple(dict.fromkeys(kinds))


# the pipeline stage each fault kind breaks
FAULT_STAGE = {
    "wake": "wake",
    "false_wake": "wake",
    "asr": "asr",
    "nlu": "nlu",
    "resolve": "resolve",
    "result": "respond",
}


def faults_upto(kinds: tuple[str, ...], stage: str) -> tuple[str, ...]:
    """The fault kinds that broke ``stage`` or a stage before it."""
    return tuple(k for k in kinds if STAGES.index(FAULT_STAGE.get(k, "respond")) <= STAGES.index(stage))


def first_stage(turn: Turn) -> str:
    """The stage this turn started at (its first timed stage)."""
    for stage in STAGES:
        if stage in turn.ms:
            return stage
    return "nlu"


def original_input(turn: Turn) -> Turn:
    """The turn as it was before any stage ran."""
    start = first_stage(turn)
    raw = (turn.heard_from or turn.utterance) if start == "wake" else turn.utterance if start == "asr" else None
    return Turn(
        session=turn.session,
        index=turn.index,
        source=turn.source,
        start_s=turn.start_s,
        text_input=turn.text_input,
        utterance=raw,
        wake=None,
        gold=turn.gold,
        barge_in=turn.barge_in,
    )


def outcome_key(turn: Turn) -> tuple:
    """What the assistant did in a turn (the request acted on, how it went, what it said)."""
    out = turn.outcome
    if out is None:
        return (None,)
    return out.intent, json.dumps(to_jsonable(dict(out.args)), sort_keys=True), out.status, out.reply_type


class OracleLabeler(Interceptor):
    """Labels every turn that has gold with its failure point (``labels.oracle``)."""

    order = LABEL  # reads the faults the injectors recorded in the finished turn

    def __init__(self, assistant, replay_faults=None, stop: str = "respond"):
        self.assistant = assistant
        # replay_faults(kinds) → an interceptor injecting, again, the faults that broke this turn
        self.replay_faults = replay_faults
        self.stop = stop
        self._before: dict[str, Session] = {}
        self.replays = 0

    def take_replays(self) -> int:
        """Counterfactual replays run since the last call (the count starts again at 0)."""
        count, self.replays = self.replays, 0
        return count

    def start_turn(self, turn: Turn, session: Session) -> None:
        self._before[session.id] = session.snapshot()

    def finish_turn(self, turn: Turn, session: Session) -> Turn:
        before = self._before.pop(session.id, None)
        if turn.gold is None or before is None:
            return turn
        verdict = judge(turn)
        if verdict is None:
            return turn
        point = "correct" if verdict else self.failure_point(turn, before)
        label = {"failure_point": point, "defect": point != "correct", "source": "oracle"}
        return replace(turn, labels=frozen_map({**turn.labels, "oracle": label}))

    def failure_point(self, turn: Turn, before: Session) -> str:
        start = first_stage(turn)
        woke = responded_as_addressed(turn)
        if turn.gold.wake is False and woke:
            return "wake"  # asleep was right: substituting gold wake fixes it
        # Only faults that happened in this turn happen again: a component that was going to
        # fail but never got the chance (its input was already wrong) did not fail.
        kinds = fault_kinds(turn.labels.get("faults") or ())
        latest = turn  # the run with gold up to the previous stage (none yet)
        previous = None  # the stage ``latest`` has gold up to
        for stage in SUBSTITUTABLE:
            if STAGES.index(stage) < STAGES.index(start):
                continue
            if agrees_with_gold(stage, latest, self.assistant.domain):
                continue  # substituting what it already produced changes nothing
            fixed = self._replay(turn, before, stage, start, kinds)
            if judge(fixed):
                return stage
            # Something after this stage fails too. This stage is still the first failure when,
            # with healthy later stages, its own error leads to a wrong outcome that gold here
            # would have changed.
            own = faults_upto(kinds, stage)
            healthy = latest if own == kinds else self._replay(turn, before, previous, start, own)
            if not judge(healthy):
                repaired = fixed if own == kinds else self._replay(turn, before, stage, start, ())
                if outcome_key(healthy) != outcome_key(repaired):
                    return stage
            latest, previous = fixed, stage
        return "result"

    def _replay(self, turn: Turn, before: Session, upto: str | None, start: str, kinds: tuple[str, ...]) -> Turn:
        """The turn again with gold up to ``upto`` (None: no gold) and the faults ``kinds``."""
        bus = HookBus()
        if kinds and self.replay_faults is not None:
            bus.add_interceptor(self.replay_faults(kinds))
        if upto is not None:
            bus.add_interceptor(GoldSubstitution(turn.gold, upto, before.domain, self.assistant.config["wake.word"]))
        shadow = self.assistant.fork(bus)
        session = before.snapshot()
        self.replays += 1
        replayed = shadow.run_turn(session, original_input(turn), start=start, stop=self.stop)
        if log.isEnabledFor(logging.DEBUG):
            out = replayed.outcome
            log.debug(
                "%s #%d gold up to %s, faults %s: %r → %s %s (%s)",
                turn.session,
                turn.index,
                upto,
                kinds,
                replayed.transcript.text if replayed.transcript else None,
                out.intent if out else None,
                dict(out.args) if out else None,
                "correct" if judge(replayed) else "wrong",
            )
        return replayed

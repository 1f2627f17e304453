"""Fault injection at every stage through interceptors, at rates set per run.

``--faults "wake=0.03,asr=0.05,nlu=0.05,resolve=0.05,result=0.03"``. Each decision is seeded by
(run seed, session, turn, stage), so a counterfactual replay of a turn meets the same faults —
a fault is a broken component, and gold substitution upstream does not repair it.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping

from core.config import default_keys
from core.domain import Domain, domain_vocabulary
from core.errors import UserError
from core.records import (
    Candidate,
    IntentScore,
    Interpretation,
    Outcome,
    Resolution,
    Transcript,
    Utterance,
    WakeEvent,
    frozen_map,
)
from hooks.bus import INJECT, Interceptor
from sim.text_stages import split_wake_word, turn_rng

log = logging.getLogger(__name__)

# "wake" misses a wake word that was said; "false_wake" wakes on speech nobody addressed to it.
FAULT_STAGES = ("wake", "false_wake", "asr", "nlu", "resolve", "result")
# Later stages only fail on turns that got that far (~25 % reach a clean respond): these rates
# give every failure point at least 3 % of turns (measured: 200 sessions, seed 7).
DEFAULT_FAULTS = "wake=0.03,false_wake=0.3,asr=0.04,nlu=0.16,resolve=0.2,result=0.18"
STOPWORDS = {"the", "a", "an", "to", "for", "in", "on", "my", "me", "please", "can", "you", "is", "it", "of", "at"}


@dataclass(frozen=True)
class FaultSpec:
    rates: Mapping[str, float]

    @classmethod
    def parse(cls, text: str) -> "FaultSpec":
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in FAULT_STAGES:
                raise UserError(f"--faults: {part!r} is not STAGE=RATE (stages: {', '.join(FAULT_STAGES)})")
            try:
                rate = float(value)
            except ValueError:
                raise UserError(f"--faults: rate {value!r} for {name} is not a number") from None
            if not 0.0 <= rate <= 1.0:
                raise UserError(f"--faults: rate for {name} must be within [0, 1], got {rate}")
            rates[name] = rate
        return cls(frozen_map(rates))

    def describe(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in sorted(self.rates.items())) or "none"


def addressed(utterance: Any, wake_word: str) -> bool:
    """Whether the speech begins with the wake word (what the simulated speaker said)."""
    spoken = getattr(utterance, "spoken", None) or ""
    return split_wake_word(spoken, wake_word)[0]


class FaultInjector(Interceptor):
    order = INJECT

    def __init__(self, spec: FaultSpec, domain: Domain, seed: int, wake_word: str | None = None):
        self.spec = spec
        self.domain = domain
        self.seed = seed
        self.wake_word = wake_word or default_keys()["wake.word"]  # None: the packaged default
        self._vocab = sorted(domain_vocabulary(domain) - STOPWORDS)
        self.injected: dict[tuple[str, int], list[str]] = {}

    def _fires(self, stage: str, ctx) -> random.Random | None:
        rate = self.spec.rates.get(stage, 0.0)
        if rate <= 0:
            return None
        rng = turn_rng(self.seed, ctx.session, ctx.turn, f"fault-{stage}")
        return rng if rng.random() < rate else None

    def _note(self, ctx, what: str) -> None:
        self.injected.setdefault((ctx.session, ctx.turn), []).append(what)

    def before(self, stage: str, data: Any, ctx) -> Any | None:
        if stage != "respond" or not isinstance(data, Resolution) or data.intent in (None, "Affirm", "Deny"):
            return None
        if self._fires("result", ctx) is None:
            return None
        self._note(ctx, "result:api-error")
        args = {e.slot: e.id for e in data.entities if e.id is not None} | dict(data.values)
        return Outcome(
            intent=data.intent,
            args=frozen_map(args),
            status="failed",
            reply_type="apology",
            reply="Sorry, that didn't work. The service isn't responding.",
        )

    def after(self, stage: str, data: Any, output: Any, ctx) -> Any:
        if stage not in ("wake", "asr", "nlu", "resolve"):
            return output
        kind = "false_wake" if stage == "wake" and not output.heard else stage
        if kind == "false_wake" and addressed(data, self.wake_word):
            # a missed wake word is "wake"'s fault (false reject); waking up on speech that was
            # addressed to the assistant is no false accept
            return output
        rng = self._fires(kind, ctx)
        if rng is None:
            return output
        if kind == "false_wake":
            changed, what = self._false_wake(output, rng, data)
        else:
            changed, what = getattr(self, f"_{kind}")(output, rng)
        if what:
            self._note(ctx, f"{stage}:{what}")
        return changed

    def finish_turn(self, turn, session):
        faults = self.injected.pop((session.id, turn.index), None)
        if not faults:
            return turn
        return replace(turn, labels=frozen_map({**turn.labels, "faults": faults}))

    def discard_turn(self, session: str, turn: int) -> None:
        self.injected.pop((session, turn), None)

    # the faults: each returns (output, what it did) — ("" when it found nothing to break) ------

    def _wake(self, out: Utterance, rng: random.Random) -> tuple[Utterance, str]:
        return replace(out, endpoint="no_wake", wake=None), "false-reject"

    def _false_wake(self, out: Utterance, rng: random.Random, heard: Utterance) -> tuple[Utterance, str]:
        wake = WakeEvent(
            word=self.wake_word,
            score=round(rng.uniform(0.5, 0.75), 4),
            start_s=out.start_s,
            end_s=out.start_s + 0.5,
            model="fault",
        )
        # a false accept captures the speech that goes on (the wake stage kept no audio, having heard
        # no wake word): text fidelity reads ``spoken``, audio fidelity needs the samples too
        audio = out.audio if len(out.audio.samples) or heard is None else heard.audio
        return replace(out, endpoint="silence", wake=wake, audio=audio), "false-accept"

    def _asr(self, out: Transcript, rng: random.Random) -> tuple[Transcript, str]:
        words = out.text.split()
        content = [i for i, w in enumerate(words) if re.sub(r"\W", "", w.lower()) not in STOPWORDS]
        if not content:
            return out, ""
        i = rng.choice(content)
        aligned = len(out.words) == len(words)
        heard = list(out.words)
        if rng.random() < 0.4 and len(words) > 1:
            what = f"drop:{words[i]}"
            words = words[:i] + words[i + 1 :]
            if aligned:
                del heard[i]
        else:
            new = rng.choice(self._vocab)
            what = f"sub:{words[i]}->{new}"
            words = words[:i] + [new] + words[i + 1 :]
            if aligned:  # a misheard word is an uncertain one, as in real decodes
                heard[i] = replace(heard[i], text=new, probability=round(rng.uniform(0.2, 0.7), 4))
        return replace(out, text=" ".join(words), words=tuple(heard)), what

    def _nlu(self, out: Interpretation, rng: random.Random) -> tuple[Interpretation, str]:
        if out.intent is None:
            return out, ""
        if out.slots and rng.random() < 0.5:
            victim = rng.choice(out.slots)
            return replace(out, slots=tuple(s for s in out.slots if s is not victim)), f"drop-slot:{victim.name}"
        others = [i for i in self.domain.intents if i != out.intent and not self.domain.intents[i].is_dialogue_act]
        new = rng.choice(others)
        keep = tuple(s for s in out.slots if s.name in self.domain.intents[new].slots)
        # As in a real misclassification the wrong intent takes the top score and the right one
        # drops to second: the scores keep their order (a tie at the top would give the fault away).
        order = [new, out.intent] + [x.intent for x in out.nbest if x.intent not in (new, out.intent)]
        nbest = tuple(IntentScore(i, x.score) for i, x in zip(order, out.nbest))
        return replace(out, intent=new, slots=keep, nbest=nbest), f"intent:{out.intent}->{new}"

    def _resolve(self, out: Resolution, rng: random.Random) -> tuple[Resolution, str]:
        ents = [e for e in out.entities if e.id is not None]
        if not ents:
            return out, ""
        e = rng.choice(ents)
        alternatives = [c for c in e.candidates if c.id != e.id]
        if not alternatives:
            catalog = self.domain.catalog_for(e.type)
            alternatives = [
                Candidate(v.id, v.name, 0.5, "fault") for v in (catalog.values if catalog else ()) if v.id != e.id
            ]
        if not alternatives:
            return out, ""
        pick = rng.choice(alternatives)
        # the wrong entity heads its candidate list, as a real mis-resolution would
        ranked = (
            Candidate(pick.id, pick.name, e.candidates[0].score if e.candidates else e.score, pick.method),
            *[c for c in e.candidates if c.id != pick.id],
        )
        wrong = replace(e, id=pick.id, name=pick.name, candidates=ranked)
        return replace(
            out, entities=tuple(wrong if x is e else x for x in out.entities)
        ), f"entity:{e.slot}:{e.id}->{pick.id}"

"""Do simulated users trouble the NLU as much as real people do?

``assistant sim check`` scores the domain's NLU on two sets of requests, the same way (intent
right and every slot that matters found with the same words, as ``assistant nlu eval
--corpus`` does):

* the first requests of simulated users, as they say them (text, no ASR errors, no injected
  faults): what the NLU hears in a simulation when nothing else goes wrong;
* real people's commands of the same domain (the ``dev`` part of slurp_home.jsonl, never
  trained or tuned on).

Each error rate gets a 95 % bootstrap interval; the simulated rate is also given with its
intents weighed as in the real corpus (the mix differs: the real corpus is mostly weather and
music), and the relative difference is taken on that weighed rate.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core.domain import OOD_INTENT
from sim.phrasing import find_words
from sim.text_stages import turn_rng
from stages.nlu.corpora import CorpusItem
from stages.nlu.evaluate import slot_matches

log = logging.getLogger(__name__)

RESAMPLES = 2000


@dataclass(frozen=True)
class Scored:
    id: str
    text: str
    intent: str
    ok: bool
    got: str | None


def score(interpret: Callable, items: Sequence[CorpusItem], matter: dict[str, set[str]] | None = None) -> list[Scored]:
    """Each in-domain item: is its intent right and every gold slot (of those that matter for
    its intent, when ``matter`` says) found with the same words?"""
    out = []
    for it in items:
        if it.intent in (None, OOD_INTENT):
            continue
        interp = interpret(it.text)
        found: dict[str, list[str]] = defaultdict(list)
        for s in interp.slots:
            found[s.name].append(s.text)
        wanted = matter.get(it.intent) if matter is not None else None
        missing = [
            label
            for a, b, label in it.spans
            if (wanted is None or label in wanted)
            and not any(slot_matches(it.text[a:b], t) for t in found.get(label, ()))
        ]
        out.append(Scored(it.id, it.text, it.intent, interp.intent == it.intent and not missing, interp.intent))
    return out


def slots_that_matter(items: Sequence[CorpusItem]) -> dict[str, set[str]]:
    """Per intent, the slot labels the real corpus annotates (its judges' "slots that matter")."""
    out: dict[str, set[str]] = defaultdict(set)
    for it in items:
        if it.intent not in (None, OOD_INTENT):
            out[it.intent].update(label for _a, _b, label in it.spans)
    return dict(out)


def simulated_requests(sim, n: int, seed: int) -> list[CorpusItem]:
    """The first request of ``n`` simulated users (``sim``: a SessionSimulator), with their
    gold intent and the character spans of their gold slot words."""
    from sim.simulator import HOMES
    from sim.user import SimulatedUser, sample_persona

    out: list[CorpusItem] = []
    for index in range(n):
        rng = turn_rng(seed, "realism", index)
        persona = sample_persona(rng)
        style = None
        if sim.phrasings is not None:
            from sim.phrasing import sample_style

            style = sample_style(persona.name, turn_rng(seed, "style", index))
        start = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(6, 22):02d}:00:00"
        session = sim.assistant.new_session(
            f"realism-{index}", user={"id": "user", "home": rng.choice(HOMES)}, start_time=start
        )
        user = SimulatedUser(
            sim.domain,
            persona,
            rng,
            sim.assistant.context_default,
            plausible=sim._plausible,
            style=style,
            phrasings=sim.phrasings,
            training=sim.training,
        )
        act = user.start(user.new_goal(session.context(1)))
        if act.kind not in ("request",) or act.gold.intent is None:
            continue
        spans, cursor = [], 0
        for name, words, _value in act.gold.spans:
            i = find_words(act.text, words, cursor)
            if i >= 0:
                spans.append((i, i + len(words), name))
                cursor = i + len(words)
        out.append(CorpusItem(f"sim:{index}", act.text, act.gold.intent, tuple(spans)))
    return out


def _rate(ok: np.ndarray) -> float:
    return float(1.0 - ok.mean()) if len(ok) else float("nan")


def _weighed(scored: Sequence[Scored], weights: dict[str, float]) -> tuple[float, dict[str, np.ndarray]]:
    by: dict[str, list[bool]] = defaultdict(list)
    for s in scored:
        if s.intent in weights:
            by[s.intent].append(s.ok)
    arrays = {k: np.array(v, float) for k, v in by.items()}
    total = sum(weights[k] for k in arrays)
    return sum(weights[k] / total * _rate(a) for k, a in arrays.items()), arrays


def compare(
    simulated: Sequence[Scored], real: Sequence[Scored], tolerance: float = 0.25, resamples: int = RESAMPLES
) -> dict:
    """Error rates with 95 % bootstrap intervals and the relative difference (simulated, with
    the real corpus's intent mix, against real)."""
    rng = np.random.default_rng(0)
    real_ok = np.array([s.ok for s in real], float)
    sim_ok = np.array([s.ok for s in simulated], float)
    mix = Counter(s.intent for s in real)
    weights = {k: v / len(real) for k, v in mix.items()}
    weighed, arrays = _weighed(simulated, weights)

    def boot(ok: np.ndarray) -> np.ndarray:
        if not len(ok):
            return np.full(resamples, np.nan)
        return 1.0 - ok[rng.integers(0, len(ok), size=(resamples, len(ok)))].mean(axis=1)

    real_b, sim_b = boot(real_ok), boot(sim_ok)
    total = sum(weights[k] for k in arrays)
    weighed_b = sum(weights[k] / total * boot(a) for k, a in arrays.items()) if arrays else np.full(resamples, np.nan)
    real_rate = _rate(real_ok)
    relative = (weighed - real_rate) / real_rate if real_rate else None
    rel_b = (weighed_b - real_b) / np.where(real_b > 0, real_b, np.nan)

    def ci(b: np.ndarray) -> list[float]:
        return [round(float(np.nanpercentile(b, 2.5)), 4), round(float(np.nanpercentile(b, 97.5)), 4)]

    per_intent = {}
    for intent in sorted(set(mix) | {s.intent for s in simulated}):
        r = [s.ok for s in real if s.intent == intent]
        m = [s.ok for s in simulated if s.intent == intent]
        per_intent[intent] = {
            "real_n": len(r),
            "real_error": round(1 - sum(r) / len(r), 4) if r else None,
            "sim_n": len(m),
            "sim_error": round(1 - sum(m) / len(m), 4) if m else None,
        }
    return {
        "real": {"n": len(real), "error_rate": round(real_rate, 4), "ci95": ci(real_b)},
        "simulated": {"n": len(simulated), "error_rate": round(_rate(sim_ok), 4), "ci95": ci(sim_b)},
        "simulated_real_mix": {
            "n": int(sum(len(a) for a in arrays.values())),
            "error_rate": round(weighed, 4),
            "ci95": ci(weighed_b),
        },
        "relative": None if relative is None else round(float(relative), 4),
        "relative_ci95": ci(rel_b),
        "tolerance": tolerance,
        "within": bool(relative is not None and abs(relative) <= tolerance),
        "per_intent": per_intent,
    }


def overlap(texts: Sequence[str], training) -> int:
    """How many of ``texts`` are, word for word, among the NLU's training sentences."""
    return sum(training.contains(t) for t in texts)


def sample_texts(items: Sequence[CorpusItem], k: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [it.text for it in rng.sample(list(items), min(k, len(items)))]

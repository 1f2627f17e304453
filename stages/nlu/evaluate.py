"""Scoring an NLU model on annotated examples: intent accuracy, slot F1, calibration.

Slot F1 is micro-averaged over exact matches of span *and* label, on the text as the model
sees it (:func:`stages.nlu.text.prepare`): gold spans are mapped onto the prepared text the
same way training maps them, and a gold span that cannot be mapped counts as missed.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from stages.nlu.text import prepare

log = logging.getLogger(__name__)

ECE_BINS = 10


@dataclass
class _Counts:
    n: int = 0
    correct: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: "_Counts") -> None:
        for k in ("n", "correct", "tp", "fp", "fn"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def scores(self) -> dict:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else (1.0 if self.tp + self.fp + self.fn == 0 else 0.0)
        return {
            "n": self.n,
            "intent_accuracy": round(self.correct / self.n, 4) if self.n else 0.0,
            "slot_precision": round(p, 4),
            "slot_recall": round(r, 4),
            "slot_f1": round(f1, 4),
            "counts": {"correct": self.correct, "tp": self.tp, "fp": self.fp, "fn": self.fn},
        }

    @classmethod
    def of(cls, scores: dict) -> "_Counts":
        c = scores["counts"]
        return cls(n=scores["n"], correct=c["correct"], tp=c["tp"], fp=c["fp"], fn=c["fn"])


def gold_spans(example, lowercase: bool = True) -> set[tuple[int, int, str]]:
    from stages.nlu.spacy_model import reproject

    text = prepare(example.text, lowercase)
    mapped = set(reproject(example.text, text, example.spans, lowercase))
    # A span that could not be mapped is still a gold span the model must find: keep it under
    # an impossible position so that it counts as missed.
    for i in range(len(example.spans) - len(mapped)):
        mapped.add((-1 - i, -1 - i, "__unmapped__"))
    return mapped


def expected_calibration_error(confidences: Sequence[float], hits: Sequence[bool], bins: int = ECE_BINS) -> float:
    """Mean |accuracy − confidence| over equal-width confidence bins, weighted by bin size."""
    if not confidences:
        return 0.0
    total, n = 0.0, len(confidences)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if (lo < c <= hi) or (b == 0 and c == 0.0)]
        if idx:
            acc = sum(hits[i] for i in idx) / len(idx)
            conf = sum(confidences[i] for i in idx) / len(idx)
            total += len(idx) / n * abs(acc - conf)
    return round(total, 4)


def evaluate(model, examples: Sequence, batch_size: int = 256) -> dict:
    """Intent accuracy, slot precision/recall/F1 (micro, exact span and label), per intent, ECE."""
    examples = list(examples)
    preds = model.predict_many([ex.text for ex in examples], batch_size=batch_size)
    overall = _Counts()
    per_intent: dict[str, _Counts] = {}
    confidences, hits, nll = [], [], 0.0
    for ex, pred in zip(examples, preds):
        c = _Counts(n=1)
        top = pred.intents[0][0] if pred.intents else None
        c.correct = int(top == ex.intent)
        gold = gold_spans(ex, model.lowercase)
        guess = set(pred.spans)
        c.tp = len(gold & guess)
        c.fp = len(guess - gold)
        c.fn = len(gold - guess)
        overall.add(c)
        per_intent.setdefault(ex.intent, _Counts()).add(c)
        if pred.intents:
            confidences.append(pred.intents[0][1])
            hits.append(bool(c.correct))
            p_gold = dict(pred.intents).get(ex.intent, 0.0)
            nll -= math.log(max(p_gold, 1e-9))
    out = overall.scores()
    out["per_intent"] = {k: v.scores() for k, v in sorted(per_intent.items())}
    out["ece"] = expected_calibration_error(confidences, hits)
    out["nll"] = round(nll / max(1, len(examples)), 4)
    return out


def merge_results(results: Iterable[dict]) -> dict:
    """Pool several evaluations (cross-validation folds) into one, recomputing the ratios."""
    overall = _Counts()
    per_intent: dict[str, _Counts] = {}
    for r in results:
        overall.add(_Counts.of(r))
        for intent, pr in r["per_intent"].items():
            per_intent.setdefault(intent, _Counts()).add(_Counts.of(pr))
    out = overall.scores()
    out["per_intent"] = {k: v.scores() for k, v in sorted(per_intent.items())}
    return out


# Real commands, judged as a user would -------------------------------------------------------

_ARTICLES = re.compile(r"^(?:the|a|an|my|some|our)\s+")


def _slot_words(text: str) -> str:
    text = re.sub(r"[^\w' ]+", " ", text.lower()).replace("'s ", " ").strip()
    text = _ARTICLES.sub("", re.sub(r"\s+", " ", text))
    return f" {text} "


def slot_matches(gold: str, guess: str) -> bool:
    """The same words, or one phrase inside the other on word boundaries: the guess may add a
    few words ("six" → "six in the morning", "kitchen" → "the kitchen lights") or drop less than
    half of the gold's words ("new york city" → "new york", but not "york")."""
    g, p = _slot_words(gold), _slot_words(guess)
    if not g.strip() or not p.strip():
        return False
    extra = len(p.split()) - len(g.split())
    return g == p or (g in p and extra <= 3) or (p in g and 2 * len(p.split()) > len(g.split()))


def evaluate_commands(interpret, items: Sequence, ood_intent: str = "__ood__", errors: int = 50) -> dict:
    """Real commands through the NLU stage's own decision (``interpret(text)`` → an
    Interpretation): in-domain commands *understood* (intent right and every gold slot found
    with the same words), out-of-domain commands declined, near-domain commands declined."""
    per_intent: dict[str, dict] = {}
    understood = intent_right = n_in = 0
    ood_n = ood_declined = near_n = near_declined = 0
    wrong: list[dict] = []
    for item in items:
        interp = interpret(item.text)
        if item.intent == ood_intent:
            ood_n += 1
            ood_declined += bool(interp.out_of_domain)
            if not interp.out_of_domain and len(wrong) < errors:
                wrong.append({"id": item.id, "text": item.text, "gold": ood_intent, "got": interp.intent})
            continue
        if item.intent is None:
            near_n += 1
            near_declined += bool(interp.out_of_domain)
            continue
        n_in += 1
        stats = per_intent.setdefault(item.intent, {"n": 0, "understood": 0, "intent": 0, "declined": 0})
        stats["n"] += 1
        got_intent = interp.intent == item.intent
        slots = {}
        for s in interp.slots:
            slots.setdefault(s.name, []).append(s.text)
        missing = [
            (label, item.text[a:b])
            for a, b, label in item.spans
            if not any(slot_matches(item.text[a:b], t) for t in slots.get(label, ()))
        ]
        ok = got_intent and not missing
        intent_right += got_intent
        understood += ok
        stats["intent"] += got_intent
        stats["understood"] += ok
        stats["declined"] += bool(interp.out_of_domain)
        if not ok and len(wrong) < errors:
            wrong.append(
                {
                    "id": item.id,
                    "text": item.text,
                    "gold": item.intent,
                    "got": interp.intent,
                    "missing_slots": [f"{label}={w}" for label, w in missing],
                    "slots": {k: v for k, v in slots.items()},
                }
            )

    def ratio(a: int, b: int) -> float:
        return round(a / b, 4) if b else 0.0

    return {
        "in_domain": {"n": n_in, "understood": ratio(understood, n_in), "intent_accuracy": ratio(intent_right, n_in)},
        "out_of_domain": {"n": ood_n, "declined": ratio(ood_declined, ood_n)},
        "near_domain": {"n": near_n, "declined": ratio(near_declined, near_n)},
        "per_intent": {
            k: {
                "n": v["n"],
                "understood": ratio(v["understood"], v["n"]),
                "intent_accuracy": ratio(v["intent"], v["n"]),
                "declined": ratio(v["declined"], v["n"]),
            }
            for k, v in sorted(per_intent.items())
        },
        "errors": wrong,
    }

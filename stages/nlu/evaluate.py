"""Scoring an NLU model on annotated examples: intent accuracy, slot F1, calibration.

Slot F1 is micro-averaged over exact matches of span *and* label, on the text as the model
sees it (:func:`stages.nlu.text.prepare`): gold spans are mapped onto the prepared text the
same way training maps them, and a gold span that cannot be mapped counts as missed.
"""
from __future__ import annotations

import logging
import math
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
        return {"n": self.n, "intent_accuracy": round(self.correct / self.n, 4) if self.n else 0.0,
                "slot_precision": round(p, 4), "slot_recall": round(r, 4), "slot_f1": round(f1, 4),
                "counts": {"correct": self.correct, "tp": self.tp, "fp": self.fp, "fn": self.fn}}

    @classmethod
    def of(cls, scores: dict) -> "_Counts":
        c = scores["counts"]
        return cls(n=scores["n"], correct=c["correct"], tp=c["tp"], fp=c["fp"], fn=c["fn"])


def gold_spans(example, lowercase: bool = True) -> set[tuple[int, int, str]]:
    from stages.nlu.model import reproject

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

"""Evaluation of predicted failure points and defects against the oracle's labels."""

from __future__ import annotations

import numpy as np

from hooks.learn.turn_features import CLASSES


def evaluate(y_true: np.ndarray, p_fp: np.ndarray, p_defect: np.ndarray) -> dict:
    """``y_true``: class indices (-1 = unlabeled, skipped); probabilities per class and of a defect."""
    keep = y_true >= 0
    y, p, d = y_true[keep], p_fp[keep], p_defect[keep]
    pred = p.argmax(axis=1)
    per_class = {}
    f1s = []
    for i, name in enumerate(CLASSES):
        tp = int(np.sum((pred == i) & (y == i)))
        fp = int(np.sum((pred == i) & (y != i)))
        fn = int(np.sum((pred != i) & (y == i)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "n": int(np.sum(y == i)),
        }
        if np.any(y == i):
            f1s.append(f1)
    defect_true = (y != CLASSES.index("correct")).astype(int)
    defect_pred = (d >= 0.5).astype(int)
    tp = int(np.sum(defect_pred & defect_true))
    precision = tp / max(1, int(defect_pred.sum()))
    recall = tp / max(1, int(defect_true.sum()))
    return {
        "fp_accuracy": round(float(np.mean(pred == y)) if len(y) else 0.0, 4),
        "fp_macro_f1": round(float(np.mean(f1s)) if f1s else 0.0, 4),
        "fp_per_class": per_class,
        "defect_auc": _finite(_auc(defect_true, d)),
        "defect_f1": round(2 * precision * recall / (precision + recall) if precision + recall else 0.0, 4),
        "n_turns": int(len(y)),
    }


def _finite(x: float) -> float | None:
    """Rounded, or None (JSON null) when undefined: an AUC needs defects and non-defects both."""
    return round(float(x), 4) if np.isfinite(x) else None


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (the probability a defect outscores a non-defect; ties count half)."""
    pos, neg = score[y == 1], score[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    ranks_sorted = np.arange(1, len(order) + 1, dtype=float)
    # average ranks over ties
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks_sorted[i : j + 1] = (i + j + 2) / 2.0
        i = j + 1
    ranks[order] = ranks_sorted
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))

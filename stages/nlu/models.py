"""What every NLU model kind shares: its prediction record, the interface the stage reads,
the meta file a saved model folder is known by, and two pieces of training arithmetic.

Two kinds exist (stages/nlu/recipes.py picks one per source): a spaCy pipeline
(stages/nlu/spacy_model.py) and a fine-tuned MiniLM (stages/nlu/joint_model.py).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from core.errors import InputError
from stages.nlu.text import prepare

log = logging.getLogger(__name__)

META_FILE = "assistant_nlu.json"
PREDICTION_CACHE = 8192  # predictions kept per loaded model (a few MB)


@dataclass(frozen=True)
class Prediction:
    text: str  # the prepared text spans refer to
    intents: tuple[tuple[str, float], ...]  # n-best, highest first
    spans: tuple[tuple[int, int, str], ...]  # (start, end, label) in ``text``


class NluModel(Protocol):
    meta: dict
    span_typer: object  # stages.nlu.span_types.SpanTyper or None

    @property
    def name(self) -> str: ...

    def prepare(self, text: str) -> str: ...

    def predict(self, text: str) -> Prediction: ...

    def predict_many(self, texts: Sequence[str], batch_size: int = ...) -> list[Prediction]: ...

    def warm(self) -> None: ...


def read_meta(folder: Path) -> dict:
    """A saved model folder's meta file (what kind, trained on what, how)."""
    folder = Path(folder)
    path = folder / META_FILE
    if not path.is_file():
        raise InputError(folder, f"not an NLU model folder (no {META_FILE})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(path, f"invalid JSON ({err.msg})") from None


def trained_meta(meta: dict | None, version: int, config, intents, labels, examples: int, seconds: float) -> dict:
    """The meta file's training keys, over what the caller passed (name, source, key)."""
    info = dict(meta or {})
    info.update(
        {
            "trainer_version": version,
            "examples": examples,
            "epochs": config.epochs,
            "intents": list(intents),
            "labels": list(labels),
            "train_s": round(seconds, 2),
            "lowercase": config.lowercase,
            "config": asdict(config),
            "temperature": 1.0,
        }
    )
    return info


def epoch_line(epoch: int, epochs: int, examples: int, seconds: float) -> str:
    """What training progress says after each epoch."""
    return f"training the NLU: epoch {epoch + 1}/{epochs} ({examples} examples, {seconds:.0f} s)"


def temperature_scaled(intents: dict[str, float], temperature: float) -> dict[str, float]:
    """p_i ∝ p_i^(1/T), which is softmax(logits / T)."""
    if not intents or temperature == 1.0:
        return intents
    scaled = {k: math.exp(math.log(max(v, 1e-12)) / temperature) for k, v in intents.items()}
    total = sum(scaled.values())
    return {k: v / total for k, v in scaled.items()}


def best_temperature(probs, gold, minimum: float = 1.0) -> tuple[float, float]:
    """The softmax temperature (and its NLL) that minimizes the negative log-likelihood of the
    gold intents of held-out examples (temperature scaling, Guo et al. 2017). ``probs``:
    (n, intents) array; ``gold``: each row's gold column."""
    import numpy as np

    logp = np.log(np.maximum(np.asarray(probs, dtype=float), 1e-12))
    gold = np.asarray(gold)
    best_t, best_nll = 1.0, float("inf")
    for t in np.arange(max(0.25, minimum), 5.01, 0.05):
        z = logp / t
        z = z - z.max(axis=1, keepdims=True)
        nll = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(gold)), gold]))
        if nll < best_nll - 1e-9:
            best_t, best_nll = float(t), nll
    return round(best_t, 2), best_nll


def fit_temperature(
    examples: Sequence, intents: Sequence[str], raw_probs: Callable[[list[str]], list[dict]], minimum: float = 1.0
) -> float:
    """The intent temperature for a model: fitted on held-out ``examples`` of its ``intents``
    (others are left out; none left: 1.0). ``raw_probs``: texts → the model's untempered
    intent probabilities, one mapping per text."""
    order = sorted(set(intents))
    examples = [ex for ex in examples if ex.intent in order]
    if not examples:
        return 1.0
    probs = [[p.get(i, 0.0) for i in order] for p in raw_probs([ex.text for ex in examples])]
    best_t, best_nll = best_temperature(probs, [order.index(ex.intent) for ex in examples], minimum)
    log.info("intent temperature %.2f (held-out NLL %.4f on %d examples)", best_t, best_nll, len(examples))
    return best_t


def reproject(raw: str, prepared: str, spans, lowercase: bool = True) -> list[tuple[int, int, str]]:
    """Map spans from the raw example text onto its prepared form by locating the span words."""
    if raw == prepared:
        return list(spans)
    out, cursor = [], 0
    for a, b, label in sorted(spans):
        piece = prepare(raw[a:b], lowercase)
        if not piece:
            continue
        idx = prepared.find(piece, cursor)
        if idx < 0:
            idx = prepared.find(piece)
        if idx < 0:
            continue
        out.append((idx, idx + len(piece), label))
        cursor = idx + len(piece)
    return out

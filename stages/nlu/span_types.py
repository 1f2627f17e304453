"""Which kind of name a tagged span is: artist, song or genre, read from what the words mean.

The slot tagger places names well but types them from their context, and real requests often
give none ("play chopin", "i want to listen to soft rock"). A softmax regression over the
MiniLM sentence embedding of the span's words, fitted on every name the domain knows (catalog
phrases, ``training_phrases``, the spans of its real annotated commands), carries the encoder's
knowledge that Chopin is a composer and soft rock a kind of music.

The embedding comes from one of the two MiniLM encoders a process may hold: the NLU's int8 one
(a spaCy model reads it anyway) or the one of :mod:`core.embeddings`, named "float32" for its
arithmetic (the resolver and the trace signals use it; a fine-tuned model has no other use for
the int8 one).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

FILE = "span_types.npz"
MIN_NAMES = 10  # a label with fewer known names is not typed (too little to learn from)
REGULARIZATION = 1.0
ENCODERS = ("int8", "float32")


@dataclass(frozen=True, eq=False)
class SpanTyper:
    labels: tuple[str, ...]
    weights: np.ndarray  # (len(labels), dim)
    bias: np.ndarray  # (len(labels),)
    encoder: str = "int8"  # which MiniLM embeds the words (ENCODERS)

    @classmethod
    def fit(cls, names: Mapping[str, Iterable[str]], encoder: str = "int8") -> "SpanTyper | None":
        """``names``: slot label → the names it takes. None when fewer than two labels have
        ``MIN_NAMES`` names: there is nothing to tell apart."""
        from sklearn.linear_model import LogisticRegression

        if encoder not in ENCODERS:
            raise ValueError(f"span typer encoder: expected one of {ENCODERS}, got {encoder!r}")
        kept = {label: sorted({n.strip().lower() for n in ns if n.strip()}) for label, ns in names.items()}
        kept = {label: ns for label, ns in kept.items() if len(ns) >= MIN_NAMES}
        if len(kept) < 2:
            return None
        texts = [n for ns in kept.values() for n in ns]
        targets = [label for label, ns in kept.items() for _ in ns]
        clf = LogisticRegression(C=REGULARIZATION, max_iter=2000, class_weight="balanced")
        clf.fit(_embeddings(texts, encoder), targets)
        labels = tuple(str(c) for c in clf.classes_)
        weights, bias = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
        if len(labels) == 2:  # sklearn keeps one row for two classes: p(second)
            weights, bias = np.vstack([-weights / 2, weights / 2]), np.array([-bias[0] / 2, bias[0] / 2])
        log.info("span typer fitted on %d names of %s", len(texts), ", ".join(labels))
        return cls(labels, weights, bias.astype(np.float32), encoder)

    def probabilities(self, words: str, among: Sequence[str]) -> dict[str, float]:
        """p(label | words) over the labels of ``among`` this typer knows (softmax restricted
        to them); empty when fewer than two are known."""
        rows = [i for i, label in enumerate(self.labels) if label in among]
        if len(rows) < 2:
            return {}
        vector = _embedding(words.lower(), self.encoder)
        logits = self.weights[rows] @ vector + self.bias[rows]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {self.labels[i]: float(q) for i, q in zip(rows, p)}

    def warm(self) -> None:
        """Load the encoder (seconds that would otherwise fall on the first name typed)."""
        _embedding("warm up", self.encoder)

    def save(self, folder: Path) -> None:
        np.savez(
            Path(folder) / FILE,
            labels=np.array(self.labels),
            weights=self.weights,
            bias=self.bias,
            encoder=np.array(self.encoder),
        )

    @classmethod
    def load(cls, folder: Path) -> "SpanTyper | None":
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            encoder = str(data["encoder"]) if "encoder" in data.files else "int8"
            return cls(tuple(str(x) for x in data["labels"]), data["weights"], data["bias"], encoder)


def _embeddings(texts: list[str], encoder: str) -> np.ndarray:
    """Many names at once, batched (for fitting)."""
    if encoder == "float32":
        from core.embeddings import embed

        return embed(texts, every_core=True)
    from stages.nlu.pretrained import sentence_embeddings

    return sentence_embeddings(texts, exact=False)


@functools.lru_cache(maxsize=4096)
def _embedding(words: str, encoder: str) -> np.ndarray:
    """A name's exact MiniLM embedding: simulated users and replays say the same names again."""
    if encoder == "float32":
        from core.embeddings import embed_one

        return embed_one(words)
    from stages.nlu.pretrained import sentence_embeddings

    return sentence_embeddings([words], exact=True)[0]

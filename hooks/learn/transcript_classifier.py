"""A second reader of each transcript: what the words say, learned apart from the NLU.

The hardest calls are between asr and nlu. A wrong intent or a missing slot on a transcript with
a few misheard words is the NLU's failure when the words still say what the user meant, and the
recognizer's when they no longer do. This reader answers that question. It reads only the
transcript (its MiniLM embedding and hashed word n-grams) and gives the act the user meant (an
intent, a dialogue act or out of domain) and the kinds of value the user said (room, device,
time…). It learns from the training traces' own transcripts, misheard ones included, with what
the simulated user meant as the target. Its features compare this reading with what the NLU
decided: how likely the reader finds the NLU's act, whether it agrees, and how sure it is of a
value kind that no slot took.

The user's meaning is used only as the training target (like the oracle's labels), never as a
feature. Training turns get out-of-fold readings; read by a model that saw their targets, they
would look more telling than readings of new traces. A linear model over the embedding and
hashed n-grams is enough: a hidden layer cost 4.7× the time and changed validation accuracy by
0.1 point. It is saved as ``.npz`` (read without pickle) and predicts in numpy.
"""

from __future__ import annotations

import logging
import re
import zlib
from pathlib import Path

import numpy as np

from hooks.learn.turn_features import EMBED_DIM, OOD_ACT, FeatureSet, session_folds

log = logging.getLogger(__name__)

NAMES = (
    "reader_p_nlu_act",
    "reader_top_p",
    "reader_agrees",
    "reader_p_runner_up",
    "reader_top_gain",
    "reader_untagged_accepted",
    "reader_untagged_any",
    "reader_tagged_unsaid",
    "reader_kind_surplus",
)
BUCKETS = 1 << 13  # hashed unigrams and bigrams
FOLDS = 4
EPOCHS = 30
BATCH = 256
L2 = 1e-4
FILE = "reader.npz"
_TOKEN = re.compile(r"[a-z']+|\d+")


def ngram_ids(text: str) -> np.ndarray:
    """Hashed word unigrams and bigrams (crc32: the same buckets in every process)."""
    w = _TOKEN.findall(text.lower())
    grams = w + [f"{a} {b}" for a, b in zip(w, w[1:])]
    return np.unique(np.fromiter((zlib.crc32(g.encode()) % BUCKETS for g in grams), np.int64, len(grams)))


class Reader:
    def __init__(self, acts: list[str], kinds: list[str], seed: int = 0):
        self.acts = list(acts)
        self.kinds = list(kinds)
        self.seed = seed
        self.weights: dict[str, np.ndarray] = {}

    @property
    def n_out(self) -> int:
        return len(self.acts) + len(self.kinds)

    def _targets(self, fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
        act = np.full(len(fs.words), -1, np.int64)
        kinds = np.zeros((len(fs.words), len(self.kinds)), np.float32)
        for i, w in enumerate(fs.words):
            if w.text and w.meant_act in self.acts:
                act[i] = self.acts.index(w.meant_act)
                for k in w.meant_kinds:
                    if k in self.kinds:
                        kinds[i, self.kinds.index(k)] = 1.0
        return act, kinds

    def _train(self, emb: np.ndarray, ids: list[np.ndarray], act: np.ndarray, kinds: np.ndarray) -> dict:
        import torch
        from torch import nn
        from torch.nn import functional as nnf

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        dense = nn.Linear(EMBED_DIM, self.n_out)
        bag = nn.EmbeddingBag(BUCKETS, self.n_out, mode="sum")
        nn.init.zeros_(bag.weight)  # a linear model over n-gram indicators starts at zero
        opt = torch.optim.Adam([*dense.parameters(), *bag.parameters()], lr=3e-3)
        rows = np.flatnonzero(act >= 0)
        n_acts = len(self.acts)
        for _epoch in range(EPOCHS):
            order = rng.permutation(rows)
            for i in range(0, len(order), BATCH):
                b = order[i : i + BATCH]
                logits = dense(torch.from_numpy(emb[b])) + bag(*_bag_inputs([ids[j] for j in b]))
                loss = (
                    nnf.cross_entropy(logits[:, :n_acts], torch.from_numpy(act[b]))
                    + nnf.binary_cross_entropy_with_logits(logits[:, n_acts:], torch.from_numpy(kinds[b]))
                    + L2 * (dense.weight.square().sum() + bag.weight.square().sum())
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
        return {
            "dense_w": dense.weight.detach().numpy().copy(),
            "dense_b": dense.bias.detach().numpy().copy(),
            "bag": bag.weight.detach().numpy().copy(),
        }

    @staticmethod
    def _predict(weights: dict, emb: np.ndarray, ids: list[np.ndarray], n_acts: int) -> tuple[np.ndarray, np.ndarray]:
        logits = emb @ weights["dense_w"].T + weights["dense_b"]
        for i, idx in enumerate(ids):
            logits[i] += weights["bag"][idx].sum(axis=0)
        a = logits[:, :n_acts]
        a = np.exp(a - a.max(axis=1, keepdims=True))
        return a / a.sum(axis=1, keepdims=True), 1.0 / (1.0 + np.exp(-logits[:, n_acts:]))

    def fit(self, fs: FeatureSet) -> np.ndarray:
        """Fit on the training turns; their out-of-fold reader features."""
        act, kinds = self._targets(fs)
        if not np.any(act >= 0):
            raise ValueError("no heard turns with a known meaning to train the transcript reader on")
        ids = [ngram_ids(w.text) for w in fs.words]
        fold = session_folds(fs, FOLDS)
        pa = np.full((len(act), len(self.acts)), 1.0 / len(self.acts), np.float32)
        pk = np.full((len(act), len(self.kinds)), 0.5, np.float32)
        for k in range(FOLDS):
            out = fold == k
            if np.any(act[~out] >= 0) and out.any():  # a tiny run leaves the rest uninformed
                w = self._train(fs.text[~out], [ids[j] for j in np.flatnonzero(~out)], act[~out], kinds[~out])
                pa[out], pk[out] = self._predict(w, fs.text[out], [ids[j] for j in np.flatnonzero(out)], len(self.acts))
        self.weights = self._train(fs.text, ids, act, kinds)
        known = act >= 0
        log.info(
            "transcript reader: out-of-fold act accuracy %.3f on %d turns",
            float(np.mean(pa[known].argmax(axis=1) == act[known])),
            int(known.sum()),
        )
        return self._features(fs, pa, pk)

    def features(self, fs: FeatureSet) -> np.ndarray:
        pa, pk = self._predict(self.weights, fs.text, [ngram_ids(w.text) for w in fs.words], len(self.acts))
        return self._features(fs, pa, pk)

    def _features(self, fs: FeatureSet, pa: np.ndarray, pk: np.ndarray) -> np.ndarray:
        out = np.zeros((len(fs.words), len(NAMES)), np.float32)
        for i, w in enumerate(fs.words):
            if not w.text:
                continue
            p, top = pa[i], int(pa[i].argmax())
            own = p[self.acts.index(w.nlu_act)] if w.nlu_act in self.acts else 0.0
            said = dict(zip(self.kinds, pk[i]))
            untagged = [v for k, v in said.items() if k not in w.tagged]
            accepted = [said[k] for k in w.accepted if k in said and k not in w.tagged]
            unsaid = [1.0 - said[k] for k in w.tagged if k in said]
            out[i] = (
                own,
                p[top],
                float(self.acts[top] == w.nlu_act),
                p[self.acts.index(w.runner_up)] if w.runner_up in self.acts else 0.0,
                p[top] - own,
                max(accepted, default=0.0),
                max(untagged, default=0.0),
                max(unsaid, default=0.0),
                float(np.sum(pk[i] > 0.5)) - len(w.tagged),
            )
        return out

    def save(self, folder: Path) -> dict:
        np.savez(folder / FILE, **self.weights)
        return {"files": [FILE], "acts": self.acts, "kinds": self.kinds}

    @classmethod
    def load(cls, folder: Path, info: dict) -> "Reader":
        """Only data is read (``.npz`` without pickle); shapes are checked."""
        from hooks.learn.labelers import _arrays

        acts, kinds = (info.get(k) if isinstance(info, dict) else None for k in ("acts", "kinds"))
        if not all(isinstance(v, list) and v and all(isinstance(x, str) for x in v) for v in (acts, kinds)):
            raise ValueError("reader: acts and kinds must be lists of names")
        m = cls(acts, kinds)
        m.weights = _arrays(folder / FILE)
        want = {"dense_w": (m.n_out, EMBED_DIM), "dense_b": (m.n_out,), "bag": (BUCKETS, m.n_out)}
        for k, shape in want.items():
            if m.weights.get(k, np.zeros(0)).shape != shape:
                raise ValueError(f"{FILE}: {k} has the wrong shape")
        return m


def _bag_inputs(ids: list[np.ndarray]):
    import torch

    offsets = np.cumsum([0] + [len(x) for x in ids[:-1]])
    flat = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    return torch.from_numpy(flat.astype(np.int64)), torch.from_numpy(offsets.astype(np.int64))


def slot_kinds(domain: str) -> list[str]:
    from hooks.learn.turn_features import _lexicon

    return sorted(set(_lexicon(domain).slot_types.values()))


def acts_for(intents: list[str]) -> list[str]:
    return [*intents, OOD_ACT]

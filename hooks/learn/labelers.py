"""Two labelers over the same features: gradient boosting, and a dialogue-level Transformer.

* ``gbm``: LightGBM on each turn's features, its neighbors' key features and a PCA of the
  transcript and reply embeddings. Saved in LightGBM's text format.
* ``sequence``: a turn encoder (MLP over features and embeddings) feeding a bidirectional
  Transformer over the session's turns, with a failure-point head and a defect head — the
  shape of Amazon's label generator. Saved as a torch state dict, loaded with weights_only=True.

* ``ensemble``: the two above, their probabilities averaged with the GBM's weight chosen on the
  validation turns (the GBM reads one turn's cues sharply, the Transformer the whole dialogue;
  they err on different turns). It adds no file of its own.

A model folder holds all three (``model.json`` names the one ``train`` kept as the default). No file
can execute code when loaded: boosters are parsed from text, tensors are read with
``weights_only=True``, statistics live in ``.npz`` files read with ``allow_pickle=False``, and
shapes are checked against the model's feature list; anything else is refused (exit code 2).
Both weigh the rare failure points up (``class_weights``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from hooks.learn.evaluation import evaluate
from hooks.learn.turn_features import CLASSES, EMBED_DIM, FeatureSet

log = logging.getLogger(__name__)

PCA_DIMS = 16
INPUT_CLIP = 6.0  # standardized features beyond this many standard deviations are clipped
CORRECT = CLASSES.index("correct")


def selection_score(metrics: dict) -> float:
    """How models are compared on validation turns: failure-point accuracy and macro F1 alike
    (accuracy alone would favor ignoring the rare classes)."""
    return (metrics.get("fp_accuracy", 0.0) + metrics.get("fp_macro_f1", 0.0)) / 2


def class_weights(y: np.ndarray, power: float = 0.5) -> np.ndarray:
    """Per-class weights (mean 1 over the turns): the rare failure points (nlu, resolve, result:
    a few percent of turns each) count for more, short of full balancing, which over-predicts them."""
    counts = np.bincount(y[y >= 0], minlength=len(CLASSES)).astype(float)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1) / len(CLASSES)) ** power, 0.0)
    mean = float((w[y[y >= 0]]).mean()) if np.any(y >= 0) else 1.0
    return w / (mean or 1.0)


DECISION_GRID = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)  # factors tried per class


def decision_weights(y: np.ndarray, p: np.ndarray, d: np.ndarray) -> np.ndarray:
    """A factor per class on the kept labeler's probabilities before the argmax, chosen on the
    validation turns ``y`` (coordinate ascent over DECISION_GRID, two passes; a factor moves from
    1 only when the validation score rises). A validation set unlike the training traffic
    (``train --val``: users who phrase in a way the training users never did) moves decisions
    toward the failure points that traffic makes commoner."""
    weights = np.ones(p.shape[1])
    best = selection_score(evaluate(y, p, d))
    for _pass in range(2):
        for c in range(p.shape[1]):
            for factor in DECISION_GRID:
                trial = weights.copy()
                trial[c] = factor
                score = selection_score(evaluate(y, reweighted(p, trial), d))
                if score > best + 1e-9:
                    best, weights = score, trial
    return weights


def reweighted(p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    q = p * weights
    return q / np.maximum(q.sum(axis=1, keepdims=True), 1e-12)


class WeightedLabeler:
    """A labeler whose failure-point probabilities are reweighted by :func:`decision_weights`
    (the defect probability is its own)."""

    def __init__(self, model, weights: np.ndarray):
        self.model = model
        self.weights = weights
        self.kind = model.kind

    def predict(self, fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
        p, d = self.model.predict(fs)
        return reweighted(p, self.weights), d


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# One thread: with two, OpenMP spin-waits made training 45x slower whenever anything else ran on
# this 2-core machine (110 s vs 2.4 s, same model).
GBM_PARAMS = {
    "learning_rate": 0.1,
    "num_leaves": 31,
    "max_bin": 63,
    "min_data_in_leaf": 10,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 1,
    "force_row_wise": True,
    "deterministic": True,
}
GBM_ROUNDS = 400


class GbmLabeler:
    kind = "gbm"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.fp = None
        self.defect = None
        self.pca: dict[str, np.ndarray] = {}

    # embeddings → a few principal components, fitted on the training turns
    def _fit_pca(self, fs: FeatureSet) -> None:
        for name, m in (("text", fs.text), ("reply", fs.reply)):
            mean = m.mean(axis=0)
            _u, _s, vt = np.linalg.svd(m - mean, full_matrices=False)
            self.pca[f"{name}_mean"] = mean.astype(np.float32)
            self.pca[f"{name}_components"] = vt[:PCA_DIMS].astype(np.float32)

    def _matrix(self, fs: FeatureSet) -> np.ndarray:
        parts = [fs.X]
        for name, m in (("text", fs.text), ("reply", fs.reply)):
            parts.append((m - self.pca[f"{name}_mean"]) @ self.pca[f"{name}_components"].T)
        return np.hstack(parts).astype(np.float32)

    def fit(self, train: FeatureSet, val: FeatureSet | None = None) -> "GbmLabeler":
        import lightgbm as lgb

        self._fit_pca(train)
        keep = train.y_fp >= 0
        X, y = self._matrix(train)[keep], train.y_fp[keep]
        weight = class_weights(y)[y]
        params = {**GBM_PARAMS, "objective": "multiclass", "num_class": len(CLASSES), "seed": self.seed}
        sets, callbacks = [], []
        if val is not None:
            vk = val.y_fp >= 0
            sets = [lgb.Dataset(self._matrix(val)[vk], val.y_fp[vk])]
            callbacks = [lgb.early_stopping(30, verbose=False)]
        self.fp = lgb.train(
            params, lgb.Dataset(X, y, weight=weight), num_boost_round=GBM_ROUNDS, valid_sets=sets, callbacks=callbacks
        )
        bin_params = {**params, "objective": "binary"}
        bin_params.pop("num_class")
        d = (y != CORRECT).astype(int)
        vsets = []
        if val is not None:
            vk = val.y_fp >= 0
            vsets = [lgb.Dataset(self._matrix(val)[vk], (val.y_fp[vk] != CORRECT).astype(int))]
        self.defect = lgb.train(
            bin_params, lgb.Dataset(X, d), num_boost_round=GBM_ROUNDS, valid_sets=vsets, callbacks=callbacks
        )
        return self

    def predict(self, fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
        X = self._matrix(fs)
        return self.fp.predict(X), self.defect.predict(X)

    def save(self, folder: Path) -> dict:
        (folder / "gbm_fp.txt").write_text(self.fp.model_to_string(), encoding="utf-8")
        (folder / "gbm_defect.txt").write_text(self.defect.model_to_string(), encoding="utf-8")
        np.savez(folder / "gbm_pca.npz", **self.pca)
        return {"files": ["gbm_fp.txt", "gbm_defect.txt", "gbm_pca.npz"]}

    @classmethod
    def load(cls, folder: Path, info: dict, n_features: int) -> "GbmLabeler":
        import lightgbm as lgb

        m = cls()
        m.fp = lgb.Booster(model_str=(folder / "gbm_fp.txt").read_text(encoding="utf-8"))
        m.defect = lgb.Booster(model_str=(folder / "gbm_defect.txt").read_text(encoding="utf-8"))
        m.pca = _arrays(folder / "gbm_pca.npz")
        width = n_features + 2 * PCA_DIMS
        for name in ("text", "reply"):
            if m.pca.get(f"{name}_components", np.zeros(0)).shape != (PCA_DIMS, EMBED_DIM) or m.pca.get(
                f"{name}_mean", np.zeros(0)
            ).shape != (EMBED_DIM,):
                raise ValueError(f"gbm_pca.npz: {name} projection has the wrong shape")
        for booster, n_class in ((m.fp, len(CLASSES)), (m.defect, 1)):
            if booster.num_feature() != width or booster.num_model_per_iteration() != n_class:
                raise ValueError(f"a booster expects {booster.num_feature()} features, the model has {width}")
        return m


class SequenceLabeler:
    kind = "sequence"

    def __init__(
        self, seed: int = 0, d_model: int = 96, layers: int = 2, heads: int = 4, epochs: int = 40, max_turns: int = 64
    ):
        self.seed = seed
        self.hparams = {"d_model": d_model, "layers": layers, "heads": heads, "max_turns": max_turns}
        self.epochs = epochs
        self.net = None
        self.stats: dict[str, np.ndarray] = {}

    def _build(self, n_features: int):
        import torch
        from torch import nn

        hp = self.hparams

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.turn = nn.Sequential(
                    nn.Linear(n_features + 2 * EMBED_DIM, 192),
                    nn.GELU(),
                    nn.Dropout(0.1),
                    nn.Linear(192, hp["d_model"]),
                )
                self.position = nn.Embedding(hp["max_turns"], hp["d_model"])
                layer = nn.TransformerEncoderLayer(
                    hp["d_model"], hp["heads"], 2 * hp["d_model"], dropout=0.1, batch_first=True
                )
                self.dialogue = nn.TransformerEncoder(layer, hp["layers"], enable_nested_tensor=False)
                self.fp = nn.Linear(hp["d_model"], len(CLASSES))
                self.defect = nn.Linear(hp["d_model"], 1)

            def forward(self, x, pad):
                pos = torch.arange(x.shape[1], device=x.device).clamp(max=hp["max_turns"] - 1)
                h = self.turn(x) + self.position(pos)[None]
                h = self.dialogue(h, src_key_padding_mask=pad)
                return self.fp(h), self.defect(h).squeeze(-1)

        return Net()

    def _inputs(self, fs: FeatureSet):
        # Features constant in training (std 0: e.g. utterance length, which text fidelity does not
        # have) carry nothing the net learned, and standardized they would be huge on audio traces:
        # they read 0; the rest are clipped to the range the net saw.
        X = np.clip((fs.X - self.stats["mean"]) / self.stats["std"], -INPUT_CLIP, INPUT_CLIP)
        return np.hstack([X, fs.text, fs.reply]).astype(np.float32)

    def _batches(self, fs: FeatureSet, order: list[int], size: int):
        import torch

        feats = self._inputs(fs)
        for i in range(0, len(order), size):
            spans = [fs.sessions[j] for j in order[i : i + size]]
            spans = [(a, min(b, a + self.hparams["max_turns"])) for a, b in spans]
            longest = max(b - a for a, b in spans)
            x = np.zeros((len(spans), longest, feats.shape[1]), np.float32)
            y = np.full((len(spans), longest), -1, np.int64)
            pad = np.ones((len(spans), longest), bool)
            for k, (a, b) in enumerate(spans):
                x[k, : b - a] = feats[a:b]
                y[k, : b - a] = fs.y_fp[a:b]
                pad[k, : b - a] = False
            yield spans, torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(pad)

    def fit(self, train: FeatureSet, val: FeatureSet | None = None) -> "SequenceLabeler":
        import torch
        from torch import nn

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        std = train.X.std(axis=0)
        self.stats = {"mean": train.X.mean(axis=0), "std": np.where(std < 1e-6, np.inf, std).astype(np.float32)}
        self.net = self._build(train.X.shape[1])
        opt = torch.optim.AdamW(self.net.parameters(), lr=2e-3, weight_decay=1e-2)
        ce = nn.CrossEntropyLoss(weight=torch.tensor(class_weights(train.y_fp), dtype=torch.float32), ignore_index=-1)
        bce = nn.BCEWithLogitsLoss(reduction="none")
        best, best_state, patience = -1.0, None, 0
        started = time.perf_counter()
        for epoch in range(self.epochs):
            self.net.train()
            order = list(rng.permutation(len(train.sessions)))
            for _spans, x, y, pad in self._batches(train, order, 32):
                logits, dlogit = self.net(x, pad)
                mask = y >= 0
                loss = ce(logits.reshape(-1, len(CLASSES)), y.reshape(-1))
                target = (y != CORRECT).float()
                loss = loss + (bce(dlogit, target) * mask).sum() / mask.sum().clamp(min=1)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                opt.step()
            if val is not None:
                score = selection_score(evaluate(val.y_fp, *self.predict(val)))
                if score > best:
                    best, patience = score, 0
                    best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                else:
                    patience += 1
                    if patience >= 8:
                        break
            log.debug("epoch %d done (%.0f s)", epoch, time.perf_counter() - started)
        if best_state is not None:
            self.net.load_state_dict(best_state)
        return self

    def predict(self, fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
        import torch

        self.net.eval()
        p = np.zeros((len(fs.X), len(CLASSES)), np.float32)
        d = np.zeros(len(fs.X), np.float32)
        with torch.no_grad():
            for spans, x, _y, pad in self._batches(fs, list(range(len(fs.sessions))), 64):
                logits, dlogit = self.net(x, pad)
                probs = torch.softmax(logits, -1).numpy()
                dp = torch.sigmoid(dlogit).numpy()
                for k, (a, b) in enumerate(spans):
                    p[a:b] = probs[k, : b - a]
                    d[a:b] = dp[k, : b - a]
        return p, d

    def save(self, folder: Path) -> dict:
        import torch

        torch.save(self.net.state_dict(), folder / "sequence.pt")
        np.savez(folder / "sequence_stats.npz", **self.stats)
        return {"files": ["sequence.pt", "sequence_stats.npz"], "hparams": self.hparams}

    @classmethod
    def load(cls, folder: Path, info: dict, n_features: int) -> "SequenceLabeler":
        import torch

        hp = info.get("hparams") or {}
        m = cls(**{k: int(hp[k]) for k in ("d_model", "layers", "heads", "max_turns") if k in hp})
        m.stats = _arrays(folder / "sequence_stats.npz")
        if m.stats.get("mean", np.zeros(0)).shape != (n_features,) or m.stats.get("std", np.zeros(0)).shape != (
            n_features,
        ):
            raise ValueError("sequence_stats.npz does not match the model's features")
        m.net = m._build(n_features)
        m.net.load_state_dict(torch.load(folder / "sequence.pt", map_location="cpu", weights_only=True))
        m.net.eval()
        return m


class EnsembleLabeler:
    kind = "ensemble"
    MEMBERS = ("gbm", "sequence")
    WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # the GBM's share; the ends are the members alone

    def __init__(self, members: dict, weight: float = 0.5):
        self.members = members
        self.weight = weight

    @classmethod
    def choose(cls, members: dict, val: FeatureSet | None) -> "EnsembleLabeler":
        """The weight with the best validation score (each member predicts the turns once)."""
        if val is None or not np.any(val.y_fp >= 0):
            return cls(members)
        preds = {k: members[k].predict(val) for k in cls.MEMBERS}
        scores = {w: selection_score(evaluate(val.y_fp, *cls._mix(preds, w))) for w in cls.WEIGHTS}
        best = max(scores, key=scores.get)
        log.info("ensemble: GBM weight %.1f (validation scores %s)", best, {w: round(v, 4) for w, v in scores.items()})
        return cls(members, best)

    @staticmethod
    def _mix(preds: dict, weight: float) -> tuple[np.ndarray, np.ndarray]:
        (pg, dg), (ps, ds) = preds["gbm"], preds["sequence"]
        return weight * pg + (1 - weight) * ps, weight * dg + (1 - weight) * ds

    def predict(self, fs: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
        return self._mix({k: self.members[k].predict(fs) for k in self.MEMBERS}, self.weight)

    def save(self, folder: Path, saved: dict | None = None) -> dict:
        """Its model.json entry; the members' files are theirs (``saved``: their entries, when
        they were saved already). The entries are repeated here so that loading the ensemble
        needs nothing else from model.json."""
        saved = saved or {}
        return {
            "files": [],
            "weight": self.weight,
            "members": {k: saved[k] if k in saved else self.members[k].save(folder) for k in self.MEMBERS},
        }

    @classmethod
    def load(cls, folder: Path, info: dict, n_features: int) -> "EnsembleLabeler":
        weight, members = info.get("weight"), info.get("members")
        if (
            not isinstance(weight, (int, float))
            or not 0.0 <= weight <= 1.0
            or not isinstance(members, dict)
            or set(members) != set(cls.MEMBERS)
        ):
            raise ValueError("ensemble entry needs a weight in [0, 1] and the gbm and sequence members")
        return cls({k: KINDS[k].load(folder, members[k], n_features) for k in cls.MEMBERS}, float(weight))


KINDS = {"gbm": GbmLabeler, "sequence": SequenceLabeler, "ensemble": EnsembleLabeler}
TRAINED = ("gbm", "sequence")  # fitted on their own; the ensemble is chosen from them
FORMAT = "assistant.labeler/1"


def save_model(folder: str | Path, models: dict, chosen: str, meta: dict) -> Path:
    """Every trained labeler into ``folder``; ``model.json`` names the one kept (``kind``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    saved = {k: m.save(folder) for k, m in models.items() if not isinstance(m, EnsembleLabeler)}
    saved |= {k: m.save(folder, saved) for k, m in models.items() if isinstance(m, EnsembleLabeler)}
    info = {"format": FORMAT, "kind": chosen, **meta, "models": saved}
    (folder / "model.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return folder


def load_model(folder: str | Path, kind: str | None = None):
    """(labeler, meta). Only data is read — LightGBM's text format, torch tensors with
    ``weights_only=True``, ``.npz`` without pickle — so a tampered file is refused, never run."""
    from core.errors import InputError

    folder = Path(folder)
    path = folder / "model.json"
    if not folder.is_dir():
        raise InputError(folder, "no such model folder; train one with `assistant train`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(folder, "not a labeler model (no model.json); train one with `assistant train`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(path, f"invalid JSON ({getattr(err, 'msg', err)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("kind") not in KINDS:
        raise InputError(path, f"not a labeler model (format {FORMAT}, kind {', '.join(KINDS)})", field="format")
    kind = kind or meta["kind"]
    if kind not in KINDS or kind not in (meta.get("models") or {}):
        raise InputError(
            path, f"holds no {kind} model (it has: {', '.join(meta.get('models') or {}) or 'none'})", field="models"
        )
    if not isinstance(meta.get("feature_names"), list) or not isinstance(meta.get("intents"), list):
        raise InputError(path, "feature_names and intents must be lists", field="feature_names")
    model = load_part(
        folder, f"{kind} model", lambda: KINDS[kind].load(folder, meta["models"][kind], len(meta["feature_names"]))
    )
    by_class = meta.get("decision_weights") or {}
    if kind == meta["kind"] and by_class:  # fitted for the kept labeler only
        factors = [by_class.get(c, 1.0) for c in CLASSES]
        if set(by_class) - set(CLASSES) or not all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < float("inf") for f in factors
        ):
            raise InputError(
                path, "decision_weights must map failure points to positive numbers", field="decision_weights"
            )
        model = WeightedLabeler(model, np.array(factors, dtype=float))
    return model, {**meta, "kind": kind}


def load_part(folder: Path, what: str, load):
    """``load()``, with what a missing or damaged file raises turned into one named input error."""
    from core.errors import InputError

    try:
        return load()
    except FileNotFoundError as err:
        raise InputError(err.filename or folder, "missing from the model folder") from None
    except Exception as err:  # whatever a damaged or foreign file raises, it is not a model
        raise InputError(folder, f"{what} refused: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None

"""Two labelers over the same features: gradient boosting, and a dialogue-level Transformer.

* ``gbm``: LightGBM on each turn's features, its neighbors' key features and a PCA of the
  transcript and reply embeddings. Saved in LightGBM's text format.
* ``sequence``: a turn encoder (MLP over features and embeddings) feeding a bidirectional
  Transformer over the session's turns, with a failure-point head and a defect head — the
  shape of Amazon's label generator. Saved as a torch state dict, loaded with weights_only=True.

Neither file can execute code when loaded; normalization statistics live in ``.npz`` files read
with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from hooks.learn.features import CLASSES, EMBED_DIM, FeatureSet

log = logging.getLogger(__name__)

PCA_DIMS = 16
CORRECT = CLASSES.index("correct")


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


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
        # One thread: with two, OpenMP spin-waits made training 45x slower whenever anything else
        # ran on this 2-core machine (110 s vs 2.4 s, same model).
        params = {"objective": "multiclass", "num_class": len(CLASSES), "learning_rate": 0.1, "num_leaves": 31,
                  "max_bin": 63, "min_data_in_leaf": 10, "feature_fraction": 0.8, "bagging_fraction": 0.9,
                  "bagging_freq": 1, "lambda_l2": 1.0, "seed": self.seed, "verbose": -1, "num_threads": 1,
                  "force_row_wise": True, "deterministic": True}
        sets, callbacks = [], []
        if val is not None:
            vk = val.y_fp >= 0
            sets = [lgb.Dataset(self._matrix(val)[vk], val.y_fp[vk])]
            callbacks = [lgb.early_stopping(30, verbose=False)]
        self.fp = lgb.train(params, lgb.Dataset(X, y), num_boost_round=400, valid_sets=sets, callbacks=callbacks)
        bin_params = {**params, "objective": "binary"}
        bin_params.pop("num_class")
        d = (y != CORRECT).astype(int)
        vsets = []
        if val is not None:
            vk = val.y_fp >= 0
            vsets = [lgb.Dataset(self._matrix(val)[vk], (val.y_fp[vk] != CORRECT).astype(int))]
        self.defect = lgb.train(bin_params, lgb.Dataset(X, d), num_boost_round=400, valid_sets=vsets,
                                callbacks=callbacks)
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
    def load(cls, folder: Path, meta: dict) -> "GbmLabeler":
        import lightgbm as lgb

        m = cls()
        m.fp = lgb.Booster(model_str=(folder / "gbm_fp.txt").read_text(encoding="utf-8"))
        m.defect = lgb.Booster(model_str=(folder / "gbm_defect.txt").read_text(encoding="utf-8"))
        m.pca = _arrays(folder / "gbm_pca.npz")
        return m


class SequenceLabeler:
    kind = "sequence"

    def __init__(self, seed: int = 0, d_model: int = 96, layers: int = 2, heads: int = 4, epochs: int = 40,
                 max_turns: int = 64):
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
                self.turn = nn.Sequential(nn.Linear(n_features + 2 * EMBED_DIM, 192), nn.GELU(), nn.Dropout(0.1),
                                          nn.Linear(192, hp["d_model"]))
                self.position = nn.Embedding(hp["max_turns"], hp["d_model"])
                layer = nn.TransformerEncoderLayer(hp["d_model"], hp["heads"], 2 * hp["d_model"], dropout=0.1,
                                                   batch_first=True)
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
        X = (fs.X - self.stats["mean"]) / self.stats["std"]
        return np.hstack([X, fs.text, fs.reply]).astype(np.float32)

    def _batches(self, fs: FeatureSet, order: list[int], size: int):
        import torch

        feats = self._inputs(fs)
        for i in range(0, len(order), size):
            spans = [fs.sessions[j] for j in order[i: i + size]]
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
        self.stats = {"mean": train.X.mean(axis=0), "std": train.X.std(axis=0) + 1e-6}
        self.net = self._build(train.X.shape[1])
        opt = torch.optim.AdamW(self.net.parameters(), lr=2e-3, weight_decay=1e-2)
        ce = nn.CrossEntropyLoss(ignore_index=-1)
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
                p, _d = self.predict(val)
                keep = val.y_fp >= 0
                acc = float(np.mean(p[keep].argmax(1) == val.y_fp[keep]))
                if acc > best:
                    best, patience = acc, 0
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
    def load(cls, folder: Path, meta: dict) -> "SequenceLabeler":
        import torch

        m = cls(**meta.get("hparams", {}))
        m.stats = _arrays(folder / "sequence_stats.npz")
        m.net = m._build(len(meta["feature_names"]))
        m.net.load_state_dict(torch.load(folder / "sequence.pt", map_location="cpu", weights_only=True))
        m.net.eval()
        return m


KINDS = {"gbm": GbmLabeler, "sequence": SequenceLabeler}
FORMAT = "assistant.labeler/1"


def save_model(folder: str | Path, model, meta: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info = {"format": FORMAT, "kind": model.kind, **meta, **model.save(folder)}
    (folder / "model.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return folder


def load_model(folder: str | Path):
    from assistant.errors import InputError

    folder = Path(folder)
    path = folder / "model.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(folder, "not a labeler model (no model.json); train one with `assistant train`") from None
    except json.JSONDecodeError as err:
        raise InputError(path, f"invalid JSON ({err.msg})") from None
    if meta.get("format") != FORMAT or meta.get("kind") not in KINDS:
        raise InputError(path, f"not a labeler model (format {FORMAT}, kind gbm or sequence)", field="format")
    return KINDS[meta["kind"]].load(folder, meta), meta

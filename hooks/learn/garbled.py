"""How garbled a transcript reads: a score both labelers take as one more feature.

An asr failure point and an nlu one often look alike in a trace: a wrong intent or a dropped slot
on a transcript with a few misheard words. The label turns on whether the NLU's own reading of
those words would have gone wrong anyway, which is what the transcript's own cues (recognizer
confidences, word probabilities, how far the words are from the domain's sentences and catalogs)
say. The few nlu turns teach the labelers that poorly; every heard turn teaches this small booster
(asr against everything else), and its score carries it over. Training turns get out-of-fold
scores: scored by a booster that saw their labels, they would look more telling than the score
is on new traces. Saved as LightGBM text and a ``.npz`` read without pickle.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hooks.learn.labelers import GBM_PARAMS
from hooks.learn.turn_features import CLASSES, EMBED_DIM, FeatureSet, session_folds, with_columns

log = logging.getLogger(__name__)

NAME = "garbled_transcript"
# The transcript's own cues: no reply, no user reaction, and not the NLU's margin or runner-up
# score (an injected intent fault sets those, not the words). The transcript reader's features
# (hooks/learn/transcript_classifier.py) say how plainly the words name an act, and whether it is the NLU's.
KEYS = (
    "avg_logprob",
    "no_speech_prob",
    "asr_confidence",
    "compression_ratio",
    "min_word_prob",
    "mean_word_prob",
    "n_words",
    "low_prob_words",
    "low_prob_share",
    "says_wake_word",
    "transcript_empty",
    "intent_confidence",
    "coverage",
    "text_best_fit",
    "lex_mentions",
    "lex_builtins",
    "slot_word_min_prob",
    "slot_word_mean_prob",
    "slot_words_low",
    "other_word_min_prob",
    "other_words_low",
    "mention_word_min_prob",
    "lex_untagged",
    "nlu_ood",
    "intent_none",
    "reader_top_p",
    "reader_p_nlu_act",
    "reader_agrees",
)
PCA_DIMS = 16
FOLDS = 4
ROUNDS = 150
# the labelers' settings, for one yes/no question on a few hundred turns
PARAMS = {**GBM_PARAMS, "objective": "binary", "min_data_in_leaf": 20}
ASR = CLASSES.index("asr")
WAKE = CLASSES.index("wake")
FILES = ("garbled.txt", "garbled.npz")


class GarbledScorer:
    def __init__(self, seed: int = 0):
        self.seed = seed
        self.booster = None
        self.columns: list[int] = []
        self.n_features = 0  # the width of the feature rows it reads
        self.pca: dict[str, np.ndarray] = {}

    def _matrix(self, fs: FeatureSet) -> np.ndarray:
        text = (fs.text - self.pca["mean"]) @ self.pca["components"].T
        return np.hstack([fs.X[:, self.columns], text]).astype(np.float32)

    def _train(self, X: np.ndarray, y: np.ndarray):
        import lightgbm as lgb

        return lgb.train({**PARAMS, "seed": self.seed}, lgb.Dataset(X, (y == ASR).astype(int)), ROUNDS)

    def fit(self, train: FeatureSet) -> np.ndarray:
        """Fit on the heard, labeled turns; the out-of-fold score of every training turn."""
        self.columns = [train.names.index(k) for k in KEYS if k in train.names]
        self.n_features = len(train.names)
        mean = train.text.mean(axis=0)
        _u, _s, vt = np.linalg.svd(train.text - mean, full_matrices=False)
        self.pca = {"mean": mean.astype(np.float32), "components": vt[:PCA_DIMS].astype(np.float32)}
        X, y = self._matrix(train), train.y_fp
        use = (y >= 0) & (y != WAKE)  # a missed or false wake word says nothing about the words
        if not use.any():
            raise ValueError("no heard, labeled turns to learn garbled transcripts from")
        fold = session_folds(train, FOLDS)
        scores = np.full(len(y), float(np.mean(y[use] == ASR)), np.float32)
        for k in range(FOLDS):
            fit = use & (fold != k)
            if fit.sum() >= 2 * PARAMS["min_data_in_leaf"]:  # a tiny run keeps the base rate
                scores[fold == k] = self._train(X[fit], y[fit]).predict(X[fold == k])
        self.booster = self._train(X[use], y[use])
        return scores

    def score(self, fs: FeatureSet) -> np.ndarray:
        return self.booster.predict(self._matrix(fs)).astype(np.float32) if len(fs.X) else np.zeros(0, np.float32)

    def save(self, folder: Path) -> dict:
        (folder / FILES[0]).write_text(self.booster.model_to_string(), encoding="utf-8")
        np.savez(folder / FILES[1], **self.pca)
        return {"files": list(FILES), "columns": list(self.columns)}

    @classmethod
    def load(cls, folder: Path, info: dict, n_features: int) -> "GarbledScorer":
        """Only data is read (LightGBM text, ``.npz`` without pickle); shapes are checked."""
        import lightgbm as lgb

        from hooks.learn.labelers import _arrays

        m = cls()
        columns = info.get("columns") if isinstance(info, dict) else None
        if not isinstance(columns, list) or not all(type(c) is int and 0 <= c < n_features for c in columns):
            raise ValueError("garbled: columns must list feature indices")
        m.columns, m.n_features = columns, n_features
        m.booster = lgb.Booster(model_str=(folder / FILES[0]).read_text(encoding="utf-8"))
        m.pca = _arrays(folder / FILES[1])
        if m.pca.get("mean", np.zeros(0)).shape != (EMBED_DIM,) or m.pca.get("components", np.zeros(0)).shape != (
            PCA_DIMS,
            EMBED_DIM,
        ):
            raise ValueError("garbled.npz: the projection has the wrong shape")
        if m.booster.num_feature() != len(columns) + PCA_DIMS or m.booster.num_model_per_iteration() != 1:
            raise ValueError(f"garbled.txt expects {m.booster.num_feature()} features, not {len(columns) + PCA_DIMS}")
        return m


def with_score(fs: FeatureSet, scores: np.ndarray) -> FeatureSet:
    """``fs`` with the score as its last feature."""
    return with_columns(fs, [NAME], scores)

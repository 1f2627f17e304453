"""Sentence embeddings from the bundled all-MiniLM-L6-v2 (loaded once, on first use, offline)."""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache

import numpy as np

from core.model_files import minilm_model

log = logging.getLogger(__name__)
_lock = threading.Lock()
_model = None


def _load():
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.set_verbosity_error()
            transformers.utils.logging.disable_progress_bar()
            # One thread: inputs are a sentence or two, and with two threads the model thrashed
            # whenever anything else ran (241 ms vs 20 ms per sentence, measured here).
            torch.set_num_threads(1)
            path = minilm_model()
            _model = SentenceTransformer(str(path), device="cpu")
            log.info("loaded sentence embeddings from %s", path)
    return _model


def embed(texts: list[str]) -> np.ndarray:
    """L2-normalized embeddings, shape (len(texts), 384)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    model = _load()
    return np.asarray(
        model.encode(list(texts), normalize_embeddings=True, batch_size=64, show_progress_bar=False), dtype=np.float32
    )


@lru_cache(maxsize=4096)
def embed_one(text: str) -> np.ndarray:
    return embed([text])[0]


def similarity(a: str, b: str) -> float:
    return float(np.dot(embed_one(a), embed_one(b)))

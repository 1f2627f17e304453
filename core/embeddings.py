"""Sentence embeddings from the bundled all-MiniLM-L6-v2 (loaded once, on first use, offline).

The transformer runs in ONNX Runtime on one thread (:mod:`core.minilm_onnx`): float32, as
sentence-transformers computes, and faster than torch on a sentence or two."""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext
from functools import lru_cache

import numpy as np

from core import minilm
from core.minilm_onnx import file_encoder

log = logging.getLogger(__name__)
_lock = threading.Lock()
_model = None
_BATCH = 64
MAX_TOKENS = 256  # the model's sentence_bert_config.json


def _load():
    global _model
    with _lock:
        if _model is None:
            import torch

            # One thread: inputs are a sentence or two, and with two threads the model thrashed
            # whenever anything else ran (241 ms vs 20 ms per sentence, measured here). The
            # torch model, built only where ONNX Runtime cannot run, keeps to it too.
            torch.set_num_threads(1)
            encoder = file_encoder()
            _model = (minilm.tokenizer(), encoder if encoder is not None else minilm.bert())
            log.info("loaded sentence embeddings (MiniLM)")
    return _model


def embed(texts: list[str], every_core: bool = False) -> np.ndarray:
    """L2-normalized embeddings, shape (len(texts), 384): mean-pooled MiniLM, as
    sentence-transformers computes them for this model (its config: 256 tokens at most).
    ``every_core``: a batch job (thousands of texts) runs on every core, not the one thread the
    encoder keeps for requests, where torch runs it (ONNX Runtime's encoder keeps its thread)."""
    if not texts:
        return np.zeros((0, minilm.WORD_DIM), dtype=np.float32)
    tok, model = _load()  # before every_core: loading sets the encoder's one thread
    with minilm.every_core() if every_core else nullcontext():
        return minilm.mean_pooled_sorted(tok, model, list(texts), MAX_TOKENS, _BATCH)


@lru_cache(maxsize=4096)
def embed_one(text: str) -> np.ndarray:
    return embed([text])[0]


def similarity(a: str, b: str) -> float:
    return float(np.dot(embed_one(a), embed_one(b)))

"""Pretrained features for the NLU, both from the bundled all-MiniLM-L6-v2 (offline).

* **Word vectors**: MiniLM's input token-embedding table (30,522 word pieces × 384). A word's
  vector is the mean of its pieces' rows. These static embeddings are strikingly semantic —
  the nearest pieces to "nepal" are kathmandu, nepali, bhutan; to "jazz" saxophonist, blues —
  so a tagger trained on a few thousand sentences still knows that an unseen word is a
  country or a singer. Cost: one table read per process, then a dictionary look-up per word
  (new words: the word-piece tokenizer, ~50 µs). No transformer runs.
* **Sentence embeddings**: the full MiniLM forward pass (mean-pooled), ~15 ms per utterance on
  2 cores — for intent classification on small corpora (see ``TrainConfig.sentence_embeddings``).

Neither stores weights in the trained model: the layers read the installed package, so the
spaCy model folder stays small and loads without pickle.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

log = logging.getLogger(__name__)

WORD_DIM = 384
_TABLE_KEY = "embeddings.word_embeddings.weight"
_CACHE_MAX = 200_000

_lock = threading.Lock()
_table: np.ndarray | None = None
_tokenizer = None
_cache: dict[str, np.ndarray] = {}


def _load() -> tuple[np.ndarray, object]:
    global _table, _tokenizer
    with _lock:
        if _table is None:
            from safetensors import safe_open
            from tokenizers import Tokenizer

            from assistant.models import minilm_model

            path = minilm_model()
            with safe_open(str(path / "model.safetensors"), framework="numpy") as f:
                name = next(k for k in f.keys() if k.endswith(_TABLE_KEY))
                table = np.asarray(f.get_tensor(name), dtype=np.float32)
            # unit length, then unit variance per dimension
            table /= np.linalg.norm(table, axis=1, keepdims=True) + 1e-8
            table *= np.float32(WORD_DIM ** 0.5)
            _tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            _table = table
            log.info("loaded MiniLM word-piece embeddings %s from %s", table.shape, path)
    return _table, _tokenizer


def word_vector(word: str) -> np.ndarray:
    vec = _cache.get(word)
    if vec is not None:
        return vec
    table, tokenizer = _load()
    ids = tokenizer.encode(word, add_special_tokens=False).ids
    vec = table[ids].mean(axis=0) if ids else np.zeros(WORD_DIM, dtype=np.float32)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[word] = vec
    return vec


def word_vectors(words) -> np.ndarray:
    """(len(words), 384) float32."""
    if not words:
        return np.zeros((0, WORD_DIM), dtype=np.float32)
    return np.stack([word_vector(w) for w in words])

"""Pretrained features for the NLU, both from the bundled all-MiniLM-L6-v2 (offline).

* **Word vectors**: MiniLM's input token-embedding table (30,522 word pieces × 384). A word's
  vector is the mean of its pieces' rows. These static embeddings are strikingly semantic —
  the nearest pieces to "nepal" are kathmandu, nepali, bhutan; to "jazz" saxophonist, blues —
  so a tagger trained on a few thousand sentences still knows that an unseen word is a
  country or a singer. Cost: the table is memory-mapped, then a dictionary look-up per word
  (new words: the word-piece tokenizer, ~50 µs). No transformer runs.
* **Sentence embeddings**: the full MiniLM forward pass, mean-pooled, with its linear layers
  quantized to int8 (dynamic quantization): ~4 ms per utterance on one thread against ~12 ms
  in float32, the same vectors in training and in use (see ``TrainConfig.sentence_embeddings``).

Neither stores weights in the trained model: the layers read the installed package, so the
spaCy model folder stays small and loads without pickle.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from core.minilm import WORD_DIM, bert, every_core, mean_pooled, mean_pooled_sorted, tokenizer, word_piece_table

log = logging.getLogger(__name__)

_CACHE_MAX = 200_000

_lock = threading.Lock()
_table: np.ndarray | None = None
_tokenizer = None
_cache: dict[str, np.ndarray] = {}


def _load() -> tuple[np.ndarray, object]:
    global _table, _tokenizer
    with _lock:
        if _table is None:
            from tokenizers import Tokenizer

            from core.model_files import minilm_model

            path = minilm_model()
            _tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            _table = word_piece_table(path)
            log.info("mapped MiniLM word-piece embeddings %s from %s", _table.shape, path)
    return _table, _tokenizer


def word_vector(word: str) -> np.ndarray:
    vec = _cache.get(word)
    if vec is not None:
        return vec
    table, tokenizer = _load()
    ids = tokenizer.encode(word, add_special_tokens=False).ids
    if ids:
        rows = np.array(table[ids], dtype=np.float32)
        # unit length, then unit variance per dimension
        rows /= np.linalg.norm(rows, axis=1, keepdims=True) + 1e-8
        rows *= np.float32(WORD_DIM**0.5)
        vec = rows.mean(axis=0)
    else:
        vec = np.zeros(WORD_DIM, dtype=np.float32)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[word] = vec
    return vec


def word_vectors(words) -> np.ndarray:
    """(len(words), 384) float32."""
    if not words:
        return np.zeros((0, WORD_DIM), dtype=np.float32)
    return np.stack([word_vector(w) for w in words])


_encoder = None
_encoder_lock = threading.Lock()
_BATCH = 64
_MAX_TOKENS = 128


def _load_encoder():
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            import warnings

            import torch

            torch.set_num_threads(1)  # short inputs: a second thread only contends (core.embeddings)
            model = bert()
            with warnings.catch_warnings():  # the eager quantization API is deprecated, not gone
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(
                    model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
                )
            _encoder = (tokenizer(), model)
            log.info("loaded the int8 MiniLM sentence encoder")
    return _encoder


def sentence_embeddings(texts, exact: bool = True) -> np.ndarray:
    """(len(texts), 384) float32, unit length: mean-pooled int8 MiniLM.

    ``exact``: each text encoded on its own. Dynamic quantization scales activations per call,
    so in a batch a text's vector depends (slightly) on the texts beside it; what the assistant
    hears must not, or replay and a simulation with any number of workers would disagree.
    Training passes False: thousands of texts, sorted by length and batched on every core."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, WORD_DIM), dtype=np.float32)
    tokenizer, model = _load_encoder()
    if exact:
        return np.stack([mean_pooled(tokenizer, model, [t], _MAX_TOKENS)[0] for t in texts])
    with every_core():
        return mean_pooled_sorted(tokenizer, model, texts, _MAX_TOKENS, _BATCH)

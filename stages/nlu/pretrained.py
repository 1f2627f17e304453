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

import json
import logging
import os
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
            from tokenizers import Tokenizer

            from core.model_files import minilm_model

            path = minilm_model()
            table = _mapped_table(path / "model.safetensors")
            _tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            _table = table
            log.info("mapped MiniLM word-piece embeddings %s from %s", table.shape, path)
    return _table, _tokenizer


def _mapped_table(file) -> np.ndarray:
    """The word-piece table straight from the safetensors file (memory-mapped, read-only): a
    process pages in the rows it looks up, not 47 MB. The format is an 8-byte header length, a
    JSON header of tensor offsets, then the raw data."""
    with open(file, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    name = next((k for k in header if k.endswith(_TABLE_KEY)), None)
    if name is None or header[name].get("dtype") != "F32":
        raise ValueError(f"{file}: no float32 {_TABLE_KEY} tensor")
    start, _end = header[name]["data_offsets"]
    return np.memmap(file, dtype="<f4", mode="r", offset=8 + size + start, shape=tuple(header[name]["shape"]))


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


def _load_encoder():
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            import warnings

            import torch
            from transformers import AutoTokenizer
            from transformers.utils import logging as hf_logging

            from core.model_files import minilm_model

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            torch.set_num_threads(1)  # short inputs: a second thread only contends (core.embeddings)
            path = minilm_model()
            model = _bert(path)
            with warnings.catch_warnings():  # the eager quantization API is deprecated, not gone
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(
                    model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
                )
            _encoder = (AutoTokenizer.from_pretrained(str(path)), model)
            log.info("loaded the int8 MiniLM sentence encoder from %s", path)
    return _encoder


def _bert(path):
    """MiniLM's transformer from its safetensors, built on the meta device and given the
    weights as they are: ~0.02 s, where ``from_pretrained`` initializes every weight first
    (~1.7 s here) only to overwrite it. The two position/type buffers are not in the file."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, BertModel

    config = AutoConfig.from_pretrained(str(path))
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False, assign=True)
    size = config.max_position_embeddings
    model.embeddings.register_buffer("position_ids", torch.arange(size).expand((1, -1)), persistent=False)
    model.embeddings.register_buffer("token_type_ids", torch.zeros((1, size), dtype=torch.long), persistent=False)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"MiniLM weights missing from {path}: {left[:3]}")
    return model.eval()


def sentence_embeddings(texts, exact: bool = True) -> np.ndarray:
    """(len(texts), 384) float32, unit length: mean-pooled int8 MiniLM.

    ``exact``: each text encoded on its own. Dynamic quantization scales activations per call,
    so in a batch a text's vector depends (slightly) on the texts beside it; what the assistant
    hears must not, or replay and a simulation with any number of workers would disagree.
    Training passes False: thousands of texts, sorted by length and batched on every core."""
    import torch

    texts = list(texts)
    if not texts:
        return np.zeros((0, WORD_DIM), dtype=np.float32)
    tokenizer, model = _load_encoder()
    if exact:
        return np.stack([_encode(tokenizer, model, [t])[0] for t in texts])
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = np.zeros((len(texts), WORD_DIM), dtype=np.float32)
    try:
        for i in range(0, len(texts), _BATCH):
            rows = order[i : i + _BATCH]
            out[rows] = _encode(tokenizer, model, [texts[j] for j in rows])
    finally:
        torch.set_num_threads(threads)
    return out


def _encode(tokenizer, model, texts: list[str]) -> np.ndarray:
    import torch

    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=1).numpy().astype(np.float32)

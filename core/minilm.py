"""The bundled all-MiniLM-L6-v2, read straight from its files (offline, no sentence-transformers).

One process holds one memory-mapped copy of the word-piece table (30,522 × 384, 47 MB): every
transformer built here looks its tokens up in that map, so a process pages in only the rows it
uses, however many encoders it builds (the NLU's, the one of :mod:`core.embeddings`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np

from core.model_files import minilm_model

log = logging.getLogger(__name__)

WORD_DIM = 384
TABLE_KEY = "embeddings.word_embeddings.weight"
_lock = threading.Lock()


@contextmanager
def every_core():
    """Torch on every core for a batch job (training, embedding thousands of texts); the
    process's own thread count afterwards (the encoders run a request on one thread)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _header(file: Path) -> tuple[int, dict]:
    """safetensors: an 8-byte header length, a JSON header of tensor offsets, then the data."""
    with open(file, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return 8 + size, json.loads(f.read(size))


def word_piece_table(path: Path | None = None) -> np.ndarray:
    """The word-piece table, memory-mapped copy-on-write (never written: torch needs a writable
    array to share it without a copy); one map per file and process."""
    with _lock:
        return _mapped(Path(path or minilm_model()).resolve() / "model.safetensors")


@lru_cache(maxsize=None)
def _mapped(file: Path) -> np.ndarray:
    data_start, header = _header(file)
    name = next((k for k in header if k.endswith(TABLE_KEY)), None)
    if name is None or header[name].get("dtype") != "F32":
        raise ValueError(f"{file}: no float32 {TABLE_KEY} tensor")
    start, _end = header[name]["data_offsets"]
    return np.memmap(file, dtype="<f4", mode="c", offset=data_start + start, shape=tuple(header[name]["shape"]))


@lru_cache(maxsize=None)
def model_config(path: Path | None = None) -> Mapping:
    """MiniLM's config.json (sizes, layer-norm epsilon), read without transformers; read-only."""
    return MappingProxyType(json.loads((Path(path or minilm_model()) / "config.json").read_text(encoding="utf-8")))


def tokenizer(path: Path | None = None):
    """The fast word-piece tokenizer (``transformers`` interface: padding, masks, tensors)."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return AutoTokenizer.from_pretrained(str(path or minilm_model()))


def bert(path: Path | None = None, weights: Path | None = None, prefix: str = ""):
    """MiniLM's transformer built on the meta device and given the file's weights as they are
    (~0.02 s, where ``from_pretrained`` initializes every weight first only to overwrite it).
    The word-piece table is the shared map; the two position/type buffers are not in the file.

    ``weights``: a safetensors file of fine-tuned weights to use instead of MiniLM's own (the
    tensors whose names start with ``prefix``; the table is always MiniLM's)."""
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, BertModel

    path = path or minilm_model()
    config = AutoConfig.from_pretrained(str(path))
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    table = torch.from_numpy(word_piece_table(path))
    tensors: dict = {}
    file = Path(weights) if weights is not None else path / "model.safetensors"
    with safe_open(str(file), framework="pt") as f:
        for key in f.keys():
            if key.startswith(prefix) and not key.endswith(TABLE_KEY):
                tensors[key[len(prefix) :]] = f.get_tensor(key)
    model.load_state_dict(tensors, strict=False, assign=True)
    model.embeddings.word_embeddings.weight = torch.nn.Parameter(table, requires_grad=False)
    size = config.max_position_embeddings
    model.embeddings.register_buffer("position_ids", torch.arange(size).expand((1, -1)), persistent=False)
    model.embeddings.register_buffer("token_type_ids", torch.zeros((1, size), dtype=torch.long), persistent=False)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"MiniLM weights missing from {file}: {left[:3]}")
    return model.eval()


class DropoutMasks:
    """Dropout masks from numpy's PCG64, seeded once per training: much cheaper to draw than
    torch's CPU sampling (``bernoulli_``). A position is kept with probability 1 − p to within
    2⁻¹⁶ and scaled by 1 / (1 − p), as ``torch.nn.functional.dropout`` does."""

    def __init__(self, seed: int):
        self._rng = np.random.Generator(np.random.PCG64(seed))

    def __call__(self, x, p: float):
        import torch

        if p <= 0.0:
            return x
        keep = np.frombuffer(self._rng.bytes(2 * x.numel()), dtype=np.uint16) >= round(p * 65536)
        return x * torch.from_numpy(keep).view(x.shape) * (1.0 / (1.0 - p))


def encode(model, ids, mask, masks: DropoutMasks | None = None, pack: bool = True):
    """The last hidden states of ``model`` (a :func:`bert`, float32 or under autocast) for
    token ``ids`` under attention ``mask``: the same numbers as ``model(input_ids=ids, attention_mask=mask)``.

    The transformer's own layers do the arithmetic; this only walks them directly. The library's
    generic forward (output capture, deprecation wrappers, a signature inspection per layer)
    costs over a quarter of a short request's time. In training (``model.training``) MiniLM's
    dropouts apply at the library's places and rates, drawn from ``masks`` when given (torch's
    sampler otherwise); with ``pack`` a padded batch's linear layers and normalizations run on
    its real word pieces only (computing the padding is wasted work in float32; under bfloat16
    the gathering costs more than it saves). Padded positions come out as zeros when packed."""
    from torch.nn.functional import dropout

    emb = model.embeddings
    training = model.training
    drop = masks if training and masks is not None else (lambda x, p: dropout(x, p, training))
    batch, length = ids.shape
    # the word-piece table may stay float32 (the shared map) under a lower-precision model
    words = emb.word_embeddings(ids).to(emb.token_type_embeddings.weight.dtype)
    hidden = words + emb.token_type_embeddings(emb.token_type_ids[:, :length])
    hidden = drop(emb.LayerNorm(hidden + emb.position_embeddings(emb.position_ids[:, :length])), emb.dropout.p)
    # as the library does: no mask when nothing is padded, else a boolean mask over the keys
    padded = not bool(mask.all())
    keys = mask[:, None, None, :].bool().expand(batch, 1, length, length) if padded else None
    real = mask.reshape(-1).nonzero().squeeze(1) if padded and training and pack else None
    width = hidden.shape[-1]
    if real is not None:
        hidden = hidden.reshape(-1, width)[real]
    attend = _attention if training and masks is not None else _sdpa
    for layer in model.encoder.layer:
        hidden = _layer(layer, hidden, keys, real, batch, length, drop, attend)
    return hidden if real is None else _unpacked(hidden, real, batch * length).view(batch, length, width)


def _unpacked(x, real, rows: int):
    """The packed rows ``x`` back at their flat positions ``real`` among ``rows``, zeros between."""
    return x.new_zeros(rows, x.shape[-1]).index_copy(0, real, x)


def _sdpa(q, k, v, keys, p: float, scale: float, drop):
    from torch.nn.functional import scaled_dot_product_attention

    return scaled_dot_product_attention(q, k, v, attn_mask=keys, dropout_p=p, scale=scale)


def _attention(q, k, v, keys, p: float, scale: float, drop):
    """Attention written out, so that its dropout draws from ``drop``. It runs in float32 whatever
    the inputs, as ``_sdpa``'s kernel accumulates: scores rounded to bfloat16 before the softmax
    would lose precision the library keeps."""
    import torch

    with torch.autocast("cpu", enabled=False):
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
        if keys is not None:
            scores = scores.masked_fill(~keys, float("-inf"))
        weights = drop(torch.softmax(scores, dim=-1), p)
        return torch.matmul(weights, v.float()).to(v.dtype)


def _autocast_input(x):
    """``x`` in autocast's lower precision where autocast is on (training in bfloat16), else ``x``."""
    import torch

    return x.to(torch.get_autocast_dtype("cpu")) if torch.is_autocast_enabled("cpu") else x


def _layer(layer, hidden, keys, real, batch: int, length: int, drop, attend):
    """One transformer layer. ``real``: the flat positions of ``hidden``'s rows when it holds a
    padded batch's real word pieces only; attention alone needs the padded layout."""
    att = layer.attention.self
    shape = (batch, length, -1, att.attention_head_size)
    source = _autocast_input(hidden)  # cast once for the three projections, not once each
    projected = (proj(source) for proj in (att.query, att.key, att.value))
    if real is not None:
        projected = (_unpacked(x, real, batch * length) for x in projected)
    q, k, v = (x.view(shape).transpose(1, 2) for x in projected)
    p = att.dropout.p if layer.training else 0.0
    heads = attend(q, k, v, keys, p, att.scaling, drop)
    heads = heads.transpose(1, 2).contiguous().reshape(batch, length, -1).contiguous()
    if real is not None:
        heads = heads.reshape(batch * length, -1)[real]
    out = layer.attention.output
    hidden = out.LayerNorm(drop(out.dense(heads), out.dropout.p) + hidden)
    inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(hidden))
    return layer.output.LayerNorm(drop(layer.output.dense(inner), layer.output.dropout.p) + hidden)


def mean_pooled(tok, model, texts: list[str], max_length: int) -> np.ndarray:
    """Unit-length mean of the last hidden states over each text's tokens: (len(texts), 384).
    ``model``: a torch :func:`bert` or its :class:`core.minilm_onnx.OnnxEncoder`."""
    import torch

    with torch.inference_mode():
        batch = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        ids, mask = batch["input_ids"], batch["attention_mask"]
        run = getattr(model, "hidden_states", None)  # the ONNX Runtime encoder's
        hidden = run(ids, mask) if run is not None else encode(model, ids, mask)
        return torch.nn.functional.normalize(masked_mean(hidden, mask), dim=1).numpy().astype(np.float32)


def masked_mean(hidden, mask):
    """Each text's mean of the last hidden states over its real word pieces (``mask`` 1):
    (batch, length, width) → (batch, width)."""
    real = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * real).sum(1) / real.sum(1).clamp(min=1.0)


def mean_pooled_sorted(tok, model, texts: list[str], max_length: int, batch: int) -> np.ndarray:
    """:func:`mean_pooled` over many texts, sorted by length and batched (batches of like
    lengths pad less), in the texts' own order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), WORD_DIM), dtype=np.float32)
    for i in range(0, len(texts), batch):
        rows = order[i : i + batch]
        out[rows] = mean_pooled(tok, model, [texts[j] for j in rows], max_length)
    return out

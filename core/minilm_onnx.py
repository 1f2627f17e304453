"""MiniLM's transformer for inference as an ONNX graph run by ONNX Runtime, on one thread.

A short request's forward pass in torch goes to reading the weights and to dispatching some
ninety operators one by one. ONNX Runtime runs the same float32 arithmetic as one prepared graph
(its MLAS kernels on weights packed once, each GELU fused with its bias), in less time
than torch on float16-stored weights, and with float32's numbers, which are the trained
network's (docs/nlu-real-phrasing.md, twenty-eighth session).

The graph is built here in memory from the transformer's weights by name, as a safetensors file
or a trained torch model holds them: nothing is exported to or cached on disk, and loading a saved
model never builds transformers' ``BertModel`` (importing it takes about three seconds, a third
of a cold start). Its inputs are the word-piece vectors (looked up in the process's one
memory-mapped table, :func:`core.minilm.word_piece_table`) and the attention mask; its output is
the last hidden states, the same numbers as :func:`core.minilm.encode` to float32 rounding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core import onnx_proto as proto
from core.minilm import TABLE_KEY, model_config, word_piece_table

log = logging.getLogger(__name__)

OPSET = 17
IR_VERSION = 8  # what every ONNX Runtime since 1.14 reads
# added to the scores of padded keys: exp() of it is 0 in float32, as a boolean mask gives
_MASKED = -1.0e9


class _Graph:
    """Nodes and initializers of one graph under construction, each with a fresh name."""

    def __init__(self):
        self.nodes: list[proto.Message] = []
        self.initializers: list[proto.Message] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, value, stem: str = "c") -> str:
        name = self.name(stem)
        array = np.asarray(value)
        self.initializers.append(proto.tensor(name, array.astype(np.float32) if array.dtype == np.float64 else array))
        return name

    def op(self, kind: str, *inputs: str, **attrs) -> str:
        out = self.name(kind.lower())
        self.nodes.append(proto.node(kind, inputs, [out], **attrs))
        return out

    def linear(self, x: str, weights: Mapping[str, np.ndarray], *layers: str) -> str:
        """The linear ``layers`` (names in ``weights``, of one input) applied to ``x``: one
        product with their stacked weights' transpose, then the bias (several layers: the input
        and the weights read in one pass; :meth:`split` parts the result)."""
        weight = np.concatenate([weights[f"{layer}.weight"] for layer in layers]).T
        bias = np.concatenate([weights[f"{layer}.bias"] for layer in layers])
        return self.op("Add", self.op("MatMul", x, self.const(weight, "w")), self.const(bias, "b"))

    def split(self, x: str, sizes: list[int]) -> list[str]:
        outs = [self.name("part") for _ in sizes]
        self.nodes.append(proto.node("Split", [x, self.const(np.array(sizes, np.int64))], outs, axis=-1))
        return outs

    def layer_norm(self, x: str, weights: Mapping[str, np.ndarray], norm: str, eps: float) -> str:
        scale, shift = self.const(weights[f"{norm}.weight"], "gamma"), self.const(weights[f"{norm}.bias"], "beta")
        return self.op("LayerNormalization", x, scale, shift, axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        """The exact (erf) GELU, written out as ONNX Runtime recognizes and fuses it."""
        erf = self.op("Erf", self.op("Div", x, self.const(np.float32(math.sqrt(2.0)))))
        half = self.op("Mul", x, self.const(np.float32(0.5)))
        return self.op("Mul", half, self.op("Add", erf, self.const(np.float32(1.0))))


def encoder_graph(weights: Mapping[str, np.ndarray], config: Mapping) -> bytes:
    """The serialized ONNX graph of a BERT transformer: ``weights`` float32 arrays named as in
    transformers' ``BertModel`` (``embeddings.…``, ``encoder.layer.N.…``; the word-piece table
    is not needed), ``config`` its config.json. Inputs ``words`` (batch, length, hidden) float32
    word-piece vectors and ``mask_bias`` (batch, 1, 1, length) float32, 0 for a real word piece
    and :data:`_MASKED` for padding; output ``hidden`` (batch, length, hidden)."""
    if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(
            f"not a BERT this graph writes: {config.get('hidden_act')}, {config.get('position_embedding_type')}"
        )
    g = _Graph()
    heads = int(config["num_attention_heads"])
    width = int(config["hidden_size"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    size = width // heads

    words = "words"
    shape = g.op("Shape", words)
    length = g.op("Gather", shape, g.const(np.array([1], dtype=np.int64)), axis=0)
    start = g.const(np.array([0], dtype=np.int64))
    positions = g.op("Slice", g.const(weights["embeddings.position_embeddings.weight"], "positions"), start, length)
    kind = g.const(weights["embeddings.token_type_embeddings.weight"][0], "type")  # every word piece is of type 0
    hidden = g.op("Add", g.op("Add", words, kind), positions)
    hidden = g.layer_norm(hidden, weights, "embeddings.LayerNorm", eps)

    split = g.const(np.array([0, 0, heads, size], dtype=np.int64))  # (batch, length, heads, size)
    joined = g.const(np.array([0, 0, width], dtype=np.int64))
    scale = g.const(np.float32(1.0 / math.sqrt(size)))
    for n in range(int(config["num_hidden_layers"])):
        layer = f"encoder.layer.{n}"
        att = f"{layer}.attention.self"
        projected = g.split(g.linear(hidden, weights, f"{att}.query", f"{att}.key", f"{att}.value"), [width] * 3)
        # (batch, heads, length, size) for queries and values, keys transposed for the product
        q, k, v = (
            g.op("Transpose", g.op("Reshape", x, split), perm=perm)
            for x, perm in zip(projected, ([0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3]))
        )
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), "mask_bias")
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), joined)
        out = f"{layer}.attention.output"
        hidden = g.layer_norm(
            g.op("Add", g.linear(context, weights, f"{out}.dense"), hidden), weights, f"{out}.LayerNorm", eps
        )
        inner = g.gelu(g.linear(hidden, weights, f"{layer}.intermediate.dense"))
        hidden = g.op("Add", g.linear(inner, weights, f"{layer}.output.dense"), hidden)
        hidden = g.layer_norm(hidden, weights, f"{layer}.output.LayerNorm", eps)
    g.nodes.append(proto.node("Identity", [hidden], ["hidden"]))
    return proto.model(
        "minilm",
        g.nodes,
        g.initializers,
        [
            proto.value_info("words", proto.FLOAT, ["batch", "length", width]),
            proto.value_info("mask_bias", proto.FLOAT, ["batch", 1, 1, "length"]),
        ],
        [proto.value_info("hidden", proto.FLOAT, ["batch", "length", width])],
        opset=OPSET,
        ir_version=IR_VERSION,
    )


def file_weights(file: Path, prefix: str = "") -> dict[str, np.ndarray]:
    """The transformer's float32 weights in a safetensors ``file``: the tensors whose names
    start with ``prefix``, named without it; not the word-piece table or position ids."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(file), framework="numpy") as f:
        for key in f.keys():
            name = key[len(prefix) :]
            if key.startswith(prefix) and name != TABLE_KEY and not name.endswith("_ids"):
                out[name] = np.asarray(f.get_tensor(key), dtype=np.float32)
    return out


def model_weights(model) -> dict[str, np.ndarray]:
    """:func:`file_weights` of a torch :func:`core.minilm.bert` in memory (one just trained)."""
    return {
        name: tensor.detach().float().numpy()
        for name, tensor in model.state_dict().items()
        if name != TABLE_KEY and not name.endswith("_ids")
    }


class OnnxEncoder:
    """MiniLM's transformer run by ONNX Runtime on one thread: the last hidden states of token
    ids under an attention mask, as :func:`core.minilm.encode` gives them for the same model.

    Built from the transformer's weights by name (:func:`file_weights`, :func:`model_weights`),
    which the runtime copies into its own packed layout. Word pieces are looked up in ``table``:
    by default the process's one shared map, which every model here looks its words up in."""

    def __init__(self, weights: Mapping[str, np.ndarray], config: Mapping, table: np.ndarray | None = None):
        import onnxruntime as ort

        self._table = word_piece_table() if table is None else table
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a request is a sentence: a second thread only contends
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # its own warnings go to stderr, not through logging
        graph = encoder_graph(weights, config)
        self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    @property
    def table(self) -> np.ndarray:
        """The word-piece table the encoder looks its ids up in."""
        return self._table

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(batch, length, 384) float32 for integer ``ids`` and 0/1 ``mask``, both (batch, length)."""
        words = np.ascontiguousarray(self._table[np.asarray(ids)], dtype=np.float32)
        bias = ((1.0 - np.asarray(mask, dtype=np.float32)) * _MASKED)[:, None, None, :]
        return self._session.run(["hidden"], {"words": words, "mask_bias": bias})[0]

    def hidden_states(self, ids, mask):
        """:meth:`hidden` of torch tensors, as a torch tensor (:func:`core.minilm.encode`'s terms)."""
        import torch

        return torch.from_numpy(self.hidden(ids.numpy(), mask.numpy()))


def for_inference(model):
    """A torch :func:`core.minilm.bert` (float32; one just trained) as requests run it: an
    :class:`OnnxEncoder`, or the torch model itself where ONNX Runtime cannot build or run the
    graph (said in the log; the numbers are the same to float32 rounding, only slower)."""
    weight = model.embeddings.word_embeddings.weight
    shared = word_piece_table()
    table = shared if weight.data_ptr() == shared.ctypes.data else weight.detach().float().numpy().copy()
    encoder = _encoder(lambda: model_weights(model), model_config(), table)
    return model if encoder is None else encoder


def file_encoder(file: Path | None = None, prefix: str = "") -> OnnxEncoder | None:
    """An :class:`OnnxEncoder` of the transformer saved in ``file`` (MiniLM's own by default)
    under ``prefix``, without building a torch model; None where ONNX Runtime cannot (said in
    the log: the caller builds the torch model)."""
    from core.model_files import minilm_model

    path = Path(file) if file is not None else minilm_model() / "model.safetensors"
    return _encoder(lambda: file_weights(path, prefix), model_config())


def _encoder(weights, config: Mapping, table: np.ndarray | None = None) -> OnnxEncoder | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as err:
        log.warning("torch runs MiniLM: %s", err)
        return None
    try:
        return OnnxEncoder(weights(), config, table)
    except Exception as err:  # noqa: BLE001 - the runtime's own errors have no common base
        log.warning("torch runs MiniLM: ONNX Runtime could not build its graph (%s)", err)
        return None


__all__ = ["OnnxEncoder", "encoder_graph", "file_encoder", "file_weights", "for_inference", "model_weights"]

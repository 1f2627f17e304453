"""MiniLM's transformer for inference as an ONNX graph run by ONNX Runtime, on one thread.

A short request's forward pass in torch goes to reading the weights and to dispatching some
ninety operators one by one. ONNX Runtime runs the same float32 arithmetic as one prepared graph
(its MLAS kernels on weights packed once, each GELU fused with its bias), in less time
than torch on float16-stored weights, and with float32's numbers, which are the trained
network's (docs/nlu-real-phrasing.md, twenty-eighth session).

The graph is built here from a :func:`core.minilm.bert`'s own weights, in memory: nothing is
exported to or cached on disk. Its inputs are the word-piece vectors (looked up in the process's
one memory-mapped table, :func:`core.minilm.word_piece_table`) and the attention mask; its output
is the last hidden states, the same numbers as :func:`core.minilm.encode` to float32 rounding.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from core import onnx_proto as proto
from core.minilm import word_piece_table

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

    def linear(self, x: str, *layers) -> str:
        """``layers`` (``torch.nn.Linear`` of one input) applied to ``x``: one product with their
        stacked weights' transpose, then the bias (several layers: the input and the weights read
        in one pass; :meth:`split` parts the result)."""
        weight = np.concatenate([_array(layer.weight) for layer in layers]).T
        bias = np.concatenate([_array(layer.bias) for layer in layers])
        return self.op("Add", self.op("MatMul", x, self.const(weight, "w")), self.const(bias, "b"))

    def split(self, x: str, sizes: list[int]) -> list[str]:
        outs = [self.name("part") for _ in sizes]
        self.nodes.append(proto.node("Split", [x, self.const(np.array(sizes, np.int64))], outs, axis=-1))
        return outs

    def layer_norm(self, x: str, norm) -> str:
        scale, shift = self.const(_array(norm.weight), "gamma"), self.const(_array(norm.bias), "beta")
        return self.op("LayerNormalization", x, scale, shift, axis=-1, epsilon=float(norm.eps))

    def gelu(self, x: str) -> str:
        """The exact (erf) GELU, written out as ONNX Runtime recognizes and fuses it."""
        erf = self.op("Erf", self.op("Div", x, self.const(np.float32(math.sqrt(2.0)))))
        half = self.op("Mul", x, self.const(np.float32(0.5)))
        return self.op("Mul", half, self.op("Add", erf, self.const(np.float32(1.0))))


def _array(tensor) -> np.ndarray:
    return tensor.detach().float().numpy()


def encoder_graph(model) -> bytes:
    """The serialized ONNX graph of ``model``'s transformer (a :func:`core.minilm.bert`, with
    plain float32 linear layers): inputs ``words`` (batch, length, 384) float32 word-piece
    vectors and ``mask_bias`` (batch, 1, 1, length) float32, 0 for a real word piece and
    :data:`_MASKED` for padding; output ``hidden`` (batch, length, 384)."""
    g = _Graph()
    emb = model.embeddings
    config = model.config
    heads = int(config.num_attention_heads)
    width = int(config.hidden_size)
    size = width // heads

    words = "words"
    shape = g.op("Shape", words)
    length = g.op("Gather", shape, g.const(np.array([1], dtype=np.int64)), axis=0)
    start = g.const(np.array([0], dtype=np.int64))
    positions = g.op("Slice", g.const(_array(emb.position_embeddings.weight), "positions"), start, length)
    kind = g.const(_array(emb.token_type_embeddings.weight)[0], "type")  # every word piece is of type 0
    hidden = g.op("Add", g.op("Add", words, kind), positions)
    hidden = g.layer_norm(hidden, emb.LayerNorm)

    split = g.const(np.array([0, 0, heads, size], dtype=np.int64))  # (batch, length, heads, size)
    joined = g.const(np.array([0, 0, width], dtype=np.int64))
    scale = g.const(np.float32(1.0 / math.sqrt(size)))
    for layer in model.encoder.layer:
        att = layer.attention.self
        projected = g.split(g.linear(hidden, att.query, att.key, att.value), [width] * 3)
        # (batch, heads, length, size) for queries and values, keys transposed for the product
        q, k, v = (
            g.op("Transpose", g.op("Reshape", x, split), perm=perm)
            for x, perm in zip(projected, ([0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3]))
        )
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), "mask_bias")
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), joined)
        out = layer.attention.output
        hidden = g.layer_norm(g.op("Add", g.linear(context, out.dense), hidden), out.LayerNorm)
        inner = g.gelu(g.linear(hidden, layer.intermediate.dense))
        hidden = g.layer_norm(g.op("Add", g.linear(inner, layer.output.dense), hidden), layer.output.LayerNorm)
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


class OnnxEncoder:
    """MiniLM's transformer run by ONNX Runtime on one thread: the last hidden states of token
    ids under an attention mask, as :func:`core.minilm.encode` gives them for the same model.

    Built from a :func:`core.minilm.bert` (its weights are copied into the runtime's own packed
    layout, and the torch model can be dropped). Word pieces are looked up in the table the
    model looked them up in: the process's one shared map for every model :func:`bert` builds."""

    def __init__(self, model):
        import onnxruntime as ort

        weight = model.embeddings.word_embeddings.weight
        shared = word_piece_table()
        self._table = shared if weight.data_ptr() == shared.ctypes.data else _array(weight).copy()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a request is a sentence: a second thread only contends
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # its own warnings go to stderr, not through logging
        self._session = ort.InferenceSession(encoder_graph(model), options, providers=["CPUExecutionProvider"])

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
    """``model`` (a float32 :func:`core.minilm.bert`) as requests run it: an :class:`OnnxEncoder`,
    or the torch model itself where ONNX Runtime cannot build or run the graph (said once in the
    log; the numbers are the same to float32 rounding, only slower)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as err:
        log.warning("torch runs MiniLM: %s", err)
        return model
    try:
        return OnnxEncoder(model)
    except Exception as err:  # noqa: BLE001 - the runtime's own errors have no common base
        log.warning("torch runs MiniLM: ONNX Runtime could not build its graph (%s)", err)
        return model


__all__ = ["OnnxEncoder", "encoder_graph", "for_inference"]

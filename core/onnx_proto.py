"""The few ONNX protobuf messages this project writes, encoded by hand.

ONNX Runtime reads a model as serialized protobuf bytes. The ``onnx`` package writes them too,
but importing it loads ``ml_dtypes``, which takes about a second here: more than building and
loading the whole MiniLM graph. The messages a graph of standard operators needs are few and
small, so they are written here from onnx.proto3's field numbers (tests/test_minilm_onnx.py
reads the result back with the ``onnx`` package and its checker). Repeated numbers are written
unpacked, as proto2 writers do; every protobuf reader accepts both.

Large fields are kept as the chunks they were built from and joined once, so a model's weights
are copied once into the final bytes.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)

# TensorProto.DataType
FLOAT = 1
INT64 = 7
_TENSOR_TYPES = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64}
# AttributeProto.AttributeType
_ATTR_FLOAT, _ATTR_INT, _ATTR_INTS = 1, 2, 7
_VARINT, _FIXED32, _BYTES = 0, 5, 2


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # a negative int64 is its two's complement, ten bytes
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


class Message:
    """One protobuf message under construction: its encoded chunks and their total size."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.size = 0

    def _put(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)

    def put_int(self, field: int, value: int) -> Message:
        self._put(_key(field, _VARINT) + _varint(int(value)))
        return self

    def put_float(self, field: int, value: float) -> Message:
        self._put(_key(field, _FIXED32) + struct.pack("<f", value))
        return self

    def put_bytes(self, field: int, data: bytes) -> Message:
        self._put(_key(field, _BYTES) + _varint(len(data)))
        self._put(data)
        return self

    def put_text(self, field: int, value: str) -> Message:
        return self.put_bytes(field, value.encode("utf-8"))

    def put_message(self, field: int, sub: Message) -> Message:
        self._put(_key(field, _BYTES) + _varint(sub.size))
        self.chunks.extend(sub.chunks)
        self.size += sub.size
        return self

    def encode(self) -> bytes:
        return b"".join(self.chunks)


def tensor(name: str, array: np.ndarray) -> Message:
    """A TensorProto holding ``array`` (float32 or int64) as little-endian raw data."""
    array = np.ascontiguousarray(array)
    if array.dtype not in _TENSOR_TYPES:
        raise ValueError(f"{name}: no ONNX tensor type written here for {array.dtype}")
    out = Message()
    for dim in array.shape:
        out.put_int(1, dim)  # dims
    out.put_int(2, _TENSOR_TYPES[array.dtype])  # data_type
    out.put_text(8, name)  # name
    return out.put_bytes(9, array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())  # raw_data


def _attribute(name: str, value) -> Message:
    out = Message().put_text(1, name)  # name
    if isinstance(value, bool) or not isinstance(value, int | float | list | tuple):
        raise ValueError(f"attribute {name}: an int, a float or a list of ints, not {value!r}")
    if isinstance(value, int):
        return out.put_int(3, value).put_int(20, _ATTR_INT)  # i, type
    if isinstance(value, float):
        return out.put_float(2, value).put_int(20, _ATTR_FLOAT)  # f, type
    for item in value:
        out.put_int(8, item)  # ints
    return out.put_int(20, _ATTR_INTS)


def node(op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attributes) -> Message:
    """A NodeProto of the default domain; attributes are ints, floats or lists of ints."""
    out = Message()
    for name in inputs:
        out.put_text(1, name)
    for name in outputs:
        out.put_text(2, name)
    out.put_text(4, op_type)
    for name, value in attributes.items():
        out.put_message(5, _attribute(name, value))
    return out


def value_info(name: str, elem_type: int, dims: Iterable[int | str]) -> Message:
    """A ValueInfoProto of a tensor: each dimension a size or a symbolic name."""
    shape = Message()
    for dim in dims:
        shape.put_message(1, Message().put_text(2, dim) if isinstance(dim, str) else Message().put_int(1, dim))
    tensor_type = Message().put_int(1, elem_type).put_message(2, shape)
    return Message().put_text(1, name).put_message(2, Message().put_message(1, tensor_type))


def model(
    name: str,
    nodes: Iterable[Message],
    initializers: Iterable[Message],
    inputs: Iterable[Message],
    outputs: Iterable[Message],
    opset: int,
    ir_version: int,
) -> bytes:
    """A serialized ModelProto of one graph, importing the default operator set ``opset``."""
    graph = Message()
    for item in nodes:
        graph.put_message(1, item)
    graph.put_text(2, name)
    for item in initializers:
        graph.put_message(5, item)
    for item in inputs:
        graph.put_message(11, item)
    for item in outputs:
        graph.put_message(12, item)
    out = Message().put_int(1, ir_version).put_text(2, "voice-assistant-sim")  # ir_version, producer_name
    out.put_message(7, graph)
    return out.put_message(8, Message().put_text(1, "").put_int(2, opset)).encode()  # opset_import


__all__ = ["FLOAT", "INT64", "Message", "model", "node", "tensor", "value_info"]

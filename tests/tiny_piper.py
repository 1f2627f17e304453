"""Builds a tiny piper voice (ONNX + config) so the piper code path is tested without a real voice.

The graph has piper's interface — inputs ``input`` (phoneme ids), ``input_lengths``,
``scales``; output audio shaped [1, 1, samples] — and renders each id as 256 samples of a tone.
"""

from __future__ import annotations

import json
import string
from pathlib import Path


def build_tiny_voice(folder: Path, sample_rate: int = 16000) -> Path:
    import onnx
    from onnx import TensorProto, helper

    ids = helper.make_tensor_value_info("input", TensorProto.INT64, [1, None])
    lengths = helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1])
    scales = helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, None])
    nodes = [
        helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["f", "axes"], ["f3"]),
        helper.make_node("Tile", ["f3", "repeats"], ["tiled"]),
        helper.make_node("Mul", ["tiled", "step"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "gain"], ["output"]),
    ]
    inits = [
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("repeats", TensorProto.INT64, [3], [1, 1, 256]),
        helper.make_tensor("step", TensorProto.FLOAT, [], [0.05]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [0.01]),
    ]
    graph = helper.make_graph(nodes, "tiny_piper", [ids, lengths, scales], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny-voice.onnx"
    onnx.save(model, str(path))
    symbols = ["_", "^", "$", " "] + list(string.ascii_lowercase + string.ascii_uppercase + ".,?!'")
    config = {
        "audio": {"sample_rate": sample_rate},
        "espeak": {"voice": "en-us"},
        "phoneme_type": "text",
        "num_symbols": len(symbols),
        "num_speakers": 1,
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "phoneme_id_map": {s: [i] for i, s in enumerate(symbols)},
    }
    Path(f"{path}.json").write_text(json.dumps(config))
    return path

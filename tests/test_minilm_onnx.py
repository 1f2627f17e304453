"""MiniLM in ONNX Runtime: a graph the ``onnx`` package reads and checks, hidden states that are
the torch network's to float32 rounding, and the torch network kept where the runtime fails."""

import logging

import numpy as np
import pytest

from core import onnx_proto

TEXTS = ["turn on the kitchen light", "what's the weather in buffalo tomorrow", "play jazz"]


def test_hand_written_messages_read_back_as_onnx_wrote_them():
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    weights = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    data = onnx_proto.model(
        "tiny",
        [
            onnx_proto.node("MatMul", ["x", "w"], ["y"]),
            onnx_proto.node("Softmax", ["y"], ["z"], axis=-1),
            onnx_proto.node("LayerNormalization", ["z", "g", "b"], ["out"], axis=-1, epsilon=1e-12),
            onnx_proto.node("Transpose", ["out"], ["t"], perm=[1, 0]),
        ],
        [
            onnx_proto.tensor("w", weights),
            onnx_proto.tensor("g", np.ones(3, np.float32)),
            onnx_proto.tensor("b", np.zeros(3, np.float32)),
            onnx_proto.tensor("shape", np.array([0, -1, 384], np.int64)),
        ],
        [onnx_proto.value_info("x", onnx_proto.FLOAT, ["batch", 2])],
        [onnx_proto.value_info("t", onnx_proto.FLOAT, [3, "batch"])],
        opset=17,
        ir_version=8,
    )
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8 and [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    nodes = model.graph.node
    assert [n.op_type for n in nodes] == ["MatMul", "Softmax", "LayerNormalization", "Transpose"]
    assert onnx.helper.get_attribute_value(nodes[1].attribute[0]) == -1  # a negative int64
    assert onnx.helper.get_attribute_value(nodes[2].attribute[1]) == pytest.approx(1e-12)
    assert list(onnx.helper.get_attribute_value(nodes[3].attribute[0])) == [1, 0]
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert np.array_equal(arrays["w"], weights) and arrays["shape"].tolist() == [0, -1, 384]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [(d.dim_param, d.dim_value) for d in dims] == [("batch", 0), ("", 2)]
    with pytest.raises(ValueError, match="w16: no ONNX tensor type"):
        onnx_proto.tensor("w16", weights.astype(np.float16))
    with pytest.raises(ValueError, match="attribute mode"):
        onnx_proto.node("Pad", ["x"], ["y"], mode="constant")


@pytest.mark.models
def test_the_minilm_graph_passes_the_onnx_checker():
    onnx = pytest.importorskip("onnx")
    from core.minilm import model_config
    from core.minilm_onnx import encoder_graph, file_weights
    from core.model_files import minilm_model

    weights = file_weights(minilm_model() / "model.safetensors")
    assert "embeddings.word_embeddings.weight" not in weights  # the shared table stays out
    model = onnx.load_from_string(encoder_graph(weights, model_config()))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["words", "mask_bias"]
    assert [o.name for o in model.graph.output] == ["hidden"]


@pytest.mark.models
def test_onnx_runtime_gives_the_torch_networks_hidden_states():
    """For a text alone and for texts padded in a batch (the real word pieces), the encoder's
    hidden states are float32 torch's to rounding, in the one shared word-piece table, whether
    built from the file or from a torch model in memory (one just trained)."""
    import torch

    from core.minilm import bert, encode, tokenizer, word_piece_table
    from core.minilm_onnx import file_encoder, for_inference

    model = bert()
    encoder = file_encoder()
    assert encoder is not None and encoder.table is word_piece_table()
    assert for_inference(model).table is word_piece_table()
    tok = tokenizer()
    batches = [tok([t], return_tensors="pt") for t in TEXTS] + [tok(TEXTS, padding=True, return_tensors="pt")]
    assert not bool(batches[-1]["attention_mask"].all())
    with torch.inference_mode():
        for batch in batches:
            ids, mask = batch["input_ids"], batch["attention_mask"]
            expected = encode(model, ids, mask)
            got = encoder.hidden_states(ids, mask)
            assert got.dtype == torch.float32 and got.shape == expected.shape == (*ids.shape, 384)
            real = mask.bool()
            assert torch.allclose(got[real], expected[real], atol=1e-4)
            # a text's states do not depend on the texts padded beside it, beyond rounding
            alone = encoder.hidden_states(ids[:1, : int(mask[0].sum())], mask[:1, : int(mask[0].sum())])
            assert torch.allclose(got[0, : alone.shape[1]], alone[0], atol=1e-4)
            assert torch.equal(for_inference(model).hidden_states(ids, mask), got)  # the same graph


@pytest.mark.models
def test_where_onnx_runtime_fails_the_torch_network_runs_and_says_so(monkeypatch, caplog):
    from core import minilm_onnx
    from core.minilm import bert

    def broken(weights, config, table=None):
        raise RuntimeError("no kernel for this CPU")

    monkeypatch.setattr(minilm_onnx, "OnnxEncoder", broken)
    model = bert()
    with caplog.at_level(logging.WARNING, logger="core.minilm_onnx"):
        assert minilm_onnx.for_inference(model) is model
        assert minilm_onnx.file_encoder() is None
    assert caplog.text.count("torch runs MiniLM") == 2 and "no kernel for this CPU" in caplog.text

"""The bundled MiniLM read from its own files: the vectors sentence-transformers gives for this
model, and one memory-mapped word-piece table however many encoders a process builds."""

import numpy as np
import pytest

pytestmark = pytest.mark.models

# sentence-transformers 5 (SentenceTransformer(path).encode(..., normalize_embeddings=True)) on
# the bundled all-MiniLM-L6-v2, recorded when core.embeddings stopped importing it.
REFERENCE = {
    "turn on the kitchen light": [0.050274, -0.008721, 0.000271, 0.091647, 0.00057, 0.031683],
}


def test_sentence_embeddings_are_the_ones_sentence_transformers_computes():
    from core.embeddings import embed

    texts = [*REFERENCE, "what's the weather in buffalo tomorrow", "switch the kitchen lamp on"]
    vectors = embed(texts)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # float32, as sentence-transformers computes (to the reference's six decimals)
    assert np.allclose(vectors[0, :6], REFERENCE[texts[0]], atol=2e-6)
    # batched with texts of other lengths, a text gets the vector it gets alone
    assert np.allclose(embed([texts[0]])[0], vectors[0], atol=1e-5)
    assert vectors[0] @ vectors[2] > vectors[0] @ vectors[1] + 0.3


def test_every_encoder_looks_words_up_in_one_mapped_table():
    import core.embeddings as float_encoder
    from core.minilm import word_piece_table
    from stages.nlu import pretrained

    table = word_piece_table()
    assert table is word_piece_table() and isinstance(table, np.memmap)
    float_encoder.embed(["warm up"])
    assert float_encoder._load()[1].table is table  # ONNX Runtime's encoder (core.minilm_onnx)
    _tok, int8_model = pretrained._load_encoder()
    weight = int8_model.embeddings.word_embeddings.weight
    assert weight.data_ptr() == table.ctypes.data and not weight.requires_grad
    # the static word vectors read the same map
    assert np.allclose(pretrained.word_vectors(["jazz"])[0], pretrained.word_vector("jazz"))


def test_the_direct_walk_gives_the_librarys_hidden_states_bit_for_bit():
    """core.minilm.encode skips the library's generic forward; the numbers must not move, for the
    float32 encoder (training's, and requests' where ONNX Runtime cannot run) and the int8 one,
    for a text alone and for texts padded in a batch."""
    import torch

    from core.minilm import bert, encode
    from stages.nlu import pretrained

    texts = ["turn on the kitchen light", "what's the weather in buffalo tomorrow", "play jazz"]
    tok, int8_model = pretrained._load_encoder()
    for model in (bert(), int8_model):
        with torch.inference_mode():
            for batch in [tok([t], return_tensors="pt") for t in texts] + [
                tok(texts, padding=True, return_tensors="pt")
            ]:
                ids, mask = batch["input_ids"], batch["attention_mask"]
                library = model(input_ids=ids, attention_mask=mask).last_hidden_state
                assert torch.equal(encode(model, ids, mask), library)
            assert not bool(batch["attention_mask"].all())  # the batch was padded


def test_training_runs_a_padded_batch_on_its_real_word_pieces_with_the_librarys_dropouts():
    """In training, encode packs a padded batch's real word pieces for the linear layers: with
    dropout off the real positions get the library's numbers and the padding zeros; with dropout
    on, the library's rates apply and gradients reach the weights."""
    import torch

    from core.minilm import bert, encode, tokenizer

    model = bert()
    tok = tokenizer()
    batch = tok(["turn on the kitchen light please", "hi", "play jazz"], padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert not bool(mask.all())
    with torch.no_grad():
        library = model(input_ids=ids, attention_mask=mask).last_hidden_state
    model.train()
    rates = {m: m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates and set(rates.values()) == {0.1}
    for m in rates:
        m.p = 0.0
    with torch.no_grad():
        packed = encode(model, ids, mask)
    real = mask.bool()
    assert torch.allclose(packed[real], library[real], atol=1e-5)
    assert not packed[~real].any()
    for m, p in rates.items():
        m.p = p
    torch.manual_seed(0)
    dropped = encode(model, ids, mask)
    assert not torch.allclose(dropped[real], library[real], atol=1e-3)
    dropped[real].sum().backward()
    assert model.encoder.layer[0].attention.self.query.weight.grad is not None
    assert not dropped[~real].any()


def test_dropout_masks_keep_one_minus_p_scaled_and_repeat_from_their_seed():
    """Training's dropout masks come from numpy's PCG64: a position is kept with probability
    1 − p and scaled by 1 / (1 − p), as torch's dropout does, and a seed gives the same masks."""
    import torch

    from core.minilm import DropoutMasks

    x = torch.ones(200, 384)
    dropped = DropoutMasks(0)(x, 0.1)
    kept = dropped != 0
    assert abs(float(kept.float().mean()) - 0.9) < 0.005
    assert torch.allclose(dropped[kept], torch.full_like(dropped[kept], 1 / 0.9))
    assert torch.equal(DropoutMasks(0)(x, 0.1), dropped)
    assert not torch.equal(DropoutMasks(1)(x, 0.1), dropped)
    assert DropoutMasks(0)(x, 0.0) is x
    # gradients flow through the kept positions only
    w = torch.ones(200, 384, requires_grad=True)
    DropoutMasks(0)(w, 0.1).sum().backward()
    assert torch.equal(w.grad != 0, kept)


@pytest.mark.parametrize("pack", [True, False])
def test_training_with_drawn_masks_gives_the_librarys_numbers_without_dropout(pack):
    """With masks drawn by DropoutMasks, attention is written out so its dropout draws from them
    too: at rate 0 it computes what the library computes, packed or padded; at the library's
    rates the masks apply, repeat from their seed, and gradients reach the weights."""
    import torch

    from core.minilm import DropoutMasks, bert, encode, tokenizer

    model = bert()
    tok = tokenizer()
    batch = tok(["turn on the kitchen light please", "hi", "play jazz"], padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        library = model(input_ids=ids, attention_mask=mask).last_hidden_state
    model.train()
    rates = {m: m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    for m in rates:
        m.p = 0.0
    real = mask.bool()
    with torch.no_grad():
        written = encode(model, ids, mask, DropoutMasks(0), pack=pack)
    assert torch.allclose(written[real], library[real], atol=1e-5)
    for m, p in rates.items():
        m.p = p
    dropped = encode(model, ids, mask, DropoutMasks(0), pack=pack)
    assert torch.equal(encode(model, ids, mask, DropoutMasks(0), pack=pack), dropped)
    assert not torch.allclose(dropped[real], library[real], atol=1e-3)
    dropped[real].sum().backward()
    assert model.encoder.layer[0].attention.self.query.weight.grad is not None

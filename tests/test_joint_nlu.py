"""The fine-tuned MiniLM NLU (stages/nlu/joint_model.py): its tags, training, files and use."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from core.domain import OOD_INTENT, load_domain
from core.errors import InputError
from core.utterances import Example
from stages.nlu.joint_model import (
    FORBIDDEN,
    JointConfig,
    JointNlu,
    best_tags,
    spans_of,
    tag_set,
    tag_transitions,
    word_tags,
)
from stages.nlu.models import META_FILE, Prediction


def test_bio_tags_round_trip_to_spans():
    text = "play hey jude by the beatles now"
    spans = [(5, 13, "song"), (17, 28, "artist")]
    tags = word_tags(text, spans)
    assert tags == ["O", "B-song", "I-song", "O", "B-artist", "I-artist", "O"]
    assert spans_of(text, tags) == tuple(spans)
    # two names of one kind side by side stay two; an I- with nothing open starts a span
    assert spans_of("jazz blues", ["B-genre", "B-genre"]) == ((0, 4, "genre"), (5, 10, "genre"))
    assert spans_of("some jazz", ["O", "I-genre"]) == ((5, 9, "genre"),)
    assert tag_set(["genre", "song"]) == ["O", "B-genre", "I-genre", "B-song", "I-song"]


def test_decoding_keeps_a_name_in_one_span():
    tags = tag_set(["artist", "playlist"])  # O, B-artist, I-artist, B-playlist, I-playlist
    ids = {t: i for i, t in enumerate(tags)}
    rows = [(["w"] * 4, [ids["O"], ids["B-artist"], ids["I-artist"], ids["O"]], 0, 3)]
    trans = tag_transitions(rows, tags)
    assert trans[0][ids["I-artist"]] == FORBIDDEN  # a sentence does not start inside a name
    assert trans[1 + ids["O"]][ids["I-playlist"]] == FORBIDDEN
    assert trans[1 + ids["B-artist"]][ids["I-artist"]] > trans[1 + ids["B-artist"]][ids["B-playlist"]]
    # "put emre aydin on": each word's best tag cuts the name in two kinds (B-playlist, I-artist)
    lp = {"O": -0.05, "B-artist": -6, "I-artist": -6, "B-playlist": -6, "I-playlist": -6}
    emre = {"O": -5, "B-artist": -0.9, "I-artist": -6, "B-playlist": -0.6, "I-playlist": -6}
    aydin = {"O": -5, "B-artist": -3, "I-artist": -0.2, "B-playlist": -4, "I-playlist": -3}
    words = [[d[t] for t in tags] for d in (lp, emre, aydin, lp)]
    argmax = [max(range(len(tags)), key=w.__getitem__) for w in words]
    assert [tags[i] for i in argmax] == ["O", "B-playlist", "I-artist", "O"]
    for weight in (0.0, 0.5):  # BIO alone already joins it; the transitions agree
        best = [tags[i] for i in best_tags(words, trans, weight)]
        assert best == ["O", "B-artist", "I-artist", "O"]
    assert spans_of("put emre aydin on", best) == ((4, 14, "artist"),)


def _examples() -> list[Example]:
    """A tiny domain: play a song, weather in a city, and requests it does not serve."""
    songs = ["hey jude", "yesterday", "let it be", "help", "something", "penny lane"]
    cities = ["paris", "boston", "tokyo", "lima", "oslo", "cairo"]
    out = []
    for s in songs:
        for frame in ("play {}", "put on {}", "i want to hear {}", "play {} please"):
            text = frame.format(s)
            a = text.index(s)
            out.append(Example(text, "PlayMusic", ((a, a + len(s), "song"),)))
    for c in cities:
        for frame in ("weather in {}", "is it raining in {}", "how cold is it in {} today", "forecast for {}"):
            text = frame.format(c)
            a = text.index(c)
            out.append(Example(text, "GetWeather", ((a, a + len(c), "place"),)))
    for text in ("tell me a joke", "who won the game", "send an email to bob", "what is the capital of peru"):
        out += [Example(text, OOD_INTENT, ())] * 3
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = JointNlu.train(
        _examples(),
        ["PlayMusic", "GetWeather", OOD_INTENT],
        ["place", "song"],
        JointConfig(epochs=6, batch_size=16, learn_rate=2e-4, head_learn_rate=5e-3),
        meta={"name": "joint-nlu/tiny"},
    )
    folder = model.save(tmp_path_factory.mktemp("joint") / "model")
    return model, folder


@pytest.mark.models
def test_it_learns_intents_and_slots_and_reads_names_it_never_saw(tiny):
    model, _folder = tiny
    meta = model.meta
    assert meta["kind"] == "joint-minilm" and meta["labels"] == ["place", "song"]
    assert meta["examples"] < len(_examples())  # repeated examples train once, weighted
    p = model.predict("Play Penny Lane!")
    assert p.intents[0][0] == "PlayMusic" and p.spans == ((5, 15, "song"),)
    # a city and a song it was never taught, in phrasings it was
    p = model.predict("weather in reykjavik")
    assert p.intents[0][0] == "GetWeather" and [p.text[a:b] for a, b, _ in p.spans] == ["reykjavik"]
    p = model.predict("i want to hear bohemian rhapsody")
    assert p.intents[0][0] == "PlayMusic" and [(p.text[a:b], lab) for a, b, lab in p.spans] == [
        ("bohemian rhapsody", "song")
    ]
    assert abs(sum(s for _i, s in p.intents) - 1.0) < 1e-5


@pytest.mark.models
def test_the_scorer_reads_a_joint_model(tiny):
    """`assistant nlu eval --model` scores any kind of model (intent accuracy, slot F1)."""
    from stages.nlu.evaluate import evaluate

    model, _folder = tiny
    r = evaluate(model, _examples()[::5])
    assert r["intent_accuracy"] == 1.0 and r["slot_f1"] == 1.0, r


@pytest.mark.models
def test_a_saved_model_loads_as_the_same_model(tiny):
    """What is saved is the float weights; both the trained and the loaded model run them in
    the same precision, so their predictions are identical. Loading runs no pickled code
    (safetensors)."""
    from stages.nlu.recipes import load_model

    model, folder = tiny
    again = load_model(folder)
    assert isinstance(again, JointNlu)
    for text in ("play help", "is it raining in quito", "tell me a story", "forecast for lima tomorrow"):
        assert again.predict(text) == model.predict(text)
    assert {p.name for p in folder.iterdir()} >= {META_FILE, "joint_minilm.safetensors"}
    copy = again.save(folder.parent / "copy")  # a loaded model saves its own file again
    assert load_model(copy).predict("play help") == model.predict("play help")


@pytest.mark.models
def test_in_use_the_network_reads_as_trained_in_float(tiny, monkeypatch):
    """Not int8: dynamic quantization cost about one real command in a hundred. ONNX Runtime runs
    the transformer in float32, as it was trained, and torch the heads; where the runtime cannot,
    the torch network itself runs. Both read as the saved float32 network."""
    import torch

    from core import minilm_onnx
    from stages.nlu import joint_model

    model, folder = tiny
    meta = model.meta
    weights = folder / "joint_minilm.safetensors"
    n_intents, n_tags = len(meta["intents"]), len(meta["tags"])
    with monkeypatch.context() as plain:  # the saved network as trained, plain float32
        plain.setattr(joint_model, "_for_inference", lambda net: net)
        exact = joint_model._inference_net(weights, n_intents, n_tags)
    runtime = joint_model._inference_net(weights, n_intents, n_tags)
    assert isinstance(runtime.encoder, minilm_onnx.OnnxEncoder)
    assert all(isinstance(net.encoder, minilm_onnx.OnnxEncoder) for net in model.nets)  # as trained
    monkeypatch.setattr(minilm_onnx, "OnnxEncoder", lambda *args: (_ for _ in ()).throw(RuntimeError("no")))
    fallback = joint_model._inference_net(weights, n_intents, n_tags)
    assert isinstance(fallback, torch.nn.Module) and {p.dtype for p in fallback.parameters()} == {torch.float32}
    for text in ("play penny lane", "weather in reykjavik", "who won the game", "i want to hear help"):
        ids = model.tokenizer([text.split()], is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            a, tags_a = exact(ids["input_ids"], ids["attention_mask"])
            for net in (runtime, fallback):
                b, tags_b = net(ids["input_ids"], ids["attention_mask"])
                assert torch.allclose(torch.softmax(a, -1), torch.softmax(b, -1), atol=1e-5)
                assert torch.allclose(tags_a, tags_b, atol=1e-4)


@pytest.mark.models
def test_a_saved_model_loads_without_transformers_model_classes_or_spacy(tiny):
    """A cold start reads the saved weights straight into ONNX Runtime: importing transformers'
    BertModel (about three seconds) or spaCy (over one) would only delay the first reply."""
    import subprocess
    import sys
    from pathlib import Path

    _model, folder = tiny
    script = (
        "import sys; from stages.nlu.joint_model import JointNlu; from core.embeddings import embed; "
        f"m = JointNlu.load({str(folder)!r}); m.predict('play jazz'); embed(['play jazz']); "
        "print(sorted(k for k in ('transformers.models.bert.modeling_bert', 'spacy', 'thinc', 'onnx') if k in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.models
def test_an_ensemble_with_a_neighbour_vote_averages_its_networks_and_saves_them_all(tmp_path):
    """``members``: networks from successive seeds, their probabilities averaged; ``neighbours``:
    the nearest training commands vote on the intent, mixed in at ``neighbour_weight``. The
    SLURP recipe trains this way (docs/nlu.md); a spec's key ignores the fields at defaults."""
    import numpy as np

    from stages.nlu.recipes import config_fields, load_model

    intents = ["PlayMusic", "GetWeather", OOD_INTENT]
    config = JointConfig(epochs=2, batch_size=16, members=2, neighbours=3, neighbour_weight=0.4)
    lines: list[str] = []
    model = JointNlu.train(
        _examples(), intents, ["place", "song"], config, meta={"name": "joint-nlu/tiny"}, progress=lines.append
    )
    assert len(model.nets) == 2
    assert [line.split(":")[0] for line in lines] == ["network 1/2"] * 2 + ["network 2/2"] * 2  # 2 epochs each
    text = model.prepare("is it raining in lima")
    members = []
    for net in model.nets:
        alone = JointNlu(net, model.tokenizer, model.meta)
        members.append(alone._forward(text, 1.0)[0])
    vote = model._vote(text)
    assert vote[intents.index("GetWeather")] == pytest.approx(1.0)  # its three nearest are weather
    expected = 0.6 * np.mean(members, axis=0) + 0.4 * np.array(vote)
    got = dict(model.predict("is it raining in lima").intents)
    assert [got[i] for i in intents] == pytest.approx(expected.tolist(), abs=1e-6)
    folder = model.save(tmp_path / "model")
    assert {"joint_minilm.safetensors", "joint_minilm-1.safetensors", "neighbours.npz"} <= {
        p.name for p in folder.iterdir()
    }
    again = load_model(folder)
    for t in ("play help", "weather in quito", "tell me a joke"):
        assert again.predict(t) == model.predict(t)
    (folder / "joint_minilm-1.safetensors").unlink()
    with pytest.raises(InputError, match="joint_minilm-1.safetensors"):
        load_model(folder)
    assert "members" not in config_fields(JointConfig()) and config_fields(config)["members"] == 2


def test_a_folder_that_is_no_model_names_itself(tmp_path):
    from stages.nlu.recipes import load_model

    with pytest.raises(InputError, match="no assistant_nlu.json"):
        load_model(tmp_path)
    (tmp_path / META_FILE).write_text(json.dumps({"kind": "joint-minilm", "intents": ["A"], "tags": ["O"]}))
    with pytest.raises(InputError, match="joint_minilm.safetensors"):
        load_model(tmp_path)
    (tmp_path / META_FILE).write_text("{not json")
    with pytest.raises(InputError, match="invalid JSON"):
        load_model(tmp_path)


def test_spec_settings_pick_the_model_kind():
    from stages.nlu.recipes import spec_config
    from stages.nlu.spacy_model import TrainConfig

    assert spec_config() == JointConfig()
    assert spec_config(0, "joint").epochs == JointConfig().epochs  # 0: the kind's own
    assert spec_config(3, "joint").epochs == 3
    assert isinstance(spec_config(None, "spacy"), TrainConfig)
    from core.errors import UserError

    with pytest.raises(UserError, match="nlu.model"):
        spec_config(None, "bert")


def _stage_predicting(intents: list[tuple[str, float]], text: str = "indie"):
    from stages.nlu.stage import NluOptions, NluStage

    pred = Prediction(text, tuple(intents), ())
    model = SimpleNamespace(predict=lambda t: pred, span_typer=None, name="fake")
    return NluStage(load_domain("home"), model=model, options=NluOptions())


def test_a_bare_value_with_nothing_to_answer_is_a_request_or_nothing():
    """ "indie" with no question pending and no earlier request is not an answer: the best
    other class decides, by its probability given that it is not one."""
    stage = _stage_predicting([("Inform", 0.5), ("PlayMusic", 0.4), (OOD_INTENT, 0.1)])
    i = stage.interpret("indie")
    assert i.intent == "PlayMusic" and i.confidence == pytest.approx(0.8)
    stage = _stage_predicting([("Inform", 0.6), (OOD_INTENT, 0.3), ("PlayMusic", 0.1)], "cars")
    assert stage.interpret("cars").out_of_domain
    # after a request, "and in the bedroom" stays a follow-up (the resolver fills it in)
    after = SimpleNamespace(now=None, dialogue=SimpleNamespace(pending=None, last_intent="TurnOn"))
    stage = _stage_predicting([("Inform", 0.6), ("TurnOn", 0.3), (OOD_INTENT, 0.1)], "and in the bedroom")
    assert stage.interpret("and in the bedroom", after).intent in (None, "Inform")


@pytest.mark.models
def test_training_batches_are_the_tokenizers_padded_batches_of_like_lengths():
    """Each command is tokenized once for every epoch; a batch holds what the tokenizer would
    pad for its commands (ids, mask, a tag on each word's first piece), every command once an
    epoch, and batches group like word-piece counts, so they pad little."""
    import random

    from core.minilm import tokenizer
    from stages.nlu.joint_model import _batches, _pieces, _rows

    tok = tokenizer()
    rows = _rows(_examples(), ["PlayMusic", "GetWeather", OOD_INTENT], tag_set(["place", "song"]), True)
    by_pieces = {}
    pieces = _pieces(tok, rows, 48)
    for row, (ids, _labels) in zip(rows, pieces):
        by_pieces[tuple(ids)] = row
    assert len(by_pieces) == len(rows)
    seen, padded = [], 0
    for ids, mask, labels, intents, _weights in _batches(pieces, rows, JointConfig(batch_size=8), random.Random(0), 0):
        padded += ids.numel()
        for j in range(len(ids)):
            n = int(mask[j].sum())
            row = by_pieces[tuple(ids[j, :n].tolist())]
            enc = tok([row[0]], is_split_into_words=True)
            words = enc.word_ids(0)
            firsts = [k for k, w in enumerate(words) if w is not None and w not in words[:k]]
            assert ids[j, :n].tolist() == enc["input_ids"][0] and not ids[j, n:].any()
            assert [k for k in range(ids.shape[1]) if labels[j, k] != -100] == firsts
            assert [int(labels[j, k]) for k in firsts] == list(row[1]) and int(intents[j]) == row[2]
            seen.append(row)
    assert sorted(map(str, seen)) == sorted(map(str, rows))
    assert padded < 1.1 * sum(len(ids) for ids, _labels in pieces)

"""Annotated corpora (SNIPS, SLURP), scoring, and the `assistant nlu` command on small samples."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from core.utterances import Example
from stages.nlu.corpora import decode_text, read_slurp, read_snips, stratified_folds
from stages.nlu.evaluate import evaluate, expected_calibration_error, merge_results
from tests.conftest import DATA, ROOT

SNIPS = DATA / "snips-mini"
SLURP = DATA / "slurp-mini.jsonl"


def test_snips_reader_spans_and_splits():
    train = read_snips(SNIPS, "train")
    val = read_snips(SNIPS, "validate")
    assert len(train) == 90 and len(val) == 24
    assert {ex.intent for ex in train} == {"PlayMusic", "GetWeather", "BookRestaurant"}
    for ex in train + val:
        for a, b, label in ex.spans:
            words = ex.text[a:b]
            assert words and words == words.strip() and label
    # SNIPS writes this emoji as a CESU-8 surrogate pair: it must decode to one character.
    pizza = next(ex for ex in train if "Pop Punk Perfection" in ex.text)
    assert "\U0001f355" in pizza.text
    assert ("Pop Punk Perfection \U0001f355", "playlist") in {(pizza.text[a:b], s) for a, b, s in pizza.spans}


def test_decode_text_falls_back():
    assert decode_text("Música".encode("utf-8")) == "Música"
    assert decode_text("Música".encode("latin-1")) == "Música"


def test_slurp_reader_uses_scenario_and_action():
    examples = read_slurp(SLURP)
    assert len(examples) == 48
    ex = next(e for e in examples if e.text == "set an alarm for tomorrow morning at eight")
    assert ex.intent == "alarm_set"
    assert [(ex.text[a:b], s) for a, b, s in ex.spans] == [
        ("tomorrow", "date"),
        ("morning", "timeofday"),
        ("eight", "time"),
    ]


def test_bad_corpus_files_are_named(tmp_path):
    from core.errors import InputError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sentence": "x", "scenario": "a", "action": "b"}\nnot json\n')
    with pytest.raises(InputError, match="line 2"):
        read_slurp(bad)
    with pytest.raises(InputError, match="no such SNIPS folder"):
        read_snips(tmp_path / "missing")


def test_folds_are_stratified_and_disjoint():
    examples = read_slurp(SLURP)
    folds = stratified_folds(examples, 4)
    flat = [i for f in folds for i in f]
    assert sorted(flat) == list(range(len(examples)))
    for f in folds:  # 8 per intent over 4 folds: 2 of each in every fold
        intents = [examples[i].intent for i in f]
        assert all(intents.count(x) == 2 for x in set(intents)) and len(set(intents)) == 6
    # another seed is another split, stratified the same way (settings are chosen on one, reported on seed 0)
    other = stratified_folds(examples, 4, seed=1)
    assert sorted(map(sorted, other)) != sorted(map(sorted, folds))
    assert all(sorted(examples[i].intent for i in f) == sorted(examples[i].intent for i in folds[0]) for f in other)


class _FixedModel:
    """Scores are computed from predictions; this stands in for a model's predictions."""

    lowercase = True

    def __init__(self, preds):
        self._preds = preds

    def predict_many(self, texts, batch_size=256):
        return [self._preds[t] for t in texts]


def test_slot_f1_is_exact_span_and_label_micro():
    a = Example("play jazz in the kitchen", "Play", ((5, 9, "genre"), (17, 24, "room")))
    b = Example("stop", "Stop", ())
    preds = {
        a.text: SimpleNamespace(
            intents=(("Play", 0.9), ("Stop", 0.1)), spans=((5, 9, "genre"), (13, 24, "room"))
        ),  # one right, one wrong span
        b.text: SimpleNamespace(intents=(("Play", 0.6), ("Stop", 0.4)), spans=((0, 4, "genre"),)),
    }
    r = evaluate(_FixedModel(preds), [a, b])
    assert r["n"] == 2 and r["intent_accuracy"] == 0.5
    assert (r["slot_precision"], r["slot_recall"]) == (pytest.approx(1 / 3, abs=1e-4), 0.5)
    assert r["slot_f1"] == pytest.approx(0.4, abs=1e-4)
    assert r["per_intent"]["Stop"]["intent_accuracy"] == 0.0
    merged = merge_results([r, r])
    assert merged["n"] == 4 and merged["slot_f1"] == r["slot_f1"] and merged["intent_accuracy"] == 0.5


def test_expected_calibration_error():
    assert expected_calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)
    assert expected_calibration_error([1.0] * 4, [True, False, True, False]) == pytest.approx(0.5)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "assistant", "nlu", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.models
def test_cli_train_eval_and_cache(tmp_path):
    out = tmp_path / "snips-model"
    p = _cli("train", "--snips", str(SNIPS), "--out", str(out), "--epochs", "4", "--json")
    assert p.returncode == 0, p.stderr
    first = json.loads(p.stdout)
    assert first["up_to_date"] is False and first["intents"] == 3 and (out / "assistant_nlu.json").is_file()
    # the same inputs: not trained again
    p = _cli("train", "--snips", str(SNIPS), "--out", str(out), "--epochs", "4", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["up_to_date"] is True
    p = _cli("eval", "--snips", str(SNIPS), "--model", str(out), "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["n"] == 24 and set(r["per_intent"]) == {"PlayMusic", "GetWeather", "BookRestaurant"}
    assert 0 <= r["slot_f1"] <= 1 and r["intent_accuracy"] > 0.5  # 3 intents, 90 examples


@pytest.mark.models
def test_cli_slurp_cross_validation():
    p = _cli("eval", "--slurp", str(SLURP), "--folds", "2", "--epochs", "3", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["n"] == 48 and r["folds"] == 2 and len(r["fold_intent_accuracy"]) == 2
    assert set(r["per_intent"]) == {
        "alarm_set",
        "weather_query",
        "play_music",
        "iot_hue_lightoff",
        "calendar_set",
        "qa_currency",
    }
    assert "slot_f1" in r and "intent_accuracy" in r


def test_cli_usage_errors():
    p = _cli("eval", "--snips", str(SNIPS))
    assert p.returncode == 2 and "--model" in p.stderr
    p = _cli("train", "home", "--snips", str(SNIPS), "--out", "x")
    assert p.returncode == 2 and "exactly one" in p.stderr
    p = _cli("eval", "home", "--folds", "3")
    assert p.returncode == 2 and "corpus" in p.stderr
    p = _cli("eval", "--snips", str(SNIPS), "--model", "x", "--fold-seed", "1")
    assert p.returncode == 2 and "--fold-seed goes with --folds" in p.stderr


def test_each_source_trains_its_measured_best_kind_unless_told():
    from core.errors import UserError
    from stages.nlu.joint_model import JointConfig
    from stages.nlu.recipes import Source, default_config
    from stages.nlu.spacy_model import TrainConfig

    slurp, snips = Source("slurp", SLURP), Source("snips", SNIPS)
    # both measured best with fine-tuned MiniLM (docs/nlu.md); the spaCy pipeline on request
    assert isinstance(default_config(slurp), JointConfig)
    assert isinstance(default_config(snips), JointConfig)
    assert isinstance(default_config(slurp, "spacy"), TrainConfig)
    assert isinstance(default_config(snips, "spacy"), TrainConfig)
    with pytest.raises(UserError, match="model kind"):
        default_config(slurp, "bert")
    p = _cli("eval", "--slurp", str(SLURP), "--folds", "2", "--kind", "bert")
    assert p.returncode == 2 and "--kind" in p.stderr

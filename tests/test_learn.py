"""Defect detection and failure-point labeling learned from traces: train, label, eval end to end
on freshly simulated sessions, model files that cannot run code, and the oracle labels they learn."""

from __future__ import annotations

import json
import pickle
import random
import re
import shutil
from dataclasses import replace

import numpy as np
import pytest

from assistant.cli import main
from core.audio import Audio
from core.records import Utterance
from hooks import trace_reader as traces
from hooks.learn.turn_features import CLASSES, observable

EVAL_KEYS = {"fp_accuracy", "fp_macro_f1", "fp_per_class", "defect_auc", "defect_f1", "n_turns"}


def cli(capsys, *args):
    """(exit code, stdout, stderr lines) of one `assistant` command, run in this process."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, [line for line in out.err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, config):
    """Training sessions and held-out ones (another seed, other acoustic conditions), and a model."""
    from sim.simulator import SimOptions, run

    root = tmp_path_factory.mktemp("learn")
    run(
        config,
        SimOptions(
            sessions=45,
            seed=21,
            fidelity="text",
            out=str(root / "train"),
            workers=1,
            conditions=("clean", "pink@20dB", "white@10dB"),
        ),
    )
    run(
        config,
        SimOptions(
            sessions=15,
            seed=22,
            fidelity="text",
            out=str(root / "test"),
            workers=1,
            conditions=("babble@10dB", "rt0.6"),
        ),
    )
    return root


@pytest.fixture(scope="module")
def model(runs):
    code = main(["train", str(runs / "train"), "--out", str(runs / "model"), "--json"])
    assert code == 0
    return runs / "model"


@pytest.mark.models
def test_train_keeps_the_best_labeler_and_saves_only_data(model):
    meta = json.loads((model / "model.json").read_text())
    assert meta["kind"] in ("gbm", "sequence", "ensemble") and set(meta["models"]) == {"gbm", "sequence", "ensemble"}
    # the ensemble adds no file: its entry names its weight and repeats its members' entries
    ensemble = meta["models"]["ensemble"]
    assert ensemble["files"] == [] and 0.0 <= ensemble["weight"] <= 1.0
    assert ensemble["members"] == {k: meta["models"][k] for k in ("gbm", "sequence")}
    for _kind, c in meta["candidates"].items():
        assert set(c["validation"]) == EVAL_KEYS and c["train_s"] >= 0
    files = {p.name for p in model.iterdir()}
    assert files == {
        "model.json",
        "gbm_fp.txt",
        "gbm_defect.txt",
        "gbm_pca.npz",
        "sequence.pt",
        "sequence_stats.npz",
        "garbled.txt",
        "garbled.npz",
        "reader.npz",
    }
    assert meta["train_turns"] > 100 and len(meta["feature_names"]) == len(set(meta["feature_names"]))
    # no feature is read from the gold, the oracle or what the simulated user really said
    assert not [
        n for n in meta["feature_names"] if re.search(r"(^|_)(gold|oracle|labels?|spoken|faults?|source)(_|$)", n)
    ]


@pytest.mark.models
def test_label_writes_predictions_into_traces_that_still_validate(model, runs, tmp_path, capsys):
    folder = tmp_path / "traces"
    shutil.copytree(runs / "test", folder)
    before = traces.turn_ends([folder])
    code, out, err = cli(capsys, "label", folder, "--model", model)
    assert code == 0 and err == [] and out.strip() == f"labeled {len(before)} turns"
    after = traces.turn_ends([folder])
    assert [(r["session"], r["turn"]) for r in after] == [(r["session"], r["turn"]) for r in before]
    for old, new in zip(before, after):
        p = new["labels"]["predicted"]
        assert p["failure_point"] in CLASSES and isinstance(p["defect"], bool)
        assert set(p["p"]) == set(CLASSES) and abs(sum(p["p"].values()) - 1) < 1e-3
        assert p["failure_point"] == max(p["p"], key=p["p"].get)
        assert new["labels"]["oracle"] == old["labels"]["oracle"]  # the oracle's labels stay
        assert {k: v for k, v in new.items() if k != "labels"} == {k: v for k, v in old.items() if k != "labels"}
        if not observable(new):
            assert p == {**p, "failure_point": "wake", "source": "rule:not-woken"}
    for rec in traces.iter_records([folder]):
        assert traces.validation_errors(rec) == []


@pytest.mark.models
def test_eval_json_has_the_documented_keys_and_agrees_with_the_labels(model, runs, tmp_path, capsys):
    code, out, err = cli(capsys, "eval", runs / "test", "--model", model, "--json")
    assert code == 0 and err == []
    m = json.loads(out)
    assert set(m) == EVAL_KEYS
    assert set(m["fp_per_class"]) == set(CLASSES)
    assert all(set(c) == {"precision", "recall", "f1", "n"} for c in m["fp_per_class"].values())
    assert sum(c["n"] for c in m["fp_per_class"].values()) == m["n_turns"] > 20
    for key in ("fp_accuracy", "fp_macro_f1", "defect_f1"):
        assert 0.0 <= m[key] <= 1.0
    # what eval scores is what label writes: the same predictions, the same observable turns
    folder = tmp_path / "traces"
    shutil.copytree(runs / "test", folder)
    cli(capsys, "label", folder, "--model", model)
    scored = [r for r in traces.turn_ends([folder]) if observable(r) and r["labels"]["oracle"]]
    assert len(scored) == m["n_turns"]
    hits = sum(r["labels"]["predicted"]["failure_point"] == r["labels"]["oracle"]["failure_point"] for r in scored)
    assert m["fp_accuracy"] == pytest.approx(hits / len(scored), abs=1e-4)
    # far better than chance on sessions from another seed and unseen acoustic conditions
    majority = max(c["n"] for c in m["fp_per_class"].values()) / m["n_turns"]
    assert m["fp_accuracy"] > majority and m["defect_auc"] > 0.8
    # the other labelers are there to score too
    kept = json.loads((model / "model.json").read_text())["kind"]
    for kind in {"gbm", "sequence", "ensemble"} - {kept}:
        code, out, _err = cli(capsys, "eval", runs / "test", "--model", model, "--json", "--kind", kind)
        assert code == 0 and set(json.loads(out)) == EVAL_KEYS


@pytest.mark.models
def test_the_ensemble_averages_its_members_with_the_weight_it_chose(model, runs):
    from hooks.learn.labelers import load_model, reweighted
    from hooks.learn.pipeline import _features_for

    ensemble, meta = load_model(model, "ensemble")
    _sessions, fs = _features_for([runs / "test"], meta, model)
    w = meta["models"]["ensemble"]["weight"]
    # the members as trained (the kept labeler, whichever it is, also carries its decision weights)
    (pg, dg), (ps, ds) = (
        getattr(m, "model", m).predict(fs) for m in (load_model(model, k)[0] for k in ("gbm", "sequence"))
    )
    kept = json.loads((model / "model.json").read_text())
    factors = np.array([kept["decision_weights"].get(c, 1.0) if kept["kind"] == "ensemble" else 1.0 for c in CLASSES])
    p, d = ensemble.predict(fs)
    assert np.allclose(p, reweighted(w * pg + (1 - w) * ps, factors), atol=1e-6)
    assert np.allclose(d, w * dg + (1 - w) * ds, atol=1e-6)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4)


def test_decision_weights_move_only_when_the_validation_score_rises():
    from hooks.learn.labelers import decision_weights, reweighted

    rng = np.random.default_rng(0)
    y = rng.integers(0, len(CLASSES), 600)
    d = (y != CLASSES.index("correct")).astype(float)
    exact = np.eye(len(CLASSES))[y] * 0.9 + 0.1 / len(CLASSES)
    assert np.all(decision_weights(y, exact, d) == 1.0)  # nothing to gain
    # a labeler that calls a third of the nlu turns asr, narrowly: asr is weighed down
    asr, nlu = CLASSES.index("asr"), CLASSES.index("nlu")
    skewed = exact.copy()
    moved = (y == nlu) & (rng.random(len(y)) < 1 / 3)
    skewed[moved, asr], skewed[moved, nlu] = 0.55, 0.4
    weights = decision_weights(y, skewed, d)
    assert weights[asr] < 1.0 or weights[nlu] > 1.0
    assert np.mean(reweighted(skewed, weights).argmax(1) == y) > np.mean(skewed.argmax(1) == y)


class _Payload:
    """Unpickling this runs code (it would create the file named)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.models
def test_a_model_file_that_would_run_code_is_refused_not_loaded(model, runs, tmp_path, capsys):
    marker = tmp_path / "pwned"
    tampered = tmp_path / "tampered"
    shutil.copytree(model, tampered)
    # a pickle in place of the torch weights: torch.load(weights_only=True) refuses it
    import torch

    torch.save({"turn.0.weight": _Payload(marker)}, tampered / "sequence.pt")
    code, out, err = cli(capsys, "eval", runs / "test", "--model", tampered, "--kind", "sequence", "--json")
    assert code == 2 and len(err) == 1 and "sequence model refused" in err[0] and out == ""
    # a pickled object array in the normalization statistics: numpy without allow_pickle refuses it
    shutil.copy(model / "sequence.pt", tampered / "sequence.pt")
    with open(tampered / "gbm_pca.npz", "wb") as f:
        np.savez(f, text_mean=np.array([_Payload(marker)], dtype=object))
    code, _out, err = cli(capsys, "label", runs / "test", "--model", tampered, "--kind", "gbm")
    assert code == 2 and len(err) == 1 and "gbm model refused" in err[0]
    # a raw pickle named as the booster: it is read as text, never unpickled
    (tampered / "gbm_fp.txt").write_bytes(pickle.dumps(_Payload(marker)))
    shutil.copy(model / "gbm_pca.npz", tampered / "gbm_pca.npz")
    code, _out, err = cli(capsys, "eval", runs / "test", "--model", tampered, "--kind", "gbm")
    assert code == 2 and len(err) == 1 and "gbm model refused" in err[0]
    # the garbled-transcript scorer's projection, pickled: refused as well
    shutil.copy(model / "gbm_fp.txt", tampered / "gbm_fp.txt")
    with open(tampered / "garbled.npz", "wb") as f:
        np.savez(f, mean=np.array([_Payload(marker)], dtype=object))
    code, _out, err = cli(capsys, "eval", runs / "test", "--model", tampered, "--kind", "gbm")
    assert code == 2 and len(err) == 1 and "garbled-transcript scorer refused" in err[0]
    shutil.copy(model / "garbled.npz", tampered / "garbled.npz")
    # the transcript reader's weights, pickled: refused too
    with open(tampered / "reader.npz", "wb") as f:
        np.savez(f, bag=np.array([_Payload(marker)], dtype=object))
    code, _out, err = cli(capsys, "label", runs / "test", "--model", tampered)
    assert code == 2 and len(err) == 1 and "transcript reader refused" in err[0]
    shutil.copy(model / "reader.npz", tampered / "reader.npz")
    # an ensemble entry whose weight is no number in [0, 1] is refused, not evaluated
    shutil.copy(model / "gbm_fp.txt", tampered / "gbm_fp.txt")
    meta = json.loads((model / "model.json").read_text())
    meta["models"]["ensemble"]["weight"] = "__import__('os')"
    (tampered / "model.json").write_text(json.dumps(meta))
    code, _out, err = cli(capsys, "eval", runs / "test", "--model", tampered, "--kind", "ensemble")
    assert code == 2 and len(err) == 1 and "ensemble model refused" in err[0]
    # decision weights that are no positive numbers are refused with the field named
    meta = json.loads((model / "model.json").read_text())
    meta["decision_weights"] = {"asr": "__import__('os')"}
    (tampered / "model.json").write_text(json.dumps(meta))
    code, _out, err = cli(capsys, "eval", runs / "test", "--model", tampered)
    assert code == 2 and len(err) == 1 and "decision_weights" in err[0]
    assert not marker.exists()


@pytest.fixture(scope="module")
def reader():
    """The transcript reader, trained on the home domain's generated requests (what each means
    and which kinds of value it names)."""
    from core.domain import load_domain
    from core.utterances import UtteranceGenerator
    from hooks.learn.transcript_classifier import Reader, acts_for, slot_kinds
    from hooks.learn.turn_features import Embedder, TurnWords

    domain = load_domain("home")
    types = domain.slot_types
    examples = UtteranceGenerator(domain).examples(random.Random(5), per_intent=120, include_ood=True)
    words = tuple(
        TurnWords(
            text=e.text.lower(),
            meant_act=e.intent if e.intent in domain.intents else "__ood__",
            meant_kinds=frozenset(types.get(s, s) for _a, _b, s in e.spans),
        )
        for e in examples
    )
    fs = _feature_set(words, Embedder())
    model = Reader(acts_for(sorted(domain.intents)), slot_kinds("home"), seed=0)
    return model, model.fit(fs)


def _feature_set(words, embedder):
    from hooks.learn.turn_features import FeatureSet

    n = len(words)
    text = embedder([w.text for w in words])
    return FeatureSet(
        [],
        np.zeros((n, 0), np.float32),
        text,
        text,
        np.full(n, -1),
        [(i, i + 1) for i in range(n)],
        [(f"s{i}", 1) for i in range(n)],
        tuple(words),
    )


@pytest.mark.models
def test_the_transcript_reader_tells_words_that_say_something_else_than_the_nlu(reader, tmp_path):
    from hooks.learn.transcript_classifier import NAMES, Reader
    from hooks.learn.turn_features import Embedder, TurnWords

    model, oof = reader
    assert oof.shape[1] == len(NAMES) and np.isfinite(oof).all()
    brightness = frozenset({"percentage", "room", "device"})
    said = "could you set the kitchen lights to forty percent"
    turns = (
        TurnWords(said, "SetBrightness", tagged=brightness, accepted=brightness),
        TurnWords(said, "GetTime", accepted=frozenset()),  # a wrong intent
        TurnWords(said, "SetBrightness", tagged=frozenset({"room", "device"}), accepted=brightness),  # dropped
        TurnWords("", "GetTime"),
    )  # nothing heard
    f = dict(zip(range(4), (dict(zip(NAMES, row)) for row in model.features(_feature_set(turns, Embedder())))))
    assert f[0]["reader_agrees"] == 1.0 and f[0]["reader_p_nlu_act"] > 0.5
    assert f[1]["reader_agrees"] == 0.0 and f[1]["reader_p_nlu_act"] < 0.1 and f[1]["reader_top_gain"] > 0.5
    # the words name a level no slot took: a slot the NLU dropped
    # (a probability learned from the domain's generated turns: 0.47 against 0.0 today)
    assert f[2]["reader_untagged_accepted"] > 0.25 > f[0]["reader_untagged_accepted"]
    assert not f[3]["reader_top_p"] and not any(f[3].values())
    # saved as plain arrays and read back the same
    model.save(tmp_path)
    again = Reader.load(tmp_path, {"acts": model.acts, "kinds": model.kinds})
    fs = _feature_set(turns, Embedder())
    assert np.array_equal(again.features(fs), model.features(fs))
    with pytest.raises(ValueError, match="wrong shape"):
        Reader.load(tmp_path, {"acts": model.acts[:-1], "kinds": model.kinds})


def test_bad_inputs_are_one_line_errors_with_exit_code_2(tmp_path, capsys):
    missing = tmp_path / "nope"
    code, _out, err = cli(capsys, "train", missing, "--out", tmp_path / "m")
    assert code == 2 and len(err) == 1 and str(missing) in err[0]
    code, _out, err = cli(capsys, "eval", missing, "--model", tmp_path)
    assert code == 2 and len(err) == 1 and "no model.json" in err[0]
    (tmp_path / "junk.jsonl").write_text("this is not json\n")
    (tmp_path / "model.json").write_text("{not json")
    code, _out, err = cli(capsys, "label", tmp_path / "junk.jsonl", "--model", tmp_path)
    assert code == 2 and len(err) == 1 and "model.json" in err[0] and "invalid JSON" in err[0]
    (tmp_path / "model.json").write_text(json.dumps({"format": "assistant.labeler/1", "kind": "pickle"}))
    code, _out, err = cli(capsys, "eval", tmp_path / "junk.jsonl", "--model", tmp_path)
    assert code == 2 and len(err) == 1 and "not a labeler model" in err[0]
    code, _out, err = cli(capsys, "train", tmp_path / "junk.jsonl", "--out", tmp_path / "m")
    assert code == 2 and len(err) == 1 and "junk.jsonl" in err[0] and "not JSON" in err[0]
    # traces without oracle labels cannot train anything
    unlabeled = tmp_path / "unlabeled.jsonl"
    unlabeled.write_text(
        json.dumps(
            {
                "schema": "assistant.trace/1",
                "session": "s",
                "turn": 1,
                "stage": None,
                "event": "turn_end",
                "labels": {"oracle": None, "predicted": None},
            }
        )
        + "\n"
    )
    code, _out, err = cli(capsys, "train", unlabeled, "--out", tmp_path / "m")
    assert code == 2 and len(err) == 1 and "no oracle-labeled turns" in err[0]
    code, _out, err = cli(capsys, "train", unlabeled, "--out", tmp_path / "junk.jsonl")
    assert code == 2 and len(err) == 1 and "not a folder" in err[0]


# the labels the models learn: what the oracle and the simulated users make true -------------


def test_false_wake_faults_only_wake_on_speech_nobody_addressed():
    from core.domain import load_domain
    from sim.faults import FaultInjector, FaultSpec

    injector = FaultInjector(FaultSpec({"false_wake": 1.0}), load_domain("home"), seed=1)
    ctx = type("Ctx", (), {"session": "s", "turn": 1})()
    for spoken, wakes in (("Alexa, turn on the lights", False), ("and now a word from our sponsors", True)):
        utt = Utterance(audio=Audio.silence(0.1), spoken=spoken)
        asleep = replace(utt, endpoint="no_wake", audio=Audio(np.zeros(0, np.float32), 16000))
        out = injector.after("wake", utt, asleep, ctx)
        assert out.heard is wakes
        # what it wakes on is the speech itself (audio fidelity: the samples the ASR must hear)
        assert len(out.audio.samples) == (len(utt.audio.samples) if wakes else 0)


def test_users_never_ask_for_another_kind_of_title_than_they_want():
    from core.domain import load_domain
    from sim.user import PERSONAS, SimulatedUser

    domain = load_domain("home")
    user = SimulatedUser(domain, PERSONAS[0], random.Random(0), context_default=None)
    assert not user._words_agree("play the movie {title}", {"title": "dune_audiobook"})
    assert not user._words_agree("watch {title}", {"title": "the_martian_audiobook"})
    assert user._words_agree("play the audiobook {title}", {"title": "dune_audiobook"})
    assert user._words_agree("play {title}", {"title": "dune_movie"})


@pytest.mark.models
def test_relative_dates_in_the_gold_follow_the_session_clock(assistant):
    import datetime as dt

    from core.normalize import normalize
    from sim.user import PERSONAS, SimulatedUser

    session = assistant.new_session("clock", start_time="2026-10-07T09:00:00")
    user = SimulatedUser(assistant.domain, PERSONAS[0], random.Random(3), assistant.context_default)
    dated = []
    for _ in range(400):
        goal = user.new_goal(session.context(1))
        if goal.intent in ("SetAlarm", "GetWeather") and "date" in goal.surfaces:
            dated.append(goal)
    assert dated
    for goal in dated:
        assert goal.args["date"] == normalize("date", goal.surfaces["date"], dt.datetime(2026, 10, 7, 9, 0))


@pytest.mark.models
def test_the_first_irrecoverable_failure_is_the_failure_point(assistant):
    from assistant.runner import Assistant
    from core.session import Gold, Turn
    from hooks.bus import HookBus
    from sim.faults import FaultInjector, FaultSpec
    from sim.oracle import OracleLabeler
    from tests.test_oracle import HeardAs

    gold = Gold(
        transcript="turn on the kitchen lights",
        intent="TurnOn",
        entities={"device": "light", "room": "kitchen"},
        act="TurnOn",
        wake=True,
        spans=(("room", "kitchen", "kitchen"), ("device", "lights", "light")),
    )

    def label(heard, faults):
        a = Assistant(assistant.config, HookBus())
        for name in ("nlu", "resolve", "respond"):
            a.stages.override(name, assistant.stages[name])
        a.stages.override("asr", HeardAs(heard))
        a.bus.add_interceptor(FaultInjector(FaultSpec.parse(faults), a.domain, seed=5))
        a.bus.add_interceptor(
            OracleLabeler(
                a, replay_faults=lambda kinds: FaultInjector(FaultSpec({k: 1.0 for k in kinds}), a.domain, seed=5)
            )
        )
        s = a.new_session("oracle")
        turn = Turn(
            session=s.id,
            index=1,
            start_s=1.0,
            gold=gold,
            utterance=Utterance(audio=Audio.silence(0.5), spoken=gold.transcript),
        )
        return a.run_turn(s, turn, start="asr", stop="respond").labels["oracle"]["failure_point"]

    # an NLU fault on words the NLU would have got right: the NLU failed
    assert label("Turn on a kitchen light.", "nlu=1") == "nlu"
    # the same fault after the recognizer already lost the request: the recognizer failed first
    assert label("Turn off the kitchen lights.", "nlu=1") == "asr"
    # and an API error after it: still the recognizer (the prefix rule alone would say result)
    assert label("Turn off the kitchen lights.", "result=1") == "asr"
    assert label("turn on the kitchen lights", "result=1") == "result"

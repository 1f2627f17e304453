"""The simulator: reproducible, labeled, schema-valid traces in both fidelities."""

from __future__ import annotations

import json
import random

import pytest

from core.errors import UserError
from hooks import trace_reader as traces
from sim.asr_errors import AsrErrorModel, align
from sim.faults import FaultSpec
from sim.simulator import SimOptions, run

pytestmark = pytest.mark.models


def key_fields(folder):
    rows = []
    for r in traces.turn_ends([folder]):
        rows.append(
            (
                r["session"],
                r["turn"],
                r["transcript"],
                r["intent"],
                json.dumps(r["entities"], sort_keys=True),
                json.dumps(r["labels"], sort_keys=True),
                r["reply"],
            )
        )
    return rows


MEASURED = {"t", "time", "duration_ms", "ms"}  # this machine's clocks; everything else is the seed's


def _unmeasured(folder):
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in MEASURED}
        return [strip(v) for v in x] if isinstance(x, list) else x

    return sorted(json.dumps(strip(r), sort_keys=True) for r in traces.iter_records([folder]))


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, config):
    out = tmp_path_factory.mktemp("sim-text")
    summary = run(config, SimOptions(sessions=12, seed=3, fidelity="text", out=str(out), workers=1))
    return out, summary


def test_text_fidelity_writes_labeled_valid_traces(text_run):
    out, summary = text_run
    assert summary["sessions"] == 12 and summary["turns"] >= 24
    assert json.loads((out / "run.json").read_text())["turns"] == summary["turns"]
    ends = traces.turn_ends([out])
    assert len(ends) == summary["turns"]
    for rec in traces.iter_records([out]):
        assert traces.validation_errors(rec) == []
    labeled = [r for r in ends if r["labels"]["oracle"]]
    assert len(labeled) == len(ends)
    assert {r["labels"]["oracle"]["failure_point"] for r in labeled} >= {"correct", "asr"}
    assert all(
        r["labels"]["oracle"]["defect"] == (r["labels"]["oracle"]["failure_point"] != "correct") for r in labeled
    )
    # text fidelity still carries ASR confidence signals, like audio does
    asr = [r["stages"]["asr"]["signals"] for r in ends if "asr" in r["stages"]]
    assert asr and all(s["avg_logprob"] is not None and s["mean_word_prob"] is not None for s in asr if s["words"])


def test_same_seed_same_sessions_whatever_the_workers(text_run, tmp_path, config):
    out, _summary = text_run
    again = tmp_path / "again"
    run(config, SimOptions(sessions=12, seed=3, fidelity="text", out=str(again), workers=2))
    assert key_fields(again) == key_fields(out)
    assert _unmeasured(again) == _unmeasured(out)  # the whole traces, but for measured times
    other = tmp_path / "other-seed"
    run(config, SimOptions(sessions=3, seed=4, fidelity="text", out=str(other), workers=1))
    assert key_fields(other)[:3] != key_fields(out)[:3]


def test_audio_fidelity_runs_through_the_real_models(tmp_path, config):
    summary = run(
        config,
        SimOptions(
            sessions=1,
            seed=11,
            fidelity="audio",
            out=str(tmp_path),
            workers=1,
            goals=(1, 1),
            conditions=("clean",),
            voices=("festival",),
            faults="",
        ),
    )
    ends = traces.turn_ends([tmp_path])
    assert summary["turns"] == len(ends) >= 1
    first = ends[0]
    assert first["stages"]["wake"]["output"]["condition"] == "clean"
    assert "asr" in first["ms"] and first["stages"]["asr"]["output"]["model"] == "tiny.en"
    assert first["labels"]["oracle"]["failure_point"] in ("wake", "asr", "nlu", "resolve", "result", "correct")
    assert (tmp_path / first["audio"]["utterance"]).is_file()


def test_ray_backend_on_a_local_ray_gives_the_same_sessions(text_run, tmp_path, config):
    # Ray 2.x removed local_mode; ray.init() without an address starts a single-node Ray here.
    pytest.importorskip("ray")
    out, _summary = text_run
    run(config, SimOptions(sessions=3, seed=3, fidelity="text", out=str(tmp_path), workers=1, backend="ray"))
    assert key_fields(tmp_path) == [row for row in key_fields(out) if row[0] in {f"sim-s3-{i:05d}" for i in range(3)}]


def test_options_are_validated():
    with pytest.raises(UserError, match="--sessions"):
        SimOptions(sessions=0).validate()
    with pytest.raises(UserError, match="--fidelity"):
        SimOptions(fidelity="video").validate()
    with pytest.raises(UserError, match="STAGE=RATE"):
        FaultSpec.parse("asr=0.1,bogus=0.2")
    with pytest.raises(UserError, match="within"):
        FaultSpec.parse("asr=1.5")


def test_alignment_and_error_model_reproduce_error_rates(tmp_path):
    assert align(["a", "b", "c"], ["a", "x", "c", "d"]) == [("a", "a"), ("b", "x"), ("c", "c"), (None, "d")]
    rng = random.Random(0)
    words = ["turn", "on", "the", "kitchen", "lights", "set", "a", "timer", "for", "ten", "minutes"]
    samples = []
    for _ in range(600):
        ref = rng.sample(words, 5)
        hyp = [("light" if w == "lights" else w) for w in ref if not (w == "the" and rng.random() < 0.5)]
        samples.append(("noisy", " ".join(ref), {"text": " ".join(hyp), "words": [], "avg_logprob": -0.5}))
    model = AsrErrorModel.fit(samples, source="synthetic")
    path = model.save(tmp_path / "m.json")
    loaded = AsrErrorModel.load(path)
    fitted = loaded.conditions["noisy"]["wer"]
    lights = loaded.conditions["noisy"]["confusions"]["lights"]
    assert lights == model.conditions["noisy"]["confusions"]["lights"]
    assert lights["light"] >= 0.9 * sum(lights.values())
    errors = total = 0
    # the fitted rate holds over speakers (each has an accent: words of their own misheard more)
    for i, ref in enumerate(s[1] for s in samples[:300]):
        hyp = loaded.corrupt(ref, "noisy", rng, voice=f"speaker{i}").text
        errors += sum(1 for a, b in align(ref.split(), hyp.split()) if a != b)
        total += len(ref.split())
    assert errors / total == pytest.approx(fitted, rel=0.2)


def test_a_speaker_is_misheard_the_same_way_again_and_the_mean_rate_holds():
    import dataclasses

    from sim.asr_errors import ACCENT_SHARE, DEFAULT_MODEL, speaker_accent

    fitted = AsrErrorModel.load(DEFAULT_MODEL)
    words = ["turn", "on", "the", "kitchen", "lights", "set", "a", "timer", "for", "ten", "minutes", "play", "jazz"]
    text = " ".join(words)

    def listen(model, condition):
        rng = random.Random(3)
        heard: dict[tuple[str, str], list[str]] = {}
        errors = total = 0
        for s in range(300):
            voice = f"flite:slt:r1.{s:03d}"
            for _ in range(6):
                for ref, hyp in align(words, model.corrupt(text, condition, rng, voice=voice).text.split()):
                    if ref is not None:
                        total += 1
                        if hyp != ref:
                            errors += 1
                            heard.setdefault((voice, ref), []).append(hyp or "")
        return errors / total, heard

    # over speakers a word keeps the condition's rate (scaled by the voice), even where it is high
    c = fitted.condition("pink@10dB")
    base = c["sub_rate"] + c["del_rate"]
    expected = sum(
        min(
            0.95,
            fitted.voice_factor("flite:slt")
            * (sum((c["confusions"].get(w) or {}).values()) + base)
            / (c["ref_counts"].get(w, 0) + 1),
        )
        for w in words
    ) / len(words)
    rate, _ = listen(fitted, "pink@10dB")
    assert rate == pytest.approx(expected, rel=0.15)
    # where errors are rare (the realistic profile), they gather on each speaker's hard words,
    # and a word a speaker gets wrong twice is mostly wrong in the same way
    rate, heard = listen(dataclasses.replace(fitted, scale={"asr": 0.114, "wake": 1.0}), "clean")
    n_errors = sum(len(h) for h in heard.values())
    on_hard = sum(len(h) for (voice, word), h in heard.items() if speaker_accent(voice, word)[0])
    assert n_errors > 100 and on_hard / n_errors > 2 * ACCENT_SHARE
    repeated = [h for h in heard.values() if len(h) >= 2]
    assert len(repeated) > 20
    assert sum(max(h.count(x) for x in h) / len(h) for h in repeated) / len(repeated) > 0.7


def test_sounds_like_finds_what_a_scan_of_the_whole_lexicon_finds():
    import jellyfish
    from rapidfuzz import fuzz

    from sim.asr_errors import DEFAULT_MODEL, SoundsLike

    lexicon = AsrErrorModel.load(DEFAULT_MODEL).lexicon()
    near = SoundsLike(lexicon)
    words = sorted(w for w in lexicon if w.isalpha() and len(w) > 1)
    for word in ("kitchen", "lights", "timer", "beyonce", "a", "seattle", "zzz", "x2"):
        code = jellyfish.metaphone(word) if word.isalpha() else word
        scan = [
            w
            for w in words
            if w != word
            and jellyfish.levenshtein_distance(jellyfish.metaphone(w), code) <= 1
            and fuzz.ratio(w, word) >= 50
        ]
        assert near(word) == scan[:12], word


def test_a_voice_heard_worse_gets_a_factor_that_text_fidelity_applies(tmp_path):
    rng = random.Random(1)
    words = ["turn", "on", "the", "kitchen", "lights", "set", "a", "timer", "for", "ten", "minutes"]
    samples, wake = [], []
    for i in range(800):
        voice = "flite:kal:r1.1" if i % 2 else "festival:cmu_us_slt_arctic_hts:r0.9"
        p_drop = 0.3 if voice.startswith("flite") else 0.1
        ref = rng.sample(words, 5)
        hyp = [w for w in ref if rng.random() >= p_drop]
        samples.append(("clean", " ".join(ref), {"text": " ".join(hyp), "words": []}, voice))
        wake.append(("clean", True, rng.random() >= (0.4 if voice.startswith("flite") else 0.1), 0.9, voice))
    model = AsrErrorModel.load(AsrErrorModel.fit(samples, wake, source="synthetic").save(tmp_path / "m.json"))
    assert model.voice_bases() == ("festival:cmu_us_slt_arctic_hts", "flite:kal")
    kal, slt = model.voice_factor("flite:kal:r0.8"), model.voice_factor("festival:cmu_us_slt_arctic_hts")
    assert kal == pytest.approx(1.5, rel=0.15) and slt == pytest.approx(0.5, rel=0.2)
    assert model.voice_factor("espeak-ng:en") == 1.0  # never heard: the condition's rate
    assert (
        model.wake("clean", "flite:kal")["false_reject"]
        > 2 * model.wake("clean", "festival:cmu_us_slt_arctic_hts")["false_reject"]
    )

    def wer(voice):
        errors = total = 0
        for _c, ref, _t, _v in samples[:400]:
            hyp = model.corrupt(ref, "clean", rng, voice=voice).text
            errors += sum(1 for a, b in align(ref.split(), hyp.split()) if a != b)
            total += len(ref.split())
        return errors / total

    assert wer("flite:kal") == pytest.approx(0.3, rel=0.2)
    assert wer("festival:cmu_us_slt_arctic_hts") == pytest.approx(0.1, rel=0.3)


def test_bad_error_model_files_are_named(tmp_path):
    from core.errors import InputError

    bad = tmp_path / "x.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="format"):
        AsrErrorModel.load(bad)
    with pytest.raises(InputError, match="no such ASR error model"):
        AsrErrorModel.load(tmp_path / "missing.json")


def test_report_renders_plots_and_a_page(text_run, tmp_path):
    from sim.report import render

    out, _ = text_run
    page = render([out], tmp_path / "report")
    assert page.is_file() and "Failure points" in page.read_text()
    pngs = {p.name for p in (tmp_path / "report").glob("*.png")}
    assert {"failure_points.png", "wer_by_condition.png", "stage_latency.png", "defect_rate.png"} <= pngs


def test_the_parent_trains_a_new_model_but_leaves_a_cached_one_to_the_workers(config, assistant, tmp_path, monkeypatch):
    """Workers load the NLU themselves; the parent only makes sure it is trained (loading a
    cached model there cost seconds before any session started)."""
    from core.config import Config
    from sim import simulator
    from stages.nlu import stage

    assistant.stages["nlu"]  # the home model is in the test cache
    loaded = []
    monkeypatch.setattr(stage, "configured_model", lambda domain, cfg, progress=None: loaded.append(domain.name))
    opts = SimOptions(sessions=1, out=str(tmp_path / "run"))
    simulator._prepare(config, opts)
    assert loaded == []
    elsewhere = Config.load(path=None, overrides={"nlu.cache_dir": str(tmp_path / "empty-cache")})
    simulator._prepare(elsewhere, opts)
    assert loaded == ["home"]


def test_a_time_said_relative_to_now_is_gold_at_the_clock_of_the_turn_that_says_it():
    """The user draws a goal before the turn that says it: "two hours from now" must mean two
    hours from when it is said, as the NLU reads it on the turn's clock."""
    import datetime as dt
    from types import SimpleNamespace

    from core.domain import load_domain
    from core.session import Gold
    from sim.simulator import SessionSimulator

    sim = SimpleNamespace(domain=load_domain("home"))
    gold = Gold(
        transcript="set an alarm for two hours from now",
        intent="SetAlarm",
        slots={"time": "10:00"},
        spans=(("time", "two hours from now", "10:00"),),
    )
    later = SessionSimulator._reclocked(sim, gold, dt.datetime(2026, 3, 14, 8, 1, 30))
    assert dict(later.slots) == {"time": "10:01"} and later.spans == (("time", "two hours from now", "10:01"),)
    fixed = Gold(
        transcript="wake me at seven", intent="SetAlarm", slots={"time": "07:00"}, spans=(("time", "seven", "07:00"),)
    )
    assert SessionSimulator._reclocked(sim, fixed, dt.datetime(2026, 3, 14, 8, 1, 30)) is fixed

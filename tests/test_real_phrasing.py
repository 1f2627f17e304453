"""Understanding real people: stratified generation from the spec, the real-command corpus and
its evaluation, and the home NLU on real commands it never trained on (SLURP devel, dev part)."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.domain import OOD_INTENT, load_domain
from core.errors import InputError
from core.utterances import UtteranceGenerator, all_alternatives, expansion_count
from stages.nlu.corpora import CorpusItem, read_domain_corpus
from stages.nlu.evaluate import evaluate_commands, slot_matches
from tests.conftest import DATA, ROOT, say
from tests.test_domain import MINIMAL, write

CORPUS = ROOT / "core" / "domains" / "slurp_home.jsonl"
DEV_SAMPLE = DATA / "slurp-home-dev-sample.jsonl"


# generation -------------------------------------------------------------------------------


def test_nested_alternatives_expand_in_order_and_count():
    t = "[turn [on, off], switch] the {device}[ please, ]"
    assert expansion_count(t) == 6
    assert all_alternatives(t) == [
        "turn on the {device} please",
        "turn on the {device}",
        "turn off the {device} please",
        "turn off the {device}",
        "switch the {device} please",
        "switch the {device}",
    ]
    spread = all_alternatives(t, 3)
    assert len(spread) == 3 and spread[0] != spread[1] != spread[2]


def _grammar_domain(tmp_path, samples: list[str]):
    spec = {
        "domain": "coffee_test",
        "entities": {
            "drink": {"literal": True, "values": ["latte", "mocha", "espresso", "americano"]},
            "size": ["small", "medium", "large"],
        },
        "intents": {
            "Order": {
                "slots": {"drink": {"type": "drink"}, "size": {"type": "size"}},
                "samples": samples,
                "api": "noop",
            }
        },
        "apis": {"noop": {"create": {"in": "orders"}}},
        "world": {"orders": []},
    }
    path = tmp_path / "coffee_test.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return load_domain(path)


def test_generation_covers_every_template_not_just_the_first(tmp_path):
    # 81 templates: the old generator's cap taught only the first few of them.
    samples = [f"[i want, i'd like, give me] [a, ] {{size}} {{drink}} number {n}" for n in range(81)]
    d = _grammar_domain(tmp_path, samples)
    examples = UtteranceGenerator(d).examples(random.Random(0), per_intent=160, include_ood=False, max_per_intent=600)
    orders = [e.text for e in examples if e.intent == "Order"]
    seen = {int(re.search(r"number (\d+)", t).group(1)) for t in orders}
    assert seen == set(range(81))
    drinks = {e.values["drink"] for e in examples if e.intent == "Order"}
    assert drinks == {"latte", "mocha", "espresso", "americano"}  # values dealt in turn


def test_a_cap_on_generation_is_logged(tmp_path, caplog):
    samples = ["[a, b, c, d, e, f, g, h] [a, b, c, d, e, f, g, h] [a, b, c, d, e, f, g, h] {drink}"]
    d = _grammar_domain(tmp_path, samples)
    with caplog.at_level(logging.INFO, logger="core.utterances"):
        examples = UtteranceGenerator(d).examples(
            random.Random(0), per_intent=50, include_ood=False, max_per_intent=100
        )
    assert len([e for e in examples if e.intent == "Order"]) == 100
    assert any("512 sentences; generating 100" in r.getMessage() for r in caplog.records)


def test_unlisted_names_train_slots_by_their_context():
    d = load_domain("home")
    assert "artist" in d.training_phrases and len(d.training_phrases["artist"]) > 100
    gen = UtteranceGenerator(d, unlisted_p=1.0)
    ex = gen.render(d.intents["PlayMusic"], "play {artist}", random.Random(1))
    name = ex.slot_text("artist")
    assert name in d.training_phrases["artist"] and ex.values["artist"] == name
    # simulated users (unlisted_p 0) only say catalog values
    ex = UtteranceGenerator(d).render(d.intents["PlayMusic"], "play {artist}", random.Random(1))
    assert ex.values["artist"] in {v.id for v in d.catalogs["artist"].values}


# the corpus and its judge --------------------------------------------------------------------


def test_the_tune_half_tool_applies_every_setting_it_is_given():
    """Design choices are measured with tools/tune_halves.py: a second ``--set`` once silently
    replaced the first, so a run measured something else than it said."""
    from stages.nlu.recipes import SPEC_CONFIG
    from tests.conftest import tool as tool_module

    tool = tool_module("tune_halves")
    args = tool.parser().parse_args(["--out", "x", "--set", "epochs=2", "--set", "dropout=0.2", "seed=4"])
    config = tool.with_settings(SPEC_CONFIG, args.set)
    assert (config.epochs, config.dropout, config.seed) == (2, 0.2, 4)
    with pytest.raises(ValueError, match="no training setting 'epoch'"):
        tool.with_settings(SPEC_CONFIG, ["epoch=2"])


def test_the_committed_corpus_keeps_dev_apart_from_training():
    d = load_domain("home")
    assert [(Path(c.file).name, c.part) for c in d.training_corpora] == [
        ("slurp_home.jsonl", "tune"),
        ("snips_home.jsonl", None),
    ]
    tune = read_domain_corpus(CORPUS, "tune")
    dev = read_domain_corpus(CORPUS, "dev")
    assert len(tune) + len(dev) == 2033
    assert not {i.id for i in tune} & {i.id for i in dev}
    kinds = {"in": 0, "ood": 0, "near": 0}
    for i in dev:
        kinds["ood" if i.intent == OOD_INTENT else "near" if i.intent is None else "in"] += 1
        assert i.intent in (None, OOD_INTENT) or i.intent in d.intents
    assert kinds["in"] > 200 and kinds["ood"] > 500 and kinds["near"] > 150
    # no dev command is among the out-of-domain sentences the NLU trains on
    trained = {s.lower() for s in d.out_of_domain}
    assert not [i.text for i in dev if i.text.lower() in trained]


def test_the_snips_commands_trained_on_are_none_the_simulator_says():
    """The home NLU trains on SNIPS music and weather commands; the simulated users speak
    other SNIPS commands of the same files (home_sim_phrasings.jsonl): never the same one."""
    d = load_domain("home")
    snips = next(c for c in d.training_corpora if Path(c.file).name == "snips_home.jsonl")
    assert (snips.repeat, snips.refills) == (1, 0)
    items = read_domain_corpus(snips.file)
    assert len(items) == 1200 and {i.intent for i in items} == {"PlayMusic", "GetWeather"}
    assert {label for i in items for _a, _b, label in i.spans} <= {"artist", "song", "genre", "place", "date"}
    from sim.phrasing import PhrasingBank

    bank = PhrasingBank.for_domain(d)  # what the simulated users are built from, as the simulator reads it
    sim_ids = {p.id for phrasings in bank.by_intent.values() for p in phrasings}
    assert sum(i.startswith("snips:") for i in sim_ids) == 800
    assert not {i.id for i in items} & sim_ids


def test_a_corpus_says_how_much_it_counts(tmp_path):
    """``repeat``: how many times each command counts; ``refills``: how many times more it is
    said with other slot values. Left out, the trainer's defaults."""
    from stages.nlu import recipes

    (tmp_path / "few.jsonl").write_text(
        json.dumps({"text": "paint it red right away", "intent": "Paint", "spans": [[9, 12, "color"]]}) + "\n"
    )
    spec = MINIMAL + "training_examples:\n  - {file: few.jsonl, repeat: 2, refills: 1}\n"
    d = load_domain(write(tmp_path, spec))
    said = [ex.text for ex in recipes.spec_training_examples(d)]
    assert said.count("paint it red right away") >= 2
    assert sum(t.endswith(" right away") for t in said) == 3  # + one refill
    d = load_domain(write(tmp_path, MINIMAL + "training_examples: [few.jsonl]\n"))
    said = [ex.text for ex in recipes.spec_training_examples(d)]
    assert sum(t.endswith(" right away") for t in said) == recipes.REAL_REPEAT + recipes.REFILLS
    for bad, field in (("repeat: 0", "repeat"), ("refills: -1", "refills"), ("repeat: two", "repeat")):
        path = write(tmp_path, MINIMAL + f"training_examples:\n  - {{file: few.jsonl, {bad}}}\n")
        with pytest.raises(InputError) as err:
            load_domain(path)
        assert f"training_examples[0].{field}" in str(err.value) and str(path) in str(err.value)


def test_corpus_errors_name_the_line(tmp_path):
    from core.errors import InputError

    bad = tmp_path / "c.jsonl"
    bad.write_text('{"text": "turn on the lights", "intent": "TurnOn"}\n{"text": 5, "intent": "TurnOn"}\n')
    with pytest.raises(InputError, match="line 2"):
        read_domain_corpus(bad)
    bad.write_text('{"text": "hi", "intent": "TurnOn", "spans": [[0, 9, "room"]]}\n')
    with pytest.raises(InputError, match=r"spans\[0\]"):
        read_domain_corpus(bad)


def test_slot_words_match_as_a_person_would():
    assert slot_matches("six", "six in the morning")
    assert slot_matches("the kitchen", "kitchen")
    assert slot_matches("new york city", "new york")
    assert not slot_matches("new york", "york")
    assert not slot_matches("queen", "bohemian rhapsody")


def test_evaluation_counts_understood_declined_and_near(assistant):
    from core.records import Interpretation, Slot

    def interpret(text):
        if text == "play queen":
            return Interpretation(
                text=text,
                domain="home",
                intent="PlayMusic",
                confidence=0.9,
                slots=(Slot(name="artist", text="queen", value="queen", type="artist", start=5, end=10),),
            )
        return Interpretation(text=text, domain="home", intent=None, confidence=0.2, out_of_domain=True)

    items = [
        CorpusItem("1", "play queen", "PlayMusic", ((5, 10, "artist"),)),
        CorpusItem("2", "play adele", "PlayMusic", ((5, 10, "artist"),)),
        CorpusItem("3", "tell me a joke", OOD_INTENT, ()),
        CorpusItem("4", "what alarms do i have", None, ()),
    ]
    r = evaluate_commands(interpret, items)
    assert r["in_domain"] == {"n": 2, "understood": 0.5, "intent_accuracy": 0.5}
    assert r["out_of_domain"] == {"n": 1, "declined": 1.0}
    assert r["near_domain"] == {"n": 1, "declined": 1.0}
    assert [e["id"] for e in r["errors"]] == ["2"]


# the home NLU on real people's words -----------------------------------------------------------


@pytest.mark.models
def test_home_nlu_on_real_commands_it_never_saw(assistant):
    """A sample of the dev part (never trained or tuned on): a regression floor well under the
    measured figures (docs/nlu.md "Language understanding"), so that a change that loses real
    phrasing fails here."""
    items = read_domain_corpus(DEV_SAMPLE)
    nlu = assistant.stages["nlu"]
    r = evaluate_commands(lambda t: nlu.interpret(t), items)
    assert r["in_domain"]["intent_accuracy"] >= 0.80, r["errors"]
    assert r["in_domain"]["understood"] >= 0.78, r["errors"]  # 0.85 measured; the spaCy model: 0.75
    assert r["out_of_domain"]["declined"] >= 0.90, r["errors"]


@pytest.mark.models
@pytest.mark.parametrize(
    "text, intent",
    [
        ("make the lights brighter", "SetBrightness"),  # not "open the garage"
        ("turn the lights down", "SetBrightness"),  # not "close the garage door"
        ("play something by david bowie", "PlayMusic"),  # an artist the catalog does not list
        ("do i need an umbrella tomorrow", "GetWeather"),
    ],
)
def test_real_phrasings_are_not_declined(assistant, fresh, text, intent):
    t = say(assistant, fresh(), text, stop="nlu")
    assert t.interpretation.intent == intent, t.interpretation.nbest[:3]


@pytest.mark.parametrize(
    "text, said",
    [
        ("olly death metal now", "death metal now"),  # SLURP's speakers call the assistant Olly
        ("Hey Google, what time is it", "what time is it"),
        ("siri, play my pop playlist", "play my pop playlist"),
        ("google translate", "google translate"),  # a verb or a thing, not an address
        ("computer science news", "computer science news"),
        ("google, play jazz", "play jazz"),  # ... unless set off by a comma
        ("alexa", "alexa"),  # nothing would be left
        ("alexander the great", "alexander the great"),
    ],
)
def test_a_leading_address_is_not_part_of_the_request(text, said):
    from stages.nlu.text import without_address

    assert without_address(text) == said
    assert without_address(text, names=()) == text


def test_the_stage_gives_the_model_the_request_without_its_address():
    from types import SimpleNamespace

    from stages.nlu.models import Prediction
    from stages.nlu.stage import NluOptions, NluStage

    heard = []

    def predict(text):
        heard.append(text)
        return Prediction(text=text.lower(), intents=(("GetTime", 0.9), (OOD_INTENT, 0.1)), spans=())

    model = SimpleNamespace(predict=predict, span_typer=None, name="fake")
    stage = NluStage(load_domain("home"), model=model, options=NluOptions())
    assert stage.interpret("Alexa, what time is it").intent == "GetTime"
    NluStage(load_domain("home"), model=model, options=NluOptions(assistant_names=())).interpret("alexa what time")
    assert heard == ["what time is it", "alexa what time"]


def test_a_request_said_as_a_slot_free_template_takes_its_intent():
    """A fine-tuned model once ranked "no" as Affirm (0.47 against 0.42) and the door it was
    asked about got unlocked: a reply said word for word as one intent's template is that intent."""
    from types import SimpleNamespace

    from stages.nlu.models import Prediction
    from stages.nlu.stage import NluOptions, NluStage

    def predict(text):
        return Prediction(text=text.lower(), intents=(("Affirm", 0.6), ("Deny", 0.3), (OOD_INTENT, 0.1)), spans=())

    model = SimpleNamespace(predict=predict, span_typer=None, name="fake")
    stage = NluStage(load_domain("home"), model=model, options=NluOptions())
    for text in ("no", "No.", "nope", "no thanks", "cancel that please"):
        got = stage.interpret(text)
        assert got.intent == "Deny" and got.confidence >= 0.5, (text, got)
    assert stage.interpret("yes").intent == "Affirm"
    assert stage.interpret("no i don't think so").intent == "Affirm"  # not a template: the model decides
    assert (
        NluStage(load_domain("home"), model=model, options=NluOptions(grammar=False)).interpret("no").intent == "Affirm"
    )


@pytest.mark.models
def test_an_unknown_artist_is_not_found_rather_than_out_of_domain(assistant, fresh):
    t = say(assistant, fresh(), "play some music by the rolling stones")
    assert t.outcome.intent == "PlayMusic" and t.outcome.reply_type != "out_of_domain", t.outcome


@pytest.mark.models
def test_cli_reports_a_corpus(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant",
            "nlu",
            "eval",
            "home",
            "--corpus",
            str(DEV_SAMPLE),
            "--json",
            "--errors",
            "3",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["in_domain"]["n"] + r["out_of_domain"]["n"] + r["near_domain"]["n"] == len(read_domain_corpus(DEV_SAMPLE))
    assert len(r["errors"]) <= 3 and set(r["per_intent"]) <= set(load_domain("home").intents)
    bad = subprocess.run(
        [sys.executable, "-m", "assistant", "nlu", "eval", "home", "--corpus", str(tmp_path / "none.jsonl")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert bad.returncode == 2 and "none.jsonl" in bad.stderr


# the spec's templates as a grammar -----------------------------------------------------------


def test_templates_place_slots_for_names_never_seen():
    from stages.nlu.grammar import TemplateGrammar

    g = TemplateGrammar(load_domain("home"))
    p = g.parse("PlayMusic", "olly play hey jude by the beatles now")
    said = "olly play hey jude by the beatles now"
    assert [(said[a:b], s) for a, b, s in p.spans] == [("hey jude", "song"), ("the beatles", "artist")]
    # a listed name decides between "play {song}" and "play {artist}"
    p = g.parse("PlayMusic", "play queen")
    assert [s for _a, _b, s in p.spans] == ["artist"]
    # a builtin slot must be nothing but its value: "tomorrow in miami" is no date
    assert g.parse("GetWeather", "will it rain tomorrow in miami") is None
    assert g.parse("GetWeather", "will it rain tomorrow").spans == ((13, 21, "date"),)


def test_a_name_the_tagger_found_inside_a_template_slot_keeps_its_kind():
    from stages.nlu.stage import NluStage

    said = "play michael buble save the last dance"
    own = {"song", "artist", "genre"}
    at_edge = NluStage._name_at_edge(said, 5, len(said), "song", [(5, 18, "artist")], own)
    assert [(said[a:b], s) for a, b, s in at_edge] == [("michael buble", "artist"), ("save the last dance", "song")]
    at_end = NluStage._name_at_edge(said, 5, len(said), "artist", [(19, len(said), "song")], own)
    assert [(said[a:b], s) for a, b, s in at_end] == [("michael buble", "artist"), ("save the last dance", "song")]
    joined = "let me hear under pressure from queen"
    cut = NluStage._name_at_edge(joined, 12, len(joined), "song", [(32, 37, "artist")], own)
    assert [(joined[a:b], s) for a, b, s in cut] == [("under pressure", "song"), ("queen", "artist")]
    # a name in the middle, one of the template's own kind, or one the intent does not take: the template's slot
    for spans in ([(19, 27, "artist")], [(5, 18, "song")], [(5, 18, "place")]):
        assert NluStage._name_at_edge(said, 5, len(said), "song", spans, own) == [(5, len(said), "song")]


def test_a_strict_grammar_spells_its_literal_catalogs_only():
    from stages.nlu.grammar import TemplateGrammar

    d = load_domain("coffee")
    assert d.grammar == "strict"
    g = TemplateGrammar(d)
    assert g.spells("Can I have a medium double shot Americano?")
    assert not g.spells("Please may I have noodle soup with milk and bread.")
    p = g.parse("orderBeverage", "i want a large latte with some milk")
    said = "i want a large latte with some milk"
    assert {s: said[a:b] for a, b, s in p.spans} == {"size": "large", "beverage": "latte", "milkAmount": "some milk"}


def test_the_recognizer_prefers_what_a_strict_grammar_spells():
    from types import SimpleNamespace

    from stages.asr import DomainRescorer

    texts = ["can i have an ice to mocha", "can i have a medium latte"]
    result = SimpleNamespace(
        sequences_ids=[[0], [1]], sequences=[["a"], ["b"]], scores=[-0.30, -0.45], no_speech_prob=0.0
    )
    model = SimpleNamespace(generate=lambda *a, **k: [result])
    tokenizer = SimpleNamespace(decode=lambda ids: texts[ids[0]])
    vocabulary = frozenset("can i have a an medium latte mocha".split())
    plain = DomainRescorer(model, tokenizer, vocabulary, weight=0.0)
    plain.generate(None, [[1]], beam_size=2)
    assert plain.last_choice == 0
    grammar = DomainRescorer(
        model, tokenizer, vocabulary, weight=0.0, spelled=lambda t: t.endswith("latte"), grammar_weight=0.5
    )
    grammar.generate(None, [[1]], beam_size=2)
    assert grammar.last_choice == 1


def test_digits_say_a_catalogs_number_words():
    """Whisper writes "12-ounce" and "2 sugars"; the catalog says "twelve ounce", "two sugars"."""
    from stages.nlu.grammar import TemplateGrammar
    from stages.nlu.text import numbered_phrases, spelled_numbers

    d = load_domain("coffee")
    phrases = numbered_phrases(d)
    assert {"twelve ounce", "two sugars", "one sugar"} <= phrases
    assert spelled_numbers("Can I get a 12-ounce latte with 2 sugars?", phrases) == (
        "Can I get a twelve-ounce latte with two sugars?"
    )
    assert spelled_numbers("a 20oz mocha", phrases) == "a twenty ounce mocha"
    # numbers that make no catalog phrase stay as written
    for text in ("set 5 timers at 7:30", "a 100 ounce latte", "2.5 sugars"):
        assert spelled_numbers(text, phrases) == text
    assert spelled_numbers("a 12 ounce latte", frozenset()) == "a 12 ounce latte"
    assert not numbered_phrases(load_domain("home"))
    g = TemplateGrammar(d)
    assert g.spells("Can I have a 12-ounce latte?") and g.spells("can i have a twelve ounce latte")


def test_hesitations_inside_an_order_do_not_break_a_strict_grammar():
    from core.fillers import without_hesitations
    from stages.nlu.grammar import TemplateGrammar

    assert without_hesitations("Can I have a, uh, large latte?") == "Can I have a large latte?"
    assert without_hesitations("Summer umbrella, hmm") == "Summer umbrella"  # words keep their "um"
    assert without_hesitations("Um.") == "Um."  # nothing else said: unchanged
    g = TemplateGrammar(load_domain("coffee"))
    for said in (
        "Can I have a, uh, large latte?",
        "Can I get a large latte with, um, oat milk?",
        "Yeah, can I get a mocha?",
    ):
        assert g.spells(said), said
    assert not g.spells("Um, may I have noodle soup with milk?")


def test_the_grammar_offers_wordings_near_a_misheard_order():
    from stages.asr_snap import GrammarSnapper
    from stages.nlu.grammar import TemplateGrammar

    d = load_domain("coffee")
    g = TemplateGrammar(d)
    snap = GrammarSnapper(d, g.spells)
    assert snap.candidates("Can I have a medium double shot Americano?") == []  # spelled already
    # words and digits as equals: the decoder reads both, as Whisper would write either
    near = snap.candidates("Can I have a 12-pound latte?")
    assert near[:2] == ["Can I have a twelve ounce latte?", "Can I have a 12-ounce latte?"]
    assert snap.candidates("Can I have a lat?")[0] == "Can I have a latte?"
    assert "I want one light-roast extra large Americano." in snap.candidates(
        "I want one light-roast extra-lourge Americano."
    )
    assert "I don't want drink anymore." in snap.candidates("I don't want to drink anymore.")
    assert all(g.spells(c) for c in snap.candidates("Change my drink to 60 hours."))
    # a word of another sound, an added word, two heard words for one ("can't saw": "cancel")
    assert snap.candidates("Can I have a cappuccino make it a small win some milk?")[0] == (
        "Can I have a cappuccino make it a small with some milk?"
    )
    assert snap.candidates("can't saw the coffee.")[0] == "cancel the coffee."  # written as heard: lower case
    assert snap.candidates("Lotta extra sharp medium")[0] == "Latte extra shot medium"  # no end mark heard
    # a request for something else is too far from every order to be offered as one
    for other in ("Switch on radio.", "Book a meeting with Chelsea.", "Turn off the kitchen light."):
        assert snap.nearest(other) == [], other


def test_the_nearest_wordings_are_what_the_grammar_spells_nearest_first(monkeypatch):
    from stages import asr_snap
    from stages.asr_snap import GrammarLattice, _heard_words
    from stages.nlu.grammar import LEAD_WORDS, TAIL_WORDS, TemplateGrammar

    d = load_domain("coffee")
    g = TemplateGrammar(d)
    lattice = GrammarLattice(d, LEAD_WORDS, TAIL_WORDS)
    said = _heard_words("Can I get a 12-ounce latte with 2 sugars, please?")
    assert said == "can i get a twelve ounce latte with two sugars please".split()
    best = lattice.nearest(said, 3)
    assert best[0] == (0.0, said)  # spelled already: nothing to change
    heard = _heard_words("I don't want to look off the anymore.")
    near = lattice.nearest(heard, 6)
    assert len(near) > 1 and [c for c, _w in near] == sorted(c for c, _w in near)
    assert all(g.spells(" ".join(words)) for _c, words in near)
    assert "i don't want coffee anymore" in [" ".join(w) for _c, w in near]  # three edits, one wording
    # an open slot holds any heard words; a closed catalog only its phrases
    home = load_domain("home")
    open_lattice = GrammarLattice(home, LEAD_WORDS, TAIL_WORDS)
    words = _heard_words("play bohemian rhapsody")
    assert open_lattice.nearest(words, 4)[0][1] == words
    # a grammar too large to search offers nothing (the swaps still run)
    monkeypatch.setattr(asr_snap, "MAX_LATTICE_EDGES", lattice.size - 1)
    assert lattice.nearest(heard, 6) == []


def test_the_nearest_wordings_do_not_depend_on_the_hash_seed():
    """Paths of equal cost ("… with milk please" and "… with milk thanks") are broken by the
    grammar's word order, which must be the same in every process, or a replay could hear a
    request differently from the run it replays."""
    script = (
        "from core.domain import load_domain; from stages.nlu.grammar import TemplateGrammar; "
        "from stages.asr_snap import GrammarSnapper; d = load_domain('coffee'); "
        "print(GrammarSnapper(d, TemplateGrammar(d).spells).candidates("
        "'please may I have noodle soup with milk and bread'))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "4", "8", "9")
    }
    assert len(outputs) == 1, outputs


def test_the_decoder_judges_the_grammars_wordings():
    """A wording the beam never held replaces the best hypothesis only when the decoder, made to
    read it against the same audio, finds it about as likely (plus the grammar's bonus)."""
    from types import SimpleNamespace

    from stages.asr import DomainRescorer

    heard = "can i have a lat"
    result = SimpleNamespace(sequences_ids=[[50363, 7, 50400]], sequences=[["x"]], scores=[-0.3], no_speech_prob=0.0)
    encoder_output = SimpleNamespace(shape=(1, 750, 384))

    def rescorer(probs: dict[str, list[float]]):
        words = {}
        tok = SimpleNamespace(
            sot_sequence=[50257],
            no_timestamps=50362,
            timestamp_begin=50363,
            encode=lambda text: words.setdefault(text.strip(), [len(words) + 100]),
        )
        model = SimpleNamespace(
            generate=lambda *a, **k: [result],
            align=lambda enc, start, tokens, frames: [
                SimpleNamespace(text_token_probs=probs[next(w for w, i in words.items() if i == tokens[0])])
            ],
        )
        r = DomainRescorer(
            model,
            SimpleNamespace(decode=lambda ids: heard),
            frozenset(),
            weight=0.0,
            spelled=lambda t: t.endswith("latte"),
            grammar_weight=0.5,
            candidates=lambda t: ["can i have a latte"] if t == heard else [],
        )
        r._tok = tok
        return r, words

    # the audio says "latte" about as well as "lat": the grammar's wording wins
    r, words = rescorer({heard: [0.9, 0.8], "can i have a latte": [0.8, 0.7]})
    out = r.generate(encoder_output, [[50257]], beam_size=5)[0]
    assert r.recovered == 1 and out.sequences_ids[0] == [50363, words["can i have a latte"][0], 50400]
    # the audio clearly says something else: the beam's best stands
    r, _words = rescorer({heard: [0.9, 0.8], "can i have a latte": [0.01, 0.02]})
    out = r.generate(encoder_output, [[50257]], beam_size=5)[0]
    assert r.recovered == 0 and out.sequences_ids[0] == [50363, 7, 50400]


@pytest.mark.models
def test_a_real_order_misheard_in_babble_is_recovered_from_the_audio():
    """A real person's order (Picovoice's sample) in simulated babble, nine draws of it: where
    the beam mishears a word ("double sharp", "American Idol"), the decoder, made to read the
    grammar's wordings, finds the order said; where the beam hears an order the grammar spells,
    it is left as heard. Which draws the beam mishears depends on the CPU's arithmetic (int8
    kernels differ between machines), so the test asks for at least one recovery, not a given one."""
    from core.audio import load_audio
    from sim.channel import apply, parse_condition
    from stages.asr import AsrOptions, WhisperAsr
    from stages.nlu.grammar import TemplateGrammar

    d = load_domain("coffee")
    order = load_audio(ROOT / "recordings" / "coffee-order" / "test_within_context.wav")
    plain = WhisperAsr(AsrOptions(recover=False), d)
    recovering = WhisperAsr(AsrOptions(), d)
    g = TemplateGrammar(d)
    recovered = []
    for seed in range(9):
        noisy = apply(parse_condition("babble@10dB"), order, random.Random(seed)).samples
        before = recovering.model.model.recovered
        heard, out = plain.transcribe(noisy).text, recovering.transcribe(noisy).text
        if recovering.model.model.recovered > before:
            assert not g.spells(heard) and g.spells(out)
            recovered.append(out)
        elif g.spells(heard):
            assert out == heard
    assert recovered, "no misheard draw was recovered"
    for text in recovered:
        said = re.sub(r"[^a-z ]", "", text.lower()).strip()
        parse = g.parse("orderBeverage", said)
        assert {s: said[a:b] for a, b, s in parse.spans} == {
            "size": "medium",
            "numberOfShots": "double shot",
            "beverage": "americano",
        }
    n = recovering.model.model.recovered
    # what was said clearly is left as heard
    clean = recovering.transcribe(order.samples).text
    assert clean == plain.transcribe(order.samples).text and recovering.model.model.recovered == n


@pytest.mark.models
def test_a_real_request_for_something_else_stays_declined_in_babble():
    """The grammar's bonus and its nearest wordings make misheard orders orders again; a real
    person asking for noodle soup (Picovoice's out-of-context sample), clean and in babble, is
    still heard as something the coffee grammar does not spell."""
    from core.audio import load_audio
    from sim.channel import apply, parse_condition
    from stages.asr import AsrOptions, WhisperAsr
    from stages.nlu.grammar import TemplateGrammar

    d = load_domain("coffee")
    g = TemplateGrammar(d)
    asr = WhisperAsr(AsrOptions(), d)
    other = load_audio(ROOT / "recordings" / "coffee-order" / "test_out_of_context.wav")
    draws = [other] + [apply(parse_condition("babble@12dB"), other, random.Random(seed)) for seed in range(3)]
    for audio in draws:
        heard = asr.transcribe(audio.samples).text
        assert "noodle" in heard.lower() and not g.spells(heard), heard


@pytest.mark.models
def test_a_coffee_order_said_with_digits_is_understood(config):
    from assistant.runner import Assistant

    coffee = Assistant(config.with_overrides({"session.domain": "coffee"}))
    t = say(coffee, coffee.new_session("digits"), "Can I get a 12-ounce latte with 2 sugars?")
    assert t.outcome.intent == "orderBeverage"
    assert dict(t.outcome.args) == {"size": "twelve_ounce", "beverage": "latte", "sugarAmount": "two_sugars"}
    t = say(coffee, coffee.new_session("um"), "Can I have a, uh, large latte with, um, oat milk?")
    assert t.outcome.intent == "orderBeverage"
    assert dict(t.outcome.args) == {"size": "large", "beverage": "latte", "milkAmount": "oat_milk"}


@pytest.mark.models
def test_a_coffee_order_outside_the_grammar_is_declined(config):
    from assistant.runner import Assistant

    coffee = Assistant(config.with_overrides({"session.domain": "coffee"}))
    s = coffee.new_session("coffee")
    t = say(coffee, s, "can i have a medium double shot americano")
    assert t.outcome.intent == "orderBeverage"
    assert dict(t.outcome.args) == {"size": "medium", "numberOfShots": "double_shot", "beverage": "americano"}
    t = say(coffee, coffee.new_session("ood"), "please may i have noodle soup with milk and bread")
    assert t.outcome.reply_type == "out_of_domain"


# names typed by what they mean -----------------------------------------------------------------


def test_a_time_takes_its_am_pm_back_from_the_next_span():
    from stages.nlu.stage import NluOptions, NluStage

    stage = NluStage(load_domain("home"), model=None, options=NluOptions())
    text = "wake me up at six am tomorrow"
    spans = stage._with_time_suffixes(text, [(14, 17, "time"), (18, 29, "date")])
    assert [(text[a:b], label) for a, b, label in spans] == [("six am", "time"), ("tomorrow", "date")]
    text = "set an alarm for seven pm"  # the suffix untagged: it joins the time
    assert stage._with_time_suffixes(text, [(17, 22, "time")]) == [(17, 25, "time")]
    text = "set an alarm for seven"  # nothing to take
    assert stage._with_time_suffixes(text, [(17, 22, "time")]) == [(17, 22, "time")]


def test_a_name_that_is_nothing_but_a_day_fills_the_date_slot():
    from stages.nlu.stage import NluOptions, NluStage

    stage = NluStage(load_domain("home"), model=None, options=NluOptions())
    text = "what will be the highest temperature in coming week"
    spans = stage._dated("GetWeather", text, [(37, 51, "place")])
    assert spans == [(37, 51, "date")]
    text = "weather in paris this week's"  # a real place stays a place
    assert stage._dated("GetWeather", text, [(11, 16, "place")]) == [(11, 16, "place")]
    assert stage._dated("PlayMusic", "play friday", [(5, 11, "song")]) == [(5, 11, "song")]  # no date slot


def _typed_stage(guesses: dict[str, dict[str, float]]):
    """The home stage with a span typer that answers from ``guesses`` (words → label → p)."""
    from types import SimpleNamespace

    from stages.nlu.stage import NluOptions, NluStage

    labels = ("artist", "genre", "place", "room", "song", "title")

    def probabilities(words, among):
        p = {k: v for k, v in guesses.get(words, {}).items() if k in among}
        return p if len([k for k in labels if k in among]) >= 2 else {}

    typer = SimpleNamespace(labels=labels, probabilities=probabilities)
    return NluStage(load_domain("home"), model=SimpleNamespace(span_typer=typer), options=NluOptions())


def test_a_name_of_another_intents_kind_takes_the_intents_own():
    stage = _typed_stage({"blake shelton": {"artist": 0.5, "song": 0.3, "genre": 0.2}})
    text = "time to hear me some blake shelton"
    assert stage._retyped("PlayMusic", text, [(21, 34, "title")]) == [(21, 34, "artist")]
    text = "is it going to be warm in wilkerson"  # the intent takes one kind of name
    assert stage._retyped("GetWeather", text, [(26, 35, "artist")]) == [(26, 35, "place")]
    text = "weather in paris and wilkerson"  # ... and has it already
    assert stage._retyped("GetWeather", text, [(11, 16, "place"), (21, 30, "artist")])[1] == (21, 30, "artist")


def test_an_untagged_name_after_in_fills_an_empty_place():
    from core.records import Slot

    stage = _typed_stage({"gonbad": {"place": 0.34, "song": 0.2, "genre": 0.19}, "kitchen": {"room": 0.8}})
    found = stage._untagged_names("GetWeather", [], "is it sunny in gonbad now")
    assert [(s.name, s.text) for s in found] == [("place", "gonbad")]
    # a day after "in" is no name, a filled place is not filled twice, an unlike name is left out
    assert stage._untagged_names("GetWeather", [], "will it snow in two days") == []
    taken = [Slot(name="place", text="paris", value="paris", type="place", start=16, end=21)]
    assert stage._untagged_names("GetWeather", taken, "is it sunny in gonbad") == []
    assert stage._untagged_names("GetWeather", [], "is it cold in kitchen") == []


def test_an_untagged_name_after_of_or_by_fills_an_empty_music_slot():
    stage = _typed_stage({"eminem": {"artist": 0.58, "genre": 0.33, "song": 0.09}})
    for said in ("arrange and play all songs of eminem", "play something by eminem"):
        assert [(s.name, s.text) for s in stage._untagged_names("PlayMusic", [], said)] == [("artist", "eminem")]


@pytest.mark.models
def test_the_span_typer_round_trips_and_needs_two_kinds(tmp_path):
    from stages.nlu.recipes import span_names
    from stages.nlu.span_types import SpanTyper

    names = span_names(load_domain("home"), items=[])
    assert "date" not in names and "time" not in names  # values with a grammar are not names
    typer = SpanTyper.fit({k: names[k] for k in ("artist", "song", "genre")})
    typer.save(tmp_path)
    again = SpanTyper.load(tmp_path)
    assert again.labels == typer.labels == ("artist", "genre", "song")
    assert again.probabilities("smooth jazz", ["artist", "song", "genre"]) == typer.probabilities(
        "smooth jazz", ["artist", "song", "genre"]
    )
    assert (
        max(again.probabilities("smooth jazz", ["artist", "song", "genre"]).items(), key=lambda kv: kv[1])[0] == "genre"
    )
    assert typer.probabilities("smooth jazz", ["artist", "place"]) == {}  # one known label: nothing to choose
    assert SpanTyper.fit({"artist": names["artist"], "song": ["one"]}) is None
    assert SpanTyper.load(tmp_path / "none") is None


@pytest.mark.models
@pytest.mark.parametrize(
    "text, slots",
    [
        ("i want to listen to soft rock", {"genre": "soft rock"}),  # not an artist
        ("let me hear under pressure from queen", {"song": "under pressure", "artist": "queen"}),  # one span cut in two
    ],
)
def test_music_names_are_typed_by_what_they_mean(assistant, fresh, text, slots):
    t = say(assistant, fresh(), text, stop="nlu")
    i = t.interpretation
    assert i.intent == "PlayMusic" and {s.name: s.text for s in i.slots} == slots, i.slots


@pytest.mark.parametrize(
    "text, repaired",
    [
        ("open the ac actually no garage", "open the garage"),  # the repair replaces the slip
        ("turn off sorry on all the lights", "turn on all the lights"),  # ... a verb's particle too
        ("please open the ceiling fan, sorry, garage door", "please open the garage door"),
        ("lock the tv wait no front door", "lock the front door"),  # back to a function word
        ("turn on the kitchen — no, the hall light", "turn on the hall light"),  # from "the"
        ("can you open the telly sorry sorry garage door", "can you open the garage door"),
    ],
)
def test_a_self_repair_keeps_what_the_speaker_meant(text, repaired):
    from stages.nlu.text import repair_candidates

    assert repair_candidates(text)[0] == repaired


@pytest.mark.parametrize("text", ["play sorry by justin bieber", "play no scrubs", "no", "set an alarm for no reason"])
def test_titles_and_answers_are_not_repairs(text):
    from stages.nlu.text import repair_candidates

    assert repair_candidates(text) == []


def test_a_duration_said_relative_to_now_fills_an_alarms_time():
    """ "alert me in three hours": the tagger typed "three hours" as a timer's duration, which
    an alarm does not take; said relative to now it is the alarm's time. A timer keeps its
    duration, and an alarm whose time is already filled keeps it."""
    import datetime as dt
    from types import SimpleNamespace

    from stages.nlu.models import Prediction
    from stages.nlu.stage import NluOptions, NluStage

    def predict(text):
        said = text.lower()
        a = said.index("three hours")
        spans = [(a, a + len("three hours"), "duration")]
        intent = "SetTimer" if "timer" in said else "SetAlarm"
        if "seven" in said:
            spans.append((said.index("seven"), said.index("seven") + 5, "time"))
        return Prediction(said, ((intent, 0.9), (OOD_INTENT, 0.1)), tuple(spans))

    def answer(text):
        said = text.lower()
        a = said.index("three hours")
        return Prediction(said, (("Inform", 0.9), (OOD_INTENT, 0.1)), ((a, a + len("three hours"), "duration"),))

    model = SimpleNamespace(predict=predict, span_typer=None, name="fake")
    stage = NluStage(load_domain("home"), model=model, options=NluOptions())
    inform = NluStage(
        load_domain("home"), model=SimpleNamespace(predict=answer, span_typer=None, name="f"), options=NluOptions()
    )
    ctx = SimpleNamespace(now=dt.datetime(2026, 3, 14, 8, 0), dialogue=None)
    got = stage.interpret("alert me in three hours", ctx)
    assert got.intent == "SetAlarm" and [(s.name, s.text, s.value) for s in got.slots] == [
        ("time", "in three hours", "11:00")
    ]
    assert [(s.name, s.text) for s in stage.interpret("set a timer for three hours", ctx).slots] == [
        ("duration", "three hours")
    ]
    filled = stage.interpret("in three hours an alarm at seven", ctx).slots
    assert [(s.name, s.text) for s in filled] == [("duration", "three hours"), ("time", "seven")]
    assert [s.name for s in stage.interpret("wake me three hours before work", ctx).slots] == ["duration"]
    # the answer to "What time should I set the alarm for?" (or a correction of the alarm)
    from core.session import DialogueState, Pending

    asked = SimpleNamespace(now=ctx.now, dialogue=DialogueState(pending=Pending("elicit", "SetAlarm", slot="time")))
    fixed = SimpleNamespace(now=ctx.now, dialogue=DialogueState(last_intent="SetAlarm"))
    for context in (asked, fixed):
        got = inform.interpret("i said three hours from now", context)
        assert [(s.name, s.text, s.value) for s in got.slots] == [("time", "three hours from now", "11:00")]


def test_a_time_cut_inside_from_now_is_joined_again():
    """ "two hours from | now": a tagger cut the time inside "from now" and typed "now" as a
    date. The alarm is two hours from now, not at two o'clock today; a time that only ends in
    "from" keeps its words."""
    import datetime as dt
    from types import SimpleNamespace

    from stages.nlu.models import Prediction
    from stages.nlu.stage import NluOptions, NluStage

    def predict(text):
        said = text.lower()
        a = said.index("two")
        cut = said.index(" now") if "now" in said else len(said)
        spans = [(a, cut, "time")] + ([(cut + 1, cut + 4, "date")] if "now" in said else [])
        return Prediction(said, (("SetAlarm", 0.9), (OOD_INTENT, 0.1)), tuple(spans))

    stage = NluStage(
        load_domain("home"), model=SimpleNamespace(predict=predict, span_typer=None, name="f"), options=NluOptions()
    )
    ctx = SimpleNamespace(now=dt.datetime(2026, 3, 14, 8, 0), dialogue=None)
    got = stage.interpret("set an alarm for two hours from now", ctx)
    assert [(s.name, s.text, s.value) for s in got.slots] == [("time", "two hours from now", "10:00")]
    got = stage.interpret("set an alarm for two from", ctx)
    assert [(s.name, s.text) for s in got.slots] == [("time", "two from")]


def test_a_time_keeps_the_minutes_said_before_the_hour():
    """ "quarter to | eleven pm": the tagger cut the time after "quarter to", and the alarm was
    set for 23:00. A range ("from five to | six") is not a time before the hour."""
    from types import SimpleNamespace

    from stages.nlu.models import Prediction
    from stages.nlu.stage import NluOptions, NluStage

    def predict(text):
        said = text.lower()
        hour = said.rindex("eleven pm") if "eleven pm" in said else said.rindex("six")
        end = hour + (len("eleven pm") if "eleven pm" in said else 3)
        return Prediction(said, (("SetAlarm", 0.9), (OOD_INTENT, 0.1)), ((hour, end, "time"),))

    model = SimpleNamespace(predict=predict, span_typer=None, name="fake")
    stage = NluStage(load_domain("home"), model=model, options=NluOptions())
    for text, words, value in [
        ("set an alarm for quarter to eleven pm", "quarter to eleven pm", "22:45"),
        ("alarm at a quarter past eleven pm", "a quarter past eleven pm", "23:15"),
        ("wake me at twenty five to eleven pm please", "twenty five to eleven pm", "22:35"),
        ("set an alarm to eleven pm", "eleven pm", "23:00"),
        ("move the alarm from five to six", "six", "06:00"),
    ]:
        (slot,) = stage.interpret(text).slots
        assert (slot.text, slot.value) == (words, value), text


def test_the_stage_reads_the_first_repaired_wording_the_model_takes_in_domain():
    """A slip the tagger reads as a value of the same kind as the repair's marks where the
    repair starts; a wording the model declines is passed over."""
    from types import SimpleNamespace

    from stages.nlu.models import Prediction
    from stages.nlu.stage import NluOptions, NluStage

    text = "what's the weather in paris tomorrow i mean on friday"
    heard = []

    def predict(said):
        heard.append(said)
        said = said.lower()
        if said == text:  # the tagger sees two dates, one a slip
            spans = ((22, 27, "place"), (28, 36, "date"), (44, 53, "date"))
            return Prediction(text=said, intents=(("GetWeather", 0.9), (OOD_INTENT, 0.1)), spans=spans)
        if said == "what's the weather in paris on friday":
            return Prediction(said, (("GetWeather", 0.95), (OOD_INTENT, 0.05)), ((22, 27, "place"), (28, 37, "date")))
        return Prediction(said, ((OOD_INTENT, 0.9), ("GetWeather", 0.1)), ())

    model = SimpleNamespace(predict=predict, span_typer=None, name="fake")
    got = NluStage(load_domain("home"), model=model, options=NluOptions()).interpret(text)
    assert heard[:2] == [text, "what's the weather in paris on friday"]
    assert got.intent == "GetWeather" and [(s.name, s.text) for s in got.slots] == [
        ("place", "paris"),
        ("date", "on friday"),
    ]
    n = len(heard)
    NluStage(load_domain("home"), model=model, options=NluOptions()).interpret("paris on friday please")
    assert heard[n:] == ["paris on friday please"]  # no cue: one reading

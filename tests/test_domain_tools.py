"""Spec checks and importers: placeholders validated at load, `assistant domain check|import`,
Rhino contexts and Alexa models turned into specs. Fast: no model is loaded."""

from __future__ import annotations

import json
import random
import re

import pytest
import yaml

from assistant.cli import main
from core.domain import BUILTIN_TYPES, load_domain
from core.errors import InputError
from core.importers import dump_spec, from_alexa, from_rhino
from core.utterances import UtteranceGenerator, all_alternatives, clean_spaces
from tests.conftest import DATA, RECORDINGS, ROOT

RHINO = DATA / "domains" / "coffee_maker.rhino.yml"
ALEXA = DATA / "domains" / "pizza_skill.alexa.json"

SPEC = """
domain: cafe
entities:
  drink: [latte, mocha]
intents:
  Order:
    slots:
      coffeeDrink: {type: drink}
    samples:
      - "a {coffeeDrink} please"
      - "SAMPLE"
    api: order
apis:
  order: {create: {in: orders, record: {drink: "{coffeeDrink}"}}}
world: {orders: []}
"""


def write(tmp_path, text, name="cafe.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def load_spec(tmp_path, spec, name="imported.yaml"):
    return load_domain(write(tmp_path, dump_spec(spec), name))


# placeholders -------------------------------------------------------------------------


def test_camel_case_slots_are_slots(tmp_path):
    d = load_domain(write(tmp_path, SPEC.replace("SAMPLE", "i'd like a {coffeeDrink:mocha}")))
    ex = UtteranceGenerator(d).render(d.intents["Order"], d.intents["Order"].samples[0], random.Random(1))
    assert ex.spans and ex.spans[0][2] == "coffeeDrink" and ex.values["coffeeDrink"] in ("latte", "mocha")
    literal = UtteranceGenerator(d).render(d.intents["Order"], d.intents["Order"].samples[1], random.Random(1))
    assert literal.text == "i'd like a mocha" and literal.values["coffeeDrink"] == "mocha"


@pytest.mark.parametrize(
    "sample, reason",
    [
        ("a {coffee_drink}", "undeclared slot {coffee_drink}"),
        ("a {CoffeeDrink}", "undeclared slot {CoffeeDrink}"),
        ("a {coffee drink}", "malformed placeholder {coffee drink}"),
        ("a {coffee-drink}", "malformed placeholder"),
        ("a {coffeeDrink:}", "malformed placeholder"),
        ("a {coffeeDrink please", "unclosed {"),
        ("a coffeeDrink} please", "unmatched }"),
        ("[a, one {coffeeDrink}", "unclosed ["),
        ("a] {coffeeDrink}", "unmatched ]"),
        ("a {coffeeDrink:[x]}", "malformed placeholder"),
    ],
)
def test_malformed_placeholders_name_the_field_and_line(tmp_path, sample, reason):
    path = write(tmp_path, SPEC.replace("SAMPLE", sample))
    with pytest.raises(InputError) as err:
        load_domain(path)
    line = SPEC.splitlines().index('      - "SAMPLE"') + 1
    assert err.value.field == f"intents.Order.samples[1] (line {line})"
    assert reason in str(err.value) and str(path) in str(err.value)


# Rhino --------------------------------------------------------------------------------


def rhino_expansions(expr: str, macros: dict) -> set[str]:
    """An independent reading of Rhino's grammar: macros become choices, groups expand
    innermost first, an optional group may also be left out."""
    for _ in range(5):
        expr = re.sub(r"@(\w+)", lambda m: "[" + ", ".join(macros[m.group(1)]) + "]", expr)
    expr = re.sub(r"\$[\w.]+:(\w+)", r"{\1}", expr)
    group = re.compile(r"[\[(]([^\[\]()]*)[\])]")
    out = {expr}
    while any(group.search(t) for t in out):
        nxt = set()
        for t in out:
            m = group.search(t)
            if not m:
                nxt.add(t)
                continue
            options = [o.strip() for o in m.group(1).split(",")] + ([""] if m.group(0)[0] == "(" else [])
            nxt.update(t[: m.start()] + o + t[m.end() :] for o in options)
        out = nxt
    return {clean_spaces(t) for t in out}


def test_rhino_context_imports_covering_every_expression(tmp_path):
    context = yaml.safe_load(RHINO.read_text())
    imported = from_rhino(context, "coffee", str(RHINO))
    d = load_spec(tmp_path, imported.spec)
    ctx = context["context"]
    for intent, exprs in ctx["expressions"].items():
        spec = d.intents[intent]
        said = {t for s in spec.samples for t in all_alternatives(s, 10**6)}
        for expr in exprs:
            missing = rhino_expansions(expr, ctx.get("macros", {})) - said
            assert not missing, (expr, sorted(missing)[:3])
        assert spec.api and "ok" in spec.responses
        assert not any(s.required for s in spec.slots.values())  # Rhino slots are optional
    assert set(d.catalogs) == set(ctx["slots"])
    for type_name, values in ctx["slots"].items():
        assert imported.spec["entities"][type_name]["literal"] is True
        assert getattr(d.catalogs[type_name], "literal", True) is True
        assert [v.name for v in d.catalogs[type_name].values] == values
    milk = {v.name: v.id for v in d.catalogs["milkAmount"].values}
    assert milk["milk"] != milk["some milk"]  # distinct literal values


def test_rhino_nested_groups_macros_and_builtins(tmp_path):
    ctx = {
        "context": {
            "expressions": {
                "brew": [
                    "[(please) make, brew] (me) ((a) cup of, some) $drink:drink",
                    "@polite pour $pv.TwoDigitInteger:count ($drink:drink) [cups, mugs] at $pv.Percent:strength",
                ],
            },
            "slots": {"drink": ["tea", "coffee"]},
            "macros": {"polite": ["please", "kindly"]},
        }
    }
    imported = from_rhino(ctx, "tiny")
    d = load_spec(tmp_path, imported.spec)
    spec = d.intents["brew"]
    assert {n: s.type for n, s in spec.slots.items()} == {"drink": "drink", "count": "number", "strength": "percentage"}
    for expr, sample in zip(ctx["context"]["expressions"]["brew"], spec.samples):
        assert set(all_alternatives(sample, 10**6)) == rhino_expansions(expr, ctx["context"]["macros"])
    assert "please make me a cup of {drink}" in all_alternatives(spec.samples[0], 10**6)


def test_rhino_slots_inside_macros_are_declared_wherever_used(tmp_path):
    ctx = {
        "context": {
            "expressions": {"go": ["@order tea", "@order coffee please"]},
            "slots": {"size": ["big", "small"]},
            "macros": {"order": ["a $size:size", "one"]},
        }
    }
    d = load_spec(tmp_path, from_rhino(ctx, "tiny").spec)
    assert [list(all_alternatives(s)) for s in d.intents["go"].samples] == [
        ["a {size} tea", "one tea"],
        ["a {size} coffee please", "one coffee please"],
    ]


@pytest.mark.parametrize(
    "expr, reason",
    [
        ("spell $pv.Alphabetic:letter", "pv.Alphabetic"),
        ("make $tea:drink", "unknown slot type $tea"),
        ("make @please $drink:drink", "unknown macro @please"),
        ("make [a, b $drink:drink", "unclosed ["),
        ("make (a, b] $drink:drink", "closes a group opened with ("),
        ("make a) $drink:drink", "unmatched ')'"),
        ("make [a, ] $drink:drink", "empty choice"),
        ("make a {drink}", "unexpected character '{'"),
    ],
)
def test_rhino_errors_name_the_expression(expr, reason):
    ctx = {"context": {"expressions": {"brew": ["make $drink:drink", expr]}, "slots": {"drink": ["tea"]}}}
    with pytest.raises(InputError) as err:
        from_rhino(ctx, "tiny", "ctx.yml")
    assert err.value.field == "context.expressions.brew[1]" and reason in err.value.reason


def test_rhino_type_named_like_a_builtin_or_another_slot_is_renamed(tmp_path):
    ctx = {
        "context": {
            "expressions": {"go": ["$number:number $size:amount", "$amount:size"]},
            "slots": {"number": ["one", "two"], "size": ["small"], "amount": ["lots"]},
        }
    }
    d = load_spec(tmp_path, from_rhino(ctx, "tiny").spec)
    types = {n: s.type for n, s in d.intents["go"].slots.items()}
    assert types["number"] not in BUILTIN_TYPES and d.catalog_for(types["number"]).values[0].name == "one"
    assert d.catalog_for(types["amount"]).values[0].name == "small"
    assert d.catalog_for(types["size"]).values[0].name == "lots"


# Alexa --------------------------------------------------------------------------------


def test_alexa_model_imports(tmp_path):
    model = json.loads(ALEXA.read_text())
    imported = from_alexa(model, "pizza", str(ALEXA))
    d = load_spec(tmp_path, imported.spec)
    lm = model["interactionModel"]["languageModel"]
    for intent in lm["intents"]:
        if not intent["name"].startswith("AMAZON."):
            assert list(d.intents[intent["name"]].samples) == intent["samples"]
            assert d.intents[intent["name"]].api and "ok" in d.intents[intent["name"]].responses
    order = d.intents["OrderPizzaIntent"]
    assert order.slots["count"].type == "number" and order.slots["size"].type == "PizzaSize"
    assert d.catalogs["PizzaSize"].get("L").synonyms == ("fourteen inch", "family size")
    assert d.catalogs["CrustType"].get("thin_crust") is not None
    when = d.intents["DeliveryTimeIntent"].slots["when"]
    assert when.type == "time" and when.required and when.prompt == "What time should it arrive?"
    assert "stop" in d.intents["Stop"].samples
    notes = " ".join(imported.notes)
    for skipped in ("AMAZON.CancelIntent", "AMAZON.HelpIntent", "AMAZON.FallbackIntent", "AMAZON.NavigateHomeIntent"):
        assert f"{skipped} skipped" in notes
    assert not any(i.startswith("AMAZON") for i in d.intents)


def test_alexa_other_amazon_types_become_seeded_open_catalogs(tmp_path):
    model = {
        "languageModel": {
            "invocationName": "trips",
            "intents": [
                {
                    "name": "GoIntent",
                    "slots": [{"name": "city", "type": "AMAZON.US_CITY"}, {"name": "day", "type": "AMAZON.DATE"}],
                    "samples": ["go to {city} {day}", "take me to {city}"],
                }
            ],
        }
    }
    d = load_spec(tmp_path, from_alexa(model, "trips").spec)
    city = d.catalog_for(d.intents["GoIntent"].slots["city"].type)
    assert city.open and city.values
    assert d.intents["GoIntent"].slots["day"].type == "date"
    assert "{day|day}" in d.intents["GoIntent"].responses["ok"]


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda m: m["intents"][0]["samples"].append("order a {sizes} pizza"), "intents[0].samples[1]"),
        (lambda m: m["intents"][0]["slots"].append({"name": "x", "type": "Nope"}), "intents[0].slots[1].type"),
        (lambda m: m["types"][0]["values"].append({"id": "X"}), "types[0].values[1]"),
    ],
)
def test_alexa_errors_name_the_field(change, field):
    model = {
        "invocationName": "p",
        "intents": [
            {"name": "OrderIntent", "slots": [{"name": "size", "type": "Size"}], "samples": ["order a {size} pizza"]}
        ],
        "types": [{"name": "Size", "values": [{"name": {"value": "large"}}]}],
    }
    change(model)
    with pytest.raises(InputError) as err:
        from_alexa({"interactionModel": {"languageModel": model}}, "p", "m.json")
    assert err.value.field == f"interactionModel.languageModel.{field}"


# assistant domain check | import --------------------------------------------------------


@pytest.mark.parametrize("spec", ["home", "coffee"])
def test_check_passes_bundled_domains(spec, capsys):
    assert main(["domain", "check", spec]) == 0
    out = capsys.readouterr().out
    assert "error:" not in out and out.rstrip().splitlines()[-1].startswith("ok")


def test_check_json_reports_counts(capsys):
    assert main(["domain", "check", "coffee", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["errors"] == 0
    assert report["intents"]["orderBeverage"]["expansions"] > 1000
    assert set(report["intents"]) == {"orderBeverage", "changeSize", "cancelOrder"}


def test_check_exits_2_naming_the_field_of_a_broken_spec(tmp_path, capsys):
    path = write(tmp_path, SPEC.replace("SAMPLE", "a {coffeDrink}"))
    assert main(["domain", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "intents.Order.samples[1]" in err and "{coffeDrink}" in err
    assert main(["domain", "check", str(path), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["findings"][0]["field"].startswith("intents.Order.samples[1]")


def test_check_finds_templates_that_say_nothing_and_unused_slots(tmp_path, capsys):
    spec = (
        SPEC.replace("SAMPLE", "a {dish}")
        .replace(
            "      coffeeDrink: {type: drink}",
            "      coffeeDrink: {type: drink}\n      dish: {type: dish}\n      size: {type: number}",
        )
        .replace("  drink: [latte, mocha]", "  drink: [latte, mocha]\n  dish: {open: true, values: []}")
    )
    assert main(["domain", "check", str(write(tmp_path, spec))]) == 2
    out = capsys.readouterr().out
    assert "error: intents.Order.samples[1]: can never produce a sentence: slot {dish} has no values" in out
    assert "warning: intents.Order.slots.size: used in no template" in out


def test_check_warns_of_catalog_phrases_that_collide(tmp_path, capsys):
    resolve = pytest.importorskip("stages.resolve")
    if not hasattr(resolve, "catalog_collisions"):
        pytest.skip("stages.resolve.catalog_collisions is not there yet")
    spec = SPEC.replace("SAMPLE", "the {coffeeDrink}").replace(
        "[latte, mocha]", "[latte, the latte, some mocha, mocha]"
    )
    assert main(["domain", "check", str(write(tmp_path, spec))]) == 0
    out = capsys.readouterr().out
    assert "warning: entities.drink: 'latte' is said for several values (latte, the_latte)" in out
    assert "'mocha' is said for several values" in out
    literal = spec.replace(
        "  drink: [latte, the latte, some mocha, mocha]",
        "  drink: {literal: true, values: [latte, the latte, some mocha, mocha]}",
    )
    assert main(["domain", "check", str(write(tmp_path, literal, "literal.yaml"))]) == 0
    assert "said for several values" not in capsys.readouterr().out


@pytest.mark.parametrize("source, fmt", [(RHINO, "rhino"), (ALEXA, "alexa")])
def test_import_writes_only_the_spec(tmp_path, capsys, source, fmt):
    out = tmp_path / "spec" / "mine.yaml"
    assert main(["domain", "import", str(source), "--out", str(out)]) == 0
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()] == [out.relative_to(tmp_path)]
    assert "wrote" in capsys.readouterr().out
    assert load_domain(out).name == source.name.split(".")[0]
    assert main(["domain", "check", str(out)]) == 0
    assert main(["domain", "import", str(source), "--out", str(out), "--name", "again"]) == 0  # its own file
    assert load_domain(out).name == "again"


def test_import_keeps_hand_written_specs_and_names_bad_input(tmp_path, capsys):
    mine = write(tmp_path, SPEC.replace("SAMPLE", "a {coffeeDrink}"))
    before = mine.read_text()
    assert main(["domain", "import", str(RHINO), "--out", str(mine)]) == 2
    assert "--force" in capsys.readouterr().err and mine.read_text() == before
    bad = write(tmp_path, 'context:\n  expressions:\n    go: ["make $nope:x"]\n', "bad.yml")
    out = tmp_path / "bad_out.yaml"
    assert main(["domain", "import", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "context.expressions.go[0]" in err and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yml", "cafe.yaml"]


def test_bundled_coffee_spec_is_the_import_of_its_context(tmp_path):
    bundled = yaml.safe_load((ROOT / "core" / "domains" / "coffee.yaml").read_text())
    fresh = from_rhino(yaml.safe_load(RHINO.read_text()), "coffee", "tests/data/domains/coffee_maker.rhino.yml").spec
    assert bundled.pop("out_of_domain_files") == ["home_ood.txt"]
    assert bundled == fresh


def test_coffee_recording_gold_names_the_coffee_domain():
    session = json.loads((RECORDINGS / "coffee-order" / "session.json").read_text())
    d = load_domain(session["domain"])
    order = session["turns"][0]["gold"]
    spec = d.intents[order["intent"]]
    for slot, value_id in order["entities"].items():
        assert d.catalog_for(spec.slots[slot].type).get(value_id) is not None
    assert session["turns"][1]["gold"] == {"out_of_domain": True}
    for turn in session["turns"]:
        assert (RECORDINGS / "coffee-order" / turn["audio"]).is_file()

"""Domain specs load, validate with named errors, and generate consistent utterances."""

from __future__ import annotations

import random

import pytest

from core.domain import BUILTIN_TYPES, load_domain
from core.errors import InputError
from core.normalize import normalize
from core.utterances import UtteranceGenerator, all_alternatives

MINIMAL = """
domain: tiny
entities:
  color: [red, green]
intents:
  Paint:
    slots:
      color: {type: color, required: true, prompt: "Which color?"}
    samples: ["paint it {color}"]
    api: paint
apis:
  paint:
    select: {in: things, where: {}}
    set: {color: "{color}"}
world:
  things: {wall: {name: wall, color: white}}
"""


def write(tmp_path, text, name="tiny.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_home_domain_loads_with_dialogue_acts():
    d = load_domain("home")
    assert {"TurnOn", "SetTimer", "GetWeather", "PlayMedia", "Affirm", "Deny", "Inform"} <= set(d.intents)
    assert d.slot_types["duration"] == "duration"
    assert len(d.out_of_domain) > 500
    assert d.catalog_for("place").get("springfield_mo").attributes["state"] == "Missouri"


@pytest.mark.parametrize(
    "broken, field",
    [
        (MINIMAL.replace('"paint it {color}"', '"paint it {colour}"'), "intents.Paint.samples[0]"),
        (MINIMAL.replace("type: color", "type: colour"), "intents.Paint.slots.color.type"),
        (MINIMAL.replace("[red, green]", "[red, red]"), "entities.color"),
        (MINIMAL.replace("api: paint", "api: varnish"), "intents.Paint.api"),
        (MINIMAL.replace("  Paint:", "  Affirm:"), "intents.Affirm"),
    ],
)
def test_validation_names_file_and_field(tmp_path, broken, field):
    path = write(tmp_path, broken)
    with pytest.raises(InputError) as err:
        load_domain(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_invalid_yaml_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, "domain: x\nintents: [\n")
    with pytest.raises(InputError, match="invalid YAML"):
        load_domain(path)


def test_alternations_expand():
    assert sorted(all_alternatives("[turn, switch] on [the, ] light")) == sorted(
        ["turn on the light", "turn on light", "switch on the light", "switch on light"]
    )


def test_generated_spans_and_values_agree():
    d = load_domain("home")
    gen = UtteranceGenerator(d)
    for ex in gen.examples(random.Random(3), per_intent=30):
        for a, b, slot in ex.spans:
            words = ex.text[a:b]
            assert words and words == words.strip()
            slot_type = d.intents[ex.intent].slots[slot].type
            value = ex.values[slot]
            if slot_type in BUILTIN_TYPES:
                assert normalize(slot_type, words, gen.now) == value, (ex.text, slot)
            else:
                catalog = d.catalog_for(slot_type)
                assert catalog.get(value) is not None and words.lower() in catalog.get(value).phrases


def test_training_data_is_balanced_per_intent():
    d = load_domain("home")
    examples = UtteranceGenerator(d).examples(random.Random(0), per_intent=100, include_ood=False)
    counts = {}
    for ex in examples:
        counts[ex.intent] = counts.get(ex.intent, 0) + 1
    assert min(counts.values()) >= 50 and max(v for k, v in counts.items() if k != "Inform") <= 100

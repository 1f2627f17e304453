"""Utterances from a domain spec: sample templates × catalogs × builtin surface forms.

Template grammar (docs/domains.md "Domain specs"):

* ``{slot}``           a slot filled from its catalog or builtin generator
* ``{slot:words}``     these literal words, tagged as the slot
* ``[a, b, ]``         one of the alternatives (an empty one makes the part optional)

The same generator feeds NLU training and the simulated users, so both speak alike.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from core.domain import BUILTIN_TYPES, OOD_INTENT, Domain, IntentSpec
from core.normalize import MONTHS, WEEKDAYS, normalize, spoken_number
from core.records import frozen_map

log = logging.getLogger(__name__)

_ALT = re.compile(r"\[([^\[\]]*)\]")
from core.domain import SLOT_REF as _SLOT  # noqa: E402  (the loader's slot grammar: one regex)

DEFAULT_NOW = dt.datetime(2026, 3, 14, 8, 0)
# How people wrap a request ("actually, …", "… please"): added to some generated requests so
# that the model learns they carry no meaning of their own. Dialogue acts are left as written.
PREFIXES = (
    "actually",
    "okay",
    "ok",
    "um",
    "uh",
    "hey",
    "so",
    "please",
    "can you",
    "could you",
    "i want to",
    "i'd like to",
    "now",
    "and",
    "oh and",
    "no wait",
    "sorry",
)
SUFFIXES = ("please", "thanks", "thank you", "now", "for me", "right now")
PREFIX_P = 0.15
# Per intent, a generous ceiling: a grammar of thousands of expansions trains on this many,
# spread evenly over them (logged).
MAX_PER_INTENT = 600
SUFFIX_P = 0.08


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    spans: tuple[tuple[int, int, str], ...] = ()  # (start, end, slot) character spans
    values: Mapping[str, Any] = field(default_factory=frozen_map)  # slot → id or canonical value

    def slot_text(self, slot: str) -> str | None:
        return next((self.text[a:b] for a, b, s in self.spans if s == slot), None)


def clean_spaces(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def choose_alternatives(template: str, rng: random.Random) -> str:
    """Resolve every ``[a, b]`` alternation (innermost first)."""
    while True:
        m = _ALT.search(template)
        if not m:
            return template
        options = [o.strip() for o in m.group(1).split(",")]
        template = template[: m.start()] + rng.choice(options) + template[m.end() :]


def all_alternatives(template: str, limit: int | None = None) -> list[str]:
    """Every expansion of the alternations, in order; ``limit`` takes that many spread evenly
    over all of them (see :func:`expansion_count`)."""
    tree = _parse(template)
    total = _count(tree)
    picks: Iterable[int]
    if limit is None or limit >= total:
        picks = range(total)
    else:
        picks = (i * total // limit for i in range(limit))
    return [clean_spaces(_nth(tree, i)) for i in picks]


def expansion_count(template: str) -> int:
    """How many sentences the alternations of ``template`` spell (slots not filled)."""
    return _count(_parse(template))


# A template as a tree: a sequence is a list of str | alternation; an alternation a tuple of
# sequences. Nested brackets work ("[turn [on, off], switch]").
def _parse(template: str) -> list:
    def seq(i: int, inside: bool) -> tuple[list, int]:
        out: list = []
        buf = ""
        while i < len(template):
            c = template[i]
            if c == "[":
                if buf:
                    out.append(buf)
                    buf = ""
                alt, i = options(i + 1)
                out.append(alt)
                continue
            if inside and c in ",]":
                break
            buf += c
            i += 1
        if buf:
            out.append(buf)
        return out, i

    def options(i: int) -> tuple[tuple, int]:
        opts = []
        while True:
            part, i = seq(i, True)
            opts.append(part or [""])
            if i >= len(template) or template[i] == "]":
                return tuple(opts), i + 1
            i += 1  # the comma

    tree, _ = seq(0, False)
    return tree


def _count(node) -> int:
    if isinstance(node, str):
        return 1
    if isinstance(node, tuple):
        return sum(_count(o) for o in node)
    n = 1
    for part in node:
        n *= _count(part)
    return n


def _nth(node, i: int) -> str:
    """The i-th expansion (mixed radix over the parts; options in order)."""
    if isinstance(node, str):
        return node
    if isinstance(node, tuple):
        for option in node:
            c = _count(option)
            if i < c:
                return _nth(option, i)
            i -= c
        raise IndexError(i)
    out = []
    for part in reversed(node):
        c = _count(part)
        out.append(_nth(part, i % c))
        i //= c
    return "".join(reversed(out))


# Builtin surface forms ------------------------------------------------------------------


def _num(n: int, rng: random.Random, words_p: float = 0.5) -> str:
    return spoken_number(n) if rng.random() < words_p else str(n)


def surface_builtin(slot_type: str, rng: random.Random) -> str:
    """One way a person (or an ASR transcript) might say a value of a builtin type."""
    if slot_type == "duration":
        r = rng.random()
        if r < 0.12:
            return rng.choice(
                [
                    "an hour",
                    "half an hour",
                    "an hour and a half",
                    "a minute",
                    "a couple of minutes",
                    "two and a half hours",
                    "a quarter of an hour",
                ]
            )
        if r < 0.2:
            return f"{_num(1, rng)} hour and {_num(rng.choice([15, 30, 45]), rng)} minutes"
        n = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 45, 90])
        unit = rng.choices(["minute", "second", "hour"], [0.7, 0.2, 0.1])[0]
        if unit == "hour" and n > 12:
            unit = "minute"
        return f"{_num(n, rng)} {unit}{'s' if n != 1 else ''}"
    if slot_type == "time":
        h = rng.randint(1, 12)
        m = rng.choice([0, 0, 0, 15, 30, 30, 45, 5, 10, 20])
        mer = rng.choice(["am", "pm", "", "", "in the morning", "in the evening", "a.m.", "p.m."])
        r = rng.random()
        if r < 0.08:
            return rng.choice(["noon", "midnight"])
        if r < 0.16 and m in (15, 30, 45):
            h_word = _num(h, rng, 0.8)
            return {
                15: f"quarter past {h_word}",
                30: f"half past {h_word}",
                45: f"quarter to {_num(h % 12 + 1, rng, 0.8)}",
            }[m] + (f" {mer}" if mer else "")
        if m == 0:
            core = rng.choice([f"{_num(h, rng)}", f"{_num(h, rng, 1)} o'clock", f"{h}:00"])
        elif rng.random() < 0.5:
            core = f"{h}:{m:02d}"
        else:
            minute = spoken_number(m) if m >= 10 else f"oh {spoken_number(m)}"
            core = f"{spoken_number(h)} {minute}"
        return clean_spaces(f"{core} {mer}")
    if slot_type == "date":
        r = rng.random()
        if r < 0.35:
            return rng.choice(
                [
                    "today",
                    "tomorrow",
                    "tomorrow",
                    "the day after tomorrow",
                    "tonight",
                    "next week",
                    "this afternoon",
                    "this evening",
                    "tomorrow morning",
                    "tomorrow night",
                ]
            )
        if r < 0.75:
            day = rng.choice(WEEKDAYS)
            return rng.choice([f"on {day}", day, f"next {day}", f"this {day}", f"on {day} morning"])
        if r < 0.85:
            return "this weekend"
        month = rng.choice(MONTHS)
        d = rng.randint(1, 28)
        ordinal = {1: "first", 2: "second", 3: "third"}.get(
            d, f"{d}th" if d not in (21, 22, 23) else f"{d}{ {21: 'st', 22: 'nd', 23: 'rd'}[d] }"
        )
        return rng.choice([f"{month} {ordinal}", f"on {month} {ordinal}", f"{month} {d}"])
    if slot_type == "temperature":
        n = rng.choice(list(range(60, 80)) + [20, 21, 22, 18])
        if n < 30:
            return f"{_num(n, rng)} degrees celsius"
        return rng.choice([f"{_num(n, rng)} degrees", f"{_num(n, rng)}", f"{_num(n, rng)} degrees fahrenheit"])
    if slot_type == "percentage":
        if rng.random() < 0.08:
            return "half"
        n = rng.choice([5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100])
        return rng.choice([f"{_num(n, rng)} percent", f"{n}%", f"{_num(n, rng)} percent"])
    if slot_type == "number":
        return _num(rng.randint(1, 100), rng)
    if slot_type == "ordinal":
        return rng.choice(["first", "second", "third", "fourth", "fifth", "last"])
    if slot_type == "quantity":
        unit = rng.choice(["ounces", "oz", "pounds", "lb", "cups", "gallons", "liters", "grams", "bottles", "cans"])
        r = rng.random()
        if r < 0.15:
            singular = {
                "ounces": "ounce",
                "pounds": "pound",
                "cups": "cup",
                "gallons": "gallon",
                "liters": "liter",
                "grams": "gram",
                "bottles": "bottle",
                "cans": "can",
            }.get(unit, unit)
            return rng.choice([f"half a {singular}", f"a {singular}", f"a {singular} and a half", "a dozen"])
        return f"{_num(rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32]), rng)} {unit}"
    raise KeyError(slot_type)


class UtteranceGenerator:
    """Fills intent templates with slot values; deterministic for a given RNG."""

    def __init__(self, domain: Domain, now: dt.datetime = DEFAULT_NOW, unlisted_p: float = 0.0):
        self.domain = domain
        self.now = now
        # How often a catalog slot is filled with one of the spec's ``training_phrases``
        # (names the catalog does not list) instead of a catalog value.
        self.unlisted_p = unlisted_p
        self._dealt: dict[str, int] | None = None

    def filler(self, slot_type: str, rng: random.Random, value_id: str | None = None) -> tuple[str, Any]:
        """(surface words, canonical value or catalog id) for a slot type."""
        if slot_type in BUILTIN_TYPES:
            for _ in range(20):
                text = surface_builtin(slot_type, rng)
                value = normalize(slot_type, text, self.now)
                if value is not None:
                    return text, value
            raise RuntimeError(f"no parseable {slot_type} surface generated")
        catalog = self.domain.catalog_for(slot_type)
        if catalog is None or not catalog.values:
            raise KeyError(f"no catalog values for type {slot_type!r}")
        unlisted = self.domain.training_phrases.get(slot_type)
        if value_id is None and unlisted and self.unlisted_p and rng.random() < self.unlisted_p:
            phrase = rng.choice(unlisted)
            return phrase, phrase
        if value_id:
            value = catalog.get(value_id)
        elif self._dealt is not None:  # training: every value in turn
            i = self._dealt.get(slot_type, rng.randrange(len(catalog.values)))
            self._dealt[slot_type] = i + 1
            value = catalog.values[i % len(catalog.values)]
        else:
            value = rng.choice(catalog.values)
        if value is None:
            raise KeyError(f"{value_id!r} is not in catalog {slot_type!r}")
        return rng.choice(value.phrases), value.id

    def render(
        self, intent: IntentSpec, template: str, rng: random.Random, values: Mapping[str, str] | None = None
    ) -> Example:
        """Fill one template. ``values`` pins slots to catalog ids or surface strings."""
        values = values or {}
        text = clean_spaces(choose_alternatives(template, rng))
        out, spans, slot_values, pos = [], [], {}, 0
        for m in _SLOT.finditer(text):
            out.append(text[pos : m.start()])
            name, literal = m.group(1), m.group(2)
            slot = intent.slots[name]
            if literal is not None:
                surface, value = literal, self._literal_value(slot.type, literal)
            elif name in values and slot.type in BUILTIN_TYPES:
                surface = str(values[name])
                value = normalize(slot.type, surface, self.now)
            else:
                surface, value = self.filler(slot.type, rng, values.get(name))
            start = sum(len(p) for p in out)
            out.append(surface)
            spans.append((start, start + len(surface), name))
            slot_values[name] = value
            pos = m.end()
        out.append(text[pos:])
        # The template was space-cleaned before filling and fillers are clean phrases,
        # so the spans computed above are final.
        return Example("".join(out), intent.name, tuple(spans), frozen_map(slot_values))

    @staticmethod
    def decorate(ex: Example, rng: random.Random) -> Example:
        """Sometimes wrap a request in words that carry nothing ("actually, …", "… please")."""
        prefix = rng.choice(PREFIXES) + " " if rng.random() < PREFIX_P else ""
        suffix = " " + rng.choice(SUFFIXES) if rng.random() < SUFFIX_P else ""
        if not prefix and not suffix:
            return ex
        shift = len(prefix)
        return Example(
            prefix + ex.text + suffix, ex.intent, tuple((a + shift, b + shift, s) for a, b, s in ex.spans), ex.values
        )

    def _literal_value(self, slot_type: str, literal: str) -> Any:
        if slot_type in BUILTIN_TYPES:
            return normalize(slot_type, literal, self.now)
        catalog = self.domain.catalog_for(slot_type)
        low = literal.lower()
        for v in catalog.values if catalog else ():
            if low in v.phrases:
                return v.id
        return literal

    def examples(
        self, rng: random.Random, per_intent: int = 160, include_ood: bool = True, max_per_intent: int | None = None
    ) -> list[Example]:
        """Training examples covering the whole grammar, stratified.

        Every template of an intent gets an equal share, and within a template its expansions
        are taken evenly spread over all of them; catalog values are dealt in turn, so every
        value appears. An intent gets ``per_intent`` examples, or with ``max_per_intent`` as
        many as its grammar has expansions up to that cap (NLU training: a cap that is logged,
        never silent). Intents with few distinct texts are repeated so that every intent weighs
        about the same.
        """
        out: list[Example] = []
        self._dealt = {}
        try:
            out = self._examples(rng, per_intent, per_intent if max_per_intent is None else max_per_intent)
        finally:
            self._dealt = None
        if include_ood:
            ood = [clean_spaces(s.lower()) for s in self.domain.out_of_domain]
            out.extend(Example(t, OOD_INTENT) for t in ood)
        return out

    def _examples(self, rng: random.Random, per_intent: int, max_per_intent: int) -> list[Example]:
        out: list[Example] = []
        for intent in self.domain.intents.values():
            counts = [expansion_count(t) for t in intent.samples]
            if not counts:
                continue
            base = per_intent * (2 if intent.name == "Inform" else 1)
            target = min(max(base, sum(counts)), max(base, max_per_intent))
            if sum(counts) > target:
                log.info(
                    "intent %s: its %d templates spell %d sentences; generating %d spread evenly over them",
                    intent.name,
                    len(counts),
                    sum(counts),
                    target,
                )
            seen: dict[str, Example] = {}
            for variant in _stratified(intent.samples, counts, target):
                ex = self.render(intent, variant, rng)
                if not intent.is_dialogue_act:
                    ex = self.decorate(ex, rng)
                seen.setdefault(ex.text, ex)
            # Few expansions: the same templates again with other slot values.
            variants = [v for t in intent.samples for v in all_alternatives(t, 64)]
            for i in range(4 * base):
                if len(seen) >= base or not any(SLOT_MARK in v for v in variants):
                    break
                ex = self.render(intent, variants[i % len(variants)], rng)
                if not intent.is_dialogue_act:
                    ex = self.decorate(ex, rng)
                seen.setdefault(ex.text, ex)
            exs = list(seen.values())
            floor = base // 2
            out.extend(exs)
            out.extend(exs[j % len(exs)] for j in range(max(0, floor - len(exs))))
        return out


SLOT_MARK = "{"


def _stratified(templates: Sequence[str], counts: Sequence[int], target: int) -> list[str]:
    """``target`` expansions: templates in turn, each one's expansions evenly spread."""
    share = [0] * len(templates)
    left, open_ = target, [i for i, c in enumerate(counts) if c]
    while left > 0 and open_:
        each = max(1, left // len(open_))
        for i in list(open_):
            take = min(each, counts[i] - share[i], left)
            share[i] += take
            left -= take
            if share[i] >= counts[i]:
                open_.remove(i)
            if left <= 0:
                break
    out = []
    for t, n in zip(templates, share):
        out.extend(all_alternatives(t, n))
    return out

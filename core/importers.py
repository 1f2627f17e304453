"""Bring an existing assistant's grammar: Picovoice Rhino contexts and Alexa interaction models.

Each importer is a pure function from the parsed input (a dict) to a domain spec dict (README
"Domain specs"); :func:`dump_spec` writes it as YAML. The spec loads, trains and answers as
it is: every intent records its request in the world (a ``create`` API into ``requests``) and
says back what it understood.

* Rhino (context YAML): ``expressions`` → samples, ``slots`` → catalogs marked ``literal``
  (Rhino returns the words as listed: "some milk" is not "milk"), ``@macro`` → an alternation,
  ``[a, b]`` → ``[a, b]``, ``(a, b)`` → ``[a, b, ]``, ``$type:name`` → ``{name}``, ``$pv.*``
  builtins → our builtin types (:data:`RHINO_BUILTINS`). Every slot is optional, as in Rhino.
* Alexa (interaction model JSON): ``types`` → catalogs (ids and synonyms kept), ``AMAZON.*``
  slot types → builtins (:data:`ALEXA_BUILTINS`) or open catalogs seeded with a few values,
  ``dialog`` elicitation → required slots with their prompt. Built-in intents: Stop is kept
  (with samples of our own), the others are left to our dialogue acts or skipped (noted).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from core.domain import BUILTIN_TYPES, DIALOGUE_INTENTS, OOD_INTENT, SLOT_REF, sample_problem
from core.errors import InputError

log = logging.getLogger(__name__)

WORLD_LIST = "requests"

# Rhino's builtin slots that have a builtin type here. Spelled letters (pv.Alphabetic,
# pv.Alphanumeric) have none: an expression using them is refused, named.
RHINO_BUILTINS = {
    "pv.SingleDigitInteger": "number",
    "pv.TwoDigitInteger": "number",
    "pv.Percent": "percentage",
    "pv.SingleDigitOrdinal": "ordinal",
    "pv.TwoDigitOrdinal": "ordinal",
}

ALEXA_BUILTINS = {
    "AMAZON.NUMBER": "number",
    "AMAZON.FOUR_DIGIT_NUMBER": "number",
    "AMAZON.Ordinal": "ordinal",
    "AMAZON.DURATION": "duration",
    "AMAZON.TIME": "time",
    "AMAZON.DATE": "date",
}

# Other AMAZON.* slot types become open catalogs; training needs a few values to fill them.
ALEXA_SEEDS = {
    "AMAZON.US_CITY": ["seattle", "boston", "chicago", "denver", "austin", "portland", "miami", "atlanta"],
    "AMAZON.City": ["paris", "london", "tokyo", "seattle", "toronto", "berlin", "madrid", "chicago"],
    "AMAZON.Country": ["france", "japan", "canada", "mexico", "germany", "brazil", "india", "italy"],
    "AMAZON.US_FIRST_NAME": ["alice", "bob", "carlos", "dana", "emma", "farid", "grace", "hiro"],
    "AMAZON.FirstName": ["alice", "bob", "carlos", "dana", "emma", "farid", "grace", "hiro"],
    "AMAZON.Color": ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"],
    "AMAZON.Food": ["pizza", "pasta", "salad", "soup", "tacos", "sushi", "burger", "curry"],
    "AMAZON.Language": ["english", "spanish", "french", "german", "japanese", "hindi"],
    "AMAZON.Room": ["kitchen", "living room", "bedroom", "bathroom", "office", "garage"],
    "AMAZON.SearchQuery": ["the weather in paris", "a good book", "jazz music", "the nearest pharmacy"],
}

# Built-in intents: samples of our own for those kept; the reason for those left out.
ALEXA_KEPT_INTENTS = {
    "AMAZON.StopIntent": ("Stop", ["stop", "stop it", "please stop", "that's enough", "quiet", "be quiet"]),
}
ALEXA_LEFT_INTENTS = {
    "AMAZON.CancelIntent": 'cancelling is the built-in Deny act ("cancel", "never mind")',
    "AMAZON.YesIntent": "the built-in Affirm act",
    "AMAZON.NoIntent": "the built-in Deny act",
    "AMAZON.FallbackIntent": "out-of-domain requests are declined by the NLU",
}

_RHINO_TOKEN = re.compile(
    r"\s*(?:(?P<punct>[\[\](),])|\$(?P<stype>[A-Za-z_][\w.]*):(?P<sname>[A-Za-z_]\w*)"
    r"|@(?P<macro>[A-Za-z_]\w*)|(?P<word>[^\s\[\](),$@{}]+)|(?P<bad>\S))"
)
_ID = re.compile(r"\W+")
# How a reply says a builtin value (core/templates.py filters); others are said as they are.
_SAY = {"time": "|time", "date": "|day", "duration": "|duration", "temperature": "|temperature"}


@dataclass(frozen=True)
class Imported:
    spec: Mapping  # the domain spec, ready for dump_spec
    notes: tuple[str, ...]  # what was mapped loosely or left out, one line each


# Rhino ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    name: str


@dataclass(frozen=True)
class _Alt:
    options: tuple[tuple, ...]  # each a sequence of nodes
    optional: bool


class _RhinoError(Exception):
    pass


class _RhinoParser:
    """Rhino expressions → node sequences: words (str), :class:`_Slot`, :class:`_Alt`."""

    def __init__(self, macros: Mapping[str, list], slot_types: Mapping[str, str]):
        self.macros = macros
        self.slot_types = slot_types  # Rhino type → our type
        self._expanding: list[str] = []
        self.slots: dict[str, str] = {}  # slot name → our type, for the expression parsed
        self.used_types: set[str] = set()  # Rhino slot types met in any expression

    def parse(self, text: str) -> tuple:
        tokens = self._tokens(text)
        seq, i = self._seq(tokens, 0, closer=None)
        if i != len(tokens):
            raise _RhinoError(f"unexpected {tokens[i][1]!r}")
        if not seq:
            raise _RhinoError("empty expression")
        return seq

    @staticmethod
    def _tokens(text: str) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for m in _RHINO_TOKEN.finditer(text):
            if m.group("bad"):
                raise _RhinoError(f"unexpected character {m.group('bad')!r}")
            if m.group("punct"):
                out.append(("punct", m.group("punct")))
            elif m.group("stype"):
                out.append(("slot", (m.group("stype"), m.group("sname"))))
            elif m.group("macro"):
                out.append(("macro", m.group("macro")))
            elif m.group("word"):
                out.append(("word", m.group("word").lower()))
        return out

    def _seq(self, tokens: list, i: int, closer: str | None) -> tuple[tuple, int]:
        out: list = []
        while i < len(tokens):
            kind, value = tokens[i]
            if kind == "punct" and value in ("]", ")", ","):
                if closer is None:
                    raise _RhinoError(f"unmatched {value!r}")
                break
            if kind == "punct":
                options, i = self._group(tokens, i + 1, "]" if value == "[" else ")")
                out.append(_Alt(options, optional=value == "("))
                continue
            if kind == "slot":
                out.append(self._slot(*value))
            elif kind == "macro":
                out.append(self._macro(value))
            else:
                out.append(value)
            i += 1
        return tuple(out), i

    def _group(self, tokens: list, i: int, closer: str) -> tuple[tuple, int]:
        options = []
        while True:
            seq, i = self._seq(tokens, i, closer)
            if i >= len(tokens):
                raise _RhinoError(f"unclosed {'[' if closer == ']' else '('}")
            if not seq:
                raise _RhinoError("empty choice")
            options.append(seq)
            value = tokens[i][1]
            if value == ",":
                i += 1
                continue
            if value != closer:
                raise _RhinoError(f"{value!r} closes a group opened with {'[' if closer == ']' else '('}")
            return tuple(options), i + 1

    def _slot(self, rhino_type: str, name: str) -> _Slot:
        if rhino_type.startswith("pv."):
            ours = RHINO_BUILTINS.get(rhino_type)
            if ours is None:
                raise _RhinoError(
                    f"builtin slot ${rhino_type} has no counterpart here "
                    f"(supported: {', '.join(sorted(RHINO_BUILTINS))})"
                )
        elif rhino_type in self.slot_types:
            ours = self.slot_types[rhino_type]
            self.used_types.add(rhino_type)
        else:
            raise _RhinoError(f"unknown slot type ${rhino_type} (not in context.slots)")
        prev = self.slots.setdefault(name, ours)
        if prev != ours:
            raise _RhinoError(f"slot {name!r} is used with two types")
        return _Slot(name)

    def _macro(self, name: str) -> _Alt:
        # Parsed at each use (macros are short), so that slots inside one are declared for
        # every expression that uses it.
        if name not in self.macros:
            raise _RhinoError(f"unknown macro @{name} (not in context.macros)")
        if name in self._expanding:
            raise _RhinoError(f"macro @{name} refers to itself")
        self._expanding.append(name)
        try:
            options = tuple(self.parse(str(alt)) for alt in self.macros[name])
        finally:
            self._expanding.pop()
        return _Alt(options, optional=False)


def _render(seq: tuple) -> str:
    return " ".join(p for p in (_render_node(n) for n in seq) if p)


def _render_node(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, _Slot):
        return "{" + node.name + "}"
    options, optional = _flat_options(node)
    options = list(dict.fromkeys(o.strip() for o in options))
    if "" in options:
        options.remove("")
        optional = True
    if len(options) == 1 and not optional:
        return options[0]
    return "[" + ", ".join(options) + (", ]" if optional else "]")


def _flat_options(node: _Alt) -> tuple[list[str], bool]:
    """A group's options as text. An option that is itself one group ("(@macro)") adds its
    options to this group's rather than nesting brackets."""
    options: list[str] = []
    optional = node.optional
    for option in node.options:
        if len(option) == 1 and isinstance(option[0], _Alt):
            inner, inner_optional = _flat_options(option[0])
            options.extend(inner)
            optional = optional or inner_optional
        else:
            options.append(_render(option))
    return options, optional


def _slot_order(seq: tuple, out: list[str]) -> list[str]:
    """The slots of an expression in the order said (first option of each group)."""
    for node in seq:
        if isinstance(node, _Slot):
            out.append(node.name)
        elif isinstance(node, _Alt):
            _slot_order(node.options[0], out)
    return out


def _said_order(slots: list[str], orders: list[list[str]]) -> list[str]:
    """Slots sorted by how often each comes before the others in the expressions, so that
    the reply says them in the order people do ("medium double shot americano with milk")."""

    def score(s: str) -> int:
        n = 0
        for order in orders:
            if s in order:
                i = order.index(s)
                n += sum(1 for o in order[i + 1 :] if o != s) - sum(1 for o in order[:i] if o != s)
        return n

    return sorted(slots, key=lambda s: (-score(s), slots.index(s)))


def from_rhino(data: Any, name: str, source: str = "context.yml") -> Imported:
    """A Rhino context (parsed YAML) → a domain spec."""

    def fail(reason: str, where: str | None = None) -> InputError:
        return InputError(source, reason, field=where)

    if not isinstance(data, Mapping) or not isinstance(data.get("context"), Mapping):
        raise fail("not a Rhino context (expected a top-level 'context' mapping)", "context")
    ctx = data["context"]
    expressions = ctx.get("expressions")
    if not isinstance(expressions, Mapping) or not expressions:
        raise fail("expected a mapping of intents to expression lists", "context.expressions")
    raw_slots = ctx.get("slots") or {}
    macros = ctx.get("macros") or {}
    for key, value in (("slots", raw_slots), ("macros", macros)):
        if not isinstance(value, Mapping):
            raise fail("expected a mapping", f"context.{key}")
        for k, v in value.items():
            if not isinstance(v, list) or not v or not all(isinstance(x, (str, int, float)) for x in v):
                raise fail("expected a non-empty list of phrases", f"context.{key}.{k}")

    # Our type names: Rhino's, unless one is a builtin's name or another slot's name.
    texts = [str(e) for exprs in expressions.values() if isinstance(exprs, list) for e in exprs]
    texts += [str(a) for alts in macros.values() for a in alts]
    refs = {(m.group("stype"), m.group("sname")) for t in texts for m in _RHINO_TOKEN.finditer(t) if m.group("sname")}
    type_names = _type_names(list(raw_slots), {n for t, n in refs if t != n})
    parser = _RhinoParser(macros, type_names)
    notes: list[str] = []
    catalogs = {
        type_names[t]: {"literal": True, "values": _catalog_values([str(v) for v in values])}
        for t, values in raw_slots.items()
    }

    intents: dict[str, dict] = {}
    domain_slots: dict[str, tuple[str, str]] = {}
    for intent, exprs in expressions.items():
        iw = f"context.expressions.{intent}"
        _check_intent_name(str(intent), fail, iw)
        if not isinstance(exprs, list) or not exprs:
            raise fail("expected a non-empty list of expressions", iw)
        slots: dict[str, str] = {}
        samples: list[str] = []
        orders: list[list[str]] = []
        for k, expr in enumerate(exprs):
            where = f"{iw}[{k}]"
            parser.slots = {}
            try:
                seq = parser.parse(str(expr))
            except _RhinoError as err:
                raise fail(f"{err} in {str(expr)!r}", where) from None
            for slot_name, our_type in parser.slots.items():
                prev = domain_slots.setdefault(slot_name, (our_type, str(intent)))
                if prev[0] != our_type:
                    raise fail(
                        f"slot {slot_name!r} has type {our_type} here and {prev[0]} in {prev[1]}; "
                        "a slot name needs one type across the context",
                        where,
                    )
                slots.setdefault(slot_name, our_type)
            sample = _render(seq)
            problem = sample_problem(sample, slots)
            if problem:
                raise fail(f"cannot be written as a template: {problem}", where)
            samples.append(sample)
            orders.append(_slot_order(seq, []))
        order = _said_order(list(slots), orders)
        intents[str(intent)] = _intent_spec(str(intent), {s: {"type": slots[s]} for s in order}, samples)

    unused = sorted(set(raw_slots) - parser.used_types)
    if unused:
        notes.append(f"slot types used by no expression (kept as catalogs): {', '.join(unused)}")
    spec = _spec(name, f"Imported from the Rhino context {source}.", catalogs, intents)
    spec["grammar"] = "strict"  # Rhino understands what its grammar spells, nothing else
    for n in notes:
        log.info("%s: %s", source, n)
    return Imported(spec, tuple(notes))


# Alexa ---------------------------------------------------------------------------------


def from_alexa(data: Any, name: str, source: str = "model.json") -> Imported:
    """An Alexa skill interaction model (parsed JSON) → a domain spec."""

    def fail(reason: str, where: str | None = None) -> InputError:
        return InputError(source, reason, field=where)

    root = "interactionModel.languageModel"
    model = data.get("interactionModel", data) if isinstance(data, Mapping) else None
    lm = model.get("languageModel") if isinstance(model, Mapping) else None
    if not isinstance(model, Mapping) or not isinstance(lm, Mapping) or not isinstance(lm.get("intents"), list):
        raise fail("not an Alexa interaction model (expected interactionModel.languageModel.intents)", root)
    notes: list[str] = []

    raw_types = lm.get("types") or []
    if not isinstance(raw_types, list):
        raise fail("expected a list", f"{root}.types")
    custom: dict[str, list] = {}
    for i, t in enumerate(raw_types):
        tw = f"{root}.types[{i}]"
        if not isinstance(t, Mapping) or not isinstance(t.get("name"), str):
            raise fail("expected an object with a name", tw)
        values = []
        for j, v in enumerate(t.get("values") or []):
            nm = v.get("name") if isinstance(v, Mapping) else None
            if not isinstance(nm, Mapping) or not isinstance(nm.get("value"), str) or not nm["value"].strip():
                raise fail("expected {name: {value, synonyms}}", f"{tw}.values[{j}]")
            values.append((str(v.get("id") or ""), nm["value"], [str(s) for s in nm.get("synonyms") or []]))
        if not values and t.get("valueSupplier"):
            notes.append(f"type {t['name']}: values from a catalog supplier are not imported; add values")
        custom[t["name"]] = values

    # Which types and slots are used, to name our catalogs without clashes.
    used_amazon: set[str] = set()
    refs: set[tuple[str, str]] = set()  # (type, slot name)
    for intent in lm["intents"]:
        for s in (intent.get("slots") or []) if isinstance(intent, Mapping) else []:
            if isinstance(s, Mapping):
                st = str(s.get("type"))
                refs.add((st, str(s.get("name"))))
                if st.startswith("AMAZON.") and st not in ALEXA_BUILTINS:
                    used_amazon.add(st)
    plain = {t: t for t in custom} | {t: t.split(".", 1)[1].lower() for t in sorted(used_amazon)}
    type_names = _type_names(list(plain.values()), {n for t, n in refs if plain.get(t, ALEXA_BUILTINS.get(t)) != n})
    ours = {t: type_names[p] for t, p in plain.items()}

    catalogs: dict[str, Any] = {}
    for t, values in custom.items():
        catalogs[ours[t]] = _catalog_entries(values) if values else {"open": True, "values": []}
    for t in sorted(used_amazon):
        seeds = ALEXA_SEEDS.get(t)
        if seeds is None:
            notes.append(f"{t} has no values here: add some to entities.{ours[t]} before training")
        catalogs[ours[t]] = {"open": True, "values": _catalog_values(seeds or [])}

    prompts = _alexa_prompts(model)
    elicit = _alexa_elicitation(model, prompts)
    intents: dict[str, dict] = {}
    domain_slots: dict[str, tuple[str, str]] = {}
    for i, intent in enumerate(lm["intents"]):
        iw = f"{root}.intents[{i}]"
        if not isinstance(intent, Mapping) or not isinstance(intent.get("name"), str):
            raise fail("expected an object with a name", iw)
        iname = intent["name"]
        raw_samples = intent.get("samples") or []
        if not isinstance(raw_samples, list):
            raise fail("expected a list", f"{iw}.samples")
        if iname.startswith("AMAZON."):
            if iname in ALEXA_KEPT_INTENTS:
                ours_name, own = ALEXA_KEPT_INTENTS[iname]
                intents[ours_name] = _intent_spec(
                    ours_name, {}, list(dict.fromkeys([str(s).lower() for s in raw_samples] + own)), reply="Okay."
                )
                notes.append(f"{iname} → {ours_name} (with samples of our own)")
            else:
                why = ALEXA_LEFT_INTENTS.get(iname, "a built-in intent with no counterpart here")
                notes.append(f"{iname} skipped: {why}")
            continue
        _check_intent_name(iname, fail, iw)
        slots: dict[str, dict] = {}
        for j, s in enumerate(intent.get("slots") or []):
            sw = f"{iw}.slots[{j}]"
            if not isinstance(s, Mapping) or not isinstance(s.get("name"), str) or not isinstance(s.get("type"), str):
                raise fail("expected an object with a name and a type", sw)
            sname, stype = s["name"], s["type"]
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", sname):
                raise fail(f"slot name {sname!r} is not an identifier", f"{sw}.name")
            if stype in ALEXA_BUILTINS:
                our_type = ALEXA_BUILTINS[stype]
            elif stype in ours:
                our_type = ours[stype]
            else:
                raise fail(f"unknown slot type {stype!r} (not in {root}.types)", f"{sw}.type")
            prev = domain_slots.setdefault(sname, (our_type, iname))
            if prev[0] != our_type:
                raise fail(
                    f"slot {sname!r} has type {stype} here and another in {prev[1]}; "
                    "a slot name needs one type across the skill",
                    sw,
                )
            slot: dict[str, Any] = {"type": our_type}
            if (iname, sname) in elicit:
                slot["required"] = True
                if elicit[iname, sname]:
                    slot["prompt"] = elicit[iname, sname]
            slots[sname] = slot
        samples = []
        for j, sample in enumerate(raw_samples):
            text = re.sub(r"\s+", " ", str(sample)).strip()
            problem = sample_problem(text, slots) if text else "empty sample"
            if problem:
                raise fail(problem, f"{iw}.samples[{j}]")
            samples.append(text)
        if not samples:
            notes.append(f"{iname} skipped: it has no samples")
            continue
        order = _said_order(list(slots), [[m.group(1) for m in SLOT_REF.finditer(t)] for t in samples])
        intents[iname] = _intent_spec(iname, {s: slots[s] for s in order}, samples)
    if not intents:
        raise fail("no intent with samples to import", f"{root}.intents")
    invocation = lm.get("invocationName")
    description = (
        f"Imported from the Alexa skill {invocation!r} ({source})."
        if invocation
        else f"Imported from the Alexa interaction model {source}."
    )
    for n in notes:
        log.info("%s: %s", source, n)
    return Imported(_spec(name, description, catalogs, intents), tuple(notes))


def _alexa_prompts(model: Mapping) -> dict[str, str | None]:
    """Prompt id → its first plain-text variation (None when it needs templating)."""
    out: dict[str, str | None] = {}
    for p in model.get("prompts") or []:
        if not isinstance(p, Mapping):
            continue
        texts = [
            v.get("value")
            for v in p.get("variations") or []
            if isinstance(v, Mapping) and v.get("type", "PlainText") == "PlainText" and isinstance(v.get("value"), str)
        ]
        # Our prompts are said as written: one naming a slot ({size}) cannot be used.
        out[str(p.get("id"))] = next((t for t in texts if isinstance(t, str) and "{" not in t), None)
    return out


def _alexa_elicitation(model: Mapping, prompts: Mapping) -> dict[tuple[str, str], str | None]:
    out: dict[tuple[str, str], str | None] = {}
    dialog = model.get("dialog") or {}
    for intent in dialog.get("intents") or [] if isinstance(dialog, Mapping) else []:
        for s in intent.get("slots") or [] if isinstance(intent, Mapping) else []:
            if isinstance(s, Mapping) and s.get("elicitationRequired"):
                pid = (s.get("prompts") or {}).get("elicitation")
                out[str(intent.get("name")), str(s.get("name"))] = prompts.get(str(pid))
    return out


# Shared --------------------------------------------------------------------------------


def _check_intent_name(name: str, fail, where: str) -> None:
    if name in DIALOGUE_INTENTS or name == OOD_INTENT:
        raise fail(f"intent name {name!r} is reserved here for a dialogue act", where)


def _type_names(types: list[str], other_slots: set[str]) -> dict[str, str]:
    """Catalog names: as given, unless that is a builtin type's name or the name of a slot of
    another type (the loader refuses both); then with a "Type" suffix."""
    out: dict[str, str] = {}
    taken = set(types) | set(BUILTIN_TYPES) | set(other_slots)
    for t in types:
        name = t
        if t in BUILTIN_TYPES or t in other_slots:
            name = t + "Type"
            while name in taken:
                name += "_"
            taken.add(name)
        out[t] = name
    return out


def _derived_id(text: str) -> str:
    return _ID.sub("_", text.lower()).strip("_")


def _catalog_values(values: list[str]) -> list:
    """Plain strings (ids derived by the loader) unless two would get the same id."""
    seen: set[str] = set()
    out: list = []
    for v in values:
        vid = _derived_id(v) or "value"
        if vid in seen:
            base, n = vid, 2
            while f"{base}_{n}" in seen:
                n += 1
            vid = f"{base}_{n}"
            out.append({"id": vid, "name": v})
        else:
            out.append(v)
        seen.add(vid)
    return out


def _catalog_entries(values: list[tuple[str, str, list[str]]]) -> list:
    seen: set[str] = set()
    out = []
    for given, value, synonyms in values:
        vid = given or _derived_id(value) or "value"
        base, n = vid, 2
        while vid in seen:
            vid, n = f"{base}_{n}", n + 1
        seen.add(vid)
        entry: dict[str, Any] = {"id": vid, "name": value}
        if synonyms:
            entry["synonyms"] = synonyms
        out.append(entry)
    return out


def _words(intent: str) -> str:
    """ "orderBeverage" / "OrderPizzaIntent" → "order beverage" / "order pizza"."""
    name = re.sub(r"Intent$", "", intent) or intent
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[_.\-]+", " ", name).lower().strip()


def _intent_spec(intent: str, slots: dict, samples: list[str], reply: str | None = None) -> dict:
    # Missing optional slots render as nothing, so the reply names the request first and the
    # slots after it: "Okay: order beverage medium latte." reads well with any of them missing.
    said = " ".join("{" + s + _SAY.get(body["type"], "") + "}" for s, body in slots.items())
    body: dict[str, Any] = {}
    if slots:
        body["slots"] = slots
    body["samples"] = samples
    body["api"] = intent
    body["responses"] = {"ok": reply or f"Okay: {_words(intent)} {said}".rstrip() + "."}
    return body


def _spec(name: str, description: str, catalogs: dict, intents: dict) -> dict:
    apis = {}
    for intent, body in intents.items():
        record = {"intent": intent, **{s: "{" + s + "}" for s in body.get("slots", {})}}
        apis[intent] = {"create": {"in": WORLD_LIST, "prefix": "req", "record": record}}
    spec: dict[str, Any] = {"domain": name, "description": description}
    if catalogs:
        spec["entities"] = catalogs
    spec["intents"] = intents
    spec["apis"] = apis
    spec["world"] = {WORLD_LIST: []}
    return spec


def dump_spec(spec: Mapping, header: list[str] | tuple[str, ...] = ()) -> str:
    """The spec as YAML, after ``# `` header lines; short mappings and lists on one line."""

    class _Dumper(yaml.SafeDumper):
        pass

    def flow_if_short(dumper, data, tag):
        node = (dumper.represent_mapping if tag == "map" else dumper.represent_sequence)(
            f"tag:yaml.org,2002:{tag}", data
        )
        if tag == "seq":
            node.flow_style = not data
        else:
            node.flow_style = len(str(data)) < 100 and all(
                isinstance(x, (str, int, float, bool))
                or isinstance(x, list)
                and all(isinstance(y, (str, int, float, bool)) for y in x)
                for x in data.values()
            )
        return node

    def text(dumper, data):
        # Templates are full of [ { , ' : double quotes keep them readable (no '' escapes).
        style = '"' if re.search(r"[\[\]{}:#,'\"]", data) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    _Dumper.add_representer(str, text)
    _Dumper.add_representer(dict, lambda d, x: flow_if_short(d, x, "map"))
    _Dumper.add_representer(list, lambda d, x: flow_if_short(d, x, "seq"))
    body = yaml.dump(dict(spec), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6)
    return "".join(f"# {line}\n" for line in header) + body

"""Domain specs: intents, slots, catalogs, APIs, responses and the initial world, from YAML.

A spec is data. :func:`load_domain` validates it up front (one-line errors naming the file
and the field) and returns an immutable :class:`Domain` that every stage reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Collection, Mapping

import yaml

from core.errors import InputError
from core.records import frozen_map

log = logging.getLogger(__name__)

DOMAINS_DIR = Path(__file__).parent / "domains"
BUILTIN_TYPES = ("number", "ordinal", "time", "date", "duration", "temperature", "percentage", "quantity")
DIALOGUE_INTENTS = ("Affirm", "Deny", "Inform")
OOD_INTENT = "__ood__"
API_KINDS = ("python", "state", "list_add", "list_read", "list_remove", "create", "lookup")
GRAMMAR_MODES = ("open", "strict")
CONTEXT_RULES = ("prefer_on", "otherwise", "home", "modality", "room")

_WORD = re.compile(r"[a-z']+|\d+(?:[.:]\d+)?")
# Words that say which kind of a title is meant (a catalog value's ``modality`` attribute):
# "play the audiobook the hobbit", "i want to listen to dune", "watch frozen".
MODALITY_WORDS: Mapping[str, frozenset[str]] = {
    **dict.fromkeys(("movie", "movies", "film", "watch", "show"), frozenset({"visual"})),
    **dict.fromkeys(("audiobook", "audiobooks", "listen", "hear"), frozenset({"audio"})),
    "book": frozenset({"text"}),
    **dict.fromkeys(("read", "reading"), frozenset({"text", "audio"})),
}


def said_modalities(request: str, slot_text: str = "") -> frozenset[str]:
    """The kinds of a title the words of a request allow ("listen to dune": audio), or none.
    The title's own words do not count ("the book thief" is a film's name)."""
    words = re.findall(r"[a-z']+", request.lower())
    title = re.findall(r"[a-z']+", slot_text.lower())
    for i in range(len(words) - len(title) + 1):
        if title and words[i : i + len(title)] == title:
            words = words[:i] + words[i + len(title) :]
            break
    words = re.sub(r"\baudio book\b", "audiobook", " ".join(words)).split()
    allowed: frozenset[str] = frozenset()
    for w in words:
        said = MODALITY_WORDS.get(w)
        if said is not None:
            allowed = (allowed & said or allowed) if allowed else said
    return allowed


# A slot reference in a sample: {slot} or {slot:literal words}. Names are identifiers in any case
# (Rhino and Alexa name slots in camelCase); literal words hold no brackets or braces.
SLOT_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}\[\]]+))?\}")


@dataclass(frozen=True)
class CatalogValue:
    id: str
    name: str
    synonyms: tuple[str, ...] = ()
    attributes: Mapping = field(default_factory=frozen_map)

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every way the value may be said, display name first, without duplicates."""
        seen: dict[str, None] = {}
        for p in (self.name, *self.synonyms):
            seen.setdefault(p.lower(), None)
        return tuple(seen)


@dataclass(frozen=True)
class Catalog:
    type: str
    values: tuple[CatalogValue, ...]
    open: bool = False  # unknown values are accepted as free text
    literal: bool = False  # phrases match as said: leading "some"/"the" are words of the value

    def get(self, value_id: str) -> CatalogValue | None:
        return next((v for v in self.values if v.id == value_id), None)


@dataclass(frozen=True)
class SlotSpec:
    name: str
    type: str
    required: bool = False
    prompt: str | None = None
    default: Any = None
    context: Mapping | None = None


@dataclass(frozen=True)
class IntentSpec:
    name: str
    slots: Mapping[str, SlotSpec] = field(default_factory=frozen_map)
    samples: tuple[str, ...] = ()
    api: str | None = None
    args: Mapping = field(default_factory=frozen_map)
    confirm: str | None = None
    responses: Mapping[str, str] = field(default_factory=frozen_map)
    require_one: tuple[str, ...] = ()
    prompt: str | None = None

    @property
    def is_dialogue_act(self) -> bool:
        return self.name in DIALOGUE_INTENTS


@dataclass(frozen=True)
class ApiSpec:
    name: str
    kind: str
    config: Mapping


@dataclass(frozen=True)
class TrainingCorpus:
    """A file of real annotated commands (JSON lines, see stages.nlu.corpora.read_domain_corpus)
    a spec trains on: ``part`` keeps one part of it; ``repeat`` (how many times each command
    counts) and ``refills`` (how many more times it is said with other slot values) are None
    where the spec leaves them to the trainer."""

    file: str
    part: str | None = None
    repeat: int | None = None
    refills: int | None = None


@dataclass(frozen=True, eq=False)  # identity: one object per loaded spec (and hashable)
class Domain:
    name: str
    description: str
    catalogs: Mapping[str, Catalog]
    intents: Mapping[str, IntentSpec]
    apis: Mapping[str, ApiSpec]
    world: Mapping  # initial world state (JSON-like); copied per session
    out_of_domain: tuple[str, ...]
    responses: Mapping[str, str]
    source: str
    digest: str  # content hash of everything that shapes the trained NLU
    # Catalog type → phrases said for such a slot that the catalog does not list (real names of
    # artists, places…): training only, so that slots are found by their context, not by name.
    training_phrases: Mapping[str, tuple[str, ...]] = field(default_factory=frozen_map)
    # Real annotated commands to train on (the spec's ``training_examples``).
    training_corpora: tuple[TrainingCorpus, ...] = ()
    # "strict": a request is understood only when one of its intent's templates matches it
    # whole, as in a grammar-based engine (an imported Rhino context); "open": templates teach.
    grammar: str = "open"

    @property
    def slot_types(self) -> dict[str, str]:
        """Slot name → type over all intents (a name has one type across the domain)."""
        out: dict[str, str] = {}
        for intent in self.intents.values():
            for slot in intent.slots.values():
                out[slot.name] = slot.type
        return out

    def catalog_for(self, slot_type: str) -> Catalog | None:
        return self.catalogs.get(slot_type)

    def response(self, intent: str | None, status: str) -> str | None:
        spec = self.intents.get(intent) if intent else None
        if spec and status in spec.responses:
            return spec.responses[status]
        return self.responses.get(status)


DEFAULT_RESPONSES = {
    "out_of_domain": "Sorry, I can't help with that.",
    "error": "Sorry, something went wrong and I couldn't do that.",
    "failed": "Sorry, I couldn't do that.",
    "not_found": "Sorry, I couldn't find that.",
    "unchanged": "It's already done.",
    "cancelled": "Okay, I won't.",
    "nothing_pending": "Okay.",
    "clarify": "Did you mean {options}?",
    "not_understood": "Sorry, I didn't catch that.",
}


class _SpecReader:
    """Validating accessors that name the file and field in every error."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, reason: str) -> InputError:
        return InputError(self.path, reason, field=where)

    def mapping(self, value: Any, where: str) -> Mapping:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        return value

    def seq(self, value: Any, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {type(value).__name__}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "expected a non-empty string")
        return value


def _read_yaml(path: Path) -> Mapping:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "no such domain spec") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise InputError(path, f"invalid YAML ({getattr(err, 'problem', err)})", field=where) from None
    if not isinstance(data, Mapping):
        raise InputError(path, "a domain spec must be a YAML mapping")
    return data


def _catalogs(r: _SpecReader, raw: Any) -> dict[str, Catalog]:
    out = {}
    for type_name, body in r.mapping(raw, "entities").items():
        where = f"entities.{type_name}"
        if type_name in BUILTIN_TYPES:
            raise r.fail(where, f"{type_name!r} is a builtin type and cannot be a catalog")
        is_open = is_literal = False
        if isinstance(body, Mapping):
            unknown = set(body) - {"open", "literal", "values"}
            if unknown:
                raise r.fail(where, f"unknown keys {sorted(unknown)} (known: literal, open, values)")
            is_open, is_literal = body.get("open", False), body.get("literal", False)
            for key, flag in (("open", is_open), ("literal", is_literal)):
                if not isinstance(flag, bool):  # a quoted "false" must not read as true
                    raise r.fail(f"{where}.{key}", f"expected true or false, got {flag!r}")
            body = body.get("values")
        values = []
        for i, v in enumerate(r.seq(body, where)):
            vw = f"{where}[{i}]"
            if isinstance(v, str):
                v = {"id": re.sub(r"\W+", "_", v.lower()).strip("_"), "name": v}
            v = r.mapping(v, vw)
            values.append(
                CatalogValue(
                    id=r.text(v.get("id"), f"{vw}.id"),
                    name=r.text(v.get("name", v.get("id")), f"{vw}.name"),
                    synonyms=tuple(str(s) for s in r.seq(v.get("synonyms"), f"{vw}.synonyms")),
                    attributes=frozen_map(r.mapping(v.get("attributes"), f"{vw}.attributes")),
                )
            )
        ids = [v.id for v in values]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise r.fail(where, f"duplicate ids {sorted(dup)}")
        if not values and not is_open:
            raise r.fail(where, "a closed catalog needs at least one value")
        out[type_name] = Catalog(type_name, tuple(values), is_open, is_literal)
    return out


def sample_problem(sample: str, slots: Collection[str]) -> str | None:
    """Why a sample template is malformed, or None. Every ``{...}`` must be a well-formed
    reference to one of ``slots`` (otherwise it would be trained as literal text) and every
    ``[`` must be closed."""
    depth = 0
    i = 0
    while i < len(sample):
        c = sample[i]
        if c == "{":
            end, nested = sample.find("}", i), sample.find("{", i + 1)
            if end < 0 or 0 <= nested < end:
                return f"unclosed {{ at character {i + 1}"
            ref = SLOT_REF.fullmatch(sample, i, end + 1)
            if ref is None:
                return (
                    f"malformed placeholder {sample[i : end + 1]} (expected {{slot}} or {{slot:words}}, "
                    "a slot name being letters, digits and _)"
                )
            if ref.group(1) not in slots:
                return f"refers to undeclared slot {{{ref.group(1)}}}"
            i = end + 1
            continue
        if c == "}":
            return f"unmatched }} at character {i + 1}"
        if c == "[":
            depth += 1
        elif c == "]":
            if depth == 0:
                return f"unmatched ] at character {i + 1}"
            depth -= 1
        i += 1
    return "unclosed [" if depth else None


def yaml_line(path: Path, keys: tuple) -> int | None:
    """The line (from 1) of the node at ``keys`` in a YAML file, for error messages; None when
    it cannot be told. Only called on the error path: it parses the file again."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                node = next(v for k, v in node.value if k.value == str(key))
            elif isinstance(node, yaml.SequenceNode):
                node = node.value[key]
            else:
                return None
        return node.start_mark.line + 1
    except (OSError, UnicodeDecodeError, yaml.YAMLError, StopIteration, IndexError, TypeError):
        return None


def _intent(r: _SpecReader, name: str, body: Mapping, known_types: set[str]) -> IntentSpec:
    where = f"intents.{name}"
    body = r.mapping(body, where)
    slots = {}
    for slot_name, s in r.mapping(body.get("slots"), f"{where}.slots").items():
        sw = f"{where}.slots.{slot_name}"
        s = r.mapping(s, sw)
        slot_type = r.text(s.get("type"), f"{sw}.type")
        if slot_type not in known_types:
            raise r.fail(f"{sw}.type", f"unknown type {slot_type!r} (catalogs and {', '.join(BUILTIN_TYPES)})")
        ctx = s.get("context")
        if ctx is not None:
            for rule in r.mapping(ctx, f"{sw}.context"):
                if rule not in CONTEXT_RULES:
                    raise r.fail(f"{sw}.context", f"unknown rule {rule!r} (known: {', '.join(CONTEXT_RULES)})")
        slots[slot_name] = SlotSpec(
            name=slot_name,
            type=slot_type,
            required=bool(s.get("required", False)),
            prompt=s.get("prompt"),
            default=s.get("default"),
            context=frozen_map(ctx) if ctx is not None else None,
        )
    samples = tuple(str(x) for x in r.seq(body.get("samples"), f"{where}.samples"))
    for i, sample in enumerate(samples):
        problem = sample_problem(sample, slots)
        if problem:
            line = yaml_line(r.path, ("intents", name, "samples", i))
            raise r.fail(f"{where}.samples[{i}]" + (f" (line {line})" if line else ""), problem)
    require_one = tuple(r.seq(body.get("require_one"), f"{where}.require_one"))
    for s in require_one:
        if s not in slots:
            raise r.fail(f"{where}.require_one", f"undeclared slot {s!r}")
    responses = {
        str(k): r.text(v, f"{where}.responses.{k}")
        for k, v in r.mapping(body.get("responses"), f"{where}.responses").items()
    }
    return IntentSpec(
        name=name,
        slots=frozen_map(slots),
        samples=samples,
        api=body.get("api"),
        args=frozen_map(r.mapping(body.get("args"), f"{where}.args")),
        confirm=body.get("confirm"),
        responses=frozen_map(responses),
        require_one=require_one,
        prompt=body.get("prompt"),
    )


def _apis(r: _SpecReader, raw: Any) -> dict[str, ApiSpec]:
    out = {}
    for name, body in r.mapping(raw, "apis").items():
        where = f"apis.{name}"
        body = dict(r.mapping(body, where))
        if "python" in body:
            kind = "python"
        elif any(k in body for k in ("list_add", "list_read", "list_remove", "create", "lookup")):
            kind = next(k for k in ("list_add", "list_read", "list_remove", "create", "lookup") if k in body)
        elif "select" in body or "set" in body or "get" in body:
            kind = "state"
        else:
            raise r.fail(where, f"an API needs one of: python, select/set/get, {', '.join(API_KINDS[2:])}")
        out[name] = ApiSpec(name, kind, frozen_map(body))
    return out


def _inform_intent(r: _SpecReader, patterns: list[str], slot_types: set[str]) -> IntentSpec:
    """Bare answers: one slot per type, named after the type."""
    slots = {t: SlotSpec(name=t, type=t) for t in sorted(slot_types)}
    samples = tuple(p.replace("{type}", "{" + t + "}") for p in patterns for t in sorted(slot_types))
    return IntentSpec(name="Inform", slots=frozen_map(slots), samples=samples)


def _digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def resolve_domain_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return DOMAINS_DIR / f"{name_or_path}.yaml"


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int) -> Domain:
    return _load(Path(path))


def load_domain(name_or_path: str | Path) -> Domain:
    """Load a spec by name (``home``) or path. Cached while the file is unchanged."""
    path = resolve_domain_path(name_or_path)
    if not path.is_file():
        raise InputError(path, "no such domain spec")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)


def _load(path: Path) -> Domain:
    r = _SpecReader(path)
    raw = _read_yaml(path)
    shared = _read_yaml(DOMAINS_DIR / "_dialogue.yaml")
    name = r.text(raw.get("domain"), "domain")
    catalogs = _catalogs(r, raw.get("entities"))
    known_types = set(catalogs) | set(BUILTIN_TYPES)
    intents: dict[str, IntentSpec] = {}
    for intent_name, body in r.mapping(raw.get("intents"), "intents").items():
        if intent_name in DIALOGUE_INTENTS or intent_name == OOD_INTENT:
            raise r.fail(f"intents.{intent_name}", "this name is reserved for dialogue acts")
        intents[intent_name] = _intent(r, intent_name, body, known_types)
    if not intents:
        raise r.fail("intents", "a domain needs at least one intent")

    # One type per slot name across the domain: the NER label is the slot name.
    seen_types: dict[str, tuple[str, str]] = {}
    used_types: set[str] = set()
    for intent in intents.values():
        for slot in intent.slots.values():
            used_types.add(slot.type)
            prev = seen_types.setdefault(slot.name, (slot.type, intent.name))
            if prev[0] != slot.type:
                raise r.fail(
                    f"intents.{intent.name}.slots.{slot.name}",
                    f"type {slot.type!r} differs from {prev[0]!r} in {prev[1]}; "
                    "a slot name must have one type across the domain",
                )
    clash = {t for t in used_types if t in seen_types and seen_types[t][0] != t}
    if clash:
        raise r.fail("intents", f"slot names {sorted(clash)} shadow types of the same name")

    sr = _SpecReader(DOMAINS_DIR / "_dialogue.yaml")
    for act in ("Affirm", "Deny"):
        body = sr.mapping(shared["intents"][act], f"intents.{act}")
        intents[act] = IntentSpec(name=act, samples=tuple(body["samples"]))
    intents["Inform"] = _inform_intent(sr, list(shared["intents"]["Inform"]["patterns"]), used_types)

    apis = _apis(r, raw.get("apis"))
    for intent in intents.values():
        if intent.api and intent.api not in apis:
            raise r.fail(f"intents.{intent.name}.api", f"unknown API {intent.api!r}")

    ood_local = [str(s) for s in r.seq(raw.get("out_of_domain"), "out_of_domain")]
    ood = list(ood_local)
    for i, entry in enumerate(r.seq(raw.get("out_of_domain_files"), "out_of_domain_files")):
        where = f"out_of_domain_files[{i}]"
        # FILE, or {file: FILE, exclude: [SOURCE-PREFIX, ...]} to leave out some sources'
        # lines (a restaurant domain cannot decline SNIPS' BookRestaurant requests).
        if isinstance(entry, Mapping):
            rel = r.text(entry.get("file"), f"{where}.file")
            exclude = tuple(str(x) for x in r.seq(entry.get("exclude"), f"{where}.exclude"))
        else:
            rel, exclude = r.text(entry, where), ()
        f = path.parent / rel
        if not f.is_file():
            raise r.fail(where, f"no such file {rel}")
        # Lines are TEXT or SOURCE<TAB>TEXT.
        for line in f.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            source, _tab, text = line.rpartition("\t")
            if exclude and source and source.startswith(exclude):
                continue
            ood.append(text.strip())
    shared_ood = DOMAINS_DIR / "_out_of_domain.txt"
    if shared_ood.is_file():
        ood.extend(
            line.strip()
            for line in shared_ood.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        )
    # Sentences of the shared files this domain serves ("order a pizza" for a restaurant domain).
    served = {str(x).strip().lower() for x in r.seq(raw.get("out_of_domain_exclude"), "out_of_domain_exclude")}
    ood = [x for x in ood if x.lower() not in served]

    grammar = raw.get("grammar", "open")
    if grammar not in GRAMMAR_MODES:
        raise r.fail("grammar", f"expected one of {', '.join(GRAMMAR_MODES)}, got {grammar!r}")
    phrases = _training_phrases(r, raw.get("training_phrases"), path.parent, catalogs)
    corpora = []
    for i, entry in enumerate(r.seq(raw.get("training_examples"), "training_examples")):
        where = f"training_examples[{i}]"
        entry = r.mapping(entry, where) if not isinstance(entry, str) else {"file": entry}
        f = path.parent / r.text(entry.get("file"), f"{where}.file")
        if not f.is_file():
            raise r.fail(f"{where}.file", f"no such file {entry.get('file')}")
        part = entry.get("part")
        if part is not None and not isinstance(part, str):
            raise r.fail(f"{where}.part", "expected a part name such as tune")
        counts = {}
        for key, least in (("repeat", 1), ("refills", 0)):
            value = entry.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise r.fail(f"{where}.{key}", f"expected a whole number ≥ {least}, got {value!r}")
            counts[key] = value
        corpora.append(TrainingCorpus(str(f), part, **counts))

    responses = dict(DEFAULT_RESPONSES)
    responses.update({str(k): str(v) for k, v in r.mapping(raw.get("responses"), "responses").items()})
    world = r.mapping(raw.get("world"), "world")
    digest = _digest(
        name,
        {k: [(v.id, v.name, v.synonyms) for v in c.values] for k, c in catalogs.items()},
        {k: (sorted(v.slots), [(s.name, s.type) for s in v.slots.values()], v.samples) for k, v in intents.items()},
        ood,
        {k: list(v) for k, v in phrases.items()},
        # counts only where set: the digests of specs that leave them to the trainer stay as they were
        [
            (Path(c.file).name, c.part, _file_digest(Path(c.file)))
            + ((c.repeat, c.refills) if (c.repeat, c.refills) != (None, None) else ())
            for c in corpora
        ],
    )
    log.debug("loaded domain %s from %s (%d intents)", name, path, len(intents))
    return Domain(
        name=name,
        description=str(raw.get("description", "")),
        catalogs=frozen_map(catalogs),
        intents=frozen_map(intents),
        apis=frozen_map(apis),
        world=frozen_map(world),
        out_of_domain=tuple(dict.fromkeys(ood)),
        responses=frozen_map(responses),
        source=str(path),
        digest=digest,
        training_phrases=frozen_map(phrases),
        training_corpora=tuple(corpora),
        grammar=grammar,
    )


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _training_phrases(r: _SpecReader, raw: Any, folder: Path, catalogs: Mapping) -> dict[str, tuple[str, ...]]:
    """``training_phrases: {TYPE: FILE or [phrase, …]}``; a file has one phrase a line."""
    out = {}
    for type_name, body in r.mapping(raw, "training_phrases").items():
        where = f"training_phrases.{type_name}"
        if type_name not in catalogs:
            raise r.fail(where, f"no catalog {type_name!r}")
        if isinstance(body, str):
            f = folder / body
            if not f.is_file():
                raise r.fail(where, f"no such file {body}")
            lines = f.read_text(encoding="utf-8").splitlines()
        else:
            lines = [str(x) for x in r.seq(body, where)]
        phrases = tuple(dict.fromkeys(x.strip().lower() for x in lines if x.strip() and not x.startswith("#")))
        if not phrases:
            raise r.fail(where, "no phrases")
        out[type_name] = phrases
    return out


@lru_cache(maxsize=32)
def domain_vocabulary(domain: Domain) -> frozenset[str]:
    """Every word the domain's samples and catalogs use, plus number words (lower case)."""
    from core.normalize import BUILTIN_WORDS

    words: set[str] = set(BUILTIN_WORDS)
    for intent in domain.intents.values():
        for sample in intent.samples:
            words.update(_WORD.findall(SLOT_REF.sub(" ", sample.lower())))
    for catalog in domain.catalogs.values():
        for value in catalog.values:
            for phrase in value.phrases:
                words.update(_WORD.findall(phrase.lower()))
    return frozenset(words)


def catalog_words(domain: Domain) -> frozenset[str]:
    """The words of the domain's catalog values, names and synonyms (lower case): the words
    that name a thing ("front", "door", "heating"), not the ones that ask for something."""
    return frozenset(
        w
        for catalog in domain.catalogs.values()
        for value in catalog.values
        for phrase in value.phrases
        for w in _WORD.findall(phrase.lower())
    )


def vocabulary_share(text: str, vocabulary: frozenset[str]) -> float:
    """The share of the words in ``text`` that the vocabulary knows (numbers count as known)."""
    words = _WORD.findall(text.lower().replace("-", " "))
    if not words:
        return 0.0
    return sum(w in vocabulary or w[0].isdigit() for w in words) / len(words)

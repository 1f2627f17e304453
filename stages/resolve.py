"""Entity resolution: slot words → catalog entities, ranked with context; dialogue carryover.

Matching goes exact → fuzzy → phonetic (sounds-alike, for ASR confusions such as
"Jimmy Hendrix") → embedding (optional). Candidates are then re-ranked with context: the
device's screen, the user's history and home location, device state. When the best
candidates stay too close to call, the resolution carries a clarification question.

This stage also joins a turn to the dialogue: an answer to a question the assistant asked
("ten minutes" after "for how long?"), a pronoun ("turn it off"), or a follow-up that only
changes one slot ("and in the bedroom").
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Callable, Mapping

from core.domain import BUILTIN_TYPES, Catalog, Domain, IntentSpec, SlotSpec, said_modalities
from core.fillers import says_nothing, strip_edge_fillers
from core.records import (
    Candidate,
    Clarification,
    Entity,
    Interpretation,
    Resolution,
    Slot,
    frozen_map,
)

log = logging.getLogger(__name__)

PRONOUNS = {"it", "that", "them", "this", "those", "again", "there"}
# "it is too bright", "how warm is it inside", "is there …": the dummy subject of a state,
# not a thing said before
_DUMMY = frozenset({"it", "this", "that", "there"})
_DUMMY_AFTER = frozenset("is was will would gets got feels looks seems".split())
_DUMMY_BEFORE = frozenset("is was will does did isn't wasn't".split())
LEADING_FILLERS = re.compile(r"^(?:the|my|our|a|an|some|to|for|in|at|on|me)\s+")
ORDINAL_WORDS = {"first": 0, "second": 1, "third": 2, "last": -1, "1st": 0, "2nd": 1, "3rd": 2}
HISTORY_BONUS = 0.1
HOME_REGION_BONUS = 0.1
# Words around a title that say which kind of it is meant (core.domain.said_modalities)
# outweigh the screen's guess, the user's history and the home region.
SAID_MODALITY_BONUS = 0.5


@dataclass(frozen=True)
class ResolveOptions:
    fuzzy_threshold: float = 80.0
    phonetic: bool = True
    # MiniLM embedding match, the last resort for closed catalogs ("restroom" → bathroom,
    # "the fellowship of the ring" → The Lord of the Rings). Measured on 41 paraphrases and 45
    # values no catalog holds (docs/nlu.md "Entity resolution"): at cosine ≥ 0.72 it recovers half of
    # the paraphrases, but also maps "guest room" to the family room, so a match below
    # ``embedding_accept`` is offered as a question ("Did you mean the living room?").
    embedding: bool = True
    embedding_threshold: float = 0.72
    embedding_accept: float = 0.85
    clarify_margin: float = 0.05


def literal_phrase(text: str) -> str:
    """Lower case, punctuation gone, single spaces: the words as said."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w' ]+", " ", text.lower())).strip()


def clean_phrase(text: str) -> str:
    text = literal_phrase(text)
    prev = None
    while prev != text:
        prev, text = text, LEADING_FILLERS.sub("", text)
    return text.strip()


def phrase_normalizer(catalog: Catalog) -> Callable[[str], str]:
    """How the resolver reads a catalog's phrases and what is said for it. A literal catalog
    keeps leading words ("some milk" is not "milk")."""
    return literal_phrase if catalog.literal else clean_phrase


def catalog_collisions(domain: Domain) -> list[tuple[str, str, tuple[str, ...]]]:
    """(catalog type, phrase, value ids) for every phrase two or more values of one catalog
    share once normalized as the resolver reads that catalog. Saying such a phrase leaves
    the choice to context (the screen, history, home region) or to a question."""
    out = []
    for type_name, catalog in domain.catalogs.items():
        norm = phrase_normalizer(catalog)
        owners: dict[str, list[str]] = {}
        for v in catalog.values:
            for p in v.phrases:
                ids = owners.setdefault(norm(p), [])
                if v.id not in ids:
                    ids.append(v.id)
        out.extend((type_name, phrase, tuple(ids)) for phrase, ids in owners.items() if len(ids) > 1)
    return out


@lru_cache(maxsize=32)
def _warn_collisions(domain: Domain) -> None:
    """Once per loaded domain: shared phrases in catalogs no slot ranks by a context rule,
    which only a question ("Did you mean some milk or milk?") or user history can settle."""
    ranked = {s.type for i in domain.intents.values() for s in i.slots.values() if s.context}
    loose = [c for c in catalog_collisions(domain) if c[0] not in ranked]
    if loose:
        shown = "; ".join(f"{t} {p!r}: {', '.join(ids)}" for t, p, ids in loose[:5])
        more = f" (+{len(loose) - 5} more)" if len(loose) > 5 else ""
        log.warning(
            "%s: catalog phrases shared by several values, with no context rule to choose: %s%s "
            "(make them distinct, add a context rule, or mark the catalog literal: true)",
            domain.source,
            shown,
            more,
        )


def _phonetic(text: str) -> str:
    import jellyfish

    return " ".join(jellyfish.metaphone(w) for w in text.split() if w)


class CatalogMatcher:
    def __init__(self, catalog: Catalog, options: ResolveOptions):
        self.catalog = catalog
        self.options = options
        self.normalize = phrase_normalizer(catalog)
        self._phrases: list[tuple[str, str]] = []  # (normalized phrase, value id)
        for v in catalog.values:
            for p in v.phrases:
                self._phrases.append((self.normalize(p), v.id))
        self._codes = [(_phonetic(p), vid) for p, vid in self._phrases] if options.phonetic else []
        self._joined = [_phonetic(p.replace(" ", "")) for p, _vid in self._phrases] if options.phonetic else []
        self._names = {v.id: v.name for v in catalog.values}
        self._vectors = None  # phrase embeddings, on first need

    def match(self, text: str) -> list[Candidate]:
        from rapidfuzz import fuzz

        q = self.normalize(text)
        if not q:
            return []
        best: dict[str, Candidate] = {}

        def offer(vid: str, score: float, method: str) -> None:
            if vid not in best or best[vid].score < score:
                best[vid] = Candidate(vid, self._names[vid], round(score, 4), method)

        def offer_exact(said: str) -> None:
            for phrase, vid in self._phrases:
                if phrase == said:
                    offer(vid, 1.0, "exact")

        offer_exact(q)
        if not best and (bare := strip_edge_fillers(q)) != q:
            # "garage door thanks a lot", "okay so coffee": the rest is matched without them
            q = bare
            offer_exact(q)
        if self.catalog.literal:
            # Leading words no listed phrase has ("the latte") go one at a time, so the longest
            # phrase as said wins: "the some milk" is some milk, never milk.
            said = q
            while not best and (shorter := LEADING_FILLERS.sub("", said, count=1)) != said:
                said = shorter
                offer_exact(said)
            if best:  # the words name a value: one that only sounds or means alike is no rival
                return sorted(best.values(), key=lambda c: (-c.score, c.id))
        if not best:
            for phrase, vid in self._phrases:
                r = max(fuzz.ratio(q, phrase), fuzz.token_sort_ratio(q, phrase))
                if r >= self.options.fuzzy_threshold:
                    offer(vid, 0.95 * r / 100.0, "fuzzy")
        if not best and len(q) >= 4:
            # Part of a name: every word said is a word of the phrase ("taylor", "living").
            # The words must be a good part of the name ("room" is not the living room).
            words = set(q.split())
            for phrase, vid in self._phrases:
                if words < set(phrase.split()) and len(q) >= 0.4 * len(phrase):
                    offer(vid, 0.8, "partial")
        if self._codes:
            # Sounds-alike: metaphone codes per word, and of the words run together (ASR splits
            # and joins words: "bee yon say" ~ "beyonce").
            qc, qj = _phonetic(q), _phonetic(q.replace(" ", ""))
            for (code, vid), joined in zip(self._codes, self._joined):
                if vid in best or not code:
                    continue
                r = max(fuzz.ratio(qc, code), fuzz.ratio(qj, joined))
                if r >= 90 or (r >= 85 and min(len(qj), len(joined)) >= 6):
                    offer(vid, 0.85 * r / 100.0, "phonetic")
        if not best and self.embeds:
            for vid, sim in self.embedding_match(q):
                offer(vid, 0.8 * sim, "embedding")
        return sorted(best.values(), key=lambda c: (-c.score, c.id))

    @property
    def embeds(self) -> bool:
        """Whether matching falls back to embeddings here. Open catalogs take unknown words as
        they are ("oat milk" is not "milk")."""
        return self.options.embedding and not self.catalog.open and bool(self._phrases)

    def warm(self) -> None:
        """Embed the phrases now (loading MiniLM) rather than in the first turn that needs them."""
        if self.embeds:
            self._phrase_vectors()

    def _phrase_vectors(self):
        from core.embeddings import embed

        if self._vectors is None:
            self._vectors = embed([p for p, _vid in self._phrases])
        return self._vectors

    def embedding_match(self, q: str) -> list[tuple[str, float]]:
        """(value id, cosine) of the values whose phrases mean about the same as ``q``."""
        import numpy as np

        from core.embeddings import embed_one

        sims = self._phrase_vectors() @ embed_one(q)
        out: dict[str, float] = {}
        for (_phrase, vid), sim in zip(self._phrases, np.asarray(sims, dtype=float)):
            if sim >= self.options.embedding_threshold and sim > out.get(vid, -1.0):
                out[vid] = round(float(sim), 4)
        return sorted(out.items(), key=lambda kv: -kv[1])


class Resolver:
    name = "resolve"

    def __init__(self, domain: Domain, options: ResolveOptions):
        self.domain = domain
        self.options = options
        self._matchers = {t: CatalogMatcher(c, options) for t, c in domain.catalogs.items()}
        _warn_collisions(domain)

    def warm(self) -> None:
        """Load the embedding model and embed the catalogs now. A long run needs them sooner or
        later (every simulated run of a few dozen sessions does), and loading MiniLM in the
        middle of one costs seconds."""
        for matcher in self._matchers.values():
            matcher.warm()

    # entry point ----------------------------------------------------------------------
    def run(self, interp: Interpretation, ctx) -> Resolution:
        dialogue = ctx.dialogue
        pending = dialogue.pending
        intent = interp.intent
        # An answer to "did you mean X or Y?" may be too short for the NLU ("the second one");
        # "yes" picks the only option offered. A new request is not an answer.
        if pending is not None and pending.kind == "clarify" and not self._new_request(interp, pending):
            pick = None
            if intent == "Affirm" and len(pending.options) == 1:
                pick = pending.options[0]
            elif intent not in ("Affirm", "Deny"):
                pick = self._pick_option(interp, pending.options)
            if pick is not None:
                args = dict(pending.args)
                args[pending.slot] = pick.id
                return self._build(
                    self.domain.intents[pending.intent],
                    [],
                    args,
                    interp,
                    ctx,
                    carried=[k for k in args if k != pending.slot],
                )
        if interp.out_of_domain or intent is None:
            answer = self._bare_value(interp, pending)
            if answer is None:
                return Resolution(intent=None)
            interp, intent = answer, answer.intent
        incoming: list[tuple[Slot, SlotSpec | None]] = []
        base: dict[str, Any] = {}
        carried: list[str] = []

        if intent in ("Affirm", "Deny"):
            return Resolution(intent=intent)
        if pending is not None and pending.kind in ("elicit", "clarify") and intent in ("Inform", pending.intent):
            spec = self.domain.intents[pending.intent]
            base = dict(pending.args)
            carried = list(base)
            incoming = self._answer_as_asked(self._map_slots(interp.slots, spec, prefer=pending.slot), spec, pending)
            return self._build(spec, incoming, base, interp, ctx, carried=carried)
        if intent == "Inform":
            # A follow-up that changes one slot of the last request ("and in the bedroom").
            last = self.domain.intents.get(dialogue.last_intent) if dialogue.last_intent else None
            if last is None or not interp.slots:
                return Resolution(intent=None)
            mapped = self._map_slots(interp.slots, last)
            if any(spec is None for _s, spec in mapped):
                return Resolution(intent=None)
            base = {k: v for k, v in dialogue.last_args.items() if k in last.slots}
            for _s, spec in mapped:
                base.pop(spec.name, None)
            return self._build(last, mapped, base, interp, ctx, carried=list(base))
        spec = self.domain.intents[intent]
        incoming = [(s, spec.slots.get(s.name)) for s in interp.slots]
        # Anaphora: "turn it off", "play that again" → the entities of the last request.
        if dialogue.salient and refers_back(interp.text):
            have = {s.name for s in interp.slots}
            for name, sspec in spec.slots.items():
                if name in have:
                    continue
                ent = dialogue.salient.get(sspec.type)
                if ent is not None:
                    base[name] = ent["id"]
                    carried.append(name)
        return self._build(spec, incoming, base, interp, ctx, carried=carried)

    @staticmethod
    def _answer_as_asked(incoming, spec: IntentSpec, pending) -> list[tuple[Slot, SlotSpec | None]]:
        """ "For how many people?" — "four people": a tagger may call a bare number a time. While
        the number asked for is still missing, a time that is only a number (no am/pm, o'clock,
        time of day) is read as that number."""
        from core.normalize import normalize, says_a_time

        asked = spec.slots.get(pending.slot) if pending.slot else None
        if asked is None or asked.type != "number" or any(sp is asked for _s, sp in incoming):
            return incoming
        for i, (slot, _sp) in enumerate(incoming):
            if slot.type == "time" and not says_a_time(slot.text):
                value = normalize("number", slot.text)
                if value is not None:
                    as_asked = replace(slot, name=asked.name, type="number", value=value)
                    return incoming[:i] + [(as_asked, asked)] + incoming[i + 1 :]
        return incoming

    @staticmethod
    def _new_request(interp: Interpretation, pending) -> bool:
        """The user asked for something else instead of answering ("actually, set an alarm")."""
        return (
            not interp.out_of_domain
            and interp.intent is not None
            and interp.intent not in ("Affirm", "Deny", "Inform", pending.intent)
        )

    def _bare_value(self, interp: Interpretation, pending) -> Interpretation | None:
        """The whole utterance as the value a pending question asked for ("ten minutes")."""
        if pending is None or pending.kind != "elicit" or not pending.slot:
            return None
        sspec = self.domain.intents[pending.intent].slots.get(pending.slot)
        if sspec is None or sspec.type not in BUILTIN_TYPES:
            return None
        from core.normalize import normalize

        value = normalize(sspec.type, interp.text)
        if value is None:
            return None
        slot = Slot(name=sspec.type, text=interp.text, value=value, type=sspec.type, start=0, end=len(interp.text))
        return Interpretation(
            text=interp.text,
            domain=interp.domain,
            intent="Inform",
            confidence=interp.confidence,
            slots=(slot,),
            nbest=interp.nbest,
            model=interp.model,
        )

    # building the resolution ---------------------------------------------------------------
    def _map_slots(self, slots, spec: IntentSpec, prefer: str | None = None) -> list[tuple[Slot, SlotSpec | None]]:
        """Map answer slots (named by type) onto the intent's slots of that type."""
        out = []
        for s in slots:
            if s.name in spec.slots:
                out.append((s, spec.slots[s.name]))
                continue
            same_type = [x for x in spec.slots.values() if x.type == s.type]
            if prefer and prefer in spec.slots and spec.slots[prefer].type == s.type:
                out.append((s, spec.slots[prefer]))
            elif same_type:
                out.append((s, same_type[0]))
            else:
                out.append((s, None))
        return out

    def _build(
        self, spec: IntentSpec, incoming, base: Mapping[str, Any], interp: Interpretation, ctx, carried: list[str]
    ) -> Resolution:
        entities: dict[str, Entity] = {}
        values: dict[str, Any] = {}
        clarification = None
        # carried ids/values first; this turn's words override them
        for name, value in base.items():
            sspec = spec.slots.get(name)
            if sspec is None or value is None:
                continue
            if sspec.type in BUILTIN_TYPES:
                values[name] = value
            else:
                entities[name] = self._entity_from_id(sspec, value, method="carried")
        for slot, sspec in incoming:
            if sspec is None:
                continue
            if sspec.type in BUILTIN_TYPES:
                if slot.value is not None:
                    values[sspec.name] = slot.value
                    entities.pop(sspec.name, None)
                continue
            if says_nothing(slot.text):
                continue  # "how warm is it inside | cheers": the slot was not said
            ent, clar = self._resolve_entity(spec, sspec, slot.text, ctx, taken=set(entities), said=interp.text)
            if ent.slot != sspec.name:  # recovered under a sibling slot type
                entities.pop(sspec.name, None)
            entities[ent.slot] = ent
            if clar is not None and clarification is None:
                clarification = clar
            if ent.slot in carried:
                carried.remove(ent.slot)
        # defaults and context rules for slots nobody filled
        for name, sspec in spec.slots.items():
            if name in entities or name in values:
                continue
            value = self.context_default(sspec, ctx)
            if value is None:
                continue
            if sspec.type in BUILTIN_TYPES:
                values[name] = value
            else:
                entities[name] = self._entity_from_id(sspec, value, method="context" if sspec.context else "default")
        return Resolution(
            intent=spec.name,
            entities=tuple(entities[k] for k in sorted(entities)),
            values=frozen_map(values),
            clarification=clarification,
            carried=tuple(sorted(set(carried))),
        )

    def _entity_from_id(self, sspec: SlotSpec, value_id: str, method: str) -> Entity:
        catalog = self.domain.catalog_for(sspec.type)
        v = catalog.get(value_id) if catalog else None
        name = v.name if v else str(value_id)
        attrs = v.attributes if v else frozen_map()
        return Entity(
            slot=sspec.name,
            type=sspec.type,
            text=name,
            id=str(value_id),
            name=name,
            score=1.0,
            candidates=(Candidate(str(value_id), name, 1.0, method),),
            method=method,
            attributes=attrs,
        )

    def _resolve_entity(
        self, spec: IntentSpec, sspec: SlotSpec, text: str, ctx, taken: set[str], said: str = ""
    ) -> tuple[Entity, Clarification | None]:
        matcher = self._matchers.get(sspec.type)
        cands = matcher.match(text) if matcher else []
        slot = sspec
        if not cands:
            # The tagger may have picked the wrong sibling type ("Jimmy Hendrix" as a song).
            for other in spec.slots.values():
                if other.name == sspec.name or other.name in taken or other.type in BUILTIN_TYPES:
                    continue
                m = self._matchers.get(other.type)
                alt = m.match(text) if m else []
                if alt and alt[0].score >= 0.8:
                    cands, slot = alt, other
                    break
        catalog = self.domain.catalog_for(slot.type)
        if not cands:
            if catalog is not None and catalog.open:
                value_id = strip_edge_fillers(phrase_normalizer(catalog)(text)) or text.lower()
                return Entity(
                    slot=slot.name,
                    type=slot.type,
                    text=text,
                    id=value_id,
                    name=value_id,
                    score=1.0,
                    candidates=(),
                    method="open",
                ), None
            return Entity(
                slot=slot.name, type=slot.type, text=text, id=None, name=None, score=0.0, candidates=(), method="none"
            ), None
        ranked = self._rank(slot, cands, ctx, said_modalities(said, text))
        top = ranked[0]
        base_score = next(c.score for c in cands if c.id == top.id)
        method = next(c.method for c in cands if c.id == top.id)
        if top.id != cands[0].id:
            method += "+context"
        v = catalog.get(top.id) if catalog else None
        entity = Entity(
            slot=slot.name,
            type=slot.type,
            text=text,
            id=top.id,
            name=top.name,
            score=round(base_score, 4),
            candidates=tuple(ranked[:5]),
            method=method,
            attributes=v.attributes if v else frozen_map(),
        )
        close = [c for c in ranked[1:] if top.score - c.score < self.options.clarify_margin]
        if close:
            options = (top, *close)
            return entity, Clarification(slot=slot.name, question=self._question(slot, options), options=options)
        if method.startswith("embedding") and base_score < 0.8 * self.options.embedding_accept:
            # A match by meaning alone, not certain enough to act on: ask.
            return entity, Clarification(slot=slot.name, question=self._question(slot, (top,)), options=(top,))
        return entity, None

    # context --------------------------------------------------------------------------
    def _rank(
        self, sspec: SlotSpec, cands: list[Candidate], ctx, modalities: frozenset[str] = frozenset()
    ) -> list[Candidate]:
        catalog = self.domain.catalog_for(sspec.type)
        home = catalog.get(ctx.user.home) if (catalog and ctx.user.home and sspec.type == "place") else None
        rule = sspec.context or {}
        out = []
        for c in cands:
            bonus = HISTORY_BONUS * min(ctx.user.count(sspec.type, c.id), 3)
            v = catalog.get(c.id) if catalog else None
            attrs = v.attributes if v else {}
            if home is not None and attrs.get("region") and attrs.get("region") == home.attributes.get("region"):
                bonus += HOME_REGION_BONUS
            if rule.get("modality") == "screen":
                bonus += _modality_bonus(attrs.get("modality"), ctx.device.screen)
                if modalities and attrs.get("modality"):
                    bonus += SAID_MODALITY_BONUS if attrs["modality"] in modalities else -SAID_MODALITY_BONUS
            out.append(
                Candidate(c.id, c.name, round(c.score + bonus, 4), c.method if bonus == 0 else f"{c.method}+context")
            )
        return sorted(out, key=lambda c: (-c.score, c.id))

    def context_default(self, sspec: SlotSpec, ctx) -> Any:
        """The value an unsaid slot takes from the spec: a context rule, else its default."""
        rule = sspec.context or {}
        if "prefer_on" in rule:
            for device_type in rule["prefer_on"]:
                if any(obj.get("power") == "on" for _id, obj in ctx.world.select("devices", {"type": device_type})):
                    return device_type
            return rule.get("otherwise", sspec.default)
        if rule.get("home") and ctx.user.home:
            return ctx.user.home
        return sspec.default

    def _question(self, sspec: SlotSpec, options) -> str:
        labels = self._labels(sspec, options)
        listed = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]
        return f"Did you mean {listed}?"

    def _labels(self, sspec: SlotSpec, options) -> list[str]:
        names = [o.name for o in options]
        if len(set(names)) == len(names):
            return names
        catalog = self.domain.catalog_for(sspec.type)
        out = []
        for o in options:
            v = catalog.get(o.id) if catalog else None
            kind = v.attributes.get("kind") if v else None
            out.append(f"the {kind}" if kind else o.name)
        return out

    def _pick_option(self, interp: Interpretation, options) -> Candidate | None:
        """Which of the offered options the user chose ("Illinois", "the movie", "the second")."""
        from rapidfuzz import fuzz

        text = clean_phrase(interp.text)
        if not text or not options:
            return None
        for word, idx in ORDINAL_WORDS.items():
            if re.search(rf"\b{word}\b", text) and -len(options) <= idx < len(options):
                return options[idx]
        best, best_score = None, 0.0
        for o in options:
            catalog_values = [c.get(o.id) for c in self.domain.catalogs.values() if c.get(o.id)]
            v = catalog_values[0] if catalog_values else None
            labels = [o.name.lower()]
            if v is not None:
                labels += [str(a).lower() for a in v.attributes.values() if isinstance(a, str)]
                labels += [s.lower() for s in v.synonyms]
            for label in filter(None, labels):
                score = (
                    fuzz.partial_ratio(label, text) if len(label) >= 3 else (100.0 if label in text.split() else 0.0)
                )
                # prefer labels unique to this option
                if score > best_score:
                    best, best_score = o, score
        if best_score < 80:
            return None
        # ambiguous when the best label is shared ("springfield")
        ties = [
            o
            for o in options
            if o is not best
            and fuzz.partial_ratio(o.name.lower(), text) >= best_score
            and o.name.lower() == best.name.lower()
            and text in o.name.lower()
        ]
        return None if ties else best


def refers_back(text: str) -> bool:
    """Whether a request points at something said before ("turn it off", "play that again"),
    not only says "it" as the subject of a state ("it is too bright", "is it cold inside")."""
    words = re.findall(r"[a-z']+", text.lower())
    for i, w in enumerate(words):
        if w not in PRONOUNS:
            continue
        after = words[i + 1] if i + 1 < len(words) else ""
        before = words[i - 1] if i else ""
        if w in _DUMMY and (after in _DUMMY_AFTER or before in _DUMMY_BEFORE):
            continue
        return True
    return False


def _modality_bonus(modality: str | None, screen: bool) -> float:
    """Play Harry Potter: the movie on a device with a screen, the audiobook on one without."""
    if modality == "visual":
        return 0.1 if screen else -0.3
    if modality == "audio":
        return 0.05 if not screen else -0.05
    if modality == "text":
        return -0.2 if not screen else -0.1
    return 0.0

"""The NLU stage: transcript → interpretation, with the model trained from the domain spec.

Models are cached under a content hash of what shapes them (the spec's intents, samples,
catalogs and out-of-domain sentences, plus the trainer's settings), so an unchanged spec is
never retrained and a changed one always is.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.domain import BUILTIN_TYPES, DIALOGUE_INTENTS, OOD_INTENT, Domain, domain_vocabulary, vocabulary_share
from core.fillers import without_hesitations
from core.normalize import (
    NUMBER_WORDS,
    builtin_value,
    normalize,
    parse_date,
    parse_duration,
    relative_seconds,
    tokens,
)
from core.records import IntentScore, Interpretation, Slot, Transcript
from stages.base import StageFailure
from stages.nlu.grammar import TemplateGrammar
from stages.nlu.models import META_FILE, NluModel
from stages.nlu.recipes import SpecConfig, load_model, spec_config, spec_key, train_spec
from stages.nlu.text import (
    ASSISTANT_NAMES,
    numbered_phrases,
    repair_candidates,
    self_repair,
    spelled_numbers,
    without_address,
)

log = logging.getLogger(__name__)

NBEST = 5
FALLBACK_TYPES = ("date", "time")
FALLBACK_MAX_WORDS = 5
RETYPE_P = 0.6
SPLIT_WORDS = re.compile(r"\s(?:by|from)\s")
TIME_SUFFIX = re.compile(r"\s*(?:a\.?m\.?|p\.?m\.?|o'?clock)\b")
# "quarter to | eleven pm", "twenty five past | six": what places a time before or after the hour
TIME_PREFIX = re.compile(r"\b(?:to|past|after)\s+$")
MINUTE_WORDS = (set(NUMBER_WORDS) - {"an", "and", "couple"}) | {"minutes", "minute"} | {str(n) for n in range(60)}
RELATIVE_AFTER = re.compile(r"\s+(?:from now|later)\b")
CUT_FROM = re.compile(r"\s+from$")  # a span's end that is the first half of "from now"
RELATIVE_BEFORE = re.compile(r"\bin\s+$")
NAME_BEFORE = {"in", "at", "of", "by"}  # "is it sunny in | gonbad | now", "all songs of | eminem"
NAME_MAX_WORDS = 3
NAME_P = 0.3  # after such a preposition a name is expected: the typer's best guess will do
NAME_STOP = {"now", "please", "and", "or", "for", "on", "at", "in", "with", "to"}
# Words a day or time phrase does not start with, though the parser reads past them.
FALLBACK_NOT_FIRST = {"a", "an", "and", "it", "is", "the", "for", "to", "me", "my"}


def load_or_train(
    domain: Domain, cache_root: Path, config: SpecConfig | None = None, progress: Callable[[str], None] | None = None
) -> NluModel:
    """The domain's model from the cache, trained first when the spec is new (``progress``
    hears what training does: it takes up to a minute)."""
    config = config or spec_config()
    target = cached_model_path(domain, cache_root, config)
    if (target / META_FILE).is_file():
        log.debug("NLU model for %s from cache %s", domain.name, target)
        return load_model(target)
    log.info("training the NLU model for domain %r (first use of this spec; cached at %s)", domain.name, target)
    if progress is not None:
        progress(f"training the NLU model for domain {domain.name!r} (first use of this spec; cached afterwards)")
    model = train_spec(domain, config, progress=progress)
    save_atomically(model, target)
    return load_model(target)


def configured_model(domain: Domain, config, progress: Callable[[str], None] | None = None) -> NluModel:
    """The model a configuration names: ``nlu.model_dir`` (a folder ``assistant nlu train
    --out`` wrote, e.g. the spec retrained with ``--extra`` labels) when set, otherwise the
    spec's own model from the cache (trained first when new)."""
    from core.config import cache_dir
    from core.errors import InputError
    from stages.nlu.models import read_meta
    from stages.nlu.recipes import configured_spec

    folder = str(config["nlu.model_dir"]).strip()
    if not folder:
        return load_or_train(domain, cache_dir(config), configured_spec(config), progress=progress)
    meta = read_meta(Path(folder))
    if meta.get("domain") != domain.name:
        raise InputError(
            folder, f"nlu.model_dir: a model of domain {meta.get('domain')!r}, not {domain.name!r}", field="domain"
        )
    return load_model(Path(folder))


def cached_model_path(domain: Domain, cache_root: Path, config: SpecConfig) -> Path:
    """Where the cache keeps the model of this domain, spec and settings."""
    return Path(cache_root) / "nlu" / f"{domain.name}-{spec_key(domain, config)}"


def is_cached(domain: Domain, cache_root: Path, config: SpecConfig) -> bool:
    return (cached_model_path(domain, cache_root, config) / META_FILE).is_file()


def save_atomically(model: NluModel, target: Path) -> None:
    """Write to a temporary folder beside ``target``, then rename: readers and concurrent
    trainers never see half a model."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    model.save(tmp)
    try:
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first


@dataclass(frozen=True)
class NluOptions:
    # In domain when the calibrated p(top intent) reaches this and the top intent is not the
    # out-of-domain class. The share of known words is recorded (``coverage``) but does not
    # decide: real requests name artists, places and things no spec lists.
    ood_threshold: float = 0.5
    grammar: bool = True  # the spec's templates place slots when one matches the whole request
    # A leading "alexa," / "hey olly" addresses the assistant and is dropped before the model.
    assistant_names: tuple[str, ...] = ASSISTANT_NAMES

    @classmethod
    def from_config(cls, config) -> NluOptions:
        """The ``[nlu]`` settings the stage reads (``assistant_names`` is a comma-separated list)."""
        names = tuple(n.strip().lower() for n in str(config["nlu.assistant_names"]).split(",") if n.strip())
        return cls(ood_threshold=config["nlu.ood_threshold"], assistant_names=names)


class NluStage:
    name = "nlu"

    def __init__(self, domain: Domain, model: NluModel, options: NluOptions):
        self.domain = domain
        self.model = model
        self.options = options
        self._types = domain.slot_types
        self._vocabulary = domain_vocabulary(domain)
        self._grammar = TemplateGrammar(domain) if options.grammar else None
        self._numbered = numbered_phrases(domain)
        self._literal = {
            n: bool(c is not None and c.literal) for n, t in self._types.items() for c in [domain.catalog_for(t)]
        }
        self._listed = {
            n: frozenset(p for v in (c.values if c is not None else ()) for p in v.phrases)
            for n, t in self._types.items()
            for c in [domain.catalog_for(t)]
        }

    def warm(self) -> None:
        """Load what the model reads and run it once: seconds that would otherwise fall on
        the first request."""
        self.model.warm()

    def interpret(self, text: str, ctx=None) -> Interpretation:
        request = spelled_numbers(without_address(text, self.options.assistant_names), self._numbered)
        if self.domain.grammar == "strict":  # the grammar must match every word: "a, uh, large latte"
            request = without_hesitations(request)
        pred = self._repaired(request, self.model.predict(request))
        if not pred.intents:
            raise StageFailure("nlu-no-intent", "the model returned no intent scores")
        nbest = tuple(IntentScore(i, round(s, 4)) for i, s in pred.intents[:NBEST])
        top, score = self._said_literally(pred)
        now = ctx.now if ctx is not None else None
        dialogue = getattr(ctx, "dialogue", None)
        pending = getattr(dialogue, "pending", None)
        if pending is not None:
            top, score = self._answer_to(pending, pred.intents, top, score)
        elif top == "Inform" and not getattr(dialogue, "last_intent", None):
            top, score = self._standalone(pred.intents)
        spans = self._with_grammar(top, pred.text, pred.spans)
        spans = self._with_time_prefixes(pred.text, self._with_time_suffixes(pred.text, spans))
        spans = self._relative(self._slots_of(top, pending, dialogue), pred.text, spans)
        slots = []
        for a, b, label in self._dated(top, pred.text, self._retyped(top, pred.text, spans)):
            slot_type = self._types.get(label, label)
            words = pred.text[a:b]
            value = normalize(slot_type, words, now, context=pred.text) if slot_type in BUILTIN_TYPES else words
            slots.append(Slot(name=label, text=words, value=value, type=slot_type, start=a, end=b))
        slots.extend(self._dates_inside_times(top, slots, now, pred.text))
        slots.extend(self._untagged_builtins(top, slots, now, pred.text, pending))
        slots.extend(self._untagged_names(top, slots, pred.text))
        coverage = vocabulary_share(pred.text, self._vocabulary)
        ood = not self._in_domain(top, score)
        if (
            self.domain.grammar == "strict"
            and top in self.domain.intents
            and not self.domain.intents[top].is_dialogue_act
        ):
            ood = ood or self._grammar is None or self._grammar.parse(top, pred.text) is None
        # A bare answer that carries no value is not a request.
        if top == "Inform" and not slots:
            ood = True
        return Interpretation(
            text=pred.text,
            domain=self.domain.name,
            intent=None if ood else top,
            confidence=round(score, 4),
            slots=tuple(slots) if not ood else (),
            nbest=nbest,
            out_of_domain=ood,
            model=self.model.name,
            coverage=round(coverage, 3),
        )

    def _repaired(self, request: str, pred):
        """A request with a self-repair ("open the fan, sorry, the garage door") is read as
        repaired: the first repaired wording (stages/nlu/text.repair_candidates) the model
        reads in domain. A value the tagger found on both sides of the cue marks where the
        repair starts."""
        candidates = []
        found = self_repair(pred.text)
        if found is not None:
            cut = pred.text.rfind(found[2])
            later = {label for a, _b, label in pred.spans if a >= cut}
            slips = tuple((a, b) for a, b, label in pred.spans if b <= cut and label in later)
            candidates = repair_candidates(pred.text, slips)
        candidates += [c for c in repair_candidates(request) if c not in candidates]
        for candidate in candidates:
            other = self.model.predict(candidate)
            if other.intents and self._in_domain(*other.intents[0]):
                return other
        return pred

    def _in_domain(self, intent: str, score: float) -> bool:
        """The model's own verdict (before the grammar and the bare-answer rules)."""
        return intent != OOD_INTENT and score >= self.options.ood_threshold

    def _with_grammar(self, intent: str, text: str, spans):
        """The tagger's spans, or where one of the intent's templates matches the whole request,
        the template's: its slots are where the template says. A span the tagger found with the
        same words keeps the tagger's label (it has seen names; the template has not)."""
        spec = self.domain.intents.get(intent)
        if self._grammar is None or spec is None or spec.is_dialogue_act:
            return spans  # bare answers are a slot or two in any words: the tagger's job
        parse = self._grammar.parse(intent, text)
        if parse is None:
            return spans
        own = set(self.domain.intents[intent].slots)
        tagged = {(a, b): label for a, b, label in spans}
        out = []
        for a, b, label in parse.spans:
            other = tagged.get((a, b))
            literal = self._literal.get(label, False)
            if other is None and not literal:
                out.extend(self._name_at_edge(text, a, b, label, spans, own))
                continue
            out.append((a, b, other if other in own and not literal else label))
        return out

    @staticmethod
    def _name_at_edge(text: str, a: int, b: int, label: str, spans, own) -> list[tuple[int, int, str]]:
        """A template's slot that holds one name the tagger found of another kind the intent
        takes, at its start or end ("play {song}" over "michael buble | save the last dance"):
        that name keeps its kind and the rest of the slot the template's."""
        inner = [(sa, sb, lab) for sa, sb, lab in spans if a <= sa and sb <= b and lab != label and lab in own]
        if len(inner) != 1 or (inner[0][0] != a and inner[0][1] != b):
            return [(a, b, label)]
        sa, sb, lab = inner[0]
        ra, rb = (sb, b) if sa == a else (a, sa)
        # a joining word between the two is part of neither ("under pressure | from | queen")
        cuts = list(SPLIT_WORDS.finditer(text[ra:rb]))
        if cuts and sa == a and cuts[0].start() == 0:
            ra += cuts[0].end()
        elif cuts and sa != a and cuts[-1].end() == rb - ra:
            rb = ra + cuts[-1].start()
        while ra < rb and text[ra].isspace():
            ra += 1
        while rb > ra and text[rb - 1].isspace():
            rb -= 1
        return sorted([(sa, sb, lab)] + ([(ra, rb, label)] if rb > ra else []))

    def _retyped(self, intent: str, text: str, spans):
        """Names typed by what they mean. A name of a kind the intent does not take
        ("springfield" tagged as an artist under GetWeather, "blake shelton" as a book title
        under PlayMusic) takes the intent's own kind it most resembles. Where the intent takes
        several kinds, a span the span typer gives to another of them with p ≥ ``RETYPE_P``
        takes that label, and "SONG by/from ARTIST" tagged as one span is cut in two when its
        tail is clearly a name of an empty label."""
        typer = self.model.span_typer
        spec = self.domain.intents.get(intent)
        if typer is None or spec is None or spec.is_dialogue_act:
            return spans
        among = self._names_of(spec, typer)
        if not among:
            return spans
        filled = {label for _a, _b, label in spans}
        out = []
        for a, b, label in spans:
            if label not in among:
                if label in typer.labels and label not in spec.slots:
                    p = typer.probabilities(text[a:b], among) if len(among) > 1 else {among[0]: 1.0}
                    best = max(p, key=p.get, default=label)
                    if best not in filled:
                        label = best
                        filled.add(best)
                out.append((a, b, label))
                continue
            if len(among) < 2:
                out.append((a, b, label))
                continue
            cut = self._split_by(typer, among, filled, text, a, b, label)
            if len(cut) > 1:
                out.extend(cut)
                continue
            p = typer.probabilities(text[a:b], among)
            best = max(p, key=p.get, default=label)
            out.append((a, b, best if p.get(best, 0.0) >= RETYPE_P else label))
        return out

    def _names_of(self, spec, typer) -> list[str]:
        """The intent's slots that hold names the span typer knows (literal catalogs excluded)."""
        return [n for n in spec.slots if n in typer.labels and not self._literal.get(n, False)]

    def _dated(self, intent: str, text: str, spans):
        """A name that is nothing but a day ("in | coming week" tagged as a place) fills the
        intent's empty date slot instead."""
        spec = self.domain.intents.get(intent)
        if spec is None:
            return spans
        filled = {label for _a, _b, label in spans}
        free = [n for n, sl in spec.slots.items() if sl.type == "date" and n not in filled]
        out = []
        for a, b, label in spans:
            if free and self._types.get(label) not in BUILTIN_TYPES and builtin_value("date", text[a:b]):
                label = free.pop(0)
            out.append((a, b, label))
        return out

    def _split_by(self, typer, among, filled, text: str, a: int, b: int, label: str):
        words = text[a:b]
        cuts = list(SPLIT_WORDS.finditer(words))  # the last "by"/"from": titles may hold one
        if not cuts:
            return [(a, b, label)]
        m = cuts[-1]
        head, tail = words[: m.start()].rstrip(), words[m.end() :].strip()
        if not head or not tail:
            return [(a, b, label)]
        p = typer.probabilities(tail, among)
        for lab in among:  # a name the catalog lists is certain
            if tail in self._listed.get(lab, ()):
                p[lab] = 1.0
        other = max((lab for lab in p if lab != label and lab not in filled), key=p.get, default=None)
        if other is None or p[other] < RETYPE_P:
            return [(a, b, label)]
        start = a + m.end() + (len(words[m.end() :]) - len(words[m.end() :].lstrip()))
        return [(a, a + len(head), label), (start, start + len(tail), other)]

    def _with_time_suffixes(self, text: str, spans):
        """ "six | am tomorrow": the tagger cut the time before its "am"/"pm"/"o'clock". The
        suffix joins the time; what is left of the next span stays in it."""
        for i, (a, b, label) in enumerate(spans):
            m = TIME_SUFFIX.match(text, b) if self._types.get(label) == "time" else None
            if m is None:
                continue
            end = m.end()
            out = []
            for j, (a2, b2, label2) in enumerate(spans):
                if j == i:
                    out.append((a, end, label))
                elif b <= a2 < end <= b2:  # the next span began with the suffix
                    rest = text[end:b2].lstrip()
                    if rest.strip():
                        out.append((b2 - len(rest), b2, label2))
                else:
                    out.append((a2, b2, label2))
            return out
        return list(spans)

    def _with_time_prefixes(self, text: str, spans):
        """ "quarter to | eleven pm": the tagger cut a time after the words that place it
        before or past the hour. They join it when they are nothing but minutes ("quarter",
        "twenty five", "ten minutes"), and not the start of a range ("from five to | six")."""
        out = []
        for a, b, label in spans:
            m = TIME_PREFIX.search(text[:a]) if self._types.get(label) == "time" else None
            if m is not None:
                before = list(re.finditer(r"[a-z0-9']+", text[: m.start()]))
                k = len(before)
                while k > 0 and len(before) - k < 3 and (before[k - 1].group() in MINUTE_WORDS):
                    k -= 1
                said = [w.group() for w in before[k:]]
                opens_range = k > 0 and before[k - 1].group() in ("from", "between")
                taken = any(a2 < a and b2 > (before[k].start() if said else a) for a2, b2, _l in spans if a2 != a)
                if any(w not in ("a", "minutes", "minute") for w in said) and not opens_range and not taken:
                    a = before[k].start()
            out.append((a, b, label))
        return out

    def _slots_of(self, top: str, pending, dialogue) -> str:
        """The intent whose slots a reading fills: its own, or for a bare answer ("i said two
        hours from now") the request it answers or corrects."""
        spec = self.domain.intents.get(top)
        if spec is None or not spec.is_dialogue_act:
            return top
        return getattr(pending, "intent", None) or getattr(dialogue, "last_intent", None) or top

    def _relative(self, intent: str, text: str, spans):
        """ "in | two hours", "two hours | from now": the tagger cut a time or date said
        relative to now away from the words that make it relative; they join it. A stretch of
        time tagged as a duration under an intent that takes none ("alert me in three hours")
        is such a time too, and fills the intent's empty time slot."""
        spec = self.domain.intents.get(intent)
        own = spec.slots if spec is not None else {}
        free = [n for n, s in own.items() if s.type == "time" and n not in {lab for _a, _b, lab in spans}]
        out: list[tuple[int, int, str]] = []
        for a, b, label in spans:
            if out and a < out[-1][1]:
                continue  # "now" of "two hours from | now", joined to the time before it
            kind = self._types.get(label)
            stray = kind == "duration" and label not in own and bool(free)
            cut = CUT_FROM.search(text, a, b)  # the tagger cut inside "from | now"
            b = cut.start() if cut is not None else b
            if (kind in ("time", "date") or stray) and parse_duration(text[a:b]) is not None:
                m = RELATIVE_AFTER.match(text, b)
                b = m.end() if m else b
                before = RELATIVE_BEFORE.search(text[:a])
                a = before.start() if before else a
                if stray and relative_seconds(text[a:b]) is not None:
                    label = free.pop(0)
            elif cut is not None:
                b = cut.end()
            out.append((a, b, label))
        return out

    def _dates_inside_times(self, intent: str, slots: list[Slot], now, text: str) -> list[Slot]:
        """A time span that also names the day ("seven thirty tomorrow morning") fills the
        intent's empty date slot too: people say day and time as one phrase. So do the words
        right after a time when the tagger left them out ("seven thirty | tomorrow morning")."""
        spec = self.domain.intents.get(intent)
        if spec is None:
            return []
        filled = {s.name for s in slots}
        free = [n for n, s in spec.slots.items() if s.type == "date" and n not in filled]
        for slot in slots:
            if not free or slot.type != "time" or relative_seconds(slot.text) is not None:
                continue  # "in two hours": the time is the moment, whatever day it falls on
            day = parse_date(slot.text, now)
            if day is not None:
                return [Slot(name=free[0], text=slot.text, value=day, type="date", start=slot.start, end=slot.end)]
            # the untagged words up to the next slot, when they are nothing but a day
            end = min((s.start for s in slots if s.start >= slot.end), default=len(text))
            tail = text[slot.end : end]
            words = tail.strip(" ,.")
            day = parse_date(words, now) if words else None
            if day is not None:
                start = slot.end + tail.index(words)
                return [Slot(name=free[0], text=words, value=day, type="date", start=start, end=start + len(words))]
        return []

    def _said_literally(self, pred) -> tuple[str, float]:
        """The model's top intent, unless the request is said word for word as a slot-free
        template of one intent ("no" after "are you sure?"): then that intent, at least as sure
        as being in domain needs. A short reply is where a fine-tuned model is least sure."""
        top, score = pred.intents[0]
        literal = self._grammar.literal_intent(pred.text) if self._grammar is not None else None
        if literal is None:
            return top, score
        return literal, max(dict(pred.intents).get(literal, 0.0), self.options.ood_threshold)

    @staticmethod
    def _standalone(intents) -> tuple[str, float]:
        """A bare value with no question and no earlier request to refer to ("indie") is not an
        answer: the best other class, its probability given that it is not one."""
        rest = 1.0 - dict(intents).get("Inform", 0.0)
        for intent, p in intents:
            if intent not in DIALOGUE_INTENTS:
                return intent, p / rest if rest > 0 else 0.0
        return OOD_INTENT, 1.0

    def _answer_to(self, pending, intents, top: str, score: float) -> tuple[str, float]:
        """While a question waits for its answer, a short reply the classifier doubts is more
        likely that answer than a new request from another domain ("four people" after "for
        how many?"): the best dialogue act of the n-best wins over the out-of-domain class."""
        if top != OOD_INTENT and score >= self.options.ood_threshold:
            return top, score
        for intent, p in intents[:NBEST]:
            if intent in DIALOGUE_INTENTS:
                return intent, max(p, self.options.ood_threshold)
        return top, score

    def _untagged_builtins(self, intent: str, slots: list[Slot], now, text: str, pending=None) -> list[Slot]:
        """Days and times the tagger left out ("will it rain | tomorrow | in miami"): for each
        empty date or time slot of the intent, the longest run of untagged words that is
        nothing but such a value. Values have a grammar; names do not, so only these. A bare
        answer looks for the builtin value the pending question asks for ("four | people")."""
        spec = self.domain.intents.get(intent)
        if spec is None:
            return []
        filled = {s.name for s in slots}
        types = FALLBACK_TYPES
        if intent == "Inform" and pending is not None and pending.slot:
            asked = self.domain.intents.get(pending.intent)
            asked_type = asked.slots[pending.slot].type if asked and pending.slot in asked.slots else None
            if asked_type not in BUILTIN_TYPES or slots:
                return []
            types = (asked_type,)
        free = [(n, sl.type) for n, sl in spec.slots.items() if sl.type in types and n not in filled]
        if not free:
            return []
        taken = [(s.start, s.end) for s in slots]
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        found: list[Slot] = []
        for name, slot_type in free:
            best = None
            for i in range(len(words)):
                for j in range(min(len(words), i + FALLBACK_MAX_WORDS), i, -1):
                    a, b = words[i][0], words[j - 1][1]
                    if any(a < e and s < b for s, e in taken):
                        continue
                    phrase = text[a:b]
                    said = tokens(phrase)
                    if not said or said[0] in FALLBACK_NOT_FIRST:
                        continue
                    value = builtin_value(slot_type, phrase, now, context=text)
                    if value is not None and (best is None or b - a > best[1] - best[0]):
                        best = (a, b, value)
                        break
            if best is not None:
                a, b, value = best
                found.append(Slot(name=name, text=text[a:b], value=value, type=slot_type, start=a, end=b))
                taken.append((a, b))
        return found

    def _untagged_names(self, intent: str, slots: list[Slot], text: str) -> list[Slot]:
        """A name the tagger left out after "in", "at", "of" or "by" ("snow predictions in |
        buffalo", "play all songs of | eminem"): the untagged words that follow (up to a tagged
        slot, a day or a joining word) fill the intent's empty slot when the span typer, over
        every kind of name it knows, finds them most like that slot's kind."""
        typer = self.model.span_typer
        spec = self.domain.intents.get(intent)
        if typer is None or spec is None or spec.is_dialogue_act:
            return []
        filled = {s.name for s in slots}
        free = set(self._names_of(spec, typer)) - filled
        if not free:
            return []
        taken = [(s.start, s.end) for s in slots]
        words = list(re.finditer(r"\S+", text))
        found: list[Slot] = []
        for i, w in enumerate(words[:-1]):
            if w.group() not in NAME_BEFORE or any(a <= w.start() < b for a, b in taken):
                continue
            run = []
            for m in words[i + 1 : i + 1 + NAME_MAX_WORDS]:
                if (
                    m.group() in NAME_STOP
                    or builtin_value("date", m.group())
                    or any(a < m.end() and m.start() < b for a, b in taken)
                ):
                    break
                run.append(m)
            if run and run[0].group() == "the":
                run = run[1:]
            if not run:
                continue
            a, b = run[0].start(), run[-1].end()
            p = typer.probabilities(text[a:b], typer.labels)
            best = max(p, key=p.get, default=None)
            if best in free and p[best] >= NAME_P:
                found.append(
                    Slot(name=best, text=text[a:b], value=text[a:b], type=self._types.get(best, best), start=a, end=b)
                )
                free.discard(best)
                taken.append((a, b))
        return found

    def run(self, transcript: Transcript, ctx) -> Interpretation:
        return self.interpret(transcript.text, ctx)

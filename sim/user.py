"""Goal-driven simulated users.

A user samples a goal from the domain spec (an intent and its slot values), reveals it over
turns (sometimes leaving out a required slot and answering the assistant's question), confirms
or declines, may change their mind, and reacts to failures according to a persona: rephrase,
repeat, correct ("no, I said …"), barge in, or give up. Every act carries its gold: what the
NLU should find in the words (``act``, ``spans``) and the request the assistant should act on
(``intent``, ``slots``, ``entities``) given the dialogue so far.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from core.correctness import judge
from core.domain import BUILTIN_TYPES, SLOT_REF, Domain, said_modalities
from core.records import Outcome, frozen_map, to_jsonable
from core.session import Gold, Turn
from core.utterances import Example, UtteranceGenerator, all_alternatives
from sim.phrasing import (
    PhrasingBank,
    Speaker,
    SpeechStyle,
    TrainingTexts,
    fill_pins,
)
from sim.text_stages import turn_rng

log = logging.getLogger(__name__)

_SLOT = SLOT_REF

ASKING = ("elicit", "clarify", "confirm")
HABIT_RATE = 0.6  # a recurring user's share of goals that are one of their habits
CONCEPT_NAMES = (
    "study mode",
    "movie mode",
    "reading mode",
    "night mode",
    "party mode",
    "focus mode",
    "relax mode",
    "dinner mode",
)
CONCEPT_TYPES = ("percentage", "temperature", "duration", "number")  # settings a concept's name can stand for
CONCEPT_RATE = 0.2  # share of goals a user with a concept asks for by its name
# What a household calls its things in its own words, by the device catalog's id. The same
# name means another device in another home ("the big light" is the living room's in one, the
# kitchen's in the next), so only the user's own history can say what it stands for.
HOUSE_NAME_USERS = 0.5  # share of recurring users' homes that do (an assumption: no published figure)
HOUSE_NAMED_DEVICES = 0.35  # share of such a home's devices with a name of its own
HOUSE_NAMES = {
    "light": ("the big light", "the main light", "the good lamp", "the top light", "the overhead", "the fairy lights"),
    "tv": ("the box", "the big screen", "the idiot box"),
    "fan": ("the breeze", "the whirly thing"),
    "thermostat": ("the nest", "the boiler", "the climate"),
    "oven": ("the cooker", "the range"),
    "garage_door": ("the big door", "the roller door"),
    "lock": ("the deadbolt", "the latch"),
}
# Words of a request that say which modality of a title is meant (the catalog's attribute).
ANSWER_PATTERNS = ("{type}", "for {type}", "{type} please", "make it {type}", "the {type}")
CORRECTION_PATTERNS = ("no, {type}", "no i said {type}", "i said {type}")


@dataclass(frozen=True)
class Persona:
    name: str
    patience: int = 2  # retries after a failure before giving up on the goal
    style: str = "paraphrase"  # paraphrase | repeat | correct: how a failure is retried
    barge_in: float = 0.2  # chance of interrupting a reply that went wrong
    terse: float = 0.2  # chance of leaving a required slot for the assistant to ask
    change_mind: float = 0.05  # chance of switching requests when asked a question
    think_s: tuple[float, float] = (0.8, 2.5)
    rate: float = 1.0  # speaking rate (audio fidelity)


PERSONAS = (
    Persona("patient", patience=3, style="paraphrase", barge_in=0.05, terse=0.15),
    Persona("impatient", patience=1, style="repeat", barge_in=0.5, terse=0.1, think_s=(0.3, 1.0), rate=1.15),
    Persona("terse", patience=2, style="correct", barge_in=0.2, terse=0.5),
    Persona("chatty", patience=2, style="paraphrase", barge_in=0.1, terse=0.05, change_mind=0.15, rate=0.9),
    Persona("fickle", patience=1, style="paraphrase", barge_in=0.3, terse=0.3, change_mind=0.3),
)


def sample_persona(rng: random.Random) -> Persona:
    p = rng.choice(PERSONAS)
    return replace(p, rate=round(p.rate * rng.uniform(0.9, 1.1), 3))


@dataclass(frozen=True)
class Goal:
    intent: str
    args: Mapping  # the full request: slot → catalog id or canonical value
    surfaces: Mapping  # builtin slot → how this user says its value
    stated: tuple[str, ...]  # slots said in the first request (others: defaults or asked)
    template: str = ""
    implied: tuple[str, ...] = ()  # unsaid slots the spec's defaults and context rules fill
    out_of_domain: str | None = None  # the sentence, for a request the domain cannot serve
    concept: tuple[str, str] | None = None  # (name, the words it stands for): "study mode" for "forty percent"
    house_name: str | None = None  # the household's own name for the device it is about ("the big light")


@dataclass(frozen=True)
class UserAct:
    text: str  # the words, without the wake word
    gold: Gold
    kind: str  # request | answer | confirm | correction | retry | ood | background
    wake: bool = True  # says the wake word first (not when answering a question)
    barge_in: bool = False


@dataclass
class _State:
    goal: Goal | None = None
    attempts: int = 0
    last_act: UserAct | None = None
    said: dict = field(default_factory=dict)  # slot → value the assistant has been told


class SimulatedUser:
    def __init__(
        self,
        domain: Domain,
        persona: Persona,
        rng: random.Random,
        context_default=None,
        ood_sentences: tuple[str, ...] = (),
        ood_rate: float = 0.08,
        plausible=None,
        habits: tuple[int, ...] = (),
        concept: tuple[str, int] | None = None,
        style: SpeechStyle | None = None,
        phrasings: PhrasingBank | None = None,
        training: TrainingTexts | None = None,
        house: int | None = None,
    ):
        self.habits = habits  # seeds of the goals this user has again and again
        # the number that draws this household's own names for its devices (None: it has none);
        # a request whose words name such a device calls it by that name
        self.house = house
        self.concept = concept  # (name, seed of the goal it means): a concept this user teaches
        self.plausible = plausible  # (intent, args, ctx) -> bool: does the request make sense here?
        self.domain = domain
        self.persona = persona
        self.rng = rng
        # (slot spec, ctx) -> the value the assistant's context rules give a slot left unsaid
        self.context_default = context_default
        self.gen = UtteranceGenerator(domain)
        self.ood = ood_sentences
        self.ood_rate = ood_rate if ood_sentences else 0.0
        self.state = _State()
        # How this user talks (None: the spec's own words, as before): real phrasings of
        # sources the NLU never trains on, said with this user's fillers, corrections, manners.
        self.style = style
        self.phrasings = phrasings if style is not None else None
        self.speaker = Speaker(domain, style, training) if style is not None else None
        self._intents = [i for i in domain.intents.values() if not i.is_dialogue_act and i.samples]

    # goals ---------------------------------------------------------------------------
    def _at(self, ctx) -> None:
        """Relative values ("wednesday", "tomorrow") mean the session's day, not the generator's
        default clock: the gold must say what the NLU, on the session clock, should find."""
        now = getattr(ctx, "now", None)
        if now is not None and now.date() != self.gen.now.date():
            self.gen = UtteranceGenerator(self.domain, now)

    def new_goal(self, ctx, tries: int = 20) -> Goal:
        """A goal a person in this home might have: its request must make sense in the world
        (the oven has a temperature, the garage door opens; lights do not unlock)."""
        goal = self._new_goal(ctx, tries)
        if goal.concept is None and goal.out_of_domain is None and self.house is not None:
            goal = replace(goal, house_name=self._house_name(goal))
        return goal

    def _new_goal(self, ctx, tries: int) -> Goal:
        self._at(ctx)
        if self.concept is not None and self.rng.random() < CONCEPT_RATE:
            goal = self._concept_goal(ctx)
            if goal is not None:
                return goal
        if self.habits and self.rng.random() < HABIT_RATE:
            # a request this user makes often, said the same way (as people do)
            seed, rng = self.rng.choice(self.habits), self.rng
            self.rng = random.Random(seed)
            try:
                goal = self._sample_goal(ctx)
            finally:
                self.rng = rng
            if (
                goal.out_of_domain is None
                and self._words_agree(goal.template, goal.args)
                and (self.plausible is None or self.plausible(goal.intent, goal.args, ctx))
            ):
                return goal
        for _ in range(tries):
            goal = self._sample_goal(ctx)
            if goal.out_of_domain is not None:
                return goal
            if self._words_agree(goal.template, goal.args) and (
                self.plausible is None or self.plausible(goal.intent, goal.args, ctx)
            ):
                return goal
        return goal

    def _concept_goal(self, ctx) -> Goal | None:
        """The goal this user's concept means (always the same one): a request with a value
        said in a few words, which the concept's name stands for."""
        name, seed = self.concept
        rng, self.rng = self.rng, random.Random(seed)
        try:
            for _ in range(40):
                goal = self._sample_goal(ctx)
                if goal.out_of_domain is not None or not self._words_agree(goal.template, goal.args):
                    continue
                slots = self.domain.intents[goal.intent].slots
                for slot in goal.stated:
                    surface = goal.surfaces.get(slot)
                    if (
                        surface
                        and slots[slot].type in CONCEPT_TYPES
                        and len(surface.split()) <= 3
                        and (self.plausible is None or self.plausible(goal.intent, goal.args, ctx))
                    ):
                        return replace(goal, concept=(name, surface))
        finally:
            self.rng = rng
        return None

    def _house_name(self, goal: Goal) -> str | None:
        """This household's name for the device the goal is about, if it has one: whether it
        has one and which are drawn from the user's number and the device (and its room), so
        they are the same in every session."""
        if self.house is None:
            return None
        spec = self.domain.intents[goal.intent]
        device = next((n for n, s in spec.slots.items() if s.type == "device" and n in goal.args), None)
        names = HOUSE_NAMES.get(str(goal.args[device])) if device else None
        if not names:
            return None
        room = next((goal.args[n] for n, s in spec.slots.items() if s.type == "room" and n in goal.args), "")
        draw = turn_rng(0, "house-name", self.house, goal.args[device], room)
        return draw.choice(names) if draw.random() < HOUSE_NAMED_DEVICES else None

    def _sample_goal(self, ctx) -> Goal:
        rng = self.rng
        if self.ood and rng.random() < self.ood_rate:
            return Goal(
                intent="", args=frozen_map(), surfaces=frozen_map(), stated=(), out_of_domain=rng.choice(self.ood)
            )
        spec = rng.choice(self._intents)
        templates = _expansions(spec.samples)
        phrasing = self.phrasings.pick(spec.name, rng, self.style.indirect) if self.phrasings else None
        template = fill_pins(self.domain, phrasing, rng, self.style) if phrasing else rng.choice(templates)
        example = self.gen.render(spec, template, rng, values=self._consistent(spec, template, rng))
        stated = tuple(name for _a, _b, name in example.spans)
        args: dict[str, Any] = dict(example.values)
        implied_slots = []
        for name, value in phrasing.implied.items() if phrasing else ():
            if name in spec.slots and name not in args:
                args[name] = value  # "it's so dark in here": the lights, unsaid
                implied_slots.append(name)
        surfaces = {name: example.text[a:b] for a, b, name in example.spans if spec.slots[name].type in BUILTIN_TYPES}
        for name, sspec in spec.slots.items():
            if name in args:
                continue
            implied = self.context_default(sspec, ctx) if self.context_default is not None else None
            if implied is not None:
                args[name] = implied
                implied_slots.append(name)
            elif sspec.required or (
                spec.require_one and name == spec.require_one[0] and not any(n in args for n in spec.require_one)
            ):
                text, value = self.gen.filler(sspec.type, rng)
                args[name] = value
                if sspec.type in BUILTIN_TYPES:
                    surfaces[name] = text
        # A terse user sometimes drops one required slot they meant to say, to be asked for it.
        droppable = [n for n in stated if spec.slots[n].required]
        if droppable and rng.random() < self.persona.terse and phrasing is None:
            short = [t for t in templates if not set(_slots(t)) & {droppable[0]} and set(_slots(t)) <= set(stated)]
            if short:
                template = rng.choice(short)
                stated = tuple(_slots(template))
        return Goal(
            intent=spec.name,
            args=frozen_map(args),
            surfaces=frozen_map(surfaces),
            stated=stated,
            template=template,
            implied=tuple(implied_slots),
        )

    # acts ----------------------------------------------------------------------------
    def _consistent(self, spec, template: str, rng: random.Random) -> dict:
        """A song and its artist in one request: the artist is the song's (the catalog says)."""
        names = set(_slots(template))
        if not {"song", "artist"} <= names or "song" not in spec.slots or "artist" not in spec.slots:
            return {}
        if any(m.group(2) for m in _SLOT.finditer(template) if m.group(1) in ("song", "artist")):
            return {}
        catalog = self.domain.catalog_for(spec.slots["song"].type)
        songs = [v for v in (catalog.values if catalog else ()) if v.attributes.get("artist")]
        if not songs:
            return {}
        song = rng.choice(songs)
        return {"song": song.id, "artist": song.attributes["artist"]}

    def start(self, goal: Goal) -> UserAct:
        return self._say(self._start(goal))

    def _say(self, act: UserAct | None) -> UserAct | None:
        """The act's words as this user says them (the gold's meaning unchanged)."""
        if act is None or self.speaker is None or act.kind in ("teach", "concept"):
            return act
        spans, kind = act.gold.spans, act.kind
        if kind == "house_name":  # the home's name is said whole, like a slot's words
            spans = tuple(("device", n, None) for names in HOUSE_NAMES.values() for n in names if n in act.text)
            kind = "request"
        text = self.speaker.say(act.text, spans, self.rng, kind, act.gold.act)
        if text == act.text:
            return act
        return replace(act, text=text, gold=replace(act.gold, transcript=text))

    def _start(self, goal: Goal) -> UserAct:
        self.state = _State(goal=goal)
        if goal.out_of_domain is not None:
            act = UserAct(
                text=goal.out_of_domain,
                gold=Gold(transcript=goal.out_of_domain, out_of_domain=True, wake=True, act=None),
                kind="ood",
            )
        else:
            act = self._request(goal, goal.template, goal.stated, kind="request", house_name=goal.house_name)
            if goal.concept is not None and goal.concept[1] in act.text:
                # the value said by the concept's name: the meaning (gold) stays the request's
                text = act.text.replace(goal.concept[1], goal.concept[0], 1)
                act = replace(act, text=text, kind="concept", gold=replace(act.gold, transcript=text, spans=()))
        self.state.last_act = act
        return act

    def react(self, turn: Turn, ctx) -> UserAct | None:
        """The next act after seeing the assistant's turn, or None when the goal is over."""
        return self._say(self._react(turn, ctx))

    def _react(self, turn: Turn, ctx) -> UserAct | None:
        st = self.state
        goal = st.goal
        if goal is None:
            return None
        self._at(ctx)
        out = turn.outcome
        ok = judge(turn)
        if goal.out_of_domain is not None:
            return None  # declined or not, the user moves on
        if out is not None and out.expects == "concept" and goal.concept is not None:
            return self._teach(goal)
        if ok and out is not None and out.status in ASKING:
            return self._answer(goal, out, ctx)
        if ok:
            return None  # carried out as asked: the goal is done
        st.attempts += 1
        if st.attempts > self.persona.patience:
            return None  # gives up on this goal
        barge = self.rng.random() < self.persona.barge_in and out is not None and bool(out.reply)
        return replace(self._retry(goal, out), barge_in=barge)

    # building acts ---------------------------------------------------------------------
    def _request(
        self, goal: Goal, template: str, stated, kind: str, wake: bool = True, house_name: str | None = None
    ) -> UserAct:
        spec = self.domain.intents[goal.intent]
        pins = {n: (goal.surfaces[n] if n in goal.surfaces else goal.args[n]) for n in stated if n in goal.args}
        template, pins = self._unlisted(spec, template, pins)
        ex = self.gen.render(spec, template, self.rng, values=pins)
        said = dict(ex.values)  # what the words say (a template's literal words included)
        self.state.said = dict(said)
        act = UserAct(text=ex.text, gold=self._gold(ex, goal, said, act=spec.name), kind=kind, wake=wake)
        named = with_house_name(ex, spec, house_name) if house_name else None
        if named is None:
            return act
        # The request means what it meant; its words no longer name the device as the catalog
        # does, so no span of them is the NLU's to find (as with a concept's name).
        return replace(act, text=named, kind="house_name", gold=replace(act.gold, transcript=named, spans=()))

    def _gold(
        self, ex: Example, goal: Goal, said: Mapping, act: str, intent: str | None = None, wake: bool = True
    ) -> Gold:
        """The request after this act: what was said so far plus the spec's defaults."""
        spec = self.domain.intents[intent or goal.intent]
        request = dict(said)
        for name in goal.implied:
            if name not in request:
                request[name] = goal.args[name]
        slots = {n: v for n, v in request.items() if spec.slots[n].type in BUILTIN_TYPES}
        entities = {n: v for n, v in request.items() if spec.slots[n].type not in BUILTIN_TYPES}
        spans = tuple((name, ex.text[a:b], ex.values.get(name)) for a, b, name in ex.spans)
        return Gold(
            transcript=ex.text,
            intent=spec.name,
            slots=frozen_map(slots),
            entities=frozen_map(entities),
            wake=wake,
            act=act,
            spans=spans,
        )

    def _split(self, intent: str, args: Mapping) -> tuple[Mapping, Mapping]:
        """(builtin slot values, catalog entity ids) of a request."""
        slots = self.domain.intents[intent].slots
        builtin = {k: v for k, v in args.items() if k in slots and slots[k].type in BUILTIN_TYPES}
        catalog = {k: v for k, v in args.items() if k in slots and slots[k].type not in BUILTIN_TYPES}
        return frozen_map(builtin), frozen_map(catalog)

    def _answer(self, goal: Goal, out: Outcome, ctx) -> UserAct | None:
        rng = self.rng
        if rng.random() < self.persona.change_mind:
            act = self._start(self.new_goal(ctx))
            return replace(act, kind="change_mind", wake=False, gold=replace(act.gold, wake=True))
        if out.status == "confirm":
            agree = _same(out.args, {k: v for k, v in goal.args.items() if k in out.args})
            act_name = "Affirm" if agree else "Deny"
            word = rng.choice(self.domain.intents[act_name].samples)
            # yes: the request is carried out; no: the assistant should drop the one it proposed
            slots, entities = self._split(out.intent, out.args)
            gold = Gold(transcript=word, intent=out.intent, slots=slots, entities=entities, wake=True, act=act_name)
            return UserAct(text=word, gold=gold, kind="confirm", wake=False)
        slot = out.expects
        spec = self.domain.intents[goal.intent]
        if out.intent != goal.intent or slot not in spec.slots or slot not in goal.args:
            return None
        sspec = spec.slots[slot]
        said = {**self.state.said, slot: goal.args[slot]}
        self.state.said = said
        if out.status == "clarify":
            ex = Example(self._option_words(sspec.type, goal.args[slot]), "Inform")
        else:
            pattern = rng.choice(ANSWER_PATTERNS).replace("{type}", "{" + sspec.type + "}")
            pin = goal.surfaces.get(slot, goal.args[slot])
            pattern, pins = self._unlisted(self.domain.intents["Inform"], pattern, {sspec.type: pin})
            ex = self.gen.render(self.domain.intents["Inform"], pattern, rng, values=pins)
        return UserAct(text=ex.text, gold=self._gold(ex, goal, said, act="Inform"), kind="answer", wake=False)

    def _teach(self, goal: Goal) -> UserAct:
        """Answers "Can you teach me?": the words the concept stands for; the assistant should
        then carry out the request they complete."""
        words = goal.concept[1]
        request = self.state.last_act.gold if self.state.last_act is not None else None
        gold = (
            replace(request, transcript=words, spans=(), wake=True)
            if request is not None
            else Gold(transcript=words, intent=goal.intent, wake=True, act=goal.intent)
        )
        act = UserAct(text=words, gold=gold, kind="teach", wake=False)
        self.state.last_act = act
        return act

    def _retry(self, goal: Goal, out: Outcome | None) -> UserAct:
        st = self.state
        last = st.last_act
        spec = self.domain.intents[goal.intent]
        style = self.persona.style
        wrong_slot = (
            out is not None
            and out.intent == goal.intent
            and out.status not in ASKING
            and [n for n in goal.stated if n in out.args and out.args.get(n) != goal.args.get(n)]
        )
        if style == "repeat" and last is not None:
            act = replace(last, kind="retry", barge_in=False)
        elif style == "correct" and wrong_slot:
            name = wrong_slot[0]
            sspec = spec.slots[name]
            pattern = self.rng.choice(CORRECTION_PATTERNS).replace("{type}", "{" + sspec.type + "}")
            pin = goal.surfaces.get(name, goal.args[name])
            pattern, pins = self._unlisted(self.domain.intents["Inform"], pattern, {sspec.type: pin})
            ex = self.gen.render(self.domain.intents["Inform"], pattern, self.rng, values=pins)
            said = {**st.said, name: goal.args[name]}
            act = UserAct(text=ex.text, gold=self._gold(ex, goal, said, act="Inform"), kind="correction")
        else:
            # say it again, differently, and this time with everything
            templates = [
                t
                for t in _expansions(spec.samples)
                if set(_slots(t)) >= {n for n in goal.stated}
                and set(_slots(t)) <= set(goal.args)
                and self._literals_agree(spec, t, goal)
                and self._words_agree(t, goal.args)
            ]
            template = self.rng.choice(templates) if templates else goal.template
            act = self._request(goal, template, tuple(_slots(template)), kind="retry")
        st.last_act = act
        return act

    def _unlisted(self, spec, template: str, pins: Mapping) -> tuple[str, dict]:
        """A name the catalog does not list ("pastries", a song it lacks) is said as it is: the
        template says it in its own words rather than pinning a catalog id."""
        pins = dict(pins)
        for name, value in list(pins.items()):
            stype = spec.slots[name].type if name in spec.slots else None
            catalog = self.domain.catalog_for(stype) if stype and stype not in BUILTIN_TYPES else None
            if catalog is not None and isinstance(value, str) and catalog.get(value) is None:
                template = re.sub(r"\{" + re.escape(name) + r"(?::[^{}]*)?\}", "{" + name + ":" + value + "}", template)
                del pins[name]
        return template, pins

    def _literals_agree(self, spec, template: str, goal: Goal) -> bool:
        """A template's literal slot words ("{device:garage door}") must name the goal's value."""
        for m in _SLOT.finditer(template):
            name, words = m.group(1), m.group(2)
            if words is None:
                continue
            if self.gen._literal_value(spec.slots[name].type, words) != goal.args.get(name):
                return False
        return True

    def _words_agree(self, template: str, args: Mapping) -> bool:
        """A template's own words must not ask for another kind of the goal's value: "play the
        movie {title}" or "watch {title}" for the audiobook would make the gold contradict what
        the user said ("Dune" is both)."""
        allowed = said_modalities(_SLOT.sub(" ", template))
        for value_id in args.values():
            modality = self._attribute(value_id, "modality")
            if modality is not None and allowed and modality not in allowed:
                return False
        return True

    def _attribute(self, value_id: Any, name: str) -> Any:
        if not isinstance(value_id, str):
            return None
        for catalog in self.domain.catalogs.values():
            v = catalog.get(value_id)
            if v is not None:
                return v.attributes.get(name)
        return None

    def _option_words(self, slot_type: str, value_id: str) -> str:
        catalog = self.domain.catalog_for(slot_type)
        v = catalog.get(value_id) if catalog else None
        if v is None:
            return str(value_id)
        attrs = v.attributes
        if "state" in attrs:
            return self.rng.choice(
                [f"{attrs['state']}", f"the one in {attrs['state']}", f"{attrs.get('city', v.name)} {attrs['state']}"]
            ).lower()
        if "kind" in attrs:
            return self.rng.choice([f"the {attrs['kind']}", f"the {attrs['kind']} please"])
        return v.name.lower()


def with_house_name(ex: Example, spec, name: str) -> str | None:
    """``ex``'s words with the device (and the room said with it: "the living room lights",
    "the lights in the kitchen") called by the household's ``name``; None when the words say
    the device apart from its room, or not at all ("it's dark in here")."""
    where = {slot: (a, b) for a, b, slot in ex.spans}
    device = next((where[n] for n, s in spec.slots.items() if s.type == "device" and n in where), None)
    if device is None:
        return None
    start, end = device
    room = next((where[n] for n, s in spec.slots.items() if s.type == "room" and n in where), None)
    if room is not None:
        between = ex.text[room[1] : device[0]] if room < device else ex.text[device[1] : room[0]]
        if between.strip().lower() not in ("", "in the", "in"):
            return None
        start, end = min(start, room[0]), max(end, room[1])
    head = re.search(r"\b(?:the|my|a|all the)\s+$", ex.text[:start], flags=re.IGNORECASE)
    if head is not None:
        start = head.start()
    return " ".join(f"{ex.text[:start]}{name}{ex.text[end:]}".split())


@functools.lru_cache(maxsize=256)
def _expansions(samples: tuple[str, ...]) -> tuple[str, ...]:
    """Every expansion of an intent's templates (the same for every user: expanded once)."""
    return tuple(t for s in samples for t in all_alternatives(s))


def _slots(template: str) -> list[str]:
    return [m.group(1) for m in _SLOT.finditer(template)]


def _same(a: Mapping, b: Mapping) -> bool:
    return json.dumps(to_jsonable(dict(a)), sort_keys=True) == json.dumps(to_jsonable(dict(b)), sort_keys=True)

"""The spec's own templates as a grammar: when a request is said exactly as one of its intent's
templates (with any words in the slots), the template says where the slots are.

The slot tagger learns slots from examples and misses names it has never seen in a phrasing it
has rarely seen ("i want to hear chopin now"); a template that matches the whole request does
not care what the name is. Grammar-defined domains (an imported Rhino context) are said almost
entirely in their templates, so there the parse is exact.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from core.domain import BUILTIN_TYPES, SLOT_REF, Domain, IntentSpec
from core.fillers import without_hesitations
from core.normalize import builtin_value
from core.utterances import DEFAULT_NOW, PREFIXES, SUFFIXES, _parse
from stages.nlu.text import ASSISTANT_NAMES, GREETINGS, numbered_phrases, prepare, spelled_numbers

log = logging.getLogger(__name__)


def _longest_first(words) -> tuple[str, ...]:
    """Longest first (a regex alternative must not shadow a longer one), ties alphabetically:
    the order is the same in every process, whatever the hash seed (the nearest-wording search,
    stages/asr_snap.py, breaks ties between paths by it)."""
    return tuple(sorted(set(words), key=lambda w: (-len(w), w)))


# Words said before or after a request that carry nothing: the generator's decorations and the
# names people call assistants by.
LEAD_WORDS = _longest_first(
    (
        *PREFIXES,
        *ASSISTANT_NAMES,
        *GREETINGS,
        *(f"{g} {n}" for g in GREETINGS for n in ASSISTANT_NAMES),
        *("please", "yeah", "yes", "well", "alright", "all right"),
    )
)
TAIL_WORDS = _longest_first((*SUFFIXES, "now", "please", "thanks", "for me please", "right away"))
_LEAD = "(?:(?:" + "|".join(re.escape(w) for w in LEAD_WORDS) + r")\s+){0,2}"
_TAIL = "(?:(?:" + "|".join(re.escape(w) for w in TAIL_WORDS) + r")\s+){0,2}"
_WILD = r"[^\s].*?"
# An unknown name may hold these even when the intent's templates use them ("the beatles",
# "let it be"); any other word of the templates ("turn", "play") means the match is wrong.
FUNCTION_WORDS = frozenset(
    "a an the my our your of in on at to for by from with and or me i you it is be this that".split()
)
PRONOUNS = frozenset("it them that this those these there".split())


@dataclass(frozen=True)
class GrammarParse:
    template: str
    spans: tuple[tuple[int, int, str], ...]  # (start, end, slot) in the text given
    literal_chars: int  # characters the template itself matched


class TemplateGrammar:
    """Each intent's templates compiled once into anchored regular expressions."""

    def __init__(self, domain: Domain):
        self.domain = domain
        self._numbered = numbered_phrases(domain)
        self._known: dict[str, frozenset[str]] = {}
        self._slot_patterns: dict[str, str] = {}
        for name, slot_type in domain.slot_types.items():
            catalog = domain.catalog_for(slot_type)
            phrases = list(_longest_first(p.lower() for v in catalog.values for p in v.phrases)) if catalog else []
            # names the spec knows for this type, listed or not, tell "play {artist}" from "play {song}"
            self._known[name] = frozenset(phrases) | frozenset(domain.training_phrases.get(slot_type, ()))
            alternatives = [r"\s+".join(re.escape(w) for w in p.split()) for p in phrases]
            # A grammar's own catalog (literal: an imported Rhino context) is closed: its
            # slots are its phrases. Elsewhere a slot may hold any words, listed ones first.
            if not (catalog is not None and catalog.literal and not catalog.open):
                alternatives.append(_WILD)
            self._slot_patterns[name] = "(?:" + "|".join(alternatives) + ")"
        self._rules: dict[str, list[tuple[str, re.Pattern]]] = {}
        self._own_words: dict[str, frozenset[str]] = {}
        for intent in domain.intents.values():
            self._rules[intent.name] = [r for t in intent.samples for r in self._compile(intent, t)]
            words = {w for t in intent.samples for w in re.findall(r"[a-z']+", SLOT_REF.sub(" ", t.lower()))}
            self._own_words[intent.name] = frozenset(words - FUNCTION_WORDS)
        # templates without a slot: a request said exactly so has an intent no model should doubt
        self._literal = [
            (intent, rule) for intent, rules in self._rules.items() for t, rule in rules if not SLOT_REF.search(t)
        ]

    def _compile(self, intent: IntentSpec, template: str) -> list[tuple[str, re.Pattern]]:
        try:
            body = _regex(_parse(template), set(), self._slot_patterns)
            return [(template, re.compile("^" + _LEAD + body + _TAIL + "$"))]
        except re.error as err:  # a slot named twice in one template, in two alternatives
            log.debug("template %r of %s not used as grammar: %s", template, intent.name, err)
            return []

    def literal_intent(self, text: str) -> str | None:
        """The one intent with a slot-free template that ``text`` says word for word ("no",
        "play some music"; up to words such as "please"); None when no intent has, or several."""
        subject = re.sub(r"\s+", " ", prepare(text, True)) + " "
        found = {intent for intent, rule in self._literal if rule.match(subject)}
        return found.pop() if len(found) == 1 else None

    def spells(self, text: str) -> bool:
        """Whether some intent's template matches ``text`` (raw words, as a recognizer writes
        them: case, punctuation, hesitations and digits for a catalog's number words do not
        matter)."""
        said = spelled_numbers(prepare(without_hesitations(text), True), self._numbered)
        return any(self.parse(intent, said) is not None for intent in self._rules)

    def parse(self, intent: str, text: str) -> GrammarParse | None:
        """The template of ``intent`` that matches all of ``text`` with the most of its own words
        (the fewest words left to slots); None when none matches."""
        subject = re.sub(r"\s+", " ", text.strip()) + " "
        if subject.strip() != text.strip():
            return None  # offsets would not be the text's
        offset = len(text) - len(text.lstrip())
        best: GrammarParse | None = None
        types = self.domain.slot_types
        for template, rule in self._rules.get(intent, ()):
            m = rule.match(subject)
            if m is None:
                continue
            spans, wild = [], 0
            for group, value in m.groupdict().items():
                if value is None:
                    continue
                name = _slot_name(group)
                words = value.strip()
                if types.get(name) in BUILTIN_TYPES and not _is_builtin(types[name], words):
                    spans = None  # "tomorrow in miami" is no date
                    break
                a = m.start(group)
                spans.append((offset + a, offset + a + len(words), name))
                if words not in self._known.get(name, ()) and types.get(name) not in BUILTIN_TYPES:
                    said = set(words.lower().split())
                    if said & PRONOUNS or said & self._own_words.get(intent, frozenset()):
                        spans = None  # "turn them off" is no room "turn" and device "them"
                        break
                    wild += len(words)
            if spans is None:
                continue
            parse = GrammarParse(template, tuple(sorted(spans)), len(subject.strip()) - wild)
            if best is None or parse.literal_chars > best.literal_chars:
                best = parse
        return best


def _slot_name(group: str) -> str:
    return group.split("__", 1)[0]


def _is_builtin(slot_type: str, words: str) -> bool:
    return builtin_value(slot_type, words, DEFAULT_NOW) is not None


def _regex(node, used: set[str], slots: dict[str, str]) -> str:
    """A template tree (see core.utterances._parse) as a regex in which every word is followed
    by whitespace, so that empty alternatives leave no double spaces to match."""
    if isinstance(node, str):
        out = []
        pos = 0
        for m in SLOT_REF.finditer(node):
            out.extend(_words(node[pos : m.start()]))
            name, literal = m.group(1), m.group(2)
            group = name if name not in used else f"{name}__{len(used)}"
            used.add(group)
            if literal is not None:
                out.append(f"(?P<{group}>" + r"\s+".join(re.escape(w) for w in literal.split()) + r")\s+")
            else:
                out.append(f"(?P<{group}>{slots.get(name, _WILD)})" + r"\s+")
            pos = m.end()
        out.extend(_words(node[pos:]))
        return "".join(out)
    if isinstance(node, tuple):
        return "(?:" + "|".join(_regex(option, used, slots) for option in node) + ")"
    return "".join(_regex(part, used, slots) for part in node)


def _words(text: str) -> list[str]:
    return [re.escape(w) + r"\s+" for w in text.split()]

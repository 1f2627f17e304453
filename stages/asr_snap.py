"""Wordings a grammar spells near what the recognizer heard ("can I have a lat?" → "can I have
a latte"): the candidates that the recognizer's own decoder then scores against the audio
(stages/asr.py ``DomainRescorer``).

A beam of five rarely holds the domain's word when a small model mishears it; the grammar knows
which words could have been said. Two sources, nearest first:
- ``GrammarLattice``: the grammar as one word graph, searched for the wordings at the least word
  edit distance from what was heard, with costs that know how words sound. Any number of edits
  ("Lotta extra sharp medium" → "Latte extra shot medium", "can't saw the coffee" → "cancel the
  coffee").
- ``GrammarSnapper``'s swaps: one or two runs of up to three heard words replaced with catalog
  phrases or template words that look or sound alike (spelling or metaphone ratio), or a heard
  word left out, kept only when the grammar spells the result.
Numbers count as their words both ways: "12-pound" is near "twelve ounce", and a wording with
"twelve ounce" is also offered as Whisper would write it, "12-ounce".
"""

from __future__ import annotations

import itertools
import logging
import re
from typing import Callable

import jellyfish
import numpy as np
from rapidfuzz import fuzz, process

from core.domain import SLOT_REF, Domain
from core.fillers import without_hesitations
from core.normalize import spoken_number
from core.utterances import _parse
from stages.nlu.grammar import LEAD_WORDS, TAIL_WORDS
from stages.nlu.text import NUMBER_VALUES

log = logging.getLogger(__name__)

MAX_RUN = 3  # heard words one phrase may replace
MIN_SIMILARITY = 70  # spelling or sound ratio (0-100) of heard words and a phrase
MAX_SWAPS = 12  # best single replacements combined into pairs
MAX_CANDIDATES = 16  # wordings handed to the decoder per hypothesis
NEAREST = 6  # the grammar's nearest wordings (GrammarLattice) offered first
MAX_PLANS = 60  # most alike replacements tried against the grammar per hypothesis
MIN_WORD = 3  # shorter template words are not snapped to ("a", "to")
DROP_SCORE = 60  # a heard word left out ("I don't want to drink") ranks below a close swap

_DIGITS = re.compile(r"\d{1,4}")
UNITS_WRITTEN_JOINED = frozenset("ounce inch foot pound minute hour".split())  # "a 12-ounce latte"
_WORD = re.compile(r"[A-Za-z0-9']+(?:-[A-Za-z0-9']+)*")
# a number word, with a unit Whisper joins to its digits ("twelve ounce" → "12-ounce")
_NUMBER_PHRASE = re.compile(
    r"\b(?:"
    + "|".join(sorted(NUMBER_VALUES, key=len, reverse=True))
    + r")(?:\s+(?:"
    + "|".join(sorted(UNITS_WRITTEN_JOINED))
    + r"))?\b"
)


def _sound(text: str) -> str:
    return " ".join(jellyfish.metaphone(w) for w in text.split())


def _heard_words(text: str) -> list[str]:
    """Heard words as the grammar writes them: lower case, no hesitations or punctuation,
    numbers in words ("a 12-ounce latte" → a twelve ounce latte)."""
    said = without_hesitations(text).lower().replace("-", " ")
    said = _DIGITS.sub(lambda m: " " + spoken_number(int(m.group())) + " ", said)
    return re.findall(r"[a-z']+", said)


def _digits_written(text: str) -> str:
    """A wording's number phrases as a recognizer writes them ("a twelve ounce latte" → "a
    12-ounce latte", "two sugars" → "2 sugars")."""
    return _NUMBER_PHRASE.sub(lambda m: _in_digits(m.group().lower()), text)


def _in_digits(phrase: str) -> str:
    """A phrase's number words as a recognizer writes them: "twelve ounce" → "12-ounce", "two
    sugars" → "2 sugars"."""
    words = phrase.split()
    if not any(w in NUMBER_VALUES for w in words):
        return phrase
    out = [str(NUMBER_VALUES.get(w, w)) for w in words]
    if len(out) == 2 and words[0] in NUMBER_VALUES and words[1] in UNITS_WRITTEN_JOINED:
        return "-".join(out)
    return " ".join(out)


class GrammarSnapper:
    """Candidate wordings a strict-grammar domain spells, near what the recognizer heard."""

    def __init__(self, domain: Domain, spells: Callable[[str], bool]):
        self._spells = spells
        phrases = {
            p.lower() for c in domain.catalogs.values() if c.literal for v in c.values for p in v.phrases if p.strip()
        }
        # the templates' own words ("actually", "change") are misheard as well
        phrases |= {
            w
            for intent in domain.intents.values()
            for t in intent.samples
            for w in re.findall(r"[a-z']+", SLOT_REF.sub(" ", t.lower()))
            if len(w) >= MIN_WORD
        }
        self._phrases = tuple(sorted(phrases))
        self._sounds = tuple(_sound(p) for p in self._phrases)
        self._lattice = GrammarLattice(domain, LEAD_WORDS, TAIL_WORDS)
        if self._lattice.size > MAX_LATTICE_EDGES:
            log.info(
                "grammar of %s: %d edges, too large to search for the nearest wordings", domain.name, self._lattice.size
            )

    def nearest(self, text: str) -> list[str]:
        """The grammar's wordings nearest to ``text`` (``GrammarLattice``), written as a recognizer
        would (the heard words' own forms, a capital, the heard text's end mark), in words and,
        where a catalog phrase holds a number, in digits too."""
        heard = _heard_words(text)
        forms = {m.group().lower(): m.group() for m in _WORD.finditer(text)}
        body = text.rstrip()
        mark = body[len(body.rstrip(".?!")) :]  # the heard end mark, as written ("?", "...", none)
        capital = body[:1].isupper()
        out: list[str] = []
        for _cost, words in self._lattice.nearest(heard, NEAREST):
            said = " ".join(forms.get(w, w) for w in words)
            said = re.sub(r"\bi(?=\b|')", "I", said)
            if capital:
                said = said[:1].upper() + said[1:]
            for form in dict.fromkeys((said + mark, _digits_written(said) + mark)):
                if form not in out and self._spells(form):
                    out.append(form)
        return out

    def _swaps(self, words: list[str]) -> list[tuple[float, int, int, str]]:
        """(similarity, start, end, phrase): a run of heard words that looks or sounds like a
        phrase it is not."""
        out = []
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + MAX_RUN) + 1):
                heard = _DIGITS.sub(lambda m: spoken_number(int(m.group())), " ".join(words[i:j]).lower())
                heard = heard.replace("-", " ")
                best: dict[int, float] = {}
                for query, choices in ((heard, self._phrases), (_sound(heard), self._sounds)):
                    for _match, score, k in process.extract(
                        query, choices, scorer=fuzz.ratio, score_cutoff=MIN_SIMILARITY, limit=None
                    ):
                        best[k] = max(best.get(k, 0.0), score)
                out += [(score, i, j, self._phrases[k]) for k, score in best.items() if self._phrases[k] != heard]
        out.sort(key=lambda s: (-s[0], s[1], s[2], s[3]))
        # a word the recognizer added: the grammar decides whether leaving it out helps
        drops = [(DROP_SCORE, i, i + 1, "") for i in range(len(words))]
        return out[:MAX_SWAPS] + drops

    def candidates(self, text: str) -> list[str]:
        """Wordings the grammar spells, each one or two replacements away from ``text``, most
        alike first; [] when ``text`` is spelled already or nothing near is."""
        if not text.strip() or self._spells(text):
            return []
        out: list[str] = self.nearest(text)
        matches = list(_WORD.finditer(text))
        words = [m.group() for m in matches]
        swaps = self._swaps(words)
        plans = [(s,) for s in swaps] + [
            (a, b) for a, b in itertools.combinations(swaps, 2) if a[2] <= b[1] or b[2] <= a[1]
        ]
        plans.sort(key=lambda plan: -sum(s[0] for s in plan) / len(plan) + 5 * (len(plan) - 1))
        for plan in plans[:MAX_PLANS]:
            # words and digits as equals: Whisper writes "12-ounce", the catalog "twelve ounce"
            for digits in (False, True):
                said = text
                for _score, i, j, phrase in sorted(plan, key=lambda s: -s[1]):  # right to left: offsets hold
                    written = _in_digits(phrase) if digits else phrase
                    said = said[: matches[i].start()] + written + said[matches[j - 1].end() :]
                said = re.sub(r"\s+([.,?!])", r"\1", re.sub(r"\s+", " ", said)).strip()
                said = re.sub(r"([.,?!])[.,?!]+", r"\1", said)
                if said not in out and self._spells(said):
                    out.append(said)
            if len(out) >= MAX_CANDIDATES:
                break
        return out[:MAX_CANDIDATES]


# --- the nearest wordings the grammar spells -------------------------------------------------

_EPS, _ANY = -1, -2  # edge labels besides word ids: nothing said, any heard word (an open slot)
SHORT = 3  # words this long or shorter ("a", "the", "in") cost less to add or leave out
ADD_SHORT, ADD_LONG = 0.5, 0.9  # a grammar word the recognizer did not write
DROP_SHORT, DROP_LONG = 0.5, 0.9  # a heard word the grammar has no place for
SWAP_FLOOR = 0.15  # a heard word written unlike the grammar's but sounding the same ("lotta")
SHORT_SWAP = 0.5  # one short word for another ("the" for "a"): no dearer than leaving it out
JOIN_EXTRA = 0.1  # two heard words that together are one grammar word ("can't saw" → "cancel")
ANY_WORD = 0.2  # a heard word held by an open slot
# Farther wordings are not offered: on misheard orders the nearest one cost at most 0.18 a heard
# word, while most requests for something else ("switch on radio") cost more (docs/stages.md).
MAX_COST_PER_WORD = 0.2
MAX_LATTICE_EDGES = 200_000  # a grammar this large is not searched (logged)


class GrammarLattice:
    """The grammar's templates as one word graph, searched for the wordings nearest to what was
    heard: every template word, catalog phrase, lead-in ("actually", "hey") and tail ("please")
    is an edge, and a path from the start to a template's end spells a request the grammar
    accepts. The distance is a word edit distance whose costs know how words sound: a heard word
    swapped for a grammar word costs less the more alike they are written or sound (spelling or
    metaphone ratio), short words cost less to add or leave out, and two heard words may make
    one grammar word. Unlike a swap of one or two runs (``GrammarSnapper``), any number of edits
    is weighed: "I don't want to look off the anymore" finds "I don't want coffee anymore". The
    nearest path through each template is a candidate; the decoder judges them against the
    audio."""

    def __init__(self, domain: Domain, lead: tuple[str, ...], tail: tuple[str, ...]):
        self._words: dict[str, int] = {}
        self._src: list[int] = []
        self._dst: list[int] = []
        self._label: list[int] = []
        self.ends: list[int] = []  # one per template: where its paths (tail included) end
        self._states = 1  # state 0: the start
        types = domain.slot_types
        slots: dict[str, list[str] | None] = {}  # slot name → its closed catalog's phrases, None: any words
        for name, slot_type in types.items():
            catalog = domain.catalog_for(slot_type)
            closed = catalog is not None and catalog.literal and not catalog.open
            slots[name] = sorted({p.lower() for v in catalog.values for p in v.phrases}) if closed else None
        lead_end = self._optional_twice(0, lead)
        for intent in domain.intents.values():
            for template in intent.samples:
                end = self._node(_parse(template), lead_end, slots)
                self.ends.append(self._optional_twice(end, tail))
        self.size = len(self._src)
        self._arrays()

    def _new(self) -> int:
        self._states += 1
        return self._states - 1

    def _edge(self, a: int, b: int, label: int) -> None:
        self._src.append(a)
        self._dst.append(b)
        self._label.append(label)

    def _chain(self, a: int, words: list[str], b: int | None = None) -> int:
        """Edges for ``words`` in a row from ``a``; the state reached (``b`` when given)."""
        if not words:
            if b is None:
                return a
            self._edge(a, b, _EPS)
            return b
        for k, word in enumerate(words):
            nxt = b if (b is not None and k == len(words) - 1) else self._new()
            self._edge(a, nxt, self._words.setdefault(word.lower(), len(self._words)))
            a = nxt
        return a

    def _optional_twice(self, a: int, phrases: tuple[str, ...]) -> int:
        """Up to two of ``phrases`` after ``a`` (the grammar's lead-ins and tails)."""
        for _ in range(2):
            b = self._new()
            self._edge(a, b, _EPS)
            for phrase in phrases:
                self._chain(a, phrase.split(), b)
            a = b
        return a

    def _node(self, node, a: int, slots: dict[str, list[str] | None]) -> int:
        if isinstance(node, str):
            pos = 0
            for m in SLOT_REF.finditer(node):
                a = self._chain(a, node[pos : m.start()].split())
                literal = m.group(2)
                phrases = [literal] if literal is not None else slots.get(m.group(1))
                b = self._new()
                if phrases is None:  # any words: at least one
                    self._edge(a, b, _ANY)
                    self._edge(b, b, _ANY)
                else:
                    for phrase in phrases:
                        self._chain(a, phrase.split(), b)
                a, pos = b, m.end()
            return self._chain(a, node[pos:].split())
        if isinstance(node, tuple):
            b = self._new()
            for option in node:
                self._edge(self._node(option, a, slots), b, _EPS)
            return b
        for part in node:
            a = self._node(part, a, slots)
        return a

    def _arrays(self) -> None:
        self._src_a = np.asarray(self._src, dtype=np.int64)
        self._dst_a = np.asarray(self._dst, dtype=np.int64)
        self._label_a = np.asarray(self._label, dtype=np.int64)
        self._vocab = sorted(self._words, key=self._words.__getitem__)
        lengths = np.asarray([len(w) for w in self._vocab], dtype=np.int64)
        self._short = lengths <= SHORT
        self._sounds = [_sound(w) for w in self._vocab]
        is_word = self._label_a >= 0
        add = np.where(self._short[np.where(is_word, self._label_a, 0)], ADD_SHORT, ADD_LONG)
        # the cost of passing an edge without hearing anything: free for an empty option
        self._pass = np.where(is_word, add, np.where(self._label_a == _EPS, 0.0, np.inf))
        self._word_edges = np.flatnonzero(is_word)
        self._any_edges = np.flatnonzero(self._label_a == _ANY)
        self._into: dict[int, list[int]] = {}
        for e, b in enumerate(self._dst):
            self._into.setdefault(b, []).append(e)

    def _swap_costs(self, heard: list[str]) -> np.ndarray:
        """[heard word, grammar word] → the cost of writing one for the other."""

        def alike(queries: list[str], choices: list[str]) -> np.ndarray:
            return process.cdist(queries, choices, scorer=fuzz.ratio, dtype=np.float32) / 100.0

        sims = np.maximum(alike(heard, self._vocab), alike([_sound(h) for h in heard], self._sounds))
        cost = np.maximum(1.0 - sims, SWAP_FLOOR)
        short = np.asarray([len(h) <= SHORT for h in heard])[:, None] & self._short
        cost[short] = np.minimum(cost[short], SHORT_SWAP)
        cost[np.asarray([[h == w for w in self._vocab] for h in heard], dtype=bool)] = 0.0
        return cost

    def _settle(self, d: np.ndarray) -> np.ndarray:
        """``d`` with every state reachable without hearing a word relaxed (adding grammar
        words or taking empty options); the graph has no cycle of such edges."""
        while True:
            new = d.copy()
            np.minimum.at(new, self._dst_a, d[self._src_a] + self._pass)
            if np.array_equal(new, d):
                return d
            d = new

    def nearest(self, heard: list[str], limit: int) -> list[tuple[float, list[str]]]:
        """The ``limit`` nearest wordings to the ``heard`` words (normalized: lower case, numbers
        as words), one per template, nearest first, none farther than ``MAX_COST_PER_WORD`` a
        heard word: (cost, words)."""
        if not heard or self.size > MAX_LATTICE_EDGES:
            return []
        n = len(heard)
        swap = self._swap_costs(heard)
        joined = self._swap_costs([a + b for a, b in zip(heard, heard[1:])]) + JOIN_EXTRA if n > 1 else None
        drop = np.asarray([DROP_SHORT if len(h) <= SHORT else DROP_LONG for h in heard])
        costs = np.full((n + 1, self._states), np.inf)
        start = np.full(self._states, np.inf)
        start[0] = 0.0
        costs[0] = self._settle(start)
        we, ae = self._word_edges, self._any_edges
        for i in range(1, n + 1):
            d = costs[i - 1] + drop[i - 1]
            np.minimum.at(d, self._dst_a[we], costs[i - 1][self._src_a[we]] + swap[i - 1][self._label_a[we]])
            np.minimum.at(d, self._dst_a[ae], costs[i - 1][self._src_a[ae]] + ANY_WORD)
            if joined is not None and i >= 2:
                np.minimum.at(d, self._dst_a[we], costs[i - 2][self._src_a[we]] + joined[i - 2][self._label_a[we]])
            costs[i] = self._settle(d)
        ends = sorted(set(self.ends), key=lambda s: costs[n][s])
        out: list[tuple[float, list[str]]] = []
        seen: set[tuple[str, ...]] = set()
        for end in ends:
            if len(out) >= limit or not costs[n][end] <= MAX_COST_PER_WORD * n:
                break
            words = self._path(costs, heard, swap, joined, drop, end)
            if words is not None and tuple(words) not in seen:
                seen.add(tuple(words))
                out.append((float(costs[n][end]), words))
        return out

    def _path(self, costs, heard, swap, joined, drop, end: int) -> list[str] | None:
        """The words along a cheapest path to ``end`` (backwards through ``costs``)."""
        i, state, out = len(heard), end, []

        def close(a: float, b: float) -> bool:
            return abs(a - b) < 1e-5

        for _ in range((len(heard) + 1) * self._states):  # each state at most once per heard word
            if i == 0 and state == 0:
                return out[::-1]
            here = costs[i][state]
            step = None
            for e in self._into.get(state, ()):
                a, label = self._src[e], self._label[e]
                if i > 0 and label >= 0 and close(costs[i - 1][a] + swap[i - 1][label], here):
                    step = (i - 1, a, self._vocab[label])
                elif i > 0 and label == _ANY and close(costs[i - 1][a] + ANY_WORD, here):
                    step = (i - 1, a, heard[i - 1])
                elif (
                    i > 1 and label >= 0 and joined is not None and close(costs[i - 2][a] + joined[i - 2][label], here)
                ):
                    step = (i - 2, a, self._vocab[label])
                elif close(costs[i][a] + self._pass[e], here):
                    step = (i, a, self._vocab[label] if label >= 0 else None)
                if step is not None:
                    break
            if step is None and i > 0 and close(costs[i - 1][state] + drop[i - 1], here):
                step = (i - 1, state, None)
            if step is None:
                return None
            i, state, word = step
            if word is not None:
                out.append(word)
        return None

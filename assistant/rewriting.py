"""The rewrite step: before the NLU, a request that failed before is said the way that works.

Off by default. Learned artifacts switch it on (``rewrite.artifacts``, ``--rewrite-artifacts``):

* a **rewrite table** (``assistant learn rewrites``): failing request → the rephrase most likely
  to end in success, learned from users' rephrase chains (hooks/learn/rewrites.py);
* a **retrieval index** (``assistant learn index``): requests that succeeded, with their MiniLM
  embeddings and who said them; a request at risk is rewritten to the closest one, the user's
  own history first (the personal layer), everyone's otherwise (the global layer).

Taught concepts (``rewrite.profiles``, assistant/concepts.py) also act here: "study mode" is
replaced by what the user taught, and an unknown one starts the teaching dialogue. A learned
**wake gate** (assistant/wake_gate.py) dismisses, silently, a request that woke the assistant
unsurely and that it cannot serve: speech nobody addressed to it.

Every decision is a :class:`Rewrite` record: the runner traces it as the ``rewrite`` stage.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from assistant.wake_gate import GATE_FORMAT, WakeGate
from assistant.wake_threshold import THRESHOLD_FORMAT, WakeThresholds
from core.errors import InputError
from core.fillers import FILLER_PHRASES, FILLER_WORDS
from core.normalize import SCALES, TENS, UNITS
from core.records import Rewrite
from core.wer import normalize_words
from hooks.signals import unsure_words

log = logging.getLogger(__name__)

TABLE_FORMAT = "assistant.rewrites/1"
INDEX_FORMAT = "assistant.rewrite-index/1"
# Words a rephrase may drop or change even when they were heard surely.
FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "my",
        "your",
        "me",
        "i",
        "you",
        "it",
        "is",
        "are",
        "be",
        "can",
        "could",
        "would",
        "will",
        "please",
        "and",
        "or",
        "up",
        "down",
        "now",
        "some",
        "what's",
        "whats",
        "what",
        "how",
    ]
)


NEAR_RATIO = 90.0  # rapidfuzz ratio (0-100) a request needs with a failing request's words
# the same, with one of the user's own failed wordings (their personal layer of the table)
PERSONAL_NEAR_RATIO = 85.0
UNDERSTOOD = 0.9  # the NLU's confidence at which its reading of a request is taken as sure
# a word the domain does not know, said in this many requests that worked, is no one's name for a thing
NAME_WORKED_LIMIT = 2


def utterance_key(text: str) -> str:
    """What counts as "the same request": lower-case words, digits spelled out."""
    return " ".join(normalize_words(text))


# the rewrite table ------------------------------------------------------------------------


@dataclass(frozen=True)
class TableEntry:
    text: str
    probability: float
    support: int


def content_words(text: str, vocabulary: frozenset[str]) -> frozenset[str]:
    """The words of ``text`` that carry what is asked: words the domain knows (numbers
    included), neither function words nor fillers."""
    return frozenset(w for w in plain_key(text).split() if w in vocabulary and w not in FUNCTION_WORDS)


def number_words(text: str) -> tuple[str, ...]:
    """The numbers a request says, in order ("seventy nine" ≠ "seventy", "ten" ≠ "four ten").
    "oh" is a number only beside another ("nine oh five"); alone it is a filler, as in
    :func:`plain_key`."""
    words = utterance_key(text).split()

    def numeric(w: str) -> bool:
        return w != "oh" and (w in UNITS or w in TENS or w in SCALES or w.isdigit())

    return tuple(
        w
        for i, w in enumerate(words)
        if numeric(w) or (w == "oh" and any(numeric(n) for n in words[max(0, i - 1) : i + 2]))
    )


def plain_key(text: str) -> str:
    """:func:`utterance_key` without fillers: "um, we're out of milk, thank you" → "we're out of milk"."""
    return " ".join(w for w in FILLER_PHRASES.sub(" ", utterance_key(text)).split() if w not in FILLER_WORDS)


class RewriteTable:
    """Failing request (by :func:`utterance_key`) → its best rewrite; entries below
    ``threshold`` are kept in the file (the threshold can be changed) but not applied.

    People seldom say a request twice in the same words, so a request that is not in the table
    word for word takes the rewrite of the closest failing request when the two are the same
    request said a little differently: the same content words (:func:`content_words`: "set an
    alarm for five minutes" never takes the rewrite of "… for eleven minutes"), and a rapidfuzz
    ratio of at least ``near`` once fillers are left out ("we're out of orange juice, cheers" ~
    "we're out of orange juice if you don't mind"). ``near`` = 101 turns this off. A near match
    is not taken when the rewrite drops one of the request's content words (a wrong rule,
    "unlock the front door" → "close the garage door", must not spread to other wordings), nor
    when the request, as said, worked at least as often as it failed (``said``: outcomes by
    :func:`plain_key` in the traces learned from)."""

    def __init__(
        self,
        entries: dict[str, TableEntry],
        threshold: float = 0.5,
        min_support: int = 1,
        near: float = NEAR_RATIO,
        vocabulary: frozenset[str] = frozenset(),
        said: dict[str, tuple[int, int]] | None = None,
        personal: dict[str, list[tuple[str, TableEntry]]] | None = None,
        personal_near: float = PERSONAL_NEAR_RATIO,
        preferences: dict[str, dict[str, dict[str, int]]] | None = None,
        names: frozenset[str] = frozenset(),
    ):
        self.entries = entries
        # each user's choices among like-named entities (user → type → id → count), which the
        # runner adds to the user's history at the start of a session
        self.preferences = preferences or {}
        self.personal_near = personal_near
        self.threshold = threshold
        self.min_support = min_support
        self.near = near
        self.vocabulary = vocabulary
        self.said = said or {}
        # each applied rule's source without fillers, its content words and its rewrite's words,
        # computed once: a near match compares every request with all of them
        self._applied = [
            (plain_key(key), content_words(key, vocabulary), frozenset(normalize_words(e.text)), e)
            for key, e in entries.items()
            if e.probability >= threshold and e.support >= min_support
        ]
        # each rephrase's source without fillers and its content words, and its rewrite without
        # fillers and its numbers, computed once: every request of the user compares with them
        self._personal = {
            user: [
                (plain_key(src), content_words(src, vocabulary), plain_key(e.text), number_words(e.text), e)
                for src, e in rows
            ]
            for user, rows in (personal or {}).items()
        }
        # the one stretch of words each of those rephrases changed, when it names something
        # the domain does not know: the user's own name for a thing ("the overhead" → "the
        # kitchen lights"), said again in other requests
        worked = Counter()
        for key, (n, _failed) in self.said.items():
            worked.update(dict.fromkeys(set(key.split()), n))
        common = frozenset(w for w, n in worked.items() if n >= NAME_WORKED_LIMIT)
        self._phrases = {
            user: sorted(
                (phrase for src, e in rows if (phrase := own_phrase(src, e, vocabulary, names, common)) is not None),
                key=lambda ph: (-len(ph[0]), -ph[2], ph[0], ph[1]),
            )
            for user, rows in (personal or {}).items()
        }

    @classmethod
    def load(
        cls, path: Path, raw: dict, vocabulary: frozenset[str] = frozenset(), names: frozenset[str] = frozenset()
    ) -> RewriteTable:
        entries = {}
        for i, row in enumerate(raw.get("rewrites") or ()):
            try:
                entries[utterance_key(row["from"])] = TableEntry(
                    str(row["to"]), float(row["probability"]), int(row["support"])
                )
            except (KeyError, TypeError, ValueError):
                raise InputError(
                    path, "each rewrite needs from, to, probability and support", field=f"rewrites[{i}]"
                ) from None
        personal: dict[str, list[tuple[str, TableEntry]]] = {}
        for user, rows in (raw.get("personal") or {}).items():
            for i, row in enumerate(rows):
                try:
                    entry = (utterance_key(row["from"]), TableEntry(str(row["to"]), 1.0, int(row["support"])))
                except (KeyError, TypeError, ValueError):
                    raise InputError(
                        path, "each rephrase needs from, to and support", field=f"personal.{user}[{i}]"
                    ) from None
                personal.setdefault(str(user), []).append(entry)
        preferences: dict[str, dict[str, dict[str, int]]] = {}
        for user, kinds in (raw.get("preferences") or {}).items():
            try:
                preferences[str(user)] = {
                    str(kind): {str(eid): int(n) for eid, n in ids.items()} for kind, ids in kinds.items()
                }
            except (AttributeError, TypeError, ValueError):
                raise InputError(path, "each preference is type → id → count", field=f"preferences.{user}") from None
        return cls(
            entries,
            float(raw.get("threshold", 0.5)),
            int(raw.get("min_support", 1)),
            float(raw.get("near", NEAR_RATIO)),
            vocabulary,
            {str(k): (int(v[0]), int(v[1])) for k, v in (raw.get("said") or {}).items()},
            personal,
            float(raw.get("personal_near", PERSONAL_NEAR_RATIO)),
            preferences,
            names,
        )

    def lookup(self, text: str, user: str | None = None, read=None) -> Rewrite | None:
        """``user``: whose own rephrases apply; ``read`` (text → the NLU's Interpretation): a
        request the NLU reads in domain surely keeps its intent under the user's own rephrase."""
        key = utterance_key(text)
        entry = self.entries.get(key)
        everyone = (
            entry
            if entry is not None and entry.probability >= self.threshold and entry.support >= self.min_support
            else None
        )
        own = self._own_rephrase(key, user)
        if own is not None and everyone is not None and own[0] < 100:
            own = None  # everyone's rule for these very words beats the user's rephrase of other words
        if own is not None and _changes_intent(_sure_reading(text, read), own[1].text, read):
            own = None  # "lock the front door" from a user who once changed their mind to "unlock"
        if own is not None:
            # The user's own rephrase of these words wins over everyone's: the same words can
            # mean another thing in another home ("the big light"), and a wording that seldom
            # works for others may be fixed for this user by what they said instead.
            ratio, e = own
            return Rewrite(text, e.text, "table_personal", round(ratio / 100.0, 4), e.support, e.text)
        if everyone is not None:
            return Rewrite(
                text, everyone.text, "table", round(everyone.probability, 4), everyone.support, everyone.text
            )
        phrase = self._own_phrase(key, user)
        if phrase is not None:
            heard = _sure_reading(text, read)  # read once for both checks
            if _changes_intent(heard, phrase[0], read) or _names_nothing(heard, phrase[2]):
                phrase = None
        if phrase is not None:
            said, support, _name = phrase
            return Rewrite(text, said, "table_phrase", 1.0, support, said)
        if entry is not None:
            return None  # everyone's rephrases of these words seldom did better than the words
        near = self._nearest(key)
        if near is None:
            return None
        ratio, e = near
        return Rewrite(text, e.text, "table_near", round(e.probability * ratio / 100.0, 4), e.support, e.text)

    def _own_rephrase(self, key: str, user: str | None) -> tuple[float, TableEntry] | None:
        """The user's own rephrase of a wording of theirs that failed, when the request is that
        wording said a little differently (the same content words, ratio ≥ ``personal_near``
        without fillers). Unlike everyone's rules, it may drop content words: this user said
        the rephrase instead ("turn on the tv socket when i arrive home" → "turn the television
        on"), and it is applied even when the wording works for others. It keeps the numbers
        said: a rephrase that answered a question ("set the thermostat" → "… to seventy two")
        or was misheard ("seventy nine" → "seventy of") is not the request said again."""
        rows = self._personal.get(user or "")
        if not rows or self.personal_near > 100:
            return None
        from rapidfuzz import fuzz

        plain, content, numbers = plain_key(key), content_words(key, self.vocabulary), number_words(key)
        best: tuple[float, int, TableEntry] | None = None
        for other, other_content, target, target_numbers, e in rows:
            if other_content != content or target == plain or target_numbers != numbers:
                continue
            ratio = fuzz.ratio(plain, other)
            if ratio >= self.personal_near and (best is None or (ratio, e.support) > best[:2]):
                best = (ratio, e.support, e)
        return None if best is None else (best[0], best[2])

    def _own_phrase(self, key: str, user: str | None) -> tuple[str, int, tuple[str, ...]] | None:
        """The request with the user's own name for a thing replaced by what they said instead
        when it failed (the longest name the request says), that rephrase's support, and the
        name's words."""
        phrases = self._phrases.get(user or "")
        if not phrases or self.personal_near > 100:
            return None
        words = key.split()
        for src, dst, support in phrases:
            n = len(src)
            for i in range(len(words) - n + 1):
                if tuple(words[i : i + n]) == src:
                    return " ".join((*words[:i], *dst, *words[i + n :])), support, src
        return None

    def _nearest(self, key: str) -> tuple[float, TableEntry] | None:
        if self.near > 100 or not self._applied:
            return None
        from rapidfuzz import fuzz

        plain, content = plain_key(key), content_words(key, self.vocabulary)
        worked, failed = self.said.get(plain, (0, 0))
        if worked and worked >= failed:
            return None
        best: tuple[float, TableEntry] | None = None
        for other, other_content, target_words, e in self._applied:
            if other_content != content or not content <= target_words:
                continue
            ratio = fuzz.ratio(plain, other)
            if ratio >= self.near and (best is None or ratio > best[0]):
                best = (ratio, e)
        return best


def _sure_reading(text: str, read):
    """The NLU's reading of ``text`` (``read``: text → Interpretation) when it understands it in
    domain surely; None when it does not, or without an NLU to ask."""
    if read is None:
        return None
    heard = read(text)
    return None if heard.out_of_domain or heard.confidence < UNDERSTOOD else heard


def _slot_words(heard) -> set[str]:
    """The words of the slots an NLU reading found."""
    return {w for slot in heard.slots for w in normalize_words(slot.text)}


def _changes_intent(heard, rewritten: str, read) -> bool:
    """Whether ``read`` reads ``rewritten`` as another intent than the request's sure reading
    ``heard`` (None: not sure, nothing to keep): a personal rewrite must not change what the
    user asked."""
    return heard is not None and read(rewritten).intent != heard.intent


def _names_nothing(heard, name: tuple[str, ...]) -> bool:
    """Whether the request's sure reading ``heard`` (None: not sure) found none of ``name``'s
    words inside a slot. A user's name for a thing stands where the request names a thing
    ("lock the deadbolt"); a request understood without those words ("close the garage door
    if you don't mind") does not need them replaced, and a "name" learned from a misheard word
    ("if" → "door") would only garble it."""
    return heard is not None and not set(name) & _slot_words(heard)


def own_phrase(
    src: str, e: TableEntry, vocabulary: frozenset[str], names: frozenset[str], common: frozenset[str] = frozenset()
) -> tuple[tuple, tuple, int] | None:
    """(words, words instead, support) when a user's failed request ``src`` and their rephrase
    that worked replace one stretch that says a word the domain does not know with the name of
    a thing (``names``: the catalogs' words): "turn on the overhead" → "switch on the kitchen
    lights" gives ("overhead",) → ("kitchen", "lights"), whatever else the rephrase changed (the
    verb, a self-correction dropped). Fillers and words said twice are left out, and so are
    function words at the stretch's ends, and at the failed stretch's words that name nothing
    or that the rephrase says too ("the cooker off" → "off the kitchen oven": "cooker").
    The stretch is at most half of the request, the name was not said elsewhere in it ("will
    it get chilly in tokyo" → "how cold is it in tokyo" is not a name for Tokyo), and neither
    side says a number. A word the domain does not know but that is ``common`` (said in requests
    that worked) did not make this one fail: "close the garage if" → "close the garage door"
    does not make "if" a name, since "… if you don't mind" works. Without a vocabulary and
    names, none."""
    if not vocabulary or not names:
        return None
    a, b = _said_once(plain_key(src).split()), _said_once(plain_key(e.text).split())
    unknown = lambda words: any(w not in vocabulary and w not in FUNCTION_WORDS for w in words)
    named = [
        op
        for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
        if op[0] == "replace" and unknown(a[op[1] : op[2]])
    ]
    if len(named) != 1:
        return None
    _tag, i1, i2, j1, j2 = named[0]
    kept = set(b)
    old = _trimmed(a[i1:i2], lambda w: w in FUNCTION_WORDS or w in kept or (w in vocabulary and w not in names))
    new = _trimmed(b[j1:j2], lambda w: w in FUNCTION_WORDS)
    if not old or not new or 2 * len(old) > len(a):
        return None  # most of the request changed
    if any(w in common and w not in vocabulary for w in old):
        return None  # a word that requests which worked say too
    said = [w for w in new if w not in FUNCTION_WORDS]
    if not said or not set(said) <= names or set(said) & set(a[:i1] + a[i2:]):
        return None  # not the name of a thing, or one the request said anyway
    if number_words(" ".join(old)) or number_words(" ".join(new)):
        return None  # "five" → "ten minutes" is a change of mind, not a name
    return old, new, e.support


def _said_once(words: list[str]) -> list[str]:
    """Words without their immediate repeats ("the the door" → "the door")."""
    return [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]


def _trimmed(words: list[str], drop) -> tuple[str, ...]:
    """Words without those ``drop`` says at either end ("front door please" → "front door")."""
    lo, hi = 0, len(words)
    while lo < hi and drop(words[lo]):
        lo += 1
    while hi > lo and drop(words[hi - 1]):
        hi -= 1
    return tuple(words[lo:hi])


# online retrieval -------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievalOptions:
    trigger: float = 0.6  # rewrite only a request heard with a word below this probability
    personal: float = 0.80  # ranking score the user's own best candidate needs
    global_: float = 0.88  # ranking score a candidate from everyone needs
    min_users: int = 2  # a global candidate must have worked for this many users
    cosine_weight: float = 0.5  # ranking = cosine·w + fuzzy·(1 − w) + popularity bonus
    popularity: float = 0.02  # bonus per log10 of the times a candidate succeeded
    understood: float = UNDERSTOOD  # a request the NLU reads in domain this surely is left alone


class RetrievalIndex:
    """Successful requests, embedded (the NLU's int8 MiniLM), with who said them."""

    def __init__(
        self,
        texts: list[str],
        users: list[str],
        counts: np.ndarray,
        embeddings: np.ndarray,
        n_users: np.ndarray,
        options: RetrievalOptions = RetrievalOptions(),
    ):
        self.texts = list(texts)
        self.keys = {utterance_key(t) for t in texts}
        self.users = np.asarray(users)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.n_users = np.asarray(n_users, dtype=np.int64)
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.options = options
        self._by_user: dict[str, np.ndarray] = {}
        for i, u in enumerate(self.users.tolist()):
            self._by_user.setdefault(u, []).append(i)
        self._by_user = {u: np.asarray(ix) for u, ix in self._by_user.items()}
        self._global = np.flatnonzero(self.users == "")
        self._words = [frozenset(normalize_words(t)) for t in self.texts]

    @classmethod
    def load(cls, path: Path, options: RetrievalOptions | None = None) -> RetrievalIndex:
        try:
            with np.load(path, allow_pickle=False) as z:
                fmt = str(z["format"])
                if fmt != INDEX_FORMAT:
                    raise InputError(path, f"unknown format {fmt!r} (expected {INDEX_FORMAT})")
                stored = json.loads(str(z["options"])) if "options" in z else {}
                opts = options or RetrievalOptions(**stored)
                return cls(z["texts"].tolist(), z["users"].tolist(), z["counts"], z["embeddings"], z["n_users"], opts)
        except (OSError, ValueError, KeyError) as err:
            raise InputError(path, f"not a rewrite index ({err})") from None

    def at_risk(self, transcript: Any) -> bool:
        """Whether the request may be misheard or misphrased: a word heard with low probability
        (the recognizer's own confidence; typed text has none and is never at risk)."""
        words = getattr(transcript, "words", ())
        return bool(words) and min(w.probability for w in words) < self.options.trigger

    def query(self, transcript: Any, user: str, embed, vocabulary: frozenset[str] = frozenset(), read=None) -> Rewrite:
        """``vocabulary``: the domain's words. Those the user said (function words aside) must
        stay in a rewrite: "close the garage door" must not become "open the garage door",
        however alike they look; a word the domain does not know ("walk") may go. A rewrite
        brings in no more of the domain's words than it drops words heard unsurely: "set a
        timer" never becomes "set a timer for twenty minutes" (a value the user did not say),
        "turn on the lice" (heard unsurely) may become "turn on the lights".

        ``read`` (text → the NLU's Interpretation), when given, is a second opinion: a request
        the NLU reads in domain at ``understood`` or above, with no word heard unsurely inside a
        slot, is left alone ("please turn the lights down" with "please" unsure); a candidate
        must read in domain about as surely as the request, or at ``understood``."""
        from rapidfuzz import fuzz

        text = transcript.text
        if utterance_key(text) in self.keys:
            return Rewrite(text, text, "none", 1.0, 0, text)  # a request known to work
        if not self.at_risk(transcript) or not len(self.texts):
            return Rewrite(text, text)
        opts = self.options
        # words heard unsurely that a rewrite may replace: as many new content words, no more
        unsure = unsure_words(((w.text, w.probability) for w in transcript.words), opts.trigger)
        bar = None
        if read is not None:
            heard = read(text)
            if not heard.out_of_domain and heard.confidence >= opts.understood and not unsure & _slot_words(heard):
                return Rewrite(text, text)
            bar = 0.0 if heard.out_of_domain else min(heard.confidence, opts.understood)
        best: tuple[float, int, str] | None = None
        said = normalize_words(text)
        sure = {w for w in said if w in vocabulary and w not in FUNCTION_WORDS}

        def keeps_meaning(i: int) -> bool:
            words = self._words[i]
            if not sure <= words:
                return False
            added = {w for w in words.difference(said) if w in vocabulary and w not in FUNCTION_WORDS}
            return len(added) <= len(unsure - words)  # "set a timer" never gains "for twenty minutes"

        layers = []
        for layer, rows, threshold in (
            ("personal", self._by_user.get(user), opts.personal),
            ("global", self._global, opts.global_),
        ):
            if rows is None or not len(rows):
                continue
            if layer == "global":
                rows = rows[self.n_users[rows] >= opts.min_users]
            # a layer none of whose rows keeps the meaning cannot rewrite: the embedding is
            # only computed when some row could (it costs as much as the NLU's own reading)
            if any(keeps_meaning(i) for i in rows.tolist()):
                layers.append((layer, rows, threshold))
        if not layers:
            return Rewrite(text, text)
        q = embed(text)
        for layer, rows, threshold in layers:
            cos = self.embeddings[rows] @ q
            top = rows[np.argsort(-cos)[:5]]
            scored = []
            for i in top.tolist():
                if not keeps_meaning(i):
                    continue
                fuzzy = fuzz.token_set_ratio(text.lower(), self.texts[i].lower()) / 100.0
                c = float(self.embeddings[i] @ q)
                score = (
                    opts.cosine_weight * c
                    + (1 - opts.cosine_weight) * fuzzy
                    + opts.popularity * math.log10(max(1, int(self.counts[i])))
                )
                scored.append((score, i))
            if not scored:
                continue
            score, i = max(scored)
            if best is None or score > best[0]:
                best = (score, i, layer)
            if score >= threshold and (bar is None or _reads_better(read(self.texts[i]), bar)):
                return Rewrite(text, self.texts[i], layer, round(score, 4), int(self.counts[i]), self.texts[i])
        if best is None:
            return Rewrite(text, text)
        return Rewrite(text, text, "none", round(best[0], 4), 0, self.texts[best[1]])


def _reads_better(interp: Any, bar: float) -> bool:
    return not interp.out_of_domain and interp.confidence >= bar


# the step ---------------------------------------------------------------------------------


class RewriteStep:
    """Runs before the NLU: taught concepts, then the rewrite table, then retrieval."""

    def __init__(
        self,
        table: RewriteTable | None = None,
        index: RetrievalIndex | None = None,
        concepts: Any = None,
        embed=None,
        vocabulary: frozenset[str] = frozenset(),
        gate: WakeGate | None = None,
        wake: WakeThresholds | None = None,
    ):
        self.vocabulary = vocabulary
        self.gate = gate
        self.wake = wake
        self.table = table
        self.index = index
        self.concepts = concepts
        self._embed = embed

    def embed(self, text: str) -> np.ndarray:
        if self._embed is None:
            from stages.nlu.pretrained import sentence_embeddings

            self._embed = lambda t: sentence_embeddings([t])[0]
        return self._embed(text)

    def warm(self) -> None:
        if self.index is not None:
            self.embed("warm up")

    def history(self, user: str, history: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        """``history`` (type → id → count) with this user's learned entity choices added."""
        learned = self.table.preferences.get(user) if self.table is not None else None
        if not learned:
            return history
        out = {kind: dict(ids) for kind, ids in history.items()}
        for kind, ids in learned.items():
            for eid, n in ids.items():
                out.setdefault(kind, {})[eid] = out.get(kind, {}).get(eid, 0) + n
        return out

    def wake_threshold(self, user: str) -> float | None:
        """The learned wake threshold of this user's device (None: the configured one)."""
        return self.wake.for_user(user) if self.wake is not None else None

    def run(
        self, transcript: Any, ctx: Any, read=None, woken: bool = False, wake_score: float | None = None
    ) -> Rewrite:
        """``read``: the NLU (text → Interpretation), a second opinion on retrieval's rewrites;
        ``woken``: the turn began with the wake word (not a follow-up answer), which scored
        ``wake_score``."""
        rewrite = self._rewrite(transcript, ctx, read, woken)
        gate = self.gate
        if gate is None or not woken or read is None or rewrite.source != "none" or not gate.doubts(wake_score):
            return rewrite  # the NLU reads the request only when the gate could act on it
        if gate.dismisses(wake_score, read(rewrite.text, ctx)):
            return replace(rewrite, source="gate", score=float(wake_score), dismissed=True)
        return rewrite

    def _rewrite(self, transcript: Any, ctx: Any, read, woken: bool) -> Rewrite:
        text = transcript.text
        if self.concepts is not None:
            heard = tuple((w.text, w.probability) for w in getattr(transcript, "words", ()) or ())
            taught = self.concepts.rewrite(text, ctx, heard, woken)
            if taught is not None:
                return taught
        if self.table is not None:
            found = self.table.lookup(text, ctx.user.id, read)
            if found is not None:
                return found
        if self.index is not None:
            return self.index.query(transcript, ctx.user.id, self.embed, self.vocabulary, read)
        return Rewrite(text, text)


def load_artifacts(
    paths: list[str], vocabulary: frozenset[str] = frozenset(), names: frozenset[str] = frozenset()
) -> tuple[RewriteTable | None, RetrievalIndex | None]:
    """The rewrite table and retrieval index among ``paths`` (``vocabulary``: the domain's
    words; ``names``: its catalogs' words)."""
    table, index, _gate, _wake = _load(paths, vocabulary, names)
    return table, index


def _load(
    paths: list[str], vocabulary: frozenset[str], names: frozenset[str] = frozenset()
) -> tuple[RewriteTable | None, RetrievalIndex | None, WakeGate | None, WakeThresholds | None]:
    """Every artifact named, each file read once: the table, the index, the wake gate and the
    wake thresholds."""
    table = index = gate = wake = None
    for p in map(Path, paths):
        if not p.is_file():
            raise InputError(p, "no such rewrite artifact")
        if p.suffix == ".npz":
            index = RetrievalIndex.load(p)
            continue
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(p, f"not a rewrite table ({err})") from None
        if isinstance(raw, dict) and raw.get("format") == GATE_FORMAT:
            gate = WakeGate.load(p, raw)
        elif isinstance(raw, dict) and raw.get("format") == THRESHOLD_FORMAT:
            wake = WakeThresholds.load(p, raw)
        elif isinstance(raw, dict) and raw.get("format") == TABLE_FORMAT:
            table = RewriteTable.load(p, raw, vocabulary, names)
        else:
            raise InputError(p, f"not a rewrite table (format {TABLE_FORMAT} expected)", field="format")
    return table, index, gate, wake


def rewrite_step(config: Any, domain: Any = None) -> RewriteStep | None:
    """The step the configuration asks for; None (no step at all) when no artifact is named."""
    paths = [p.strip() for p in str(config["rewrite.artifacts"]).split(",") if p.strip()]
    profiles = str(config["rewrite.profiles"]).strip()
    if not paths and not profiles:
        return None
    vocabulary: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    if domain is not None:
        from core.domain import catalog_words, domain_vocabulary

        vocabulary, names = domain_vocabulary(domain), catalog_words(domain)
    table, index, gate, wake = _load(paths, vocabulary, names)
    concepts = None
    if profiles:
        from assistant.concepts import ConceptStore

        concepts = ConceptStore(Path(profiles), vocabulary)
    return RewriteStep(table, index, concepts, vocabulary=vocabulary, gate=gate, wake=wake)

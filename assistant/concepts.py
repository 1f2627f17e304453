"""Concepts users teach: "set the living room light to study mode" → "I don't know what study
mode is. Can you teach me?" → "forty percent" → from then on, study mode means forty percent.

A concept is a word and mode, scene or routine ("study mode"), said where a value or a request goes. Its
definition is either a **setting** (a few words that take the name's place in the request:
"forty percent") or an **action** (a whole request said instead: "turn off the tv"). Definitions
are kept per user in ``PROFILES/<user>.json`` and used in every later session, also when the
name is worded a little differently ("the studying mode"). "forget study mode" removes one.

When the turn after a concept was taught or used says it went wrong (a "no", or the request said
again), the definition is forgotten, and the next mention asks again: a definition the
recognizer misheard does not stay. The store acts in the rewrite step (assistant/rewriting.py),
before the NLU. Writing a
definition twice is harmless: the oracle's counterfactual replays may run a turn again.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.paths import safe_name, write_json_atomic
from core.records import Rewrite
from hooks.signals import is_negative, jaccard, unsure_words

log = logging.getLogger(__name__)

PROFILE_FORMAT = "assistant.user-profile/1"
_NOT_A_NAME = r"(?:to|into|in|on|at|the|my|our|a|an|for|set|put|switch|turn|make|it|and|please)\b"
CONCEPT = re.compile(rf"\b(?:(?:the|my|our)\s+)?(?P<name>(?!{_NOT_A_NAME})[a-z']+\s+(?:mode|scene|routine))\b")
FORGET = re.compile(r"^(?:please\s+)?forget\s+(?:about\s+)?(?:(?:the|my)\s+)?(?P<name>.+?)\s*[.!]?$")
CANCEL = re.compile(r"^(?:no|nope|never ?mind|cancel|stop|forget it)\b")
SIMILAR = 85.0  # rapidfuzz ratio between names that counts as the same concept
SETTING_WORDS = 3  # a definition this short is a setting; longer, a request said instead
RETRY_OVERLAP = 0.5  # an answer sharing this much with the request restates it
RESTATED = 0.5  # the turn after a concept was used restates what was done: it was not right
PENDING_TURNS = 2  # the definition must come within this many turns of the question
UNSURE = 0.6  # a definition with a word heard below this probability is asked for once more


@dataclass(frozen=True)
class Pending:
    user: str
    name: str
    said: str  # the words that named it ("the study mode")
    request: str  # the request that named the concept
    turn: int
    asked_again: bool = False


class ConceptStore:
    def __init__(self, folder: Path, vocabulary: frozenset[str] = frozenset()):
        self.folder = Path(folder)
        self.vocabulary = vocabulary  # the domain's words: a definition with another is asked again
        self._pending: dict[str, Pending] = {}
        self._applied: dict[str, Pending] = {}  # the concept the session's last turn used
        self._lock = threading.Lock()

    # profiles ----------------------------------------------------------------------------
    def _path(self, user: str) -> Path:
        return self.folder / f"{safe_name(user)}.json"

    def concepts(self, user: str) -> dict[str, dict]:
        path = self._path(user)
        if not path.is_file():
            return {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(path, f"not a user profile ({err})") from None
        if not isinstance(raw, dict) or raw.get("format") != PROFILE_FORMAT:
            raise InputError(path, f"not a user profile (format {PROFILE_FORMAT} expected)", field="format")
        return dict(raw.get("concepts") or {})

    def _save(self, user: str, concepts: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._path(user), {"format": PROFILE_FORMAT, "user": user, "concepts": concepts})

    def teach(self, user: str, name: str, definition: str) -> dict:
        kind = "setting" if len(definition.split()) <= SETTING_WORDS else "action"
        concepts = self.concepts(user)
        concepts[name] = {"kind": kind, "definition": definition}
        self._save(user, concepts)
        return concepts[name]

    def forget(self, user: str, name: str) -> str | None:
        concepts = self.concepts(user)
        found = self._match(name, concepts)
        if found is None:
            return None
        del concepts[found]
        self._save(user, concepts)
        return found

    @staticmethod
    def _match(name: str, concepts: dict) -> str | None:
        """The taught concept ``name`` means, also when worded a little differently."""
        if name in concepts:
            return name
        from rapidfuzz import fuzz, process

        hit = process.extractOne(name, list(concepts), scorer=fuzz.ratio, score_cutoff=SIMILAR)
        return hit[0] if hit else None

    # the rewrite step ----------------------------------------------------------------------
    def rewrite(
        self, text: str, ctx: Any, heard: tuple[tuple[str, float], ...] = (), woken: bool = False
    ) -> Rewrite | None:
        """A rewrite for this request, the step's own reply, or None (not about concepts).
        ``heard``: each word with the recognizer's probability (none for typed text). A
        definition heard unsurely, or with a word the domain does not know ("spend two" for
        "seventy two"), is asked for once more before it is stored: a misheard definition
        would be used in every later session. A concept name heard unsurely ("paris mode" for
        "paris now") starts no lesson: the request goes on as heard. ``woken``: the turn began
        with the wake word, so it is a new request, not the answer to the question (which the
        follow-up window hears without one): the lesson is dropped."""
        user, low = ctx.user.id, text.lower().strip()
        self._check_last(low, ctx)
        with self._lock:
            pending = self._pending.get(ctx.session)
            if pending is not None and woken and pending.turn < ctx.turn:
                del self._pending[ctx.session]
                pending = None
            if pending is not None and pending.turn < ctx.turn <= pending.turn + PENDING_TURNS:
                del self._pending[ctx.session]
                if CANCEL.match(low):
                    return Rewrite(text, text, "teach", 0.0, reply=f"OK, I won't learn {pending.name}.")
                definition = low.rstrip(".!")
                rest = pending.request.replace(pending.said, " ")
                if CONCEPT.search(definition) or (
                    len(definition.split()) > SETTING_WORDS and jaccard(definition, rest) >= RETRY_OVERLAP
                ):
                    return None  # not a definition: the user said the request again
                unsure = any(p < UNSURE for _w, p in heard)
                unknown = bool(self.vocabulary) and any(
                    w not in self.vocabulary for w in re.findall(r"[a-z']+", definition)
                )
                if (unsure or unknown) and not pending.asked_again:
                    self._pending[ctx.session] = Pending(
                        pending.user, pending.name, pending.said, pending.request, ctx.turn, asked_again=True
                    )
                    return Rewrite(
                        text,
                        text,
                        "teach",
                        0.0,
                        reply=f"Sorry, I didn't catch that. What is {pending.name}?",
                        expects="concept",
                    )
                entry = self.teach(pending.user, pending.name, definition)
                done = self._apply(pending.request, pending.said, entry)
                self._applied[ctx.session] = Pending(pending.user, pending.name, "", done, ctx.turn)
                return Rewrite(text, done, "teach", 1.0)
        m = FORGET.match(low)
        if m:
            name = m.group("name")
            gone = self.forget(user, name)
            if gone is not None:
                return Rewrite(text, text, "forget", 1.0, reply=f"OK, I forgot {gone}.")
            if CONCEPT.search(name):
                return Rewrite(text, text, "forget", 0.0, reply=f"I didn't know {name} anyway.")
            return None
        m = CONCEPT.search(low)
        if m is None:
            return None
        name = m.group("name")
        concepts = self.concepts(user)
        known = self._match(name, concepts)
        if known is not None:
            done = self._apply(low, m.group(0), concepts[known])
            with self._lock:
                self._applied[ctx.session] = Pending(user, known, "", done, ctx.turn)
            return Rewrite(text, done, "concept", 1.0, considered=known)
        if unsure_words(heard, UNSURE) & set(name.split()):
            return None
        with self._lock:
            self._pending[ctx.session] = Pending(user, name, m.group(0), low, ctx.turn)
        return Rewrite(
            text, text, "teach", 0.0, reply=f"I don't know what {name} is. Can you teach me?", expects="concept"
        )

    def _check_last(self, low: str, ctx: Any) -> None:
        """Implicit feedback on the last turn's concept: when the user's next words say it went
        wrong ("no", or the request said again), the definition was misheard or is wrong, and
        it is forgotten (the next mention asks again)."""
        with self._lock:
            last = self._applied.get(ctx.session)
            if last is None or ctx.turn <= last.turn:
                return  # the same turn again (a replay), or nothing to check
            del self._applied[ctx.session]
        if ctx.turn > last.turn + PENDING_TURNS:
            return
        # ``request``: what was carried out; the user restating it means it was not what they wanted
        if is_negative(low) or jaccard(low, last.request) >= RESTATED:
            log.info("%s: %s forgotten (the user said it again after it was used)", last.user, last.name)
            self.forget(last.user, last.name)

    @staticmethod
    def _apply(request: str, said: str, entry: dict) -> str:
        """The request with the concept's definition: a setting takes the name's place, an
        action is said instead."""
        if entry["kind"] != "setting":
            return entry["definition"]
        return re.sub(rf"\b{re.escape(said)}\b", entry["definition"], request, count=1)


def profile_summary(folder: Path) -> dict:
    """What the users of a profiles folder taught."""
    folder = Path(folder)
    users = taught = 0
    names: dict[str, int] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        raw = json.loads(path.read_text(encoding="utf-8"))
        concepts = raw.get("concepts") or {}
        if concepts:
            users += 1
            taught += len(concepts)
            for n in concepts:
                names[n] = names.get(n, 0) + 1
    return {"users": users, "taught": taught, "names": dict(sorted(names.items()))}

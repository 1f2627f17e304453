"""Learning rewrites from implicit feedback: rephrase chains, an absorbing Markov chain, and
the retrieval index of successful requests.

Only what a production assistant has is read: what it heard (the transcript), what it did (the
reply kind and status, errors) and what the user did next (the trace's implicit signals: a
rephrase, "no, …", a barge-in, abandonment). Gold and oracle labels in the traces are never
read (``_PRODUCTION_KEYS`` lists what is). Turns the assistant did not wake for are not seen.

**Requests.** A turn that is not the answer to the assistant's question starts a request; its
answers belong to it. A request *succeeded* when its last turn carried something out (an action
or an answer, no error) and the user neither rephrased it, said it was wrong nor spoke over the
reply; it *failed* on a decline, an apology, an error, a question left unanswered, a rephrase,
negative feedback, a barge-in, or abandonment.

**Chains.** A failed request followed, in the same session and within ``window_s``, by a request
that restates it (lexical overlap or MiniLM cosine) continues a chain; a success ends it, and a
failure with no restatement ends it in failure.

**The Markov chain.** Over every chain of every user, each utterance is a transient state; each
utterance that ever ended a chain in success has its own absorbing "succeeded as said" state,
and one absorbing state is "gave up". The absorption probabilities B = (I − Q)⁻¹ R give, for each
utterance u, the probability that a user who says u ends up served by saying v; the rewrite of u
is the v ≠ u with the highest probability, when that beats u's own chance of working as said.
Its support is the number of chains from u that ended with v. ``threshold`` (applied at run
time, kept in the file) trades coverage for precision.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.rewriting import (
    INDEX_FORMAT,
    TABLE_FORMAT,
    RetrievalOptions,
    plain_key,
    utterance_key,
)
from core.errors import OutputError, UserError
from core.paths import write_json_atomic
from hooks.signals import jaccard
from hooks.trace_reader import read_records, trace_files

log = logging.getLogger(__name__)

QUESTIONS = ("elicit", "clarify", "confirm")
SERVED = ("action", "answer")
BROKEN_STATUS = ("failed", "not_found", "unsupported", "error", "cancelled")
# What of a turn_end record the learners read: never "gold", "correct" or "labels".
_PRODUCTION_KEYS = (
    "session",
    "turn",
    "transcript",
    "reply_type",
    "status",
    "errors",
    "signals",
    "start_s",
    "intent",
    "slots",
    "entities",
    "stages",
    "rewrite",
    "wake",  # the detector's wake event (its score), as the device logged it
)
RESTATE_JACCARD = 0.3
RESTATE_COSINE = 0.6
WINDOW_S = 60.0


@dataclass(frozen=True)
class Request:
    """One request a user made (its answers to the assistant's questions folded in)."""

    session: str
    user: str
    turn: int
    text: str  # what the assistant heard (before any rewrite)
    start_s: float
    succeeded: bool
    turns: tuple[dict, ...]  # the production view of its turn_end records

    @property
    def key(self) -> str:
        return utterance_key(self.text)

    @property
    def read_as(self) -> str | None:
        """The intent the NLU read in the request's first turn (None: out of domain)."""
        return self.turns[0].get("intent") if self.turns else None

    @property
    def served(self) -> dict:
        """The turn that carried the request out (its last), with what the NLU read."""
        return self.turns[-1]


def production_view(record: dict) -> dict:
    return {k: record.get(k) for k in _PRODUCTION_KEYS}


def carried_out(rec: dict) -> bool:
    """The turn carried a request out (an action or an answer, nothing broken)."""
    return rec.get("reply_type") in SERVED and rec.get("status") not in BROKEN_STATUS and not rec.get("errors")


def disowned(rec: dict) -> bool:
    """The user disowned the turn's reply: a barge-in, a "no" or a rephrase after it."""
    sig = rec.get("signals") or {}
    return bool(sig.get("barge_in") or sig.get("next_negative_feedback") or sig.get("next_is_rephrase"))


def session_requests(records: list[dict]) -> list[Request]:
    """The requests of one session's trace, in order."""
    start = next((r for r in records if r.get("event") == "session_start"), {})
    user = str(((start.get("meta") or {}).get("user") or {}).get("id") or "user")
    ends = sorted((production_view(r) for r in records if r.get("event") == "turn_end"), key=lambda r: r["turn"])
    out: list[Request] = []
    group: list[dict] = []

    def close():
        if group:
            last = group[-1]
            ok = carried_out(last) and not disowned(last)
            out.append(
                Request(
                    last["session"],
                    user,
                    group[0]["turn"],
                    group[0]["transcript"],
                    float(group[0].get("start_s") or 0.0),
                    ok,
                    tuple(group),
                )
            )

    for rec in ends:
        if not (rec.get("transcript") or "").strip():
            continue  # the assistant did not wake: production never sees it
        answering = bool(group) and group[-1].get("reply_type") in QUESTIONS
        if not answering:
            close()
            group = []
        group.append(rec)
    close()
    return out


def read_requests(paths: Iterable[str | Path]) -> list[list[Request]]:
    """Requests per session, from trace files or folders."""
    return [reqs for f in trace_files(paths) if (reqs := session_requests(read_records(f)))]


def chains(
    sessions: list[list[Request]], similar: Callable[[str, str], float] | None = None, window_s: float = WINDOW_S
) -> list[list[Request]]:
    """Rephrase chains: consecutive requests of one session, each after a failure of the one
    before and restating it; every request is in exactly one chain (most are one long).

    A request restates the one before when they share words, when they mean alike (MiniLM), or
    when the NLU read both as the same intent: "lock the deadbolt" (read as LockDoor, the device
    not found) and "er please lock the front door" share too few words for either measure."""
    out = []
    for reqs in sessions:
        chain: list[Request] = []
        for req in reqs:
            if chain:
                prev = chain[-1]
                restates = (
                    jaccard(prev.text, req.text) >= RESTATE_JACCARD
                    or (prev.read_as is not None and prev.read_as == req.read_as)
                    or (similar is not None and similar(prev.text, req.text) >= RESTATE_COSINE)
                )
                if prev.succeeded or req.start_s - prev.start_s > window_s or not restates:
                    out.append(chain)
                    chain = []
            chain.append(req)
        if chain:
            out.append(chain)
    return out


@dataclass(frozen=True)
class Rule:
    source: str
    target: str
    probability: float  # P(the user is served saying target | they said source)
    own: float  # P(source works as said)
    support: int  # chains from source that ended with target
    seen: int  # chains through source

    def to_json(self) -> dict:
        return {
            "from": self.source,
            "to": self.target,
            "probability": round(self.probability, 4),
            "own": round(self.own, 4),
            "support": self.support,
            "seen": self.seen,
        }


def markov_rewrites(all_chains: list[list[Request]]) -> list[Rule]:
    """The best rewrite of each utterance that failed at least once (see the module docstring)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys: dict[str, int] = {}
    surface: dict[str, Counter] = defaultdict(Counter)  # key → how it was heard (the rewrite says one)
    trans: Counter = Counter()  # (i, j) transient → transient
    wins: Counter = Counter()  # i → its own success
    gave_up: Counter = Counter()  # i → failure
    seen: Counter = Counter()
    ended: dict[int, Counter] = defaultdict(Counter)  # i → chain-final successful utterance j → count
    for chain in all_chains:
        ids = []
        for req in chain:
            i = keys.setdefault(req.key, len(keys))
            surface[req.key][req.text.lower()] += 1
            ids.append(i)
        for a, b in zip(ids, ids[1:]):
            trans[(a, b)] += 1
        last = chain[-1]
        (wins if last.succeeded else gave_up)[ids[-1]] += 1
        for pos, i in enumerate(ids):
            seen[i] += 1
            if last.succeeded and pos < len(ids) - 1:
                ended[i][ids[-1]] += 1
    n = len(keys)
    if not n:
        return []
    out_total = Counter()
    for (a, _b), c in trans.items():
        out_total[a] += c
    for i, c in wins.items():
        out_total[i] += c
    for i, c in gave_up.items():
        out_total[i] += c
    names = [None] * n
    for k, i in keys.items():
        names[i] = k
    rows, cols = zip(*trans) if trans else ((), ())
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _count, comp = connected_components(graph, directed=False)
    members: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(comp):
        members[c].append(i)
    rules = []
    for idx in members.values():
        fails = [i for i in idx if gave_up[i] or any((i, j) in trans for j in idx)]
        if not fails or len(idx) < 2:
            continue
        local = {g: k for k, g in enumerate(idx)}
        m = len(idx)
        q = np.zeros((m, m))
        r = np.zeros((m, m + 1))  # column k: succeeded as idx[k]; column m: gave up
        for g in idx:
            tot = out_total[g]
            if not tot:
                continue
            a = local[g]
            for h in idx:
                c = trans.get((g, h), 0)
                if c:
                    q[a, local[h]] = c / tot
            r[a, a] = wins[g] / tot
            r[a, m] = gave_up[g] / tot
        try:
            b = np.linalg.solve(np.eye(m) - q, r)
        except np.linalg.LinAlgError:
            b = np.linalg.lstsq(np.eye(m) - q, r, rcond=None)[0]
        for g in fails:
            a = local[g]
            own = float(b[a, a])
            probs = b[a, :m].copy()
            probs[a] = -1.0
            best = int(np.argmax(probs))
            p = float(probs[best])
            if p <= own or p <= 0.0:
                continue
            target = idx[best]
            rules.append(
                Rule(names[g], surface[names[target]].most_common(1)[0][0], p, own, int(ended[g][target]), int(seen[g]))
            )
    rules.sort(key=lambda r: (-r.probability, -r.support, r.source))
    return rules


def minilm_similarity() -> Callable[[str, str], float]:
    """Cosine of the NLU's MiniLM sentence embeddings, cached per text."""
    from functools import lru_cache

    from stages.nlu.pretrained import sentence_embeddings

    @lru_cache(maxsize=65536)
    def vec(text: str) -> np.ndarray:
        return sentence_embeddings([text])[0]

    return lambda a, b: float(vec(a) @ vec(b))


def learn_table(
    paths: Iterable[str | Path],
    out: str | Path,
    threshold: float = 0.5,
    min_support: int = 1,
    similar: Callable[[str, str], float] | None = None,
) -> dict:
    """``assistant learn rewrites``: write the rewrite table; returns a summary."""
    started = time.perf_counter()
    sessions = read_requests(paths)
    found = chains(sessions, similar)
    rules = markov_rewrites(found)
    applied = [r for r in rules if r.probability >= threshold and r.support >= min_support]
    said: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for reqs in sessions:
        for req in reqs:
            said[plain_key(req.text)][0 if req.succeeded else 1] += 1
    doc = {
        "format": TABLE_FORMAT,
        "threshold": threshold,
        "min_support": min_support,
        "sessions": len(sessions),
        "requests": sum(map(len, sessions)),
        "chains": sum(len(c) > 1 for c in found),
        "rewrites": [r.to_json() for r in rules],
        # how each request (without fillers) fared as said: a near match is not rewritten
        # when what the user said usually works
        "said": {k: v for k, v in sorted(said.items())},
        "personal": personal_rephrases(found),
        "preferences": entity_preferences(sessions),
    }
    write_json_atomic(Path(out), doc)
    return {
        "out": str(out),
        "sessions": doc["sessions"],
        "requests": doc["requests"],
        "rephrase_chains": doc["chains"],
        "rewrites": len(rules),
        "applied_at_threshold": len(applied),
        "personal_rephrases": sum(map(len, doc["personal"].values())),
        "entity_preferences": sum(len(ids) for kinds in doc["preferences"].values() for ids in kinds.values()),
        "learn_s": round(time.perf_counter() - started, 2),
    }


def personal_rephrases(found: list[list[Request]]) -> dict[str, list[dict]]:
    """Each user's own rephrases that worked: every failed request of a chain that ended in
    success → the request that succeeded, per user, with how often (the personal layer of the
    table, assistant/rewriting.py). A rephrase that only adds or drops fillers is left out."""
    seen: dict[str, Counter] = defaultdict(Counter)
    for chain in found:
        last = chain[-1]
        if len(chain) < 2 or not last.succeeded:
            continue
        for req in chain[:-1]:
            if plain_key(req.text) != plain_key(last.text):
                seen[req.user][(req.key, last.text)] += 1
    return {
        user: [{"from": src, "to": dst, "support": n} for (src, dst), n in sorted(pairs.items())]
        for user, pairs in sorted(seen.items())
    }


# entity methods that are not the user's choice: a slot left unsaid or carried over
UNCHOSEN = ("default", "context", "carried")


def entity_preferences(sessions: list[list[Request]]) -> dict[str, dict[str, dict[str, int]]]:
    """Each user's choices among entities that share a name (user → type → id → how often):
    in every request that succeeded, an entity the resolver picked from the user's words among
    several candidates, or the one the user picked when asked "Did you mean …?". The resolver
    ranks with them as with any history, so a user who always means Wilkerson, California
    gets California (assistant/rewriting.py)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for reqs in sessions:
        for req in reqs:
            if not req.succeeded:
                continue
            asked = {
                (clar or {}).get("slot")
                for turn in req.turns[:-1]
                for clar in [
                    (((turn.get("stages") or {}).get("resolve") or {}).get("output") or {}).get("clarification")
                ]
            }
            served = ((req.served.get("stages") or {}).get("resolve") or {}).get("output") or {}
            for e in served.get("entities") or ():
                if not e.get("id") or not e.get("type"):
                    continue
                chose = e.get("method") not in UNCHOSEN and len(e.get("candidates") or ()) >= 2
                if chose or e.get("slot") in asked:
                    counts[req.user][(str(e["type"]), str(e["id"]))] += 1
    out: dict[str, dict[str, dict[str, int]]] = {}
    for user, chosen in sorted(counts.items()):
        for (kind, eid), n in sorted(chosen.items()):
            out.setdefault(user, {}).setdefault(kind, {})[eid] = n
    return out


# the retrieval index ---------------------------------------------------------------------


def learn_index(
    paths: Iterable[str | Path],
    out: str | Path,
    options: RetrievalOptions | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> dict:
    """``assistant learn index``: successful requests, as heard and carried out, embedded;
    a global row per utterance (with how many users it worked for) and a row per user."""
    started = time.perf_counter()
    options = options or RetrievalOptions()
    sessions = read_requests(paths)
    by_user: dict[tuple[str, str], Counter] = defaultdict(Counter)
    users_of: dict[str, set] = defaultdict(set)
    for reqs in sessions:
        for req in reqs:
            rewritten = bool(req.served.get("rewrite")) and req.served["rewrite"].get("text") != req.text
            if not req.succeeded or rewritten:
                continue  # a success of a rewrite says the rewrite works, not how the user spoke
            by_user[(req.user, req.key)][req.text.lower()] += 1
            users_of[req.key].add(req.user)
    glob: dict[str, Counter] = defaultdict(Counter)
    for (_user, key), surf in by_user.items():
        glob[key].update(surf)
    texts, users, counts, n_users = [], [], [], []
    for key, surf in sorted(glob.items()):
        texts.append(surf.most_common(1)[0][0])
        users.append("")
        counts.append(sum(surf.values()))
        n_users.append(len(users_of[key]))
    for (user, _key), surf in sorted(by_user.items()):
        texts.append(surf.most_common(1)[0][0])
        users.append(user)
        counts.append(sum(surf.values()))
        n_users.append(1)
    if embed is None:
        from stages.nlu.pretrained import sentence_embeddings

        def embed(ts: list[str]) -> np.ndarray:
            return sentence_embeddings(ts, exact=True)  # one at a time, as the step embeds at run time

    unique = sorted(set(texts))
    vecs = embed(unique) if unique else np.zeros((0, 384), np.float32)
    row = {t: i for i, t in enumerate(unique)}
    emb = np.stack([vecs[row[t]] for t in texts]) if texts else np.zeros((0, 384), np.float32)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp.npz")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            tmp,
            format=np.array(INDEX_FORMAT),
            texts=np.array(texts, dtype=str),
            users=np.array(users, dtype=str),
            counts=np.array(counts, np.int64),
            n_users=np.array(n_users, np.int64),
            embeddings=emb.astype(np.float32),
            options=np.array(json.dumps({**options.__dict__})),
        )
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(out, f"cannot write ({err.strerror or err})") from None
    return {
        "out": str(out),
        "sessions": len(sessions),
        "successful_utterances": len(glob),
        "personal_rows": len(by_user),
        "users": len({u for u, _k in by_user}),
        "learn_s": round(time.perf_counter() - started, 2),
    }


def check_threshold(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise UserError(f"--threshold must be within 0..1, got {value}")
    return value

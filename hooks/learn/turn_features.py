"""Features for defect detection and failure-point labeling, from traces alone (never gold).

Per turn: each stage's confidence signals, what the assistant did (status, reply type, errors),
how well the words fit the decisions (the transcript against the chosen intent's examples and
the domain's catalogs, hooks/learn/lexicon.py), the user's implicit signals, the turns around it
(hooks/learn/context.py), and MiniLM embeddings of the transcript and the reply. Only turns a
production trace would hold take part: a wake word the simulation says was not heard leaves no
turn. Sessions keep their turn order so that models can read the dialogue around a turn.
No feature reads ``gold``, ``labels``, ``source`` or what the simulated user really said; the
oracle's label (``y_fp``) and what the user meant (``TurnWords.meant_*``) are carried beside the
features as training targets only.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from core.domain import OOD_INTENT as OOD_ACT
from core.errors import InputError
from core.model_files import OWW_WORDS
from core.pipeline import FAILURE_POINTS
from hooks.learn.context import PAIR_KEYS, Reading, pair
from hooks.learn.lexicon import Lexicon, fit_features, untagged_types
from hooks.signals import REPHRASE_COSINE, REPHRASE_JACCARD
from hooks.trace_reader import read_records, trace_files

log = logging.getLogger(__name__)

SPOKEN_WAKE_WORDS = tuple(w.replace("_", " ") for w in OWW_WORDS)  # any detector's word, said
CLASSES = FAILURE_POINTS  # class indices of the labelers' outputs
STATUSES = (
    "ok",
    "unchanged",
    "not_found",
    "empty",
    "set_point",
    "failed",
    "error",
    "elicit",
    "confirm",
    "clarify",
    "cancelled",
    "unsupported",
)
REPLY_TYPES = ("action", "answer", "elicit", "confirm", "clarify", "apology", "out_of_domain")
STAGE_NAMES = ("wake", "asr", "nlu", "resolve", "respond", "tts")
METHODS = ("exact", "fuzzy", "phonetic", "embedding", "context", "carried", "default", "open", "none")
EMBED_DIM = 384
EXAMPLES_PER_INTENT = 48  # generated from the spec: the second opinion on the NLU's intent


@dataclass(frozen=True)
class SessionTurns:
    session: str
    records: tuple[dict, ...] = ()


def load_sessions(paths) -> list[SessionTurns]:
    """turn_end records grouped by session, in turn order (files that are not traces are named)."""
    by: dict[str, list[dict]] = {}
    for path in trace_files(paths):
        for n, r in enumerate(read_records(path), 1):
            if r.get("event") != "turn_end":
                continue
            if (
                not isinstance(r.get("session"), str)
                or not isinstance(r.get("turn"), int)
                or not all(isinstance(r.get(k) or {}, dict) for k in ("stages", "labels", "signals", "ms"))
            ):
                raise InputError(
                    path, "not a trace turn_end record (session, turn, stages, labels)", field=f"record {n}"
                )
            by.setdefault(r["session"], []).append(r)
    return [SessionTurns(k, tuple(sorted(by[k], key=lambda r: r["turn"]))) for k in sorted(by)]


def _get(d: dict | None, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d if d is not None else default


def _num(x, default: float = 0.0) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return v if np.isfinite(v) else default


def turn_vector(
    r: dict, intents: list[str], sims: dict[str, float] | None, lexicon: Lexicon | None = None
) -> dict[str, float]:
    """The tabular features of one turn (names → values)."""
    st = r.get("stages") or {}
    f: dict[str, float] = {}
    wake = _get(st, "wake", "output") or {}
    f["wake_ran"] = float("wake" in (r.get("ms") or {}))
    f["woke"] = float(wake.get("endpoint") != "no_wake") if wake else 1.0
    f["wake_word"] = float(r.get("wake") is not None)
    f["wake_score"] = _num(_get(r, "wake", "score"), 0.0)
    f["utterance_s"] = _num(_get(st, "wake", "signals", "utterance_s"), 0.0)
    asr = _get(st, "asr", "signals") or {}
    text = (r.get("transcript") or "").strip()
    f["asr_ran"] = float("asr" in st)
    f["transcript_empty"] = float(not text)
    f["avg_logprob"] = _num(asr.get("avg_logprob"), 0.0)
    f["no_speech_prob"] = _num(asr.get("no_speech_prob"), 0.0)
    f["asr_confidence"] = _num(asr.get("confidence"), 1.0)
    f["compression_ratio"] = _num(asr.get("compression_ratio"), 1.0)
    f["min_word_prob"] = _num(asr.get("min_word_prob"), 1.0)
    f["mean_word_prob"] = _num(asr.get("mean_word_prob"), 1.0)
    f["n_words"] = _num(asr.get("words"), len(text.split()))
    words = _get(st, "asr", "output", "words", default=[]) or []
    probs = [_num(w.get("probability"), 1.0) for w in words if isinstance(w, dict)]
    f["low_prob_words"] = float(sum(p < 0.5 for p in probs))
    f["low_prob_share"] = f["low_prob_words"] / len(probs) if probs else 0.0
    f["says_wake_word"] = float(text.lower().startswith(SPOKEN_WAKE_WORDS))
    nlu = _get(st, "nlu", "signals") or {}
    f["nlu_ran"] = float("nlu" in st)
    f["intent_confidence"] = _num(nlu.get("intent_confidence"), 0.0)
    f["intent_margin"] = _num(nlu.get("intent_margin"), 0.0)
    f["coverage"] = _num(nlu.get("coverage"), 0.0)
    f["nlu_ood"] = float(bool(nlu.get("out_of_domain")))
    f["n_slots"] = _num(nlu.get("slots"), 0.0)
    nbest = _get(st, "nlu", "output", "nbest", default=[]) or []
    f["nbest2_score"] = _num(nbest[1].get("score"), 0.0) if len(nbest) > 1 else 0.0
    nlu_intent = _get(st, "nlu", "output", "intent")
    f["nlu_act_inform"] = float(nlu_intent == "Inform")
    f["nlu_act_yes_no"] = float(nlu_intent in ("Affirm", "Deny"))
    f["dialogue_changed_intent"] = float(
        nlu_intent is not None
        and r.get("intent") not in (None, nlu_intent)
        and nlu_intent not in ("Inform", "Affirm", "Deny")
    )
    if lexicon is not None:
        f.update(
            fit_features(
                lexicon,
                text,
                r.get("intent"),
                _get(st, "nlu", "output") or {},
                words,
                _get(st, "respond", "output", "expects"),
            )
        )
    res = _get(st, "resolve", "signals") or {}
    f["min_entity_score"] = _num(res.get("min_entity_score"), 1.0)
    f["unresolved"] = _num(res.get("unresolved"), 0.0)
    f["candidate_gap"] = _num(res.get("candidate_gap"), 1.0)
    f["clarification"] = float(bool(res.get("clarification")))
    f["carried"] = _num(res.get("carried"), 0.0)
    entities = _get(st, "resolve", "output", "entities", default=[]) or []
    f["n_entities"] = float(len(entities))
    methods = [str(e.get("method") or "none").split("+")[0] for e in entities]
    for m in METHODS:
        f[f"method_{m}"] = float(methods.count(m))
    f["entity_context_decided"] = float(any("+context" in str(e.get("method")) for e in entities))
    f["entity_name_match"] = _entity_name_match(entities)
    f["max_candidates"] = float(max((len(e.get("candidates") or []) for e in entities), default=0))
    f["tied_candidates"] = float(
        sum(
            1
            for e in entities
            if len(e.get("candidates") or []) > 1
            and _num(e["candidates"][0].get("score")) - _num(e["candidates"][1].get("score")) < 1e-6
        )
    )
    status = r.get("status")
    for s in STATUSES:
        f[f"status_{s}"] = float(status == s)
    f["no_outcome"] = float(status is None)
    for t in REPLY_TYPES:
        f[f"reply_{t}"] = float(r.get("reply_type") == t)
    errors = r.get("errors") or []
    f["stage_error"] = float(bool(errors))
    for s in STAGE_NAMES:
        f[f"error_{s}"] = float(any(e.get("stage") == s for e in errors))
    # The trace's own-turn signals. Those that look at the neighboring turns are recomputed in
    # build() over the turns a production trace would hold (a simulated trace also keeps
    # utterances nobody heard, and "time to the next turn" would count them).
    sig = r.get("signals") or {}
    f["sig_barge_in"] = float(bool(sig.get("barge_in")))
    f["sig_negative_feedback"] = float(bool(sig.get("negative_feedback")))
    intent = r.get("intent")
    for name in intents:
        f[f"intent_{name}"] = float(intent == name)
    f["intent_none"] = float(intent is None)
    # Does the text read like the chosen intent's examples? (a second opinion from the spec)
    for k in (
        "text_best_fit",
        "intent_text_fit",
        "intent_text_gap",
        "intent_text_rank",
        "text_best_is_chosen",
        "runner_up_text_fit",
        "runner_up_text_gain",
        "runner_up_is_text_best",
    ):
        f[k] = 0.0
    if sims and text:
        best = max(sims, key=sims.get)
        f["text_best_fit"] = sims[best]
        if intent in sims:
            own = sims[intent]
            f["intent_text_fit"] = own
            f["intent_text_gap"] = own - max(v for k, v in sims.items() if k != intent)
            f["intent_text_rank"] = float(sorted(sims.values(), reverse=True).index(own))
            f["text_best_is_chosen"] = float(best == intent)
        second = nbest[1].get("intent") if len(nbest) > 1 else None
        if second in sims and nlu_intent == intent:
            # the NLU's runner-up reads more like the words than its choice
            f["runner_up_text_fit"] = sims[second]
            f["runner_up_text_gain"] = sims[second] - sims.get(intent, 0.0)
            f["runner_up_is_text_best"] = float(best == second)
    return f


def _entity_name_match(entities: list[dict]) -> float:
    """How well the words heard match the names of the entities chosen (lowest over slots)."""
    from rapidfuzz import fuzz

    scores = []
    for e in entities:
        words, name = str(e.get("text") or ""), str(e.get("name") or "")
        if e.get("method") in ("default", "context", "carried") or not words or not name:
            continue
        scores.append(fuzz.token_set_ratio(words.lower(), name.lower()) / 100.0)
    return min(scores) if scores else 1.0


NEIGHBOR_KEYS = (
    "asr_confidence",
    "mean_word_prob",
    "min_word_prob",
    "intent_confidence",
    "coverage",
    "status_ok",
    "status_failed",
    "reply_apology",
    "reply_out_of_domain",
    "reply_elicit",
    "reply_clarify",
    "reply_confirm",
    "reply_action",
    "reply_answer",
    "nlu_ood",
    "wake_word",
    "wake_score",
    "transcript_empty",
    "intent_text_fit",
    "sig_negative_feedback",
    "nlu_act_inform",
    "nlu_act_yes_no",
    "lex_untagged_accepted",
    "n_slots",
)


def observable(r: dict) -> bool:
    """Whether a production trace could hold this turn: a wake word that was not heard leaves
    no turn at all (simulated traces keep such turns for the oracle's accounting)."""
    ran = "wake" in (r.get("ms") or {})
    utt = _get(r, "stages", "wake", "output") or {}
    return not (ran and utt.get("endpoint") == "no_wake")


@dataclass(frozen=True)
class TurnWords:
    """What the transcript reader (hooks/learn/transcript_classifier.py) takes of a turn: the words, what the
    NLU made of them, and, as its training target only, what the user meant."""

    text: str = ""
    nlu_act: str | None = None  # the NLU's intent or dialogue act; OOD_ACT: out of domain
    runner_up: str | None = None
    tagged: frozenset[str] = frozenset()  # slot types the NLU filled
    accepted: frozenset[str] = frozenset()  # slot types the turn's intent takes
    meant_act: str | None = None  # target: the act the simulated user meant (None: unknown)
    meant_kinds: frozenset[str] = frozenset()  # target: the slot types the user said


@dataclass(frozen=True)
class FeatureSet:
    names: list[str]
    X: np.ndarray  # (turns, features), neighbor features included
    text: np.ndarray  # (turns, 384) transcript embeddings
    reply: np.ndarray  # (turns, 384) reply embeddings
    y_fp: np.ndarray  # class index, -1 when unlabeled
    sessions: list[tuple[int, int]]  # [start, end) row ranges per session
    keys: list[tuple[str, int]]  # (session, turn) per row
    words: tuple[TurnWords, ...] = ()  # per row


def with_columns(fs: FeatureSet, names, values: np.ndarray) -> FeatureSet:
    """``fs`` with more feature columns at its end (the scores of models fitted on the features)."""
    values = np.asarray(values, np.float32).reshape(len(fs.X), -1)
    return replace(fs, X=np.hstack([fs.X, values]), names=[*fs.names, *names])


def session_folds(fs: FeatureSet, folds: int) -> np.ndarray:
    """The fold of each row for out-of-fold scoring: whole sessions, dealt round-robin (a model
    must not read a turn's neighbors while scoring it)."""
    fold = np.zeros(len(fs.X), np.int64)
    for k, (a, b) in enumerate(fs.sessions):
        fold[a:b] = k % folds
    return fold


class Embedder:
    """MiniLM embeddings with a text cache (simulated sessions repeat many sentences)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        if not self.enabled:
            return np.zeros((len(texts), EMBED_DIM), np.float32)
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            from core.embeddings import embed

            for i in range(0, len(todo), 256):
                chunk = todo[i : i + 256]
                for t, v in zip(chunk, embed(chunk)):
                    self._cache[t] = v
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, EMBED_DIM), np.float32)


@lru_cache(maxsize=4)
def intent_examples(domain_name: str, enabled: bool = True) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(intents, embeddings of generated examples, the intent index of each), from the domain spec."""
    if not enabled:
        return (), np.zeros((0, EMBED_DIM), np.float32), np.zeros(0, np.int64)
    from core.domain import load_domain
    from core.utterances import UtteranceGenerator

    domain = load_domain(domain_name)
    examples = UtteranceGenerator(domain).examples(random.Random(0), per_intent=EXAMPLES_PER_INTENT, include_ood=False)
    names = tuple(n for n in domain.intents if any(e.intent == n for e in examples))
    texts = sorted({(e.text.lower(), e.intent) for e in examples if e.intent in names})
    vecs = Embedder()([t for t, _i in texts])
    return names, vecs, np.asarray([names.index(i) for _t, i in texts], np.int64)


def intent_similarities(text_vecs: np.ndarray, domain: str, enabled: bool = True) -> list[dict[str, float]]:
    """Per turn: intent → cosine similarity of the transcript to that intent's nearest example."""
    names, vecs, owner = intent_examples(domain, enabled)
    if not names or not len(text_vecs):
        return [{} for _ in range(len(text_vecs))]
    sim = text_vecs @ vecs.T
    best = np.full((len(text_vecs), len(names)), -1.0, np.float32)
    for k in range(len(names)):
        best[:, k] = sim[:, owner == k].max(axis=1)
    return [dict(zip(names, map(float, row))) for row in best]


def build(
    sessions: list[SessionTurns],
    intents: list[str],
    domain: str = "home",
    embeddings: bool = True,
    embedder: Embedder | None = None,
) -> FeatureSet:
    """Feature rows for the observable turns of ``sessions``, session by session in turn order."""
    embedder = embedder or Embedder(embeddings)
    visible = [[r for r in s.records if observable(r)] for s in sessions]
    records = [r for rs in visible for r in rs]
    texts = [(r.get("transcript") or "").strip().lower() for r in records]
    replies = [(r.get("reply") or "").strip().lower() for r in records]
    text_vecs = embedder(texts)
    reply_vecs = embedder(replies)
    sims = intent_similarities(text_vecs, domain, embeddings)
    lexicon = _lexicon(domain)
    base = [turn_vector(r, intents, sims[i], lexicon) for i, r in enumerate(records)]
    names = list(base[0]) if base else []
    readings = [
        Reading(
            text_vecs[k] if embeddings else None,
            _runner_up(r),
            untagged_types(lexicon, r.get("transcript") or "", _get(r, "stages", "nlu", "output") or {}),
        )
        for k, r in enumerate(records)
    ]
    none = Reading()
    rows, spans, keys, y = [], [], [], []
    i = 0
    for s, rs in zip(sessions, visible):
        start = i
        n = len(rs)
        chain = 0
        for j, r in enumerate(rs):
            own = base[i]
            row = [own[k] for k in names]
            for nb in (base[i - 1] if j > 0 else None, base[i + 1] if j + 1 < n else None):
                row += [nb[k] if nb else 0.0 for k in NEIGHBOR_KEYS]
            prev = pair(rs[j - 1], r, readings[i - 1], readings[i]) if j > 0 else pair(r, None, none, None)
            nxt = pair(r, rs[j + 1], readings[i], readings[i + 1]) if j + 1 < n else pair(r, None, none, None)
            nxt2 = pair(r, rs[j + 2], readings[i], readings[i + 2]) if j + 2 < n else pair(r, None, none, None)
            row += (
                [prev[k] for k in PAIR_KEYS]
                + [nxt[k] for k in PAIR_KEYS]
                + [nxt2[k] for k in ("sim", "same_intent", "same_outcome", "missing")]
            )
            chain = chain + 1 if j > 0 and _restates(prev) else 0
            served = r.get("reply_type") in ("action", "answer") and not r.get("errors")
            row += [
                j / max(1, n - 1),
                float(j == 0),
                float(j == n - 1),
                float(n),
                float(chain),
                float(j == n - 1 and not served),
            ]
            rows.append(row)
            keys.append((s.session, r["turn"]))
            label = (r.get("labels") or {}).get("oracle") or {}
            y.append(CLASSES.index(label["failure_point"]) if label.get("failure_point") in CLASSES else -1)
            i += 1
        if i > start:
            spans.append((start, i))
    full_names = (
        names
        + [f"{tag}_{k}" for tag in ("prev", "next") for k in NEIGHBOR_KEYS]
        + [f"pair_prev_{k}" for k in PAIR_KEYS]
        + [f"pair_next_{k}" for k in PAIR_KEYS]
        + [f"pair_next2_{k}" for k in ("sim", "same_intent", "same_outcome", "missing")]
        + ["position", "is_first", "is_last", "session_turns", "restatements", "abandoned"]
    )
    X = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(full_names))
    return FeatureSet(
        full_names,
        X,
        text_vecs.astype(np.float32),
        reply_vecs.astype(np.float32),
        np.asarray(y, dtype=np.int64),
        spans,
        keys,
        tuple(turn_words(r, lexicon) for r in records),
    )


def turn_words(r: dict, lexicon: Lexicon) -> TurnWords:
    nlu = _get(r, "stages", "nlu", "output") or {}
    act = OOD_ACT if nlu.get("out_of_domain") else nlu.get("intent")
    gold = r.get("gold") if isinstance(r.get("gold"), dict) else {}
    meant = None
    if gold and gold.get("wake") is not False:
        meant = OOD_ACT if gold.get("out_of_domain") or not gold.get("act") else gold.get("act")
    kinds = frozenset(
        lexicon.slot_types.get(str(s[0]), str(s[0]))
        for s in gold.get("spans") or ()
        if isinstance(s, (list, tuple)) and s
    )
    return TurnWords(
        text=(r.get("transcript") or "").strip().lower(),
        nlu_act=act,
        runner_up=_runner_up(r),
        tagged=frozenset(str(s.get("type")) for s in nlu.get("slots") or () if isinstance(s, dict)),
        accepted=frozenset(lexicon.intent_types.get(r.get("intent") or "", ())),
        meant_act=meant if isinstance(meant, str) else None,
        meant_kinds=kinds,
    )


def _runner_up(r: dict) -> str | None:
    nbest = _get(r, "stages", "nlu", "output", "nbest", default=[]) or []
    return nbest[1].get("intent") if len(nbest) > 1 and isinstance(nbest[1], dict) else None


def _restates(p: dict[str, float]) -> bool:
    """A turn that says the previous one again (hooks/signals.py's rephrase thresholds)."""
    return p["sim"] >= REPHRASE_COSINE or p["jaccard"] >= REPHRASE_JACCARD


@lru_cache(maxsize=4)
def _lexicon(domain: str) -> Lexicon:
    return Lexicon(domain)

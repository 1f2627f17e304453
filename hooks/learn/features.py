"""Features for defect detection and failure-point labeling, from traces alone (never gold).

Per turn: each stage's confidence signals, what the assistant did (status, reply type, errors),
how well the words fit the decisions (the transcript against the chosen intent's examples, the
heard words against the resolved entity's name), the user's implicit signals, and MiniLM
embeddings of the transcript and the reply. Sessions keep their turn order so that models can
read the dialogue around a turn.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from hooks.traces import turn_ends

log = logging.getLogger(__name__)

CLASSES = ("wake", "asr", "nlu", "resolve", "result", "correct")
STATUSES = ("ok", "unchanged", "not_found", "empty", "set_point", "failed", "error", "elicit", "confirm",
            "clarify", "cancelled", "unsupported")
REPLY_TYPES = ("action", "answer", "elicit", "confirm", "clarify", "apology", "out_of_domain")
STAGE_NAMES = ("wake", "asr", "nlu", "resolve", "respond", "tts")
METHODS = ("exact", "fuzzy", "phonetic", "embedding", "context", "carried", "default", "open", "none")
EMBED_DIM = 384


@dataclass
class SessionTurns:
    session: str
    records: list[dict] = field(default_factory=list)


def load_sessions(paths) -> list[SessionTurns]:
    """turn_end records grouped by session, in turn order."""
    by: dict[str, SessionTurns] = {}
    for r in turn_ends(paths):
        by.setdefault(r["session"], SessionTurns(r["session"])).records.append(r)
    for s in by.values():
        s.records.sort(key=lambda r: r["turn"])
    return [by[k] for k in sorted(by)]


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


class Gazetteer:
    """Which of the domain's values a transcript mentions (catalog phrases, builtin values)."""

    def __init__(self, domain_name: str):
        import re

        from sim.domain import BUILTIN_TYPES, load_domain

        domain = load_domain(domain_name)
        self.builtins = [t for t in BUILTIN_TYPES if t in set(domain.slot_types.values())]
        phrases = {}
        for catalog in domain.catalogs.values():
            for v in catalog.values:
                for p in v.phrases:
                    if len(p) > 2:
                        phrases[p] = catalog.type
        self._pattern = re.compile(r"\b(" + "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
                                   + r")\b") if phrases else None
        self._types = phrases

    def __call__(self, text: str) -> tuple[int, int]:
        """(catalog mentions, builtin value mentions)."""
        from stages.normalize import normalize

        text = text.lower()
        catalog = len(self._pattern.findall(text)) if self._pattern else 0
        builtin = sum(normalize(t, text) is not None for t in self.builtins if t not in ("number", "ordinal", "date"))
        return catalog, builtin


def turn_vector(r: dict, intents: list[str], prototypes: dict[str, np.ndarray] | None,
                text_vec: np.ndarray | None, gazetteer: Gazetteer | None = None) -> dict[str, float]:
    """The tabular features of one turn (names → values)."""
    st = r.get("stages") or {}
    f: dict[str, float] = {}
    wake = _get(st, "wake", "output") or {}
    f["wake_ran"] = float("wake" in (r.get("ms") or {}))
    f["woke"] = float(wake.get("endpoint") != "no_wake") if wake else 1.0
    f["wake_score"] = _num(_get(r, "wake", "score"), 0.0)
    f["utterance_s"] = _num(_get(st, "wake", "signals", "utterance_s"), 0.0)
    asr = _get(st, "asr", "signals") or {}
    f["asr_ran"] = float("asr" in st)
    f["transcript_empty"] = float(not (r.get("transcript") or "").strip())
    f["avg_logprob"] = _num(asr.get("avg_logprob"), 0.0)
    f["no_speech_prob"] = _num(asr.get("no_speech_prob"), 0.0)
    f["asr_confidence"] = _num(asr.get("confidence"), 1.0)
    f["compression_ratio"] = _num(asr.get("compression_ratio"), 1.0)
    f["min_word_prob"] = _num(asr.get("min_word_prob"), 1.0)
    f["mean_word_prob"] = _num(asr.get("mean_word_prob"), 1.0)
    f["n_words"] = _num(asr.get("words"), len((r.get("transcript") or "").split()))
    nlu = _get(st, "nlu", "signals") or {}
    f["nlu_ran"] = float("nlu" in st)
    f["intent_confidence"] = _num(nlu.get("intent_confidence"), 0.0)
    f["intent_margin"] = _num(nlu.get("intent_margin"), 0.0)
    f["coverage"] = _num(nlu.get("coverage"), 0.0)
    f["nlu_ood"] = float(bool(nlu.get("out_of_domain")))
    f["n_slots"] = _num(nlu.get("slots"), 0.0)
    nbest = _get(st, "nlu", "output", "nbest", default=[]) or []
    f["nbest2_score"] = _num(nbest[1]["score"], 0.0) if len(nbest) > 1 else 0.0
    f["nlu_act_inform"] = float(_get(st, "nlu", "output", "intent") == "Inform")
    f["nlu_act_yes_no"] = float(_get(st, "nlu", "output", "intent") in ("Affirm", "Deny"))
    if gazetteer is not None:
        catalog, builtin = gazetteer(r.get("transcript") or "")
        f["mentions_catalog"] = float(catalog)
        f["mentions_builtin"] = float(builtin)
        f["slot_gap"] = float(catalog + builtin) - f["n_slots"]
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
    sig = r.get("signals") or {}
    for k in ("barge_in", "rephrase_of_previous", "next_is_rephrase", "negative_feedback",
              "next_negative_feedback", "abandoned"):
        f[f"sig_{k}"] = float(bool(sig.get(k)))
    f["sig_repeat_count"] = _num(sig.get("repeat_count"), 0.0)
    ttn = sig.get("time_to_next_turn_s")
    f["sig_time_to_next_missing"] = float(ttn is None)
    f["sig_time_to_next"] = float(np.clip(_num(ttn, 0.0), -10, 30))
    f["sig_lexical_overlap"] = _num(sig.get("lexical_overlap_previous"), 0.0)
    sim = sig.get("similarity_to_previous")
    f["sig_similarity"] = _num(sim, f["sig_lexical_overlap"])
    intent = r.get("intent")
    for name in intents:
        f[f"intent_{name}"] = float(intent == name)
    f["intent_none"] = float(intent is None)
    # Does the text read like the chosen intent's examples? (a second opinion from the spec)
    if prototypes and text_vec is not None and intent in prototypes:
        sims = {k: float(np.dot(text_vec, v)) for k, v in prototypes.items()}
        own = sims[intent]
        best_other = max(v for k, v in sims.items() if k != intent)
        f["intent_text_fit"] = own
        f["intent_text_gap"] = own - best_other
        f["intent_text_rank"] = float(sorted(sims.values(), reverse=True).index(own))
    else:
        f["intent_text_fit"] = f["intent_text_gap"] = 0.0
        f["intent_text_rank"] = 0.0
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


NEIGHBOR_KEYS = ("asr_confidence", "mean_word_prob", "min_word_prob", "intent_confidence", "coverage", "status_ok",
                 "status_failed", "reply_apology", "reply_out_of_domain", "reply_elicit", "reply_clarify", "nlu_ood",
                 "woke", "transcript_empty", "intent_text_fit", "sig_rephrase_of_previous", "sig_negative_feedback",
                 "nlu_act_inform", "nlu_act_yes_no", "slot_gap")


def observable(r: dict) -> bool:
    """Whether a production trace could hold this turn: a wake word that was not heard leaves
    no turn at all (simulated traces keep such turns for the oracle's accounting)."""
    ran = "wake" in (r.get("ms") or {})
    utt = _get(r, "stages", "wake", "output") or {}
    return not (ran and utt.get("endpoint") == "no_wake")


@dataclass
class FeatureSet:
    names: list[str]
    X: np.ndarray                  # (turns, features), neighbor features included
    text: np.ndarray               # (turns, 384) transcript embeddings
    reply: np.ndarray              # (turns, 384) reply embeddings
    y_fp: np.ndarray               # class index, -1 when unlabeled
    sessions: list[tuple[int, int]]    # [start, end) row ranges per session
    keys: list[tuple[str, int]]    # (session, turn) per row


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
            from assistant.embeddings import embed

            for i in range(0, len(todo), 256):
                chunk = todo[i: i + 256]
                for t, v in zip(chunk, embed(chunk)):
                    self._cache[t] = v
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, EMBED_DIM), np.float32)


@lru_cache(maxsize=4)
def intent_prototypes(domain_name: str, enabled: bool = True) -> dict[str, np.ndarray]:
    """Mean embedding of each intent's generated examples, from the domain spec."""
    if not enabled:
        return {}
    from sim.domain import load_domain
    from sim.utterances import UtteranceGenerator

    domain = load_domain(domain_name)
    examples = UtteranceGenerator(domain).examples(random.Random(0), per_intent=24, include_ood=False)
    emb = Embedder()
    out = {}
    for name in domain.intents:
        texts = [e.text for e in examples if e.intent == name]
        if texts:
            v = emb(texts).mean(axis=0)
            out[name] = v / (np.linalg.norm(v) or 1.0)
    return out


def build(sessions: list[SessionTurns], intents: list[str], domain: str = "home",
          embeddings: bool = True, embedder: Embedder | None = None) -> FeatureSet:
    embedder = embedder or Embedder(embeddings)
    records = [r for s in sessions for r in s.records]
    texts = [(r.get("transcript") or "").strip().lower() for r in records]
    replies = [(r.get("reply") or "").strip().lower() for r in records]
    text_vecs = embedder(texts)
    reply_vecs = embedder(replies)
    protos = intent_prototypes(domain, embeddings)
    gaz = Gazetteer(domain)
    base = [turn_vector(r, intents, protos, text_vecs[i] if embeddings else None, gaz) for i, r in enumerate(records)]
    names = list(base[0]) if base else []
    rows, spans, keys, y = [], [], [], []
    i = 0
    for s in sessions:
        start = i
        for j, r in enumerate(s.records):
            own = base[i]
            prev = base[i - 1] if j > 0 else None
            nxt = base[i + 1] if j + 1 < len(s.records) else None
            row = [own[n] for n in names]
            for tag, nb in (("prev", prev), ("next", nxt)):
                row += [nb[k] if nb else 0.0 for k in NEIGHBOR_KEYS] + [float(nb is None)]
            row += [j / max(1, len(s.records) - 1), float(j == 0), float(j == len(s.records) - 1)]
            # how close the words are to the turns around (a restatement, a correction)
            for k in (i - 1, i + 1):
                same = 0 <= k - start < len(s.records)
                row.append(float(np.dot(text_vecs[i], text_vecs[k])) if same and embeddings else 0.0)
            nxt_rec = s.records[j + 1] if j + 1 < len(s.records) else None
            row.append(float(bool(nxt_rec) and nxt_rec.get("intent") == r.get("intent") and r.get("intent") is not None))
            rows.append(row)
            keys.append((s.session, r["turn"]))
            label = (r.get("labels") or {}).get("oracle") or {}
            y.append(CLASSES.index(label["failure_point"])
                     if label.get("failure_point") in CLASSES and observable(r) else -1)
            i += 1
        spans.append((start, i))
    full_names = names + [f"{tag}_{k}" for tag in ("prev", "next") for k in (*NEIGHBOR_KEYS, "missing")] + \
        ["position", "is_first", "is_last", "text_sim_prev", "text_sim_next", "next_same_intent"]
    X = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(full_names))
    return FeatureSet(full_names, X, text_vecs.astype(np.float32), reply_vecs.astype(np.float32),
                      np.asarray(y, dtype=np.int64), spans, keys)

"""Train, apply and evaluate the labelers on trace folders."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from core.errors import InputError, UserError
from hooks.learn import turn_features as F
from hooks.learn.evaluation import evaluate
from hooks.learn.garbled import GarbledScorer, with_score
from hooks.learn.labelers import (
    KINDS,
    TRAINED,
    EnsembleLabeler,
    decision_weights,
    load_model,
    load_part,
    reweighted,
    save_model,
    selection_score,
)
from hooks.learn.transcript_classifier import NAMES as READER_NAMES
from hooks.learn.transcript_classifier import Reader, acts_for, slot_kinds
from hooks.trace_reader import read_records, trace_files

log = logging.getLogger(__name__)

VAL_SHARE = 0.15


def _intents(domain: str) -> list[str]:
    from core.domain import load_domain

    return sorted(load_domain(domain).intents)


def _split(sessions: list[F.SessionTurns]) -> tuple[list, list]:
    """A stable split by session id (not by position), so adding sessions never reshuffles."""
    train, val = [], []
    for s in sessions:
        h = int(hashlib.sha256(s.session.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < VAL_SHARE else train).append(s)
    return train, val


def train(
    paths,
    out: str | Path,
    val_paths=None,
    kind: str = "best",
    domain: str = "home",
    seed: int = 0,
    embeddings: bool = True,
) -> dict:
    """Train the labelers on oracle-labeled traces; write every one into ``out`` and keep (name in
    model.json) the one with the best validation score: mean of accuracy and macro F1. Both
    trained, their ensemble is a candidate too."""
    if kind not in ("best", *KINDS):
        raise UserError(f"--kind must be best, {', '.join(KINDS)}; got {kind!r}")
    if Path(out).exists() and not Path(out).is_dir():
        raise InputError(out, "exists and is not a folder (--out names the model folder to write)")
    started = time.perf_counter()
    sessions = _labeled(F.load_sessions(paths), paths)
    if val_paths:
        train_s, val_s = sessions, _labeled(F.load_sessions(val_paths), val_paths)
    else:
        train_s, val_s = _split(sessions)
        if not val_s or not train_s:
            train_s, val_s = sessions, []  # too few sessions to hold some out
    intents = _intents(domain)
    embedder = F.Embedder(embeddings)
    ftrain = F.build(train_s, intents, domain, embeddings, embedder)
    fval = F.build(val_s, intents, domain, embeddings, embedder) if val_s else None
    if fval is not None and not np.any(fval.y_fp >= 0):
        fval = None
    if not np.any(ftrain.y_fp >= 0):
        raise UserError("no labeled turns a production trace would hold (every wake word was missed)")
    reader = Reader(acts_for(intents), slot_kinds(domain), seed)
    garbled = GarbledScorer(seed)
    try:
        ftrain = F.with_columns(ftrain, READER_NAMES, reader.fit(ftrain))
        ftrain = with_score(ftrain, garbled.fit(ftrain))
    except ValueError as err:
        raise UserError(str(err)) from None
    if fval is not None:
        fval = F.with_columns(fval, READER_NAMES, reader.features(fval))
        fval = with_score(fval, garbled.score(fval))
    features_s = time.perf_counter() - started
    import torch

    # One thread: with two, training ran 10x slower whenever anything else used a core here
    # (5 epochs: 79 s vs 7.7 s); on an idle machine two threads gain far less than that.
    torch.set_num_threads(1)
    candidates, models = {}, {}
    for k in TRAINED if kind in ("best", "ensemble") else [kind]:
        t0 = time.perf_counter()
        model = KINDS[k](seed=seed).fit(ftrain, fval)
        fit_s = time.perf_counter() - t0
        scores = evaluate(fval.y_fp, *model.predict(fval)) if fval is not None else {}
        candidates[k] = {"train_s": round(fit_s, 1), "validation": scores}
        models[k] = model
        log.info("%s: validation fp accuracy %s (%.0f s)", k, scores.get("fp_accuracy"), fit_s)
    if set(TRAINED) <= set(models):
        t0 = time.perf_counter()
        models["ensemble"] = EnsembleLabeler.choose(models, fval)
        scores = evaluate(fval.y_fp, *models["ensemble"].predict(fval)) if fval is not None else {}
        candidates["ensemble"] = {
            "train_s": round(time.perf_counter() - t0, 1),
            "validation": scores,
            "weight": models["ensemble"].weight,
        }
    chosen = (
        "ensemble" if kind == "ensemble" else max(models, key=lambda k: selection_score(candidates[k]["validation"]))
    )
    weights = None
    if fval is not None:
        p_val, d_val = models[chosen].predict(fval)
        weights = decision_weights(fval.y_fp, p_val, d_val)
        candidates[chosen]["validation_reweighted"] = evaluate(fval.y_fp, reweighted(p_val, weights), d_val)
    meta = {
        "classes": list(F.CLASSES),
        "decision_weights": {c: float(w) for c, w in zip(F.CLASSES, weights)} if weights is not None else {},
        "feature_names": ftrain.names,
        "intents": intents,
        "domain": domain,
        "embeddings": embeddings,
        "train_turns": int(len(ftrain.X)),
        "val_turns": int(len(fval.X)) if fval else 0,
        "candidates": candidates,
        "features_s": round(features_s, 1),
    }
    Path(out).mkdir(parents=True, exist_ok=True)
    meta["reader"] = reader.save(Path(out))
    meta["garbled"] = garbled.save(Path(out))
    meta["total_s"] = round(time.perf_counter() - started, 1)
    save_model(out, models, chosen, meta)
    return {"chosen": chosen, **meta}


def _labeled(sessions: list[F.SessionTurns], paths) -> list[F.SessionTurns]:
    labeled = [s for s in sessions if any((r.get("labels") or {}).get("oracle") for r in s.records)]
    if not labeled:
        raise UserError(
            f"{', '.join(map(str, paths))}: no oracle-labeled turns (simulate labeled traces with `assistant simulate`)"
        )
    return labeled


def _features_for(paths, meta: dict, model_dir) -> tuple[list[F.SessionTurns], F.FeatureSet]:
    sessions = F.load_sessions(paths)
    if not sessions:
        raise UserError(f"no turns in {', '.join(map(str, paths))}")
    fs = F.build(sessions, meta["intents"], meta.get("domain", "home"), meta.get("embeddings", True))
    folder = Path(model_dir)
    if "reader" in meta:
        reader = load_part(folder, "transcript reader", lambda: Reader.load(folder, meta["reader"]))
        fs = F.with_columns(fs, READER_NAMES, reader.features(fs))
    if "garbled" in meta:
        # the model's own features less the score itself (a run with no heard turn builds none)
        scorer = load_part(
            folder,
            "garbled-transcript scorer",
            lambda: GarbledScorer.load(folder, meta["garbled"], len(meta["feature_names"]) - 1),
        )
        if len(fs.names) == scorer.n_features:  # else the check below names the mismatch
            fs = with_score(fs, scorer.score(fs))
    if len(fs.X) and fs.names != meta["feature_names"]:
        raise UserError("the traces' features do not match the model's (retrain it with this version)")
    return sessions, fs


def evaluate_paths(paths, model_dir, kind: str | None = None) -> dict:
    """The metrics of eval --json (hooks/learn/evaluation.py) on the traces' oracle labels."""
    model, meta = load_model(model_dir, kind)
    _sessions, fs = _features_for(paths, meta, model_dir)
    if not np.any(fs.y_fp >= 0):
        raise UserError("no oracle labels in those traces to evaluate against")
    p, d = model.predict(fs)
    return evaluate(fs.y_fp, p, d)


def label(paths, model_dir, kind: str | None = None) -> int:
    """Write ``labels.predicted`` into every turn_end of the traces (rewritten atomically)."""
    model, meta = load_model(model_dir, kind)
    sessions, fs = _features_for(paths, meta, model_dir)
    p, d = model.predict(fs) if len(fs.X) else (np.zeros((0, len(F.CLASSES))), np.zeros(0))
    row = {key: i for i, key in enumerate(fs.keys)}
    predicted = {}
    for s in sessions:
        for r in s.records:
            key = (r["session"], r["turn"])
            i = row.get(key)
            if i is None:
                # the wake stage heard nothing: a turn only a simulation can trace, and its cause is plain
                predicted[key] = {
                    "failure_point": "wake",
                    "defect": True,
                    "p": {c: float(c == "wake") for c in F.CLASSES},
                    "p_defect": 1.0,
                    "source": "rule:not-woken",
                }
                continue
            predicted[key] = {
                "failure_point": F.CLASSES[int(p[i].argmax())],
                "defect": bool(d[i] >= 0.5),
                "p": {c: round(float(p[i][j]), 4) for j, c in enumerate(F.CLASSES)},
                "p_defect": round(float(d[i]), 4),
                "source": f"learned:{meta['kind']}",
            }
    written = 0
    for f in trace_files(paths):
        records = read_records(f)
        for r in records:
            if r["event"] == "turn_end" and (r["session"], r["turn"]) in predicted:
                labels = r["labels"] if isinstance(r.get("labels"), dict) else {"oracle": None}
                r["labels"] = {**labels, "predicted": predicted[(r["session"], r["turn"])]}
                written += 1
        tmp = f.with_suffix(".jsonl.tmp")
        tmp.write_text(
            "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records), encoding="utf-8"
        )
        os.replace(tmp, f)
    return written

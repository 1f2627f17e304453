"""Train, apply and evaluate the labelers on trace folders."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from assistant.errors import UserError
from hooks.learn import features as F
from hooks.learn.metrics import evaluate
from hooks.learn.models import KINDS, load_model, save_model
from hooks.traces import read_records, trace_files

log = logging.getLogger(__name__)

VAL_SHARE = 0.15


def _intents(domain: str) -> list[str]:
    from sim.domain import load_domain

    return sorted(load_domain(domain).intents)


def _split(sessions: list[F.SessionTurns]) -> tuple[list, list]:
    """A stable split by session id (not by position), so adding sessions never reshuffles."""
    train, val = [], []
    for s in sessions:
        h = int(hashlib.sha256(s.session.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < VAL_SHARE else train).append(s)
    return train, val


def train(paths, out: str | Path, val_paths=None, kind: str = "best", domain: str = "home", seed: int = 0,
          embeddings: bool = True) -> dict:
    started = time.perf_counter()
    sessions = F.load_sessions(paths)
    labeled = [s for s in sessions if any((r.get("labels") or {}).get("oracle") for r in s.records)]
    if not labeled:
        raise UserError("no oracle-labeled turns in those traces (simulate them with `assistant simulate`)")
    if val_paths:
        train_s, val_s = labeled, F.load_sessions(val_paths)
    else:
        train_s, val_s = _split(labeled)
    intents = _intents(domain)
    embedder = F.Embedder(embeddings)
    ftrain = F.build(train_s, intents, domain, embeddings, embedder)
    fval = F.build(val_s, intents, domain, embeddings, embedder) if val_s else None
    features_s = time.perf_counter() - started
    import torch

    # One thread: with two, training ran 10x slower whenever anything else used a core here
    # (5 epochs: 79 s vs 7.7 s); on an idle machine two threads gain far less than that.
    torch.set_num_threads(1)
    candidates = {}
    kinds = list(KINDS) if kind == "best" else [kind]
    if kind not in ("best", *KINDS):
        raise UserError(f"--kind must be best, {', '.join(KINDS)}; got {kind!r}")
    models = {}
    for k in kinds:
        t0 = time.perf_counter()
        model = KINDS[k](seed=seed).fit(ftrain, fval)
        fit_s = time.perf_counter() - t0
        scores = evaluate(fval.y_fp, *model.predict(fval)) if fval is not None else {}
        candidates[k] = {"train_s": round(fit_s, 1), "validation": scores}
        models[k] = model
        log.info("%s: validation fp accuracy %s (%.0f s)", k, scores.get("fp_accuracy"), fit_s)
    chosen = max(models, key=lambda k: (candidates[k]["validation"].get("fp_accuracy", 0.0),
                                        candidates[k]["validation"].get("fp_macro_f1", 0.0)))
    meta = {"classes": list(F.CLASSES), "feature_names": ftrain.names, "intents": intents, "domain": domain,
            "embeddings": embeddings, "train_turns": int(len(ftrain.X)), "val_turns": int(len(fval.X)) if fval else 0,
            "candidates": candidates, "features_s": round(features_s, 1),
            "total_s": round(time.perf_counter() - started, 1)}
    save_model(out, models[chosen], meta)
    return {"chosen": chosen, **meta}


def _features_for(paths, meta: dict):
    sessions = F.load_sessions(paths)
    fs = F.build(sessions, meta["intents"], meta.get("domain", "home"), meta.get("embeddings", True))
    if fs.names != meta["feature_names"]:
        raise UserError("the traces' features do not match the model's (retrain it with this version)")
    return fs


def evaluate_paths(paths, model_dir) -> dict:
    model, meta = load_model(model_dir)
    fs = _features_for(paths, meta)
    if not np.any(fs.y_fp >= 0):
        raise UserError("no oracle labels in those traces to evaluate against")
    p, d = model.predict(fs)
    return {**evaluate(fs.y_fp, p, d), "model": meta["kind"]}


def label(paths, model_dir) -> int:
    """Write ``labels.predicted`` into every turn_end of the traces (rewritten atomically)."""
    model, meta = load_model(model_dir)
    fs = _features_for(paths, meta)
    p, d = model.predict(fs)
    predicted = {}
    records = {(r["session"], r["turn"]): r for s in F.load_sessions(paths) for r in s.records}
    for i, key in enumerate(fs.keys):
        if not F.observable(records[key]):
            # the wake stage heard nothing: a turn only a simulation can trace, and its cause is plain
            predicted[key] = {"failure_point": "wake", "defect": True, "p": {c: float(c == "wake") for c in F.CLASSES},
                              "p_defect": 1.0, "source": "rule:not-woken"}
            continue
        predicted[key] = {"failure_point": F.CLASSES[int(p[i].argmax())], "defect": bool(d[i] >= 0.5),
                          "p": {c: round(float(p[i][j]), 4) for j, c in enumerate(F.CLASSES)},
                          "p_defect": round(float(d[i]), 4), "source": f"learned:{meta['kind']}"}
    written = 0
    for f in trace_files(paths):
        records = read_records(f)
        for r in records:
            if r["event"] == "turn_end" and (r["session"], r["turn"]) in predicted:
                r.setdefault("labels", {"oracle": None})["predicted"] = predicted[(r["session"], r["turn"])]
                written += 1
        tmp = f.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records),
                       encoding="utf-8")
        os.replace(tmp, f)
    return written

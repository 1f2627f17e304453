"""Train and evaluate the language-understanding model (intents and slots).

  assistant nlu train (SPEC | --snips DIR | --slurp FILE) --out MODEL_DIR [--json]
  assistant nlu eval  (SPEC | --snips DIR | --slurp FILE) (--model MODEL_DIR | --folds K) [--json]

SPEC is a domain spec (a name such as ``home`` or a YAML path): examples are generated from its
templates and catalogs. SNIPS is the benchmark folder (trains on ``train_*_full.json``,
evaluates on ``validate_*.json``); SLURP a ``.jsonl`` file (intent = scenario_action).
Training is skipped when MODEL_DIR already holds a model of the same inputs (content hash).
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from assistant.config import Config
from assistant.errors import InputError, UserError

log = logging.getLogger(__name__)


def _source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="?", metavar="SPEC", help="domain spec: a name (home) or a YAML file")
    p.add_argument("--snips", metavar="DIR", help="SNIPS benchmark folder (one sub-folder per intent)")
    p.add_argument("--slurp", metavar="FILE", help="SLURP jsonl file (e.g. devel.jsonl)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--epochs", type=int, metavar="N", help="training epochs (default: per source)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="nlu_command", metavar="ACTION", parser_class=type(parser))
    train = sub.add_parser("train", help="train a model from a spec or a corpus", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    _source_arguments(train)
    train.add_argument("--out", metavar="MODEL_DIR", required=True, help="where to write the model")
    train.add_argument("--force", action="store_true", help="train even if MODEL_DIR is up to date")
    ev = sub.add_parser("eval", help="score a model: intent accuracy, slot F1, per intent",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _source_arguments(ev)
    ev.add_argument("--model", metavar="MODEL_DIR", help="a model from `assistant nlu train`")
    ev.add_argument("--folds", type=int, metavar="K",
                    help="k-fold cross-validation on the corpus instead (trains a model per fold)")


def _source(args: argparse.Namespace):
    from stages.nlu.recipes import Source

    given = [(k, v) for k, v in (("spec", args.spec), ("snips", args.snips), ("slurp", args.slurp)) if v]
    if len(given) != 1:
        raise UserError("give exactly one of SPEC, --snips DIR, --slurp FILE")
    kind, value = given[0]
    path = Path(value)
    if kind == "snips" and not path.is_dir():
        raise InputError(path, "no such SNIPS folder")
    if kind == "slurp" and not path.is_file():
        raise InputError(path, "no such SLURP file")
    if kind == "spec":
        from sim.domain import load_domain, resolve_domain_path

        load_domain(value)                     # validates, with file and field in errors
        path = resolve_domain_path(value)
    return Source(kind, path)


def _config(source, args: argparse.Namespace):
    from dataclasses import replace

    from stages.nlu.recipes import default_config

    config = default_config(source)
    if args.epochs is not None:
        if args.epochs < 1:
            raise UserError("--epochs must be at least 1")
        config = replace(config, epochs=args.epochs)
    return config


def _say(args: argparse.Namespace, text: str) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def run(args: argparse.Namespace, config: Config) -> int:
    if args.nlu_command == "train":
        return _train(args)
    if args.nlu_command == "eval":
        return _eval(args)
    raise UserError("usage: assistant nlu {train,eval} ... (see assistant nlu --help)")


def _train(args: argparse.Namespace) -> int:
    from stages.nlu.model import META_FILE
    from stages.nlu.recipes import source_key, train_source
    from stages.nlu.stage import save_atomically

    source = _source(args)
    cfg = _config(source, args)
    out = Path(args.out)
    key = source_key(source, cfg)
    meta_path = out / META_FILE
    if meta_path.is_file() and not args.force:
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        if old.get("key") == key:
            summary = {"model": str(out), "up_to_date": True, "key": key, "examples": old.get("examples"),
                       "train_s": old.get("train_s")}
            print(json.dumps(summary) if args.json else f"{out}: up to date (same inputs, key {key})")
            return 0
    if out.exists() and not (out.is_dir() and (meta_path.is_file() or not any(out.iterdir()))):
        raise InputError(out, "exists and is not an NLU model folder; not overwriting it")
    _say(args, f"training on {source.label} ({cfg.epochs} epochs)…")
    started = time.perf_counter()
    model = train_source(source, cfg)
    if out.exists():
        shutil.rmtree(out)
    save_atomically(model, out)
    meta = model.meta
    summary = {"model": str(out), "up_to_date": False, "key": key, "examples": meta["examples"],
               "intents": len(meta["intents"]), "slot_labels": len(meta["labels"]),
               "train_s": meta["train_s"], "total_s": round(time.perf_counter() - started, 1),
               "temperature": meta.get("temperature")}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{out}: trained on {meta['examples']} examples ({len(meta['intents'])} intents, "
              f"{len(meta['labels'])} slot labels) in {meta['train_s']:.0f} s; "
              f"intent temperature {meta.get('temperature')}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from stages.nlu.evaluate import evaluate
    from stages.nlu.model import SpacyNlu
    from stages.nlu.recipes import cross_validate, evaluation_examples, source_key

    source = _source(args)
    if args.folds is not None:
        if args.model:
            raise UserError("give --model or --folds, not both")
        result = cross_validate(source, args.folds, _config(source, args), progress=lambda m: _say(args, m))
    else:
        if not args.model:
            raise UserError("give --model MODEL_DIR (or --folds K for cross-validation)")
        model = SpacyNlu.load(Path(args.model))
        if source.kind == "slurp" and model.meta.get("key") == source_key(source, _config(source, args)):
            log.warning("this model was trained on %s: the scores are training-set scores", source.path)
        if source.kind == "spec" and model.meta.get("domain_digest") not in (None, _digest(source)):
            log.warning("the model was trained on another version of %s", source.path)
        examples = evaluation_examples(source, model)
        result = evaluate(model, examples)
        result["model"] = str(args.model)
    result["source"] = source.label
    result = _public(result)
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(result)
    return 0


def _digest(source) -> str:
    from sim.domain import load_domain

    return load_domain(source.path).digest


def _public(result: dict) -> dict:
    """Scores without the raw counts (kept inside for pooling folds)."""
    out = {k: v for k, v in result.items() if k not in ("counts", "per_intent")}
    out["per_intent"] = {k: {kk: vv for kk, vv in v.items() if kk != "counts"}
                         for k, v in result.get("per_intent", {}).items()}
    return out


def _print_table(r: dict) -> None:
    folds = f", {r['folds']}-fold cross-validation" if r.get("folds") else ""
    print(f"{r['source']}{folds}: n={r['n']}  intent accuracy {r['intent_accuracy']:.2%}  "
          f"slot F1 {r['slot_f1']:.2%} (P {r['slot_precision']:.2%}, R {r['slot_recall']:.2%})"
          + (f"  ECE {r['ece']:.3f}" if "ece" in r else ""))
    width = max((len(k) for k in r["per_intent"]), default=6)
    for intent, s in r["per_intent"].items():
        print(f"  {intent:<{width}}  n={s['n']:<5} intent {s['intent_accuracy']:7.2%}  slots {s['slot_f1']:7.2%}")

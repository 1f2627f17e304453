"""Train and evaluate the language-understanding model (intents and slots).

  assistant nlu train (SPEC | --snips DIR | --slurp FILE) --out MODEL_DIR [--json]
  assistant nlu eval  (SPEC | --snips DIR | --slurp FILE) (--model MODEL_DIR | --folds K [--fold-seed N]) [--json]
  assistant nlu eval  SPEC --corpus FILE [--part tune|dev] [--model MODEL_DIR] [--json]

SPEC is a domain spec (a name such as ``home`` or a YAML path): examples are generated from its
templates and catalogs. SNIPS is the benchmark folder (trains on ``train_*_full.json``,
evaluates on ``validate_*.json``); SLURP a ``.jsonl`` file (intent = scenario_action).
Training is skipped when MODEL_DIR already holds a model of the same inputs (content hash).

``--corpus`` scores the domain's NLU stage, with its out-of-domain decision, on real commands
labelled for the domain (JSON lines: text, intent — a domain intent, "__ood__" or null for
near-domain — and slot spans): in-domain commands understood (intent and every labelled slot),
out-of-domain commands declined, near-domain commands declined, per intent, and the errors.
Without --model it uses the model the assistant itself would (trained and cached on first use).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from core.config import Config
from core.errors import InputError, UserError

log = logging.getLogger(__name__)


def _source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="?", metavar="SPEC", help="domain spec: a name (home) or a YAML file")
    p.add_argument("--snips", metavar="DIR", help="SNIPS benchmark folder (one sub-folder per intent)")
    p.add_argument("--slurp", metavar="FILE", help="SLURP jsonl file (e.g. devel.jsonl)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--epochs", type=int, metavar="N", help="training epochs (default: per source)")
    p.add_argument(
        "--kind",
        choices=("joint", "spacy"),
        help="model kind (default: per source; a spec: nlu.model; SNIPS and SLURP: joint)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="nlu_command", metavar="ACTION", parser_class=type(parser))
    train = sub.add_parser(
        "train",
        help="train a model from a spec or a corpus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _source_arguments(train)
    train.add_argument(
        "--out",
        metavar="MODEL_DIR",
        help="where to write the model (SPEC only: default, the assistant's own model cache)",
    )
    train.add_argument("--force", action="store_true", help="train even if MODEL_DIR is up to date")
    train.add_argument(
        "--extra",
        metavar="CORPUS",
        action="append",
        default=[],
        help="SPEC only: more annotated examples to train on (JSON lines, e.g. from `assistant learn labels`)",
    )
    ev = sub.add_parser(
        "eval",
        help="score a model: intent accuracy, slot F1, per intent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _source_arguments(ev)
    ev.add_argument("--model", metavar="MODEL_DIR", help="a model from `assistant nlu train`")
    ev.add_argument(
        "--folds", type=int, metavar="K", help="k-fold cross-validation on the corpus instead (trains a model per fold)"
    )
    ev.add_argument(
        "--fold-seed",
        type=int,
        default=0,
        metavar="N",
        help="with --folds: which split into folds (default 0, the reported one); choose settings on another",
    )
    ev.add_argument(
        "--corpus", metavar="FILE", help="real commands labelled for SPEC's domain (e.g. core/domains/slurp_home.jsonl)"
    )
    ev.add_argument("--part", choices=("tune", "dev"), help="with --corpus: only this part of it")
    ev.add_argument("--errors", type=int, default=20, metavar="N", help="with --corpus: errors to list (default 20)")


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
        from core.domain import load_domain, resolve_domain_path

        load_domain(value)  # validates, with file and field in errors
        path = resolve_domain_path(value)
    return Source(kind, path)


def _config(source, args: argparse.Namespace):
    from dataclasses import replace

    from stages.nlu.recipes import default_config

    config = default_config(source, args.kind)
    if args.epochs is not None:
        if args.epochs < 1:
            raise UserError("--epochs must be at least 1")
        config = replace(config, epochs=args.epochs)
    return config


def _say(args: argparse.Namespace, text: str) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)


def run(args: argparse.Namespace, config: Config) -> int:
    if args.nlu_command == "train" and not args.out:
        return _train_cached(args, config)
    if args.nlu_command == "train":
        return _train(args)
    if args.nlu_command == "eval" and args.corpus:
        return _eval_corpus(args, config)
    if args.nlu_command == "eval":
        return _eval(args)
    raise UserError("usage: assistant nlu {train,eval} ... (see assistant nlu --help)")


def _train_cached(args: argparse.Namespace, config: Config) -> int:
    """Train a spec's model into the cache replay and talk use (set-up does this once)."""
    from core.config import cache_dir
    from core.domain import load_domain
    from stages.nlu import load_or_train
    from stages.nlu.recipes import spec_config

    if not args.spec or args.snips or args.slurp:
        raise UserError("--out MODEL_DIR is required for --snips and --slurp")
    domain = load_domain(args.spec)
    started = time.perf_counter()
    if args.epochs is not None and args.epochs < 1:
        raise UserError("--epochs must be at least 1")
    epochs = args.epochs if args.epochs is not None else config["nlu.epochs"]
    model = load_or_train(
        domain,
        cache_dir(config),
        spec_config(epochs, args.kind or config["nlu.model"]),
        progress=lambda m: _say(args, m),
    )
    summary = {
        "domain": domain.name,
        "model": model.name,
        "examples": model.meta.get("examples"),
        "train_s": model.meta.get("train_s"),
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(
        json.dumps(summary)
        if args.json
        else f"{domain.name}: NLU model ready ({summary['examples']} examples, trained in {summary['train_s']} s)"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from stages.nlu.recipes import source_key, train_source
    from stages.nlu.spacy_model import META_FILE
    from stages.nlu.stage import save_atomically

    source = _source(args)
    cfg = _config(source, args)
    out = Path(args.out)
    extra = _extra(args, source)
    key = source_key(source, cfg, extra)
    meta_path = out / META_FILE
    if meta_path.is_file() and not args.force:
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        if old.get("key") == key:
            summary = {
                "model": str(out),
                "up_to_date": True,
                "key": key,
                "examples": old.get("examples"),
                "train_s": old.get("train_s"),
            }
            print(json.dumps(summary) if args.json else f"{out}: up to date (same inputs, key {key})")
            return 0
    if out.exists() and not (out.is_dir() and (meta_path.is_file() or not any(out.iterdir()))):
        raise InputError(out, "exists and is not an NLU model folder; not overwriting it")
    _say(args, f"training on {source.label} ({cfg.epochs} epochs)…")
    started = time.perf_counter()
    model = train_source(source, cfg, extra)
    if out.exists():
        shutil.rmtree(out)
    save_atomically(model, out)
    meta = model.meta
    summary = {
        "model": str(out),
        "up_to_date": False,
        "key": key,
        "examples": meta["examples"],
        "intents": len(meta["intents"]),
        "slot_labels": len(meta["labels"]),
        "train_s": meta["train_s"],
        "total_s": round(time.perf_counter() - started, 1),
        "temperature": meta.get("temperature"),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{out}: trained on {meta['examples']} examples ({len(meta['intents'])} intents, "
            f"{len(meta['labels'])} slot labels) in {meta['train_s']:.0f} s; "
            f"intent temperature {meta.get('temperature')}"
        )
    return 0


def _extra(args: argparse.Namespace, source) -> list:
    """The --extra corpora's examples, checked against the spec's intents and slots."""
    if not args.extra:
        return []
    if source.kind != "spec":
        raise UserError("--extra adds examples to a domain spec's training (give SPEC)")
    from core.domain import load_domain
    from stages.nlu.recipes import extra_examples

    return extra_examples(load_domain(args.spec), args.extra)


def _eval(args: argparse.Namespace) -> int:
    from stages.nlu.evaluate import evaluate
    from stages.nlu.recipes import cross_validate, evaluation_examples, load_model, source_key

    source = _source(args)
    if args.folds is not None:
        if args.model:
            raise UserError("give --model or --folds, not both")
        result = cross_validate(
            source, args.folds, _config(source, args), progress=lambda m: _say(args, m), seed=args.fold_seed
        )
    else:
        if args.fold_seed:
            raise UserError("--fold-seed goes with --folds")
        if not args.model:
            raise UserError("give --model MODEL_DIR (or --folds K for cross-validation)")
        model = load_model(Path(args.model))
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


def _eval_corpus(args: argparse.Namespace, config: Config) -> int:
    from core.config import cache_dir
    from core.domain import OOD_INTENT, load_domain
    from stages.nlu import NluOptions, NluStage, load_or_train
    from stages.nlu.corpora import read_domain_corpus
    from stages.nlu.evaluate import evaluate_commands
    from stages.nlu.recipes import load_model, spec_config

    if not args.spec or args.snips or args.slurp or args.folds or args.fold_seed:
        raise UserError("--corpus goes with SPEC alone (not --snips, --slurp, --folds or --fold-seed)")
    domain = load_domain(args.spec)
    items = read_domain_corpus(args.corpus, args.part)
    known = set(domain.intents) | {OOD_INTENT}
    for item in items:
        if item.intent is not None and item.intent not in known:
            raise InputError(
                Path(args.corpus), f"intent {item.intent!r} is not in domain {domain.name!r}", field=item.id
            )
    if args.model:
        model = load_model(Path(args.model))
    else:
        model = load_or_train(
            domain,
            cache_dir(config),
            spec_config(config["nlu.epochs"], args.kind or config["nlu.model"]),
            progress=lambda m: _say(args, m),
        )
    stage = NluStage(domain, model, NluOptions.from_config(config))
    started = time.perf_counter()
    result = evaluate_commands(stage.interpret, items, errors=max(0, args.errors))
    result.update(
        {
            "spec": domain.source,
            "corpus": str(args.corpus),
            "part": args.part,
            "model": model.name,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    if args.json:
        print(json.dumps(result))
        return 0
    i, o, nd = result["in_domain"], result["out_of_domain"], result["near_domain"]
    print(
        f"{args.corpus}{' (' + args.part + ')' if args.part else ''} on {domain.name}: "
        f"in-domain understood {i['understood']:.1%} (intent {i['intent_accuracy']:.1%}, n={i['n']}); "
        f"out-of-domain declined {o['declined']:.1%} (n={o['n']}); near-domain declined {nd['declined']:.1%} (n={nd['n']})"
    )
    width = max((len(k) for k in result["per_intent"]), default=6)
    for intent, s in result["per_intent"].items():
        print(
            f"  {intent:<{width}}  n={s['n']:<4} understood {s['understood']:7.1%}  intent {s['intent_accuracy']:7.1%}"
            f"  declined {s['declined']:6.1%}"
        )
    if result["errors"]:
        print("errors:")
    for e in result["errors"]:
        extra = f"  missing {', '.join(e['missing_slots'])}" if e.get("missing_slots") else ""
        print(f'  {e["id"]}: "{e["text"]}" → {e["got"] or "declined"} (gold {e["gold"]}){extra}')
    return 0


def _digest(source) -> str:
    from core.domain import load_domain

    return load_domain(source.path).digest


def _public(result: dict) -> dict:
    """Scores without the raw counts (kept inside for pooling folds)."""
    out = {k: v for k, v in result.items() if k not in ("counts", "per_intent")}
    out["per_intent"] = {
        k: {kk: vv for kk, vv in v.items() if kk != "counts"} for k, v in result.get("per_intent", {}).items()
    }
    return out


def _print_table(r: dict) -> None:
    folds = f", {r['folds']}-fold cross-validation" if r.get("folds") else ""
    print(
        f"{r['source']}{folds}: n={r['n']}  intent accuracy {r['intent_accuracy']:.2%}  "
        f"slot F1 {r['slot_f1']:.2%} (P {r['slot_precision']:.2%}, R {r['slot_recall']:.2%})"
        + (f"  ECE {r['ece']:.3f}" if "ece" in r else "")
    )
    width = max((len(k) for k in r["per_intent"]), default=6)
    for intent, s in r["per_intent"].items():
        print(f"  {intent:<{width}}  n={s['n']:<5} intent {s['intent_accuracy']:7.2%}  slots {s['slot_f1']:7.2%}")

"""Score a home-NLU variant on the tune part's two halves, never on the dev part.

    .venv/bin/python tools/tune_halves.py --out /tmp/halves [--seeds 0 1] [--rescore]

The tune part of ``core/domains/slurp_home.jsonl`` is split into halves A and B (stratified by
label, ``--split-seed``, 7 by default). Each direction trains the home spec on one half (the
other half's texts left out of everything it trains on, ``home_ood.txt`` included) and scores
the other through the NLU stage, once per training seed. The dev part is dropped before
anything else: this is where design choices are made (docs/nlu-real-phrasing.md).

Each run's model is kept under ``--out``; ``--rescore`` scores the kept models again, which is
how a change to the stage's rules (not to training) is measured. ``--set epochs=3`` trains with
a setting of the recipe changed (JointConfig fields). ``--out``/``summary.json``
holds the figures and every error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ROOT / "core" / "domains"
CORPUS = "slurp_home.jsonl"
OOD_FILE = "home_ood.txt"


def split_tune(rows: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Halves A and B of the tune part, stratified by label (intent, near-domain or out of domain)."""
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("part") == "tune":
            by_label.setdefault(str(row.get("intent")), []).append(row)
    rng = random.Random(seed)
    a: list[dict] = []
    b: list[dict] = []
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda r: r["id"])
        rng.shuffle(group)
        for i, row in enumerate(group):
            (a if i % 2 == 0 else b).append(row)
    return a, b


def write_domain(folder: Path, header: dict, train: list[dict], score: list[dict]) -> Path:
    """A copy of the bundled domains where the spec's tune part is ``train`` and the dev part
    ``score``; out-of-domain lines said in ``score`` are removed."""
    shutil.copytree(DOMAINS, folder)
    with open(folder / CORPUS, "w", encoding="utf-8") as f:
        f.write(json.dumps(header) + "\n")
        for part, rows in (("tune", train), ("dev", score)):
            for row in rows:
                f.write(json.dumps({**row, "part": part}) + "\n")
    held = {r["text"].strip().lower() for r in score}
    lines = (DOMAINS / OOD_FILE).read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in lines if ln.startswith("#") or ln.rpartition("\t")[2].strip().lower() not in held]
    (folder / OOD_FILE).write_text("\n".join(kept) + "\n", encoding="utf-8")
    return folder / "home.yaml"


def with_settings(config, settings: list[str]):
    """``config`` with FIELD=VALUE settings, each value read as the field's type (as the
    assistant's own ``--set`` reads configuration values)."""
    from dataclasses import fields

    from core.config import coerce

    names = {f.name for f in fields(config)}
    changes = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if name not in names:
            raise ValueError(f"--set {setting}: no training setting {name!r} (one of {', '.join(sorted(names))})")
        changes[name] = coerce(f"--set {name}", value, getattr(config, name), "the command line")
    return replace(config, **changes)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the models and summary.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (default 0 1)")
    p.add_argument("--split-seed", type=int, default=7, help="seed of the split into halves (default 7)")
    p.add_argument("--directions", nargs="+", default=["AB", "BA"], choices=["AB", "BA"])
    p.add_argument("--rescore", action="store_true", help="score the models kept under --out, train none")
    p.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="FIELD=VALUE",
        help="training settings that differ from the shipped recipe's (JointConfig fields, e.g. epochs=3)",
    )
    return p


def main() -> int:
    p = parser()
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from core.config import Config
    from core.domain import load_domain
    from core.errors import ConfigError
    from stages.nlu import NluOptions, NluStage
    from stages.nlu.corpora import read_domain_corpus
    from stages.nlu.evaluate import evaluate_commands
    from stages.nlu.recipes import SPEC_CONFIG, load_model, train_spec
    from stages.nlu.stage import save_atomically

    try:
        config = with_settings(SPEC_CONFIG, args.set)
    except (ValueError, ConfigError) as err:
        p.error(str(err))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = (DOMAINS / CORPUS).read_text(encoding="utf-8").splitlines()
    header, rows = json.loads(lines[0]), [json.loads(x) for x in lines[1:] if x.strip()]
    a, b = split_tune(rows, args.split_seed)
    options = NluOptions.from_config(Config.load())
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for direction in args.directions:
            train, score = (a, b) if direction == "AB" else (b, a)
            spec = write_domain(Path(tmp) / direction, header, train, score)
            domain = load_domain(spec)
            items = read_domain_corpus(spec.parent / CORPUS, "dev")
            for seed in args.seeds:
                target = out / f"{direction}-seed{seed}"
                if args.rescore:
                    model = load_model(target)
                else:
                    save_atomically(train_spec(domain, replace(config, seed=seed)), target)
                    model = load_model(target)
                result = evaluate_commands(NluStage(domain, model, options).interpret, items, errors=10_000)
                n = result["in_domain"]["n"]
                got = round(result["in_domain"]["understood"] * n)
                runs.append({"direction": direction, "seed": seed, "understood_of": [got, n], **result})
                print(
                    f"{direction} seed {seed}: understood {got}/{n}, intent {result['in_domain']['intent_accuracy']:.1%}, "
                    f"ood declined {result['out_of_domain']['declined']:.1%}, near declined {result['near_domain']['declined']:.1%}",
                    flush=True,
                )
    total = sum(r["understood_of"][0] for r in runs)
    n = sum(r["understood_of"][1] for r in runs)
    summary = {"understood": total, "of": n, "settings": args.set, "runs": runs}
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"total: {total} of {n} understood ({total / n:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

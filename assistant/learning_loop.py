"""The self-learning loop, measured: a simulated week, learning from its traces, the next week
with what was learned switched on (docs/self-learning.md).

The same recurring users (``--population``) live through every week; each week has its own
seed. Each evaluation week runs twice from the same seed, without and with the learned
artifacts, so "before" and "after" are the same sessions. The oracle judges every rewrite as it
happens (sim/rewrite_judge.py): the turn is replayed without the rewrite step; a *win* turns a
defect into a success, a *loss* a success into a defect. Learning reads only what production
has (hooks/learn/rewrites.py); gold is used here, to score.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.rewriting import TABLE_FORMAT
from assistant.wake_threshold import THRESHOLD_FORMAT
from core.config import Config
from core.errors import UserError
from core.paths import ensure_output_dir, write_json_atomic
from core.wer import percentile
from hooks.trace_reader import iter_records
from sim.profiles import DEFAULT_PROFILE, PROFILES
from sim.user import HOUSE_NAME_USERS

log = logging.getLogger(__name__)

LAYERS = ("table", "index", "concepts", "labels", "gate", "wake")


@dataclass(frozen=True)
class LoopOptions:
    out: str
    population: int = 40
    sessions: int = 800  # a week of 40 users: 20 sessions each, about three a day
    learn_seed: int = 101
    eval_seeds: tuple[int, ...] = (102,)
    profile: str = DEFAULT_PROFILE  # the traffic of every week (sim/profiles.py)
    faults: str | None = None  # None: the profile's
    workers: int = 1
    layers: tuple[str, ...] = LAYERS
    exclude_phrasings: tuple[str, ...] = ()  # phrasing sources no simulated user speaks (a held-out corpus)
    house_names: float = HOUSE_NAME_USERS  # share of users whose homes name devices their own way

    def validate(self) -> None:
        if self.profile not in PROFILES:
            raise UserError(f"--profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        if self.population < 1:
            raise UserError("--population must be at least 1")
        unknown = set(self.layers) - set(LAYERS)
        if unknown:
            raise UserError(f"--layers: unknown {', '.join(sorted(unknown))} (known: {', '.join(LAYERS)})")


def week_options(opts: LoopOptions, seed: int, out: Path):
    """One week's simulator options: the profile's traffic, ``--faults`` over it."""
    from sim.simulator import SimOptions

    return SimOptions(
        **{**PROFILES[opts.profile].sim_fields(), **({} if opts.faults is None else {"faults": opts.faults})},
        sessions=opts.sessions,
        seed=seed,
        out=str(out),
        workers=opts.workers,
        population=opts.population,
        house_names=opts.house_names,
        exclude_phrasings=opts.exclude_phrasings,
        overwrite=True,
    )


def _simulate(config: Config, opts: LoopOptions, seed: int, out: Path, values: dict) -> dict:
    from sim import simulator

    cfg = Config.load(None, {**config.to_dict(), "trace.audio": False, **values}, override_source="learn loop")
    return simulator.run(cfg, week_options(opts, seed, out))


def meant_value(rec: dict, domain) -> bool:
    """Whether a concept's rewrite says what the user meant: some run of the words it put in
    has the value of one of the request's gold slots ("focus mode" → "four minutes": duration
    240). The turn can still fail for another reason (the rest of the request)."""
    from core.normalize import normalize

    rw = rec.get("rewrite") or {}
    gold = rec.get("gold") or {}
    spec = domain.intents.get(gold.get("intent") or "")
    before, words = set(str(rw.get("original", "")).lower().split()), str(rw.get("text", "")).lower().split()
    if spec is None:
        return False
    for name, value in (gold.get("slots") or {}).items():
        slot = spec.slots.get(name)
        if slot is None:
            continue
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + 5) + 1):
                run = words[i:j]
                if all(w in before for w in run):
                    continue
                try:
                    got = normalize(slot.type, " ".join(run))
                except KeyError:  # a catalog slot: its words are the value
                    got = " ".join(run)
                if got == value:
                    return True
    return False


def week_figures(folder: Path, domain=None) -> dict:
    """Defects by failure point, rewrites judged, what was taught and reused, for one week
    (with ``domain``: whether each concept use said what the user meant)."""
    points: Counter = Counter()
    turns = defects = 0
    rewrites: dict[str, Counter] = defaultdict(Counter)
    by_user: dict[str, list] = defaultdict(lambda: [0, 0])
    user_of: dict[str, str] = {}
    rewrite_ms: list[float] = []
    # a turn's rewrite step and NLU stage together: the step reads the request with the NLU,
    # and the stage reuses that reading, so the step's own time hides the stage's
    understanding_ms: dict[tuple, float] = defaultdict(float)
    heard = [0, 0]
    for rec in iter_records([folder]):
        if rec["event"] == "stage_end" and rec.get("stage") in ("rewrite", "nlu"):
            ms = float(rec.get("duration_ms") or 0.0)
            understanding_ms[(rec.get("session"), rec.get("turn"))] += ms
            if rec["stage"] == "rewrite":
                rewrite_ms.append(ms)
            continue
        if rec["event"] == "session_start":
            user_of[rec["session"]] = str(((rec.get("meta") or {}).get("user") or {}).get("id"))
            continue
        if rec["event"] != "turn_end":
            continue
        oracle = (rec.get("labels") or {}).get("oracle") or {}
        point = oracle.get("failure_point")
        if point is None:
            continue
        turns += 1
        defects += point != "correct"
        if rec.get("transcript"):  # the assistant woke and heard something: defects it can see
            heard[0] += point != "correct"
            heard[1] += 1
        points[point] += 1
        u = user_of.get(rec["session"], "")
        by_user[u][0] += point != "correct"
        by_user[u][1] += 1
        judged = (rec.get("labels") or {}).get("rewrite")
        # a turn only a learned wake threshold woke is the threshold's doing, rewritten or not
        source = "wake" if judged and judged.get("source") == "wake" else (rec.get("rewrite") or {}).get("source")
        if source not in (None, "none"):
            c = rewrites[source]
            c["fired"] += 1
            c["correct"] += point == "correct"
            if source == "concept" and domain is not None:
                c["meant"] += meant_value(rec, domain)
            if judged:
                c["win"] += judged["win"]
                c["loss"] += judged["loss"]
                c["same_outcome_correct"] += not judged["win"] and not judged["loss"] and point == "correct"
                c["same_outcome_defect"] += not judged["win"] and not judged["loss"] and point != "correct"
    return {
        "turns": turns,
        "defects": defects,
        "defect_rate": round(defects / max(turns, 1), 4),
        "defect_rate_heard": round(heard[0] / max(heard[1], 1), 4),
        "turns_heard": heard[1],
        "failure_points": dict(sorted(points.items())),
        "rewrites": {k: dict(v) for k, v in sorted(rewrites.items())},
        "rewrite_step_ms": _p50_p95(rewrite_ms),
        "rewrite_and_nlu_ms": _p50_p95(list(understanding_ms.values())),
        "by_user": {u: v for u, v in by_user.items()},
    }


def _p50_p95(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"p50": percentile(values, 0.5, digits=2), "p95": percentile(values, 0.95, digits=2), "turns": len(values)}


def _personal_off(artifact: Path, out: Path) -> Path:
    """The same index or table with its personal layer switched off (the personal layer's
    measure): no candidate from the user's own requests, no rephrase of their own, none of
    their entity choices."""
    if artifact.suffix != ".npz":
        table = json.loads(artifact.read_text(encoding="utf-8"))
        if table.get("format") == THRESHOLD_FORMAT:
            write_json_atomic(out, {**table, "users": {}})  # every device on the global threshold
            return out
        if table.get("format") != TABLE_FORMAT:
            return artifact  # the wake gate has no personal layer
        write_json_atomic(out, {**table, "personal_near": 101.0, "preferences": {}})
        return out
    with np.load(artifact, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    options = json.loads(str(arrays["options"]))
    options["personal"] = 99.0
    arrays["options"] = np.array(json.dumps(options))
    np.savez(out, **arrays)
    return out


def run_loop(config: Config, opts: LoopOptions, progress: Callable[[str], None] = lambda m: None) -> dict:
    from core.domain import load_domain
    from hooks.learn.rewrites import learn_index, learn_table, minilm_similarity
    from sim.simulator import check_phrasings

    opts.validate()
    domain = load_domain(config["session.domain"])
    check_phrasings(config, week_options(opts, opts.learn_seed, Path(opts.out)))  # before anything is written
    out = ensure_output_dir(opts.out)
    profiles = out / "profiles"
    if profiles.exists():
        shutil.rmtree(profiles)
    teach = {"rewrite.profiles": str(profiles)} if "concepts" in opts.layers else {}
    report: dict = {
        "options": {
            **opts.__dict__,
            "eval_seeds": list(opts.eval_seeds),
            "layers": list(opts.layers),
            "exclude_phrasings": list(opts.exclude_phrasings),
        }
    }
    progress(f"week {opts.learn_seed}: simulating {opts.sessions} sessions of {opts.population} users")
    t0 = time.perf_counter()
    learn_week = out / f"week-{opts.learn_seed}"
    _simulate(config, opts, opts.learn_seed, learn_week, teach)
    report["learn_week"] = {
        "seed": opts.learn_seed,
        "simulate_s": round(time.perf_counter() - t0, 1),
        **{k: v for k, v in week_figures(learn_week).items() if k != "by_user"},
    }
    progress("learning rewrites and the retrieval index from its traces")
    artifacts = []
    learned: dict = {}
    t0 = time.perf_counter()
    if "table" in opts.layers:
        learned["table"] = learn_table([learn_week], out / "rewrites.json", similar=minilm_similarity())
        artifacts.append(out / "rewrites.json")
    if "index" in opts.layers:
        learned["index"] = learn_index([learn_week], out / "index.npz")
        artifacts.append(out / "index.npz")
    if "gate" in opts.layers:
        from hooks.learn.wake_gate import learn_gate

        learned["gate"] = learn_gate([learn_week], out / "wake-gate.json")
        artifacts.append(out / "wake-gate.json")
    if "wake" in opts.layers:
        from hooks.learn.wake_threshold import learn_wake_threshold

        learned["wake"] = learn_wake_threshold([learn_week], out / "wake-threshold.json", config["wake.threshold"])
        artifacts.append(out / "wake-threshold.json")
    retrained: dict = {}
    if "labels" in opts.layers:
        progress("label transfer, and the NLU retrained with the labels")
        learned["labels"] = _retrain_with_labels(config, domain, learn_week, out, progress)
        retrained = {"nlu.model_dir": str(out / "nlu-with-labels")}
    report["learning"] = {**learned, "learn_s": round(time.perf_counter() - t0, 2)}
    report["weeks"] = []
    for seed in opts.eval_seeds:
        week: dict = {"seed": seed}
        runs = [("before", {}), ("after", {"rewrite.artifacts": ",".join(map(str, artifacts)), **teach, **retrained})]
        if artifacts:
            global_only = [_personal_off(a, a.with_name(f"{a.stem}-global-only{a.suffix}")) for a in artifacts]
            runs.append(
                ("after_without_personal", {"rewrite.artifacts": ",".join(map(str, global_only)), **teach, **retrained})
            )
        for name, values in runs:
            if name != "before" and "concepts" in opts.layers:
                # every "after" run starts from what the learning week taught
                snap = out / "profiles-after-learn-week"
                if not snap.exists() and profiles.exists():
                    shutil.copytree(profiles, snap)
                if profiles.exists():
                    shutil.rmtree(profiles)
                if snap.exists():
                    shutil.copytree(snap, profiles)
            progress(f"week {seed} ({name.replace('_', ' ')}): simulating")
            t0 = time.perf_counter()
            folder = out / f"week-{seed}-{name}"
            _simulate(config, opts, seed, folder, values if name != "before" else {})
            week[name] = {"simulate_s": round(time.perf_counter() - t0, 1), **week_figures(folder, domain)}
        before, after = week["before"], week["after"]
        week["defect_rate_relative_change"] = round(
            (after["defect_rate"] - before["defect_rate"]) / max(before["defect_rate"], 1e-9), 4
        )
        week["heard_defect_rate_relative_change"] = round(
            (after["defect_rate_heard"] - before["defect_rate_heard"]) / max(before["defect_rate_heard"], 1e-9), 4
        )
        wins = sum(v.get("win", 0) for v in after["rewrites"].values())
        losses = sum(v.get("loss", 0) for v in after["rewrites"].values())
        week["wins"], week["losses"] = wins, losses
        week["win_loss"] = round(wins / losses, 2) if losses else None
        if "after_without_personal" in week:
            week["personal_layer"] = _personal_gain(week, out / f"week-{opts.learn_seed}")
        for name in ("before", "after", "after_without_personal"):
            if name in week:
                week[name].pop("by_user", None)
        report["weeks"].append(week)
    if "concepts" in opts.layers:
        from assistant.concepts import profile_summary

        report["concepts"] = profile_summary(profiles)
    write_json_atomic(out / "loop.json", report)
    return report


def _retrain_with_labels(config: Config, domain, learn_week: Path, out: Path, progress) -> dict:
    """Label transfer from the learning week (hooks/learn/labels.py), then the spec's NLU
    retrained with those examples into ``out/nlu-with-labels`` (what ``nlu.model_dir`` names)."""
    from hooks.learn.labels import learn_labels, shadow_check
    from hooks.learn.rewrites import minilm_similarity
    from stages.nlu.recipes import configured_spec, extra_examples, train_spec
    from stages.nlu.stage import NluOptions, NluStage, save_atomically

    corpus = out / "labels.jsonl"
    summary = learn_labels([learn_week], corpus, minilm_similarity(), domain=domain.name)
    t0 = time.perf_counter()
    model = train_spec(domain, configured_spec(config), progress=progress, extra=extra_examples(domain, [corpus]))
    target = out / "nlu-with-labels"
    if target.exists():
        shutil.rmtree(target)
    save_atomically(model, target)
    retrain_s = round(time.perf_counter() - t0, 1)
    stage = NluStage(domain, model, NluOptions.from_config(config))
    check = shadow_check([learn_week], corpus, lambda text: stage.interpret(text).intent)
    progress(
        f"the retrained NLU reads {check['fixed']} of {check['examples']} failed requests as rephrased and "
        f"changes {check['changed']} of {check['successes']} successful ones"
    )
    return {**summary, "retrain_s": retrain_s, "shadow": check}


def _personal_gain(week: dict, learn_week: Path) -> dict:
    """Defect rate with and without the personal layer, on users who have history (a
    successful request in the learning week)."""
    from hooks.learn.rewrites import read_requests

    known = {r.user for reqs in read_requests([learn_week]) for r in reqs if r.succeeded}

    def rate(run: str) -> float:
        d = sum(v[0] for u, v in week[run]["by_user"].items() if u in known)
        n = sum(v[1] for u, v in week[run]["by_user"].items() if u in known)
        return d / max(n, 1)

    with_p, without = rate("after"), rate("after_without_personal")
    return {
        "users_with_history": len(known),
        "defect_rate_with": round(with_p, 4),
        "defect_rate_without": round(without, 4),
        "relative_change": round((with_p - without) / max(without, 1e-9), 4),
    }


def format_report(report: dict) -> str:
    lines = []
    lw = report["learn_week"]
    lines.append(f"profile {report['options']['profile']}")
    lines.append(f"learning week (seed {lw['seed']}): {lw['turns']} judged turns, defect rate {lw['defect_rate']:.1%}")
    learning = report["learning"]
    if "table" in learning:
        t = learning["table"]
        lines.append(
            f"  rewrite table: {t['rewrites']} rewrites from {t['rephrase_chains']} rephrase chains; "
            f"{t['personal_rephrases']} users' own rephrases, {t['entity_preferences']} entity choices"
        )
    if "labels" in learning:
        lb = learning["labels"]
        lines.append(
            f"  label transfer: {lb['examples']} annotated examples from {lb['pairs']} failed requests; "
            f"NLU retrained in {lb['retrain_s']} s; it reads {lb['shadow']['fixed']} of them as rephrased and "
            f"changes {lb['shadow']['changed']} of {lb['shadow']['successes']} successful requests"
        )
    if "index" in learning:
        i = learning["index"]
        lines.append(
            f"  retrieval index: {i['successful_utterances']} successful requests, "
            f"{i['personal_rows']} personal rows of {i['users']} users"
        )
    if "gate" in learning:
        from hooks.learn import wake_gate

        lines.append(f"  {wake_gate.describe(learning['gate'])}")
    if "wake" in learning:
        from hooks.learn import wake_threshold

        lines.append(f"  {wake_threshold.describe(learning['wake'])}")
    lines.append(f"  learning time: {learning['learn_s']} s")
    for w in report["weeks"]:
        b, a = w["before"], w["after"]
        lines.append(
            f"week {w['seed']}: defect rate {b['defect_rate']:.1%} before → {a['defect_rate']:.1%} after "
            f"({w['defect_rate_relative_change']:+.1%} relative); on turns it heard "
            f"{b['defect_rate_heard']:.1%} → {a['defect_rate_heard']:.1%} "
            f"({w['heard_defect_rate_relative_change']:+.1%})"
        )
        for point in sorted(set(b["failure_points"]) | set(a["failure_points"])):
            lines.append(
                f"  {point:8s} {b['failure_points'].get(point, 0):5d} → {a['failure_points'].get(point, 0):5d}"
            )
        for source, c in a["rewrites"].items():
            lines.append(
                f"  rewrites by {source}: {c.get('fired', 0)} fired, {c.get('win', 0)} wins, {c.get('loss', 0)} losses"
            )
        lines.append(f"  win/loss: {w['wins']}:{w['losses']}")
        if a.get("rewrite_step_ms"):
            ms = a["rewrite_step_ms"]
            lines.append(f"  rewrite step: p50 {ms['p50']} ms, p95 {ms['p95']} ms over {ms['turns']} turns")
        if a.get("rewrite_and_nlu_ms") and b.get("rewrite_and_nlu_ms"):
            before, after = b["rewrite_and_nlu_ms"], a["rewrite_and_nlu_ms"]
            lines.append(
                f"  rewrite step + NLU stage a turn: p50 {before['p50']} ms before → {after['p50']} ms after "
                f"(p95 {before['p95']} → {after['p95']} ms)"
            )
        if "personal_layer" in w:
            p = w["personal_layer"]
            lines.append(
                f"  personal layer, users with history: defect rate {p['defect_rate_without']:.1%} without → "
                f"{p['defect_rate_with']:.1%} with ({p['relative_change']:+.1%})"
            )
    if "concepts" in report:
        c = report["concepts"]
        lines.append(f"concepts: {c['taught']} taught by {c['users']} users ({', '.join(c['names'])})")
        for w in report["weeks"]:
            used = w["after"]["rewrites"].get("concept", {})
            taught = w["after"]["rewrites"].get("teach", {})
            lines.append(
                f"  week {w['seed']}: taught {taught.get('fired', 0)} times, used {used.get('fired', 0)} times: "
                f"{used.get('meant', 0)} said what the user meant, {used.get('correct', 0)} turns correct"
            )
    return "\n".join(lines)

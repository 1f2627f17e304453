"""Wake-word evaluation (``assistant wake eval``, docs/wake.md): false rejects on positives
played as a stream, false accepts per hour on negatives, a threshold sweep and a DET curve.

Positives are clips of the wake word, joined into one stream with a seeded gap between them, as
people taking turns at a device would say it; each clip's span is known, and a detection counts
for the clip whose span holds it (up to ``LAG_S`` after the clip ends: the detector fires at the
end of the word). Negatives are played as streams of their own; every detection in them is a
false accept. Two detectors run on the same audio: the pipeline's own listener
(:class:`~stages.wake.WakeListener`, endpointing and re-arming included) and, on request, the
bare openWakeWord model (a detection wherever its score rises to the threshold). No speech
recognition runs.
"""

from __future__ import annotations

import hashlib
import logging
import random
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from core.audio import PIPELINE_RATE, Audio, load_audio
from core.errors import InputError, UserError

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".raw", ".pcm")
LAG_S = 0.5  # a detection this long after a clip's end still belongs to it
LEAD_S = 0.5  # silence before the first clip
DEFAULT_GAP_S = (2.0, 3.0)  # seconds between positives (issue 20: where the listener lost words)
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
FRAME = 1280


@dataclass(frozen=True)
class Span:
    name: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Stream:
    name: str
    audio: Audio
    spans: tuple[Span, ...] = ()  # positives in it (none: a negative stream)


@dataclass(frozen=True)
class Score:
    """One detector at one threshold on one condition."""

    detector: str  # listener | verified (with the second look) | model
    threshold: float
    condition: str
    positives: int
    missed: int
    extra: int  # more than one detection inside one positive's span
    stray: int  # detections between positives
    negative_s: float
    false_accepts: int

    @property
    def frr(self) -> float | None:
        return self.missed / self.positives if self.positives else None

    def frr_interval(self, level: float = 0.95) -> tuple[float, float] | None:
        return None if not self.positives else clopper_pearson(self.missed, self.positives, level)

    @property
    def fa_per_hour(self) -> float | None:
        return self.false_accepts / (self.negative_s / 3600) if self.negative_s else None

    def fa_interval(self, level: float = 0.95) -> tuple[float, float] | None:
        if not self.negative_s:
            return None
        lo, hi = poisson_interval(self.false_accepts, level)
        hours = self.negative_s / 3600
        return lo / hours, hi / hours

    def as_json(self) -> dict:
        frr_ci, fa_ci = self.frr_interval(), self.fa_interval()
        return {
            "detector": self.detector,
            "threshold": self.threshold,
            "condition": self.condition,
            "positives": self.positives,
            "missed": self.missed,
            "extra": self.extra,
            "stray": self.stray,
            "frr": _r(self.frr),
            "frr_95": None if frr_ci is None else [_r(x) for x in frr_ci],
            "negative_hours": round(self.negative_s / 3600, 4),
            "false_accepts": self.false_accepts,
            "fa_per_hour": _r(self.fa_per_hour),
            "fa_per_hour_95": None if fa_ci is None else [_r(x) for x in fa_ci],
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for k of n."""
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def poisson_interval(k: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson count k."""
    from scipy.stats import chi2

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(chi2.ppf(a, 2 * k) / 2)
    return lo, float(chi2.ppf(1 - a, 2 * k + 2) / 2)


# ---------------------------------------------------------------- inputs


def audio_files(path: str | Path) -> list[Path]:
    """The audio files a path names: the file itself, or a folder's audio files (sorted)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise InputError(p, "no audio files in this folder")
        return files
    if not p.is_file():
        raise InputError(p, "no such file or folder")
    return [p]


def half_of(name: str) -> str:
    """``tune`` or ``held_out``, by a hash of the file name: the same split on every machine."""
    return "tune" if hashlib.sha1(name.encode("utf-8")).digest()[0] % 2 == 0 else "held_out"


def positive_stream(
    files: Sequence[Path], gap_s: tuple[float, float] = DEFAULT_GAP_S, seed: int = 0, name: str = "positives"
) -> Stream:
    """The clips one after another, ``gap_s`` (uniform, seeded) of silence between them."""
    rng = random.Random(seed)
    parts, spans, t = [Audio.silence(LEAD_S)], [], LEAD_S
    for f in files:
        clip = load_audio(f)
        if clip.duration_s == 0:
            raise InputError(f, "no audio in this file")
        spans.append(Span(f.name, round(t, 4), round(t + clip.duration_s, 4)))
        gap = Audio.silence(rng.uniform(*gap_s))
        parts += [clip, gap]
        t += clip.duration_s + gap.duration_s
    return Stream(name, Audio.concat(parts), tuple(spans))


def negative_streams(paths: Sequence[str | Path]) -> list[Stream]:
    out = []
    for path in paths:
        for f in audio_files(path):
            audio = load_audio(f)
            if audio.duration_s == 0:
                raise InputError(f, "no audio in this file")
            out.append(Stream(f.name, Audio.concat([audio, Audio.silence(1.0)])))
    return out


def synthetic_streams(minutes: float, word: str, seed: int, say=None) -> list[Stream]:
    """``minutes`` of synthetic speech without ``word`` (sim/wake_negatives.py), one stream per
    ten minutes: stress for the second look, not a false-accept rate of real speech."""
    from sim.wake_negatives import synthetic_negatives

    return [
        Stream(f"synthetic-{n:03d}", Audio.concat([audio, Audio.silence(1.0)]))
        for n, audio in enumerate(synthetic_negatives(minutes, word, seed, say=say))
    ]


def noisy(stream: Stream, condition, seed: int) -> Stream:
    """The stream through a simulator channel (``sim.channel``). In a stream of positives each
    clip, with the gap after it, gets the condition at its own level (every speaker at the SNR
    asked for, as benchmarks mix each utterance); a negative stream as a whole. A silent
    stream stays as it is."""
    from sim.channel import active_power, apply

    if condition.snr_db is None and condition.rt60_s is None or active_power(stream.audio.samples) <= 0:
        return stream
    if not stream.spans:
        return replace(stream, audio=apply(condition, stream.audio, seed))
    cuts = [0.0] + [s.start_s for s in stream.spans[1:]] + [stream.audio.duration_s]
    parts = [apply(condition, stream.audio.slice(a, b), seed + i) for i, (a, b) in enumerate(zip(cuts, cuts[1:]))]
    return replace(stream, audio=Audio.concat(parts))


# ---------------------------------------------------------------- detectors


def listener_detections(listener, audio: Audio, chunk_s: float = 0.5) -> list[float]:
    """Stream times at which the pipeline's listener woke (every wake, whatever became of it)."""
    from stages.wake import scan

    listener.reset()
    return [c.detected_at_s for c in scan(listener, audio, chunk_s) if c.wake is not None]


class BareModel:
    """openWakeWord alone: its score for every 80 ms frame, as its README streams it."""

    def __init__(self, word: str):
        from openwakeword.model import Model

        from core.model_files import openwakeword_model

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*CUDAExecutionProvider.*")
            self.model = Model(wakeword_model_paths=[str(openwakeword_model(word))])
        self.key = next(iter(self.model.models))
        self.fresh = (
            self.model.preprocessor.melspectrogram_buffer.copy(),
            self.model.preprocessor.feature_buffer.copy(),
        )

    def scores(self, audio: Audio) -> np.ndarray:
        f = self.model.preprocessor
        f.melspectrogram_buffer, f.feature_buffer = self.fresh[0].copy(), self.fresh[1].copy()
        f.accumulated_samples = 0
        f.raw_data_buffer.clear()
        self.model.reset()
        pcm = (np.clip(audio.samples, -1, 1) * 32767).astype(np.int16)
        return np.array(
            [self.model.predict(pcm[i : i + FRAME])[self.key] for i in range(0, len(pcm) - FRAME + 1, FRAME)],
            dtype=np.float32,
        )


def model_detections(scores: np.ndarray, threshold: float, refractory_s: float) -> list[float]:
    """A detection where the score rises to ``threshold`` (the end of that frame), not within
    ``refractory_s`` of the previous one."""
    out: list[float] = []
    above = scores >= threshold
    frame_s = FRAME / PIPELINE_RATE
    for i in np.flatnonzero(above & ~np.concatenate([[False], above[:-1]])):
        t = (i + 1) * frame_s
        if not out or t - out[-1] >= refractory_s:
            out.append(round(t, 3))
    return out


def match(spans: Sequence[Span], detections: Sequence[float]) -> tuple[list[bool], int, int]:
    """(found per span, extra detections inside spans, stray detections outside every span)."""
    found = [False] * len(spans)
    extra = stray = 0
    for d in detections:
        hit = next((i for i, s in enumerate(spans) if s.start_s <= d <= s.end_s + LAG_S), None)
        if hit is None:
            stray += 1
        elif found[hit]:
            extra += 1
        else:
            found[hit] = True
    return found, extra, stray


# ---------------------------------------------------------------- the evaluation


@dataclass(frozen=True)
class EvalOptions:
    word: str = "alexa"
    thresholds: tuple[float, ...] = SWEEP
    threshold: float = 0.5  # the configured one, reported first
    refractory_s: float = 1.5
    gap_s: tuple[float, float] = DEFAULT_GAP_S
    seed: int = 0
    model: bool = False  # also the bare openWakeWord model
    split: bool = False  # report the tune and held-out halves of the positives apart


def evaluate(
    positives: Sequence[Path],
    negatives: Sequence[Stream],
    conditions: Sequence,
    wake_options,
    options: EvalOptions,
    say=lambda m: None,
    verifier=None,
) -> dict:
    """Every detector × condition × threshold; returns the report as JSON-able dict.
    ``verifier`` (stages/wake_verify.py): also the listener with the second look ("verified")."""
    from sim.channel import describe
    from stages.wake import WakeListener

    groups = {"all": list(positives)}
    if options.split:
        for f in positives:
            groups.setdefault(half_of(f.name), []).append(f)
    listener = WakeListener(wake_options)
    bare = BareModel(options.word) if options.model else None
    thresholds = sorted(set(options.thresholds) | {options.threshold})
    rows: list[Score] = []
    false_accepts: list[dict] = []  # where, at the configured threshold
    second_looks: list[dict] = []  # the wakes the verifier refused, at the configured threshold
    base = positive_stream(positives, options.gap_s, options.seed) if positives else None
    for ci, cond in enumerate(conditions):
        cid = cond.id
        pos = noisy(base, cond, options.seed + 1000 * ci) if base is not None else None
        negs = [noisy(n, cond, options.seed + 1000 * ci + j + 1) for j, n in enumerate(negatives)]
        neg_s = sum(n.audio.duration_s for n in negs)
        say(
            f"{describe(cond)}: {len(base.spans) if base else 0} positives "
            f"({pos.audio.duration_s if pos else 0:.0f} s), {neg_s / 60:.1f} min of negatives"
        )
        detectors = [("listener", None)] + ([("verified", None)] if verifier is not None else [])
        detectors += [("model", bare)] if bare is not None else []
        for name, model in detectors:
            cache = {}
            listener.verifier = verifier if name == "verified" else None
            if model is not None:
                cache = {"pos": model.scores(pos.audio) if pos else None, "neg": [model.scores(n.audio) for n in negs]}
            for thr in thresholds:
                if model is None:
                    listener.options = replace(wake_options, threshold=thr)
                    pos_det = listener_detections(listener, pos.audio) if pos else []
                    refused = {"positives": list(listener.rejected) if pos else [], "negatives": []}
                    neg_det = []
                    for n in negs:
                        neg_det.append(listener_detections(listener, n.audio))
                        refused["negatives"] += [(n.name, *r) for r in listener.rejected]
                else:
                    pos_det = model_detections(cache["pos"], thr, options.refractory_s) if pos else []
                    neg_det = [model_detections(s, thr, options.refractory_s) for s in cache["neg"]]
                found, extra, stray = match(pos.spans if pos else (), pos_det)
                fa = sum(len(d) for d in neg_det)
                for group, files in groups.items():
                    names = {f.name for f in files}
                    idx = [i for i, s in enumerate(pos.spans if pos else ()) if s.name in names]
                    rows.append(
                        Score(
                            name,
                            thr,
                            cid if group == "all" else f"{cid}/{group}",
                            len(idx),
                            sum(not found[i] for i in idx),
                            extra if group == "all" else 0,
                            stray if group == "all" else 0,
                            neg_s,
                            fa,
                        )
                    )
                if thr == options.threshold:
                    missed = [pos.spans[i].name for i, ok in enumerate(found) if not ok] if pos else []
                    log.info("%s %s @%.2f missed: %s", cid, name, thr, ", ".join(missed))
                    where = {n.name: d for n, d in zip(negs, neg_det) if d}
                    if where:
                        false_accepts.append({"detector": name, "condition": cid, "at": where})
                    if name == "verified":
                        second_looks.append(_refusals(cid, pos, refused))
    listener.options, listener.verifier = wake_options, None
    return {
        "word": options.word,
        "threshold": options.threshold,
        "gap_s": list(options.gap_s),
        "seed": options.seed,
        "lag_s": LAG_S,
        "positives": len(positives),
        "negative_s": round(sum(n.audio.duration_s for n in negatives), 2),
        "conditions": [c.id for c in conditions],
        "rows": [r.as_json() for r in rows],
        "false_accepts": false_accepts,
        "refused": second_looks,
    }


def _refusals(condition: str, pos, refused: dict) -> dict:
    """The verifier's refusals on one condition: positives by clip, negatives by stream time,
    each with what the recognizer heard."""

    def clip_at(t: float) -> str:
        return next((s.name for s in pos.spans if s.start_s <= t <= s.end_s + LAG_S), f"{t:.2f} s")

    return {
        "condition": condition,
        "positives": [{"clip": clip_at(t), "heard": c.heard, "score": c.score} for t, c in refused["positives"]],
        "negatives": [
            {"stream": n, "at_s": round(t, 2), "heard": c.heard, "score": c.score} for n, t, c in refused["negatives"]
        ],
    }


# ---------------------------------------------------------------- the report


def table(report: dict) -> str:
    lines = []
    at = report["threshold"]
    lines.append(
        f"wake word {report['word']!r}: {report['positives']} positives "
        f"({report['gap_s'][0]:g}-{report['gap_s'][1]:g} s apart), "
        f"{report['negative_s'] / 60:.1f} min of negatives; threshold {at:g}"
    )
    lines.append(
        f"{'condition':<22} {'detector':<9} {'thr':>4}  {'FRR':>6} {'(95 %)':>15}  {'FA/h':>6} "
        f"{'(95 %)':>15}  missed/n  extra stray FA"
    )
    for r in report["rows"]:
        frr = "-" if r["frr"] is None else f"{r['frr']:.1%}"
        frr_ci = "" if r["frr_95"] is None else f"{r['frr_95'][0]:.1%}-{r['frr_95'][1]:.1%}"
        fa = "-" if r["fa_per_hour"] is None else f"{r['fa_per_hour']:.2f}"
        fa_ci = "" if r["fa_per_hour_95"] is None else f"{r['fa_per_hour_95'][0]:.2f}-{r['fa_per_hour_95'][1]:.2f}"
        mark = "*" if r["threshold"] == at else " "
        lines.append(
            f"{r['condition']:<22} {r['detector']:<9} {r['threshold']:>4g}{mark} {frr:>6} {frr_ci:>15}  "
            f"{fa:>6} {fa_ci:>15}  {r['missed']:>3}/{r['positives']:<4} {r['extra']:>5} {r['stray']:>5} "
            f"{r['false_accepts']:>2}"
        )
    for fa in report.get("false_accepts", ()):
        at = "; ".join(f"{name} at {', '.join(f'{t:.2f}' for t in times)} s" for name, times in fa["at"].items())
        lines.append(f"false accepts ({fa['detector']}, {fa['condition']}, threshold {report['threshold']:g}): {at}")
    for r in report.get("refused", ()):
        said = [f"{p['clip']} heard {p['heard']!r} ({p['score']:g})" for p in r["positives"]]
        said += [f"{n['stream']} at {n['at_s']:.2f} s heard {n['heard']!r} ({n['score']:g})" for n in r["negatives"]]
        if said:
            lines.append(f"refused by the second look ({r['condition']}): " + "; ".join(said))
    return "\n".join(lines)


def det_curve(report: dict, path: Path) -> Path:
    """FRR against false accepts per hour over the thresholds, one line per detector and
    condition (the "all" positives). PNG with matplotlib, else an SVG drawn here."""
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for r in report["rows"]:
        if "/" in r["condition"] or r["frr"] is None or r["fa_per_hour"] is None:
            continue
        curves.setdefault(f"{r['detector']} {r['condition']}", []).append((r["fa_per_hour"], r["frr"], r["threshold"]))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _svg_curve(curves, path.with_suffix(".svg"))
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for label, pts in curves.items():
        pts = sorted(pts, key=lambda p: p[2])
        ax.plot(
            [p[0] for p in pts],
            [100 * p[1] for p in pts],
            marker="o",
            label=label,
            linestyle="--" if label.startswith("model") else "-",
        )
        for fa, frr, thr in pts:
            ax.annotate(f"{thr:g}", (fa, 100 * frr), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("false rejects (%)")
    ax.set_title(f"DET: wake word {report['word']!r} (threshold marked on each point)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _svg_curve(curves: dict, path: Path) -> Path:
    w, h, m = 560, 380, 50
    fa_max = max([p[0] for pts in curves.values() for p in pts] + [1.0])
    frr_max = max([p[1] for pts in curves.values() for p in pts] + [0.05])
    colors = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
    body = [
        f'<rect x="{m}" y="{m / 2}" width="{w - 1.5 * m}" height="{h - 1.5 * m}" fill="none" stroke="#999"/>',
        f'<text x="{w / 2}" y="{h - 8}" font-size="12" text-anchor="middle">false accepts per hour (0-{fa_max:.2g})</text>',
        f'<text x="12" y="{h / 2}" font-size="12" transform="rotate(-90 12 {h / 2})" text-anchor="middle">'
        f"false rejects (0-{frr_max:.1%})</text>",
    ]
    for k, (label, pts) in enumerate(curves.items()):
        c = colors[k % len(colors)]
        xy = [
            (m + (w - 1.5 * m) * p[0] / fa_max, h - m - (h - 1.5 * m) * p[1] / frr_max)
            for p in sorted(pts, key=lambda p: p[2])
        ]
        body.append(f'<polyline fill="none" stroke="{c}" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in xy)}"/>')
        body.append(f'<text x="{w - m}" y="{m + 14 * k}" font-size="11" fill="{c}" text-anchor="end">{label}</text>')
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">{"".join(body)}</svg>\n', encoding="utf-8"
    )
    return path


def write_report(report: dict, folder: Path) -> list[Path]:
    """``report.json``, ``report.txt`` and the DET curve in ``folder``."""
    import json

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{folder}: cannot write the report there ({err})") from None
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (folder / "report.txt").write_text(table(report) + "\n", encoding="utf-8")
    return [folder / "report.json", folder / "report.txt", det_curve(report, folder / "det")]


__all__ = [
    "EvalOptions",
    "Score",
    "Span",
    "Stream",
    "evaluate",
    "half_of",
    "match",
    "negative_streams",
    "positive_stream",
    "table",
    "write_report",
]

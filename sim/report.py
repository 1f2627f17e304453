"""``assistant report DIR``: plots and one HTML page summarizing a trace folder.

Failure-point distribution, WER per acoustic condition, defect rate, per-stage latency (median
and p95), and — once a labeler has written predictions — the confusion matrix of predicted
against oracle failure points.
"""

from __future__ import annotations

import html
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from core.errors import UserError
from core.pipeline import FAILURE_POINTS as CLASSES
from core.wer import normalize_words
from hooks.trace_reader import iter_records, turn_ends
from sim.asr_errors import align

log = logging.getLogger(__name__)


def heard_words(record: dict) -> tuple[str, int, int] | None:
    """(acoustic condition, word errors, reference words) of a ``turn_end`` whose command the
    ASR — or, at text fidelity, the ASR error model — heard; None when no words were heard
    or nobody knows what was said."""
    stages, gold = record.get("stages") or {}, record.get("gold") or {}
    asr = (stages.get("asr") or {}).get("output") or {}
    if not gold.get("transcript") or asr.get("text") is None or asr.get("source") == "gold":
        return None
    utt = (stages.get("wake") or {}).get("output") or {}
    ref, hyp = normalize_words(gold["transcript"]), normalize_words(asr["text"])
    return utt.get("condition") or "n/a", sum(1 for a, b in align(ref, hyp) if a != b), len(ref)


def compare_wer(audio_paths, text_paths, tolerance: float = 0.2, resamples: int = 2000) -> list[dict]:
    """Per acoustic condition: the word error rate of audio-fidelity traces (the real ASR)
    against text-fidelity ones (the fitted error model), the relative difference, and a 95 %
    bootstrap interval over the audio run's utterances: how far its own WER could move by
    chance, which says whether a miss is the model's or the sample's."""

    def per_condition(paths) -> dict[str, list[tuple[int, int]]]:
        out: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for r in turn_ends(paths):
            heard = heard_words(r)
            if heard is not None and heard[2]:
                out[heard[0]].append(heard[1:])
        return out

    audio, text = per_condition(audio_paths), per_condition(text_paths)
    rng = np.random.default_rng(0)
    rows = []
    for condition in sorted(set(audio) & set(text)):
        a, t = np.array(audio[condition]), np.array(text[condition])
        a_wer, t_wer = a[:, 0].sum() / a[:, 1].sum(), t[:, 0].sum() / t[:, 1].sum()
        picks = rng.integers(0, len(a), size=(resamples, len(a)))
        boot = a[picks, 0].sum(axis=1) / a[picks, 1].sum(axis=1)
        relative = (t_wer - a_wer) / a_wer if a_wer else None
        rows.append(
            {
                "condition": condition,
                "audio_wer": round(float(a_wer), 4),
                "audio_words": int(a[:, 1].sum()),
                "audio_utterances": len(a),
                "audio_ci95": [round(float(np.percentile(boot, 2.5)), 4), round(float(np.percentile(boot, 97.5)), 4)],
                "text_wer": round(float(t_wer), 4),
                "text_words": int(t[:, 1].sum()),
                "relative": None if relative is None else round(float(relative), 4),
                "within": bool(relative is not None and abs(relative) <= tolerance),
            }
        )
    return rows


def collect(paths) -> dict:
    ends = turn_ends(paths)
    if not ends:
        raise UserError("no turns in those traces")
    oracle = Counter()
    predicted_pairs = []
    words: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    defects = defaultdict(lambda: [0, 0])
    for r in ends:
        labels = r.get("labels") or {}
        o = (labels.get("oracle") or {}).get("failure_point")
        p = (labels.get("predicted") or {}).get("failure_point")
        if o:
            oracle[o] += 1
        if o and p:
            predicted_pairs.append((o, p))
        utt = ((r.get("stages") or {}).get("wake") or {}).get("output") or {}
        condition = utt.get("condition") or "n/a"
        heard = heard_words(r)
        if heard is not None:
            words[heard[0]][0] += heard[1]
            words[heard[0]][1] += heard[2]
        if o:
            defects[condition][0] += o != "correct"
            defects[condition][1] += 1
    latency = defaultdict(list)
    for rec in iter_records(paths):
        if rec["event"] == "stage_end":
            latency[rec["stage"]].append(rec.get("duration_ms", 0.0))
    return {
        "turns": len(ends),
        "oracle": oracle,
        "pairs": predicted_pairs,
        "wer": {c: e / n for c, (e, n) in words.items() if n},
        "words": {c: n for c, (_e, n) in words.items()},
        "defect_rate": {c: d / n for c, (d, n) in defects.items() if n},
        "latency": {s: (float(np.median(v)), float(np.percentile(v, 95)), len(v)) for s, v in latency.items() if v},
    }


def _bar(ax, labels, values, title, fmt="{:.0%}"):
    bars = ax.bar(range(len(labels)), values, color="#4c72b0")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_title(title)
    for b, v in zip(bars, values):
        ax.annotate(
            fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8
        )


def render(paths, out_dir: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = collect(paths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = []

    def save(fig, name, caption):
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        images.append((name, caption))

    total = sum(data["oracle"].values())
    if total:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        _bar(
            ax,
            list(CLASSES),
            [data["oracle"].get(c, 0) / total for c in CLASSES],
            f"Failure points (oracle), {total} turns",
        )
        save(fig, "failure_points.png", "Share of turns by oracle failure point.")
    if data["wer"]:
        conds = sorted(data["wer"])
        fig, ax = plt.subplots(figsize=(6, 3.5))
        _bar(ax, conds, [data["wer"][c] for c in conds], "Word error rate by condition")
        save(fig, "wer_by_condition.png", "ASR word error rate per acoustic condition (reference: what the user said).")
    if data["defect_rate"]:
        conds = sorted(data["defect_rate"])
        fig, ax = plt.subplots(figsize=(6, 3.5))
        _bar(ax, conds, [data["defect_rate"][c] for c in conds], "Defect rate by condition")
        save(fig, "defect_rate.png", "Share of turns whose outcome did not match the user's request.")
    if data["latency"]:
        stages = [s for s in ("wake", "asr", "nlu", "resolve", "respond", "tts") if s in data["latency"]]
        p50 = [data["latency"][s][0] for s in stages]
        p95 = [data["latency"][s][1] for s in stages]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = np.arange(len(stages))
        ax.bar(x - 0.2, p50, 0.4, label="median")
        ax.bar(x + 0.2, p95, 0.4, label="p95")
        ax.set_xticks(x)
        ax.set_xticklabels(stages)
        ax.set_ylabel("ms")
        ax.set_yscale("log")
        ax.set_title("Per-stage latency")
        ax.legend()
        save(fig, "stage_latency.png", "Per-stage latency from the traces (log scale).")
    if data["pairs"]:
        idx = {c: i for i, c in enumerate(CLASSES)}
        m = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
        for o, p in data["pairs"]:
            m[idx[o], idx[p]] += 1
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        ax.imshow(m, cmap="Blues")
        ax.set_xticks(range(len(CLASSES)))
        ax.set_xticklabels(CLASSES, rotation=30)
        ax.set_yticks(range(len(CLASSES)))
        ax.set_yticklabels(CLASSES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("oracle")
        for i in range(len(CLASSES)):
            for j in range(len(CLASSES)):
                ax.text(
                    j,
                    i,
                    str(m[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if m[i, j] > m.max() / 2 else "black",
                )
        acc = np.trace(m) / max(m.sum(), 1)
        ax.set_title(f"Failure point: predicted vs oracle (accuracy {acc:.1%})")
        save(fig, "confusion_matrix.png", "Learned failure-point labels against the oracle's.")
    _page(out, data, images)
    return out / "index.html"


def _page(out: Path, data: dict, images) -> None:
    rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{data['oracle'].get(c, 0)}</td></tr>" for c in CLASSES)
    wer = "".join(
        f"<tr><td>{html.escape(c)}</td><td>{v:.1%}</td><td>{data['words'][c]}</td></tr>"
        for c, v in sorted(data["wer"].items())
    )
    lat = "".join(
        f"<tr><td>{s}</td><td>{p50:.1f}</td><td>{p95:.1f}</td><td>{n}</td></tr>"
        for s, (p50, p95, n) in data["latency"].items()
    )
    figs = "".join(
        f'<figure><img src="{name}" alt="{html.escape(cap)}"><figcaption>{html.escape(cap)}</figcaption>'
        f"{_view_links(name, data)}</figure>"
        for name, cap in images
    )
    if images:
        figs += (
            '<p class="view-note">The links under each figure open the turns behind it in the trace browser: '
            f"<code>assistant view DIR</code> writes it to DIR/view, beside this report ({html.escape(VIEW_PAGE)}).</p>"
        )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Trace report</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}figure{{display:inline-block;margin:1em}}</style></head>
<body><h1>Trace report</h1><p>{data["turns"]} turns.</p>
<h2>Failure points (oracle)</h2><table><tr><th>class</th><th>turns</th></tr>{rows}</table>
<h2>Word error rate by condition</h2><table><tr><th>condition</th><th>WER</th><th>words</th></tr>{wer}</table>
<h2>Per-stage latency (ms)</h2><table><tr><th>stage</th><th>median</th><th>p95</th><th>n</th></tr>{lat}</table>
{figs}<script type="application/json" id="data">{json.dumps({k: v for k, v in data.items() if k != "pairs"}, default=str)}</script>
</body></html>"""
    (out / "index.html").write_text(page, encoding="utf-8")


# Links from the figures to the turns behind them, in the trace browser that `assistant view DIR`
# writes to DIR/view (this page is DIR/report/index.html). hooks.view.href builds the URL hash,
# so both sides agree on its format.
VIEW_PAGE = "../view/index.html"


def _view_links(name: str, data: dict) -> str:
    from hooks.view import href

    links: list[tuple[str, str]] = []
    if name == "failure_points.png":
        links = [(href(VIEW_PAGE, fp=c), f"{c}: {data['oracle'][c]} turns") for c in CLASSES if data["oracle"].get(c)]
    elif name == "wer_by_condition.png":
        links = [(href(VIEW_PAGE, cond=c), f"{c}: WER {v:.1%}") for c, v in sorted(data["wer"].items())]
    elif name == "defect_rate.png":
        links = [
            (href(VIEW_PAGE, cond=c, defect=1), f"{c}: defects {v:.1%}") for c, v in sorted(data["defect_rate"].items())
        ]
    elif name == "stage_latency.png":
        links = [
            (href(VIEW_PAGE, sort=s), f"slowest {s} first")
            for s in ("wake", "asr", "nlu", "resolve", "respond", "tts")
            if s in data["latency"]
        ]
    elif name == "confusion_matrix.png":
        pairs = Counter(data["pairs"])
        wrong = sum(n for (o, p), n in pairs.items() if o != p)
        links = [(href(VIEW_PAGE, mismatch=1), f"predicted ≠ oracle: {wrong} turns")] + [
            (href(VIEW_PAGE, fp=o, pred=p), f"oracle {o}, predicted {p}: {n}")
            for (o, p), n in sorted(pairs.items(), key=lambda kv: -kv[1])
            if o != p
        ]
    if not links:
        return ""
    items = "".join(f'<li><a href="{html.escape(url)}">{html.escape(text)}</a></li>' for url, text in links)
    return f'<ul class="view-links" title="open these turns in the trace browser">{items}</ul>'

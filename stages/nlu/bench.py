"""NLU benchmark: training time of a domain's model and per-utterance inference latency.

:func:`benchmark` is what ``tools/bench_nlu.py`` prints and what ``assistant bench`` can call.
Latency is measured on the whole NLU stage (model, value normalization, out-of-domain
decision), one utterance at a time as the pipeline runs it, after a warm-up.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

from core.wer import percentile

log = logging.getLogger(__name__)


def _distinct_texts(domain) -> list[str]:
    """Real commands the model never saw (the dev part of the spec's corpora) when the spec has
    them, else generated ones: texts the prediction and embedding caches have not seen."""
    from core.errors import InputError
    from stages.nlu.corpora import read_domain_corpus
    from stages.nlu.recipes import Source, evaluation_examples

    texts = []
    for corpus in domain.training_corpora:
        try:
            texts += [it.text for it in read_domain_corpus(corpus.file, "dev")]
        except InputError:  # a corpus without a dev part
            pass
    if not texts:
        texts = [ex.text for ex in evaluation_examples(Source("spec", Path(domain.source)))]
    return list(dict.fromkeys(texts))


def benchmark(
    domain: str = "home",
    cache_root: str | Path | None = None,
    train: bool = True,
    utterances: int = 300,
    warmup: int = 20,
    epochs: int | None = None,
) -> dict:
    """Train (into a fresh temporary cache when ``train``) and time inference.

    Returns ``{"domain", "train_s", "examples", "n", "median_ms", "p90_ms", "mean_ms",
    "threads"}``; ``train_s`` is None when a cached model was loaded."""
    import datetime as dt

    from core.domain import load_domain
    from stages.nlu.recipes import spec_config
    from stages.nlu.stage import NluOptions, NluStage, load_or_train

    d = load_domain(domain)
    config = spec_config(epochs)
    tmp = None
    if train or cache_root is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-nlu-")
        cache_root = tmp.name
    try:
        started = time.perf_counter()
        model = load_or_train(d, Path(cache_root), config)
        total_s = time.perf_counter() - started
        stage = NluStage(d, model, NluOptions())
        texts = _distinct_texts(d)
        texts = (texts * (1 + utterances // max(1, len(texts))))[:utterances]

        class _Ctx:
            now = dt.datetime(2026, 3, 14, 8, 0)

        for text in texts[:warmup]:
            stage.interpret(text, _Ctx)
        times = []
        for text in texts:
            t0 = time.perf_counter()
            stage.interpret(text, _Ctx)
            times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        if tmp is not None:
            tmp.cleanup()
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        threads = None
    return {
        "domain": d.name,
        "train_s": round(float(model.meta.get("train_s", 0.0)), 1) if train else None,
        "load_or_train_s": round(total_s, 1),
        "examples": model.meta.get("examples"),
        "n": len(times),
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": percentile(times, 0.9, digits=2),
        "mean_ms": round(statistics.fmean(times), 2),
        "threads": threads,
    }

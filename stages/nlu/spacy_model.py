"""A spaCy pipeline for intents (text classification) and slots (named-entity spans).

Trained from examples — generated from a domain spec or read from an annotated corpus — and
saved with spaCy's own serialization (config + msgpack weights: loading runs no pickled code).
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from stages.nlu.models import (
    META_FILE,
    PREDICTION_CACHE,
    Prediction,
    epoch_line,
    fit_temperature,
    read_meta,
    reproject,
    temperature_scaled,
    trained_meta,
)
from stages.nlu.span_types import SpanTyper
from stages.nlu.text import prepare

log = logging.getLogger(__name__)


_ARCHITECTURES: dict[str, Callable] = {}


def registry_architecture(name: str):
    """Keeps ``name``'s builder for spaCy's registry, where :func:`_spacy` puts it when a
    pipeline is first loaded or trained: importing spaCy takes over a second of a cold start,
    and the default model does not use it."""

    def keep(build: Callable) -> Callable:
        _ARCHITECTURES[name] = build
        return build

    return keep


def _spacy():
    """spaCy, imported now, with this module's architectures in its registry."""
    import spacy

    for name, build in _ARCHITECTURES.items():
        spacy.registry.architectures.register(name, func=build)
    return spacy


TRAINER_VERSION = 6


@dataclass(frozen=True)
class TrainConfig:
    # Measured on the home domain (2 cores): 6 epochs at batch 32 train in ~32 s with 99.5 %
    # intent accuracy on held-out generated text. spaCy's default textcat ensemble includes a
    # sparse bag-of-n-grams layer whose dense Adam update made training 6x slower.
    epochs: int = 8
    dropout: float = 0.2
    batch_size: int = 32
    width: int = 64
    depth: int = 2
    embed_rows: int = 2000
    window: int = 1
    lowercase: bool = True  # False keeps casing (written corpora); transcripts are lower-cased
    word_vectors: bool = False  # MiniLM word-piece embeddings among the token features
    ner_word_vectors: bool | None = None  # the slot tagger's own choice (None: as word_vectors)
    context: bool = False  # append a sentence-wide summary to every token (see _global_context)
    ner_hidden: int = 64
    textcat_hidden: int = 0  # a Maxout layer before the softmax (0: none)
    # all-MiniLM-L6-v2 sentence embeddings as extra intent features: they carry what a small
    # corpus cannot teach (SLURP), but cost ~15 ms per utterance on 2 cores.
    sentence_embeddings: bool = False
    # the int8 MiniLM (4 ms a request; a domain spec's model must answer in 10 ms) or the
    # float32 one (~12 ms; written corpora score ~2 points higher with it on SLURP)
    int8_sentences: bool = False
    # + a sparse linear model over word uni/bigrams: helps small corpora; its dense Adam update
    # costs time on large ones.
    bow: bool = False
    textcat_cnn: bool = True  # False: intents from the sentence embedding (+ bow) alone
    learn_rate: float = 0.001
    averages: bool = False  # keep the running average of the weights (Polyak averaging)
    min_temperature: float = 1.0  # calibration never sharpens below this
    seed: int = 0


def _tok2vec(cfg: TrainConfig, word_vectors: bool | None = None) -> dict:
    return {
        "@architectures": "assistant.Tok2Vec.v1",
        "width": cfg.width,
        "depth": cfg.depth,
        "embed_size": cfg.embed_rows,
        "window_size": cfg.window,
        "maxout_pieces": 3,
        "context": cfg.context,
        "word_vectors": cfg.word_vectors if word_vectors is None else word_vectors,
    }


def _textcat_model(cfg: TrainConfig) -> dict:
    return {
        "@architectures": "assistant.TextCat.v1",
        "tok2vec": _tok2vec(cfg),
        "sentence_embeddings": cfg.sentence_embeddings,
        "hidden": cfg.textcat_hidden,
        "int8_sentences": cfg.int8_sentences,
        "bow": cfg.bow,
        "cnn": cfg.textcat_cnn or not cfg.sentence_embeddings,
    }


def _ner_model(cfg: TrainConfig) -> dict:
    return {
        "@architectures": "spacy.TransitionBasedParser.v2",
        "state_type": "ner",
        "extra_state_tokens": False,
        "hidden_width": cfg.ner_hidden,
        "maxout_pieces": 2,
        "use_upper": True,
        "nO": None,
        "tok2vec": _tok2vec(cfg, cfg.ner_word_vectors),
    }


def _global_context():
    """Tokens → tokens ⊕ the mean of their sentence: a CNN sees a few words either side, but a
    slot's label often depends on the whole request ("play X" vs "add X to my playlist")."""
    from thinc.api import Model

    def forward(model, Xs, is_train):
        xp = model.ops.xp
        Ys = []
        for X in Xs:
            mean = X.mean(axis=0, keepdims=True) if len(X) else xp.zeros((1, X.shape[1]), dtype=X.dtype)
            Ys.append(xp.hstack([X, xp.repeat(mean, len(X), axis=0)]))

        def backprop(dYs):
            dXs = []
            for X, dY in zip(Xs, dYs):
                d = X.shape[1]
                dXs.append(dY[:, :d] + dY[:, d:].sum(axis=0, keepdims=True) / max(1, len(X)))
            return dXs

        return Ys, backprop

    return Model("global_context", forward)


def _word_vector_layer():
    """Docs → each token's MiniLM word-piece embedding (fixed; see stages/nlu/pretrained.py)."""
    from thinc.api import Model

    from stages.nlu.pretrained import WORD_DIM, word_vectors

    def forward(model, docs, is_train):
        Ys = [model.ops.asarray2f(word_vectors([t.text for t in doc])) for doc in docs]
        return Ys, lambda dYs: []

    return Model("minilm_word_vectors", forward, dims={"nO": WORD_DIM})


@registry_architecture("assistant.Tok2Vec.v1")
def build_tok2vec(
    width: int,
    depth: int,
    embed_size: int,
    window_size: int,
    maxout_pieces: int,
    context: bool,
    word_vectors: bool = False,
):
    """spaCy's hash-embedding CNN (NORM, PREFIX, SUFFIX, SHAPE), optionally with MiniLM word
    vectors among the embeddings and a residual layer that mixes in the sentence mean."""
    from spacy.ml.featureextractor import FeatureExtractor
    from spacy.ml.models.tok2vec import MaxoutWindowEncoder, MultiHashEmbed
    from thinc.api import HashEmbed, Linear, Maxout, chain, concatenate, list2ragged, ragged2list, residual, with_array

    from stages.nlu.pretrained import WORD_DIM

    attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
    rows = [embed_size, embed_size // 2, embed_size // 2, embed_size // 2]
    if word_vectors:
        tables = [HashEmbed(width, n, column=i, seed=8 + i, dropout=0.0) for i, n in enumerate(rows)]
        hashed = chain(FeatureExtractor(attrs), list2ragged(), with_array(concatenate(*tables)))
        pretrained = chain(_word_vector_layer(), list2ragged(), with_array(Linear(width, WORD_DIM)))
        embed = chain(
            concatenate(hashed, pretrained),
            with_array(Maxout(width, width * (len(rows) + 1), nP=3, dropout=0.0, normalize=True)),
            ragged2list(),
        )
    else:
        embed = MultiHashEmbed(width=width, attrs=attrs, rows=rows, include_static_vectors=False)
    encode = MaxoutWindowEncoder(width=width, window_size=window_size, maxout_pieces=maxout_pieces, depth=depth)
    model = chain(embed, encode)
    if context:
        mix = residual(
            chain(_global_context(), with_array(Maxout(nO=width, nI=2 * width, nP=maxout_pieces, normalize=True)))
        )
        model = chain(model, mix)
    model.set_dim("nO", width)
    model.set_ref("embed", embed)
    model.set_ref("encode", encode)
    return model


SENTENCE_DIM = 384
_SENTENCE_CACHE: dict[tuple[tuple, str], object] = {}
_SENTENCE_CACHE_MAX = 100_000


def sentence_vectors(texts: Sequence[str], exact: bool = True, int8: bool = True):
    """MiniLM embeddings (int8, see stages/nlu/pretrained.py; scaled to unit variance per
    dimension), cached by text and mode: training sees every text once per epoch, and a
    batched training vector never stands in for the exact one."""
    import numpy as np

    from core.embeddings import embed as embed_float
    from stages.nlu.pretrained import sentence_embeddings as embed_int8

    kind = ("int8", exact) if int8 else ("float32", True)  # float32 batches are exact enough
    missing = [t for t in dict.fromkeys(texts) if (kind, t) not in _SENTENCE_CACHE]
    if missing:
        if len(_SENTENCE_CACHE) + len(missing) > _SENTENCE_CACHE_MAX:
            _SENTENCE_CACHE.clear()
        vectors = embed_int8(missing, exact=exact) if int8 else embed_float(missing)
        for t, v in zip(missing, vectors * np.float32(SENTENCE_DIM**0.5)):
            _SENTENCE_CACHE[(kind, t)] = v
    if not texts:
        return np.zeros((0, SENTENCE_DIM), dtype="float32")
    return np.stack([_SENTENCE_CACHE[(kind, t)] for t in texts])


@registry_architecture("assistant.SentenceEmbedding.v1")
def build_sentence_embedding(int8: bool = False):
    """Docs → their all-MiniLM-L6-v2 sentence embedding (fixed: no weights of its own here)."""
    from thinc.api import Model

    def forward(model, docs, is_train):
        # training batches for speed; anything else encodes each text exactly (features.py)
        Y = model.ops.asarray2f(sentence_vectors([d.text for d in docs], exact=not is_train, int8=int8))
        return Y, lambda dY: []

    return Model("sentence_embedding", forward, dims={"nO": SENTENCE_DIM})


@registry_architecture("assistant.TextCat.v1")
def build_textcat(
    tok2vec,
    sentence_embeddings: bool,
    hidden: int,
    bow: bool = False,
    bow_rows: int = 2**16,
    int8_sentences: bool = False,
    cnn: bool = True,
    nO: int | None = None,
):
    """Mean- and max-pooled token vectors (⊕ the sentence embedding) → softmax over intents."""
    from functools import partial

    from spacy.ml.models.textcat import NEG_VALUE, resize_and_set_ref
    from thinc.api import Maxout, Softmax, chain, concatenate, list2ragged, reduce_max, reduce_mean
    from thinc.layers import resizable
    from thinc.layers.resizable import resize_linear_weighted

    width = tok2vec.get_dim("nO")
    pooled = chain(tok2vec, list2ragged(), concatenate(reduce_max(), reduce_mean()))
    n_in = 2 * width
    features = pooled
    if sentence_embeddings and not cnn:
        features, n_in = build_sentence_embedding(int8_sentences), SENTENCE_DIM
    elif sentence_embeddings:
        features = concatenate(pooled, build_sentence_embedding(int8_sentences))
        n_in += SENTENCE_DIM
    if hidden:
        features = chain(features, Maxout(nO=hidden, nI=n_in, nP=2, normalize=True, dropout=0.0))
        n_in = hidden
    if bow:
        # + a sparse linear model over hashed word uni- and bigrams (what TF-IDF logistic
        # regression knows): logits added, then the softmax. Labels are fixed before training.
        from spacy.attrs import LOWER
        from spacy.ml.extract_ngrams import extract_ngrams
        from thinc.api import Linear, SparseLinear_v2, add, softmax_activation

        output = Linear(nO=nO, nI=n_in)
        sparse = chain(extract_ngrams(2, attr=LOWER), SparseLinear_v2(nO=nO, length=bow_rows))
        model = chain(add(chain(features, output), sparse), softmax_activation())
    else:
        output = Softmax(nO=nO, nI=n_in)
        resizable_output = resizable(
            output, resize_layer=partial(resize_linear_weighted, fill_defaults={"b": NEG_VALUE, "W": 0})
        )
        model = chain(features, resizable_output)
        model.attrs["resize_output"] = partial(resize_and_set_ref, resizable_layer=resizable_output)
    model.set_ref("output_layer", output)
    if cnn or not sentence_embeddings:
        model.set_ref("tok2vec", tok2vec)
    model.attrs["multi_label"] = False
    if nO is not None:
        model.set_dim("nO", nO)
    return model


class SpacyNlu:
    """Wraps a trained spaCy ``Language`` with the project's text preparation."""

    def __init__(self, nlp, meta: dict, span_typer: "SpanTyper | None" = None):
        self.nlp = nlp
        self.meta = meta
        self.span_typer = span_typer  # types the tagger's names from their meaning (optional)
        # Predictions are immutable and a function of the text alone; simulated users and the
        # oracle's counterfactual re-runs say the same sentences again and again.
        self._predict_prepared = functools.lru_cache(maxsize=PREDICTION_CACHE)(self._predict_uncached)

    @property
    def name(self) -> str:
        return self.meta.get("name", "spacy-nlu")

    @property
    def lowercase(self) -> bool:
        return bool(self.meta.get("lowercase", True))

    def prepare(self, text: str) -> str:
        """The text as this model reads it (spans in predictions refer to it)."""
        return prepare(text, self.lowercase)

    def warm(self) -> None:
        """Load the pretrained encoders the model reads (MiniLM word pieces, the sentence
        encoder) and run them once: seconds that would otherwise fall on the first request."""
        from stages.nlu.pretrained import word_vectors

        config = self.meta.get("config") or {}
        if config.get("word_vectors") or config.get("ner_word_vectors"):
            word_vectors(["warm"])
        if config.get("sentence_embeddings"):
            sentence_vectors(["warm up"], int8=bool(config.get("int8_sentences")))

    # inference ----------------------------------------------------------------------
    def predict(self, text: str) -> Prediction:
        return self._predict_prepared(self.prepare(text))

    def _predict_uncached(self, prepared: str) -> Prediction:
        return self._prediction(self.nlp(prepared))

    def predict_many(self, texts: Sequence[str], batch_size: int = 256) -> list[Prediction]:
        docs = self.nlp.pipe((self.prepare(t) for t in texts), batch_size=batch_size)
        return [self._prediction(doc) for doc in docs]

    def _prediction(self, doc) -> Prediction:
        cats = temperature_scaled(doc.cats, float(self.meta.get("temperature", 1.0) or 1.0))
        ranked = sorted(cats.items(), key=lambda kv: -kv[1])
        spans = tuple((e.start_char, e.end_char, e.label_) for e in doc.ents)
        return Prediction(doc.text, tuple((k, float(v)) for k, v in ranked), spans)

    # persistence --------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.nlp.to_disk(path)
        if self.span_typer is not None:
            self.span_typer.save(path)
        (path / META_FILE).write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> "SpacyNlu":
        spacy = _spacy()
        path = Path(path)
        return cls(spacy.load(path), read_meta(path), SpanTyper.load(path))

    # training -----------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        examples: Iterable,
        intents: Sequence[str],
        labels: Sequence[str],
        config: TrainConfig | None = None,
        meta: dict | None = None,
        calibration: Sequence | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> "SpacyNlu":
        """Train from objects with ``text``, ``intent`` and ``spans`` ((start, end, label)).

        ``calibration``: held-out examples on which the intent temperature is fitted;
        ``progress`` hears one line per epoch."""
        spacy = _spacy()
        from spacy.util import fix_random_seed, minibatch
        from thinc.api import Adam

        config = config or TrainConfig()
        fix_random_seed(config.seed)
        rng = random.Random(config.seed)
        nlp = spacy.blank("en")
        if intents:
            textcat = nlp.add_pipe("textcat", config={"model": _textcat_model(config)})
            for intent in intents:
                textcat.add_label(intent)
        if labels:
            ner = nlp.add_pipe("ner", config={"model": _ner_model(config)})
            for label in labels:
                ner.add_label(label)

        train = _spacy_examples(nlp, examples, intents, config.lowercase)
        if not train:
            raise ValueError("no training examples")

        started = time.perf_counter()
        optimizer = Adam(learn_rate=config.learn_rate, L2=1e-6, grad_clip=1.0, use_averages=config.averages)
        optimizer = nlp.initialize(lambda: train, sgd=optimizer)
        for epoch in range(config.epochs):
            rng.shuffle(train)
            losses: dict = {}
            for batch in minibatch(train, size=config.batch_size):
                nlp.update(batch, drop=config.dropout, sgd=optimizer, losses=losses)
            log.debug("epoch %d losses %s", epoch, {k: round(v, 3) for k, v in losses.items()})
            if progress is not None:
                progress(epoch_line(epoch, config.epochs, len(train), time.perf_counter() - started))
        if config.averages:
            # Keep the running averages of the weights (steadier than the last update's).
            with nlp.use_params(optimizer.averages):
                weights = {name: proc.model.to_bytes() for name, proc in nlp.pipeline}
            for name, proc in nlp.pipeline:
                proc.model.from_bytes(weights[name])
        elapsed = time.perf_counter() - started
        info = trained_meta(meta, TRAINER_VERSION, config, intents, labels, len(train), elapsed)
        model = cls(nlp, info)
        if calibration and intents:
            model.meta["temperature"] = model.fit_temperature(calibration, config.min_temperature)
        log.info("trained NLU on %d examples in %.1f s", len(train), elapsed)
        return model

    def fit_temperature(self, examples: Sequence, minimum: float = 1.0) -> float:
        """The softmax temperature that best fits held-out ``examples`` (models.fit_temperature)."""

        def raw_probs(texts: list[str]) -> list[dict]:
            return [d.cats for d in self.nlp.pipe(self.prepare(t) for t in texts)]

        return fit_temperature(examples, self.meta.get("intents") or (), raw_probs, minimum)


def _spacy_examples(nlp, examples: Iterable, intents: Sequence[str], lowercase: bool) -> list:
    from spacy.training import Example as SpacyExample

    out, dropped = [], 0
    for ex in examples:
        text = prepare(ex.text, lowercase)
        doc = nlp.make_doc(text)
        ents = []
        for a, b, label in reproject(ex.text, text, ex.spans, lowercase):
            span = doc.char_span(a, b, label=label, alignment_mode="expand")
            if span is None:
                dropped += 1
                continue
            ents.append((span.start_char, span.end_char, label))
        annotations = {"entities": _no_overlap(ents)}
        if intents:
            annotations["cats"] = {i: 1.0 if i == ex.intent else 0.0 for i in intents}
        out.append(SpacyExample.from_dict(doc, annotations))
    if dropped:
        log.info("dropped %d slot spans that do not align with tokens", dropped)
    return out


def _no_overlap(ents: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for e in sorted(ents):
        if not out or e[0] >= out[-1][1]:
            out.append(e)
    return out

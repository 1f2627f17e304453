"""Training and evaluation recipes: where examples come from and how a model is made of them.

A *source* is a domain spec (examples generated from its templates and catalogs), a SNIPS
folder or a SLURP file (examples written by people). Every trained model records a content
hash of its inputs (``meta["key"]``): the example data, the trainer version and its settings.
An unchanged source is never retrained.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from core.domain import BUILTIN_TYPES, OOD_INTENT, Domain, load_domain
from core.errors import InputError, UserError
from core.utterances import MAX_PER_INTENT, Example, UtteranceGenerator
from stages.nlu.corpora import CorpusItem, labels_of, read_domain_corpus, read_slurp, read_snips, stratified_folds
from stages.nlu.evaluate import evaluate, merge_results
from stages.nlu.joint_model import KEYLESS_DEFAULTS, JointConfig, JointNlu
from stages.nlu.joint_model import KIND as JOINT_KIND
from stages.nlu.joint_model import TRAINER_VERSION as JOINT_VERSION
from stages.nlu.models import NluModel, read_meta
from stages.nlu.spacy_model import TRAINER_VERSION, SpacyNlu, TrainConfig
from stages.nlu.span_types import SpanTyper
from stages.nlu.text import without_address

log = logging.getLogger(__name__)

GENERATION_SEED = 0
CALIBRATION_SEED = 1
EVAL_SEED = 2
PER_INTENT = 300  # generated training examples per intent (Inform: twice that)
UNLISTED_P = 0.3  # of catalog slots filled with a name the catalog does not list
REAL_REPEAT = 3  # each real training command counts this many times
REFILLS = 4  # ... and is said this many times more with other slot values
CALIBRATION_PER_INTENT = 12
EVAL_PER_INTENT = 40
CALIBRATION_FRACTION = 0.05  # of a corpus, held out to fit the intent temperature

# Domain specs: MiniLM fine-tuned for intents and slots together (stages/nlu/joint_model.py): on
# the home domain's real commands it understood 4-5 points more than the spaCy pipeline with
# MiniLM features (both tune halves), and trains in about a minute.
# Measured on real commands (docs/nlu-real-phrasing.md).
SPEC_CONFIG = JointConfig()
# The spaCy pipeline a spec trained with before (nlu.model = "spacy"): intents from the CNN
# features plus the MiniLM sentence embedding, slots tagged with MiniLM word vectors.
SPEC_SPACY_CONFIG = TrainConfig(epochs=4, sentence_embeddings=True, int8_sentences=True, ner_word_vectors=True)
# Written corpora (SNIPS, SLURP): a wider, deeper network; casing kept (a cue for names in
# written text); MiniLM word vectors; the sentence mean mixed into every token; the MiniLM
# sentence embedding among the intent features. Measured on SNIPS validate (one run each):
# slot F1 88.2 % (the home network) → 90.0 % (wider, deeper, sentence mean) → 92.6 % (cased)
# → 93.8 % (MiniLM word vectors, averaged weights); intent accuracy 98.7 % → 99.0 % with the
# sentence embedding.
CORPUS_CONFIG = TrainConfig(
    epochs=8,
    width=96,
    depth=4,
    embed_rows=5000,
    ner_hidden=96,
    context=True,
    word_vectors=True,
    lowercase=False,
    averages=True,
    sentence_embeddings=True,
    min_temperature=0.25,
)
# SLURP devel has ~35 examples per intent. The spaCy pipeline: intents from the MiniLM sentence
# embedding alone (5-fold CV: 81.0 % at 8 epochs; with the CNN features too 79.9 %).
SLURP_SPACY_CONFIG = replace(CORPUS_CONFIG, sentence_embeddings=True, textcat_cnn=False, epochs=8)
# MiniLM fine-tuned (the default): more epochs than a spec's, for ~1,600 examples instead of ~6,500;
# three networks from three seeds, and the ten nearest training commands voting at 0.3 (chosen on
# the second split into folds, docs/nlu.md).
SLURP_CONFIG = JointConfig(epochs=8, batch_size=32, members=3, neighbours=10, neighbour_weight=0.3)
# SNIPS: MiniLM fine-tuned for 10 epochs at batch 32 (JointBERT's recipe is 10 epochs); chosen on
# a twentieth of the training files held out (docs/nlu.md).
SNIPS_JOINT_CONFIG = JointConfig(epochs=10, batch_size=32)
# The model kind each source trains by default (``--kind`` picks another).
DEFAULT_KIND = {"spec": "joint", "snips": "joint", "slurp": "joint"}
_CORPUS_CONFIGS = {
    ("snips", "spacy"): CORPUS_CONFIG,
    ("snips", "joint"): SNIPS_JOINT_CONFIG,
    ("slurp", "spacy"): SLURP_SPACY_CONFIG,
    ("slurp", "joint"): SLURP_CONFIG,
}


@dataclass(frozen=True)
class Source:
    kind: str  # spec | snips | slurp
    path: Path

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.path}"


SpecConfig = JointConfig | TrainConfig
MODEL_KINDS = ("joint", "spacy")  # nlu.model


def default_config(source: Source, kind: str | None = None) -> SpecConfig:
    """The settings ``source`` trains with, for model ``kind`` (None: the source's default)."""
    kind = kind or DEFAULT_KIND[source.kind]
    if source.kind == "spec":
        return spec_config(None, kind)
    return _CORPUS_CONFIGS[(source.kind, _checked_kind(kind, "model kind"))]


def _checked_kind(kind: str, field: str) -> str:
    if kind not in MODEL_KINDS:
        raise UserError(f"{field}: expected one of {', '.join(MODEL_KINDS)}, got {kind!r}")
    return kind


def load_model(path: Path) -> NluModel:
    """A saved model folder, of whichever kind its meta file names."""
    path = Path(path)
    meta = read_meta(path)
    if meta.get("kind") == JOINT_KIND:
        return JointNlu.load(path, meta)
    return SpacyNlu.load(path)


def _trainer(config: SpecConfig):
    return JointNlu if isinstance(config, JointConfig) else SpacyNlu


def _kind_name(config: SpecConfig) -> str:
    return "joint-nlu" if isinstance(config, JointConfig) else "spacy-nlu"


def _trainer_version(config: SpecConfig) -> int:
    return JOINT_VERSION if isinstance(config, JointConfig) else TRAINER_VERSION


# examples ----------------------------------------------------------------------------------


def spec_training_examples(domain: Domain) -> list[Example]:
    """Generated examples (names the catalogs do not list in some of them) + the spec's real
    annotated commands, repeated so that real phrasing weighs against the templates, + those
    commands again with other values in their slots (each corpus: its own ``repeat`` and
    ``refills``, else REAL_REPEAT and REFILLS)."""
    gen = UtteranceGenerator(domain, unlisted_p=UNLISTED_P)
    out = gen.examples(random.Random(GENERATION_SEED), per_intent=PER_INTENT, max_per_intent=MAX_PER_INTENT)
    rng = random.Random(GENERATION_SEED)
    refills = []
    for corpus in domain.training_corpora:
        real = real_examples(domain, read_domain_corpus(corpus.file, corpus.part))
        out += real * (REAL_REPEAT if corpus.repeat is None else corpus.repeat)
        refills += refilled_examples(gen, real, rng, REFILLS if corpus.refills is None else corpus.refills)
    return out + refills


def refilled_examples(
    gen: UtteranceGenerator, examples: Sequence[Example], rng: random.Random, per_example: int
) -> list[Example]:
    """Real commands with their slots said with other values (catalog values and unlisted
    names): the tagger learns real people's phrasings around names it has not met."""
    types = gen.domain.slot_types
    out = []
    for ex in examples:
        if not ex.spans or any(label not in types for _a, _b, label in ex.spans):
            continue
        for _ in range(per_example):
            text, spans, pos = "", [], 0
            for a, b, label in sorted(ex.spans):
                words, _value = gen.filler(types[label], rng)
                text += ex.text[pos:a]
                spans.append((len(text), len(text) + len(words), label))
                text += words
                pos = b
            text += ex.text[pos:]
            out.append(Example(text, ex.intent, tuple(spans)))
    return out


def training_items(domain: Domain) -> list[CorpusItem]:
    """The real annotated commands the spec's ``training_examples`` name."""
    return [it for c in domain.training_corpora for it in read_domain_corpus(c.file, c.part)]


def real_examples(domain: Domain, items: Sequence[CorpusItem] | None = None) -> list[Example]:
    """The spec's ``training_examples`` as training examples: near-domain commands (about the
    domain's things, not served by it) are taught as out-of-domain, since they must be declined."""
    if items is None:
        items = training_items(domain)
    out = []
    for it in items:
        intent = it.intent or OOD_INTENT
        if intent != OOD_INTENT and intent not in domain.intents:
            raise InputError(
                Path(domain.source),
                f"training example {it.id} has intent {intent!r}, which the domain does not declare",
                field="training_examples",
            )
        known = domain.slot_types
        # trained as the stage will hear it: without a leading "olly," (the stage drops it too)
        said = without_address(it.text)
        cut = len(it.text) - len(said)
        spans = (
            tuple((a - cut, b - cut, label) for a, b, label in it.spans if label in known and a >= cut)
            if intent != OOD_INTENT
            else ()
        )
        out.append(Example(said.lower(), intent, spans))
    return out


def spec_heldout_examples(domain: Domain, seed: int, per_intent: int, exclude: set[str]) -> list[Example]:
    """Generated examples whose texts the model did not train on (out-of-domain excluded)."""
    gen = UtteranceGenerator(domain)
    out = [
        ex
        for ex in gen.examples(random.Random(seed), per_intent=per_intent, include_ood=False)
        if ex.text.lower() not in exclude
    ]
    return list({ex.text: ex for ex in out}.values())


def split_calibration(
    examples: Sequence[Example], fraction: float = CALIBRATION_FRACTION, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """(train, calibration): ``fraction`` of each intent held out (none of an intent with <10)."""
    by_intent: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_intent.setdefault(ex.intent, []).append(i)
    rng = random.Random(seed)
    held: set[int] = set()
    for intent in sorted(by_intent):
        idx = list(by_intent[intent])
        if len(idx) < 10:
            continue
        rng.shuffle(idx)
        held.update(idx[: max(1, round(len(idx) * fraction))])
    return ([ex for i, ex in enumerate(examples) if i not in held], [ex for i, ex in enumerate(examples) if i in held])


def corpus_examples(source: Source, split: str = "train") -> list[Example]:
    if source.kind == "snips":
        return read_snips(source.path, split)
    if source.kind == "slurp":
        return read_slurp(source.path)
    raise ValueError(source.kind)


# content hashes ----------------------------------------------------------------------------


def _hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_fields(config: SpecConfig) -> dict:
    """A configuration as a model's key holds it: fields added later stay out at their
    defaults, so models trained before them keep their keys."""
    fields = asdict(config)
    return {k: v for k, v in fields.items() if k not in KEYLESS_DEFAULTS or v != KEYLESS_DEFAULTS[k]}


def spec_key(domain: Domain, config: SpecConfig, extra: Sequence[Example] = ()) -> str:
    parts = (
        domain.digest,
        _trainer_version(config),
        config_fields(config),
        PER_INTENT,
        GENERATION_SEED,
        CALIBRATION_SEED,
        CALIBRATION_PER_INTENT,
        UNLISTED_P,
        REAL_REPEAT,
        REFILLS,
    )
    if extra:  # the spec's own key stays what it was: cached models keep their names
        parts += ([(ex.text, ex.intent, ex.spans) for ex in extra],)
    return _hash(*parts)


def corpus_key(examples: Sequence[Example], config: SpecConfig) -> str:
    data = [(ex.text, ex.intent, ex.spans) for ex in examples]
    return _hash(data, _trainer_version(config), config_fields(config), CALIBRATION_FRACTION)


# training ----------------------------------------------------------------------------------


def spec_config(epochs: int | None = None, kind: str = "joint") -> SpecConfig:
    """The settings a domain spec's model trains with: ``nlu.model`` picks the kind, and
    ``nlu.epochs`` may override its epochs (0 or None: the kind's own)."""
    base = SPEC_CONFIG if _checked_kind(kind, "nlu.model") == "joint" else SPEC_SPACY_CONFIG
    return base if not epochs else replace(base, epochs=epochs)


def configured_spec(config) -> SpecConfig:
    """The spec settings a configuration names (``nlu.model``, ``nlu.epochs``)."""
    return spec_config(config["nlu.epochs"], config["nlu.model"])


def train_spec(
    domain: Domain,
    config: SpecConfig | None = None,
    progress: Callable[[str], None] | None = None,
    extra: Sequence[Example] = (),
) -> NluModel:
    """``extra``: more annotated examples (``assistant learn labels``), trained on with the spec's."""
    config = config or SPEC_CONFIG
    examples = spec_training_examples(domain) + list(extra)
    seen = {ex.text.lower() for ex in examples}
    calibration = spec_heldout_examples(domain, CALIBRATION_SEED, CALIBRATION_PER_INTENT, seen)
    intents = [*domain.intents, OOD_INTENT]
    labels = sorted(domain.slot_types)
    trainer = _trainer(config)
    model = trainer.train(
        examples,
        intents,
        labels,
        config,
        calibration=calibration,
        progress=progress,
        meta={
            "name": f"{_kind_name(config)}/{domain.name}",
            "domain": domain.name,
            "domain_digest": domain.digest,
            "source": f"spec:{domain.source}",
            "key": spec_key(domain, config, extra),
        },
    )
    if isinstance(config, JointConfig):
        model.span_typer = SpanTyper.fit(span_names(domain), encoder="float32")
    elif config.sentence_embeddings:
        model.span_typer = SpanTyper.fit(span_names(domain))
    return model


def extra_examples(domain: Domain, paths: Sequence[str | Path]) -> list[Example]:
    """The annotated examples of corpora added to a spec's training (``nlu train --extra``,
    the learning loop's transferred labels), checked against the spec's intents and slots."""
    examples = []
    for path in paths:
        for item in read_domain_corpus(path):
            if item.intent not in domain.intents:
                raise InputError(path, f"intent {item.intent!r} is not one of {domain.name}'s", field=item.id)
            for _a, _b, name in item.spans:
                if name not in domain.slot_types:
                    raise InputError(path, f"{domain.name} has no slot label {name!r}", field=item.id)
            examples.append(Example(item.text.lower(), item.intent, item.spans))
    return examples


def span_names(domain: Domain, items: Sequence[CorpusItem] | None = None) -> dict[str, list[str]]:
    """Slot label → every name the domain knows for it: catalog phrases, ``training_phrases``
    and the words of its real annotated commands' spans. Values with a grammar (days, times,
    numbers) and literal catalogs are not names."""
    if items is None:
        items = training_items(domain)
    names: dict[str, list[str]] = {}
    for label, slot_type in domain.slot_types.items():
        catalog = domain.catalog_for(slot_type)
        if slot_type in BUILTIN_TYPES or (catalog is not None and catalog.literal):
            continue
        names[label] = [p for v in (catalog.values if catalog else ()) for p in v.phrases]
        names[label] += domain.training_phrases.get(slot_type, ())
    for it in items:
        for a, b, label in it.spans:
            if label in names:
                names[label].append(it.text[a:b])
    return names


def train_corpus(source: Source, examples: Sequence[Example], config: SpecConfig) -> NluModel:
    intents, labels = labels_of(examples)
    train, calibration = split_calibration(examples)
    return _trainer(config).train(
        train,
        intents,
        labels,
        config,
        calibration=calibration,
        meta={
            "name": f"{_kind_name(config)}/{source.kind}",
            "source": source.label,
            "key": corpus_key(examples, config),
        },
    )


def source_key(source: Source, config: SpecConfig, extra: Sequence[Example] = ()) -> str:
    if source.kind == "spec":
        return spec_key(load_domain(source.path), config, extra)
    return corpus_key(corpus_examples(source), config)


def train_source(source: Source, config: SpecConfig | None = None, extra: Sequence[Example] = ()) -> NluModel:
    config = config or default_config(source)
    if source.kind == "spec":
        return train_spec(load_domain(source.path), config, extra=extra)
    return train_corpus(source, corpus_examples(source), config)


# evaluation --------------------------------------------------------------------------------


def evaluation_examples(source: Source, model: NluModel | None = None) -> list[Example]:
    """What a model is scored on: SNIPS ``validate_*.json``; every SLURP line; for a spec,
    generated requests (another seed) whose texts were not among the training examples."""
    if source.kind == "snips":
        return read_snips(source.path, "validate")
    if source.kind == "slurp":
        return read_slurp(source.path)
    domain = load_domain(source.path)
    seen = {ex.text.lower() for ex in spec_training_examples(domain)}
    return spec_heldout_examples(domain, EVAL_SEED, EVAL_PER_INTENT, seen)


def cross_validate(
    source: Source,
    folds: int,
    config: SpecConfig | None = None,
    progress: Callable[[str], None] | None = None,
    seed: int = 0,
) -> dict:
    """k-fold cross-validation on a corpus (stratified by intent): a model per fold. ``seed``
    picks the split into folds (0: the reported one; settings are chosen on another)."""
    if source.kind == "spec":
        raise UserError("--folds needs a corpus (--snips or --slurp): a spec's examples are generated")
    if folds < 2:
        raise UserError("--folds must be at least 2")
    config = config or default_config(source)
    examples = corpus_examples(source)
    results = []
    started = time.perf_counter()
    for k, test_idx in enumerate(stratified_folds(examples, folds, seed)):
        test_set = set(test_idx)
        train = [ex for i, ex in enumerate(examples) if i not in test_set]
        model = train_corpus(source, train, config)
        r = evaluate(model, [examples[i] for i in test_idx])
        results.append(r)
        if progress:
            progress(
                f"fold {k + 1}/{folds}: intent accuracy {r['intent_accuracy']:.2%}, slot F1 {r['slot_f1']:.2%} "
                f"(n={r['n']}, {model.meta['train_s']:.0f} s)"
            )
    out = merge_results(results)
    out["ece"] = round(sum(r["ece"] * r["n"] for r in results) / max(1, out["n"]), 4)
    out["folds"] = folds
    out["fold_seed"] = seed
    out["fold_intent_accuracy"] = [r["intent_accuracy"] for r in results]
    out["fold_slot_f1"] = [r["slot_f1"] for r in results]
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out

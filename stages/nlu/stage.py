"""The NLU stage: transcript → interpretation, with the model trained from the domain spec.

Models are cached under a content hash of what shapes them (the spec's intents, samples,
catalogs and out-of-domain sentences, plus the trainer's settings), so an unchanged spec is
never retrained and a changed one always is.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.records import IntentScore, Interpretation, Slot, Transcript
from sim.domain import BUILTIN_TYPES, OOD_INTENT, Domain, domain_vocabulary, vocabulary_share
from sim.utterances import UtteranceGenerator
from stages.base import StageFailure
from stages.nlu.model import TRAINER_VERSION, SpacyNlu, TrainConfig
from stages.normalize import normalize

log = logging.getLogger(__name__)

NBEST = 5
GENERATION_SEED = 0
PER_INTENT = 160


def model_key(domain: Domain, config: TrainConfig) -> str:
    blob = json.dumps([domain.digest, TRAINER_VERSION, asdict(config), PER_INTENT, GENERATION_SEED],
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def train_for_domain(domain: Domain, config: TrainConfig) -> SpacyNlu:
    examples = UtteranceGenerator(domain).examples(random.Random(GENERATION_SEED), per_intent=PER_INTENT)
    intents = [*domain.intents, OOD_INTENT]
    labels = sorted(domain.slot_types)
    return SpacyNlu.train(examples, intents, labels, config,
                          meta={"name": f"spacy-nlu/{domain.name}", "domain": domain.name,
                                "domain_digest": domain.digest})


def load_or_train(domain: Domain, cache_root: Path, config: TrainConfig | None = None) -> SpacyNlu:
    config = config or TrainConfig()
    target = Path(cache_root) / "nlu" / f"{domain.name}-{model_key(domain, config)}"
    if (target / "assistant_nlu.json").is_file():
        log.debug("NLU model for %s from cache %s", domain.name, target)
        return SpacyNlu.load(target)
    log.info("training the NLU model for domain %r (first use of this spec; cached at %s)", domain.name, target)
    model = train_for_domain(domain, config)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    model.save(tmp)
    try:
        os.rename(tmp, target)          # atomic: concurrent trainers never see half a model
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)   # another process finished first
    return SpacyNlu.load(target)


@dataclass(frozen=True)
class NluOptions:
    # In domain when p(top intent) × coverage reaches this. Coverage is the share of words the
    # domain's language knows: a closed-domain assistant's requests are said in its words, while
    # speech from a radio or an audiobook is mostly other words, even when one looks familiar.
    ood_threshold: float = 0.5


class NluStage:
    name = "nlu"

    def __init__(self, domain: Domain, model: SpacyNlu, options: NluOptions):
        self.domain = domain
        self.model = model
        self.options = options
        self._types = domain.slot_types
        self._vocabulary = domain_vocabulary(domain)

    def interpret(self, text: str, ctx=None) -> Interpretation:
        pred = self.model.predict(text)
        if not pred.intents:
            raise StageFailure("nlu-no-intent", "the model returned no intent scores")
        nbest = tuple(IntentScore(i, round(s, 4)) for i, s in pred.intents[:NBEST])
        top, score = pred.intents[0]
        now = ctx.now if ctx is not None else None
        slots = []
        for a, b, label in pred.spans:
            slot_type = self._types.get(label, label)
            words = pred.text[a:b]
            value = normalize(slot_type, words, now) if slot_type in BUILTIN_TYPES else words
            slots.append(Slot(name=label, text=words, value=value, type=slot_type, start=a, end=b))
        coverage = vocabulary_share(pred.text, self._vocabulary)
        ood = top == OOD_INTENT or score * coverage < self.options.ood_threshold
        # A bare answer that carries no value is not a request.
        if top == "Inform" and not slots:
            ood = True
        return Interpretation(
            text=pred.text, domain=self.domain.name, intent=None if ood else top,
            confidence=round(score, 4), slots=tuple(slots) if not ood else (), nbest=nbest,
            out_of_domain=ood, model=self.model.name, coverage=round(coverage, 3),
        )

    def run(self, transcript: Transcript, ctx) -> Interpretation:
        return self.interpret(transcript.text, ctx)

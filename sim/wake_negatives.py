"""Synthetic negative speech for wake-word stress runs: every installed voice (festival, flite,
espeak-ng; rate and pitch varied) reading the real-phrasing corpus's commands, none of which
holds the wake word, in streams of up to ten minutes.

Synthetic speech is for stress, never for a reported false-accept rate of real speech
(docs/wake.md): it shows what the second look refuses when the detector fires in noise.
``assistant wake eval --synthetic-negatives MINUTES`` plays these streams;
``tools/make_wake_negatives.py`` writes them as WAV files.
"""

from __future__ import annotations

import logging
import random
from typing import Callable, Iterator

from core.audio import Audio
from core.domain import DOMAINS_DIR
from sim.voices import Voice, speak, voice_catalog
from stages.nlu.corpora import read_domain_corpus

log = logging.getLogger(__name__)

CORPUS = DOMAINS_DIR / "slurp_home.jsonl"
STREAM_S = 600.0  # one stream's length (the last one is shorter)
GAP_S = (0.3, 1.5)  # silence between sentences
RATE = (0.85, 1.15)
PITCH = (-3.0, 3.0)


def negative_texts(word: str) -> list[str]:
    """The corpus's commands that do not hold the wake word (nor its first four letters)."""
    stem = word.replace("_", " ").split()[-1][:4].lower()
    return sorted({it.text for it in read_domain_corpus(CORPUS) if stem not in it.text.lower()})


def synthetic_negatives(
    minutes: float, word: str = "alexa", seed: int = 0, say: Callable[[str], None] | None = None
) -> Iterator[Audio]:
    """Streams of synthetic speech, ``minutes`` in all: the same seed gives the same audio."""
    if not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}")
    rng = random.Random(seed)
    texts, voices = negative_texts(word), voice_catalog()
    total, parts, length = 0.0, [], 0.0
    while total < minutes * 60:
        base = rng.choice(voices)
        voice = Voice(base.backend, base.name, rate=round(rng.uniform(*RATE), 2), pitch=round(rng.uniform(*PITCH), 1))
        parts += [speak(voice, rng.choice(texts)), Audio.silence(rng.uniform(*GAP_S))]
        step = parts[-2].duration_s + parts[-1].duration_s
        length, total = length + step, total + step
        if length >= STREAM_S or total >= minutes * 60:
            if say:
                say(f"synthetic negatives: {total / 60:.1f} of {minutes:g} min")
            yield Audio.concat(parts)
            parts, length = [], 0.0

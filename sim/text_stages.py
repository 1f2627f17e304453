"""Text-fidelity stand-ins for the two acoustic stages, driven by the fitted error model.

They return the same records as the real stages — a wake event with a score, a Transcript with
word probabilities, ``avg_logprob`` and ``no_speech_prob`` — so every later stage, the traces and
the learned labelers see text-fidelity turns exactly as they see audio-fidelity ones.
Randomness is seeded from (run seed, session, turn), never from call order, so a counterfactual
replay of a turn hears exactly what the original did.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import re

from core.records import Transcript, Utterance, WakeEvent
from sim.asr_errors import AsrErrorModel, SoundsLike
from sim.wake_peaks import WakePeaks
from stages.wake import near_miss_peak

log = logging.getLogger(__name__)


def turn_rng(seed: int, *parts) -> random.Random:
    """A generator that depends only on the run seed and the names given (session, turn, stage)."""
    digest = hashlib.sha256("|".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def split_wake_word(spoken: str, word: str) -> tuple[bool, str]:
    """("alexa, turn on the lights", "alexa") → (True, "turn on the lights")."""
    wake = word.replace("_", " ")
    m = re.match(rf"^\s*{re.escape(wake)}\b[\s,.!]*", spoken, flags=re.IGNORECASE)
    if m:
        return True, spoken[m.end() :]
    return False, spoken


class SimulatedWake:
    """Wakes as the fitted error model says at openWakeWord's default threshold; speech that did
    not wake it peaks where measured speech of its kind did (sim/wake_peaks.py): a near miss,
    logged as ``near_miss``, and a wake when the device's learned threshold is that low."""

    name = "wake"

    def __init__(self, model: AsrErrorModel, word: str, seed: int, peaks: WakePeaks | None = None):
        self.model = model
        self.word = word
        self.seed = seed
        self.peaks = peaks

    def run(self, utterance: Utterance, ctx) -> Utterance:
        rng = turn_rng(self.seed, ctx.session, ctx.turn, "wake")
        rates = self.model.wake(utterance.condition, utterance.voice)
        has_word, command = split_wake_word(utterance.spoken or "", self.word)
        heard = rng.random() >= rates["false_reject"] if has_word else rng.random() < rates["false_accept"]
        if heard:
            score = (
                min(1.0, max(0.5, rng.gauss(rates["score_mean"], rates["score_sd"])))
                if has_word
                else round(rng.uniform(0.5, 0.8), 4)
            )
        else:
            # its own generator: the draws above stay those of a run without peaks
            peak_rng = turn_rng(self.seed, ctx.session, ctx.turn, "wake-peak")
            kind = "addressed" if has_word else "background"
            score = self.peaks.draw(utterance.condition, kind, peak_rng) if self.peaks is not None else 0.0
            threshold = getattr(getattr(ctx, "device", None), "wake_threshold", None)
            if threshold is None or score < threshold:
                return dataclasses.replace(utterance, endpoint="no_wake", wake=None, near_miss=near_miss_peak(score))
        wake = WakeEvent(
            word=self.word,
            score=round(score, 4),
            start_s=utterance.start_s,
            end_s=utterance.start_s + 0.6,
            model="simulated",
        )
        return dataclasses.replace(utterance, endpoint="silence", wake=wake, spoken=command)


class SimulatedAsr:
    name = "asr"

    def __init__(self, model: AsrErrorModel, seed: int, vocabulary=frozenset()):
        self.model = model
        self.seed = seed
        self.sounds_like = SoundsLike(model.lexicon() | set(vocabulary))

    def run(self, utterance: Utterance, ctx) -> Transcript:
        rng = turn_rng(self.seed, ctx.session, ctx.turn, "asr")
        return self.model.corrupt(
            utterance.spoken or "", utterance.condition or "clean", rng, self.sounds_like, voice=utterance.voice
        )

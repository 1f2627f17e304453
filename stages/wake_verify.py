"""A second look at each wake: the recognizer hears the word the detector fired on.

openWakeWord scores 80 ms frames with a small model; in noise, another wake word or a word
that shares its sounds can push the score over the threshold. Production assistants verify a
detection a second time with a larger model before they wake. Here the second model is the
assistant's own faster-whisper: when the wake word is over, the listener hands the verifier the
audio from just before the detection to the end of the word, Whisper decodes it (greedy, no
domain bias, ~100 ms for tiny.en), and the wake stands when some run of the words it heard
sounds like the wake word ("alexa", "a lexa", "alexia"). docs/wake.md has the rule and its
measurements.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

BEFORE_S = 1.2  # audio kept before the detection: the detector fires near the word's end
MIN_MATCH = 60.0  # rapidfuzz ratio (0-100) of the best run of heard words to the wake word


@dataclass(frozen=True)
class WakeCheck:
    accepted: bool
    heard: str  # what the recognizer heard
    score: float  # 0-100: the best run of heard words against the wake word


def wake_match(heard: str, word: str) -> float:
    """How much some run of consecutive heard words sounds like ``word`` (0-100): the best of the
    spelling ratio and the metaphone codes' ratio, over runs of up to one word more than
    ``word`` has ("alexa" is heard as "a lexa" or "alexa's")."""
    import jellyfish
    from rapidfuzz import fuzz

    tokens = re.findall(r"[a-z]+", heard.lower())
    target = "".join(re.findall(r"[a-z]+", word.lower()))
    if not tokens or not target:
        return 0.0
    sound = jellyfish.metaphone(target)
    longest = len(word.split()) + 1
    best = 0.0
    for i in range(len(tokens)):
        for j in range(i + 1, min(len(tokens), i + longest) + 1):
            run = "".join(tokens[i:j])
            best = max(best, fuzz.ratio(run, target), fuzz.ratio(jellyfish.metaphone(run), sound))
    return float(best)


class WakeVerifier:
    """``verifier(samples, model_word)`` → :class:`WakeCheck`, for :class:`stages.wake.WakeListener`."""

    def __init__(self, asr, min_match: float = MIN_MATCH):
        if not hasattr(asr, "quick_text"):
            raise TypeError(f"the wake verifier needs a recognizer with quick_text(), not {type(asr).__name__}")
        self.asr = asr
        self.min_match = min_match
        self.checked = 0
        self.rejected = 0

    def __call__(self, samples: np.ndarray, word: str) -> WakeCheck:
        """``word``: the wake model's name ("alexa", "hey_jarvis")."""
        from stages.asr import spoken_wake_word

        heard = self.asr.quick_text(samples)
        score = wake_match(heard, spoken_wake_word(word)[0])
        check = WakeCheck(score >= self.min_match, heard, round(score, 1))
        self.checked += 1
        self.rejected += not check.accepted
        log.debug("wake check: heard %r, %.0f → %s", heard, score, "accepted" if check.accepted else "rejected")
        return check

"""A second look at each wake: the recognizer hears the word the detector fired on.

openWakeWord scores 80 ms frames with a small model; in noise, another wake word or a word
that shares its sounds can push the score over the threshold. Production assistants verify a
detection a second time with a larger model before they wake. Here the second model is the
assistant's own faster-whisper: when the wake word is over, the listener hands the verifier the
audio from just before the detection to the end of the word. Whisper decodes it (greedy, no
domain bias), then scores how surely the word was the last thing said: the log probability of
its tokens after the heard words (``WhisperAsr.said_last_logprob``). The wake stands at
``MIN_SAID_LOGPROB`` or above. Judging by the heard text alone let look-alikes through ("Alarm
set 8 am", "and as a co-locke") and refused real wakes heard as other words in noise
("Elected."). docs/wake.md has the measurements.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

BEFORE_S = 1.2  # audio kept before the detection: the detector fires near the word's end
MIN_SAID_LOGPROB = -7.0  # log p of the wake word said last: real wakes here ≥ -5.7, false ones ≤ -8.4


@dataclass(frozen=True)
class WakeCheck:
    accepted: bool
    heard: str  # what the recognizer heard
    score: float  # log probability that the wake word was the last thing said (the decision)
    resembles: float = 0.0  # 0-100: how much the heard words look like the wake word (wake_match)


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

    def __init__(self, asr, min_said: float = MIN_SAID_LOGPROB):
        if not hasattr(asr, "quick_text") or not hasattr(asr, "said_last_logprob"):
            raise TypeError(
                f"the wake verifier needs a recognizer with quick_text() and said_last_logprob(), not {type(asr).__name__}"
            )
        self.asr = asr
        self.min_said = min_said
        self.checked = 0
        self.rejected = 0

    def __call__(self, samples: np.ndarray, word: str) -> WakeCheck:
        """``word``: the wake model's name ("alexa", "hey_jarvis")."""
        from stages.asr import spoken_wake_word

        spoken = spoken_wake_word(word)[0]
        heard = self.asr.quick_text(samples)
        said = self.asr.said_last_logprob(samples, heard, spoken)
        check = WakeCheck(said >= self.min_said, heard, round(said, 2), round(wake_match(heard, spoken), 1))
        self.checked += 1
        self.rejected += not check.accepted
        log.debug("wake check: heard %r, log p %.2f → %s", heard, said, "accepted" if check.accepted else "rejected")
        return check

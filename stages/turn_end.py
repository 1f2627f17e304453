"""Semantic endpointing: is what the user said so far a whole request?

At the first pause after speech the wake listener asks a :class:`TurnEndJudge` about the command
so far. The judge recognizes it (the same faster-whisper decode the turn will use: the result is
kept for it) and asks the NLU: a confident in-domain request with every slot it needs is
``complete`` and the command is cut after ``wake.complete_silence_ms`` of silence instead of
``wake.silence_ms``; words that cannot end a request ("set a timer for", "turn on the") are
``incomplete`` and the endpointer waits ``wake.incomplete_silence_ms`` instead; anything else
(out of domain, a request missing a slot, unsure) keeps the usual silence. docs/wake.md has the rule and its measurements.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from core.audio import Audio
from core.records import Transcript

log = logging.getLogger(__name__)

# Words a request does not end on: articles, prepositions, conjunctions, possessives, and the
# verbs that open a request. "set a timer for" / "turn on the" / "play some" / "what's the".
DANGLING = frozenset(
    """
a an the for to of in at with by from into about and or but my your our their his her its some any this that
these those set turn play put add remind tell what's whats what is are how when where who which please can could
would will me us is it's
""".split()
)
MIN_SPEECH_S = 0.4  # shorter speech is not judged (a cough, the wake word's tail)


@dataclass(frozen=True)
class TurnEnd:
    kind: str  # complete | incomplete
    reason: str  # why, for the trace: 'SetTimer 0.97, all slots' / 'ends on "for"'
    transcript: Transcript | None = None  # what was judged (the turn's own transcript if the cut comes)


class TurnEndJudge:
    """Called by :class:`~stages.wake.WakeListener` with the command's audio so far."""

    def __init__(self, asr, nlu, word: str, confidence: float):
        self.asr = asr
        self.nlu = nlu
        self.word = word
        self.confidence = confidence
        self.calls = 0

    def __call__(self, audio: Audio, woke: bool) -> TurnEnd | None:
        from stages.asr import spoken_wake_word

        if audio.duration_s < MIN_SPEECH_S:
            return None
        self.calls += 1
        try:
            transcript = self.asr.transcribe_ahead(audio.samples, spoken_wake_word(self.word if woke else None))
            interp = self.nlu.interpret(transcript.text) if transcript.text.strip() else None
        except Exception as err:  # the judge only advises: the usual endpoint still comes
            log.warning("turn-end judge failed (%s: %s)", type(err).__name__, err)
            return None
        verdict = judge(transcript.text, interp, self.nlu.domain, self.confidence)
        return None if verdict is None else replace(verdict, transcript=transcript)


def judge(text: str, interp, domain, confidence: float) -> TurnEnd | None:
    """The rule (text and the NLU's interpretation of it → a verdict, or None: no opinion)."""
    words = re.findall(r"[\w%'°]+", text.lower())
    if not words:
        return None
    if words[-1] in DANGLING:
        return TurnEnd("incomplete", f'ends on "{words[-1]}"')
    if interp is None or interp.out_of_domain or interp.intent is None:
        return None
    spec = domain.intents.get(interp.intent)
    if spec is None or spec.is_dialogue_act:
        return None
    have = {s.name for s in interp.slots}
    missing = [n for n, s in spec.slots.items() if s.required and s.default is None and n not in have]
    if spec.require_one and not have & set(spec.require_one):
        missing.append("|".join(spec.require_one))
    if missing:  # "set a timer", "turn them off": the dialogue asks or context fills it; no opinion
        return None
    if interp.confidence >= confidence:
        return TurnEnd("complete", f"{interp.intent} {interp.confidence:.2f}, slots complete")
    return None


__all__ = ["DANGLING", "TurnEnd", "TurnEndJudge", "judge"]

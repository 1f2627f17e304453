"""The second look at each wake (stages/wake_verify.py): what counts as hearing the wake word,
and the listener dropping a wake the recognizer does not hear, on real recordings."""

from __future__ import annotations

import pytest

from core.audio import Audio, load_audio
from stages.wake_verify import WakeCheck, wake_match
from tests.conftest import DATA, RECORDINGS

RESEMBLES = 60.0  # wake_match: the heard words look like the wake word (recorded beside the decision)


@pytest.mark.parametrize(
    "heard",
    ["Alexa.", "alexa, turn on the lights", "Alexa?", "A lexa", "Alex", "Alexia", "calxa", "I like so"],
)
def test_what_whisper_writes_for_the_word_counts_as_the_word(heard):
    assert wake_match(heard, "alexa") >= RESEMBLES


@pytest.mark.parametrize(
    "heard", ["", "He was not.", "computer", "hey jarvis", "snowboy", "what time is it", "americano"]
)
def test_other_words_and_nothing_do_not(heard):
    assert wake_match(heard, "alexa") < RESEMBLES


def test_a_two_word_wake_phrase_matches_across_words():
    assert wake_match("Hey, Jarvis.", "hey jarvis") == 100
    assert wake_match("hey travis", "hey jarvis") >= RESEMBLES
    assert wake_match("alexa", "hey jarvis") < RESEMBLES


class _Verifier:
    """A recognizer's verdict, scripted: records the audio it was asked about."""

    def __init__(self, accept: bool):
        self.accept = accept
        self.asked: list[tuple[float, str]] = []

    def __call__(self, samples, word):
        self.asked.append((len(samples) / 16000, word))
        return WakeCheck(self.accept, "Alexa." if self.accept else "", 100.0 if self.accept else 0.0)


@pytest.mark.models
@pytest.mark.parametrize("accept", [True, False])
def test_a_refused_wake_drops_its_capture_and_the_listener_listens_again(accept):
    from stages.wake import WakeListener, WakeOptions, scan

    listener = WakeListener(WakeOptions())
    listener.verifier = verifier = _Verifier(accept)
    word = load_audio(DATA / "alexa-12.flac")
    command = load_audio(RECORDINGS / "real-speech" / "austen-0930.wav").slice(0.0, 2.0)
    stream = Audio.concat([Audio.silence(0.5), word, Audio.silence(0.3), command, Audio.silence(2.0)])
    commands = scan(listener, stream)
    assert len(verifier.asked) == 1
    seconds, spoken = verifier.asked[0]
    assert spoken == "alexa" and 1.0 <= seconds <= 2.5  # the word, not the command after it
    if accept:
        assert [c.utterance.endpoint for c in commands] == ["silence"]
        assert commands[0].utterance.audio.duration_s > 1.5 and listener.rejected == []
        assert commands[0].wake.heard == "Alexa."  # kept on the wake record (traces, replay --json)
    else:
        assert commands == [] and len(listener.rejected) == 1 and not listener.capturing
        # the wake after a refused one is heard and checked again
        scan(listener, Audio.concat([Audio.silence(1.0), word, Audio.silence(1.0)]))
        assert len(verifier.asked) == 2


@pytest.mark.models
def test_whisper_hears_real_wake_words_and_refuses_other_speech():
    from core.config import Config
    from stages.asr import AsrOptions, WhisperAsr
    from stages.wake_verify import WakeVerifier

    verify = WakeVerifier(WhisperAsr(AsrOptions(**Config.load().section("asr"))))
    for clip in ("alexa-5.flac", "alexa-12.flac", "alexa-27.flac"):
        check = verify(load_audio(DATA / clip).samples, "alexa")
        assert check.accepted, (clip, check)
    other = load_audio(DATA / "keywords-no-alexa.wav")
    for start in (0.0, 3.0, 6.0):  # other wake words (a real reader), 1.5 s at a time
        check = verify(other.slice(start, start + 1.5).samples, "alexa")
        assert not check.accepted, (start, check)
    assert verify.checked == 6 and verify.rejected == 3


@pytest.mark.models
def test_words_that_only_look_like_the_wake_word_are_refused():
    """A false wake of the stress set: a synthetic voice saying "Alarm set 8 am" passed the
    openWakeWord detector, and its words resemble "alexa"; Whisper does not hear the word."""
    from core.audio import resample
    from core.config import Config
    from stages.asr import AsrOptions, WhisperAsr
    from stages.tts import FestivalSynth
    from stages.wake_verify import MIN_SAID_LOGPROB, WakeVerifier

    verify = WakeVerifier(WhisperAsr(AsrOptions(**Config.load().section("asr"))))
    said = FestivalSynth().synthesize("Alarm set 8 am.")
    check = verify(resample(said.samples, said.sample_rate, 16000), "alexa")
    assert wake_match(check.heard, "alexa") >= RESEMBLES and check.resembles >= RESEMBLES
    assert not check.accepted and check.score < MIN_SAID_LOGPROB, check

"""Speech synthesis: the OS synthesizers (real), piper (through a tiny voice built here)."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ModelMissing
from stages.tts import (
    EspeakSynth,
    FestivalSynth,
    FliteSynth,
    TtsOptions,
    TtsStage,
    make_synth,
    sentences,
    speech_chunks,
)
from tests.tiny_piper import build_tiny_voice

pytestmark = pytest.mark.models  # the TTS engines


@pytest.mark.parametrize("synth", [FestivalSynth(), FliteSynth(), EspeakSynth()], ids=lambda s: s.name)
def test_os_synthesizers_speak(synth):
    audio = synth.synthesize("Turning on the kitchen lights.")
    assert 0.8 < audio.duration_s < 4.0
    assert audio.peak > 0.05
    assert audio.sample_rate in (8000, 16000, 22050, 32000, 44100, 48000)


def test_rate_changes_duration():
    slow = EspeakSynth(rate=0.7).synthesize("Setting a timer for ten minutes.")
    fast = EspeakSynth(rate=1.4).synthesize("Setting a timer for ten minutes.")
    assert slow.duration_s > fast.duration_s * 1.4


def test_auto_prefers_festival_then_flite_then_espeak():
    assert make_synth("auto").name == "festival"


def test_replies_are_spoken_sentence_by_sentence():
    assert sentences("Did you mean the movie? Or the audiobook.") == ["Did you mean the movie?", "Or the audiobook."]
    speech = TtsStage(TtsOptions(backend="flite")).speak("It's 8 AM. You have no alarms.")
    assert speech.backend == "flite" and 0 < speech.first_chunk_ms
    assert speech.audio.duration_s > 1.0


def test_the_first_clause_is_spoken_on_its_own_when_it_is_a_phrase():
    weather = "In Wilkerson, tomorrow: sunny, high of 72 and low of 55 degrees."
    assert speech_chunks(weather) == ["In Wilkerson,", "tomorrow: sunny, high of 72 and low of 55 degrees."]
    # one word before the comma, or after it, is no phrase; later sentences stay whole
    assert speech_chunks("Okay, done. Anything else, then?") == ["Okay, done.", "Anything else, then?"]
    assert speech_chunks("Sorry, I can't help with that.") == ["Sorry, I can't help with that."]
    assert speech_chunks("Setting the lamp to 30 percent.") == ["Setting the lamp to 30 percent."]
    assert speech_chunks("") == []


def test_piper_voice_loads_and_streams_per_sentence(tmp_path):
    voice = build_tiny_voice(tmp_path)
    stage = TtsStage(TtsOptions(voice=str(voice)))  # auto → piper when a voice is set
    assert stage.synth.name == "piper"
    parts = [stage.synth.synthesize(s) for s in ("One sentence.", "And another one.")]
    speech = stage.speak("One sentence. And another one.")
    assert speech.backend == "piper" and speech.audio.sample_rate == 16000
    assert speech.audio.duration_s == pytest.approx(sum(p.duration_s for p in parts))
    assert speech.first_chunk_ms > 0 and np.max(np.abs(speech.audio.samples)) > 0


def test_missing_piper_voice_says_how_to_get_one(tmp_path):
    with pytest.raises(ModelMissing) as err:
        make_synth("piper", str(tmp_path / "en_US-lessac-medium.onnx"))
    assert "piper.download_voices" in str(err.value)


def test_festival_interpreter_is_kept_and_restarted_when_it_dies():
    from stages.tts import festival_process

    synth = FestivalSynth()
    first = synth.synthesize('He said "hi" \\ then left.')  # quotes and backslashes are escaped
    proc = festival_process(synth.voice)
    pid = proc._proc.pid
    assert synth.synthesize("Okay.").duration_s > 0.2 and proc._proc.pid == pid  # the same interpreter
    proc._proc.kill()
    proc._proc.wait()
    again = synth.synthesize('He said "hi" \\ then left.')
    assert proc._proc.pid != pid
    assert abs(again.duration_s - first.duration_s) < 0.05 and first.duration_s > 1.0


def test_festival_names_a_voice_it_does_not_have():
    with pytest.raises(ModelMissing, match="no_such_voice"):
        FestivalSynth(voice="no_such_voice").synthesize("hello")


def test_streaming_hands_each_sentence_over_before_the_reply_is_done():
    from core.records import Outcome

    stage = TtsStage(TtsOptions(backend="flite"))
    chunks = []
    speech = stage.run_streaming(
        Outcome(intent="GetTime", status="ok", reply="It's 8 AM. You have no alarms. Bye."), None, chunks.append
    )
    assert len(chunks) == 3
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), speech.audio.samples)


class CountingSynth:
    """A real synthesizer that counts what it is asked to say."""

    def __init__(self, inner):
        self.inner, self.name, self.voice, self.said = inner, inner.name, inner.voice, []

    def synthesize(self, text):
        self.said.append(text)
        return self.inner.synthesize(text)


def test_a_prepared_first_chunk_is_spoken_without_synthesizing_it_again():
    stage = TtsStage(TtsOptions(backend="flite"))
    stage.synth = counting = CountingSynth(stage.synth)
    reply = "In Wilkerson, tomorrow: sunny, high of 72 and low of 55 degrees."
    assert stage.prepare(reply) and not stage.prepare(reply)  # a second guess of the same words is free
    assert counting.said == ["In Wilkerson,"]
    speech = stage.speak(reply)
    assert counting.said == ["In Wilkerson,", "tomorrow: sunny, high of 72 and low of 55 degrees."]
    fresh = TtsStage(TtsOptions(backend="flite")).speak(reply)
    np.testing.assert_array_equal(speech.audio.samples, fresh.audio.samples)  # the same speech either way
    stage.speak(reply)  # used once: the next time it is synthesized again
    assert counting.said.count("In Wilkerson,") == 2


def test_guesses_nobody_asked_for_are_dropped():
    stage = TtsStage(TtsOptions(backend="flite"))
    stage.synth = counting = CountingSynth(stage.synth)
    for n in range(6):
        stage.prepare(f"Timer set for {n} minutes.")
    stage.speak("Timer set for 0 minutes.")  # the oldest guess was dropped: synthesized again
    stage.speak("Timer set for 5 minutes.")  # the newest is kept
    assert counting.said.count("Timer set for 0 minutes.") == 2
    assert counting.said.count("Timer set for 5 minutes.") == 1


def test_festival_says_a_long_sentence_in_its_small_heap():
    # replies go a sentence at a time; a long one must not run festival out of storage
    sentence = " ".join(["the kitchen light is on and the front door is locked"] * 14) + "."
    audio = FestivalSynth().synthesize(sentence)
    assert len(sentence.split()) > 150 and audio.duration_s > 30

"""Semantic endpointing (docs/wake.md): the turn-end rule, and the listener acting on it."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio import Audio, load_audio
from core.domain import load_domain
from core.records import Interpretation, Slot
from stages.turn_end import TurnEnd, judge
from tests.conftest import DATA, RECORDINGS


@pytest.fixture(scope="module")
def home():
    return load_domain("home")


def heard(intent, confidence=0.99, slots=(), ood=False):
    return Interpretation(
        text="",
        domain="home",
        intent=None if ood else intent,
        confidence=confidence,
        slots=tuple(Slot(name=n, text=v, value=v, type="x") for n, v in slots),
        out_of_domain=ood,
    )


@pytest.mark.parametrize(
    "text, interp, kind",
    [
        ("set a timer for", heard("SetTimer"), "incomplete"),  # the example
        ("turn on the", heard("TurnOn"), "incomplete"),
        ("what time is it", heard("GetTime"), "complete"),
        ("set a timer for ten minutes", heard("SetTimer", slots=[("duration", "600")]), "complete"),
        ("dim the lights to 30%", heard("SetBrightness", slots=[("device", "lights"), ("level", "30")]), "complete"),
        ("set a timer", heard("SetTimer"), None),  # lacks its duration: the dialogue will ask
        ("what time is it", heard("GetTime", confidence=0.6), None),  # unsure
        ("tell me a joke", heard(None, ood=True), None),
    ],
)
def test_the_turn_end_rule(home, text, interp, kind):
    verdict = judge(text, interp, home, confidence=0.8)
    assert (verdict.kind if verdict else None) == kind


class FakeJudge:
    """Says 'complete' at every pause, and keeps what it was asked about."""

    def __init__(self):
        self.asked = []

    def __call__(self, audio, woke):
        self.asked.append(audio)
        return TurnEnd("complete", "test")


@pytest.mark.models
def test_a_complete_request_ends_after_a_short_silence_with_the_audio_judged():
    from stages.wake import WakeListener, WakeOptions, scan

    fake = FakeJudge()
    listener = WakeListener(WakeOptions(), judge=fake)
    speech = load_audio(RECORDINGS / "real-speech" / "austen-0930.wav").slice(0.0, 1.5)
    stream = Audio.concat(
        [Audio.silence(0.5), load_audio(DATA / "alexa-12.flac"), Audio.silence(0.3), speech, Audio.silence(2.0)]
    )
    [cmd] = scan(listener, stream)
    assert cmd.utterance.endpoint == "complete" and cmd.utterance.endpoint_note == "complete: test"
    # the command's audio is exactly what was judged (its transcript serves the turn)
    np.testing.assert_array_equal(cmd.utterance.audio.samples, fake.asked[-1].samples)
    wait = cmd.ended_at_s - cmd.speech_end_s
    assert 0.3 <= wait < 0.45  # wake.complete_silence_ms, not 700


@pytest.mark.models
def test_speech_after_a_pause_voids_a_complete_verdict():
    """'play some music [0.2 s] in the kitchen': the first verdict must not cut the command."""
    from stages.wake import WakeListener, WakeOptions, scan

    fake = FakeJudge()
    listener = WakeListener(WakeOptions(), judge=fake)
    speech = trimmed(load_audio(RECORDINGS / "home-demo" / "turn01.wav"))  # 1.3 s, no pause inside
    stream = Audio.concat(
        [
            Audio.silence(0.5),
            load_audio(DATA / "alexa-12.flac"),
            Audio.silence(0.3),
            speech,
            Audio.silence(0.2),
            speech,
            Audio.silence(2.0),
        ]
    )
    [cmd] = scan(listener, stream)
    assert len(fake.asked) == 2  # a verdict at each pause
    assert cmd.utterance.audio.duration_s > 2 * speech.duration_s  # both halves are in the command


def trimmed(audio: Audio) -> Audio:
    """The audio from its first to its last 20 ms within 30 dB of its loudest."""
    n = int(0.02 * audio.sample_rate)
    power = (audio.samples[: len(audio.samples) // n * n].reshape(-1, n) ** 2).mean(axis=1)
    loud = np.flatnonzero(power >= power.max() * 1e-3)
    return audio.slice(loud[0] * 0.02, (loud[-1] + 1) * 0.02)

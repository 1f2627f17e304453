"""Re-arming (docs/wake.md) on real recordings: a wake word heard while the listener waits for
or captures a command restarts the turn, and one word is never counted twice."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio import Audio, load_audio
from stages.wake import WakeListener, WakeOptions, scan
from tests.conftest import DATA, RECORDINGS

pytestmark = pytest.mark.models

CLIPS = ("alexa-5.flac", "alexa-12.flac", "alexa-27.flac")


@pytest.fixture(scope="module")
def listener():
    return WakeListener(WakeOptions())


def speech(seconds: float) -> Audio:
    """Real speech (a LibriVox reader) standing in for a command."""
    return load_audio(RECORDINGS / "real-speech" / "austen-0930.wav").slice(0.0, seconds)


def onset_s(clip: Audio) -> float:
    """Where the word in a clip begins: its first 20 ms within 20 dB of its loudest."""
    n = int(0.02 * clip.sample_rate)
    power = (clip.samples[: len(clip.samples) // n * n].reshape(-1, n) ** 2).mean(axis=1)
    return float(np.argmax(power >= power.max() * 1e-2) * 0.02)


def wakes(commands) -> list:
    return [c for c in commands if c.wake is not None]


@pytest.mark.parametrize("gap_s", [1.0, 2.0, 2.5])
def test_two_wake_words_a_few_seconds_apart_are_two_wakes_and_no_command(listener, gap_s):
    """The second word falls in the first's wait for a command: it used to become that command."""
    listener.reset()
    first, second = load_audio(DATA / CLIPS[1]), load_audio(DATA / CLIPS[2])
    stream = Audio.concat([Audio.silence(0.5), first, Audio.silence(gap_s), second, Audio.silence(6.0)])
    commands = scan(listener, stream)
    assert len(wakes(commands)) == 2
    first_end = 0.5 + first.duration_s
    assert commands[0].detected_at_s <= first_end + 0.5 < commands[1].detected_at_s
    # the second word came while the first wake still waited for its command, and ended that wait
    assert commands[0].ended_at_s == commands[1].detected_at_s
    for cmd in commands:  # neither word became a command
        assert cmd.utterance.audio.duration_s == 0
    assert commands[0].utterance.endpoint == "wake_word"
    assert commands[1].utterance.endpoint == "no_speech"


@pytest.mark.parametrize("clip", CLIPS)
def test_a_single_wake_word_counts_once(listener, clip):
    listener.reset()
    stream = Audio.concat(
        [Audio.silence(0.5), load_audio(DATA / clip), Audio.silence(0.3), speech(1.5), Audio.silence(12.0)]
    )
    commands = scan(listener, stream)
    assert len(commands) == 1 and commands[0].wake is not None
    assert commands[0].utterance.endpoint == "silence"


def test_a_wake_word_after_a_command_starts_a_new_turn_without_itself(listener):
    """'alexa <command> … alexa <command>' inside one capture window: two commands, and the
    second wake word is in neither."""
    listener.reset()
    a, b = load_audio(DATA / CLIPS[1]), load_audio(DATA / CLIPS[2])
    # the second clip's own lead-in is the pause: shorter than the endpoint's 700 ms
    stream = Audio.concat(
        [Audio.silence(0.5), a, Audio.silence(0.3), speech(1.2), b, Audio.silence(0.3), speech(1.2), Audio.silence(2.0)]
    )
    commands = scan(listener, stream)
    assert len(wakes(commands)) == 2
    first, second = commands
    assert first.utterance.endpoint == "wake_word" and second.utterance.endpoint == "silence"
    b_start = 0.5 + a.duration_s + 0.3 + 1.2
    assert first.utterance.end_s <= b_start + onset_s(b)  # the second word is not in it
    assert 0.8 < first.utterance.audio.duration_s < 2.0
    assert second.utterance.start_s >= b_start + b.duration_s - 0.3  # nor in the next command
    assert 0.8 < second.utterance.audio.duration_s < 2.0


def test_a_follow_up_window_gives_way_to_a_wake_word(listener):
    """A capture opened without a wake word (follow-up) hears the wake word as a new turn."""
    listener.reset()
    listener.feed(Audio.silence(0.5).samples)
    assert listener.listen_now(no_speech_s=5.0)
    stream = Audio.concat(
        [Audio.silence(1.0), load_audio(DATA / CLIPS[0]), Audio.silence(0.3), speech(1.2), Audio.silence(2.0)]
    )
    commands = scan(listener, stream)
    assert len(commands) == 1 and commands[0].wake is not None
    assert commands[0].utterance.endpoint == "silence"

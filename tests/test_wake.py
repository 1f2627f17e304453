"""openWakeWord on real recordings: real people saying "alexa", real keyword speech."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio import Audio, load_audio
from stages.wake import WakeListener, WakeOptions, scan
from tests.conftest import DATA, RECORDINGS

pytestmark = pytest.mark.models  # openWakeWord


@pytest.fixture(scope="module")
def listener():
    return WakeListener(WakeOptions())


def with_command(wake: Audio, command_s: float = 1.2) -> Audio:
    """The wake word, then real speech (a LibriVox reader) as the 'command', then silence."""
    speech = load_audio(RECORDINGS / "real-speech" / "austen-0930.wav").slice(0.0, command_s)
    return Audio.concat([Audio.silence(0.5), wake, Audio.silence(0.3), speech, Audio.silence(1.5)])


@pytest.mark.parametrize("clip", ["alexa-5.flac", "alexa-32-libsndfile-fails.flac"])
def test_real_alexa_is_detected_and_the_command_cut(listener, clip):
    listener.reset()
    stream = with_command(load_audio(DATA / clip))
    commands = scan(listener, stream)
    assert len(commands) == 1
    cmd = commands[0]
    assert cmd.wake.word == "alexa" and cmd.wake.score >= 0.5
    assert cmd.utterance.endpoint == "silence"
    assert 0.6 < cmd.utterance.audio.duration_s < 2.5


def test_real_keyword_speech_does_not_wake_it(listener):
    listener.reset()
    assert scan(listener, load_audio(DATA / "keywords-no-alexa.wav")) == []


def test_reset_forgets_a_detection(listener):
    listener.reset()
    wake = load_audio(DATA / "alexa-5.flac")
    # the wake word right at the end of the input: no command captured yet
    listener.feed(Audio.concat([Audio.silence(0.5), wake]).samples)
    listener.reset()
    assert scan(listener, Audio.silence(3.0)) == []


def test_a_reset_listener_hears_exactly_what_a_new_one_hears(listener):
    """Listeners are reused from stream to stream (their models load once): after reset() one
    must cut the same commands, with the same scores, as a listener just built."""
    stream = with_command(load_audio(DATA / "alexa-5.flac"))
    listener.feed(with_command(load_audio(DATA / "alexa-32-libsndfile-fails.flac")).samples[:20000])
    listener.reset()
    reused, new = scan(listener, stream), scan(WakeListener(WakeOptions()), stream)
    assert len(reused) == len(new) == 1
    a, b = reused[0], new[0]
    assert (a.wake, a.detected_at_s, a.ended_at_s, a.utterance.start_s, a.utterance.end_s) == (
        b.wake,
        b.detected_at_s,
        b.ended_at_s,
        b.utterance.start_s,
        b.utterance.end_s,
    )
    np.testing.assert_array_equal(a.utterance.audio.samples, b.utterance.audio.samples)


def test_wake_with_no_command_times_out_as_no_speech(listener):
    listener.reset()
    stream = Audio.concat([Audio.silence(0.5), load_audio(DATA / "alexa-5.flac"), Audio.silence(5.0)])
    commands = scan(listener, stream)
    assert len(commands) == 1 and commands[0].utterance.endpoint == "no_speech"
    assert commands[0].utterance.audio.duration_s == 0


def test_other_wake_words_load():
    for word in ("hey_jarvis", "hey_mycroft"):
        assert WakeListener(WakeOptions(word=word)).options.word == word


def test_the_early_cut_is_the_command_when_nobody_speaks_again(listener):
    """The live loop starts recognizing on take_early(): it must be the exact command audio."""
    import numpy as np

    listener.reset()
    stream = with_command(load_audio(DATA / "alexa-5.flac"))
    early, commands = [], []
    for i in range(0, len(stream.samples), 1280):
        commands += listener.feed(stream.samples[i : i + 1280])
        got = listener.take_early()
        if got is not None:
            early.append(got)
            assert listener.take_early() is None  # handed out once
    assert len(commands) == 1 and early
    assert np.array_equal(early[-1].samples, commands[0].utterance.audio.samples)


def test_the_detector_sees_the_same_samples_as_with_openwakewords_own_buffer():
    """The listener keeps openWakeWord's audio tail in numpy instead of its 160k-element deque
    (a third of the scan time): every frame of a real recording must score exactly the same."""
    import warnings

    import numpy as np
    from openwakeword.model import Model

    from core.model_files import openwakeword_model
    from stages.wake import FRAME, _AudioTail

    stream = with_command(load_audio(DATA / "alexa-5.flac"))
    pcm = (np.clip(stream.samples, -1, 1) * 32767).astype(np.int16)

    def scores(fast: bool) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = Model(wakeword_model_paths=[str(openwakeword_model("alexa"))])
        if fast:
            _AudioTail(model.preprocessor)
        key = next(iter(model.models))
        return np.array([model.predict(pcm[i : i + FRAME])[key] for i in range(0, len(pcm) - FRAME + 1, FRAME)])

    own, fast = scores(False), scores(True)
    assert own.max() >= 0.5  # the wake word is in there
    np.testing.assert_array_equal(fast, own)


def test_a_device_with_a_learned_threshold_wakes_on_what_was_a_near_miss():
    """A real "alexa" that a stricter device missed is logged as a near miss with its peak, and
    a device whose learned threshold is below that peak wakes on it (SegmentWake, as the
    simulator's audio fidelity and recorded clips run it)."""
    from types import SimpleNamespace

    from core.records import Utterance
    from stages.wake import NEAR_MISS_FLOOR, SegmentWake

    stage = SegmentWake(WakeOptions())
    clip = Utterance(audio=with_command(load_audio(DATA / "alexa-5.flac")), start_s=10.0)

    def run(threshold):
        return stage.run(clip, SimpleNamespace(device=SimpleNamespace(wake_threshold=threshold)))

    woken = run(None)
    assert woken.heard and woken.near_miss is None
    peak = woken.wake.score
    strict = run(min(1.0, peak + 0.005))  # a device asking more than this voice gives
    assert not strict.heard and strict.wake is None
    assert strict.near_miss is not None and NEAR_MISS_FLOOR <= strict.near_miss <= peak
    assert run(strict.near_miss - 0.01).heard  # the learned threshold under the near miss: awake
    nothing = stage.run(
        Utterance(audio=load_audio(DATA / "keywords-no-alexa.wav")), SimpleNamespace(device=SimpleNamespace())
    )
    assert not nothing.heard and (nothing.near_miss or 0.0) < 0.5


def test_a_stream_traces_its_near_misses_and_a_device_wakes_at_its_learned_threshold(tmp_path):
    """The streaming listener (assistant talk, continuous recordings) traces a real "alexa" that
    a stricter device missed as a near miss, keeps none of its audio, and a device whose learned
    threshold (rewrite.artifacts) is under that peak wakes on the same stream."""
    import json

    from assistant.runner import Assistant
    from assistant.wake_threshold import THRESHOLD_FORMAT
    from core.config import Config
    from hooks.bus import HookBus
    from hooks.trace_reader import read_records, validation_errors
    from stages.wake import NEAR_MISS_FLOOR

    stream = Audio.concat([Audio.silence(1.0), with_command(load_audio(DATA / "alexa-5.flac"))])
    peak = scan(WakeListener(WakeOptions()), stream)[0].wake.score
    strict = {"wake.threshold": round(min(1.0, peak + 0.005), 4)}

    def run(overrides, folder):
        a = Assistant(Config.load(None, overrides), HookBus())
        a.trace_to(folder)
        session = a.new_session("s")
        chunks = (stream.samples[i : i + 8000] for i in range(0, len(stream.samples), 8000))
        turns = list(a.run_stream(session, chunks, stop="asr"))
        a.end_session(session)
        records = read_records(folder / "s.jsonl")
        assert not [e for r in records for e in validation_errors(r)]
        return turns, [r for r in records if r["event"] == "near_miss"], records

    turns, near, records = run(strict, tmp_path / "strict")
    assert turns == [] and len(near) == 1
    miss = near[0]
    assert NEAR_MISS_FLOOR <= miss["score"] <= peak
    assert 1.0 <= miss["start_s"] < miss["end_s"] <= stream.duration_s
    assert not list((tmp_path / "strict").rglob("*.wav")) and "audio" not in miss
    learned = tmp_path / "wake.json"
    learned.write_text(json.dumps({"format": THRESHOLD_FORMAT, "global": round(miss["score"] - 0.01, 4)}))
    turns, near, _records = run({**strict, "rewrite.artifacts": str(learned)}, tmp_path / "learned")
    assert len(turns) == 1 and turns[0].wake is not None and near == []
    # a listener lent again afterwards is back at the configured threshold
    a = Assistant(Config.load(None, strict), HookBus())
    assert a.stages.wake_listener("x").options.threshold == strict["wake.threshold"]


def test_the_streaming_listener_logs_a_near_miss_once_per_run_of_speech(listener):
    """Speech that peaks between the floor and the threshold is one near miss, taken once; speech
    that wakes the device is none; reset() forgets what was not taken."""
    from stages.wake import NEAR_MISS_FLOOR

    wake = load_audio(DATA / "alexa-5.flac")
    stream = with_command(wake)
    listener.reset()
    peak = scan(listener, stream)[0].wake.score
    assert listener.take_near_misses() == []  # it woke: not a near miss
    strict = WakeListener(WakeOptions(threshold=min(1.0, peak + 0.005)))
    assert scan(strict, Audio.concat([stream, stream])) == []
    first = strict.take_near_misses(before_s=stream.duration_s)
    assert len(first) == 1 and first[0].end_s <= stream.duration_s
    rest = strict.take_near_misses()
    assert len(rest) == 1 and rest[0].start_s >= stream.duration_s and strict.take_near_misses() == []
    for miss in first + rest:
        assert NEAR_MISS_FLOOR <= miss.near_miss <= peak and miss.audio.duration_s == 0 and not miss.heard
    strict.feed(stream.samples)
    strict.reset()
    assert strict.take_near_misses() == []

"""`assistant talk`: the live loop driven through a fake input stream fed from real recordings.

The only doubles are for hardware: :class:`FakeInputStream` stands in for
``sounddevice.InputStream`` (it calls the real MicrophoneSource callback from its own thread,
can flag overflows, vanish like an unplugged device, or press Ctrl-C); replies go to the
NullPlayer, which keeps time on the stream clock. Everything else is the real assistant.
"""

from __future__ import annotations

import _thread
import dataclasses
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from assistant import live_audio as audio_io
from assistant.live import LiveLoop, SessionRecorder, TalkOptions, manifest_header
from assistant.live_audio import DeviceLost, FileSource, MicrophoneSource
from assistant.recorded_sessions import load_recording
from assistant.replay import replay
from assistant.runner import Assistant
from core.audio import Audio, load_audio
from core.errors import ConfigError
from core.turn_summary import turn_summary
from hooks import trace_reader as traces
from stages.wake import WakeListener, WakeOptions, scan
from tests.conftest import DATA, RECORDINGS, ROOT
from tests.test_trace import check_complete

BLOCK = 1280
SPEED = 4.0  # the fake device delivers audio 4× faster than real time
ROOMY = TalkOptions(queue_s=120.0, stall_s=60.0)  # a loaded 2-core test machine must not drop audio


def clip(name: str) -> Audio:
    return load_audio(DATA / name if name.endswith(".flac") else RECORDINGS / "home-demo" / name)


def wake_then(command: str, lead_s: float = 0.5) -> list[Audio]:
    """Silence, a real person saying "alexa", then a command (festival's voice), then silence."""
    wake = clip("alexa-5.flac")  # its "alexa" starts 0.75 s in; the detector fires at 1.5 s
    if lead_s == 0:
        wake = wake.slice(0.7, wake.duration_s)
    return [Audio.silence(lead_s), wake, Audio.silence(0.3), clip(command), Audio.silence(1.2)]


class Flags:
    def __init__(self, overflow: bool):
        self.input_overflow = overflow

    def __bool__(self) -> bool:
        return self.input_overflow


class FakeInputStream:
    """``sounddevice.InputStream`` fed from a script instead of a microphone.

    A script is a list of steps: an :class:`Audio` is delivered block by block; a callable is
    a condition — silence is delivered until it returns true (a microphone never pauses); the
    string "lose" makes the device vanish, "ctrl-c" presses Ctrl-C. When the script ends the
    device keeps delivering silence, like a quiet room.

    ``heard`` (optional) says whether the loop has read every block delivered: the next block
    waits for it, so stream time cannot run ahead of the loop on a loaded machine and the
    script's conditions see the loop exactly where the stream is.
    """

    def __init__(
        self,
        script,
        speed: float = SPEED,
        overflow_blocks=(),
        heard=None,
        *,
        samplerate,
        channels,
        dtype,
        blocksize,
        device,
        callback,
        finished_callback,
    ):
        assert (samplerate, channels, dtype) == (16000, 1, "int16")
        self.script = list(script)
        self.speed = speed
        self.heard = heard
        self.overflow_blocks = set(overflow_blocks)
        self.blocksize = blocksize
        self.callback = callback
        self.finished_callback = finished_callback
        self.active = False
        self.lost = False
        self.blocks = 0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.active = True
        self._thread.start()

    def _deliver(self, samples: np.ndarray) -> None:
        for i in range(0, len(samples), self.blocksize):
            block = np.zeros((self.blocksize, 1), np.int16)
            part = samples[i : i + self.blocksize]
            block[: len(part), 0] = part
            self.callback(block, self.blocksize, None, Flags(self.blocks in self.overflow_blocks))
            self.blocks += 1
            if self._halt.wait(self.blocksize / 16000 / self.speed):
                return
            while self.heard is not None and not self.heard():
                if self._halt.wait(0.002):
                    return

    def _run(self):
        silence = np.zeros(self.blocksize, np.int16)
        for step in self.script:
            if step == "lose":
                self.lost, self.active = True, False
                self.finished_callback()  # PortAudio ends a stream whose device is gone
                return
            if step == "ctrl-c":
                _thread.interrupt_main()
                step = lambda: False  # noqa: E731 - the room stays quiet until the end
            if callable(step):
                deadline = time.monotonic() + 60
                while not step() and not self._halt.is_set() and time.monotonic() < deadline:
                    self._deliver(silence)
            else:
                self._deliver(step.to_int16())
            if self._halt.is_set():
                return
        while not self._halt.is_set():
            self._deliver(silence)

    def _join(self):
        # PortAudio's abort and close return once the callback in progress has finished
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5.0)

    def abort(self):
        self._halt.set()
        self._join()
        if self.lost:
            import sounddevice as sd

            raise sd.PortAudioError("device unavailable")  # what stopping a vanished device does
        self.active = False

    def close(self):
        self._halt.set()
        self._join()


def fake_mic(script, options: TalkOptions = ROOMY, in_step: bool = True, **fake) -> MicrophoneSource:
    """A MicrophoneSource on a fake device (``in_step``: the device waits for the loop to read)."""
    src = MicrophoneSource(
        0,
        "fake mic",
        block=options.block,
        queue_s=options.queue_s,
        stall_s=options.stall_s,
        stream_factory=lambda **kw: FakeInputStream(
            script, heard=(lambda: src.backlog_s == 0) if in_step else None, **fake, **kw
        ),
    )
    return src


@pytest.fixture()
def live_assistant(assistant):
    """A fresh assistant (its own bus, for tracing) sharing the session's loaded models."""
    a = Assistant(assistant.config)
    for name in ("asr", "nlu", "resolve", "respond", "tts"):
        a.stages.override(name, assistant.stages[name])
    return a


def transcripts(rows):
    return [(r["transcript"], r["intent"]) for r in rows]


# no hardware, no models ------------------------------------------------------------------
def test_no_input_device_is_one_line_and_exit_2(monkeypatch, capsys):
    from assistant.cli import main

    monkeypatch.setattr(audio_io, "devices", lambda: [])
    assert main(["talk"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["assistant: no input audio device (devices: none); use --input FILE to feed a recording"]
    assert main(["talk", "--list-devices"]) == 0
    assert capsys.readouterr().out.strip() == "no audio devices"
    speaker = {
        "index": 3,
        "name": "HDMI out",
        "max_input_channels": 0,
        "max_output_channels": 2,
        "default_samplerate": 48000.0,
    }
    monkeypatch.setattr(audio_io, "devices", lambda: [speaker])
    assert main(["talk"]) == 2
    assert "(devices: 3: HDMI out (in 0, out 2))" in capsys.readouterr().err


def test_bad_talk_input_and_settings_are_one_line_errors(capsys):
    from assistant.cli import main

    assert main(["talk", "--input", str(RECORDINGS / "home-demo")]) == 2
    assert "home-demo: a pre-segmented session has no stream" in capsys.readouterr().err
    assert main(["talk", "--input", str(DATA / "nope.wav")]) == 2
    assert "nope.wav: no such file" in capsys.readouterr().err
    assert main(["talk", "--input", str(DATA / "alexa-5.flac"), "--talk-barge-in", "sometimes"]) == 2
    assert "talk.barge_in" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="talk.queue_s"):
        TalkOptions(queue_s=0)


def test_talk_input_checks_manifests_and_outputs_as_replay_does(tmp_path, capsys, monkeypatch):
    import assistant.commands.talk as talk_cmd
    from assistant.cli import main
    from assistant.live import LiveResult
    from core.errors import OutputError

    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "stream.flac").write_bytes((DATA / "alexa-5.flac").read_bytes())

    def talk(manifest, *args):
        (folder / "session.json").write_text(json.dumps({"audio": "stream.flac", **manifest}))
        code = main(["talk", "--input", str(folder), "--quiet", *map(str, args)])
        return code, capsys.readouterr().err

    code, err = talk({"domain": "/etc/passwd"})  # never a file the manifest picks
    assert code == 2 and f"{folder / 'session.json'}: domain: '/etc/passwd' is not a bundled domain" in err
    code, err = talk({"turns": [{"at_s": 1.0, "gold": {"intent": "Teleport"}}]})
    assert code == 2 and "turns[0].gold.intent: intent 'Teleport' is not in domain 'home'" in err
    (tmp_path / "a-file").write_text("")
    code, err = talk({}, "--trace", tmp_path / "a-file")  # refused before any model loads
    assert code == 3 and "a-file: exists and is not a folder" in err

    class FailedOutput:  # the loop ran; a reply could not be saved
        def __init__(self, assistant, source, **kw):
            self.assistant, self.worker_abandoned = assistant, False

        def run(self):
            self.assistant._reply_errors.append(OutputError(tmp_path / "r.wav", "cannot write (No space left)"))
            return LiveResult("s", "end_of_input", "", ())

    monkeypatch.setattr(talk_cmd, "LiveLoop", FailedOutput)
    assert talk({})[0] == 3


def test_file_source_paces_in_real_time():
    audio = Audio(np.linspace(-0.5, 0.5, 16000, dtype=np.float32), 16000)  # 1.0 s
    for speed, low, high in ((1.0, 0.9, 1.6), (4.0, 0.2, 0.6)):
        src = FileSource(audio, "ramp", block=BLOCK, speed=speed)
        t0 = time.monotonic()
        src.start()
        got = []
        while not src.ended:
            block = src.read(0.1)
            if block is not None:
                got.append(block)
        elapsed = time.monotonic() - t0
        src.close()
        assert low <= elapsed <= high, (speed, elapsed)
        assert np.array_equal(np.concatenate([b.samples for b in got]), audio.samples)  # nothing lost or changed
        assert src.overflows == 0
        # each block arrives when its last sample would have been spoken, not before
        assert got[-1].t - got[0].t >= (len(got) - 1) * BLOCK / 16000 / speed * 0.9


def test_microphone_overflows_are_counted_and_the_queue_is_bounded():
    src = fake_mic(
        [Audio.silence(4.0)],
        TalkOptions(queue_s=0.4, stall_s=60.0),
        in_step=False,
        speed=1000.0,
        overflow_blocks={2, 3},
    )
    src.start()
    time.sleep(0.5)  # nobody reads: the queue fills, the callback never blocks
    src.close()
    blocks = 0
    while src.read(0.01) is not None:
        blocks += 1
    assert blocks == 5  # 0.4 s of 80 ms blocks
    assert src.overflows >= 2 + (50 - 5) - 1


def test_a_silent_device_is_lost_after_stall_s():
    src = fake_mic([lambda: False], TalkOptions(stall_s=0.3), in_step=False, speed=1000.0)
    src.start()
    src._stream._halt.set()  # the device stops delivering, without a word
    with pytest.raises(DeviceLost, match="no audio from input device 'fake mic'"):
        while True:
            src.read(0.05)
    src.close()


@pytest.mark.models
def test_listen_now_captures_without_a_wake_word():
    listener = WakeListener(WakeOptions())
    assert listener.feed(Audio.silence(1.0).samples) == []
    assert listener.listen_now(no_speech_s=2.0) and listener.capturing and not listener.capture_has_wake
    assert not listener.listen_now()  # already capturing
    speech = clip("turn05.wav")  # "ten minutes"
    cmds = listener.feed(Audio.concat([Audio.silence(0.3), speech, Audio.silence(1.0)]).samples)
    assert len(cmds) == 1 and cmds[0].wake is None and cmds[0].utterance.endpoint == "silence"
    assert abs(cmds[0].utterance.audio.duration_s - speech.duration_s) < 0.6
    assert cmds[0].speech_end_s < cmds[0].ended_at_s
    # a window nobody speaks in closes without a command
    assert listener.listen_now(no_speech_s=1.0)
    assert listener.feed(Audio.silence(1.5).samples) == [] and not listener.capturing
    assert listener.finish() == []


# the live loop on the real assistant ------------------------------------------------------
@pytest.mark.models
def test_talk_input_gives_the_same_turns_as_replay(tmp_path, assistant):
    replayed = list(replay(assistant, load_recording(RECORDINGS / "continuous")))  # trains the NLU once, here
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant",
            "talk",
            "--input",
            str(RECORDINGS / "continuous"),
            "--json",
            "--quiet",
            "--speed",
            "4",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    live = [json.loads(line) for line in out.stdout.splitlines()]
    assert transcripts(live) == transcripts(replayed) and len(live) == 4
    for row, ref in zip(live, replayed):
        assert set(ref) <= set(row) and row["correct"] is True
        # a complete request is cut at its first pause (semantic endpointing), else after 700 ms
        assert row["eos_to_reply_ms"] > 0 and row["live"]["endpoint_delay_ms"] >= 80
        assert row["live"]["reply_at"] > row["live"]["endpoint_at"]


@pytest.mark.models
def test_follow_up_barge_in_record_and_trace(tmp_path, live_assistant):
    a = live_assistant
    a.trace_to(tmp_path / "trace")
    loop = None

    def state(name):
        return lambda: loop.state == name

    script = [
        *wake_then("turn04.wav"),  # "set a timer" → "For how long?"
        state("follow_up"),
        clip("turn05.wav"),
        Audio.silence(1.2),  # "ten minutes", no wake word
        state("speaking"),
        *wake_then("turn01.wav", lead_s=0),  # "alexa, …" over the 1.8 s reply
        lambda: len(loop.turns) == 3,
        lambda: loop.request_stop() or True,
    ]
    recorder = SessionRecorder(tmp_path / "rec", "live", manifest_header({}, a.config))
    loop = LiveLoop(a, fake_mic(script), options=ROOMY, session_id="live", recorder=recorder)
    result = loop.run()
    assert result.ended == "stopped"
    # joined: a warm-up thread still in torch at interpreter exit aborted `talk --input` (-6)
    assert not [t for t in threading.enumerate() if t.name == "warm-up"]
    turns = [t.turn for t in result.turns]
    assert [(t.intent) for t in (x.outcome for x in turns)] == ["SetTimer", "SetTimer", "TurnOn"]
    assert turns[0].outcome.reply_type == "elicit" and dict(turns[1].outcome.args) == {"duration": 600}
    assert [t.follow_up for t in result.turns] == [False, True, False]
    assert turns[1].wake is None and turns[2].wake is not None
    assert [t.barge_in for t in turns] == [False, False, True] and result.stats["barge_ins"] == 1
    assert all(t.eos_to_reply_ms > 0 for t in result.turns)
    records = check_complete(tmp_path / "trace" / "live.jsonl")
    ends = {r["turn"]: r for r in records if r["event"] == "turn_end"}
    assert ends[2]["signals"]["barge_in"] is True and ends[1]["signals"]["barge_in"] is False
    assert records[-1]["meta"]["live"]["overflows"] == 0
    # the recording replays to the same transcripts (and, with its context, the same intents)
    manifest = json.loads((tmp_path / "rec" / "session.json").read_text())
    assert manifest["live"]["ended"] == "stopped" and (tmp_path / "rec" / "stream.wav").is_file()
    live_rows = [t.summary() for t in result.turns]
    replayed = list(replay(a, load_recording(tmp_path / "rec")))
    assert [r["transcript"] for r in replayed] == [r["transcript"] for r in live_rows]
    assert transcripts(replayed) == transcripts(live_rows)


@pytest.mark.models
def test_device_lost_mid_session_keeps_recording_and_trace(tmp_path, live_assistant):
    a = live_assistant
    a.trace_to(tmp_path / "trace")
    recorder = SessionRecorder(tmp_path / "rec", "lost", manifest_header({}, a.config))
    source = fake_mic([*wake_then("turn01.wav"), "lose"], overflow_blocks={3, 5})
    result = LiveLoop(a, source, options=ROOMY, session_id="lost", recorder=recorder).run()
    assert result.ended == "device_lost" and "fake mic" in result.message
    assert [t.turn.outcome.intent for t in result.turns] == ["TurnOn"]  # heard before the loss: still served
    assert result.stats["overflows"] == 2
    rec = load_recording(tmp_path / "rec")
    assert len(rec.turns) == 1
    records = check_complete(tmp_path / "trace" / "lost.jsonl")
    assert records[-1]["meta"]["live"] == {**records[-1]["meta"]["live"], "ended": "device_lost", "overflows": 2}
    assert traces.validation_errors(records[-1]) == []


@pytest.mark.models
def test_ctrl_c_ends_cleanly_and_keeps_the_recording(tmp_path, live_assistant):
    a = live_assistant
    a.trace_to(tmp_path / "trace")
    loop = None
    script = [*wake_then("turn01.wav"), lambda: len(loop.turns) == 1, "ctrl-c"]
    recorder = SessionRecorder(tmp_path / "rec", "ctrlc", manifest_header({}, a.config))
    loop = LiveLoop(a, fake_mic(script), options=ROOMY, session_id="ctrlc", recorder=recorder)
    try:
        result = loop.run()
    except KeyboardInterrupt:  # must never escape the loop
        pytest.fail("Ctrl-C escaped the live loop")
    assert result.ended == "interrupted" and len(result.turns) == 1
    assert len(load_recording(tmp_path / "rec").turns) == 1
    records = check_complete(tmp_path / "trace" / "ctrlc.jsonl")
    assert records[-1]["meta"]["live"]["ended"] == "interrupted"


@pytest.mark.models
def test_speech_barge_in_stops_the_reply_and_is_the_next_command(live_assistant):
    loop = None
    script = [
        *wake_then("turn01.wav"),  # "turn on the kitchen lights"
        lambda: loop.state == "speaking",
        clip("turn02.wav"),
        Audio.silence(1.2),  # "turn them off", no wake word
        lambda: len(loop.turns) == 2,
        lambda: loop.request_stop() or True,
    ]
    options = TalkOptions(queue_s=120.0, stall_s=60.0, barge_in="speech")
    loop = LiveLoop(live_assistant, fake_mic(script), options=options, session_id="speech-barge-in")
    result = loop.run()
    turns = [t.turn for t in result.turns]
    assert [t.outcome.intent for t in turns] == ["TurnOn", "TurnOff"]
    assert turns[1].barge_in and turns[1].wake is None and not result.turns[1].follow_up
    assert result.stats["barge_ins"] == 1


@pytest.mark.models
def test_a_prefetched_transcript_is_exactly_the_one_recognition_gives(assistant):
    from core.audio import load_audio

    asr = assistant.stages["asr"]
    samples = load_audio(RECORDINGS / "home-demo" / "turn01.wav").samples
    plain = asr.transcribe(samples)
    asr.prefetch(samples)
    asr.prefetch(samples[: len(samples) // 2])  # superseded: dropped or unused
    assert asr.transcribe(samples) == plain and plain.text


@pytest.mark.models
def test_a_reply_prepared_ahead_changes_nothing_and_is_what_the_turn_says(assistant, monkeypatch):
    """While the endpointer waits out the last silence the live loop guesses the reply on a copy
    of the session and synthesizes its first chunk: the session, its events and the turn are
    exactly what they would be without it."""
    from core.records import Transcript
    from hooks.bus import HookBus

    tts = assistant.stages["tts"]
    prepared: list[str] = []
    real_prepare = tts.prepare
    monkeypatch.setattr(tts, "prepare", lambda text: prepared.append(text) or real_prepare(text))
    bus = HookBus()
    events = bus.add_observer(Recorder())
    a = assistant.fork(bus)
    session = a.new_session("guess")
    before, events.seen = json.dumps(session.world.state, sort_keys=True), []
    reply = a.prepare_reply(session.snapshot(), Transcript(text="turn on the kitchen lights", source="asr"), 2.0)
    assert reply == "Turning on the kitchen lights." and prepared == [reply]
    assert json.dumps(session.world.state, sort_keys=True) == before  # the light is still off
    assert not session.turns and events.seen == []  # no turn, no event, no trace
    turn = a.run_turn(session, a.text_turn(session, "turn on the kitchen lights"), start="nlu")
    assert turn.outcome.reply == reply and session.world.get("devices.kitchen_light.power") == "on"


class Recorder:
    def __init__(self):
        self.seen = []

    def on_event(self, event):
        self.seen.append(event.kind)


@pytest.mark.models
def test_the_live_loop_prepares_the_reply_of_a_complete_request(live_assistant, monkeypatch):
    tts = live_assistant.stages["tts"]
    prepared: list[str] = []
    real_prepare = tts.prepare
    monkeypatch.setattr(tts, "prepare", lambda text: prepared.append(text) or real_prepare(text))
    loop = None
    script = [*wake_then("turn01.wav"), lambda: len(loop.turns) == 1, lambda: loop.request_stop() or True]
    loop = LiveLoop(live_assistant, fake_mic(script), options=ROOMY, session_id="prepared")
    [live] = loop.run().turns
    assert live.turn.utterance.endpoint == "complete"  # cut at its first pause: a guess was made
    assert live.turn.outcome.reply in prepared  # "Turning on the kitchen lights."
    prepared.clear()
    script = [*wake_then("turn01.wav"), lambda: len(loop.turns) == 1, lambda: loop.request_stop() or True]
    options = dataclasses.replace(ROOMY, prepare_reply=False)
    loop = LiveLoop(live_assistant, fake_mic(script), options=options, session_id="prepared")
    [plain] = loop.run().turns
    assert prepared == []

    def same(turn):  # all but the times
        return {k: v for k, v in turn_summary(turn).items() if k != "ms"}

    assert same(plain.turn) == same(live.turn)


@pytest.mark.models
def test_talk_gives_a_device_its_learned_threshold_and_traces_what_it_nearly_woke_for(tmp_path, assistant):
    """A real "alexa" that bo's device (learned threshold under its peak) wakes for is a near
    miss on everyone else's stricter device: traced with how close it came, no turn, no audio."""
    from assistant.wake_threshold import THRESHOLD_FORMAT
    from core.config import Config

    said = wake_then("turn01.wav")
    peak = scan(WakeListener(WakeOptions()), Audio.concat(said))[0].wake.score
    learned = tmp_path / "wake.json"
    learned.write_text(json.dumps({"format": THRESHOLD_FORMAT, "users": {"bo": round(peak - 0.1, 4)}}))
    strict = round(min(1.0, peak + 0.005), 4)
    a = Assistant(Config.load(None, {"wake.threshold": strict, "rewrite.artifacts": str(learned)}))
    for name in ("asr", "nlu", "resolve", "respond", "tts"):
        a.stages.override(name, assistant.stages[name])
    a.trace_to(tmp_path / "trace")

    def talk(user: str, turns: int):
        loop = None
        script = [*said, lambda: loop.state == "listening" and len(loop.turns) == turns, "lose"]
        loop = LiveLoop(a, fake_mic(script), options=ROOMY, session_id=user, session_args={"user": {"id": user}})
        return loop.run()

    results = {"bo": talk("bo", 1), "ann": talk("ann", 0)}
    assert [t.turn.outcome.intent for t in results["bo"].turns] == ["TurnOn"]
    assert results["ann"].turns == ()
    assert [r["event"] for r in check_complete(tmp_path / "trace" / "bo.jsonl")].count("near_miss") == 0
    records = traces.read_records(tmp_path / "trace" / "ann.jsonl")
    assert not [e for r in records for e in traces.validation_errors(r)]
    near = [r for r in records if r["event"] == "near_miss"]
    assert len(near) == 1 and not [r for r in records if r["event"] == "turn_start"]
    assert peak - 0.1 <= near[0]["score"] <= peak and "audio" not in near[0]
    assert 0.5 <= near[0]["start_s"] < near[0]["end_s"] <= sum(x.duration_s for x in said) + 1.0

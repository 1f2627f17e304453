"""Audio in and out for the live loop: the microphone, a file paced like one, and players.

Sources deliver :class:`Block` s of 16 kHz mono audio through a bounded queue. The microphone's
callback never blocks: a block that finds the queue full is dropped and counted as an overflow,
as is every block PortAudio reports it lost (``status.input_overflow``). A file never loses audio
(determinism matters more than realism there): when the loop falls behind, pacing waits and the
wait is counted as an overflow instead.

Players are non-blocking and stoppable (barge-in). :class:`NullPlayer` plays nothing but keeps
time on the loop's clock, so "while the reply plays" means the same with or without a speaker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from core.audio import PIPELINE_RATE, Audio, resample
from core.errors import UserError

log = logging.getLogger(__name__)

NO_DEVICE_HINT = "use --input FILE to feed a recording"


class DeviceLost(Exception):
    """The input device stopped delivering audio (unplugged, driver error)."""


@dataclass(frozen=True, eq=False)
class Block:
    samples: np.ndarray  # int16 (microphone) or float32 in [-1, 1] (file), mono 16 kHz
    t: float  # time.monotonic() when the block was complete (captured)


class Source(Protocol):
    name: str
    subtype: str  # WAV subtype that stores this source's samples losslessly
    overflows: int

    @property
    def backlog_s(self) -> float: ...

    def start(self) -> None: ...

    def read(self, timeout: float) -> Block | None: ...

    @property
    def ended(self) -> bool: ...

    def close(self) -> None: ...


class _QueuedSource:
    def __init__(self, name: str, block: int, queue_s: float):
        self.name = name
        self.block = block
        self.overflows = 0
        self._queue: queue.Queue[Block] = queue.Queue(maxsize=max(2, int(queue_s * PIPELINE_RATE / block)))

    @property
    def backlog_s(self) -> float:
        """Audio delivered but not yet read: how far the loop is behind the device."""
        return self._queue.qsize() * self.block / PIPELINE_RATE

    def _get(self, timeout: float) -> Block | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


class FileSource(_QueuedSource):
    """An audio file delivered block by block in real time (``speed`` > 1: faster), as a
    microphone would deliver it: each block arrives when its last sample would have been spoken."""

    subtype = "FLOAT"  # file samples are floats; FLOAT keeps them exactly

    def __init__(self, audio: Audio, name: str, block: int = 1280, queue_s: float = 2.0, speed: float = 1.0):
        if not speed > 0:
            raise UserError(f"--speed must be positive, got {speed}")
        super().__init__(name, block, queue_s)
        self.audio = audio
        self.speed = speed
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._pace, name="talk-file", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _pace(self) -> None:
        samples = self.audio.samples
        t0 = time.monotonic()
        for n, i in enumerate(range(0, len(samples), self.block), 1):
            due = t0 + min(n * self.block, len(samples)) / PIPELINE_RATE / self.speed
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            block = Block(samples[i : i + self.block], time.monotonic())
            try:
                self._queue.put_nowait(block)
            except queue.Full:
                self.overflows += 1  # the loop is behind: wait for it rather than lose audio
                while not self._stop.is_set():
                    try:
                        self._queue.put(block, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        self._done.set()

    def read(self, timeout: float) -> Block | None:
        return self._get(timeout)

    @property
    def ended(self) -> bool:
        return self._done.is_set() and self._queue.empty()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)


class MicrophoneSource(_QueuedSource):
    """A sounddevice input stream at 16 kHz mono int16; ``stream_factory`` defaults to
    ``sounddevice.InputStream`` (tests pass a fake stream fed from files)."""

    subtype = "PCM_16"

    def __init__(
        self,
        device: int | None,
        name: str,
        block: int = 1280,
        queue_s: float = 2.0,
        stall_s: float = 2.0,
        stream_factory: Callable[..., Any] | None = None,
    ):
        super().__init__(name, block, queue_s)
        self.device = device
        self.stall_s = stall_s
        self._factory = stream_factory
        self._stream: Any = None
        self._closing = False
        self._device_finished = threading.Event()
        self._last = time.monotonic()

    def start(self) -> None:
        factory = self._factory
        if factory is None:
            import sounddevice as sd

            factory = sd.InputStream
        try:
            self._stream = factory(
                samplerate=PIPELINE_RATE,
                channels=1,
                dtype="int16",
                blocksize=self.block,
                device=self.device,
                callback=self._callback,
                finished_callback=self._finished,
            )
            self._stream.start()
        except Exception as err:  # PortAudioError and friends: the device cannot be opened
            raise UserError(f"cannot open input device {self.name!r}: {err}") from None
        self._last = time.monotonic()

    def _callback(self, indata, frames, time_info, status) -> None:
        # PortAudio's thread: never block, never raise.
        if self._closing:
            return  # a block that arrives while the stream stops is not queued for a reader
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        try:
            self._queue.put_nowait(Block(np.array(indata[:, 0], dtype=np.int16), time.monotonic()))
        except queue.Full:
            self.overflows += 1

    def _finished(self) -> None:
        self._device_finished.set()

    def read(self, timeout: float) -> Block | None:
        block = self._get(timeout)
        if block is not None:
            self._last = time.monotonic()
            return block
        if self._closing:
            return None
        if self._device_finished.is_set():
            raise DeviceLost(f"input device {self.name!r} stopped")
        if time.monotonic() - self._last > self.stall_s:
            raise DeviceLost(f"no audio from input device {self.name!r} for {self.stall_s:g} s")
        return None

    @property
    def ended(self) -> bool:
        return False  # a microphone ends by Ctrl-C or by being lost

    def close(self) -> None:
        self._closing = True
        if self._stream is None:
            return
        for method in ("abort", "close"):
            try:
                getattr(self._stream, method)()
            except Exception as err:  # a lost device fails to stop; it is gone either way
                log.debug("input stream %s: %s", method, err)


class Player(Protocol):
    def play(self, audio: Audio) -> None: ...

    def append(self, audio: Audio) -> None: ...

    def stop(self) -> bool: ...

    @property
    def playing(self) -> bool: ...

    def close(self) -> None: ...


class NullPlayer:
    """Plays nothing; a reply "plays" for its duration on ``clock`` (the loop's stream time)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._end = float("-inf")
        self._lock = threading.Lock()

    def play(self, audio: Audio) -> None:
        with self._lock:
            self._end = self.clock() + audio.duration_s

    def append(self, audio: Audio) -> None:
        """Play after what is playing (the next sentence of the reply)."""
        with self._lock:
            self._end = max(self._end, self.clock()) + audio.duration_s

    def stop(self) -> bool:
        with self._lock:
            was = self.clock() < self._end
            self._end = float("-inf")
            return was

    @property
    def playing(self) -> bool:
        return self.clock() < self._end

    def close(self) -> None:
        self.stop()


class SoundDevicePlayer:
    """Plays a reply on an output device through a callback stream; :meth:`stop` cuts it off."""

    def __init__(self, device: int | None):
        self.device = device
        self._stream: Any = None
        self._rate: int | None = None
        self._queued: deque[np.ndarray] = deque()
        self._lock = threading.Lock()

    def append(self, audio: Audio) -> None:
        """Play after what is playing (the next sentence of the reply)."""
        if self.playing and audio.sample_rate == self._rate:
            self._queued.append(audio.samples)
        elif self.playing:
            self._queued.append(resample(audio.samples, audio.sample_rate, self._rate))
        else:
            self.play(audio)

    def play(self, audio: Audio) -> None:
        import sounddevice as sd

        self.stop()
        self._queued = deque()
        samples, rate = audio.samples, audio.sample_rate
        try:
            stream = self._open(sd, samples, rate)
        except sd.PortAudioError:
            # the device does not take this rate: convert once to its own
            rate_to = int(sd.query_devices(self.device, "output")["default_samplerate"])
            samples, rate = resample(samples, rate, rate_to), rate_to
            stream = self._open(sd, samples, rate)
        with self._lock:
            self._stream, self._rate = stream, rate
        stream.start()

    def _open(self, sd, samples: np.ndarray, rate: int):
        current, pos = samples, 0
        queued = self._queued

        def callback(outdata, frames, time_info, status) -> None:
            nonlocal current, pos
            filled = 0
            while filled < frames:
                if pos >= len(current):
                    if not queued:
                        break
                    current, pos = queued.popleft(), 0
                    continue
                n = min(frames - filled, len(current) - pos)
                outdata[filled : filled + n, 0] = current[pos : pos + n]
                filled, pos = filled + n, pos + n
            outdata[filled:, 0] = 0
            if filled < frames:
                raise sd.CallbackStop

        return sd.OutputStream(samplerate=rate, channels=1, dtype="float32", device=self.device, callback=callback)

    def stop(self) -> bool:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is None:
            return False
        was = bool(stream.active)
        try:
            stream.abort()
            stream.close()
        except Exception as err:  # a lost output device: nothing left to stop
            log.debug("output stream: %s", err)
        return was

    @property
    def playing(self) -> bool:
        stream = self._stream
        return stream is not None and bool(stream.active)

    def wait(self, timeout: float = 60.0) -> None:
        """Until the reply in progress has played (the session is ending)."""
        deadline = time.monotonic() + timeout
        while self.playing and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.stop()


# devices --------------------------------------------------------------------------------
def devices() -> list[dict]:
    """What PortAudio sees; an empty list when there is no audio system at all."""
    try:
        import sounddevice as sd

        return [dict(d) for d in sd.query_devices()]
    except OSError as err:  # PortAudio itself missing
        log.debug("no PortAudio: %s", err)
        return []


def describe(devs: list[dict]) -> str:
    if not devs:
        return "none"
    return "; ".join(
        f"{d['index']}: {d['name']} (in {d['max_input_channels']}, out {d['max_output_channels']})" for d in devs
    )


def _default(kind: int) -> int | None:
    import sounddevice as sd

    try:
        value = sd.default.device[kind]
    except Exception:
        return None
    return int(value) if value is not None and int(value) >= 0 else None


def _pick(spec: str, devs: list[dict], channels_key: str, kind: int) -> dict | None:
    usable = [d for d in devs if d[channels_key] > 0]
    if not usable:
        return None
    spec = spec.strip()
    if not spec:
        default = _default(kind)
        return next((d for d in usable if d["index"] == default), usable[0])
    if spec.isdigit():
        return next((d for d in usable if d["index"] == int(spec)), None)
    matches = [d for d in usable if spec.lower() in d["name"].lower()]
    if len(matches) > 1:
        raise UserError(f"talk.device: {spec!r} matches several devices ({describe(matches)})")
    return matches[0] if matches else None


def input_device(spec: str) -> tuple[int, str]:
    """The input device ``spec`` names ("" = the default): (index, name), or a one-line UserError."""
    devs = devices()
    found = _pick(spec, devs, "max_input_channels", 0)
    if found is None:
        what = f"no input audio device matching {spec!r}" if spec.strip() and devs else "no input audio device"
        raise UserError(f"{what} (devices: {describe(devs)}); {NO_DEVICE_HINT}")
    return found["index"], found["name"]


def output_device(spec: str) -> tuple[int, str] | None:
    """The output device ``spec`` names ("" = the default), or None when there is none."""
    devs = devices()
    found = _pick(spec, devs, "max_output_channels", 1)
    if found is None and spec.strip():
        raise UserError(f"talk.output_device: no output audio device matching {spec!r} (devices: {describe(devs)})")
    return (found["index"], found["name"]) if found else None

"""Long audio: files are decoded in blocks (the same samples as decoding them whole), and turns
longer than Whisper's 30 s window are recognized in pieces cut at pauses, all of them heard.

The 1-hour figures (peak RSS, time) are measured by hand: docs/recorded-sessions.md "Recorded sessions".
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import soxr

from assistant.cli import main
from core.audio import PIPELINE_RATE, Audio, load_audio
from stages.asr import LAST_MIN_S, WINDOW_S, _cut_at_skip, windows
from tests.conftest import DATA, RECORDINGS

REAL = RECORDINGS / "real-speech"
# each clip, and words of its reference only it contains: at least one must be heard
CLIPS = [
    (REAL / "jfk.flac", {"americans", "country"}),
    (REAL / "goforward.wav", {"forward", "meters"}),
    (REAL / "austen-0890.wav", {"selfish", "disposed", "hearted"}),
    (REAL / "austen-0930.wav", {"amiable", "himself"}),
    (REAL / "quilter.wav", {"quilter", "apostle", "gospel", "classes"}),
    (DATA / "keywords-no-alexa.wav", {"americano", "avocado", "blueberry", "bumblebee"}),
    (RECORDINGS / "continuous" / "stream.wav", {"bedroom"}),  # its four commands, checked one by one below
]
COMMANDS = [{"bedroom"}, {"weather"}, {"coffee", "shopping"}, {"timer", "minutes"}]


def words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


# no models -------------------------------------------------------------------------------


def test_pieces_cover_the_audio_each_within_the_window_cut_at_a_pause():
    rng = np.random.default_rng(3)
    n = int(100 * PIPELINE_RATE)
    x = (0.3 * rng.standard_normal(n)).astype(np.float32)
    gaps = [(22.0, 22.6), (47.5, 48.1), (70.0, 70.5)]  # pauses inside each search range
    for a, b in gaps:
        x[int(a * PIPELINE_RATE) : int(b * PIPELINE_RATE)] = 0.0
    pieces = windows(n, x)
    assert pieces[0][0] == 0 and pieces[-1][1] == n
    assert all(b0 == a1 for (_a0, b0), (a1, _b1) in zip(pieces, pieces[1:]))  # contiguous
    assert all(0 < b - a <= WINDOW_S * PIPELINE_RATE for a, b in pieces)
    for (_a, b), (ga, gb) in zip(pieces, gaps):  # each cut falls in its pause
        assert ga * PIPELINE_RATE < b < gb * PIPELINE_RATE, (b / PIPELINE_RATE, ga, gb)
    assert windows(int(WINDOW_S * PIPELINE_RATE), x) == [(0, int(WINDOW_S * PIPELINE_RATE))]
    # no sliver at the end, whatever the length
    for seconds in (28.01, 29.0, 56.02, 84.5, 3600.0):
        m = int(seconds * PIPELINE_RATE)
        last = windows(m)[-1]
        assert last[1] - last[0] >= LAST_MIN_S * PIPELINE_RATE - 1
        assert all(b - a <= WINDOW_S * PIPELINE_RATE for a, b in windows(m))


def _segment(words: list[tuple[str, float, float]]):
    from faster_whisper.transcribe import Segment, Word

    return Segment(
        id=0,
        seek=0,
        start=words[0][1],
        end=words[-1][2],
        text="".join(w for w, _a, _b in words),
        tokens=[1] * len(words),
        avg_logprob=-0.2,
        compression_ratio=1.2,
        no_speech_prob=0.01,
        words=[Word(a, b, w, 0.9) for w, a, b in words],
        temperature=0.0,
    )


def test_a_decode_that_skipped_speech_resumes_at_the_stretched_word():
    first = _segment([(" Mr.", 1.0, 1.5), (" Quilter.", 1.7, 2.0)])
    second = _segment([(" He", 7.4, 7.6), (" might", 7.6, 7.9), (" and", 13.4, 20.4), (" rather", 20.4, 20.4)])
    kept, resume = _cut_at_skip([first, second])
    assert resume == 13.4 and kept[0] is first
    assert kept[1].text == " He might" and kept[1].end == 7.9 and len(kept[1].words) == 2
    # a word stretched over a pause early in the piece, or none at all: nothing to resume
    early = _segment([(" Alexa,", 0.5, 4.5), (" stop.", 4.6, 5.0)])
    assert _cut_at_skip([early]) == ([early], None)
    assert _cut_at_skip([first]) == ([first], None)


def test_decoding_in_blocks_gives_the_samples_of_decoding_whole(tmp_path):
    rng = np.random.default_rng(5)
    stereo = (0.2 * rng.standard_normal((int(3.7 * 44100), 2))).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    audio = load_audio(path)
    whole = soxr.resample(stereo.mean(axis=1), 44100, PIPELINE_RATE, quality="HQ")
    assert np.array_equal(audio.samples, whole)
    assert not audio.samples.flags.writeable


# models ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    """About 3 minutes of real speech: the clips, then the clips again in reverse order, with
    pauses; stored as 44.1 kHz stereo, as a long recording off a phone or a laptop would be."""
    parts = []
    for i, (path, _words) in enumerate(CLIPS + CLIPS[::-1]):
        parts += [load_audio(path), Audio.silence(0.5 + 0.25 * (i % 3))]
    mono = Audio.concat(parts).samples
    up = soxr.resample(mono, PIPELINE_RATE, 44100)
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, np.stack([up, up], axis=1), 44100, subtype="PCM_16")
    return path, len(mono) / PIPELINE_RATE


def _replay(capsys, *args) -> list[dict]:
    assert main(["replay", *map(str, args), "--json", "--stop", "asr"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.models
def test_a_long_turn_is_heard_in_pieces_from_beginning_to_end(long_file, capsys, tmp_path):
    path, seconds = long_file
    assert 150 < seconds < 200
    assert len(windows(int(seconds * PIPELINE_RATE))) >= 6
    (row,) = _replay(capsys, path, "--trace", tmp_path)
    assert not row["errors"], row["errors"]  # the token ceiling once failed every turn over 54 s
    heard = words(row["transcript"])
    for clip, distinctive in CLIPS:
        assert distinctive & set(heard), (clip.name, row["transcript"])
    for command in COMMANDS:
        assert command & set(heard), command
    real = json.loads((REAL / "session.json").read_text())["turns"]
    assert len(heard) > 2 * sum(len(words(t["gold"]["transcript"])) for t in real)  # and more was said
    # word times run through the whole file, piece offsets added
    trace = [json.loads(line) for line in (tmp_path / "long.jsonl").read_text().splitlines()]
    (asr,) = [r for r in trace if r["event"] == "stage_end" and r["stage"] == "asr"]
    starts = [w["start_s"] for w in asr["output"]["words"]]
    assert starts[-1] > seconds - 10 and starts[0] < 10
    assert sum(b < a - 1.0 for a, b in zip(starts, starts[1:])) == 0  # no piece's words out of place


@pytest.mark.models
def test_a_long_file_replays_as_a_continuous_session(long_file, capsys):
    path, _seconds = long_file
    rows = _replay(capsys, path, "--continuous")
    assert len(rows) == 2 * len(COMMANDS)  # each pass's four commands, nothing else
    for i, row in enumerate(rows):
        assert COMMANDS[i % 4] & set(words(row["transcript"] or "")), row["transcript"]

"""The trace browser (``assistant view``): what it writes, bad inputs, and the page in headless Chromium.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` (setup.sh installs them) and
skips, saying so, where they are missing.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from assistant.cli import main
from hooks import trace_reader as traces
from hooks.view import align_words, build, href
from tests import chromium

DATA = Path(__file__).resolve().parent / "data"
WAV = DATA / "keywords-no-alexa.wav"  # real speech, 11.5 s


def _rec(event: str, turn: int | None, stage: str | None, t: float, **kw) -> dict:
    return {
        "schema": "assistant.trace/1",
        "session": "hand-1",
        "turn": turn,
        "stage": stage,
        "event": event,
        "t": t,
        "time": 1.7e9 + t,
        **kw,
    }


def hand_trace(folder: Path) -> Path:
    """One session, one turn through every stage, with its utterance and reply as WAVs beside it
    (as the tracer writes them), oracle and learned labels and an injected fault."""
    (folder / "hand-1").mkdir(parents=True)
    shutil.copyfile(WAV, folder / "hand-1" / "turn001-utterance.wav")
    shutil.copyfile(WAV, folder / "hand-1" / "turn001-reply.wav")
    audio = {"utterance": "hand-1/turn001-utterance.wav", "reply": "hand-1/turn001-reply.wav"}
    said, heard = "turn on the kitchen light", "turn on the chicken light"
    outputs = {
        "wake": {
            "audio": {"sample_rate": 16000, "duration_s": 11.5},
            "start_s": 0.0,
            "end_s": 11.5,
            "endpoint": "silence",
            "wake": {"word": "alexa", "score": 0.91, "start_s": 0.0, "end_s": 0.5, "model": "alexa"},
            "source": "mic",
            "spoken": "Alexa, " + said,
            "condition": "clean",
            "voice": "hand",
        },
        "asr": {
            "text": heard,
            "words": [
                {
                    "text": w,
                    "start_s": i * 0.3,
                    "end_s": i * 0.3 + 0.25,
                    "probability": 0.41 if w == "chicken" else 0.97,
                }
                for i, w in enumerate(heard.split())
            ],
            "avg_logprob": -0.3,
            "no_speech_prob": 0.01,
            "compression_ratio": 1.1,
            "model": "tiny.en",
            "source": "asr",
        },
        "nlu": {
            "text": heard,
            "domain": "home",
            "intent": "TurnOn",
            "confidence": 0.93,
            "out_of_domain": False,
            "slots": [
                {
                    "name": "device",
                    "text": "chicken light",
                    "value": "chicken light",
                    "type": "device",
                    "start": 12,
                    "end": 25,
                    "confidence": None,
                }
            ],
            "nbest": [{"intent": "TurnOn", "score": 0.93}, {"intent": "TurnOff", "score": 0.05}],
            "model": "spacy-nlu/home",
            "coverage": 0.8,
        },
        "resolve": {
            "intent": "TurnOn",
            "entities": [
                {
                    "slot": "device",
                    "type": "device",
                    "text": "chicken light",
                    "id": "light.kitchen",
                    "name": "kitchen light",
                    "score": 0.72,
                    "candidates": [
                        {"id": "light.kitchen", "name": "kitchen light", "score": 0.72, "method": "fuzzy+context"},
                        {"id": "light.hall", "name": "hall light", "score": 0.4, "method": "fuzzy"},
                    ],
                    "method": "fuzzy+context",
                    "attributes": {},
                }
            ],
            "values": {},
            "clarification": None,
            "carried": ["room"],
        },
        "respond": {
            "intent": "TurnOn",
            "args": {"device": "light.kitchen"},
            "api": "turn_on",
            "status": "ok",
            "result": {"on": True},
            "reply": "The kitchen light is on.",
            "reply_type": "action",
            "expects": None,
        },
        "tts": {
            "text": "The kitchen light is on.",
            "audio": {"sample_rate": 16000, "duration_s": 11.5},
            "backend": "piper",
            "voice": "en_US-lessac",
            "first_chunk_ms": 40.0,
        },
    }
    ms = {"wake": 12.0, "asr": 310.0, "nlu": 22.0, "resolve": 4.0, "respond": 2.0, "tts": 120.0}
    recs = [
        _rec("session_start", None, None, 100.0, meta={"domain": "home", "condition": "clean", "voice": "hand"}),
        _rec(
            "turn_start",
            1,
            None,
            100.0,
            source="mic",
            start_s=11.5,
            input="audio",
            audio={"utterance": audio["utterance"]},
        ),
    ]
    t = 100.0
    for stage in ms:
        recs.append(_rec("stage_start", 1, stage, t, input_type="x"))
        t += ms[stage] / 1000
        end = _rec("stage_end", 1, stage, t, duration_ms=ms[stage], output=outputs[stage], signals={})
        if stage == "tts":
            end["audio"] = {"reply": audio["reply"]}
        recs.append(end)
    stages = {s: {"output": o, "signals": {}} for s, o in outputs.items()}
    signals = {
        "barge_in": False,
        "time_to_next_turn_s": None,
        "rephrase_of_previous": False,
        "similarity_to_previous": None,
        "lexical_overlap_previous": None,
        "next_is_rephrase": False,
        "negative_feedback": False,
        "next_negative_feedback": False,
        "abandoned": False,
        "repeat_count": 0,
    }
    p = {"wake": 0.02, "asr": 0.31, "nlu": 0.52, "resolve": 0.1, "result": 0.02, "correct": 0.03}
    recs.append(
        _rec(
            "turn_end",
            1,
            None,
            t,
            source="mic",
            start_s=11.5,
            reply_start_s=12.0,
            reply_end_s=23.5,
            wake={"word": "alexa", "score": 0.91},
            transcript=heard,
            intent="TurnOn",
            slots={"device": "chicken light"},
            entities={"device": "light.kitchen"},
            reply="The kitchen light is on.",
            reply_type="action",
            status="ok",
            ms=ms,
            errors=[],
            stages=stages,
            signals=signals,
            gold={"transcript": said, "intent": "TurnOn", "entities": {"device": "light.kitchen"}, "wake": True},
            correct=False,
            labels={
                "oracle": {"failure_point": "asr", "defect": True, "source": "oracle"},
                "predicted": {"failure_point": "nlu", "defect": True, "p": p, "p_defect": 0.9, "source": "learned:gbm"},
                "faults": ["asr:sub:kitchen->chicken"],
            },
            audio=audio,
        )
    )
    recs.append(_rec("session_end", None, None, t + 1, turns=1))
    path = folder / "hand-1.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return path


def test_hand_trace_is_a_valid_trace(tmp_path):
    for rec in traces.read_records(hand_trace(tmp_path)):
        assert traces.validation_errors(rec) == []


def test_align_words_marks_substitutions_drops_and_insertions():
    assert align_words("Turn on the light", "turn on a the light please") == [
        ("=", "Turn", "turn"),
        ("=", "on", "on"),
        ("+", None, "a"),
        ("=", "the", "the"),
        ("=", "light", "light"),
        ("+", None, "please"),
    ]
    assert [op for op, *_ in align_words("set a timer", "set the timer")] == ["=", "~", "="]
    assert [op for op, *_ in align_words("set a timer", "Set timer.")] == ["=", "-", "="]
    assert align_words("", "") == []


def test_href_is_the_hash_the_page_reads():
    assert href("../view/index.html", fp="asr") == "../view/index.html#fp=asr"
    assert href(cond="pink@10dB", defect=1, q=None) == "index.html#cond=pink%4010dB&defect=1"
    with pytest.raises(ValueError, match="bogus"):
        href(bogus="x")


def test_view_writes_only_into_out_names_bad_inputs_and_keeps_the_rest(tmp_path, capsys):
    good = tmp_path / "traces"
    hand_trace(good)
    (good / "notes.jsonl").write_text('{"hello": "world"}\n')  # JSON, but not a trace
    other = tmp_path / "other"
    other.mkdir()
    (other / "broken.jsonl").write_text("this is not json\n")
    before = sorted(p for p in tmp_path.rglob("*"))
    out = tmp_path / "out"
    rc = main(["view", str(good), str(tmp_path / "missing"), str(other / "broken.jsonl"), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 3 and all(line.startswith("assistant: ") for line in err)
    assert any("missing" in line and "no such" in line for line in err)
    assert any("notes.jsonl" in line and "not a trace" in line for line in err)
    assert any("broken.jsonl" in line and "not JSON" in line for line in err)
    # the good input is there, audio and all; nothing was written outside --out
    assert (out / "index.html").is_file() and (out / "data" / "s" / "hand-1.js").is_file()
    assert (out / "audio" / "hand-1" / "turn001-utterance.wav").read_bytes() == WAV.read_bytes()
    assert sorted(p for p in tmp_path.rglob("*") if out not in p.parents and p != out) == before
    manifest = (out / "data" / "manifest.js").read_text()
    assert '"sessions":1' in manifest
    # a rerun replaces its own view; a folder that is someone else's is refused
    assert main(["view", str(good / "hand-1.jsonl"), "--out", str(out)]) == 0
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "keep.txt").write_text("mine")
    assert main(["view", str(good / "hand-1.jsonl"), "--out", str(tmp_path / "theirs")]) == 2
    assert "not a view" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "theirs").iterdir()) == ["keep.txt"]
    # nothing readable at all: exit 2 and no view
    assert main(["view", str(tmp_path / "missing"), "--out", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "none").exists()


def test_default_out_is_view_in_the_first_folder(tmp_path, capsys):
    folder = tmp_path / "traces"
    hand_trace(folder)
    assert main(["view", str(folder)]) == 0
    assert (folder / "view" / "index.html").is_file()
    assert traces.trace_files([folder]) == [folder / "hand-1.jsonl"]  # the view is no trace


# the page in a browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    found = chromium.find()
    if found is None:
        pytest.skip(
            "headless Chromium is not installed (Debian: apt-get install chromium chromium-driver; setup.sh does)"
        )
    with chromium.Browser(*found, width=1280, height=1000) as b:
        yield b


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, config):
    from sim.simulator import SimOptions, run

    out = tmp_path_factory.mktemp("view-sim")
    run(config, SimOptions(sessions=4, seed=5, fidelity="text", out=str(out), workers=1))
    hand_trace(out)  # the audio session beside the simulated ones
    return out


def _audio_sources_exist(b) -> list[str]:
    srcs = b.js("return [...document.querySelectorAll('audio')].map(a => a.src)")
    for src in srcs:
        url = urlparse(src)
        assert url.scheme == "file" and Path(unquote(url.path)).is_file(), src
    return srcs


@pytest.mark.models
def test_the_page_filters_opens_a_session_and_a_turn(browser, small_run, tmp_path):
    started = time.monotonic()
    result = build([small_run], tmp_path / "view")
    assert result.sessions == 5 and not result.problems
    b = browser
    b.get((tmp_path / "view" / "index.html").as_uri())
    b.wait("document.body.dataset.ready")
    total = b.wait("document.querySelectorAll('#sessions tbody tr').length")
    assert total == 5 and "5 of 5 sessions" in b.text(b.find("#count")[0])

    # a failure-point filter, chosen in the form: every row left has such a turn, outlined
    b.click(b.find("#f-fp option[value='asr']")[0])
    b.wait("location.hash === '#fp=asr'")
    rows = b.find("#sessions tbody tr")
    assert rows
    assert b.js(
        "return [...document.querySelectorAll('#sessions tbody tr')].every("
        "r => r.querySelector('.oracle .cell.fp-asr.hit'))"
    )
    b.click(b.find("#f-pred option[value='nlu']")[0])  # …predicted nlu on the same turn
    b.wait("document.querySelectorAll('#sessions tbody tr').length === 1")
    b.click(b.find("#sessions tbody tr[data-key='hand-1']")[0])

    # the session: its turn, chosen by the filter; then clicked
    b.wait("document.querySelector('#turn-detail')")
    assert "s=hand-1" in b.js("return location.hash")
    b.click(b.find(".turn-card[data-turn='1']")[0])
    b.wait("location.hash.includes('t=1')")
    detail = b.text(b.find("#turn-detail")[0])
    assert "turn on the kitchen light" in detail and "chicken" in detail  # said vs heard
    assert b.js("return [...document.querySelectorAll('#turn-detail .heard .sub')].map(e => e.textContent)") == [
        "chicken"
    ]
    assert b.js("return [...document.querySelectorAll('#turn-detail .said .sub')].map(e => e.textContent)") == [
        "kitchen"
    ]
    assert "TurnOff" in detail and "light.hall" in detail and "room" in detail  # n-best, candidates, context
    assert "The kitchen light is on." in detail and "asr:sub:kitchen->chicken" in detail  # reply, fault
    stages = b.js("return [...document.querySelectorAll('#turn-detail .waterfall .span')].map(e => e.dataset.stage)")
    assert stages == ["wake", "asr", "nlu", "resolve", "respond", "tts"]
    widths = b.js(
        "return [...document.querySelectorAll('#turn-detail .waterfall .span')].map(e => e.getBoundingClientRect().width)"
    )
    assert widths[1] == max(widths)  # asr took longest
    assert len(b.find("#turn-detail .waterfall .tick")) == 1  # tts first chunk
    labels = b.text(b.find("#turn-detail table.labels")[0])
    assert "asr" in labels and "nlu" in labels and "learned:gbm" in labels and "0.520" in labels
    # audio: both players, each file in the view folder, and it plays from disk
    assert len(_audio_sources_exist(b)) == 2
    assert b.wait("[...document.querySelectorAll('audio')].every(a => a.readyState >= 1 && a.duration > 11)")

    # back to the list, filters kept; a simulated session and one of its turns
    b.click(b.find("#back")[0])
    b.wait("document.querySelector('#list') && !document.querySelector('#list').hidden")
    assert b.js("return location.hash") == "#fp=asr&pred=nlu"
    b.click(b.find("#f-clear")[0])
    b.wait("document.querySelectorAll('#sessions tbody tr').length === 5")
    b.click(b.find("#sessions tbody tr:not([data-key='hand-1'])")[0])
    b.wait("document.querySelector('#turn-detail')")
    cards = b.find(".turn-card")
    b.click(cards[-1])
    last = b.js("return document.querySelectorAll('.turn-card').length")
    b.wait(f"document.querySelector('#turn-detail').dataset.turn === '{last}'")
    detail = b.text(b.find("#turn-detail")[0])
    assert "said" in detail and "Labels".upper() in detail.upper() and "oracle" in detail
    assert b.find("#turn-detail .waterfall .span")
    _audio_sources_exist(b)
    assert time.monotonic() - started < 60


@pytest.mark.models
def test_report_figures_link_to_the_view_filtered(browser, small_run, tmp_path):
    from sim.report import render

    build([small_run], tmp_path / "view")
    page = render([small_run], tmp_path / "report")
    b = browser
    b.get(page.as_uri())
    link = b.find("a[href='../view/index.html#fp=asr']")
    assert link, "the failure-point figure links to its turns"
    b.click(link[0])
    b.wait("document.body.dataset.ready")
    assert b.js("return document.querySelector('#f-fp').value") == "asr"
    assert b.js(
        "return [...document.querySelectorAll('#sessions tbody tr')].every("
        "r => r.querySelector('.oracle .cell.fp-asr'))"
    )


def test_serve_is_local_lists_nothing_and_stops(tmp_path):
    import threading
    import urllib.error
    import urllib.request

    from hooks.view import server

    hand_trace(tmp_path / "traces")
    out = build([tmp_path / "traces"], tmp_path / "view").page.parent
    httpd = server(out, 0)
    host, port = httpd.server_address[:2]
    assert host == "127.0.0.1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as resp:
            assert resp.status == 200 and b"view.js" in resp.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/audio/hand-1/turn001-reply.wav", timeout=5) as resp:
            assert resp.read() == WAV.read_bytes()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/data/", timeout=5)
    finally:
        httpd.shutdown()
        httpd.server_close()
    thread.join(5)
    assert not thread.is_alive()

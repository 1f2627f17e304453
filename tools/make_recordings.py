"""Build the committed sample sessions in recordings/ (run once; the outputs are committed).

  real-speech/  real human speech clips from ../shared/data/smoke with reference transcripts
  home-demo/    a 20-turn home session spoken by festival's HTS voice, gold on every turn
  continuous/   one recording: real people saying "alexa" (../shared/data/wakeword), commands
                spoken by festival, real keyword speech and a remark nobody addressed to it

Usage: python tools/make_recordings.py [../shared/data]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.recorded_sessions import write_manifest  # noqa: E402
from core.audio import PIPELINE_RATE, Audio, load_audio, to_pipeline, write_wav  # noqa: E402
from stages.tts import FestivalSynth  # noqa: E402

START = "2026-03-14T08:00:00"

REAL = [
    # (source path under smoke/, name, reference transcript, license folder)
    (
        "openai_whisper/tests/jfk.flac",
        "jfk.flac",
        "and so my fellow americans ask not what your country can do for you ask what you can do for your country",
        "openai_whisper",
    ),
    (
        "cmusphinx_pocketsphinx/test/data/goforward.raw",
        "goforward.wav",
        "go forward ten meters",
        "cmusphinx_pocketsphinx",
    ),
    # 0880 ("he was not an ill disposed young man") comes out of tiny.en as "old-sposed": 25 % WER.
    (
        "cmusphinx_pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0890.wav",
        "austen-0890.wav",
        "unless to be rather cold hearted and rather selfish is to be ill disposed",
        "cmusphinx_pocketsphinx",
    ),
    (
        "cmusphinx_pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0930.wav",
        "austen-0930.wav",
        "he might even have been made amiable himself",
        "cmusphinx_pocketsphinx",
    ),
    (
        "picovoice_leopard/resources/audio_samples/test.wav",
        "quilter.wav",
        "mr quilter is the apostle of the middle classes and we are glad to welcome his gospel",
        "picovoice_leopard",
    ),
]

HOME = [
    ("Turn on the kitchen lights.", "TurnOn", {}, {"device": "light", "room": "kitchen"}, None),
    ("Turn them off.", "TurnOff", {}, {"device": "light", "room": "kitchen"}, None),
    (
        "Dim the living room lights to thirty percent.",
        "SetBrightness",
        {"level": 30},
        {"device": "light", "room": "living_room"},
        None,
    ),
    ("Set a timer.", "SetTimer", {}, {}, "elicit"),
    ("Ten minutes.", "SetTimer", {"duration": 600}, {}, None),
    (
        "What's the weather in Wilkerson tomorrow?",
        "GetWeather",
        {"date": "2026-03-15"},
        {"place": "wilkerson_ca"},
        None,
    ),
    ("Play Harry Potter.", "PlayMedia", {}, {"title": "harry_potter_audiobook"}, None),
    ("Stop.", "Stop", {}, {}, None),
    (
        "Set the thermostat to seventy two degrees.",
        "SetThermostat",
        {"temperature": {"value": 72, "unit": "F"}},
        {},
        None,
    ),
    ("Add eggs to my shopping list.", "AddToList", {}, {"item": "eggs"}, None),
    ("What's on my shopping list?", "ReadList", {}, {}, None),
    ("Turn on the oven.", "TurnOn", {}, {"device": "oven"}, None),
    ("What's the temperature?", "GetTemperature", {}, {"device": "oven"}, None),
    ("Unlock the front door.", "UnlockDoor", {}, {"device": "lock"}, "confirm"),
    ("Yes.", "UnlockDoor", {}, {"device": "lock"}, None),
    ("Play some jazz.", "PlayMusic", {}, {"genre": "jazz"}, None),
    ("What time is it?", "GetTime", {}, {}, None),
    ("Open the garage door.", "OpenDevice", {}, {"device": "garage_door"}, None),
    ("Set an alarm for six thirty tomorrow.", "SetAlarm", {"time": "06:30", "date": "2026-03-15"}, {}, None),
    ("Tell me a joke.", None, {}, {}, None),
]

CONTINUOUS = [
    # (alexa clip, command, intent, slots, entities) — None clip: speech nobody addressed to it
    ("3.flac", "Turn on the bedroom lights.", "TurnOn", {}, {"device": "light", "room": "bedroom"}),
    (None, "I think we should go to the park after lunch.", None, {}, {}),
    ("12.flac", "What's the weather tomorrow?", "GetWeather", {"date": "2026-03-15"}, {"place": "springfield_il"}),
    ("21.flac", "Add coffee to my shopping list.", "AddToList", {}, {"item": "coffee"}),
    ("33.flac", "Set a timer for five minutes.", "SetTimer", {"duration": 300}, {}),
]


def gold(text, intent, slots, entities, reply_type=None) -> dict:
    g: dict = {"transcript": text.lower().rstrip(".?!")}
    if intent is None:
        g["out_of_domain"] = True
    else:
        g["intent"] = intent
        if slots:
            g["slots"] = slots
        if entities:
            g["entities"] = entities
    if reply_type:
        g["reply_type"] = reply_type
    return g


def trim_silence(audio: Audio, pad_s: float = 0.15, floor: float = 0.02) -> Audio:
    """Cut leading and trailing silence (20 ms RMS below ``floor`` of the peak RMS)."""
    win = int(0.02 * audio.sample_rate)
    x = audio.samples
    rms = np.array([np.sqrt(np.mean(x[i : i + win] ** 2)) for i in range(0, max(1, len(x) - win), win)])
    loud = np.nonzero(rms >= floor * rms.max() * 10)[0]
    if len(loud) == 0:
        return audio
    start = max(0.0, loud[0] * win / audio.sample_rate - pad_s)
    end = min(audio.duration_s, (loud[-1] + 1) * win / audio.sample_rate + pad_s)
    return audio.slice(start, end)


def real_speech(data: Path, out: Path) -> None:
    folder = out / "real-speech"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "licenses").mkdir(parents=True)
    turns = []
    for src, name, ref, lic in REAL:
        path = data / "smoke" / src
        if name.endswith(".flac"):
            shutil.copy(path, folder / name)  # kept as 44.1 kHz stereo FLAC on purpose
        else:
            write_wav(folder / name, load_audio(path))  # goforward.raw is headerless: store as WAV
        shutil.copy(data / "smoke" / lic / "LICENSE", folder / "licenses" / f"{lic}.LICENSE")
        turns.append({"audio": name, "gold": {"transcript": ref, "out_of_domain": True}})
    write_manifest(
        folder,
        {
            "id": "real-speech",
            "start_time": START,
            "description": "Real people's speech, none of it a request the home assistant can serve: "
            "each turn should be transcribed faithfully and declined.",
            "provenance": "Copied from ../shared/data/smoke (see PROVENANCE.md): openai/whisper tests/jfk.flac "
            "(MIT; JFK's inaugural address, a US-government work); cmusphinx/pocketsphinx goforward.raw "
            "and LibriVox public-domain readings (CMU BSD-style license); Picovoice/leopard test.wav "
            "(Apache-2.0). goforward.raw was wrapped as 16 kHz WAV; nothing else changed.",
            "license": "see licenses/",
            "turns": turns,
        },
    )
    (folder / "PROVENANCE.md").write_text(
        "# Provenance\n\n| file | source | reference transcript from | license |\n|---|---|---|---|\n"
        "| jfk.flac | openai/whisper @ c0d2f624 tests/jfk.flac | faster-whisper tests | MIT (licenses/openai_whisper.LICENSE) |\n"
        "| goforward.wav | cmusphinx/pocketsphinx @ 511126b4 test/data/goforward.raw (wrapped as WAV) | decoder_test.py | CMU BSD-style (licenses/cmusphinx_pocketsphinx.LICENSE) |\n"
        "| austen-0890.wav, austen-0930.wav | cmusphinx/pocketsphinx @ 511126b4 test/data/librivox (LibriVox, public domain) | the .txt beside each | CMU BSD-style |\n"
        "| quilter.wav | Picovoice/leopard @ f0d80c61 resources/audio_samples/test.wav | test_data.json | Apache-2.0 (licenses/picovoice_leopard.LICENSE) |\n",
        encoding="utf-8",
    )


def home_demo(out: Path, synth: FestivalSynth) -> None:
    folder = out / "home-demo"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    turns = []
    for i, (text, intent, slots, entities, reply_type) in enumerate(HOME, 1):
        audio = synth.synthesize(text)
        name = f"turn{i:02d}.wav"
        write_wav(folder / name, to_pipeline(audio.samples, audio.sample_rate))
        turns.append({"audio": name, "gold": gold(text, intent, slots, entities, reply_type)})
    write_manifest(
        folder,
        {
            "id": "home-demo",
            "start_time": START,
            "description": "A morning in the default home: lights, a timer asked for in two turns, weather "
            "where the user's history decides Wilkerson, media on a speaker without a screen, "
            "the oven's temperature, a confirmed unlock, an alarm and one request it cannot serve.",
            "provenance": "Spoken by festival 2.5 with the festvox-us-slt-hts voice (Debian) via tools/make_recordings.py.",
            "license": "CC0-1.0 (synthetic speech made for this project)",
            "device": {"id": "kitchen_speaker", "room": "kitchen", "screen": False},
            "user": {"home": "springfield_il", "history": {"place": {"wilkerson_ca": 2}}},
            "turns": turns,
        },
    )


def continuous(data: Path, out: Path, synth: FestivalSynth) -> None:
    folder = out / "continuous"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "licenses").mkdir(parents=True)
    keywords = load_audio(data / "wakeword" / "multiple_keywords.wav")
    # Keyword speech by a real person, without the "Alexa" said at 8.1 s in that file.
    distractors = [keywords.slice(9.5, 16.5), keywords.slice(23.0, 31.5)]
    parts: list[Audio] = [Audio.silence(1.0)]
    rows = []
    t = 1.0

    def add(a: Audio) -> None:
        nonlocal t
        parts.append(a)
        t += a.duration_s

    for n, (clip, text, intent, slots, entities) in enumerate(CONTINUOUS):
        if n in (1, 3):
            add(distractors[0 if n == 1 else 1])
            add(Audio.silence(1.5))
        speech = synth.synthesize(text)
        speech = to_pipeline(speech.samples, speech.sample_rate)
        if clip is None:
            add(speech)
            add(Audio.silence(2.0))
            continue
        wake = trim_silence(load_audio(data / "wakeword" / "alexa" / clip))
        add(wake)
        wake_end = t
        add(Audio.silence(0.4))
        add(speech)
        add(Audio.silence(2.5))
        rows.append({"at_s": round(wake_end, 2), "gold": {**gold(text, intent, slots, entities), "wake": True}})
    stream = Audio.concat(parts)
    write_wav(folder / "stream.wav", stream)
    shutil.copy(data / "wakeword" / "LICENSE", folder / "licenses" / "wake-word-benchmark.LICENSE")
    write_manifest(
        folder,
        {
            "id": "continuous",
            "start_time": START,
            "audio": "stream.wav",
            "description": "One continuous recording with four wake words, each followed by a command; between "
            "them a real person reading keywords and a remark nobody addressed to the assistant.",
            "provenance": "Wake words: Picovoice/wake-word-benchmark alexa/3, 12, 21, 33.flac (real crowd-sourced "
            "speakers, Apache-2.0). Keyword speech: the same benchmark's multiple_keywords.wav at "
            "9.5-16.5 s and 23.0-31.5 s. Commands and the remark: festival festvox-us-slt-hts. "
            "at_s is where each wake word ends.",
            "license": "Apache-2.0 (licenses/wake-word-benchmark.LICENSE) for the recorded speech; CC0-1.0 for the rest",
            "device": {"id": "kitchen_speaker", "room": "bedroom", "screen": False},
            "turns": rows,
        },
    )


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    out = ROOT / "recordings"
    synth = FestivalSynth()
    real_speech(data, out)
    home_demo(out, synth)
    continuous(data, out, synth)
    print(f"wrote {out}/real-speech, home-demo, continuous ({PIPELINE_RATE} Hz)")


if __name__ == "__main__":
    main()

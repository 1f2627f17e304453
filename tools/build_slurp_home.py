"""Build core/domains/slurp_home.jsonl: SLURP devel mapped onto the home domain's intents.

Every one of SLURP devel's 2,033 crowd-written commands gets a home label, decided from the
meaning of its ``scenario_action`` label (the table below was written from the label names
and the annotation guidelines before any model was scored on it), refined by a few rules on
the command's own annotation where one SLURP label covers several home intents (a "timer"
inside ``alarm_set``; "resume" inside ``play_audiobook``):

* a home intent, with SLURP's entity spans renamed to the home slots that matter;
* ``__ood__``: a request far outside a home assistant (email, news, trivia, travel…), which
  the home assistant must decline;
* ``null`` (near-domain): a request about the home's own things that the home domain does not
  serve (alarm lists, light colours, volume, radio, podcasts, time zones…). It is scored apart:
  neither "understood" nor "declined" is obviously right for it.

Each command is assigned to a part, ``tune`` or ``dev`` (stratified by SLURP label, seeded):
the NLU may train and be tuned on ``tune``; ``dev`` is never trained or tuned on and gives
the figures README reports.

Usage: python tools/build_slurp_home.py ../shared/data/slurp/devel.jsonl
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "core" / "domains" / "slurp_home.jsonl"
SEED = 20261204
DEV_FRACTION = 0.5
OOD = "__ood__"

# SLURP label → home intent (or OOD / None), from the labels' meanings.
LABELS = {
    "alarm_set": "SetAlarm",
    "alarm_query": None,
    "alarm_remove": None,
    "weather_query": "GetWeather",
    "play_music": "PlayMusic",
    "play_audiobook": "PlayMedia",
    "play_radio": None,
    "play_podcasts": None,
    "play_game": None,
    "music_query": None,
    "music_likeness": None,
    "music_dislikeness": None,
    "music_settings": None,
    "iot_hue_lighton": "TurnOn",
    "iot_wemo_on": "TurnOn",
    "iot_hue_lightoff": "TurnOff",
    "iot_wemo_off": "TurnOff",
    "iot_hue_lightdim": "SetBrightness",
    "iot_hue_lightup": "SetBrightness",
    "iot_hue_lightchange": None,
    "iot_cleaning": None,
    "iot_coffee": None,
    "lists_createoradd": "AddToList",
    "lists_query": "ReadList",
    "lists_remove": None,
    "datetime_query": "GetTime",
    "datetime_convert": None,
    "audio_volume_up": None,
    "audio_volume_down": None,
    "audio_volume_mute": None,
}
OOD_SCENARIOS = {
    "qa",
    "email",
    "calendar",
    "news",
    "social",
    "transport",
    "takeaway",
    "recommendation",
    "cooking",
    "general",
}

# SLURP entity type → home slot, per home intent: the slots that matter when judging.
SLOTS = {
    "SetAlarm": {"time": "time", "date": "date"},
    "SetTimer": {"time": "duration"},
    "GetWeather": {"place_name": "place", "date": "date"},
    "PlayMusic": {"artist_name": "artist", "song_name": "song", "music_genre": "genre"},
    "PlayMedia": {"audiobook_name": "title"},
    "TurnOn": {"house_place": "room"},
    "TurnOff": {"house_place": "room"},
    "SetBrightness": {"house_place": "room"},
}
_ANNOT = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]*?)\s*\]")


def home_label(label: str, scenario: str, text: str, entities: list[tuple[str, str]]) -> str | None:
    low = text.lower()
    types = {t for t, _ in entities}
    settings = " ".join(v.lower() for t, v in entities if t == "player_setting")
    if label.startswith("alarm_") and "timer" in low:
        return {"alarm_set": "SetTimer", "alarm_query": "GetTimer", "alarm_remove": "CancelTimer"}[label]
    if label == "play_audiobook" and re.search(r"\b(resume|continue)\b", settings):
        return "ResumeMedia"
    if label == "play_audiobook" and re.search(r"\b(pause|break|stop)\b", settings):
        return "Stop"
    if label == "lists_createoradd" and not re.search(r"\b(add|put)\b", low):
        return None  # creating a list: the home domain has one shopping list
    if label == "datetime_query":
        # the time here and now; dates, weekdays and other time zones are not served
        if types & {"place_name", "time_zone", "date", "event_name"} or not re.search(r"\b(time|hour)\b", low):
            return None
    if label in LABELS:
        return LABELS[label]
    if scenario in OOD_SCENARIOS:
        return OOD
    return None


def spans(annotation: str, intent: str | None) -> tuple[str, list[list]]:
    """The plain sentence rebuilt from the annotation, with character spans of mapped slots."""
    wanted = SLOTS.get(intent or "", {})
    text, out, pos = "", [], 0
    for m in _ANNOT.finditer(annotation):
        text += annotation[pos : m.start()]
        value = m.group(2)
        if m.group(1) in wanted and value:
            out.append([len(text), len(text) + len(value), wanted[m.group(1)]])
        text += value
        pos = m.end()
    text += annotation[pos:]
    squeezed = re.sub(r"\s+", " ", text).strip()
    if squeezed != text:  # keep spans right: rebuild them on the squeezed text
        return _respan(text, out)
    return text, out


def _respan(text: str, out: list[list]) -> tuple[str, list[list]]:
    pieces = [(text[a:b], label) for a, b, label in out]
    clean = re.sub(r"\s+", " ", text).strip()
    fixed, cursor = [], 0
    for value, label in pieces:
        value = re.sub(r"\s+", " ", value).strip()
        idx = clean.find(value, cursor)
        if idx >= 0:
            fixed.append([idx, idx + len(value), label])
            cursor = idx + len(value)
    return clean, fixed


def main(devel: Path) -> None:
    rows = []
    for line in devel.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        label = f"{d['scenario']}_{d['action']}"
        entities = [(t.strip(), v.strip()) for t, v in _ANNOT.findall(d["sentence_annotation"])]
        intent = home_label(label, d["scenario"], d["sentence"], entities)
        text, slot_spans = spans(d["sentence_annotation"], intent)
        rows.append(
            {"id": f"slurp:{d['slurp_id']}", "text": text, "slurp": label, "intent": intent, "spans": slot_spans}
        )
    by_label: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_label[r["slurp"] + "/" + str(r["intent"])].append(r)
    rng = random.Random(SEED)
    for key in sorted(by_label):
        group = sorted(by_label[key], key=lambda r: r["id"])
        rng.shuffle(group)
        n_dev = round(len(group) * DEV_FRACTION)
        for i, r in enumerate(group):
            r["part"] = "dev" if i < n_dev else "tune"
    rows.sort(key=lambda r: int(r["id"].split(":")[1]))
    header = {
        "schema": "assistant.nlu-corpus/1",
        "domain": "home",
        "source": "SLURP devel (pswietojanski/slurp dataset/slurp/devel.jsonl), CC BY 4.0",
        "built_by": "tools/build_slurp_home.py",
        "seed": SEED,
        "dev_fraction": DEV_FRACTION,
    }
    OUT.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [header, *rows]) + "\n", encoding="utf-8")
    count: dict[tuple, int] = defaultdict(int)
    for r in rows:
        kind = "ood" if r["intent"] == OOD else ("near" if r["intent"] is None else "in-domain")
        count[(kind, r["part"])] += 1
    print(f"wrote {len(rows)} commands to {OUT}: " + ", ".join(f"{k} {p} {n}" for (k, p), n in sorted(count.items())))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))

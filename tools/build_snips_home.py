"""Build core/domains/snips_home.jsonl: SNIPS music and weather requests in the home domain's labels.

SNIPS (sonos/nlu-benchmark, CC0 1.0) holds 2,000 crowd-written commands for each of
``PlayMusic`` and ``GetWeather``. The home domain trains on a seeded sample of them beside
SLURP's tune part: real people's phrasings of the two intents that vary the most. Only the
training files (``train_*_full.json``) are read; ``validate_*.json`` stays the SNIPS
benchmark's score set. The commands the simulated users say (home_sim_phrasings.jsonl, built
from the same files by tools/build_sim_phrasings.py) are left out, so the NLU never trains on
a sentence the simulator speaks.

Slots are renamed to the home slots; a command is skipped when it names something the home
domain has no slot for and whose words would otherwise be taught as plain words (an album or a
playlist, a time of day instead of a day), so the tagger never learns a name as "not a name":

* PlayMusic: ``artist`` → artist, ``track`` → song, ``genre`` → genre; ``service``, ``sort``,
  ``year`` and ``music_item`` stay plain words ("on spotify", "the top", "from 1958", "a song").
* GetWeather: ``city``, ``state``, ``country``, ``geographic_poi`` → place; ``timeRange`` →
  date when it is nothing but a day (core.normalize.builtin_value); conditions and "here" stay
  plain words.

Usage: python tools/build_snips_home.py ../shared/data/snips [--per-intent N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.errors import InputError  # noqa: E402
from core.normalize import builtin_value  # noqa: E402
from stages.nlu.corpora import read_snips  # noqa: E402

OUT = ROOT / "core" / "domains" / "snips_home.jsonl"
SIM_PHRASINGS = ROOT / "core" / "domains" / "home_sim_phrasings.jsonl"
SEED = 20261206
RENAMED = {
    "PlayMusic": {"artist": "artist", "track": "song", "genre": "genre"},
    "GetWeather": {"city": "place", "state": "place", "country": "place", "geographic_poi": "place"},
}
PLAIN = {
    "PlayMusic": {"service", "sort", "year", "music_item"},
    "GetWeather": {"condition_temperature", "condition_description", "current_location", "spatial_relation"},
}


def home_spans(intent: str, text: str, spans) -> list[list] | None:
    """The command's spans in home slots, or None when it must be skipped."""
    out = []
    for a, b, label in spans:
        if label in RENAMED[intent]:
            out.append([a, b, RENAMED[intent][label]])
        elif intent == "GetWeather" and label == "timeRange":
            if builtin_value("date", text[a:b].lower()) is None:
                return None
            out.append([a, b, "date"])
        elif label not in PLAIN[intent]:
            return None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snips", help="the SNIPS folder (../shared/data/snips)")
    parser.add_argument("--per-intent", type=int, default=600, help="commands kept per intent")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    try:
        examples = read_snips(args.snips, "train")
    except InputError as err:
        print(f"build_snips_home: {err}", file=sys.stderr)
        return 2
    spoken = [json.loads(line) for line in SIM_PHRASINGS.read_text(encoding="utf-8").splitlines()[1:]]
    said_by_sim = {row["id"] for row in spoken}
    rows = []
    rng = random.Random(SEED)
    for intent in sorted(RENAMED):
        kept = []
        for i, ex in enumerate(e for e in examples if e.intent == intent):
            rid = f"snips:{intent}:{i}"
            spans = home_spans(intent, ex.text, ex.spans)
            if spans is not None and rid not in said_by_sim:
                kept.append({"id": rid, "text": ex.text, "intent": intent, "spans": spans})
        rng.shuffle(kept)
        rows += sorted(kept[: args.per_intent], key=lambda r: r["id"])
        print(f"{intent}: {len(kept)} usable, {min(len(kept), args.per_intent)} kept", file=sys.stderr)
    head = {
        "schema": "assistant.nlu-corpus/1",
        "domain": "home",
        "source": "SNIPS (sonos/nlu-benchmark, train_*_full.json), CC0 1.0",
        "built_by": "tools/build_snips_home.py",
        "seed": SEED,
    }
    Path(args.out).write_text("\n".join(json.dumps(r) for r in [head, *rows]) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

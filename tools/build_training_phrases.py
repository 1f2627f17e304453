"""Build core/domains/home_phrases/*.txt: real names that the home catalogs do not list.

The NLU learns where a slot is from the words around it only if it sees slots filled with
names it cannot know ("play {artist}" with thousands of artists). These are SNIPS' entity values
(CC0 1.0, sonos/nlu-benchmark, 2017-06-custom-intent-engines, train_*_full.json files), by type.

Usage: python tools/build_training_phrases.py ../shared/data/snips
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "core" / "domains" / "home_phrases"
# home catalog type → (SNIPS intent, entity types)
SOURCES = {
    "artist": [("PlayMusic", ("artist",)), ("AddToPlaylist", ("artist",))],
    "song": [("PlayMusic", ("track", "album")), ("AddToPlaylist", ("entity_name",))],
    "genre": [("PlayMusic", ("genre",))],
    "place": [("GetWeather", ("city", "country", "state", "geographic_poi"))],
    "title": [("SearchCreativeWork", ("object_name",)), ("RateBook", ("object_name",))],
}
PER_TYPE = 400
SEED = 7


def main(snips: Path) -> None:
    OUT.mkdir(exist_ok=True)
    rng = random.Random(SEED)
    for home_type, sources in SOURCES.items():
        values: set[str] = set()
        for intent, kinds in sources:
            raw = (snips / intent / f"train_{intent}_full.json").read_bytes().decode("utf-8", errors="replace")
            for row in json.loads(raw)[intent]:
                for chunk in row["data"]:
                    if chunk.get("entity") in kinds:
                        v = " ".join(chunk["text"].lower().split())
                        if v and len(v) <= 40 and "\ufffd" not in v:
                            values.add(v)
        chosen = sorted(rng.sample(sorted(values), min(PER_TYPE, len(values))))
        header = [
            f"# {home_type}: names from SNIPS (CC0 1.0) {', '.join(i for i, _ in sources)}; "
            "built by tools/build_training_phrases.py"
        ]
        (OUT / f"{home_type}.txt").write_text("\n".join(header + chosen) + "\n", encoding="utf-8")
        print(f"{home_type}: {len(chosen)} of {len(values)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))

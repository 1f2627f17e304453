"""Build core/domains/home_ood.txt: real people's requests the home domain should decline.

Sources (copied with their licenses into core/domains/LICENSES.md):
  SNIPS NLU benchmark (CC0 1.0): BookRestaurant, RateBook, SearchCreativeWork, SearchScreeningEvent
  SLURP devel (CC BY 4.0): scenarios outside the home domain (qa, email, calendar, news, ...)

Usage: python tools/build_ood_corpus.py ../shared/data
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

from build_slurp_home import OOD_SCENARIOS  # the scenarios a home assistant must decline

SNIPS_INTENTS = ("BookRestaurant", "RateBook", "SearchCreativeWork", "SearchScreeningEvent")
# Requests the home domain does serve must not be taught as out-of-domain.
HOME_WORDS = re.compile(
    r"\b(light|lights|lamp|timer|alarm|weather|temperature|thermostat|"
    r"lock|unlock|door|garage|shopping list|list|play|music|song|time is it|"
    r"what time|stop|pause|resume|oven|forecast|rain|degrees)\b"
)
PER_SNIPS_INTENT = 80
SLURP_TOTAL = 420


def main(data: Path, out: Path) -> None:
    rng = random.Random(13)
    lines: list[str] = []
    for intent in SNIPS_INTENTS:
        f = data / "snips" / intent / f"train_{intent}_full.json"
        rows = json.loads(f.read_bytes().decode("utf-8", errors="replace"))[intent]
        texts = sorted({"".join(p["text"] for p in r["data"]).strip().lower() for r in rows})
        texts = [t for t in texts if not HOME_WORDS.search(t)]
        lines += [f"snips:{intent}\t{t}" for t in rng.sample(texts, PER_SNIPS_INTENT)]
    # SLURP devel is split in core/domains/slurp_home.jsonl: only its tune part may be trained on.
    parts = {}
    for line in (out.parent / "slurp_home.jsonl").read_text(encoding="utf-8").splitlines()[1:]:
        row = json.loads(line)
        parts[row["id"]] = row["part"]
    slurp, held = [], []
    for line in (data / "slurp" / "devel.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if d["scenario"] in OOD_SCENARIOS and not HOME_WORDS.search(d["sentence"].lower()):
            entry = f"slurp:{d['scenario']}_{d['action']}\t{d['sentence'].strip().lower()}"
            (slurp if parts[f"slurp:{d['slurp_id']}"] == "tune" else held).append(entry)
    slurp = sorted(set(slurp))
    held = sorted(set(held) - set(slurp))
    chosen = rng.sample(slurp, min(SLURP_TOTAL, len(slurp)))
    lines += chosen
    # The dev part is what simulated users say: real requests the NLU never trained on.
    sim_header = [
        "# Out-of-domain requests simulated users make, one per line: SOURCE<TAB>TEXT.",
        "# SLURP devel (CC BY 4.0) sentences of the dev part of slurp_home.jsonl: the NLU never trains on them.",
    ]
    (out.parent / "home_ood_sim.txt").write_text("\n".join(sim_header + held) + "\n", encoding="utf-8")
    header = [
        "# Out-of-domain requests for the home domain, one per line: SOURCE<TAB>TEXT.",
        "# Written by people outside this project. Built by tools/build_ood_corpus.py;",
        "# SNIPS (CC0 1.0, sonos/nlu-benchmark) and SLURP devel (CC BY 4.0, pswietojanski/slurp).",
    ]
    out.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} sentences to {out}, {len(held)} to home_ood_sim.txt")


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else root.parent / "shared" / "data"),
        root / "core" / "domains" / "home_ood.txt",
    )

"""Build core/domains/home_sim_phrasings.jsonl: how real people phrase home requests, as
templates the simulated users fill (sim/phrasing.py).

The home NLU trains on the spec's templates, the ``tune`` part of slurp_home.jsonl and the
slot-value lists in home_phrases/. The simulated users must speak from other sources, so this
tool reads only:

* the ``dev`` part of core/domains/slurp_home.jsonl (SLURP devel, CC BY 4.0): never trained or
  tuned on;
* the SNIPS *training* sentences of GetWeather and PlayMusic (CC0 1.0): the NLU trains on
  SNIPS' slot values (home_phrases/) and on other sentences of the same files
  (snips_home.jsonl, which tools/build_snips_home.py builds without these), never on these.

Each command is delexicalized: its slot words become ``{slot}`` placeholders the simulator
fills with the domain's catalog values (or, sometimes, with the command's own words: a name
the catalog does not list). Builtin values (times, dates) stay as the person said them, as a
literal slot ``{time:ten am}``, when the domain's normalizer reads them. Commands whose words
say something the home domain cannot represent (a music service's sort order, a year, a
device the catalog lacks) are dropped: the gold of every generated request must be exact.

Usage: python tools/build_sim_phrasings.py ../shared/data/snips
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.domain import BUILTIN_TYPES, load_domain
from core.normalize import normalize
from stages.nlu.corpora import read_domain_corpus, read_snips

OUT = ROOT / "core" / "domains" / "home_sim_phrasings.jsonl"
SLURP_HOME = ROOT / "core" / "domains" / "slurp_home.jsonl"
SEED = 20261205
SNIPS_PER_INTENT = 400
# SNIPS slot → home slot; rows with any other slot (year, sort, album, playlist, spatial
# relation…) are dropped: the home domain cannot say what they mean.
SNIPS_SLOTS = {
    "GetWeather": {"city": "place", "state": "place", "country": "place", "timeRange": "date"},
    "PlayMusic": {"artist": "artist", "track": "song", "genre": "genre"},
}
SNIPS_LITERAL = {
    "GetWeather": {"current_location", "condition_description", "condition_temperature"},
    "PlayMusic": {"music_item", "service"},
}
WAKE_WORDS = re.compile(r"^(?:hey |ok |okay )?(?:olly|alexa|google|siri)\b[, ]*|[, ]+(?:olly|alexa)$", re.IGNORECASE)
DEVICE_INTENTS = {"TurnOn", "TurnOff", "SetBrightness"}
NEEDS_DEVICE = {"TurnOn", "TurnOff"}
# AddToList: SLURP marks no item; "add milk to my grocery list" says one
ITEM = re.compile(r"\b(?:add|put|include)\s+(?:some\s+)?(.+?)\s+(?:to|on|onto|in)\s+(?:my|the|our|a)\b[\w ]*\blist\b")
VAGUE_ITEMS = {"this", "it", "that", "something", "this item", "an item", "items", "an entry", "this to"}
YEAR = re.compile(r"\b(?:19|20)\d\d\b")
PERCENT = re.compile(r"\b(\d{1,3}\s?(?:%|percent)|(?:[a-z]+[- ])?[a-z]+ percent)\b")


def _device_phrases(domain) -> list[tuple[str, str]]:
    cat = domain.catalog_for("device")
    return sorted(((p, v.id) for v in cat.values for p in v.phrases), key=lambda x: -len(x[0]))


def _catalog_ids(domain, slot_type: str, words: str) -> str | None:
    cat = domain.catalog_for(slot_type)
    if cat is None:
        return None
    low = words.lower()
    for v in cat.values:
        if low in v.phrases:
            return v.id
    return None


def delexicalize(domain, intent: str, text: str, spans, rid: str, source: str) -> dict | None:
    """One row: the template, the original words of each placeholder; None when the command
    cannot be told exactly in the home domain's terms."""
    spec = domain.intents.get(intent)
    if spec is None:
        return None
    text = text.lower()
    spans = sorted((a, b, s) for a, b, s in spans)
    # devices the annotation does not mark: found by the catalog's own words
    if intent in DEVICE_INTENTS and not any(s == "device" for _a, _b, s in spans):
        for phrase, _id in _device_phrases(domain):
            m = re.search(rf"\b{re.escape(phrase)}\b", text)
            if m and not any(a < m.end() and m.start() < b for a, b, _s in spans):
                spans = sorted([*spans, (m.start(), m.end(), "device")])
                break
    if intent == "SetBrightness" and not any(s == "level" for _a, _b, s in spans):
        m = PERCENT.search(text)
        if m:
            spans = sorted([*spans, (m.start(), m.end(), "level")])
    if intent == "AddToList" and not any(s == "item" for _a, _b, s in spans):
        m = ITEM.search(text)
        if m is None or m.group(1) in VAGUE_ITEMS:
            return None
        spans = sorted([*spans, (m.start(1), m.end(1), "item")])
    if intent in NEEDS_DEVICE and not any(s == "device" for _a, _b, s in spans):
        return None
    out, pos, originals = "", 0, {}
    for a, b, slot in spans:
        if slot not in spec.slots or slot in originals:
            return None
        words = text[a:b].strip()
        stype = spec.slots[slot].type
        if stype in BUILTIN_TYPES:
            if normalize(stype, words) is None or YEAR.search(words):
                return None
            piece = "{" + slot + ":" + words + "}"
        else:
            if stype in ("room", "device") and _catalog_ids(domain, stype, words) is None:
                return None  # "the wemo plug", "a room": no value of the home's catalog
            piece = "{" + slot + "}"
            originals[slot] = words
        out += text[pos:a] + piece
        pos = b
    out += text[pos:]
    out = WAKE_WORDS.sub("", re.sub(r"\s+", " ", out).strip()).strip(" ,?.!")
    if not out or re.search(r"[\[\]]", out) or not re.search(r"[a-z]", re.sub(r"\{[^}]*\}", "", out)):
        return None
    return {"id": rid, "source": source, "intent": intent, "template": out, "originals": originals}


def main(snips: Path) -> None:
    domain = load_domain("home")
    rows: list[dict] = []
    dropped = Counter()
    for it in read_domain_corpus(SLURP_HOME, "dev"):
        if it.intent in (None, "__ood__"):
            continue
        row = delexicalize(domain, it.intent, it.text, it.spans, it.id, "slurp-dev")
        rows.append(row) if row else dropped.update(["slurp-dev"])
    rng = random.Random(SEED)
    by_intent: dict[str, list] = {}
    for ex in read_snips(snips, "train"):
        if ex.intent in SNIPS_SLOTS:
            by_intent.setdefault(ex.intent, []).append(ex)
    for intent, exs in sorted(by_intent.items()):
        kept = 0
        order = list(range(len(exs)))
        rng.shuffle(order)
        for i in order:
            ex = exs[i]
            mapping, literal = SNIPS_SLOTS[intent], SNIPS_LITERAL[intent]
            if any(s not in mapping and s not in literal for _a, _b, s in ex.spans):
                dropped.update(["snips"])
                continue
            spans = [(a, b, mapping[s]) for a, b, s in ex.spans if s in mapping]
            row = delexicalize(domain, intent, ex.text, spans, f"snips:{intent}:{i}", "snips-train")
            if row is None:
                dropped.update(["snips"])
                continue
            rows.append(row)
            kept += 1
            if kept >= SNIPS_PER_INTENT:
                break
    header = {
        "schema": "assistant.sim-phrasings/1",
        "domain": "home",
        "built_by": "tools/build_sim_phrasings.py",
        "sources": [
            "SLURP devel, dev part of slurp_home.jsonl (CC BY 4.0)",
            ("SNIPS 2017-06-custom-intent-engines train_GetWeather_full.json, train_PlayMusic_full.json (CC0 1.0)"),
        ],
        "seed": SEED,
    }
    OUT.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [header, *rows]) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} templates to {OUT} ({dict(Counter(r['intent'] for r in rows))}); dropped {dict(dropped)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))

"""Recognition that knows a grammar-defined domain: plain decoding, the beam re-ranked toward the
domain, and the re-ranked beam with the grammar's nearby wordings scored by the decoder
(``asr.recover``), on the same audio.

    .venv/bin/python tools/asr_domain_eval.py [--domain coffee] [--n 40] [--seed 3] [--json]

Clips: the domain's real recordings under ``recordings/`` (sessions whose "domain" is the
domain), as recorded and through each noisy condition ``--real-noises`` times, and ``--n`` held-out generated requests spoken by the simulator's voices through each
``--conditions`` channel (synthetic voices: a stress test, not a measure of real speech). A
clip counts as understood when the NLU stage, reading the transcript, finds the gold intent and
every gold slot (or declines a request the gold declines); as acted on wrongly when it finds an
intent and the clip is not understood (a wrong order, not a decline).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = {
    "plain": {"bias": False, "recover": False},
    "n-best": {"bias": True, "recover": False},
    "recover": {"bias": True, "recover": True},
}


def _real(domain: str, conditions: list[str], noises: int, seed: int):
    """The domain's recordings as recorded, then through each noisy condition ``noises``
    times (a real voice in simulated noise)."""
    from core.audio import load_audio
    from sim.channel import apply, parse_condition

    rng = random.Random(seed)

    for session_file in sorted(ROOT.glob("recordings/*/session.json")):
        session = json.loads(session_file.read_text())
        if session.get("domain") != domain:
            continue
        for turn in session["turns"]:
            gold = turn.get("gold") or {}
            audio = load_audio(session_file.parent / turn["audio"])
            slots = {k: str(v).replace("_", " ") for k, v in (gold.get("entities") or {}).items()}
            yield "real", audio, gold.get("transcript"), gold.get("intent"), slots
            for condition in conditions:
                if condition == "clean":
                    continue
                for _ in range(noises):
                    noisy = apply(parse_condition(condition), audio, rng)
                    yield f"real {condition}", noisy, gold.get("transcript"), gold.get("intent"), slots


def _synthetic(domain, n: int, seed: int, conditions: list[str]):
    from sim.channel import apply, parse_condition
    from sim.voices import sample_voice, speak
    from stages.nlu.recipes import EVAL_SEED, spec_heldout_examples

    # requests only: a bare answer ("the dark roast") means something only after a question
    requests = {name for name, spec in domain.intents.items() if not spec.is_dialogue_act}
    examples = [ex for ex in spec_heldout_examples(domain, EVAL_SEED, 40, set()) if ex.intent in requests]
    rng = random.Random(seed)
    rng.shuffle(examples)
    for ex in examples[:n]:
        voice = sample_voice(rng)
        clean = speak(voice, ex.text)
        slots = {label: ex.text[a:b] for a, b, label in ex.spans}
        for condition in conditions:
            audio = apply(parse_condition(condition), clean, rng)
            yield f"synthetic {condition}", audio, ex.text, ex.intent, slots


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--domain", default="coffee")
    p.add_argument("--n", type=int, default=40, help="generated requests (each through every condition)")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--real-noises", type=int, default=5, help="times each recording goes through each noise")
    p.add_argument("--conditions", nargs="+", default=["clean", "babble@18dB", "babble@12dB", "babble@6dB"])
    p.add_argument("--misses", action="store_true", help="also list every clip a mode did not understand")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    from core.config import Config, cache_dir
    from core.domain import load_domain
    from core.wer import edit_distance, normalize_words
    from stages.asr import AsrOptions, WhisperAsr
    from stages.nlu import NluOptions, NluStage, load_or_train
    from stages.nlu.evaluate import slot_matches
    from stages.nlu.recipes import configured_spec

    config = Config.load()
    domain = load_domain(args.domain)
    nlu = NluStage(
        domain, load_or_train(domain, cache_dir(config), configured_spec(config)), NluOptions.from_config(config)
    )
    recognizers = {mode: WhisperAsr(AsrOptions(**settings), domain) for mode, settings in MODES.items()}
    clips = list(_real(args.domain, args.conditions, args.real_noises, args.seed)) + list(
        _synthetic(domain, args.n, args.seed, args.conditions)
    )
    table: dict[str, dict[str, dict]] = {}
    changed, misses = [], []
    for group, audio, ref, intent, slots in clips:
        heard = {}
        for mode, asr in recognizers.items():
            started = time.perf_counter()
            text = asr.transcribe(audio.samples).text
            spent = time.perf_counter() - started
            heard[mode] = text
            got = nlu.interpret(text)
            found = {s.name: s.text for s in got.slots}
            ok = got.intent == intent and all(slot_matches(w, found.get(k, "")) for k, w in slots.items())
            if intent is None:
                ok = got.out_of_domain
            if not ok:
                misses.append(
                    {"group": group, "mode": mode, "ref": ref, "heard": text, "got": got.intent, "found": found}
                )
            row = table.setdefault(group, {}).setdefault(
                mode, {"n": 0, "understood": 0, "wrong": 0, "errors": 0, "words": 0, "seconds": 0.0}
            )
            row["n"] += 1
            row["seconds"] += spent
            row["understood"] += ok
            row["wrong"] += not ok and got.intent is not None
            if ref:  # the real clips come without a reference transcript
                ref_words = normalize_words(ref)
                row["errors"] += edit_distance(ref_words, normalize_words(text))
                row["words"] += len(ref_words)
        if len(set(heard.values())) > 1:
            changed.append({"group": group, "ref": ref, **heard})
    for group in table:
        for row in table[group].values():
            row["understood_pct"] = round(100 * row["understood"] / row["n"], 1)
            row["decode_ms_mean"] = round(1000 * row.pop("seconds") / row["n"], 1)
            row["wer_pct"] = round(100 * row["errors"] / row["words"], 1) if row["words"] else None
    recovered = recognizers["recover"].model.model.recovered
    if args.json:
        out = {"domain": args.domain, "table": table, "recovered": recovered, "changed": changed}
        print(json.dumps(out | ({"misses": misses} if args.misses else {})))
        return 0
    for group, modes in table.items():
        cells = "  ".join(
            f"{m}: {r['understood']}/{r['n']} understood ({r['wrong']} wrong), WER {r['wer_pct']} %, {r['decode_ms_mean']} ms"
            for m, r in modes.items()
        )
        print(f"{group:22} {cells}")
    print(f"decodes recovered: {recovered}")
    for c in changed:
        print(f"  [{c['group']}] {c['ref']!r}: " + " | ".join(f"{m}={c[m]!r}" for m in MODES))
    for m in misses if args.misses else ():
        print(f"  missed [{m['group']}, {m['mode']}] {m['ref']!r} heard {m['heard']!r} → {m['got']} {m['found']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

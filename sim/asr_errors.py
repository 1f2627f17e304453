"""An ASR error model fitted from audio-fidelity runs, used by text fidelity.

Fitting aligns what simulated users said with what the real ASR heard, per acoustic condition:
substitution, deletion and insertion rates, which words became which (confusion pairs), what
got inserted, and the confidence signals that came with correct and wrong words. Text fidelity
then corrupts the user's words with the same statistics and emits a Transcript with matching
confidence signals — orders of magnitude faster than synthesizing, adding noise and decoding.

Voices differ more than most conditions do (tiny.en hears festival's HTS voice far better than
flite's kal), so each synthetic voice also gets a factor on its error and wake-miss rates:
observed errors over those its conditions predict, shrunk toward 1 when it was heard little.
Text fidelity draws voices the way audio fidelity does, so a seed's voice mix, and with it its
word error rate per condition, carries over.

The model is a JSON file (no code): ``sim/data/asr_errors.json`` is the one fitted here.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from core.artifacts import read_json_artifact
from core.errors import InputError
from core.records import Transcript, Word
from core.wer import normalize_words

DEFAULT_MODEL = Path(__file__).parent / "data" / "asr_errors.json"
FORMAT = "assistant.asr-errors/1"
PRIOR = 1.0  # pseudo-count pulling per-word confusion toward the condition's rates
VOICE_PRIOR = 10.0  # pseudo-errors pulling a voice's factor toward 1
MAX_P_ERR = 0.95
# A speaker's accent: a recognizer mishears the same speaker's same words again and again, in the
# same way. A share of each speaker's words (by a hash of speaker and word) is hard for them,
# misheard ACCENT_FACTOR times as often as the rates say (at most MAX_P_ERR); the others less, so
# that the rate over speakers is unchanged. A misheard word usually turns into the same wrong word
# (ACCENT_STICKY).
ACCENT_SHARE = 0.15
ACCENT_FACTOR = 4.0
ACCENT_STICKY = 0.8
# Wake-word behavior when a condition has no observations (openWakeWord's stated targets are
# under 5 % false rejects and 0.5 false accepts per hour).
DEFAULT_WAKE = {
    "false_reject": 0.03,
    "false_accept": 0.02,
    "score_mean": 0.97,
    "score_sd": 0.05,
    "addressed": 0,
    "background": 0,
}


def align(ref: list[str], hyp: list[str]) -> list[tuple[str | None, str | None]]:
    """Levenshtein alignment as (ref word, hyp word) pairs; None marks a deletion/insertion."""
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i
    for j in range(1, m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((ref[i - 1], None))
            i -= 1
        else:
            pairs.append((None, hyp[j - 1]))
            j -= 1
    return pairs[::-1]


@dataclass
class _Stats:
    """Mutable accumulator while fitting one condition."""

    words: int = 0
    subs: int = 0
    dels: int = 0
    ins: int = 0
    utterances: int = 0
    confusions: dict = field(default_factory=lambda: defaultdict(Counter))
    insertions: Counter = field(default_factory=Counter)
    ref_counts: Counter = field(default_factory=Counter)
    prob_ok: list = field(default_factory=list)
    prob_err: list = field(default_factory=list)
    logprob_clean: list = field(default_factory=list)
    logprob_error: list = field(default_factory=list)
    no_speech: list = field(default_factory=list)

    def add(self, ref_text: str, transcript: Mapping) -> tuple[int, int]:
        """Count one utterance; returns its (word errors, reference words)."""
        ref = normalize_words(ref_text)
        hyp_words = transcript.get("words") or []
        hyp = normalize_words(transcript.get("text") or "")
        pairs = align(ref, hyp)
        self.utterances += 1
        self.words += len(ref)
        self.ref_counts.update(ref)
        errors = 0
        for r, h in pairs:
            if r is not None and h is not None and r != h:
                self.subs += 1
                self.confusions[r][h] += 1
                errors += 1
            elif r is not None and h is None:
                self.dels += 1
                self.confusions[r][""] += 1
                errors += 1
            elif r is None and h is not None:
                self.ins += 1
                self.insertions[h] += 1
                errors += 1
        probs = [float(w.get("probability", 1.0)) for w in hyp_words]
        # Word probabilities are attributed by rank: as many low ones as there were errors.
        ranked = sorted(probs)
        self.prob_err.extend(ranked[:errors])
        self.prob_ok.extend(ranked[errors:])
        lp = transcript.get("avg_logprob")
        if lp is not None:
            (self.logprob_error if errors else self.logprob_clean).append(float(lp))
        if transcript.get("no_speech_prob") is not None:
            self.no_speech.append(float(transcript["no_speech_prob"]))
        return errors, len(ref)

    def to_json(self) -> dict:
        n = max(self.words, 1)
        return {
            "utterances": self.utterances,
            "words": self.words,
            "sub_rate": self.subs / n,
            "del_rate": self.dels / n,
            "ins_rate": self.ins / n,
            "wer": (self.subs + self.dels + self.ins) / n,
            "confusions": {w: dict(c.most_common(8)) for w, c in self.confusions.items()},
            "ref_counts": dict(self.ref_counts),
            "insertions": dict(self.insertions.most_common(30)),
            "word_prob_ok": _summary(self.prob_ok, 0.9),
            "word_prob_err": _summary(self.prob_err, 0.4),
            "avg_logprob_clean": _summary(self.logprob_clean, -0.3),
            "avg_logprob_error": _summary(self.logprob_error, -0.8),
            "no_speech_prob": _summary(self.no_speech, 0.02),
        }


def _summary(values: list[float], default: float) -> dict:
    if not values:
        return {"mean": default, "sd": 0.1, "n": 0}
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) if len(values) > 1 else 0.1
    return {"mean": round(mean, 4), "sd": round(max(sd, 0.01), 4), "n": len(values)}


def voice_base(voice_id: str | None) -> str:
    """``flite:kal:r1.1:p-2`` → ``flite:kal`` (rate and pitch vary per session)."""
    return ":".join(voice_id.split(":")[:2]) if voice_id else ""


def _factor(observed: float, expected: float) -> dict:
    """A voice's rate multiplier with VOICE_PRIOR pseudo-events at factor 1."""
    return {
        "factor": round((observed + VOICE_PRIOR) / (expected + VOICE_PRIOR), 4),
        "observed": round(observed, 2),
        "expected": round(expected, 2),
    }


@dataclass(frozen=True)
class AsrErrorModel:
    conditions: Mapping[str, dict]
    source: str = ""
    voices: Mapping[str, dict] = field(default_factory=dict)  # voice base → {"asr": factor…, "wake": …}
    # kind ("asr", "wake") → a factor on every voice: the model is fitted on synthetic voices;
    # a traffic profile of real people scales their error rates to those measured on real speech
    scale: Mapping[str, float] = field(default_factory=dict)

    # fitting -------------------------------------------------------------------------
    @classmethod
    def fit(cls, samples: Iterable[tuple], wake_samples: Iterable[tuple] = (), source: str = "") -> "AsrErrorModel":
        """``samples``: (condition, what the user said, the Transcript as JSON[, voice id]);
        ``wake_samples``: (condition, wake word said?, detector fired?, its score[, voice id])."""
        stats: dict[str, _Stats] = defaultdict(_Stats)
        per_utterance = []  # (condition, voice, words, errors)
        for condition, spoken, transcript, *voice in samples:
            if spoken:
                errors, words = stats[condition].add(spoken, transcript)
                stats["*"].add(spoken, transcript)
                per_utterance.append((condition, voice_base(voice[0] if voice else None), words, errors))
        if not stats:
            raise ValueError("no (spoken text, transcript) pairs to fit")
        wake: dict[str, list] = defaultdict(list)
        wake_voice = []
        for condition, addressed, fired, score, *voice in wake_samples:
            wake[condition].append((addressed, fired, score))
            wake["*"].append((addressed, fired, score))
            if addressed:
                wake_voice.append((condition, voice_base(voice[0] if voice else None), not fired))
        conditions = {}
        for c, st in sorted(stats.items()):
            conditions[c] = {**st.to_json(), "wake": _wake_rates(wake.get(c, []))}
        return cls(conditions, source, _voice_factors(conditions, per_utterance, wake_voice))

    # persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {"format": FORMAT, "source": self.source, "conditions": self.conditions, "voices": self.voices},
                indent=1,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        return path

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> "AsrErrorModel":
        path = Path(path)
        data = read_json_artifact(
            path, FORMAT, "an ASR error model", "no such ASR error model (fit one with `assistant asr-errors fit`)"
        )
        if not data.get("conditions"):
            raise InputError(path, "no conditions", field="conditions")
        return cls(data["conditions"], data.get("source", ""), data.get("voices") or {})

    # use -------------------------------------------------------------------------------
    def condition(self, name: str) -> dict:
        if name in self.conditions:
            return self.conditions[name]
        return self.conditions.get("*") or next(iter(self.conditions.values()))

    def voice_factor(self, voice: str | None, kind: str = "asr") -> float:
        """How much more often than its condition says this voice is misheard (1: unknown voice)."""
        factor = float((self.voices.get(voice_base(voice)) or {}).get(kind, {}).get("factor", 1.0))
        return factor * float(self.scale.get(kind, 1.0))

    def lexicon(self) -> frozenset[str]:
        """Every word the fitted ASR produced: what a substitution may sound like."""
        words = set()
        for c in self.conditions.values():
            for conf in c["confusions"].values():
                words.update(w for w in conf if w)
            words.update(c["insertions"])
            words.update(c["ref_counts"])
        return frozenset(words)

    def corrupt(
        self, spoken: str, condition: str, rng: random.Random, sounds_like=None, voice: str | None = None
    ) -> Transcript:
        """What the ASR would have heard: the user's words with this condition's errors
        (scaled by the voice's factor).

        A word with no confusions of its own is replaced by one that sounds like it
        (``sounds_like(word) -> list[str]``), as an ASR would, when such a word is known.
        """
        c = self.condition(condition)
        words = normalize_words(spoken)
        out: list[tuple[str, bool]] = []  # (word, correct?)
        base = c["sub_rate"] + c["del_rate"]
        scale = self.voice_factor(voice)
        for w in words:
            conf = c["confusions"].get(w) or {}
            seen = c["ref_counts"].get(w, 0)
            hard, accent_rng = speaker_accent(voice, w)
            # the word's own error history, shrunk toward the condition's rate (unseen words: the rate)
            p_err = min(MAX_P_ERR, scale * (sum(conf.values()) + PRIOR * base) / (seen + PRIOR))
            p_hard = min(MAX_P_ERR, ACCENT_FACTOR * p_err)
            # over speakers the word keeps its rate: the easy share takes what the hard one does not
            p_err = p_hard if hard else (p_err - ACCENT_SHARE * p_hard) / (1 - ACCENT_SHARE)
            if rng.random() < p_err:
                # the speaker's usual way of being misheard, or (less often) another
                how = accent_rng if rng.random() < ACCENT_STICKY else rng
                if conf:
                    choice = _draw(conf, how)
                elif how.random() < c["del_rate"] / max(base, 1e-9):
                    choice = ""
                else:
                    near = sounds_like(w) if sounds_like else []
                    choice = how.choice(near) if near else (_draw(c["insertions"], how) or "")
                if choice:
                    out.append((choice, False))
            else:
                out.append((w, True))
            if c["insertions"] and rng.random() < min(MAX_P_ERR, scale * c["ins_rate"]):
                out.append((_draw(c["insertions"], rng), False))
        errors = sum(not ok for _w, ok in out) + max(0, len(words) - len(out))
        probs = [
            _clip(
                rng.gauss(
                    c["word_prob_ok"]["mean"] if ok else c["word_prob_err"]["mean"],
                    c["word_prob_ok"]["sd"] if ok else c["word_prob_err"]["sd"],
                ),
                0.01,
                1.0,
            )
            for _w, ok in out
        ]
        lp = c["avg_logprob_error"] if errors else c["avg_logprob_clean"]
        text = " ".join(w for w, _ok in out)
        t, word_records = 0.0, []
        for (w, _ok), p in zip(out, probs):
            word_records.append(Word(w, round(t, 2), round(t + 0.3, 2), round(p, 4)))
            t += 0.35
        return Transcript(
            text=text,
            words=tuple(word_records),
            avg_logprob=round(min(0.0, rng.gauss(lp["mean"], lp["sd"])), 4),
            no_speech_prob=round(_clip(rng.gauss(c["no_speech_prob"]["mean"], c["no_speech_prob"]["sd"]), 0.0, 1.0), 4),
            model=f"asr-error-model/{condition}",
            source="simulated",
        )

    def wer(self, condition: str) -> float:
        return float(self.condition(condition)["wer"])

    def wake(self, condition: str, voice: str | None = None) -> dict:
        rates = {**DEFAULT_WAKE, **(self.condition(condition).get("wake") or {})}
        rates["false_reject"] = min(MAX_P_ERR, rates["false_reject"] * self.voice_factor(voice, "wake"))
        return rates

    def voice_bases(self) -> tuple[str, ...]:
        """The voices the model was fitted on, sorted (what text fidelity draws from)."""
        return tuple(sorted(self.voices))


def _voice_factors(conditions: Mapping[str, dict], utterances: list, wake_misses: list) -> dict:
    """Per voice: observed word errors / wake misses over what its conditions predict."""
    asr: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for condition, voice, words, errors in utterances:
        if voice:
            asr[voice][0] += errors
            asr[voice][1] += words * conditions[condition]["wer"]
    wake: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for condition, voice, missed in wake_misses:
        if voice:
            wake[voice][0] += missed
            wake[voice][1] += conditions.get(condition, conditions["*"])["wake"]["false_reject"]
    return {
        v: {"asr": _factor(*asr.get(v, (0.0, 0.0))), "wake": _factor(*wake.get(v, (0.0, 0.0)))}
        for v in sorted(set(asr) | set(wake))
    }


def _wake_rates(obs: list[tuple[bool, bool, float | None]]) -> dict:
    """False reject / accept rates with a weak prior toward the defaults (few observations)."""
    addressed = [(fired, score) for a, fired, score in obs if a]
    background = [fired for a, fired, _s in obs if not a]
    prior = 5.0
    fr = (sum(not f for f, _s in addressed) + prior * DEFAULT_WAKE["false_reject"]) / (len(addressed) + prior)
    fa = (sum(background) + prior * DEFAULT_WAKE["false_accept"]) / (len(background) + prior)
    scores = _summary([s for f, s in addressed if f and s is not None], DEFAULT_WAKE["score_mean"])
    return {
        "false_reject": round(fr, 4),
        "false_accept": round(fa, 4),
        "score_mean": scores["mean"],
        "score_sd": scores["sd"],
        "addressed": len(addressed),
        "background": len(background),
    }


def speaker_accent(speaker: str | None, word: str) -> tuple[bool, random.Random]:
    """Whether ``word`` is hard for this speaker, and the generator of how it is misheard: both
    depend only on the speaker (the voice id) and the word."""
    digest = hashlib.sha256(f"accent|{speaker or ''}|{word}".encode()).digest()
    hard = int.from_bytes(digest[:4], "big") / 2**32 < ACCENT_SHARE
    return hard, random.Random(int.from_bytes(digest[4:12], "big"))


def _draw(counts: Mapping[str, int] | None, rng: random.Random) -> str | None:
    if not counts:
        return None
    total = sum(counts.values())
    r = rng.random() * total
    for word, n in sorted(counts.items()):
        r -= n
        if r <= 0:
            return word
    return next(iter(counts))


def _clip(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def samples_from_traces(paths) -> tuple[list, list]:
    """(condition, spoken, transcript) and wake observations from audio-fidelity traces.

    Background speech the detector ignored leaves no turn in a trace; the run's ``run.json``
    counts it, and is read when it sits beside the traces.
    """
    from hooks.trace_reader import trace_files, turn_ends

    samples, wake = [], []
    for r in turn_ends(paths):
        stages, gold = r.get("stages") or {}, r.get("gold") or {}
        utt = (stages.get("wake") or {}).get("output") or {}
        condition = utt.get("condition") or "clean"
        asr = (stages.get("asr") or {}).get("output")
        voice = utt.get("voice") or ""
        if asr and gold.get("transcript") and asr.get("source") == "asr" and gold.get("wake") is not False:
            samples.append((condition, gold["transcript"], asr, voice))
        if "wake" in (r.get("ms") or {}) and gold.get("wake") is True:
            fired = utt.get("endpoint") != "no_wake"
            wake.append((condition, True, fired, (r.get("wake") or {}).get("score"), voice))
    for folder in {Path(p).parent if Path(p).is_file() else Path(p) for p in map(str, trace_files(paths))}:
        run = folder / "run.json"
        if run.is_file():
            counts = json.loads(run.read_text(encoding="utf-8")).get("wake_by_condition", {})
            for condition, c in counts.items():
                fa = int(c.get("false_accepts", 0))
                wake += [(condition, False, True, None)] * fa
                wake += [(condition, False, False, None)] * max(0, int(c.get("background", 0)) - fa)
    return samples, wake


class SoundsLike:
    """Words that sound like a given one (metaphone codes close, spelling similar)."""

    def __init__(self, lexicon):
        import jellyfish

        self._words = sorted(w for w in lexicon if w.isalpha() and len(w) > 1)
        self._codes = {w: jellyfish.metaphone(w) for w in self._words}
        # words by the length of their code: codes one edit apart differ in length by one at most
        self._by_length: dict[int, list[str]] = defaultdict(list)
        for w in self._words:
            self._by_length[len(self._codes[w])].append(w)
        self._cache: dict[str, list[str]] = {}

    def __call__(self, word: str) -> list[str]:
        if word not in self._cache:
            import jellyfish
            from rapidfuzz import fuzz

            code = jellyfish.metaphone(word) if word.isalpha() else word
            n = len(code)
            within = sorted(w for k in (n - 1, n, n + 1) for w in self._by_length.get(k, ()))
            near = [
                w
                for w in within
                if w != word
                and (jellyfish.levenshtein_distance(self._codes[w], code) <= 1 and fuzz.ratio(w, word) >= 50)
            ]
            self._cache[word] = near[:12]
        return self._cache[word]

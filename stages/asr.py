"""Speech recognition with faster-whisper.

The transcript keeps Whisper's own quality signals (``avg_logprob``, ``no_speech_prob``,
per-word probabilities). Segments Whisper itself thinks are silence are dropped, so noise
does not become "You". Decoding is deterministic (temperature 0, no sampling fallback) so that
replays repeat exactly.

By default the encoder sees a fitted window (the audio padded with silence to 15 s) instead of
Whisper's 30 s: about twice as fast on commands, same word error rate on the bundled and real
clips (docs/stages.md "ASR speed"); audio over ``FIT_MAX_S`` gets the full window. A decode that loops
is redone with the full window.

Audio longer than one window (a long turn, an hour-long file) is decoded in pieces of at most
``WINDOW_S``, each cut at the quietest moment near its end, so tokens per decode stay under
Whisper's 448 and memory does not grow with the length (docs/recorded-sessions.md "Recorded sessions").
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import logging
import math
import re
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.audio import PIPELINE_RATE
from core.domain import Domain, domain_vocabulary, vocabulary_share
from core.model_files import whisper_model
from core.records import Transcript, Utterance, Word

log = logging.getLogger(__name__)

# Weight of the domain-vocabulary share in n-best rescoring, in Whisper's length-normalized
# log-probability units. Measured on recordings/: 0.3 turns "Stomp." into "Stop." while leaving
# real out-of-domain speech unchanged.
BIAS_WEIGHT = 0.3
RECOVER_FROM = 3  # beam hypotheses a strict grammar's wordings are sought near
RECOVER_MAX = 12  # wordings the decoder scores per decode: each is a forced decode of its own
EARLY_KEPT = 4  # prefetched transcripts kept waiting for their turn
CONTEXTS = ("fit", "full")
CONTEXT_PAD_S = 1.0  # silence the fitted encoder window keeps after the audio (see docs/stages.md "ASR speed")
CONTEXT_MIN_S = 15.0  # shorter windows cost accuracy: tiny.en was trained on 30 s ones
# Longer audio gets the full window: on 20 s of dense speech the fitted 22 s window ended the
# decode at its edge two sentences early (the full one heard them), and at that length it saves little.
FIT_MAX_S = CONTEXT_MIN_S - CONTEXT_PAD_S
FRAMES_PER_S = 100  # Whisper's log-mel frames per second
TOKENS_BASE, TOKENS_PER_S = 12, 8.0  # every decode stops here (see max_tokens)
COMPRESSION_LIMIT = 2.4
WINDOW_S = 28.0  # longest piece decoded at once: + CONTEXT_PAD_S it fits Whisper's 30 s window
CUT_SEARCH_S = 8.0  # a piece ends at the quietest moment of its last CUT_SEARCH_S seconds
LAST_MIN_S = 2.0  # ... but not so late that the next (last) piece is a sliver
MAX_WORD_S = 3.0  # a word this long in a piece of long audio is speech the decode skipped…
MIN_ADVANCE_S = 5.0  # … and is decoded again in the next piece, when at least this far in
CUT_FRAME = 160  # 10 ms energy frames, smoothed over CUT_SMOOTH of them (a pause, not a plosive)
CUT_SMOOTH = 30


@dataclass(frozen=True)
class AsrOptions:
    model: str = "tiny.en"
    compute_type: str = "int8"
    cpu_threads: int = 0
    beam_size: int = 5
    bias: bool = True
    grammar_weight: float = 1.0  # n-best bonus for a hypothesis a strict grammar spells
    recover: bool = True  # a strict grammar's wordings near the beam's, scored by the decoder
    no_speech_threshold: float = 0.6
    hotwords: str = ""  # faster-whisper prompt hint; off by default (tiny.en hallucinates)
    context: str = "fit"  # "fit": encode the audio + CONTEXT_PAD_S, at least CONTEXT_MIN_S (up to FIT_MAX_S of audio); "full": Whisper's 30 s
    decode_ahead: bool = True  # replay: recognize the next command while this turn is answered


class DomainRescorer:
    """Biases decoding toward the domain: the beam's n-best are re-ranked by Whisper's score
    plus a bonus for the share of words the domain knows, then handed back to faster-whisper
    in the new order (so word timing and probabilities are computed for the chosen one).

    Prompt-based biasing (``hotwords``, ``initial_prompt``) made tiny.en hallucinate whole
    sentences after the speech (measured in docs/stages.md "ASR biasing"); re-ranking cannot add words.
    """

    def __init__(
        self,
        model,
        tokenizer,
        vocabulary: frozenset[str],
        weight: float = BIAS_WEIGHT,
        spelled: Callable[[str], bool] | None = None,
        grammar_weight: float = 0.0,
        candidates: Callable[[str], list[str]] | None = None,
    ):
        self._model = model
        self._tokenizer = tokenizer
        self.vocabulary = vocabulary
        self.weight = weight
        # A grammar-defined domain (grammar: strict) understands only what its templates spell:
        # among hypotheses Whisper finds about as likely, the one the grammar spells is the one
        # that can be acted on ("ice to mocha" vs "iced mocha").
        self.spelled = spelled
        self.grammar_weight = grammar_weight
        # Wordings the grammar spells near a hypothesis it does not (stages/asr_snap.py); the
        # decoder scores them against the audio, so a word the beam lost can come back.
        self.candidates = candidates
        self.last_choice: int = 0
        self.recovered = 0  # decodes whose transcript is a grammar wording the beam did not hold

    def __getattr__(self, name):
        return getattr(self._model, name)

    def share(self, text: str) -> float:
        return vocabulary_share(text, self.vocabulary)

    def bonus(self, text: str) -> float:
        grammar = (
            self.grammar_weight if self.spelled is not None and self.grammar_weight and self.spelled(text) else 0.0
        )
        return self.weight * self.share(text) + grammar

    def generate(self, encoder_output, prompts, **kwargs):
        beam = kwargs.get("beam_size", 1)
        if beam <= 1 or kwargs.get("sampling_temperature", 0) or len(prompts) != 1:
            return self._model.generate(encoder_output, prompts, **kwargs)
        kwargs["num_hypotheses"] = beam
        result = self._model.generate(encoder_output, prompts, **kwargs)[0]
        texts = [self._tokenizer.decode(ids) for ids in result.sequences_ids]
        ranked = sorted(range(len(texts)), key=lambda i: -(result.scores[i] + self.bonus(texts[i])))
        self.last_choice = ranked[0]
        if self.candidates is not None:
            swapped = self._recovered(encoder_output, result, ranked, [texts[i] for i in ranked[:RECOVER_FROM]])
            if swapped is not None:
                return [swapped]
        return [_Reordered(result, ranked)]

    @functools.cached_property
    def _tok(self):
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self._tokenizer, False, task="transcribe", language="en")

    def _recovered(self, encoder_output, result, ranked: list[int], texts: list[str]):
        """A result whose best is a wording the grammar spells near one of the beam's, when the
        decoder itself finds it likelier than the beam's best; None when that stands. Each is
        scored by its tokens' mean log-probability given the audio (forced decoding, ``align``)
        plus the domain bonus. ``texts``: the best hypotheses' words, best first."""
        if self.spelled is not None and self.spelled(texts[0]):
            return None
        wordings = list(dict.fromkeys(c for t in texts for c in self.candidates(t)))[:RECOVER_MAX]
        if not wordings:
            return None
        tok = self._tok
        token_lists = [tok.encode(" " + w.strip()) for w in [texts[0], *wordings]]
        frames = int(encoder_output.shape[1]) * 2  # the encoder halves the log-mel frames
        start = [*tok.sot_sequence, tok.no_timestamps]
        aligned = [self._model.align(encoder_output, start, [ids], frames)[0] for ids in token_lists]
        likelihoods = [
            float(np.mean(np.log(np.maximum(np.asarray(a.text_token_probs, dtype=np.float64), 1e-12)))) for a in aligned
        ]
        scores = [p + self.bonus(w) for p, w in zip(likelihoods, [texts[0], *wordings])]
        best = int(np.argmax(scores))
        if best == 0:
            return None
        self.recovered += 1
        top = result.sequences_ids[ranked[0]]
        # the beam's segment timestamps around the new words, where it has them
        head = top[:1] if top and top[0] >= tok.timestamp_begin else []
        tail = top[-1:] if len(top) > 1 and top[-1] >= tok.timestamp_begin else []
        ids = [*head, *token_lists[best], *tail]
        log.debug("recovered %r for %r", wordings[best - 1], texts[0])
        return _Swapped(result, ranked, ids, likelihoods[best])


class _Reordered:
    """A generation result with its hypotheses in a new order (what faster-whisper reads)."""

    def __init__(self, result, order: list[int]):
        self.sequences_ids = [result.sequences_ids[i] for i in order]
        self.sequences = [result.sequences[i] for i in order]
        self.scores = [result.scores[i] for i in order]
        self.no_speech_prob = result.no_speech_prob


class _Swapped(_Reordered):
    """A generation result whose best hypothesis is a recovered wording (token ids, mean log-prob)."""

    def __init__(self, result, order: list[int], ids: list[int], score: float):
        super().__init__(result, order)
        self.sequences_ids = [ids, *self.sequences_ids[1:]]
        self.sequences = [[], *self.sequences[1:]]
        self.scores = [score, *self.scores[1:]]


def fitted_window_s(n_samples: int) -> int:
    """Encoder window (whole seconds) for audio of ``n_samples``: its length plus
    ``CONTEXT_PAD_S``, at least ``CONTEXT_MIN_S``, at most Whisper's 30 s."""
    return min(30, math.ceil(max(n_samples / PIPELINE_RATE + CONTEXT_PAD_S, CONTEXT_MIN_S)))


def next_cut(n_samples: int, start: int, samples: np.ndarray | None = None) -> int:
    """Where the piece starting at ``start`` ends: the end of the audio, or at most ``WINDOW_S``
    on, where the (smoothed) energy is lowest: between phrases, not inside a word."""
    limit = int(WINDOW_S * PIPELINE_RATE)
    if n_samples - start <= limit:
        return n_samples
    lo = start + limit - int(CUT_SEARCH_S * PIPELINE_RATE)
    hi = min(start + limit, n_samples - int(LAST_MIN_S * PIPELINE_RATE))
    return hi if samples is None else lo + _quietest(samples[lo:hi])


def windows(n_samples: int, samples: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(start, end) of the pieces covering the audio when no decode skips (see ``_cut_at_skip``)."""
    out, start = [], 0
    while start < n_samples:
        end = next_cut(n_samples, start, samples)
        out.append((start, end))
        start = end
    return out


def _cut_at_skip(segments: list) -> tuple[list, float | None]:
    """Whisper sometimes ends a decode early, stretching one word over the speech it skipped
    (" and" from 13.4 s to the window's end, two sentences unheard). Such a piece keeps what came
    before that word, and the next piece starts at it: (segments kept, seconds to resume at)."""
    for i, seg in enumerate(segments):
        for j, w in enumerate(seg.words or ()):
            if w.end - w.start > MAX_WORD_S and w.start >= MIN_ADVANCE_S:
                kept = list(seg.words[:j])
                head = (
                    [dataclasses.replace(seg, text="".join(x.word for x in kept), words=kept, end=kept[-1].end)]
                    if kept
                    else []
                )
                return segments[:i] + head, float(w.start)
    return segments, None


def _quietest(x: np.ndarray) -> int:
    """Offset (samples) of the middle of the quietest stretch of ``x``."""
    frames = len(x) // CUT_FRAME
    if frames <= CUT_SMOOTH:
        return len(x)
    energy = np.square(x[: frames * CUT_FRAME].astype(np.float64)).reshape(frames, CUT_FRAME).mean(axis=1)
    smooth = np.convolve(energy, np.ones(CUT_SMOOTH) / CUT_SMOOTH, mode="valid")
    return (int(np.argmin(smooth)) + CUT_SMOOTH // 2) * CUT_FRAME


def max_tokens(seconds: float) -> int:
    """A generous ceiling on tokens for this much speech (people say at most ~5 tokens a
    second); reaching it means the decoder is looping."""
    return int(TOKENS_BASE + TOKENS_PER_S * seconds)


def _degenerate(segments: list, seconds: float) -> bool:
    """Whisper's own loop signal (gzip compression ratio over 2.4, its fallback threshold),
    the token ceiling reached, or more segments than the audio has seconds."""
    tokens = sum(len(s.tokens) for s in segments)
    return (
        any(s.compression_ratio > COMPRESSION_LIMIT for s in segments)
        or tokens >= max_tokens(seconds) - 1
        or len(segments) > seconds + 1
    )


def _fitted_context_model(base):
    """A faster-whisper model class whose encoder sees only the first ``frames`` log-mel frames.

    faster-whisper pads every segment to Whisper's 30 s window, and on a CPU the encoder over
    those 3,000 frames is most of a short command's cost (370 of ~450 ms for tiny.en on two
    cores); CTranslate2 encodes any shorter window (whisper.cpp's ``audio_ctx``). The audio is
    padded with digital silence to the window, as Whisper's training padded short chunks;
    faster-whisper's zero-valued padding features in a short window made tiny.en loop.
    """

    class FittedContextWhisper(base):
        frames: int | None = None  # set per call, under WhisperAsr's lock

        def encode(self, features):
            if self.frames is not None and features.shape[-1] > self.frames:
                features = features[..., : self.frames]
            return super().encode(features)

    return FittedContextWhisper


class WhisperAsr:
    name = "asr"

    def __init__(self, options: AsrOptions, domain: Domain | None = None):
        from faster_whisper import WhisperModel

        if options.context not in CONTEXTS:
            raise ValueError(f"asr.context: {options.context!r} is not one of {', '.join(CONTEXTS)}")
        self.options = options
        path = whisper_model(options.model)
        self.model = _fitted_context_model(WhisperModel)(
            path, device="cpu", compute_type=options.compute_type, cpu_threads=options.cpu_threads
        )
        self.model_name = options.model
        self.hotwords = options.hotwords or None
        if options.bias and domain is not None:
            spelled = candidates = None
            if domain.grammar == "strict":
                from stages.asr_snap import GrammarSnapper
                from stages.nlu.grammar import TemplateGrammar

                spelled = TemplateGrammar(domain).spells
                if options.recover:
                    candidates = GrammarSnapper(domain, spelled).candidates
            self.model.model = DomainRescorer(
                self.model.model,
                self.model.hf_tokenizer,
                domain_vocabulary(domain),
                spelled=spelled,
                grammar_weight=options.grammar_weight,
                candidates=candidates,
            )
        self._lock = threading.Lock()  # one decode at a time per model object
        self._early: dict[bytes, concurrent.futures.Future] = {}
        self._early_lock = threading.Lock()
        self._judged: dict[bytes, Transcript] = {}  # transcribe_ahead's results, for their turns
        self.judged = 0  # transcripts taken from the turn-end judge's decode
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.fallbacks = 0  # fitted-window decodes that looped and were redone
        self.prefetched = 0  # transcripts taken from a prefetch (decoded ahead)
        log.info("loaded faster-whisper %s (%s) from %s", options.model, options.compute_type, path)

    @staticmethod
    def _key(samples: np.ndarray, strip_words: tuple[str, ...]) -> bytes:
        # hashed in place (.data): tobytes() would copy a long turn's samples
        digest = hashlib.blake2b(np.ascontiguousarray(samples, dtype=np.float32).data, digest_size=16)
        digest.update("|".join(strip_words).encode())
        return digest.digest()

    def prefetch(self, samples: np.ndarray, strip_words: tuple[str, ...] = (), supersede: bool = True) -> None:
        """Start transcribing audio that is likely to be a command (the live loop calls this
        while the endpointer waits out the silence). A later :meth:`transcribe` of exactly the
        same samples takes this result; a prefetch nobody asks for is dropped unstarted or
        finishes unused. Transcripts are the same either way (decoding is deterministic).
        ``supersede``: this cut replaces earlier ones not yet started (a live command whose
        speech resumed); replay's commands ahead all stand, so they pass False."""
        key = self._key(samples, strip_words)
        with self._early_lock:
            if key in self._early or key in self._judged:  # decoding or decoded already
                return
            for k, fut in list(self._early.items()):
                if (supersede and fut.cancel()) or len(self._early) >= EARLY_KEPT:
                    fut.cancel()
                    del self._early[k]
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-early")
            # a read-only array (every Audio's) cannot change under the decode: no copy needed
            mine = samples if not samples.flags.writeable else samples.copy()
            self._early[key] = self._pool.submit(self._transcribe, mine, strip_words)

    def transcribe_ahead(self, samples: np.ndarray, strip_words: tuple[str, ...] = ()) -> Transcript:
        """:meth:`transcribe` now, and keep the result for the turn that asks for exactly these
        samples (the turn-end judge decodes the command it may cut: stages/turn_end.py)."""
        key = self._key(samples, strip_words)
        result = self._transcribe(samples, strip_words)
        with self._early_lock:
            self._judged[key] = result
            while len(self._judged) > EARLY_KEPT:
                self._judged.pop(next(iter(self._judged)))
        return result

    def prefetch_utterance(self, utterance: Utterance) -> None:
        """:meth:`prefetch` of a command a later turn will run, keyed as :meth:`run` asks."""
        self.prefetch(utterance.audio.samples, _strip_words(utterance), supersede=False)

    def transcribe(self, samples: np.ndarray, strip_words: tuple[str, ...] = ()) -> Transcript:
        if self._judged:
            with self._early_lock:
                judged = self._judged.pop(self._key(samples, strip_words), None)
            if judged is not None:
                self.judged += 1
                return judged
        if self._early:
            with self._early_lock:
                early = self._early.pop(self._key(samples, strip_words), None)
            if early is not None and not early.cancelled():
                self.prefetched += 1
                return early.result()
        return self._transcribe(samples, strip_words)

    def _transcribe(self, samples: np.ndarray, strip_words: tuple[str, ...] = ()) -> Transcript:
        if len(samples) < PIPELINE_RATE // 10:  # under 100 ms: nothing a person said
            return Transcript(text="", model=self.model_name, no_speech_prob=1.0)
        segments, offsets = [], []  # offsets: where each segment's piece starts (s)
        n, start = len(samples), 0
        with self._lock:
            while start < n:
                end = next_cut(n, start, samples)
                piece = self._decode_piece(samples[start:end])
                resume = None
                if n > WINDOW_S * PIPELINE_RATE:  # commands decode as they always have
                    piece, resume = _cut_at_skip(piece)
                segments += piece
                offsets += [start / PIPELINE_RATE] * len(piece)
                again = start + int(resume * PIPELINE_RATE) if resume is not None else end
                start = again if again < end else end
        kept = [
            (s, at)
            for s, at in zip(segments, offsets)
            if not (s.no_speech_prob > self.options.no_speech_threshold and s.avg_logprob < -0.5)
        ]
        words = tuple(
            Word(
                w.word.strip(),
                round(float(w.start) + at, 3),
                round(float(w.end) + at, 3),
                round(float(w.probability), 4),
            )
            for s, at in kept
            for w in (s.words or ())
            if w.word.strip()
        )
        kept = [s for s, _at in kept]
        text = " ".join(s.text.strip() for s in kept).strip()
        if strip_words:
            text, words = _strip_leading(text, words, strip_words)
        if not kept:
            nsp = max((s.no_speech_prob for s in segments), default=1.0)
            return Transcript(text="", no_speech_prob=round(float(nsp), 4), model=self.model_name)
        total = sum(len(s.tokens) for s in kept) or 1
        avg_logprob = sum(s.avg_logprob * len(s.tokens) for s in kept) / total
        return Transcript(
            text=text,
            words=words,
            avg_logprob=round(float(avg_logprob), 4),
            no_speech_prob=round(float(max(s.no_speech_prob for s in kept)), 4),
            compression_ratio=round(float(max(s.compression_ratio for s in kept)), 3),
            model=self.model_name,
        )

    def _fitted_window_s(self, n_samples: int) -> int | None:
        """The fitted encoder window for this much audio, or None: Whisper's whole 30 s."""
        if self.options.context == "fit" and n_samples <= FIT_MAX_S * PIPELINE_RATE:
            return fitted_window_s(n_samples)
        return None

    def _decode_piece(self, samples: np.ndarray) -> list:
        """Segments of one piece of at most ``WINDOW_S`` (under the lock)."""
        window_s = self._fitted_window_s(len(samples))
        if window_s is not None:
            segments = self._decode(samples, window_s)
            if not _degenerate(segments, len(samples) / PIPELINE_RATE):
                return segments
            self.fallbacks += 1
            log.debug("fitted window looped (%r); decoding the full window", segments[0].text[:60])
        return self._decode(samples, None)

    def _decode(self, samples: np.ndarray, window_s: int | None, **settings) -> list:
        """Decode with the full 30 s window (``window_s`` None) or a fitted one. ``settings``:
        faster-whisper's search settings; none given, the turn's (beam, word times, hotwords)."""
        seconds = len(samples) / PIPELINE_RATE
        samples = samples.astype(np.float32, copy=False)
        if window_s is not None:
            samples = np.pad(samples, (0, max(0, window_s * PIPELINE_RATE - len(samples))))
        self.model.frames = None if window_s is None else window_s * FRAMES_PER_S
        settings = settings or {
            "beam_size": self.options.beam_size,
            "word_timestamps": True,
            "hotwords": self.hotwords,
            "no_speech_threshold": self.options.no_speech_threshold,
        }
        segments, _info = self.model.transcribe(
            samples,
            language="en",
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            max_new_tokens=max_tokens(seconds),
            **settings,
        )
        return list(segments)

    def quick_text(self, samples: np.ndarray) -> str:
        """A short clip's words by a plain greedy decode: no domain bias, no hotwords, no word
        times (the wake verifier's second look, stages/wake_verify.py)."""
        with self._lock:
            segments = self._decode(samples, self._fitted_window_s(len(samples)), beam_size=1, without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip()

    def said_last_logprob(self, samples: np.ndarray, heard: str, word: str) -> float:
        """How surely Whisper hears ``word`` as the last thing said in a short clip: the log
        probability of its tokens when the decoder is made to read the heard words up to some
        point and then ``word`` (the best such point, capitalized or not). Heard words that only
        resemble the word ("alarm set") give a low figure; a real word heard as something else in
        noise ("I like so") a high one (stages/wake_verify.py)."""
        from faster_whisper.tokenizer import Tokenizer

        tok = Tokenizer(self.model.hf_tokenizer, False, task="transcribe", language="en")
        words = re.findall(r"[\w']+", heard)
        window_s = self._fitted_window_s(len(samples)) or 30
        frames = window_s * FRAMES_PER_S
        padded = np.pad(samples.astype(np.float32, copy=False), (0, max(0, window_s * PIPELINE_RATE - len(samples))))
        start = [*tok.sot_sequence, tok.no_timestamps]
        best = -math.inf
        with self._lock:
            features = self.model.feature_extractor(padded)[..., :frames]
            self.model.frames = frames
            encoded = self.model.encode(features)
            for form in {word.title(), word.lower()}:
                said = tok.encode(" " + form)
                for k in range(len(words) + 1):
                    text = " ".join(words[:k] + [form])
                    ids = tok.encode(" " + text)
                    result = self.model.model.align(encoded, start, [ids], frames)[0]
                    probs = np.maximum(np.asarray(result.text_token_probs[-len(said) :], dtype=np.float64), 1e-12)
                    best = max(best, float(np.log(probs).sum()))
        return best

    def run(self, utterance: Utterance, ctx) -> Transcript:
        return self.transcribe(utterance.audio.samples, strip_words=_strip_words(utterance))


def _strip_words(utterance: Utterance) -> tuple[str, ...]:
    return spoken_wake_word(utterance.wake.word if utterance.wake else None)


def spoken_wake_word(model_word: str | None) -> tuple[str, ...]:
    """The words a wake model's name stands for ("hey_jarvis" → "hey jarvis"), to strip."""
    return (model_word.replace("_", " "),) if model_word else ()


def _strip_leading(text: str, words: tuple[Word, ...], wake_words: tuple[str, ...]) -> tuple[str, tuple[Word, ...]]:
    """Drop the wake word when the cut command starts with its tail ("Alexa, turn on…")."""
    from rapidfuzz import fuzz

    tokens = text.split()
    for wake in wake_words:
        n = len(wake.split())
        head = re.sub(r"[^a-z ]", "", " ".join(tokens[:n]).lower()).strip()
        if head and fuzz.ratio(head, wake) >= 70:
            return re.sub(r"^\W+", "", " ".join(tokens[n:])), words[n:]
    return text, words

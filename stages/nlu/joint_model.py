"""Intent and slots from one fine-tuned MiniLM (the JointBERT recipe, Chen, Zhuo & Wang 2019).

The bundled all-MiniLM-L6-v2 (core/minilm.py) is fine-tuned with two heads: the intent from the
mean of its last hidden states, a BIO slot tag from the first word piece of every word. What
the transformer already knows about words is what lets a model trained on a spec's templates
read real people's phrasing (docs/nlu-real-phrasing.md has the measurements).

Training runs on every core with bfloat16 autocast where the CPU has it; a model runs in
bfloat16 where the CPU has it, else in float32 on float16-stored weights, on one thread, each
text alone (a batch's kernels round differently, and a request's interpretation must not depend
on the texts beside it). Not int8: dynamic quantization cost about one real command in a hundred
(docs/nlu-real-phrasing.md). Saved as safetensors, so loading runs no pickled code: the
fine-tuned transformer and the heads; the word-piece table stays frozen and is MiniLM's own file.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

from core.errors import InputError
from core.minilm import masked_mean
from stages.nlu.models import (
    META_FILE,
    PREDICTION_CACHE,
    Prediction,
    epoch_line,
    fit_temperature,
    read_meta,
    reproject,
    trained_meta,
)
from stages.nlu.span_types import SpanTyper
from stages.nlu.text import prepare

log = logging.getLogger(__name__)

KIND = "joint-minilm"
TRAINER_VERSION = 5
FORBIDDEN = -1e4  # log-score of a tag sequence BIO does not allow (I-X not after B-X or I-X)
WEIGHTS_FILE = "joint_minilm.safetensors"
NEIGHBOURS_FILE = "neighbours.npz"
BERT_PREFIX = "bert."
HIDDEN = 384
OUTSIDE = "O"


@dataclass(frozen=True)
class JointConfig:
    """How a joint model is trained. Chosen on the home domain's tune halves (A→B, B→A)."""

    epochs: int = 3
    batch_size: int = 64
    learn_rate: float = 1.5e-4  # the transformer's
    head_learn_rate: float = 3e-3  # the two new heads start from nothing
    warmup: float = 0.06  # share of the steps the learning rate ramps up over
    weight_decay: float = 0.01
    dropout: float = 0.1
    max_tokens: int = 48
    bf16: bool = True  # bfloat16 autocast in training, where the CPU supports it
    seed: int = 0
    min_temperature: float = 1.0
    lowercase: bool = True
    transition_weight: float = 0.5  # weight of the tag transitions' log-probabilities in decoding (0: BIO only)
    members: int = 1  # networks trained from seeds seed, seed + 1, …: their probabilities are averaged
    neighbours: int = 0  # training commands nearest the request (frozen MiniLM) that vote on its intent
    neighbour_weight: float = 0.0  # the vote's share of the intent probabilities


# Fields added after models were cached: at their defaults they stay out of the models' keys.
KEYLESS_DEFAULTS = {name: getattr(JointConfig(), name) for name in ("members", "neighbours", "neighbour_weight")}


@functools.lru_cache(maxsize=1)
def bf16_supported() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.lru_cache(maxsize=1)
def _net_class():
    """The network class (built on first use: torch loads only when a joint model does)."""
    from torch import nn

    from core.minilm import encode

    class JointNet(nn.Module):
        def __init__(self, bert, n_intents: int, n_tags: int, dropout: float):
            super().__init__()
            self.bert = bert
            self.drop = nn.Dropout(dropout)
            self.intent = nn.Linear(HIDDEN, n_intents)
            self.tags = nn.Linear(HIDDEN, n_tags)
            self.masks = None  # core.minilm.DropoutMasks in training, else torch's dropout
            self.pack = True

        def forward(self, ids, mask):
            hidden = encode(self.bert, ids, mask, self.masks, self.pack)
            return _heads(hidden, mask, self.intent, self.tags, self._dropped)

        def _dropped(self, x):
            return self.masks(x, self.drop.p) if self.training and self.masks is not None else self.drop(x)

    return JointNet


def _heads(hidden, mask, intent, tags, dropped=None):
    """The intent logits (from the mean of the real word pieces' states) and each word piece's
    tag logits; ``dropped``: training's dropout before each head."""
    pooled = masked_mean(hidden, mask)
    if dropped is not None:
        pooled, hidden = dropped(pooled), dropped(hidden)
    return intent(pooled), tags(hidden)


class _OnnxJointNet:
    """A trained network as requests run it: ONNX Runtime runs the transformer
    (:class:`core.minilm_onnx.OnnxEncoder`), torch the two small heads."""

    def __init__(self, encoder, intent, tags):
        self.encoder, self.intent, self.tags = encoder, intent, tags

    def __call__(self, ids, mask):
        return _heads(self.encoder.hidden_states(ids, mask), mask, self.intent, self.tags)


def tag_set(labels: Sequence[str]) -> list[str]:
    return [OUTSIDE] + [f"{kind}-{label}" for label in labels for kind in "BI"]


def word_offsets(text: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    for word in text.split():
        a = text.index(word, pos)
        out.append((a, a + len(word)))
        pos = a + len(word)
    return out


def word_tags(text: str, spans) -> list[str]:
    """Each whitespace word of ``text``: B-/I-label inside a span, O outside."""
    tags = []
    for a, b in word_offsets(text):
        tag = OUTSIDE
        for sa, sb, label in spans:
            if a >= sa and b <= sb:
                tag = f"{'B' if a == sa else 'I'}-{label}"
                break
        tags.append(tag)
    return tags


def tag_transitions(rows: Sequence[tuple], tags: Sequence[str], smoothing: float = 0.5) -> list[list[float]]:
    """log P(tag | previous tag) over the training words' tags, weighted as they are trained
    (row 0: the first word of a sentence; row i + 1: after tag i); what BIO forbids is FORBIDDEN."""
    n = len(tags)
    counts = [[0.0] * n for _ in range(n + 1)]
    for _words, tag_ids, _intent, weight in rows:
        prev = 0
        for t in tag_ids:
            counts[prev][t] += weight
            prev = t + 1
    out = []
    for row, prev in zip(counts, [None, *tags]):
        allowed = [_allowed(prev, t) for t in tags]
        total = sum(c + smoothing for c, ok in zip(row, allowed) if ok)
        out.append([round(math.log((c + smoothing) / total), 4) if ok else FORBIDDEN for c, ok in zip(row, allowed)])
    return out


def _allowed(prev: str | None, tag: str) -> bool:
    return not tag.startswith("I-") or prev in (f"B-{tag[2:]}", tag)


def weighted_transitions(transitions, weight: float):
    """The transitions as decoding adds them: ``weight`` × each log-probability, FORBIDDEN kept."""
    import numpy as np

    trans = np.asarray(transitions, dtype=np.float64)
    return np.where(trans <= FORBIDDEN, FORBIDDEN, weight * trans)


def best_tags(log_probs, transitions, weight: float) -> list[int]:
    """The tag sequence with the best sum of each word's log-probability and ``weight`` ×
    the transitions' (Viterbi): a name is one span, not pieces of several."""
    return _viterbi(log_probs, weighted_transitions(transitions, weight))


def _viterbi(log_probs, trans) -> list[int]:
    """``trans``: weighted_transitions' matrix (row 0: the first word; row i + 1: after tag i)."""
    import numpy as np

    emit = np.asarray(log_probs, dtype=np.float64)
    score = emit[0] + trans[0]
    back = []
    for w in range(1, len(emit)):
        total = score[:, None] + trans[1:]  # previous tag × tag
        back.append(total.argmax(0))
        score = total.max(0) + emit[w]
    best = [int(score.argmax())]
    for pointers in reversed(back):
        best.append(int(pointers[best[-1]]))
    return best[::-1]


def spans_of(text: str, tags: Sequence[str]) -> tuple[tuple[int, int, str], ...]:
    """BIO word tags → (start, end, label) character spans (an I- after another label opens a span)."""
    spans: list[list] = []
    current = None
    for (a, b), tag in zip(word_offsets(text), tags):
        if tag == OUTSIDE:
            current = None
            continue
        kind, label = tag.split("-", 1)
        if kind == "I" and current is not None and current[2] == label:
            current[1] = b
        else:
            current = [a, b, label]
            spans.append(current)
    return tuple((a, b, label) for a, b, label in spans)


class JointNlu:
    """A fine-tuned MiniLM with an intent head and a slot-tag head (see the module doc)."""

    def __init__(
        self,
        net,
        tokenizer,
        meta: dict,
        span_typer: SpanTyper | None = None,
        weights=None,
        folder: Path | None = None,
        members: Sequence = (),
        neighbours: tuple | None = None,
    ):
        self.nets = [net, *members]  # the inference networks: one, or an ensemble
        self.tokenizer = tokenizer
        self.meta = meta
        self.span_typer = span_typer
        self._weights = weights  # the float weights to save, one dict a network (a model just trained)
        self._folder = folder  # where a loaded model's weights files are
        # (unit embeddings of the training commands, their intent ids): the neighbours' vote
        self._neighbours = neighbours
        self._intents = list(meta["intents"])
        self._tags = list(meta["tags"])
        # the decoding's transition scores, made once; None (older models): each word's best tag
        transitions = meta.get("transitions")
        weight = float(meta.get("config", {}).get("transition_weight", 0.0))
        self._transitions = None if transitions is None else weighted_transitions(transitions, weight)
        self._predict_prepared = functools.lru_cache(maxsize=PREDICTION_CACHE)(self._predict_uncached)

    @property
    def name(self) -> str:
        return self.meta.get("name", KIND)

    @property
    def lowercase(self) -> bool:
        return bool(self.meta.get("lowercase", True))

    def prepare(self, text: str) -> str:
        return prepare(text, self.lowercase)

    def warm(self) -> None:
        self._predict_uncached("warm up")
        if self.span_typer is not None:
            self.span_typer.warm()

    # inference ----------------------------------------------------------------------
    def predict(self, text: str) -> Prediction:
        return self._predict_prepared(self.prepare(text))

    def predict_many(self, texts: Sequence[str], batch_size: int = 1) -> list[Prediction]:
        """Each text alone, whatever ``batch_size`` (a batch's kernels round differently)."""
        return [self.predict(t) for t in texts]

    def _predict_uncached(self, prepared: str) -> Prediction:
        probs, tags = self._forward(prepared, float(self.meta.get("temperature", 1.0) or 1.0))
        if self._neighbours is not None:
            weight = float(self.meta["config"]["neighbour_weight"])
            vote = self._vote(prepared)
            probs = [(1 - weight) * p + weight * v for p, v in zip(probs, vote)]
        ranked = sorted(zip(self._intents, probs), key=lambda kv: -kv[1])
        return Prediction(prepared, tuple((k, float(v)) for k, v in ranked), spans_of(prepared, tags))

    def _vote(self, prepared: str) -> list[float]:
        """The intents of the ``neighbours`` training commands nearest the text, each weighted
        by its cosine, as shares that sum to 1."""
        import numpy as np

        from core.embeddings import embed_one

        vectors, intent_ids = self._neighbours
        cos = vectors @ embed_one(prepared)
        k = min(int(self.meta["config"]["neighbours"]), len(cos))
        near = np.argpartition(-cos, k - 1)[:k]
        vote = np.zeros(len(self._intents))
        np.add.at(vote, intent_ids[near], np.maximum(cos[near], 0.0))
        total = vote.sum()
        return (vote / total).tolist() if total > 0 else vote.tolist()

    def _forward(self, prepared: str, temperature: float) -> tuple[list[float], list[str]]:
        """One text through the network(s): intent probabilities (at ``temperature``, averaged
        over an ensemble's networks) and each word's tag (of its first word piece, from the
        networks' mean tag log-probabilities)."""
        import torch

        words = prepared.split() or [""]
        with torch.inference_mode():
            enc = self.tokenizer(
                [words],
                is_split_into_words=True,
                truncation=True,
                max_length=int(self.meta["config"]["max_tokens"]),
                return_tensors="pt",
            )
            outputs = [net(enc["input_ids"], enc["attention_mask"]) for net in self.nets]
            probs = torch.stack([torch.softmax(i[0].float() / temperature, -1) for i, _t in outputs]).mean(0).tolist()
            log_probs = torch.stack([torch.log_softmax(t[0].float(), -1) for _i, t in outputs]).mean(0)
        first: dict[int, int] = {}
        for k, w in enumerate(enc.word_ids(0)):
            if w is not None and w not in first:
                first[w] = k
        read = [w for w in range(len(words)) if w in first]  # words past max_tokens have no piece
        if not read:
            return probs, [OUTSIDE] * len(words)
        rows = log_probs[[first[w] for w in read]]
        if self._transitions is None:
            best = rows.argmax(-1).tolist()
        else:
            best = _viterbi(rows.numpy(), self._transitions)
        tag_of = {w: self._tags[t] for w, t in zip(read, best)}
        return probs, [tag_of.get(w, OUTSIDE) for w in range(len(words))]

    # persistence --------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        import shutil

        import numpy as np
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        names = [member_file(k) for k in range(len(self.nets))]
        if self._weights is not None:
            for name, weights in zip(names, self._weights):
                save_file(weights, str(path / name))
        elif self._folder is not None:
            for name in names:
                shutil.copyfile(self._folder / name, path / name)
        else:
            raise ValueError("this joint model has no weights to save")
        if self._neighbours is not None:
            vectors, intent_ids = self._neighbours
            np.savez(path / NEIGHBOURS_FILE, vectors=vectors.astype(np.float32), intents=intent_ids)
        if self.span_typer is not None:
            self.span_typer.save(path)
        (path / META_FILE).write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path, meta: dict | None = None) -> "JointNlu":
        path = Path(path)
        if meta is None:
            meta = read_meta(path)
        config = meta.get("config") or {}
        names = [member_file(k) for k in range(int(config.get("members", 1)))]
        for name in names:
            if not (path / name).is_file():
                raise InputError(path, f"joint NLU model without its weights ({name})")
        nets = [_inference_net(path / name, len(meta["intents"]), len(meta["tags"])) for name in names]
        neighbours = None
        if int(config.get("neighbours", 0)) > 0:
            neighbours = _load_neighbours(path / NEIGHBOURS_FILE, len(meta["intents"]))
        from core.minilm import tokenizer

        return cls(
            nets[0], tokenizer(), meta, SpanTyper.load(path), folder=path, members=nets[1:], neighbours=neighbours
        )

    # training -----------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        examples: Iterable,
        intents: Sequence[str],
        labels: Sequence[str],
        config: JointConfig | None = None,
        meta: dict | None = None,
        calibration: Sequence | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> "JointNlu":
        """Fine-tune from objects with ``text``, ``intent`` and ``spans`` ((start, end, label));
        ``calibration``: held-out examples the intent temperature is fitted on; ``progress``
        hears one line per epoch."""
        import torch

        from core.minilm import bert, every_core, tokenizer

        config = config or JointConfig()
        tok = tokenizer()
        tags = tag_set(labels)
        rows = _rows(examples, list(intents), tags, config.lowercase)
        if not rows:
            raise ValueError("no training examples")
        if config.members < 1 or config.neighbours < 0 or not 0.0 <= config.neighbour_weight <= 1.0:
            raise ValueError("members must be ≥ 1, neighbours ≥ 0 and neighbour_weight within [0, 1]")
        started = time.perf_counter()
        nets, weights = [], []
        with every_core():
            for k in range(config.members):
                member = replace(config, seed=config.seed + k)
                torch.manual_seed(member.seed)
                net = _net_class()(bert(), len(intents), len(tags), config.dropout)
                _fit(net, tok, rows, member, _member_progress(progress, k, config.members), started)
                weights.append(
                    {
                        name: v.detach().contiguous()
                        for name, v in net.state_dict().items()
                        if not name.endswith("word_embeddings.weight") and not name.endswith("_ids")
                    }
                )
                nets.append(_for_inference(net))
        neighbours = None
        if config.neighbours > 0:
            import numpy as np

            from core.embeddings import embed

            # the commands held out for the temperature vote too: they are the user's examples
            known = [(" ".join(r[0]), r[2]) for r in rows]
            index = {name: i for i, name in enumerate(intents)}
            known += [
                (prepare(ex.text, config.lowercase), index[ex.intent]) for ex in calibration or () if ex.intent in index
            ]
            neighbours = (embed([t for t, _ in known]), np.array([i for _, i in known], dtype=np.int32))
        elapsed = time.perf_counter() - started
        info = trained_meta(meta, TRAINER_VERSION, config, intents, labels, len(rows), elapsed)
        info.update({"kind": KIND, "tags": tags, "transitions": tag_transitions(rows, tags)})
        model = cls(nets[0], tok, info, weights=weights, members=nets[1:], neighbours=neighbours)
        if calibration and intents:
            model.meta["temperature"] = model.fit_temperature(calibration, config.min_temperature)
        log.info("fine-tuned the joint NLU on %d examples in %.1f s", len(rows), elapsed)
        return model

    def fit_temperature(self, examples: Sequence, minimum: float = 1.0) -> float:
        """The softmax temperature that best fits held-out ``examples`` (models.fit_temperature);
        predictions cached before it changes are dropped."""

        def raw_probs(texts: list[str]) -> list[dict]:
            return [dict(zip(self._intents, self._forward(self.prepare(t), 1.0)[0])) for t in texts]

        self._predict_prepared.cache_clear()
        return fit_temperature(examples, self._intents, raw_probs, minimum)


def _rows(examples: Iterable, intents: list[str], tags: list[str], lowercase: bool) -> list[tuple]:
    """(words, word tag ids, intent id, weight) per distinct example, on the text the model
    will read: an example given n times is trained on once with weight n (same expected
    gradient, a fraction of the time; real commands are given several times on purpose)."""
    tag_id = {t: i for i, t in enumerate(tags)}
    intent_id = {t: i for i, t in enumerate(intents)}
    counts: dict[tuple, int] = {}
    for ex in examples:
        text = prepare(ex.text, lowercase)
        words = tuple(text.split())
        if not words:
            continue
        word_tag = word_tags(text, reproject(ex.text, text, ex.spans, lowercase))
        key = (words, tuple(tag_id.get(t, 0) for t in word_tag), intent_id[ex.intent])
        counts[key] = counts.get(key, 0) + 1
    return [(list(w), list(t), i, n) for (w, t, i), n in counts.items()]


def _pieces(tok, rows: list[tuple], max_tokens: int) -> list[tuple[list[int], list[int]]]:
    """Each row's word pieces (truncated at ``max_tokens``) and their tag labels: a word's tag
    on its first piece, -100 (no loss) elsewhere. Tokenized once for every epoch."""
    enc = tok([r[0] for r in rows], is_split_into_words=True, truncation=True, max_length=max_tokens)
    out = []
    for j, row in enumerate(rows):
        labels, seen = [], set()
        for w in enc.word_ids(j):
            labels.append(row[1][w] if w is not None and w not in seen else -100)
            seen.add(w)
        out.append((enc["input_ids"][j], labels))
    return out


def _batches(
    pieces: list[tuple[list[int], list[int]]], rows: list[tuple], config: JointConfig, rng: random.Random, pad: int
):
    """Batches of like lengths, in random order: commands of one word count, and within it of
    like word-piece counts (so a batch pads little); labels on first word pieces."""
    import torch

    order = sorted(range(len(rows)), key=lambda i: (len(rows[i][0]), len(pieces[i][0]), rng.random()))
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    rng.shuffle(batches)
    for batch in batches:
        width = max(len(pieces[i][0]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for j, i in enumerate(batch):
            piece_ids, piece_labels = pieces[i]
            ids[j, : len(piece_ids)] = torch.tensor(piece_ids)
            mask[j, : len(piece_ids)] = 1
            labels[j, : len(piece_ids)] = torch.tensor(piece_labels)
        weights = torch.tensor([float(rows[i][3]) for i in batch])
        yield ids, mask, labels, torch.tensor([rows[i][2] for i in batch]), weights


def _fit(net, tok, rows, config: JointConfig, progress, started: float) -> None:
    import torch

    from core.minilm import DropoutMasks

    heads = [*net.intent.parameters(), *net.tags.parameters()]
    body = [p for p in net.bert.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": config.learn_rate}, {"params": heads, "lr": config.head_learn_rate}],
        weight_decay=config.weight_decay,
        fused=True,  # one kernel for every parameter: half the optimizer's time of the default
    )
    steps = config.epochs * math.ceil(len(rows) / config.batch_size)
    warm = max(1.0, config.warmup * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / steps)
    )
    loss_of = torch.nn.CrossEntropyLoss(ignore_index=-100, reduction="none")
    bf16 = config.bf16 and bf16_supported()
    rng = random.Random(config.seed)
    pieces = _pieces(tok, rows, config.max_tokens)
    net.masks = DropoutMasks(config.seed)
    net.pack = not bf16  # packing pays in float32 only
    net.train()
    for epoch in range(config.epochs):
        total = 0.0
        for ids, mask, labels, intents, weights in _batches(pieces, rows, config, rng, tok.pad_token_id):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                intent_logits, tag_logits = net(ids, mask)
            tagged = (labels != -100).float()
            tag_loss = loss_of(tag_logits.float().transpose(1, 2), labels) * tagged
            loss = (loss_of(intent_logits.float(), intents) * weights).sum() / weights.sum() + (
                tag_loss * weights[:, None]
            ).sum() / (tagged * weights[:, None]).sum().clamp(min=1.0)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*body, *heads], 1.0)
            optimizer.step()
            schedule.step()
            total += float(loss.item())
        log.debug("epoch %d loss %.3f", epoch, total)
        if progress is not None:
            progress(epoch_line(epoch, config.epochs, len(rows), time.perf_counter() - started))
    net.masks = None
    net.eval()


def _member_progress(progress: Callable[[str], None] | None, k: int, members: int):
    """Epoch lines that say which of an ensemble's networks is training."""
    if progress is None or members == 1:
        return progress
    return lambda line: progress(f"network {k + 1}/{members}: {line}")


def member_file(k: int) -> str:
    """The weights file of an ensemble's k-th network (the first keeps the single model's name)."""
    return WEIGHTS_FILE if k == 0 else WEIGHTS_FILE.replace(".safetensors", f"-{k}.safetensors")


def _load_neighbours(path: Path, n_intents: int) -> tuple:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            vectors, intent_ids = z["vectors"].astype(np.float32), z["intents"].astype(np.int64)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(path, f"not the joint NLU's neighbours ({err})") from None
    if vectors.ndim != 2 or len(vectors) != len(intent_ids) or len(intent_ids) == 0:
        raise InputError(path, "neighbours: vectors and intents do not match")
    if intent_ids.min() < 0 or intent_ids.max() >= n_intents:
        raise InputError(path, "neighbours: an intent id outside the model's intents", field="intents")
    return vectors, intent_ids


def _for_inference(net):
    """A network just trained as it runs in use, on one thread (short inputs: a second thread
    only contends): its transformer by ONNX Runtime in float32, the arithmetic it was trained
    in and faster than torch's on a sentence (docs/nlu-real-phrasing.md, twenty-eighth
    session); the torch network itself where ONNX Runtime cannot run it."""
    import torch

    from core.minilm_onnx import for_inference

    torch.set_num_threads(1)
    encoder = for_inference(net.bert)
    return net if encoder is net.bert else _OnnxJointNet(encoder, net.intent, net.tags)


def _inference_net(weights: Path, n_intents: int, n_tags: int):
    """The saved network as it runs in use (:func:`_for_inference`). The transformer goes
    straight from the file into ONNX Runtime, without a torch model (whose library takes seconds
    to import); only where the runtime cannot is the torch network built, from the file's
    tensors as they are."""
    import torch
    from safetensors import safe_open

    from core.minilm_onnx import file_encoder

    with safe_open(str(weights), framework="pt") as f:
        heads = {k: f.get_tensor(k) for k in f.keys() if not k.startswith(BERT_PREFIX)}
    missing = {"intent.weight", "intent.bias", "tags.weight", "tags.bias"} - set(heads)
    if missing:
        raise InputError(weights, f"joint NLU weights without {sorted(missing)}")
    torch.set_num_threads(1)
    encoder = file_encoder(weights, BERT_PREFIX)
    if encoder is not None:
        intent, tags = _linear(heads, "intent", n_intents, weights), _linear(heads, "tags", n_tags, weights)
        return _OnnxJointNet(encoder, intent, tags)
    from core.minilm import bert

    net = _net_class()(bert(weights=weights, prefix=BERT_PREFIX), n_intents, n_tags, 0.0)
    net.load_state_dict(heads, strict=False, assign=True)
    return net.eval()


def _linear(tensors: dict, name: str, size: int, file: Path):
    """The saved linear head ``name`` (``size`` outputs) of ``file`` as a torch layer."""
    from torch import nn

    weight, bias = tensors[f"{name}.weight"], tensors[f"{name}.bias"]
    if tuple(weight.shape) != (size, HIDDEN) or tuple(bias.shape) != (size,):
        raise InputError(file, f"{name} head of shape {tuple(weight.shape)}, the model's meta says ({size}, {HIDDEN})")
    layer = nn.Linear(HIDDEN, size)
    layer.load_state_dict({"weight": weight, "bias": bias}, assign=True)
    return layer.eval()


__all__ = ["KIND", "JointConfig", "JointNlu", "KEYLESS_DEFAULTS"]

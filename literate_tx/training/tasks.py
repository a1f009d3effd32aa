r"""The two tasks the trainer knows: batches, evaluation and the codec of the digits task and of
text in characters, words or BPE tokens.

Text data
---------
The embedded *Alice*, Tiny Shakespeare and a ``text_file`` are held in memory: the last
``round(N_c * val_fraction)`` of the :math:`N_c` characters are the validation text (for words
and BPE the cut moves forward to the next space that follows a non-space, so that no token
straddles it: :func:`literate_tx.data.corpus.split_point`), the tokenizer is trained on the
rest (a ``char`` tokenizer on all of it, so that the validation text has no ``<unk>``), and
the two parts are encoded separately. A ``folder``, ``jsonl``,
``hf`` or ``tokens`` corpus is the same split made once on disk by
:func:`literate_tx.data.corpus.prepare_corpus`: training batches and evaluation read
windows of its memory-mapped token file, never the whole file.

Examples
--------
>>> from literate_tx.training import DigitsCodec
>>> from literate_tx.data import DigitsTask
>>> DigitsCodec(DigitsTask()).decode([19])
'9'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.batching import (
    iter_sequential,
    sample_batch,
)
from ..data.digits import IGNORE_INDEX, DigitsTask
from .config import CORPUS_DATASETS, TrainConfig


# ============================================================================ tasks
class DigitsCodec:
    r"""Text to ids and back for the digits task (a ``<bos>`` is prepended when encoding).

    Examples
    --------
    >>> codec = DigitsCodec(DigitsTask())
    >>> codec.encode("Max ( 5 3 9 ) =")
    [1, 5, 7, 15, 13, 19, 8, 9]
    >>> codec.decode([19])
    '9'
    """

    def __init__(self, task: DigitsTask):
        self.task = task

    def encode(self, text: str) -> list[int]:
        r"""Ids of ``<bos>`` and the space-separated tokens of ``text``.

        Examples
        --------
        >>> DigitsCodec(DigitsTask()).encode("First (")
        [1, 2, 7]
        """
        return [self.task.bos_id, *self.task.encode(text)]

    def decode(self, ids: Sequence[int]) -> str:
        r"""Tokens of ``ids`` joined by spaces.

        Examples
        --------
        >>> DigitsCodec(DigitsTask()).decode([13, 14])
        '3 4'
        """
        return self.task.decode(ids)

    def to_dict(self) -> dict[str, Any]:
        r"""JSON-ready description (stored in checkpoints).

        Examples
        --------
        >>> DigitsCodec(DigitsTask()).to_dict()["type"]
        'digits'
        """
        n = self.task.n_digits
        return {"type": "digits", "vocab": list(self.task.vocab),
                "n_digits": list(n) if isinstance(n, tuple) else n,
                "operations": list(self.task.operations)}


def _codec_from_json(text: str):
    """Rebuild the tokenizer stored in a checkpoint's metadata."""
    data = json.loads(text)
    if isinstance(data, dict) and data.get("type") == "digits":
        n = data["n_digits"]
        return DigitsCodec(DigitsTask(n_digits=tuple(n) if isinstance(n, list) else n,
                                      operations=tuple(data["operations"])))
    from ..tokenizers import Tokenizer

    return Tokenizer.from_dict(data, source="checkpoint metadata 'tokenizer'")


def _log_softmax_ce(logits: np.ndarray, targets: np.ndarray) -> tuple[float, int, int]:
    """Sum of cross-entropies over counted targets, their number, and how many are arg-max."""
    z = np.asarray(logits, dtype=np.float64)  # (N, T, V)
    keep = targets != IGNORE_INDEX  # (N, T)
    z = z[keep]  # (K, V)
    y = targets[keep]  # (K,)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # (K, V)
    nll = -logp[np.arange(len(y)), y]  # (K,)
    right = int((np.argmax(z, axis=-1) == y).sum())
    return float(nll.sum()), int(len(y)), right


class _DigitsData:
    """The digits task: fixed splits, batches drawn with replacement from the train split."""

    kind = "digits"

    def __init__(self, cfg: TrainConfig):
        self.task = DigitsTask(n_digits=cfg.n_digits)
        self.splits = self.task.make_splits(cfg.n_train, cfg.n_val, cfg.n_test,
                                            seed=cfg.split_seed)
        self.train_x, self.train_y = self.task.to_arrays(self.splits.train)  # (N, T) each
        self.codec = DigitsCodec(self.task)
        self.vocab_size = self.task.vocab_size
        self.seq_len = self.task.seq_len

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(self.train_x), size=batch_size)  # (B,)
        return self.train_x[idx], self.train_y[idx]  # (B, T), (B, T)

    def evaluate(self, model, split: str = "val", max_batches: int | None = None,
                 batch_size: int = 500) -> dict[str, Any]:
        examples = getattr(self.splits, split)
        if not examples:
            return {}
        x, y = self.task.to_arrays(examples)  # (N, T)
        logits = np.concatenate([np.asarray(model.forward(x[i:i + batch_size]))
                                 for i in range(0, len(x), batch_size)])  # (N, T, V)
        total, count, _ = _log_softmax_ce(logits, y)
        predict = self.task.greedy_predictor(lambda tokens: logits)
        scores = self.task.evaluate(predict, examples)
        return {"loss": total / count, **scores}

    @staticmethod
    def score(metrics: Mapping[str, Any]) -> tuple[float, float]:
        return (metrics["exact_match"], -metrics["loss"])


class _TextData:
    """A text corpus cut into train and validation token streams (in memory or memory-mapped)."""

    kind = "text"

    def __init__(self, cfg: TrainConfig, tokenizer=None):
        self.seq_len = cfg.seq_len or 64
        self.corpus = None
        if cfg.dataset in CORPUS_DATASETS:
            self.corpus = _open_corpus(cfg, tokenizer)
            self.codec = self.corpus.tokenizer
            self.train_ids, self.val_ids = self.corpus.train, self.corpus.val  # memory-mapped
        else:
            self.codec, self.train_ids, self.val_ids = _tokenise_text(_load_text(cfg), cfg,
                                                                      tokenizer)
        for name, part in (("train", self.train_ids), ("validation", self.val_ids)):
            if len(part) < self.seq_len + 1 and not (name == "validation" and len(part) == 0):
                raise ValueError(
                    f"seq_len={self.seq_len} is too long for the {name} text ({len(part)} "
                    "tokens); use a shorter seq_len or more text"
                )
        self.vocab_size = self.codec.vocab_size
        self.batch_size = cfg.batch_size

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        return sample_batch(self.train_ids, batch_size, self.seq_len, rng)  # (B, T), (B, T)

    def evaluate(self, model, split: str = "val", max_batches: int | None = None,
                 batch_size: int | None = None) -> dict[str, Any]:
        stream = self.val_ids if split in ("val", "test") else self.train_ids
        if len(stream) < self.seq_len + 1:
            return {}
        total = count = right = 0
        b = batch_size or self.batch_size
        if max_batches is not None:  # read only the windows scored (a memory map stays lazy)
            stream = stream[: max_batches * b * self.seq_len + 1]
        batches = iter_sequential(stream, b, self.seq_len)
        for i, (x, y) in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            t, c, r = _log_softmax_ce(model.forward(x), y)
            total, count, right = total + t, count + c, right + r
        loss = total / count
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "accuracy": right / count}

    @staticmethod
    def score(metrics: Mapping[str, Any]) -> tuple[float, float]:
        return (-metrics["loss"], 0.0)


def _load_text(cfg: TrainConfig) -> str:
    from ..data import text as text_data

    if cfg.dataset == "file":
        return text_data.load_text(cfg.text_file)
    if cfg.dataset == "shakespeare":
        return text_data.tiny_shakespeare()
    return text_data.default_corpus()


def _tokenise_text(text: str, cfg: TrainConfig, tokenizer=None):
    """The tokenizer and the train and validation ids of a text held in memory (see above)."""
    from ..data.corpus import load_tokenizer, split_point
    from ..data.text import encode_corpus
    from ..tokenizers import CharTokenizer, train_tokenizer

    n_val = int(round(len(text) * cfg.val_fraction))
    kind = tokenizer.kind if tokenizer is not None else cfg.tokenizer
    k = split_point(text, len(text) - n_val, kind)  # characters: len(text) - n_val itself
    train_text, val_text = text[:k], text[k:]
    if tokenizer is None:
        if cfg.tokenizer_file is not None:
            tokenizer = load_tokenizer(cfg.tokenizer_file, cfg.tokenizer, cfg.vocab_size)
        elif cfg.tokenizer == "char":
            tokenizer = CharTokenizer.train(text)
        else:
            tokenizer = train_tokenizer(cfg.tokenizer, [train_text], vocab_size=cfg.vocab_size)
    train_ids = encode_corpus(train_text, tokenizer)  # (N_train,)
    val_ids = encode_corpus(val_text, tokenizer)  # (N_val,)
    return tokenizer, train_ids, val_ids


def _open_corpus(cfg: TrainConfig, tokenizer=None):
    """The memory-mapped corpus of a ``folder``, ``jsonl``, ``hf`` or ``tokens`` dataset."""
    import sys

    from ..data.corpus import CorpusSource, TokenCorpus, prepare_corpus, tokenizer_hash

    if cfg.dataset == "tokens":
        corpus = TokenCorpus.open(cfg.data_path)
        if corpus.tokenizer.kind != cfg.tokenizer:
            raise ValueError(f"tokenizer={cfg.tokenizer!r} but {cfg.data_path} was prepared "
                             f"with a {corpus.tokenizer.kind!r} tokenizer; pass --tokenizer "
                             f"{corpus.tokenizer.kind}")
        if cfg.vocab_size is not None and cfg.vocab_size != corpus.tokenizer.vocab_size:
            raise ValueError(f"vocab_size={cfg.vocab_size} but {cfg.data_path} was prepared "
                             f"with {corpus.tokenizer.vocab_size} ids; leave vocab_size unset "
                             "or prepare the corpus with it")
        if tokenizer is not None and tokenizer_hash(tokenizer) != tokenizer_hash(corpus.tokenizer):
            raise ValueError(f"{cfg.data_path} was prepared with another tokenizer than the "
                             "checkpoint's; resume on the token folder the run started with")
        return corpus
    stream = sys.stderr if sys.stderr is not None and sys.stderr.isatty() else None
    return prepare_corpus(CorpusSource(cfg.dataset, cfg.data_path, cfg.text_field),
                          cfg.tokens_dir, tokenizer=cfg.tokenizer, vocab_size=cfg.vocab_size,
                          tokenizer_file=cfg.tokenizer_file, given_tokenizer=tokenizer,
                          val_fraction=cfg.val_fraction, progress=stream)


def _make_data(cfg: TrainConfig, tokenizer=None):
    return _DigitsData(cfg) if cfg.task == "digits" else _TextData(cfg, tokenizer)



r"""Training: one loop for every backend, with metrics, checkpoints and an exact resume.

The loop
--------
Every backend trains with the same loop. Write :math:`\theta_s` for the parameters after
:math:`s` updates, :math:`\eta(s)` for the learning rate of :mod:`literate_tx.schedules` and
:math:`(x_s, y_s)` for the batch drawn at step :math:`s`. One step is

.. math::

    \ell_s, g_s = \nabla \mathcal{L}(\theta_s; x_s, y_s), \qquad
    \hat g_s = \mathrm{clip}(g_s), \qquad
    \theta_{s+1} = \mathrm{AdamW}(\theta_s, \hat g_s, \eta(s)),                   \tag{1}

where the loss :math:`\mathcal{L}` is the mean cross-entropy over the targets that count
(:mod:`literate_tx.numpy_backend.loss`) and ``clip`` rescales the whole gradient to a global
norm of at most ``grad_clip`` (:func:`literate_tx.optim.clip_grad_norm`). Only the arithmetic
differs between backends:

=========  ===================================  =======================================
backend    gradient                             update
=========  ===================================  =======================================
numpy      ``model.loss_and_grads`` (by hand)   :class:`literate_tx.optim.AdamW`
python     ``model.loss_and_grads`` (by hand)   :class:`literate_tx.python_backend.optim.AdamW`
                                                on nested lists
torch      autograd on ``model.module``         :class:`torch.optim.AdamW`,
                                                ``torch.nn.utils.clip_grad_norm_``
=========  ===================================  =======================================

In every backend the norms and biases get no weight decay
(:func:`literate_tx.optim.default_decay_filter`).

Tasks
-----
``digits``
    :class:`literate_tx.data.DigitsTask`: ``<bos> Max ( 5 3 9 ) =`` and the model must answer
    ``9``. Only the answer has a target, so the training loss is the answer's cross-entropy.
    Validation and test accuracy are exact match of the greedy answer, per operation.
``text``
    A character-level language model of :func:`literate_tx.data.default_corpus` (or a file, or
    Tiny Shakespeare), cut 90/10 into train and validation text; validation reports the loss,
    the perplexity :math:`e^{\mathcal{L}}` and next-character accuracy.

Exact resume
------------
A run is a deterministic function of its :class:`TrainConfig`: the initial weights come from
``seed``, the batches from one :class:`numpy.random.Generator` (``data``), the dropout masks
from another (``dropout``; PyTorch's own generator for the torch backend), and the learning
rate is a pure function of the step. ``last.npz`` stores all of it — the weights, the
optimiser's moments and step, both generator states (as JSON in the metadata; the PyTorch one
as a ``uint8`` array), the step, the configuration and the tokenizer — so that training
``N/2`` steps, stopping, and resuming for ``N/2`` more gives the same parameters, bit for bit,
as ``N`` steps in one go. Evaluation draws no random numbers, so evaluating more or less often
changes nothing. Nothing is pickled: checkpoints are read with ``allow_pickle=False``.

Files written to ``out``
------------------------
``metrics.jsonl``
    One JSON object per line: ``{"step", "split": "train", "loss", "lr", "grad_norm",
    "tokens_per_s", "time"}`` per step and ``{"step", "split": "val", "loss", ...}`` per
    evaluation (``time`` is seconds of training since the run began, across resumes).
``last.npz``, ``best.npz``
    Checkpoints (:func:`literate_tx.checkpoint.save_checkpoint`, written atomically): the latest
    state, and the state with the best validation score so far.
``summary.json``
    The final metrics (digits: test accuracy per operation; text: validation loss and a sample).
``config.yaml``
    The :class:`TrainConfig`, when PyYAML is installed.

Examples
--------
>>> import tempfile
>>> cfg = TrainConfig(task="digits", steps=3, batch_size=8, d_model=16, n_layers=1,
...                   n_heads=2, d_ff=32, n_train=50, n_val=10, n_test=10, eval_every=3,
...                   out=tempfile.mkdtemp())
>>> result = train(cfg, quiet=True)
>>> result.steps, sorted(result.metrics["test"])
(3, ['exact_match', 'loss', 'per_operation'])
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .api import BACKENDS, create_model
from .checkpoint import atomic_write, read_checkpoint, save_checkpoint
from .config import ACTIVATIONS, NORMS, POSITIONS, RESIDUALS, ModelConfig
from .data.batching import (
    iter_sequential,
    rng_from_state,
    rng_state,
    sample_batch,
    train_val_split,
)
from .data.digits import IGNORE_INDEX, DigitsTask
from .numpy_backend.dropout import make_masks
from .optim import default_decay_filter
from .schedules import Schedule

__all__ = [
    "DATASETS",
    "SCHEDULES",
    "TASKS",
    "DigitsCodec",
    "NonFiniteError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "default_config",
    "evaluate_checkpoint",
    "format_summary",
    "load_trained",
    "sample_text",
    "train",
]

TASKS = ("digits", "text")
SCHEDULES = ("constant", "cosine", "linear")
DATASETS = ("default", "shakespeare", "file")


class NonFiniteError(FloatingPointError):
    r"""Training produced a NaN or inf: the message names the step and the first bad tensor.

    Examples
    --------
    >>> issubclass(NonFiniteError, ArithmeticError)
    True
    """


# ============================================================================ configuration
def _yaml():
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is in the test and docs extras
        raise ImportError(
            "reading or writing YAML configs needs PyYAML, which is not installed; "
            "install it with `pip install pyyaml`"
        ) from exc
    return yaml


@dataclass(frozen=True)
class TrainConfig:
    r"""Everything that defines a training run (frozen, validated, YAML round-trip).

    The model is described by its own fields (``d_model`` ...); the vocabulary size and
    ``max_seq_len`` come from the task, see :meth:`model_config`.

    Parameters
    ----------
    task : {"digits", "text"}
        What to learn, see the module docstring.
    backend : {"numpy", "python", "torch"}
    out : str
        Folder for ``metrics.jsonl``, ``last.npz``, ``best.npz`` and ``summary.json``.
    steps : int
        Number of optimiser updates (``>= 1``).
    batch_size : int
        Sequences per batch.
    seq_len : int, optional
        Characters per training window for ``task="text"`` (also the model's
        ``max_seq_len``); ignored by ``digits``, whose length is fixed by ``n_digits``.
    lr, min_lr : float
        Peak and final learning rate.
    warmup_steps : int
        Linear warmup from 0 (capped at ``steps - 1``, so that short runs still decay).
    schedule : {"constant", "cosine", "linear"}
        Decay after the warmup, :class:`literate_tx.schedules.Schedule`.
    weight_decay : float
        Decoupled AdamW decay of the matrices.
    beta1, beta2, eps : float
        AdamW's averaging coefficients and :math:`\epsilon`.
    grad_clip : float, optional
        Largest global gradient norm (``None`` or ``0``: no clipping).
    eval_every : int
        Evaluate on the validation data every this many steps (and at the end).
    eval_batches : int
        Validation batches per evaluation for ``text`` (digits scores the whole split).
    checkpoint_every : int
        Write ``last.npz`` every this many steps (and at the end).
    seed : int
        Seeds the initial weights, the batches and the dropout masks.
    dtype : {"float32", "float64"}
    device : str
        ``"cpu"``, ``"cuda"``, ... (torch backend only).
    threads : int, optional
        CPU threads for the matrix products while training: BLAS threads (through
        ``threadpoolctl``, when installed) and ``torch.set_num_threads``. ``None`` keeps the
        libraries' defaults. The default, 1, is the fastest for the small models here: their
        matrix products take well under a millisecond, less than waking a second thread costs
        (on a busy two-core machine two BLAS threads made a step 10-20 times slower).
    fast : bool
        Train with the backend's speed path. NumPy:
        :class:`~literate_tx.numpy_backend.fast.FastNumpyModel` (the same function and
        gradients, proven equal to the reference by ``tests/test_fast.py``; about 5x faster on
        the digits task, mostly its vectorised float32 erf); pure Python:
        :class:`~literate_tx.python_backend.fast.FastPythonModel` (``tests/test_python_fast.py``;
        its forward pass 2.5x faster, a whole step about 15 %). ``False`` trains the reference
        :class:`~literate_tx.numpy_backend.model.NumpyModel` or
        :class:`~literate_tx.python_backend.model.PythonModel`. PyTorch ignores it.
    d_model, n_layers, n_heads, d_ff : int
        The model's sizes, as in :class:`~literate_tx.config.ModelConfig`.
    norm, residual, activation, position, bias, tie_embeddings, dropout
        The model's layout, as in :class:`~literate_tx.config.ModelConfig`.
    n_digits : int or (int, int)
        Digits per ``digits`` example (a pair: a range).
    n_train, n_val, n_test : int
        Examples in each ``digits`` split (disjoint, drawn with ``split_seed``).
    split_seed : int
        Seed of the ``digits`` splits (fixed, so that every run is tested on the same examples).
    dataset : {"default", "shakespeare", "file"}
        ``text`` corpus: the embedded *Alice*, Tiny Shakespeare (downloaded once), or
        ``text_file``.
    text_file : str, optional
        Path of a UTF-8 text file; implies ``dataset="file"``.
    val_fraction : float
        Share of the text kept for validation (the end of it).
    sample_prompt : str
        Prompt of the text sample written to ``summary.json``.
    sample_tokens : int
        Length of that sample.

    Raises
    ------
    ValueError
        Naming the field, the value received and what is allowed.

    Examples
    --------
    >>> cfg = TrainConfig(steps=100)
    >>> cfg.task, cfg.backend, cfg.d_model
    ('digits', 'numpy', 64)
    >>> TrainConfig(steps=0)
    Traceback (most recent call last):
    ...
    ValueError: steps=0 is not allowed; steps must be an int >= 1
    >>> TrainConfig(task="images")
    Traceback (most recent call last):
    ...
    ValueError: task='images' is not allowed; allowed: 'digits', 'text'
    """

    task: str = "digits"
    backend: str = "numpy"
    out: str = "runs/digits"
    steps: int = 1000
    batch_size: int = 64
    seq_len: int | None = None
    lr: float = 3e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    schedule: str = "cosine"
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    grad_clip: float | None = 1.0
    eval_every: int = 200
    eval_batches: int = 20
    checkpoint_every: int = 500
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    threads: int | None = 1
    fast: bool = True
    # the model
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    norm: str = "layernorm"
    residual: str = "pre"
    activation: str = "gelu"
    position: str = "learned"
    bias: bool = True
    tie_embeddings: bool = False
    dropout: float = 0.0
    # the digits task
    n_digits: int | tuple[int, int] = (3, 6)
    n_train: int = 20000
    n_val: int = 1000
    n_test: int = 2000
    split_seed: int = 0
    # the text task
    dataset: str = "default"
    text_file: str | None = None
    val_fraction: float = 0.1
    sample_prompt: str = "Alice "
    sample_tokens: int = 300

    def __post_init__(self) -> None:
        def choice(name: str, allowed: Sequence[str]) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(
                    f"{name}={value!r} is not allowed; allowed: {', '.join(map(repr, allowed))}"
                )

        def integer(name: str, low: int, *, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(
                    f"{name}={value!r} is not allowed; {name} must be an int >= {low}"
                    + (" (or None)" if optional else "")
                )
            object.__setattr__(self, name, int(value))

        def number(name: str, low: float, high: float = math.inf, *, high_open: bool = False,
                   optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(
                value, bool)
            if ok:
                ok = math.isfinite(value) and low <= value and (
                    value < high if high_open else value <= high)
            if not ok:
                bound = f"< {high}" if high_open else f"<= {high}"
                upper = "" if high == math.inf else f" and {bound}"
                raise ValueError(
                    f"{name}={value!r} is not allowed; {name} must be a number >= {low}{upper}"
                    + (" (or None)" if optional else "")
                )
            object.__setattr__(self, name, float(value))

        choice("task", TASKS)
        choice("backend", BACKENDS)
        choice("schedule", SCHEDULES)
        choice("dtype", ("float32", "float64"))
        choice("norm", NORMS)
        choice("residual", RESIDUALS)
        choice("activation", ACTIVATIONS)
        choice("position", POSITIONS)
        choice("dataset", DATASETS)
        for name in ("out", "device", "sample_prompt"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; it must be a str")
        if not self.out:
            raise ValueError("out='' is not allowed; give a folder for the run's files")
        for name in ("steps", "batch_size", "eval_every", "eval_batches", "checkpoint_every",
                     "d_model", "n_layers", "n_heads", "d_ff", "sample_tokens"):
            integer(name, 1)
        for name in ("warmup_steps", "seed", "n_train", "n_val", "n_test", "split_seed"):
            integer(name, 0)
        integer("seq_len", 1, optional=True)
        integer("threads", 1, optional=True)
        number("lr", 0.0)
        number("min_lr", 0.0)
        number("weight_decay", 0.0)
        number("beta1", 0.0, 1.0, high_open=True)
        number("beta2", 0.0, 1.0, high_open=True)
        number("eps", 0.0)
        number("grad_clip", 0.0, optional=True)
        number("dropout", 0.0, 1.0, high_open=True)
        number("val_fraction", 0.0, 1.0, high_open=True)
        for name in ("bias", "tie_embeddings", "fast"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not allowed; use true or false"
                )
        if self.min_lr > self.lr:
            raise ValueError(
                f"min_lr={self.min_lr!r} is not allowed; min_lr must be <= lr={self.lr!r}"
            )
        if self.d_model % self.n_heads:
            raise ValueError(
                f"n_heads={self.n_heads} is not allowed; it must divide d_model={self.d_model}"
            )
        if self.text_file is not None:
            if not isinstance(self.text_file, str) or not self.text_file:
                raise ValueError(f"text_file={self.text_file!r} is not allowed; give a path")
            if self.dataset == "default":
                object.__setattr__(self, "dataset", "file")
        if self.dataset == "file" and self.text_file is None:
            raise ValueError("dataset='file' is not allowed without text_file=PATH")
        n = self.n_digits
        if isinstance(n, list):
            n = tuple(n)
            object.__setattr__(self, "n_digits", n)
        try:
            task = DigitsTask(n_digits=n)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"n_digits={n!r} is not allowed: {exc}") from None
        object.__setattr__(self, "n_digits", task.n_digits)
        if self.task == "digits" and self.n_train < 1:
            raise ValueError("n_train=0 is not allowed for task='digits'; give at least 1")
        if self.task == "digits" and self.n_val < 1:
            raise ValueError("n_val=0 is not allowed for task='digits'; give at least 1")

    # ------------------------------------------------------------------ conversions
    def replace(self, **changes: Any) -> TrainConfig:
        r"""A copy with some fields changed (validated again).

        Examples
        --------
        >>> TrainConfig().replace(steps=10).steps
        10
        """
        _check_known(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        r"""The fields as a JSON/YAML-ready dict (``n_digits`` pairs become lists).

        Examples
        --------
        >>> TrainConfig(n_digits=(2, 4)).to_dict()["n_digits"]
        [2, 4]
        """
        data = dataclasses.asdict(self)
        if isinstance(data["n_digits"], tuple):
            data["n_digits"] = list(data["n_digits"])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        r"""Build a config from a dict, rejecting unknown keys by name.

        Examples
        --------
        >>> TrainConfig.from_dict({"task": "text", "steps": 5}).steps
        5
        >>> TrainConfig.from_dict({"stepz": 5})
        Traceback (most recent call last):
        ...
        ValueError: unknown TrainConfig field(s): 'stepz'; known fields: task, backend, ...
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a TrainConfig needs a mapping of fields, got {type(data).__name__}")
        _check_known(data)
        return cls(**dict(data))

    def to_yaml(self) -> str:
        r"""The config as YAML text (needs PyYAML).

        Examples
        --------
        >>> cfg = TrainConfig(steps=7)
        >>> TrainConfig.from_yaml(cfg.to_yaml()) == cfg
        True
        """
        return _yaml().safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "YAML") -> TrainConfig:
        r"""Parse a config from YAML text (only plain data: ``yaml.safe_load``).

        Examples
        --------
        >>> TrainConfig.from_yaml("task: text\nsteps: 12\n").steps
        12
        >>> TrainConfig.from_yaml("- 1\n- 2\n")
        Traceback (most recent call last):
        ...
        ValueError: YAML: a training config must be a mapping of field: value, got list
        """
        yaml = _yaml()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{source} is not valid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(
                f"{source}: a training config must be a mapping of field: value, "
                f"got {type(data).__name__}"
            )
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def save_yaml(self, path: str | os.PathLike) -> None:
        r"""Write the config to a YAML file (atomically).

        Examples
        --------
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "run.yaml")
        >>> TrainConfig(steps=3).save_yaml(p)
        >>> TrainConfig.load_yaml(p).steps
        3
        """
        text = self.to_yaml().encode("utf-8")
        atomic_write(path, lambda f: f.write(text))

    @classmethod
    def load_yaml(cls, path: str | os.PathLike) -> TrainConfig:
        r"""Read a config from a YAML file.

        Raises
        ------
        FileNotFoundError
            If there is no such file.
        ValueError
            For invalid YAML, an unknown field or a bad value (naming the file).

        Examples
        --------
        >>> TrainConfig.load_yaml("/nonexistent.yaml")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no config file at /nonexistent.yaml
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        return cls.from_yaml(path.read_text(encoding="utf-8"), source=str(path))

    def model_config(self, vocab_size: int, max_seq_len: int) -> ModelConfig:
        r"""The :class:`~literate_tx.config.ModelConfig` of this run for a task's sizes.

        Examples
        --------
        >>> TrainConfig(d_model=32, n_heads=2).model_config(20, 8).d_head
        16
        """
        return ModelConfig(
            vocab_size=vocab_size, d_model=self.d_model, n_layers=self.n_layers,
            n_heads=self.n_heads, d_ff=self.d_ff, max_seq_len=max_seq_len, norm=self.norm,
            residual=self.residual, activation=self.activation, position=self.position,
            bias=self.bias, tie_embeddings=self.tie_embeddings, dropout=self.dropout,
        )


def _check_known(data: Mapping[str, Any]) -> None:
    known = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = [k for k in data if k not in known]
    if unknown:
        raise ValueError(
            f"unknown TrainConfig field(s): {', '.join(map(repr, unknown))}; "
            f"known fields: {', '.join(known)}"
        )


#: Per-task defaults: the measured recipes (see the README and the gallery).
_TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": dict(out="runs/digits"),
    "text": dict(
        out="runs/text", steps=600, batch_size=32, seq_len=64, lr=1e-2, min_lr=1e-3,
        warmup_steps=50, eval_every=100, eval_batches=8, checkpoint_every=200,
        d_model=64, n_layers=2, n_heads=4, d_ff=256, activation="gelu_tanh",
    ),
}


def default_config(task: str = "digits", **overrides: Any) -> TrainConfig:
    r"""The recommended configuration for ``task``, with some fields changed.

    Parameters
    ----------
    task : {"digits", "text"}
    **overrides
        Any :class:`TrainConfig` field.

    Examples
    --------
    >>> default_config("text").seq_len, default_config("digits", steps=10).steps
    (64, 10)
    >>> default_config("music")
    Traceback (most recent call last):
    ...
    ValueError: task='music' is not allowed; allowed: 'digits', 'text'
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not allowed; allowed: {', '.join(map(repr, TASKS))}")
    _check_known(overrides)
    return TrainConfig(**{"task": task, **_TASK_DEFAULTS[task], **overrides})


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
    from .tokenizers import Tokenizer

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
    """A character-level corpus cut into train and validation streams."""

    kind = "text"

    def __init__(self, cfg: TrainConfig, tokenizer=None):
        from .data import text as text_data
        from .tokenizers import CharTokenizer

        if cfg.dataset == "file":
            corpus = text_data.load_text(cfg.text_file)
        elif cfg.dataset == "shakespeare":
            corpus = text_data.tiny_shakespeare()
        else:
            corpus = text_data.default_corpus()
        self.codec = tokenizer if tokenizer is not None else CharTokenizer.train(corpus)
        ids = text_data.encode_corpus(corpus, self.codec)  # (N,)
        self.train_ids, self.val_ids = train_val_split(ids, cfg.val_fraction)
        self.seq_len = cfg.seq_len or 64
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
        batches = iter_sequential(stream, batch_size or self.batch_size, self.seq_len)
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


def _make_data(cfg: TrainConfig, tokenizer=None):
    return _DigitsData(cfg) if cfg.task == "digits" else _TextData(cfg, tokenizer)


# ============================================================================ engines
def _first_bad(grads: Mapping[str, Any]) -> str | None:
    for name, g in grads.items():
        if not np.isfinite(np.asarray(g)).all():
            return name
    return None


def _global_norm(grads: Mapping[str, np.ndarray]) -> float:
    # per-tensor norms, then the norm of the norms (as clip_grad_norm and torch do)
    norms = [math.sqrt(float(np.sum(np.square(g, dtype=np.float64)))) for g in grads.values()]
    return math.sqrt(sum(n * n for n in norms))


class _NumpyEngine:
    """Hand-written gradients and :class:`literate_tx.optim.AdamW` on the model's own arrays."""

    def __init__(self, model, cfg: TrainConfig):
        from .numpy_backend.fast import FastAdamW, FastNumpyModel
        from .optim import AdamW

        # the speed path's in-place AdamW gives bit-identical updates
        optimizer_class = FastAdamW if isinstance(model, FastNumpyModel) else AdamW
        self.model, self.cfg = model, cfg
        # NumpyModel computes with model.params: the optimiser updates those arrays in place
        self.params = model.params
        self.optimizer = optimizer_class(self.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                               eps=cfg.eps, weight_decay=cfg.weight_decay,
                               decay_filter=default_decay_filter)
        self.dropout_rng: np.random.Generator | None = None

    def masks(self, x: np.ndarray):
        return make_masks(self.model.config, x.shape[0], x.shape[1], self.dropout_rng,
                          self.model.dtype)

    def step(self, x, y, lr: float, step: int) -> tuple[float, float]:
        loss, grads = self.model.loss_and_grads(x, y, train=True, masks=self.masks(x))
        _check_finite(step, loss, grads)
        norm = self._clip(grads)
        self.optimizer.step(grads, lr=lr)
        return loss, norm

    def _clip(self, grads) -> float:
        from .optim import clip_grad_norm

        if self.cfg.grad_clip:
            return float(clip_grad_norm(grads, self.cfg.grad_clip))
        return _global_norm(grads)

    def parameters(self) -> dict[str, np.ndarray]:
        return self.model.parameters()

    def state_dict(self) -> dict[str, np.ndarray]:
        sd = self.optimizer.state_dict()
        return {k: np.asarray(v) for k, v in sd.items() if k != "optimizer"}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.optimizer.load_state_dict({"optimizer": "AdamW", **state})

    def rng_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load_rng_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        pass


class _PythonEngine(_NumpyEngine):
    """Hand-written gradients and the pure-Python AdamW, stepping on nested lists.

    ``PythonModel`` computes with ``model.params``, a dict of nested lists of Python floats
    (float64 whatever the model's dtype); the optimiser updates those lists in place. The
    checkpoint stores them as float64 arrays and :meth:`restore` puts them back unrounded, so
    resuming is exact for either dtype.
    """

    def __init__(self, model, cfg: TrainConfig):
        from .python_backend.optim import AdamW

        self.model, self.cfg = model, cfg
        self.dtype = np.dtype(model.dtype)
        self.params = model.params  # nested lists, shared with the model
        self.optimizer = AdamW(self.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                               eps=cfg.eps, weight_decay=cfg.weight_decay,
                               decay_filter=default_decay_filter)
        self.dropout_rng = None

    @classmethod
    def restore(cls, model, cfg: TrainConfig, params: Mapping[str, np.ndarray]):
        """An engine for ``model`` whose lists hold ``params`` exactly (no rounding to dtype)."""
        model.params = {n: np.asarray(params[n], dtype=np.float64).tolist()
                        for n in model.params}
        return cls(model, cfg)

    def step(self, x, y, lr: float, step: int) -> tuple[float, float]:
        from .python_backend.optim import clip_grad_norm

        loss, grads = self.model.loss_and_grads(x, y, train=True, masks=self.masks(x))
        _check_finite(step, loss, grads)
        lists = {n: np.asarray(g, dtype=np.float64).tolist() for n, g in grads.items()}
        if self.cfg.grad_clip:
            norm = float(clip_grad_norm(lists, self.cfg.grad_clip))
        else:
            norm = _global_norm(grads)
        self.optimizer.step(lists, lr=lr)
        return loss, norm

    def masks(self, x: np.ndarray):
        return make_masks(self.model.config, x.shape[0], x.shape[1], self.dropout_rng,
                          self.dtype)

    def parameters(self) -> dict[str, np.ndarray]:
        # float64 whatever the dtype: the lists are Python floats
        return {n: np.asarray(v, dtype=np.float64) for n, v in self.params.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        sd = self.optimizer.state_dict()
        return {k: np.asarray(v) for k, v in sd.items() if k != "optimizer"}


class _TorchEngine:
    """Autograd on ``model.module``, :class:`torch.optim.AdamW` and ``clip_grad_norm_``."""

    _BUFFERS = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, model, cfg: TrainConfig, seed: int):
        import torch

        from .torch_backend.loss import cross_entropy

        self.torch, self.cross_entropy = torch, cross_entropy
        self.model, self.cfg = model, cfg
        self.module = model.module
        self.named = list(self.module.named_parameters())
        decay = [p for n, p in self.named if default_decay_filter(n, p.ndim)]
        no_decay = [p for n, p in self.named if not default_decay_filter(n, p.ndim)]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                           eps=cfg.eps)
        self.device = model.device
        self.cuda = self.device.type == "cuda"
        # dropout draws from PyTorch's generator; keep our own copy of its state so that
        # the run neither disturbs nor depends on the global one
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        self.rng_state = gen.get_state()
        self.dropout_rng = None

    def _tensor(self, a):
        return self.torch.as_tensor(np.asarray(a), device=self.device)

    def step(self, x, y, lr: float, step: int) -> tuple[float, float]:
        torch = self.torch
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.module.train(True)
        use_rng = self.cfg.dropout > 0
        devices = [self.device] if self.cuda else []
        with torch.random.fork_rng(devices=devices, enabled=use_rng):
            if use_rng:
                self._set_rng(self.rng_state)
            logits = self.module(self._tensor(x))  # (B, T, V)
            loss = self.cross_entropy(logits, self._tensor(y), IGNORE_INDEX)
            if use_rng:
                self.rng_state = self._get_rng()
        loss.backward()
        self.module.train(False)
        loss_value = float(loss.detach())
        params = [p for _, p in self.named]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        # per-tensor norms, then the norm of the norms, eq. (1) of literate_tx.optim
        norms = torch.stack([torch.linalg.vector_norm(p.grad) for p in params])
        total = float(torch.linalg.vector_norm(norms))
        if not (math.isfinite(loss_value) and math.isfinite(total)):
            bad = None
            for (name, _), n in zip(self.named, norms.tolist(), strict=True):
                if not math.isfinite(n):
                    bad = name
                    break
            _raise_non_finite(step, loss_value, bad)
        if self.cfg.grad_clip:
            total = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip))
        self.optimizer.step()
        return loss_value, total

    def _set_rng(self, state) -> None:
        if self.cuda:
            self.torch.cuda.set_rng_state(state, self.device)
        else:
            self.torch.set_rng_state(state)

    def _get_rng(self):
        return (self.torch.cuda.get_rng_state(self.device) if self.cuda
                else self.torch.get_rng_state())

    def parameters(self) -> dict[str, np.ndarray]:
        return self.model.parameters()

    def state_dict(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        index = {id(p): n for n, p in self.named}
        for p, st in self.optimizer.state.items():
            name = index[id(p)]
            for key in self._BUFFERS:
                value = st[key]
                value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
                out[f"{key}.{name}"] = np.array(value)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        torch = self.torch
        template = self.optimizer.state_dict()
        order = [n for group in (self.optimizer.param_groups) for n in
                 (next(m for m, q in self.named if q is p) for p in group["params"])]
        saved = {}
        for i, name in enumerate(order):
            if f"exp_avg.{name}" not in state:
                continue
            entry = {}
            for key in self._BUFFERS:
                value = np.asarray(state[f"{key}.{name}"])
                entry[key] = torch.from_numpy(value.copy())
            saved[i] = entry
        self.optimizer.load_state_dict({"state": saved, "param_groups": template["param_groups"]})

    def rng_arrays(self) -> dict[str, np.ndarray]:
        return {"torch_rng": self.rng_state.cpu().numpy().astype(np.uint8)}

    def load_rng_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        if "torch_rng" in arrays:
            self.rng_state = self.torch.from_numpy(np.asarray(arrays["torch_rng"],
                                                              dtype=np.uint8).copy())


def _raise_non_finite(step: int, loss: float, bad: str | None) -> None:
    if not math.isfinite(loss):
        raise NonFiniteError(f"step {step}: the loss is {loss}; training stopped")
    where = f"gradient of {bad!r}" if bad else "gradient norm (it overflowed)"
    raise NonFiniteError(f"step {step}: NaN or inf in the {where}; training stopped")


def _check_finite(step: int, loss: float, grads: Mapping[str, Any]) -> None:
    if not math.isfinite(loss):
        _raise_non_finite(step, loss, None)
    bad = _first_bad(grads)
    if bad is not None:
        _raise_non_finite(step, loss, bad)


@contextlib.contextmanager
def _thread_limit(threads: int | None, backend: str):
    """Limit BLAS (and torch) threads to ``threads`` inside the block; restore them after."""
    if threads is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl is optional
            pass
        else:
            stack.enter_context(threadpool_limits(limits=threads, user_api="blas"))
        if backend == "torch":
            import torch

            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            stack.callback(torch.set_num_threads, before)
        yield


@contextlib.contextmanager
def _deferred_interrupt():
    """Turn the first Ctrl-C into a flag checked between steps; a second one stops at once.

    An update interrupted half way (some tensors stepped, others not) could not be resumed
    exactly, so the loop finishes the step, saves, and then raises KeyboardInterrupt.
    """
    import signal
    import threading

    flag = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        flag["hit"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: flag["hit"]
    finally:
        signal.signal(signal.SIGINT, previous)


# ============================================================================ progress
def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _Progress:
    """A one-line ``\\r`` progress bar on a terminal; eval lines and notes above it."""

    def __init__(self, stream: TextIO, total: int, *, quiet: bool):
        self.stream, self.total, self.quiet = stream, total, quiet
        isatty = getattr(stream, "isatty", None)
        self.bar = not quiet and bool(isatty and isatty())
        self.last_draw = 0.0
        self.width = 0

    def update(self, step: int, loss: float, lr: float, norm: float, tps: float,
               eta: float) -> None:
        now = time.perf_counter()
        if not self.bar or (now - self.last_draw < 0.1 and step < self.total):
            return
        self.last_draw = now
        frac = step / self.total
        filled = int(20 * frac)
        line = (f"step {step:>{len(str(self.total))}}/{self.total} "
                f"[{'#' * filled}{'.' * (20 - filled)}] {100 * frac:3.0f}%  loss {loss:.4f}  "
                f"lr {lr:.2e}  |g| {norm:.3f}  {tps / 1000:.1f}k tok/s  eta {_fmt_time(eta)}")
        pad = max(self.width - len(line), 0)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self.width = len(line)

    def print(self, message: str) -> None:
        if self.quiet:
            return
        if self.bar and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
        self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _format_eval(step: int, split: str, metrics: Mapping[str, Any]) -> str:
    parts = [f"step {step}: {split} loss {metrics['loss']:.4f}"]
    if "exact_match" in metrics:
        parts.append(f"exact match {metrics['exact_match']:.2%}")
        parts.append(" ".join(f"{op} {acc:.0%}" for op, acc in metrics["per_operation"].items()))
    if "perplexity" in metrics:
        parts.append(f"perplexity {metrics['perplexity']:.2f}")
        parts.append(f"accuracy {metrics['accuracy']:.2%}")
    return ", ".join(parts)


# ============================================================================ the trainer
@dataclass(frozen=True)
class TrainResult:
    r"""What :func:`train` returns.

    Attributes
    ----------
    config : TrainConfig
    steps : int
        Updates done so far (``config.steps`` when the run finished).
    finished : bool
        False when stopped early (``stop_after``); resume with ``resume=True``.
    metrics : dict
        The final metrics, as in ``summary.json`` (empty when not finished).
    summary_path, last_checkpoint, best_checkpoint : pathlib.Path or None
    wall_time : float
        Seconds of training, across resumes.

    Examples
    --------
    >>> TrainResult(TrainConfig(), 0, False, {}, None, None, None, 0.0).finished
    False
    """

    config: TrainConfig
    steps: int
    finished: bool
    metrics: dict[str, Any]
    summary_path: Path | None
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    wall_time: float


def _model_options(backend: str, fast: bool, device: str) -> dict[str, Any]:
    """``create_model``'s options for the trainer's model: the device for PyTorch, and with
    ``fast`` the speed path, on one Python thread for NumPy (the batches here are small, and
    BLAS threads follow ``TrainConfig.threads``). :func:`load_trained` builds the same model."""
    options: dict[str, Any] = {"device": device} if backend == "torch" else {}
    if fast:
        options["fast"] = True
        if backend == "numpy":
            options["threads"] = 1
    return options


class Trainer:
    r"""The training loop of eq. (1) for any backend, with metrics, checkpoints and resume.

    Parameters
    ----------
    config : TrainConfig
    resume : bool
        Continue the run saved in ``config.out/last.npz`` (its configuration must match
        ``config`` except for ``out``; ``steps`` may grow, which changes the schedule).
        Without it a new run starts and replaces any run in ``config.out``.
    quiet : bool
        Print nothing. Otherwise evaluation lines and the result are printed to ``stream``,
        with a ``\r`` progress bar when ``stream`` is a terminal.
    stream : text stream, optional
        Where to print (default ``sys.stderr`` for the bar and lines).

    Attributes
    ----------
    model
        The backend's model (``NumpyModel``, ``PythonModel`` or ``TorchModel``).
    step : int
        Updates done.

    Examples
    --------
    >>> import tempfile
    >>> cfg = TrainConfig(steps=2, batch_size=4, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> trainer = Trainer(cfg, quiet=True)
    >>> trainer.step, type(trainer.model).__name__
    (0, 'FastNumpyModel')
    >>> trainer.train().steps
    2
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, quiet: bool = False,
                 stream: TextIO | None = None):
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.out = Path(config.out)
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        ckpt = None
        if resume:
            path = self.out / "last.npz"
            if not path.is_file():
                raise FileNotFoundError(
                    f"no checkpoint to resume at {path}; run without resume to start a new run"
                )
            ckpt = read_checkpoint(path)
            saved = TrainConfig.from_dict(ckpt.metadata["train_config"])
            changed = [f.name for f in dataclasses.fields(TrainConfig)
                       if f.name not in ("out", "steps", "eval_every", "eval_batches",
                                         "checkpoint_every", "device")
                       and getattr(saved, f.name) != getattr(config, f.name)]
            if changed:
                raise ValueError(
                    "resume=True needs the saved configuration, but "
                    + ", ".join(f"{n}={getattr(config, n)!r} (saved {getattr(saved, n)!r})"
                                for n in changed)
                    + " differ; drop those changes or start a new run in another folder"
                )
        self.config = config
        tokenizer = None
        if ckpt is not None and config.task == "text":
            tokenizer = _codec_from_json(ckpt.metadata["tokenizer"])
        self.data = _make_data(config, tokenizer)
        self.model_config = config.model_config(self.data.vocab_size, self.data.seq_len)
        fast = config.fast and config.backend in ("numpy", "python")  # PyTorch ignores it
        options = _model_options(config.backend, fast, config.device)
        self.model = create_model(self.model_config, config.backend, seed=config.seed,
                                  dtype=config.dtype,
                                  params=None if ckpt is None else ckpt.params, **options)
        if config.backend == "torch":
            self.engine = _TorchEngine(self.model, config, config.seed)
        elif config.backend == "python":
            self.engine = (_PythonEngine(self.model, config) if ckpt is None
                           else _PythonEngine.restore(self.model, config, ckpt.params))
        else:
            self.engine = _NumpyEngine(self.model, config)
        # two generators: batches and dropout masks; an eval draws from neither
        self.data_rng = np.random.default_rng([config.seed, 1])
        self.engine.dropout_rng = np.random.default_rng([config.seed, 2])
        self.step = 0
        self.elapsed = 0.0
        self.best: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        if ckpt is not None:
            meta = ckpt.metadata
            self.step = int(meta["step"])
            self.elapsed = float(meta.get("elapsed", 0.0))
            self.best = meta.get("best")
            self.data_rng = rng_from_state(meta["rng"]["data"])
            self.engine.dropout_rng = rng_from_state(meta["rng"]["dropout"])
            self.engine.load_state_dict({k[len("optim/"):]: v for k, v in ckpt.state.items()
                                         if k.startswith("optim/")})
            self.engine.load_rng_arrays(ckpt.state)
        self.schedule = self._schedule()

    # ------------------------------------------------------------------ pieces
    def _schedule(self) -> Schedule:
        cfg = self.config
        warmup = min(cfg.warmup_steps, cfg.steps - 1)
        if cfg.schedule == "constant":
            return Schedule("constant", max_lr=cfg.lr, warmup_steps=warmup)
        return Schedule(cfg.schedule, max_lr=cfg.lr, warmup_steps=warmup,
                        total_steps=cfg.steps, min_lr=cfg.min_lr)

    def _metadata(self) -> dict[str, Any]:
        from . import __version__

        return {
            "kind": "literate-tx-training",
            "literate_tx_version": __version__,
            "step": self.step,
            "elapsed": self.elapsed,
            "train_config": self.config.to_dict(),
            "task": self.config.task,
            "tokenizer": json.dumps(self.data.codec.to_dict()),
            "rng": {"data": rng_state(self.data_rng),
                    "dropout": rng_state(self.engine.dropout_rng)},
            "optimizer": "torch.optim.AdamW" if self.config.backend == "torch" else "AdamW",
            "best": self.best,
        }

    def save(self, path: str | os.PathLike) -> None:
        r"""Write a checkpoint with everything needed to resume exactly (atomically).

        Examples
        --------
        >>> import tempfile, os
        >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2,
        ...                   d_ff=16, n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
        >>> trainer = Trainer(cfg, quiet=True)
        >>> trainer.save(os.path.join(cfg.out, "start.npz"))
        >>> sorted(os.listdir(cfg.out))
        ['start.npz']
        """
        state = {f"optim/{k}": v for k, v in self.engine.state_dict().items()}
        state.update(self.engine.rng_arrays())
        save_checkpoint(path, self.model_config, self.engine.parameters(), state=state,
                        metadata=self._metadata())

    def evaluate(self, split: str = "val") -> dict[str, Any]:
        r"""Metrics of the current model on ``"val"`` or ``"test"`` (draws no random numbers).

        Digits: ``loss``, ``exact_match`` and ``per_operation``; text: ``loss``,
        ``perplexity`` and ``accuracy`` (text has no separate test split: ``"test"`` is the
        validation text).

        Examples
        --------
        >>> import tempfile
        >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2,
        ...                   d_ff=16, n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
        >>> sorted(Trainer(cfg, quiet=True).evaluate("test"))
        ['exact_match', 'loss', 'per_operation']
        """
        if split not in ("val", "test"):
            raise ValueError(f"split={split!r} is not allowed; allowed: 'val', 'test'")
        return self.data.evaluate(self.model, split, self.config.eval_batches)

    def _open_metrics(self):
        path = self.out / "metrics.jsonl"
        if self.step == 0:
            return open(path, "w", encoding="utf-8")
        # drop lines written after the checkpoint we resume from (a crash between the two)
        kept = []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= self.step:
                        kept.append(line)
                except json.JSONDecodeError:
                    continue
        f = open(path, "w", encoding="utf-8")
        f.write("".join(line + "\n" for line in kept))
        return f

    def _log(self, f, record: dict[str, Any]) -> None:
        self.history.append(record)
        f.write(json.dumps(record) + "\n")
        f.flush()

    def _eval_and_checkpoint(self, f, progress: _Progress, *, final: bool) -> None:
        cfg = self.config
        if self.step % cfg.eval_every == 0 or final:
            metrics = self.evaluate("val")
            if metrics:
                self._log(f, {"step": self.step, "split": "val", **metrics,
                              "time": round(self.elapsed, 3)})
                progress.print(_format_eval(self.step, "val", metrics))
                score = list(self.data.score(metrics))
                if self.best is None or score > self.best["score"]:
                    self.best = {"step": self.step, "score": score, "metrics": metrics}
                    self.save(self.out / "best.npz")
        if self.step % cfg.checkpoint_every == 0 or final:
            self.save(self.out / "last.npz")

    # ------------------------------------------------------------------ the loop
    def train(self, stop_after: int | None = None) -> TrainResult:
        r"""Run eq. (1) until ``config.steps`` (or ``stop_after``) updates are done.

        Parameters
        ----------
        stop_after : int, optional
            Stop once this many updates are done, saving ``last.npz`` as an interruption
            would (for tests and for splitting a run); resume with ``resume=True``.

        Returns
        -------
        TrainResult

        Raises
        ------
        NonFiniteError
            When the loss or a gradient is NaN or inf (naming the step and the tensor).

        Examples
        --------
        >>> import tempfile
        >>> cfg = TrainConfig(steps=4, batch_size=2, d_model=8, n_layers=1, n_heads=2,
        ...                   d_ff=16, n_train=20, n_val=5, n_test=5, warmup_steps=1,
        ...                   out=tempfile.mkdtemp())
        >>> Trainer(cfg, quiet=True).train(stop_after=2).finished
        False
        >>> Trainer(cfg, resume=True, quiet=True).train().steps
        4
        """
        cfg = self.config
        end = cfg.steps if stop_after is None else min(int(stop_after), cfg.steps)
        self.out.mkdir(parents=True, exist_ok=True)
        progress = _Progress(self.stream, cfg.steps, quiet=self.quiet)
        if self.step == 0:
            for stale in ("best.npz", "last.npz", "summary.json"):
                (self.out / stale).unlink(missing_ok=True)
            try:
                cfg.save_yaml(self.out / "config.yaml")
            except ImportError:
                pass
            progress.print(
                f"training {cfg.task} on the {cfg.backend} backend: "
                f"{self.model.num_parameters():,} parameters, {cfg.steps} steps of "
                f"{cfg.batch_size} x {self.data.seq_len} tokens ({cfg.dtype}) -> {self.out}"
            )
        else:
            progress.print(f"resuming {self.out} at step {self.step}/{cfg.steps}")
        tokens_per_step = cfg.batch_size * self.data.seq_len
        with _thread_limit(cfg.threads, cfg.backend), _deferred_interrupt() as interrupted, \
                self._open_metrics() as f:
            started = self.step
            t_start = time.perf_counter()
            try:
                while self.step < end:
                    t0 = time.perf_counter()
                    lr = self.schedule(self.step)
                    x, y = self.data.batch(self.data_rng, cfg.batch_size)  # (B, T), (B, T)
                    loss, norm = self.engine.step(x, y, lr, self.step + 1)  # names the update
                    self.step += 1
                    dt = time.perf_counter() - t0
                    self.elapsed += dt
                    tps = tokens_per_step / dt if dt > 0 else float("inf")
                    self._log(f, {"step": self.step, "split": "train", "loss": loss, "lr": lr,
                                  "grad_norm": norm, "tokens_per_s": round(tps, 1),
                                  "time": round(self.elapsed, 3)})
                    rate = (time.perf_counter() - t_start) / (self.step - started)
                    progress.update(self.step, loss, lr, norm, tps, rate * (end - self.step))
                    if interrupted():
                        raise KeyboardInterrupt
                    if self.step < end:
                        self._eval_and_checkpoint(f, progress, final=False)
                finished = self.step >= cfg.steps
                self._eval_and_checkpoint(f, progress, final=True)
            except KeyboardInterrupt:
                # Ctrl-C is deferred to the end of a step (see _deferred_interrupt), so the
                # state saved here is a consistent one and resuming from it stays exact
                progress.close()
                self.save(self.out / "last.npz")
                progress.print(f"interrupted: saved step {self.step} to {self.out / 'last.npz'};"
                               " resume with --resume")
                raise
            finally:
                progress.close()
        if not finished:
            progress.print(f"stopped at step {self.step}; resume to continue")
            return TrainResult(cfg, self.step, False, {}, None, self.out / "last.npz",
                               self.out / "best.npz", self.elapsed)
        metrics = self._summary()
        path = self.out / "summary.json"
        text = json.dumps(metrics, indent=2).encode("utf-8")
        atomic_write(path, lambda fh: fh.write(text))
        progress.print(f"wrote {path}")
        return TrainResult(cfg, self.step, True, metrics, path, self.out / "last.npz",
                           self.out / "best.npz", self.elapsed)

    def _summary(self) -> dict[str, Any]:
        cfg = self.config
        val = self.evaluate("val")
        out: dict[str, Any] = {
            "task": cfg.task, "backend": cfg.backend, "steps": self.step,
            "wall_time_s": round(self.elapsed, 2), "parameters": self.model.num_parameters(),
            "final_train_loss": next((r["loss"] for r in reversed(self.history)
                                      if r["split"] == "train"), None),
            "val": val,
            "best": None if self.best is None else {"step": self.best["step"],
                                                    "val": self.best["metrics"]},
            "checkpoints": {"last": str(self.out / "last.npz"),
                            "best": str(self.out / "best.npz")},
            "config": cfg.to_dict(),
        }
        if cfg.task == "digits":
            out["test"] = self.evaluate("test") if cfg.n_test else {}
        else:
            prompt = cfg.sample_prompt
            ids = self.data.codec.encode(prompt)
            sample = sample_text(self.model, ids, cfg.sample_tokens, temperature=0.8,
                                 seed=cfg.seed)
            out["sample"] = {"prompt": prompt, "temperature": 0.8,
                             "text": prompt + self.data.codec.decode(sample)}
        return out


def format_summary(m: Mapping[str, Any]) -> str:
    r"""The result of a run (the content of ``summary.json``) as a few lines of text.

    Examples
    --------
    >>> print(format_summary({"steps": 10, "wall_time_s": 61.2, "backend": "numpy",
    ...     "parameters": 1234, "test": {"exact_match": 0.995,
    ...     "per_operation": {"Max": 0.99, "Min": 1.0}}}))
    done: 10 steps in 0:01:01 (numpy backend, 1,234 parameters)
    test exact match 99.50%
      Max     99.00%
      Min    100.00%
    """
    lines = [f"done: {m['steps']} steps in {_fmt_time(m['wall_time_s'])} "
             f"({m['backend']} backend, {m['parameters']:,} parameters)"]
    if m.get("test"):
        t = m["test"]
        lines.append(f"test exact match {t['exact_match']:.2%}")
        lines += [f"  {op:<7}{acc:7.2%}" for op, acc in t["per_operation"].items()]
    if m.get("val") and "perplexity" in m["val"]:
        v = m["val"]
        lines.append(f"val loss {v['loss']:.4f}, perplexity {v['perplexity']:.2f}")
    if "sample" in m:
        lines.append("sample (temperature 0.8):")
        lines.append(m["sample"]["text"])
    return "\n".join(lines)


def train(config: TrainConfig, *, resume: bool = False, quiet: bool = False,
          stream: TextIO | None = None) -> TrainResult:
    r"""Train a model as ``config`` says; see :class:`Trainer`.

    Examples
    --------
    >>> import tempfile
    >>> cfg = TrainConfig(task="text", steps=2, batch_size=2, seq_len=16, d_model=8,
    ...                   n_layers=1, n_heads=2, d_ff=16, eval_batches=1, sample_tokens=5,
    ...                   out=tempfile.mkdtemp())
    >>> r = train(cfg, quiet=True)
    >>> sorted(r.metrics["val"]), r.metrics["sample"]["text"].startswith("Alice ")
    (['accuracy', 'loss', 'perplexity'], True)
    """
    return Trainer(config, resume=resume, quiet=quiet, stream=stream).train()


# ============================================================================ after training
def sample_text(model, prompt_ids: Sequence[int], max_new_tokens: int, *,
                temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                seed: int | None = None, stop_token: int | None = None) -> list[int]:
    r"""Continue ``prompt_ids`` by ``max_new_tokens`` tokens, even past ``max_seq_len``.

    Uses :func:`literate_tx.generation.generate` on a sliding window of the last
    ``max_seq_len`` tokens (half a window is generated per call), or, where that module is
    missing, a plain loop over ``model.forward``.

    Returns
    -------
    list of int
        The new ids only.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> model = ltx.create_model(ltx.ModelConfig(10, 8, 1, 2, 16, 4), seed=0)
    >>> len(sample_text(model, [1, 2], 9, temperature=0))
    9
    """
    window = model.config.max_seq_len
    ids = [int(i) for i in prompt_ids][-(window - 1):] if window > 1 else []
    if not ids:
        raise ValueError("prompt_ids is empty; give at least one token")
    try:
        from .generation import generate
    except ImportError:  # pragma: no cover - generation.py is part of the package
        generate = None
    rng = np.random.default_rng(seed)
    new: list[int] = []
    while len(new) < max_new_tokens:
        context = (ids + new)[-max(window // 2, 1):] if new else ids
        room = window - len(context)
        count = min(room, max_new_tokens - len(new))
        chunk_seed = int(rng.integers(2**63))
        if generate is not None:
            chunk = generate(model, context, count, temperature=temperature, top_k=top_k,
                             top_p=top_p, seed=chunk_seed, stop_token=stop_token)
        else:  # pragma: no cover
            chunk = _forward_loop(model, context, count, temperature, chunk_seed, stop_token)
        new += chunk
        if len(chunk) < count:  # stop token drawn
            break
    return new


def _forward_loop(model, context: list[int], count: int, temperature: float, seed: int,
                  stop_token: int | None) -> list[int]:  # pragma: no cover - fallback
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for _ in range(count):
        z = np.asarray(model.forward(np.array([context + out])))[0, -1].astype(np.float64)
        if temperature == 0:
            token = int(np.argmax(z))
        else:
            p = np.exp((z - z.max()) / temperature)
            token = int(rng.choice(len(p), p=p / p.sum()))
        if token == stop_token:
            break
        out.append(token)
    return out


def load_trained(path: str | os.PathLike, *, backend: str = "numpy", device: str = "cpu",
                 dtype: str | None = None, fast: bool | None = None
                 ) -> tuple[Any, Any, TrainConfig | None, dict]:
    r"""Load a checkpoint written by the trainer: ``(model, tokenizer, train_config, metadata)``.

    Parameters
    ----------
    path : str or PathLike
    backend : {"numpy", "python", "torch"}
        Backend of the returned model (any backend loads any checkpoint).
    device : str
        For the torch backend.
    dtype : {"float32", "float64"}, optional
        Default: the dtype of the stored weights.
    fast : bool, optional
        Build the backend's speed path (``create_model(..., fast=True)``; the same function,
        proven equal to the reference by the tests): NumPy and pure Python compute faster,
        PyTorch decodes one token at a time without its modules. Default: as the checkpoint
        was trained, that is the training configuration's ``fast`` for the NumPy and
        pure-Python backends (the model its metrics were measured with) and the plain model
        otherwise.

    Returns
    -------
    model
    tokenizer : object with ``encode`` and ``decode``, or None if the checkpoint has none
    train_config : TrainConfig or None
    metadata : dict

    Examples
    --------
    >>> import tempfile, os
    >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> _ = train(cfg, quiet=True)
    >>> model, tok, tcfg, meta = load_trained(os.path.join(cfg.out, "last.npz"))
    >>> tok.decode(tok.encode("Max ( 1 2 3 ) =")), tcfg.steps
    ('<bos> Max ( 1 2 3 ) =', 1)
    >>> type(model).__name__, type(load_trained(cfg.out + "/last.npz", fast=False)[0]).__name__
    ('FastNumpyModel', 'NumpyModel')
    """
    if fast is not None and not isinstance(fast, bool):
        raise ValueError(f"fast={fast!r} is not allowed; fast must be True, False or None (as "
                         "the checkpoint was trained)")
    ckpt = read_checkpoint(path)
    meta = ckpt.metadata
    if dtype is None:
        dtype = str(next(iter(ckpt.params.values())).dtype)
        dtype = dtype if dtype in ("float32", "float64") else "float32"
    tokenizer = _codec_from_json(meta["tokenizer"]) if "tokenizer" in meta else None
    tcfg = TrainConfig.from_dict(meta["train_config"]) if "train_config" in meta else None
    if fast is None:
        fast = tcfg is not None and tcfg.fast and backend in ("numpy", "python")
    model = create_model(ckpt.config, backend, params=ckpt.params, dtype=dtype,
                         **_model_options(backend, fast, device))
    return model, tokenizer, tcfg, meta


def evaluate_checkpoint(path: str | os.PathLike, *, backend: str = "numpy",
                        split: str = "test", fast: bool | None = None) -> dict[str, Any]:
    r"""Recompute a trained checkpoint's metrics (digits: a split; text: the validation text).

    ``backend`` and ``fast`` choose the model as in :func:`load_trained`; by default the
    model is the one the trainer measured with, so that the metrics are the trainer's.

    Examples
    --------
    >>> import tempfile, os
    >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> r = train(cfg, quiet=True)
    >>> evaluate_checkpoint(r.last_checkpoint)["exact_match"] == r.metrics["test"]["exact_match"]
    True
    """
    model, tokenizer, tcfg, _ = load_trained(path, backend=backend, fast=fast)
    if tcfg is None:
        raise ValueError(f"{path} has no training configuration; it was not written by the "
                         "trainer, so there is no task to evaluate on")
    data = _make_data(tcfg, tokenizer if tcfg.task == "text" else None)
    if split not in ("val", "test"):
        raise ValueError(f"split={split!r} is not allowed; allowed: 'val', 'test'")
    return data.evaluate(model, split, tcfg.eval_batches)


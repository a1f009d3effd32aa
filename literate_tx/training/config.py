r"""The training configuration: :class:`TrainConfig` (frozen, validated, YAML round trip)
and the per-task defaults of :func:`default_config`.

Examples
--------
>>> from literate_tx.training import TrainConfig
>>> TrainConfig(task="text").task
'text'
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..api import BACKENDS
from ..checkpoint import atomic_write
from ..config import ACTIVATIONS, NORMS, POSITIONS, RESIDUALS, ModelConfig
from ..data.digits import DigitsTask
from ..tokenizers import TOKENIZER_KINDS

TASKS = ("digits", "text")
SCHEDULES = ("constant", "cosine", "linear")
DATASETS = ("default", "shakespeare", "file", "folder", "jsonl", "hf", "tokens")
#: The datasets read from ``data_path`` through a memory-mapped token file
#: (:mod:`literate_tx.data.corpus`).
CORPUS_DATASETS = ("folder", "jsonl", "hf", "tokens")
#: ``TrainConfig.tokenizer``: the kinds a run trains (literate_tx.tokenizers.TOKENIZER_KINDS)
#: and GPT-2's own, which is loaded from ``tokenizer_file``.
TEXT_TOKENIZERS = (*TOKENIZER_KINDS, "gpt2")
OPTIMIZERS = ("adamw", "sgd")
AMP_MODES = ("none", "bf16", "fp16")

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


def load_yaml_mapping(text: str, *, source: str = "YAML") -> dict[str, Any]:
    r"""Read a YAML mapping of field: value, as strict as a config needs to be.

    ``yaml.safe_load`` (plain data only, no objects) with two changes: a key given twice is
    an error naming it (PyYAML would keep the last one silently), and numbers in exponent
    form without a dot, such as ``3e-4``, are numbers (YAML 1.2; PyYAML, which follows YAML
    1.1, reads them as strings). An empty document is an empty mapping.

    Raises
    ------
    ValueError
        For invalid YAML, a repeated key, or a document that is not a mapping, naming
        ``source``.

    Examples
    --------
    >>> load_yaml_mapping("lr: 3e-4\nsteps: 10\n")
    {'lr': 0.0003, 'steps': 10}
    >>> load_yaml_mapping("lr: 0.1\nlr: 0.2\n", source="run.yaml")
    Traceback (most recent call last):
    ...
    ValueError: run.yaml: line 2: key 'lr' is given twice (first on line 1); keep one
    """
    yaml = _yaml()
    try:
        data = yaml.load(text, Loader=_strict_loader(yaml))
    except yaml.YAMLError as exc:  # one line: where, and what PyYAML found there
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ValueError(f"{source} is not valid YAML: {where}{problem}") from None
    except ValueError as exc:  # a repeated key
        raise ValueError(f"{source}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            f"{source}: a training config must be a mapping of field: value, "
            f"got {type(data).__name__}"
        )
    return data


def _strict_loader(yaml):
    """A ``SafeLoader`` subclass that refuses repeated keys and reads ``3e-4`` as a float."""
    import re

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise ValueError(
                        f"line {line}: key {key!r} is given twice (first on line "
                        f"{seen[key]}); keep one"
                    )
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    StrictLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return StrictLoader


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
        Tokens per training window for ``task="text"`` (also the model's
        ``max_seq_len``), at least 2 (one token leaves no context to learn from); ignored by
        ``digits``, whose length is fixed by ``n_digits``.
    lr, min_lr : float
        Peak and final learning rate.
    warmup_steps : int
        Linear warmup from 0 (capped at ``steps - 1``, so that short runs still decay; the
        command line refuses a ``--warmup-steps`` given explicitly, by flag or file, that is
        ``>= steps``).
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
        ``"auto"`` (the default: CUDA if available, then Apple's MPS, else the CPU; reported
        when training starts), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` (torch backend
        only; under ``torchrun`` ``"cuda"`` means each process's ``cuda:LOCAL_RANK``).
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
    optimizer : {"adamw", "sgd"}
        ``"adamw"`` (decoupled decay, :class:`literate_tx.numpy_backend.optim.AdamW`,
        :class:`torch.optim.AdamW`) or plain ``"sgd"`` (no momentum, coupled :math:`L_2` decay
        of the matrices, :class:`literate_tx.numpy_backend.optim.SGD`, :class:`torch.optim.SGD`).
    grad_accum : int
        Micro-batches per update: the batch of ``batch_size`` rows is cut into ``grad_accum``
        parts whose gradients are summed, each weighted by its share of the counted targets,
        so that the loss and the gradient equal those of the whole batch (see
        :mod:`literate_tx.training.distributed`). Under ``torchrun`` the batch is first shared
        out between the processes, so ``batch_size`` is always the rows of one update.
    amp : {"none", "bf16", "fp16"}
        Mixed precision (torch backend, ``dtype="float32"``): the forward pass under
        :func:`torch.autocast` in bfloat16 or float16; ``"fp16"`` also scales the loss with a
        :class:`torch.amp.GradScaler` (updates with an overflow are skipped).
    compile : bool
        Run the forward pass through :func:`torch.compile` (torch backend); where it fails the
        run continues without it and says so.
    d_model, n_layers, n_heads, d_ff : int
        The model's sizes, as in :class:`~literate_tx.config.ModelConfig`.
    n_kv_heads : int, optional
        Key/value heads (grouped-query attention), a divisor of ``n_heads``; None (the
        default) is one per query head.
    norm, residual, activation, position, bias, tie_embeddings, dropout
        The model's layout, as in :class:`~literate_tx.config.ModelConfig`.
    n_digits : int or (int, int)
        Digits per ``digits`` example (a pair: a range).
    n_train, n_val, n_test : int
        Examples in each ``digits`` split (disjoint, drawn with ``split_seed``).
    split_seed : int
        Seed of the ``digits`` splits (fixed, so that every run is tested on the same examples).
    dataset : {"default", "shakespeare", "file", "folder", "jsonl", "hf", "tokens"}
        ``text`` corpus: the embedded *Alice*, Tiny Shakespeare (downloaded once), or
        ``text_file`` (these three are held in memory); or, tokenised once into a
        memory-mapped token file (:mod:`literate_tx.data.corpus`), the ``*.txt`` files of the
        folder ``data_path``, the JSON Lines file ``data_path``, the Hugging Face dataset
        ``data_path`` (saved on disk or in the local cache; needs ``datasets``), or a folder
        ``data_path`` already written by ``literate-tx prepare``.
    text_file : str, optional
        Path of a UTF-8 text file; implies ``dataset="file"`` (refused with another
        ``dataset``, and with ``task="digits"``, which makes its own examples).
    data_path : str, optional
        The corpus of ``dataset="folder"``, ``"jsonl"``, ``"hf"`` or ``"tokens"``.
    text_field : str
        The field holding the text in a JSON Lines record or a dataset row.
    tokenizer : {"char", "word", "bpe", "gpt2"}
        ``text`` tokens (:mod:`literate_tx.tokenizers`): characters, words (with punctuation
        and whitespace runs) or byte-level BPE, trained on the training text (``char``: on all
        of it, so that validation has no ``<unk>``), or loaded from ``tokenizer_file``;
        ``"gpt2"`` is :class:`~literate_tx.tokenizers.GPT2Tokenizer`, always loaded from
        ``tokenizer_file``. The tokenizer is saved in every checkpoint.
    vocab_size : int, optional
        Ids of a trained ``word`` or ``bpe`` tokenizer, special tokens included (``bpe``:
        default 512, at least 260; ``word``: default every piece seen). Not for ``char``.
    tokenizer_file : str, optional
        A tokenizer JSON file (:meth:`literate_tx.tokenizers.Tokenizer.save`) to use instead
        of training one; its kind must be ``tokenizer``.
    tokens_dir : str, optional
        Folder of the token file of a ``folder``/``jsonl``/``hf`` corpus; default a folder of
        :func:`literate_tx.data.text.cache_dir`, reused while its manifest matches.
    val_fraction : float
        Share of the text kept for validation (the end of it); above 0 for ``task="text"``,
        whose validation loss chooses ``best.npz``.
    sample_prompt : str
        Prompt of the text sample written to ``summary.json`` (not empty for
        ``task="text"``).
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
    device: str = "auto"
    threads: int | None = 1
    fast: bool = True
    # the update: optimiser, accumulation, PyTorch's mixed precision and compiler
    optimizer: str = "adamw"
    grad_accum: int = 1
    amp: str = "none"
    compile: bool = False
    # the model
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int | None = None
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
    # the text task's tokens and corpora (literate_tx.data.corpus), and the recipe used
    data_path: str | None = None
    text_field: str = "text"
    tokenizer: str = "char"
    vocab_size: int | None = None
    tokenizer_file: str | None = None
    tokens_dir: str | None = None
    recipe: str | None = None

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
        choice("optimizer", OPTIMIZERS)
        choice("amp", AMP_MODES)
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
        integer("seq_len", 2, optional=True)  # one token would leave no context to learn
        integer("threads", 1, optional=True)
        integer("n_kv_heads", 1, optional=True)
        integer("grad_accum", 1)
        number("lr", 0.0)
        number("min_lr", 0.0)
        number("weight_decay", 0.0)
        number("beta1", 0.0, 1.0, high_open=True)
        number("beta2", 0.0, 1.0, high_open=True)
        number("eps", 0.0)
        number("grad_clip", 0.0, optional=True)
        number("dropout", 0.0, 1.0, high_open=True)
        number("val_fraction", 0.0, 1.0, high_open=True)
        for name in ("bias", "tie_embeddings", "fast", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not allowed; use true or false"
                )
        _check_torch_features(self)
        if self.min_lr > self.lr:
            raise ValueError(
                f"min_lr={self.min_lr!r} is not allowed; min_lr must be <= lr={self.lr!r}"
            )
        if self.d_model % self.n_heads:
            raise ValueError(
                f"n_heads={self.n_heads} is not allowed; it must divide d_model={self.d_model}"
            )
        if self.n_kv_heads is not None and self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_kv_heads={self.n_kv_heads} is not allowed; it must divide "
                f"n_heads={self.n_heads} (or be left out: one key/value head per query head)"
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
        self._check_combinations()
        self._check_tokens_and_corpus()
        if self.task == "digits" and self.n_train < 1:
            raise ValueError("n_train=0 is not allowed for task='digits'; give at least 1")
        if self.task == "digits" and self.n_val < 1:
            raise ValueError("n_val=0 is not allowed for task='digits'; give at least 1")

    def _check_combinations(self) -> None:
        """Refuse settings that are each valid but would waste a run together."""
        if self.backend != "torch" and self.device not in ("cpu", "auto"):
            raise ValueError(
                f"device={self.device!r} is not allowed with backend={self.backend!r}; only "
                "the torch backend runs on a device: use backend='torch' or device='auto' "
                "(the CPU for numpy and python) or 'cpu'"
            )
        if self.task == "digits" and (self.text_file is not None or self.dataset != "default"):
            given = (f"text_file={self.text_file!r}" if self.text_file is not None
                     else f"dataset={self.dataset!r}")
            raise ValueError(
                f"{given} is not allowed with task='digits', which makes its own examples; "
                "a text corpus needs task='text'"
            )
        if self.text_file is not None and self.dataset != "file":
            raise ValueError(
                f"text_file={self.text_file!r} is not allowed with dataset={self.dataset!r}, "
                "which reads its own corpus: give one of them (text_file alone means "
                "dataset='file')"
            )
        if self.task == "text" and not self.sample_prompt:
            raise ValueError(
                "sample_prompt='' is not allowed for task='text': the run ends by continuing "
                "it; give at least one character, e.g. 'Alice '"
            )
        if self.task == "text" and self.val_fraction == 0:
            raise ValueError(
                "val_fraction=0.0 is not allowed for task='text': the validation text scores "
                "the run and chooses best.npz; give a share in (0, 1), e.g. 0.1"
            )

    def _check_tokens_and_corpus(self) -> None:
        """The tokenizer, the corpus and the recipe fields (issue 18)."""
        from ..tokenizers import DEFAULT_SPECIAL_TOKENS
        from .recipes import RECIPES

        for name, allowed in (("tokenizer", TEXT_TOKENIZERS), ("recipe", (None, *RECIPES))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: "
                                 + ", ".join(map(repr, allowed)))
        for name in ("data_path", "tokenizer_file", "tokens_dir"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name}={value!r} is not allowed; give a path (or None)")
        if not isinstance(self.text_field, str) or not self.text_field:
            raise ValueError(f"text_field={self.text_field!r} is not allowed; give a field name")
        v = self.vocab_size
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
            raise ValueError(f"vocab_size={v!r} is not allowed; vocab_size must be an int "
                             "(or None)")
        n_special = len(DEFAULT_SPECIAL_TOKENS)
        given = [f"{name}={getattr(self, name)!r}" for name, default in
                 (("tokenizer", "char"), ("data_path", None), ("tokenizer_file", None))
                 if getattr(self, name) != default]
        if self.task == "digits" and given:
            raise ValueError(
                f"{', '.join(given)} is not allowed with task='digits', whose vocabulary and "
                "examples are fixed; use task='text'"
            )
        if self.dataset in CORPUS_DATASETS and self.data_path is None:
            raise ValueError(f"dataset={self.dataset!r} is not allowed without data_path=PATH")
        if self.data_path is not None and self.dataset not in CORPUS_DATASETS:
            raise ValueError(
                f"data_path={self.data_path!r} is not allowed with dataset={self.dataset!r}; "
                f"data_path is the corpus of dataset={', '.join(map(repr, CORPUS_DATASETS))}"
                + (" (a single text file: text_file=PATH)" if self.dataset == "file" else "")
            )
        if self.dataset == "tokens" and self.tokenizer_file is not None:
            raise ValueError(f"tokenizer_file={self.tokenizer_file!r} is not allowed with "
                             "dataset='tokens', which reads the tokenizer written by "
                             "`literate-tx prepare`; leave it unset")
        if self.tokenizer == "gpt2" and self.tokenizer_file is None and self.dataset != "tokens":
            raise ValueError(
                "tokenizer='gpt2' is not allowed without tokenizer_file=PATH: GPT-2's tokenizer "
                "is loaded, never trained (GPT2Tokenizer.from_files(vocab.json, merges.txt) "
                "then .save(PATH)); to train one use tokenizer='bpe'"
            )
        if self.tokenizer_file is not None or self.tokenizer == "gpt2":
            return  # the file decides the vocabulary (checked against vocab_size on loading)
        if self.tokenizer == "char" and v is not None:
            raise ValueError(
                f"vocab_size={v!r} is not allowed with tokenizer='char', whose vocabulary is "
                "the characters of the text; use tokenizer='word' or 'bpe', or leave it unset"
            )
        if self.tokenizer == "bpe" and self.dataset != "tokens":
            if v is None:
                object.__setattr__(self, "vocab_size", 512)
            elif v < 256 + n_special:
                raise ValueError(
                    f"vocab_size={v} is not allowed with tokenizer='bpe'; it counts the 256 "
                    f"bytes and the {n_special} special tokens, so give at least "
                    f"{256 + n_special}"
                )
        if self.tokenizer == "word" and v is not None and v <= n_special:
            raise ValueError(
                f"vocab_size={v} is not allowed with tokenizer='word'; it counts the "
                f"{n_special} special tokens, so give at least {n_special + 1}"
            )
        if v is not None:
            object.__setattr__(self, "vocab_size", int(v))

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
        data = load_yaml_mapping(text, source=source)
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
        >>> TrainConfig(d_model=32, n_heads=4, n_kv_heads=2).model_config(20, 8).kv_heads
        2
        """
        return ModelConfig(
            vocab_size=vocab_size, d_model=self.d_model, n_layers=self.n_layers,
            n_heads=self.n_heads, n_kv_heads=self.n_kv_heads, d_ff=self.d_ff,
            max_seq_len=max_seq_len, norm=self.norm,
            residual=self.residual, activation=self.activation, position=self.position,
            bias=self.bias, tie_embeddings=self.tie_embeddings, dropout=self.dropout,
        )


def _check_torch_features(cfg: TrainConfig) -> None:
    """Refuse what only the torch backend has, and an accumulation with empty micro-batches."""
    if cfg.backend != "torch":
        for name, off in (("amp", "none"), ("compile", False)):
            if getattr(cfg, name) != off:
                raise ValueError(
                    f"{name}={getattr(cfg, name)!r} is not allowed with backend={cfg.backend!r}; "
                    f"{name} needs backend='torch' (allowed backends: 'torch'); "
                    f"use {name}={off!r} for {cfg.backend!r}"
                )
    if cfg.amp != "none" and cfg.dtype != "float32":
        raise ValueError(
            f"amp={cfg.amp!r} is not allowed with dtype={cfg.dtype!r}; mixed precision "
            "lowers float32 computations, so it needs dtype='float32'"
        )
    if cfg.grad_accum > cfg.batch_size:
        raise ValueError(
            f"grad_accum={cfg.grad_accum} is not allowed with batch_size={cfg.batch_size}; "
            "each micro-batch needs a row: grad_accum must be <= batch_size"
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
        Any :class:`TrainConfig` field. ``recipe=NAME`` lays the fields of that recipe
        (:mod:`literate_tx.training.recipes`) over the task's defaults, under the other
        overrides.

    Examples
    --------
    >>> default_config("text").seq_len, default_config("digits", steps=10).steps
    (64, 10)
    >>> default_config("text", recipe="tiny", steps=10).d_model
    128
    >>> default_config("music")
    Traceback (most recent call last):
    ...
    ValueError: task='music' is not allowed; allowed: 'digits', 'text'
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not allowed; allowed: {', '.join(map(repr, TASKS))}")
    _check_known(overrides)
    recipe = overrides.get("recipe")
    if recipe is not None:
        from .recipes import recipe_fields

        fields = recipe_fields(recipe)
        if fields.get("task", task) != task:
            raise ValueError(f"recipe={recipe!r} is a recipe for task={fields['task']!r}, not "
                             f"task={task!r}")
        return TrainConfig(**{**_TASK_DEFAULTS[task], **fields, **overrides, "task": task})
    return TrainConfig(**{"task": task, **_TASK_DEFAULTS[task], **overrides})



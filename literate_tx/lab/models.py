r"""What the lab computes from a checkpoint: attention, internals, streamed text, a traced pass,
and the backend benchmark.

Each function takes plain values (a path, a prompt, numbers) and returns plain values (lists,
NumPy arrays, small dataclasses), so the Streamlit pages only draw them and the tests check them
without a browser. Everything goes through the package's public API:
:func:`~literate_tx.training.load_trained` for checkpoints (any backend reads any checkpoint),
``model.run_with_cache`` and :mod:`literate_tx.inspection` for the internals,
:mod:`literate_tx.generation` for sampling, the pure-Python backend's trace mode
(:mod:`literate_tx.python_backend.trace`) and :func:`literate_tx.bench.run_suite`.

Errors are the package's: a missing file raises :class:`FileNotFoundError`, a damaged checkpoint,
an empty or too long prompt, or an impossible size raises :class:`ValueError` with a message
that says what is wrong; the pages show that message.

Examples
--------
>>> import os, tempfile
>>> from literate_tx.training import TrainConfig, train
>>> cfg = TrainConfig(steps=2, batch_size=4, d_model=8, n_layers=1, n_heads=2, d_ff=16,
...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
>>> _ = train(cfg, quiet=True)
>>> loaded = load(os.path.join(cfg.out, "last.npz"))
>>> view = attention(loaded, "Max ( 5 3 9 ) =")
>>> view.weights.shape, view.labels[:3]
((1, 2, 8, 8), ['0 <bos>', '1 Max', '2 ('])
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Loaded", "AttentionView", "Internals", "load", "encode", "attention",
           "digits_prompts", "internals", "histogram", "stream_tokens", "stream_text",
           "trace_pass", "benchmark"]

BACKENDS = ("numpy", "python", "torch")


@dataclass(frozen=True)
class Loaded:
    r"""A trained checkpoint loaded into one backend.

    Attributes
    ----------
    path : pathlib.Path
    backend : str
    model
        The backend's model.
    tokenizer
        ``encode`` / ``decode`` (the trainer's), or None.
    train_config : TrainConfig or None
    metadata : dict

    Examples
    --------
    >>> Loaded(Path("m.npz"), "numpy", None, None, None, {}).task
    '?'
    """

    path: Path
    backend: str
    model: Any
    tokenizer: Any
    train_config: Any
    metadata: dict

    @property
    def task(self) -> str:
        r"""``"digits"``, ``"text"`` or ``"?"`` (no training configuration).

        Examples
        --------
        >>> Loaded(Path("m.npz"), "numpy", None, None, None, {}).task
        '?'
        """
        return "?" if self.train_config is None else self.train_config.task


# (path, mtime, backend) -> Loaded; a few models, the latest kept
_LOADED: dict[tuple[str, float, str], Loaded] = {}


def load(path: str | os.PathLike, backend: str = "numpy") -> Loaded:
    r"""Load a checkpoint written by the trainer into ``backend`` (cached per file version).

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ValueError
        For a file that is not a readable checkpoint, an unknown backend, or a checkpoint
        without a tokenizer.

    Examples
    --------
    >>> load("/nonexistent.npz")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no checkpoint at /nonexistent.npz
    >>> load("m.npz", backend="jax")
    Traceback (most recent call last):
    ...
    ValueError: backend='jax' is not allowed; allowed: 'numpy', 'python', 'torch'
    """
    from ..training import load_trained

    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not allowed; allowed: "
                         + ", ".join(map(repr, BACKENDS)))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    key = (str(path.resolve()), path.stat().st_mtime, backend)
    if key not in _LOADED:
        model, tokenizer, tcfg, meta = load_trained(path, backend=backend)
        if tokenizer is None:
            raise ValueError(f"{path} holds no tokenizer; the lab reads checkpoints written by "
                             "`literate-tx train`")
        if len(_LOADED) >= 6:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = Loaded(path, backend, model, tokenizer, tcfg, meta)
    return _LOADED[key]


def encode(loaded: Loaded, prompt: str, *, room: int = 0) -> list[int]:
    r"""Token ids of ``prompt`` with the checkpoint's tokenizer, checked against the model.

    Parameters
    ----------
    loaded : Loaded
    prompt : str
    room : int
        Positions to leave free after the prompt (at most ``max_seq_len - room`` ids).

    Raises
    ------
    ValueError
        For an empty prompt, a token the tokenizer does not know, or a prompt longer than the
        model's context.

    Examples
    --------
    >>> import tempfile, os
    >>> from literate_tx.training import TrainConfig, train
    >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> loaded = load(train(cfg, quiet=True).last_checkpoint)
    >>> encode(loaded, "Max ( 1 2 3 ) =")
    [1, 5, 7, 11, 12, 13, 8, 9]
    >>> encode(loaded, "   ")
    Traceback (most recent call last):
    ...
    ValueError: the prompt is empty; type some text (digits: e.g. 'Max ( 5 3 9 ) =')
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty; type some text (digits: e.g. 'Max ( 5 3 9 ) =')")
    ids = [int(i) for i in loaded.tokenizer.encode(prompt)]
    if not ids:
        raise ValueError(f"prompt={prompt!r} encodes to no tokens; give a longer prompt")
    limit = loaded.model.config.max_seq_len - room
    if len(ids) > limit:
        raise ValueError(f"the prompt is {len(ids)} tokens long but this model reads at most "
                         f"{limit}{' here' if room else ''} (max_seq_len="
                         f"{loaded.model.config.max_seq_len}); shorten it")
    return ids


def _labels(loaded: Loaded, ids: Sequence[int]) -> list[str]:
    """One unique label per position: ``"3 Max"`` (a chart's axis merges equal labels)."""
    return [f"{i} {loaded.tokenizer.decode([t])}" for i, t in enumerate(ids)]


@dataclass(frozen=True)
class AttentionView:
    r"""Every layer's and head's attention weights on one prompt.

    Attributes
    ----------
    ids : list of int
    labels : list of str
        ``"position token"``, one per position.
    weights : (L, H, T, T) ndarray
        ``weights[l, h, query, key]``; rows sum to 1, zero above the diagonal.
    next_token : str
        The greedy next token after the prompt.

    Examples
    --------
    >>> v = AttentionView([1], ["0 a"], np.ones((1, 1, 1, 1)), "b")
    >>> v.head(0, None).shape
    (1, 1)
    """

    ids: list[int]
    labels: list[str]
    weights: np.ndarray
    next_token: str

    def head(self, layer: int, head: int | None) -> np.ndarray:
        r"""The ``(T, T)`` map of one head, or the mean over heads for ``head=None``.

        Raises
        ------
        ValueError
            For a layer or head the model does not have.

        Examples
        --------
        >>> v = AttentionView([1, 2], ["0 a", "1 b"], np.array([[[[1, 0], [0.5, 0.5]]]]), "c")
        >>> v.head(0, 0)[1].tolist()
        [0.5, 0.5]
        >>> v.head(1, 0)
        Traceback (most recent call last):
        ...
        ValueError: layer=1 is not allowed; this model has layers 0 to 0
        """
        L, H = self.weights.shape[:2]
        if not 0 <= layer < L:
            raise ValueError(f"layer={layer} is not allowed; this model has layers 0 to {L - 1}")
        if head is None:
            return self.weights[layer].mean(axis=0)  # (T, T)
        if not 0 <= head < H:
            raise ValueError(f"head={head} is not allowed; this model has heads 0 to {H - 1}")
        return self.weights[layer, head]  # (T, T)


def attention(loaded: Loaded, prompt: str) -> AttentionView:
    r"""Run the model on ``prompt`` and collect its attention weights (``run_with_cache``).

    Examples
    --------
    See the module example.
    """
    from ..plots import attention_stack

    ids = encode(loaded, prompt)
    logits, cache = loaded.model.run_with_cache([ids])  # (1, T, V), hooks
    weights = attention_stack(cache)  # (L, H, T, T)
    nxt = int(np.argmax(np.asarray(logits)[0, -1]))
    return AttentionView(ids, _labels(loaded, ids), np.asarray(weights, dtype=np.float64),
                         loaded.tokenizer.decode([nxt]))


def digits_prompts(loaded: Loaded, digits: Sequence[int] = (5, 3, 9, 2, 7, 1)) -> dict[str, str]:
    r"""One prompt per operation of a digits model, on the same digits (``{}`` for text).

    The digits are cut to the task's smallest count, so that every prompt is one the model
    was trained on.

    Examples
    --------
    >>> import tempfile
    >>> from literate_tx.training import TrainConfig, train
    >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> digits_prompts(load(train(cfg, quiet=True).last_checkpoint))["Max"]
    'Max ( 5 3 9 ) ='
    """
    if loaded.task != "digits":
        return {}
    task = loaded.tokenizer.task
    shown = " ".join(str(d) for d in list(digits)[:task.min_digits])
    return {op: f"{op} ( {shown} ) =" for op in task.operations}


@dataclass(frozen=True)
class Internals:
    r"""Activation and gradient statistics of one forward and backward pass.

    Attributes
    ----------
    activations : list of literate_tx.inspection.HookStats
        One row per hook (mean, variance, RMS, min, max).
    residual : list of literate_tx.inspection.ResidualNorm
        The residual stream's mean and largest per-position length before, inside and after
        each block.
    gradients : list of dict
        Per layer group (``embed``, ``blocks.{i}``, ...): ``name``, ``norm`` and
        ``rms`` (:math:`\lVert g \rVert_2 / \sqrt{n}`); empty for a one-token prompt.
    loss : float or None
        The next-token loss on the prompt the gradients come from.
    values : dict of str to ndarray
        Every hooked activation, for histograms.
    gradient_values : dict of str to ndarray
        Every gradient entry of each layer group (flat), for histograms.

    Examples
    --------
    >>> Internals([], [], [], None, {}).loss is None
    True
    """

    activations: list
    residual: list
    gradients: list[dict[str, Any]]
    loss: float | None
    values: dict[str, np.ndarray]
    gradient_values: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def internals(loaded: Loaded, prompt: str) -> Internals:
    r"""Activation statistics of ``prompt`` and the gradient of its next-token loss, per layer.

    The gradients are those of the mean cross-entropy of predicting each token of the prompt
    from the ones before it (inputs ``ids[:-1]``, targets ``ids[1:]``), so a prompt that
    includes the answer (``Max ( 5 3 9 ) = 9``) shows the gradient of a training example.

    Examples
    --------
    >>> import tempfile
    >>> from literate_tx.training import TrainConfig, train
    >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=2, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> found = internals(load(train(cfg, quiet=True).last_checkpoint), "Max ( 5 3 9 ) = 9")
    >>> [g["name"] for g in found.gradients]
    ['embed', 'blocks.0', 'blocks.1', 'final_norm', 'lm_head']
    >>> found.activations[0].hook, found.loss > 0, sorted(found.gradient_values) == sorted(
    ...     g["name"] for g in found.gradients)
    ('embed.out', True, True)
    """
    from ..inspection import activation_stats, gradient_norms, residual_norms

    ids = encode(loaded, prompt)
    _, cache = loaded.model.run_with_cache([ids])
    values = {k: np.asarray(v, dtype=np.float64) for k, v in cache.items()}
    gradients: list[dict[str, Any]] = []
    loss = None
    if len(ids) >= 2:
        loss, grads = loaded.model.loss_and_grads([ids[:-1]], [ids[1:]])
        loss = float(loss)
        groups: dict[str, list[np.ndarray]] = {}
        for row in gradient_norms(grads, by="layer"):
            gradients.append({"name": row.name, "norm": row.norm,
                              "rms": row.norm / math.sqrt(max(row.size, 1))})
            groups[row.name] = []
        for name, g in grads.items():
            group = next((k for k in groups if name == k or name.startswith(k + ".")), None)
            if group is not None:
                groups[group].append(np.asarray(g, dtype=np.float64).ravel())
        grad_values = {k: np.concatenate(v) for k, v in groups.items() if v}
    else:
        grad_values = {}
    return Internals(activation_stats(values), residual_norms(values), gradients, loss, values,
                     grad_values)


def histogram(values: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    r"""``(counts, edges)`` of the finite entries of ``values``.

    Examples
    --------
    >>> counts, edges = histogram(np.array([0.0, 1.0, 1.0, np.inf]), bins=2)
    >>> counts.tolist(), edges.tolist()
    ([1, 2], [0.0, 0.5, 1.0])
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    flat = flat[np.isfinite(flat)]
    counts, edges = np.histogram(flat, bins=bins)
    return counts, edges


def _chunk(model, context: list[int], count: int, temperature: float, top_k, top_p,
           seed: int) -> Iterator[int]:
    """:func:`literate_tx.generation.generate` with ``use_cache=True``, one token at a time."""
    from ..generation import sample_token, sampling_probs

    rng = np.random.default_rng(seed)
    logits, kv_cache = model.decode([context])  # (1, T, V): the context fills the cache
    for n in range(count):
        z = np.asarray(logits, dtype=np.float64)[0, -1]  # (V,)
        if temperature == 0:
            token = int(np.argmax(z))
        else:
            token = sample_token(sampling_probs(z, temperature, top_k, top_p), rng)
        yield token
        if n + 1 < count:
            logits, kv_cache = model.decode([[token]], kv_cache)  # (1, 1, V)


def stream_tokens(model, prompt_ids: Sequence[int], max_new_tokens: int, *,
                  temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, seed: int | None = None) -> Iterator[int]:
    r"""The tokens of :func:`literate_tx.training.sample_text`, yielded as they are drawn.

    Same window, same seeds: the list of what this yields equals ``sample_text(model,
    prompt_ids, max_new_tokens, ...)`` (so it equals ``literate-tx generate`` with that seed,
    in every backend), and it may run past the model's context, which then slides.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> from literate_tx.training import sample_text
    >>> model = ltx.create_model(ltx.ModelConfig(10, 8, 1, 2, 16, 4), seed=0)
    >>> out = list(stream_tokens(model, [1, 2], 9, temperature=0.9, seed=3))
    >>> out == sample_text(model, [1, 2], 9, temperature=0.9, seed=3)
    True
    """
    from ..generation import _check_sampling_args  # the same messages as generate's

    _check_sampling_args(temperature, top_k, top_p)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an int >= 0")
    window = model.config.max_seq_len
    ids = [int(i) for i in prompt_ids][-(window - 1):] if window > 1 else []
    if not ids:
        raise ValueError("prompt_ids is empty; give at least one token")
    rng = np.random.default_rng(seed)
    new: list[int] = []
    while len(new) < max_new_tokens:
        context = (ids + new)[-max(window // 2, 1):] if new else ids
        count = min(window - len(context), max_new_tokens - len(new))
        chunk_seed = int(rng.integers(2**63))
        for token in _chunk(model, context, count, temperature, top_k, top_p, chunk_seed):
            new.append(token)
            yield token


def stream_text(loaded: Loaded, prompt: str, max_new_tokens: int, **sampling: Any
                ) -> Iterator[str]:
    r"""The prompt, then each new token's text as it is drawn (:func:`stream_tokens`).

    For a digits model the answer is one token after ``=``, joined with a space as
    ``literate-tx generate`` prints it.

    Examples
    --------
    >>> import tempfile
    >>> from literate_tx.training import TrainConfig, train
    >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> pieces = list(stream_text(load(train(cfg, quiet=True).last_checkpoint),
    ...                           "Max ( 5 3 9 ) =", 1, temperature=0))
    >>> pieces[0], len(pieces)
    ('Max ( 5 3 9 ) =', 2)
    """
    ids = encode(loaded, prompt)
    sep = " " if loaded.task == "digits" else ""
    yield prompt
    for token in stream_tokens(loaded.model, ids, max_new_tokens, **sampling):
        yield sep + loaded.tokenizer.decode([token])


def trace_pass(prompt: str, checkpoint: str | os.PathLike | None = None):
    r"""One forward and backward pass of the pure-Python backend in trace mode.

    Parameters
    ----------
    prompt : str
        Digits-task text (``Max ( 5 3 9 ) = 9``) for the built-in model, or text for the
        checkpoint's tokenizer. The loss is the next-token loss on the prompt (at least two
        tokens).
    checkpoint : path, optional
        A trained checkpoint to trace (its weights, in the pure-Python backend). Default: a
        tiny fresh digits model (C=8, L=1, H=2, F=16), which traces in a blink.

    Returns
    -------
    list of literate_tx.python_backend.TraceRecord
        Every step in the order it ran: phase, place, step, shape (with axis symbols),
        statistics and ``values`` (the entries, row-major).

    Examples
    --------
    >>> records = trace_pass("Max ( 5 3 9 ) = 9")
    >>> records[0].step, records[0].shape_text()
    ('token + position embedding', '(B=1, T=8, C=8)')
    >>> sorted({r.phase for r in records})
    ['backward', 'forward']
    """
    from ..api import create_model
    from ..config import ModelConfig
    from ..data.digits import DigitsTask
    from ..python_backend import Trace
    from ..training import DigitsCodec

    if checkpoint is None:
        task = DigitsTask()
        tokenizer = DigitsCodec(task)
        config = ModelConfig(task.vocab_size, 8, 1, 2, 16, task.seq_len + 1)
        params = None
        loaded = Loaded(Path("built-in"), "python", _Sized(config), tokenizer, None, {})
    else:
        loaded = load(checkpoint, "numpy")
        config, params, tokenizer = (loaded.model.config, loaded.model.parameters(),
                                     loaded.tokenizer)
    ids = encode(loaded, prompt)
    if len(ids) < 2:
        raise ValueError("the prompt must be at least two tokens long: the traced loss "
                         "predicts each token from the ones before it")
    trace = Trace()
    model = create_model(config, "python", params=params, seed=0, dtype="float64", trace=trace)
    model.loss_and_grads([ids[:-1]], [ids[1:]])
    return list(trace.records)


class _Sized:
    """Just enough of a model for :func:`encode` (its ``config``)."""

    def __init__(self, config):
        self.config = config


def benchmark(preset: str = "tiny", backends: Sequence[str] = ("numpy", "numpy-fast"),
              ops: Sequence[str] = ("forward", "train_step"), *, dtype: str = "float32",
              repeats: int = 3) -> list[dict[str, Any]]:
    r"""Time the backends with :func:`literate_tx.bench.run_suite`; one row per measurement.

    Returns
    -------
    list of dict
        ``backend``, ``op``, ``median_ms``, ``min_ms``, ``max_ms``, ``tokens_per_s`` and
        ``gflops`` (absent figures are None).

    Raises
    ------
    ValueError
        For an unknown preset, backend, op or dtype (run_suite's message).

    Examples
    --------
    >>> benchmark("huge")
    Traceback (most recent call last):
    ...
    ValueError: presets=['huge'] is not allowed; choose from 'tiny', 'small', 'medium'
    """
    from ..bench import run_suite

    result = run_suite(presets=[preset], backends=list(backends), dtypes=[dtype],
                       repeats=repeats, warmup=1, ops=list(ops), gen_tokens=16,
                       memory=False, lead_in=0.05, verbose=False)
    rows = []
    for r in result["results"]:
        rows.append({"backend": r["backend"], "op": r["op"],
                     "median_ms": r["median_s"] * 1e3, "min_ms": r["min_s"] * 1e3,
                     "max_ms": r["max_s"] * 1e3, "tokens_per_s": r.get("tokens_per_s"),
                     "gflops": r.get("gflops")})
    return rows

r"""Generating text: sampling the next token again and again, in any backend.

A language model gives, at every position, the logits :math:`z \in \mathbb{R}^V` of the next
token. Generation feeds the prompt, turns the last position's logits into a probability
distribution, draws a token, appends it, and repeats. Only the model call depends on the
backend; everything else — the distribution, the random draw — happens here, in float64 NumPy,
so that the same weights and the same seed give the same text in every backend.

The sampling distribution
-------------------------
Three knobs reshape :math:`p = \mathrm{softmax}(z)`, applied in this order (the order of
Hugging Face's ``generate``):

.. math::
   :label: gen-temperature

   p_x \propto \exp(z_x / \mathcal{T}) \qquad \text{(temperature } \mathcal{T} > 0\text{)},

for every token id :math:`x`; :math:`\mathcal{T} < 1` sharpens, :math:`\mathcal{T} > 1` flattens
and :math:`\mathcal{T} = 0` is the limit that puts all mass on the arg-max (*greedy* decoding;
ties go to the lowest id). **Top-k** keeps the ``top_k`` most probable tokens (ties broken
towards the lower id) and renormalises. **Top-p** (*nucleus*, Holtzman et al. 2019) sorts the
probabilities in decreasing order and keeps the smallest prefix whose mass reaches
:math:`p_\text{top}` (``top_p``):

.. math::
   :label: gen-top-p

   \mathcal{S} = \{o_1, \dots, o_{|\mathcal{S}|}\}, \qquad
   |\mathcal{S}| = \min\Big\{ \iota :
   \sum_{\iota' \le \iota} p_{o_{\iota'}} \ge p_\text{top} \Big\},

with :math:`o_\iota` the token of rank :math:`\iota` (:math:`o_1` the most probable, which
:math:`\mathcal S` always contains), then renormalises. With ``top_k``
off and ``top_p = 1`` the distribution is the plain tempered softmax.

The draw
--------
One uniform number :math:`\upsilon \sim U[0, 1)` per step, from ``numpy.random.default_rng(seed)``,
picks the token by inverting the cumulative distribution: the first id :math:`x` with
:math:`\sum_{x' \le x} p_{x'} > \upsilon`. Tokens of probability zero are never chosen.
Because the draw depends on the backend only through the logits, two backends agree token for
token unless :math:`\upsilon` falls within their rounding difference of a boundary.

The key/value cache
-------------------
Recomputing the whole sequence for every new token costs :math:`O(T^2)` attention work per step.
With ``use_cache=True`` the prompt goes through ``model.decode`` once, and every later step feeds
only the newest token together with the keys and values of all earlier positions
(:mod:`literate_tx.numpy_backend.attention`, "Incremental decoding"): the logits are the same
(up to rounding) as with ``use_cache=False``, which calls ``model.forward`` on the whole sequence
at every step.

Length
------
A model accepts at most ``config.max_seq_len`` positions. Rather than silently sliding a window
(which would change what learned and sinusoidal positions mean mid-sentence, and make the cached
and uncached paths differ), :func:`generate` raises ``ValueError`` when
``len(prompt_ids) + max_new_tokens > max_seq_len``, in both paths.

Examples
--------
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(vocab_size=10, d_model=8, n_layers=1, n_heads=2, d_ff=16, max_seq_len=16)
>>> model = ltx.create_model(cfg, backend="numpy", seed=0, dtype="float64")
>>> a = generate(model, [1, 2, 3], 5, seed=7)
>>> b = generate(model, [1, 2, 3], 5, seed=7, use_cache=False)
>>> len(a), a == b
(5, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["generate", "sampling_probs", "sample_token"]


def _check_sampling_args(temperature, top_k, top_p) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)):
        raise ValueError(f"temperature={temperature!r} must be a number >= 0")
    if not (temperature >= 0 and np.isfinite(temperature)):
        raise ValueError(
            f"temperature={temperature!r} must be finite and >= 0 (0 means greedy decoding)"
        )
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                              or top_k < 1):
        raise ValueError(f"top_k={top_k!r} must be None (off) or an int >= 1")
    if top_p is not None and (isinstance(top_p, bool)
                              or not isinstance(top_p, (int, float, np.floating))
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p={top_p!r} must be None (off) or a number in (0, 1]")


def sampling_probs(logits, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> np.ndarray:
    r"""The distribution the next token is drawn from (temperature, top-k, top-p).

    Parameters
    ----------
    logits : (..., V) array_like
        Scores of the next token (any float dtype; computed in float64).
    temperature : float
        :math:`\mathcal{T} \ge 0`; ``0`` gives the one-hot arg-max (greedy).
    top_k : int, optional
        Keep the ``top_k`` most probable tokens (``None``: all).
    top_p : float, optional
        Keep the smallest set of most probable tokens whose mass is at least ``top_p``, in
        ``(0, 1]`` (``None`` or ``1``: all).

    Returns
    -------
    probs : (..., V) float64 ndarray
        Non-negative, summing to one along the last axis.

    Raises
    ------
    ValueError
        Naming the argument, the value received and what is allowed.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.log([0.5, 0.3, 0.2])
    >>> sampling_probs(z)
    array([0.5, 0.3, 0.2])
    >>> sampling_probs(z, temperature=0)
    array([1., 0., 0.])
    >>> sampling_probs(z, top_k=2)
    array([0.625, 0.375, 0.   ])
    >>> sampling_probs(z, top_p=0.75)  # 0.5 < 0.75 <= 0.5 + 0.3: the top two
    array([0.625, 0.375, 0.   ])
    >>> sampling_probs(z, top_k=0)
    Traceback (most recent call last):
    ...
    ValueError: top_k=0 must be None (off) or an int >= 1
    """
    _check_sampling_args(temperature, top_k, top_p)
    z = np.asarray(logits, dtype=np.float64)  # (..., V)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"logits must have shape (..., V) with V >= 1, got shape {z.shape}")
    V = z.shape[-1]
    # a stable descending order: equal logits keep the lower id first
    order = np.argsort(-z, axis=-1, kind="stable")  # (..., V)
    if temperature == 0:
        probs = np.zeros_like(z)  # (..., V)
        np.put_along_axis(probs, order[..., :1], 1.0, axis=-1)  # greedy: all mass on arg-max
        return probs
    s = z / temperature  # (..., V), eq. (gen-temperature)
    s = s - s.max(axis=-1, keepdims=True)  # softmax is shift-invariant; avoids overflow
    probs = np.exp(s)  # (..., V)
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_k is not None and top_k < V:
        drop = order[..., top_k:]  # (..., V - k), the least probable tokens
        np.put_along_axis(probs, drop, 0.0, axis=-1)
        probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1:
        sorted_p = np.take_along_axis(probs, order, axis=-1)  # (..., V), decreasing
        before = np.cumsum(sorted_p, axis=-1) - sorted_p  # (..., V), mass strictly before rank r
        keep_sorted = before < top_p  # rank r is needed while the prefix before it is short of p
        keep_sorted[..., 0] = True  # the most probable token is always kept
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)  # back to vocabulary order
        probs = np.where(keep, probs, 0.0)  # eq. (gen-top-p)
        probs /= probs.sum(axis=-1, keepdims=True)
    return probs


def sample_token(probs, rng: np.random.Generator) -> int:
    r"""Draw one token id from ``probs`` with a single uniform number from ``rng``.

    The id is the first :math:`x` whose cumulative probability exceeds :math:`\upsilon \sim U[0, 1)`
    (inverse-CDF sampling), so a token of probability zero is never drawn.

    Parameters
    ----------
    probs : (V,) array_like
        Non-negative weights (normalised here).
    rng : numpy.random.Generator

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> sample_token([0.0, 1.0, 0.0], rng)
    1
    >>> sorted({sample_token([0.5, 0.0, 0.5], rng) for _ in range(50)})
    [0, 2]
    """
    cdf = np.cumsum(np.asarray(probs, dtype=np.float64))  # (V,)
    u = rng.random() * cdf[-1]
    return int(min(np.searchsorted(cdf, u, side="right"), cdf.size - 1))


def _prompt_list(prompt_ids, cfg) -> list[int]:
    arr = np.asarray(prompt_ids)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise ValueError(
            f"prompt_ids must be a 1-D sequence of token ids (one prompt), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError("prompt_ids is empty; pass at least one token id")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"prompt_ids must be integer token ids, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= cfg.vocab_size:
        raise ValueError(
            f"prompt_ids must be ids in [0, vocab_size={cfg.vocab_size}); got values from "
            f"{int(arr.min())} to {int(arr.max())}"
        )
    return [int(t) for t in arr]


def generate(
    model,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop_token: int | None = None,
    use_cache: bool = True,
) -> list[int]:
    r"""Continue ``prompt_ids`` by sampling up to ``max_new_tokens`` tokens from ``model``.

    Works with every backend: it needs only ``model.config``, ``model.forward`` and, with
    ``use_cache=True``, ``model.decode``. Sampling happens in float64 NumPy on the logits the
    backend returns (:func:`sampling_probs`, :func:`sample_token`).

    Parameters
    ----------
    model : NumpyModel, PythonModel or TorchModel
    prompt_ids : sequence of int, shape (T,)
        One prompt (a ``(1, T)`` array is accepted too).
    max_new_tokens : int
        How many tokens to add at most (``>= 0``).
    temperature : float
        Softmax temperature; ``0`` means greedy decoding (and draws no random numbers).
    top_k : int, optional
        Sample only from the ``top_k`` most probable tokens.
    top_p : float, optional
        Nucleus sampling: from the smallest set of tokens with mass ``>= top_p``.
    seed : int, optional
        Seed of ``numpy.random.default_rng``; the same seed gives the same tokens in every
        backend. ``None`` draws fresh entropy.
    stop_token : int, optional
        Stop as soon as this id is drawn; it is **not** included in the result.
    use_cache : bool
        Feed one token per step through ``model.decode`` with a key/value cache (fast), or
        recompute the whole sequence with ``model.forward`` at every step.

    Returns
    -------
    list of int
        Only the **continuation**: the new token ids, without the prompt (at most
        ``max_new_tokens``; fewer if ``stop_token`` was drawn).

    Raises
    ------
    ValueError
        For a bad argument, or when ``len(prompt_ids) + max_new_tokens`` exceeds
        ``model.config.max_seq_len`` (no sliding window: see the module docstring).

    Examples
    --------
    Greedy decoding is the arg-max at every step, with or without the cache:

    >>> import literate_tx as ltx
    >>> cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 12, position="rope")
    >>> model = ltx.create_model(cfg, seed=1, dtype="float64")
    >>> out = generate(model, [1, 2], 4, temperature=0)
    >>> out == generate(model, [1, 2], 4, temperature=0, use_cache=False), len(out)
    (True, 4)
    >>> generate(model, [1, 2], 11)
    Traceback (most recent call last):
    ...
    ValueError: len(prompt_ids)=2 + max_new_tokens=11 = 13 exceeds max_seq_len=12; ...
    """
    cfg = model.config
    prompt = _prompt_list(prompt_ids, cfg)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) \
            or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an int >= 0")
    _check_sampling_args(temperature, top_k, top_p)
    if stop_token is not None and not 0 <= stop_token < cfg.vocab_size:
        raise ValueError(
            f"stop_token={stop_token!r} must be None or an id in [0, vocab_size={cfg.vocab_size})"
        )
    total = len(prompt) + max_new_tokens
    if total > cfg.max_seq_len:
        raise ValueError(
            f"len(prompt_ids)={len(prompt)} + max_new_tokens={max_new_tokens} = {total} exceeds "
            f"max_seq_len={cfg.max_seq_len}; shorten the prompt or ask for at most "
            f"{max(cfg.max_seq_len - len(prompt), 0)} new tokens"
        )
    if max_new_tokens == 0:
        return []
    rng = np.random.default_rng(seed)
    sequence = list(prompt)
    new: list[int] = []
    kv_cache = None
    if use_cache:
        logits, kv_cache = model.decode([prompt])  # (1, T, V): the prompt fills the cache
    else:
        logits = model.forward([prompt])  # (1, T, V)
    while True:
        z = np.asarray(logits, dtype=np.float64)[0, -1]  # (V,), the next token's scores
        if temperature == 0:
            token = int(np.argmax(z))  # greedy: first maximum, no random number drawn
        else:
            token = sample_token(sampling_probs(z, temperature, top_k, top_p), rng)
        if stop_token is not None and token == stop_token:
            break
        new.append(token)
        sequence.append(token)
        if len(new) == max_new_tokens:
            break
        if use_cache:
            logits, kv_cache = model.decode([[token]], kv_cache)  # (1, 1, V)
        else:
            logits = model.forward([sequence])  # (1, T + n, V), everything again
    return new

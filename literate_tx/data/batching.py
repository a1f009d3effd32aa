r"""Batches for language modelling: windows of a token stream.

A corpus encoded by a tokenizer is one long 1-D array :math:`s_0, s_1, \dots,
s_{N-1}`. A training example is a window of :math:`T` tokens and, shifted by
one, the :math:`T` tokens that follow each of them:

.. math::

    x_{b,t} = s_{i_b + t}, \qquad y_{b,t} = s_{i_b + t + 1},
    \qquad 0 \le t < T,                                               \tag{1}

so that every position :math:`t` of every row is a next-token prediction
(the model sees :math:`x_{b, \le t}` and is scored on :math:`y_{b,t}`).

* :func:`sample_batch` draws the starts :math:`i_b` uniformly from
  :math:`0 \dots N - T - 1` with a caller-owned :class:`numpy.random.Generator`:
  random windows for training.
* :func:`iter_sequential` walks the stream in order with non-overlapping
  windows: every target is scored once, for evaluation.
* :func:`train_val_split` cuts the stream in two contiguous parts, so no window
  of the validation part was ever seen in training.

Resuming exactly
----------------
The functions never create a generator; the trainer owns one and passes it in.
Saving its state with :func:`rng_state` (a JSON-ready dict, no pickle) and
rebuilding it with :func:`rng_from_state` resumes the very same sequence of
batches.

Examples
--------
>>> import numpy as np
>>> tokens = np.arange(10)
>>> x, y = sample_batch(tokens, batch_size=2, seq_len=4, rng=np.random.default_rng(0))
>>> x.tolist(), y.tolist()
([[5, 6, 7, 8], [3, 4, 5, 6]], [[6, 7, 8, 9], [4, 5, 6, 7]])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "iter_sequential",
    "rng_from_state",
    "rng_state",
    "sample_batch",
    "train_val_split",
]


def _as_stream(tokens: Any) -> np.ndarray:
    """Check ``tokens`` is a 1-D integer array and return it as one."""
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError(
            f"tokens has shape {arr.shape}; a token stream must be one-dimensional (N,)"
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"tokens has dtype {arr.dtype}; token ids must be integers")
    return arr


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r}; allowed: an int >= 1")
    return int(value)


def train_val_split(tokens: Any, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    r"""Cut a token stream into a leading train part and a trailing validation part.

    Parameters
    ----------
    tokens : (N,) int array
    val_fraction : float
        Share of the stream for validation, in ``[0, 1)``; the validation part has
        ``round(N * val_fraction)`` tokens.

    Returns
    -------
    train : (N - M,) ndarray
    val : (M,) ndarray
        Views into ``tokens``, not copies.

    Examples
    --------
    >>> train, val = train_val_split(np.arange(10), val_fraction=0.2)
    >>> train.tolist(), val.tolist()
    ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    arr = _as_stream(tokens)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise TypeError(f"val_fraction={val_fraction!r}; allowed: a float in [0, 1)")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r}; allowed: a float in [0, 1)")
    n_val = int(round(len(arr) * val_fraction))
    return arr[: len(arr) - n_val], arr[len(arr) - n_val :]


def sample_batch(
    tokens: Any, batch_size: int, seq_len: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    r"""Random windows of a token stream and their next-token targets, eq. (1).

    Parameters
    ----------
    tokens : (N,) int array
        Needs ``N >= seq_len + 1``.
    batch_size : int
        B, windows per batch (drawn independently, so two may coincide).
    seq_len : int
        T, tokens per window.
    rng : numpy.random.Generator
        Owned by the caller; this draws exactly ``batch_size`` integers from it.

    Returns
    -------
    x : (B, T) int64 ndarray
    y : (B, T) int64 ndarray
        ``y[:, t] == x[:, t + 1]`` for ``t < T - 1``.

    Examples
    --------
    Targets are the inputs shifted left by one:

    >>> x, y = sample_batch(np.arange(100), 3, 5, np.random.default_rng(1))
    >>> bool((x[:, 1:] == y[:, :-1]).all()), x.shape
    (True, (3, 5))
    """
    arr = _as_stream(tokens)
    b = _positive("batch_size", batch_size)
    t = _positive("seq_len", seq_len)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng is a {type(rng).__name__}; pass a numpy.random.Generator, "
            "e.g. numpy.random.default_rng(seed)"
        )
    if len(arr) < t + 1:
        raise ValueError(
            f"tokens has {len(arr)} entries but seq_len={t} needs at least {t + 1} "
            "(a window and the token after it); use a shorter seq_len or more text"
        )
    starts = rng.integers(0, len(arr) - t, size=b)  # (B,), last start is N - T - 1
    offsets = np.arange(t)  # (T,)
    index = starts[:, None] + offsets[None, :]  # (B, T)
    x = arr[index].astype(np.int64)  # (B, T)
    y = arr[index + 1].astype(np.int64)  # (B, T), eq. (1)
    return x, y


def iter_sequential(
    tokens: Any, batch_size: int, seq_len: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    r"""Non-overlapping windows in order, for evaluation.

    The stream is cut into ``W = (N - 1) // seq_len`` windows (the leftover
    ``(N - 1) % seq_len`` final targets are not used) and yielded ``batch_size``
    windows at a time; the last batch may have fewer rows.

    Parameters
    ----------
    tokens : (N,) int array
    batch_size : int
        B, windows per batch.
    seq_len : int
        T, tokens per window.

    Yields
    ------
    x : (b, T) int64 ndarray
    y : (b, T) int64 ndarray
        With ``b <= B``.

    Examples
    --------
    Eleven tokens make ``(11 - 1) // 3 = 3`` windows; batches of two:

    >>> for x, y in iter_sequential(np.arange(11), batch_size=2, seq_len=3):
    ...     print(x.tolist(), y.tolist())
    [[0, 1, 2], [3, 4, 5]] [[1, 2, 3], [4, 5, 6]]
    [[6, 7, 8]] [[7, 8, 9]]
    """
    arr = _as_stream(tokens)
    b = _positive("batch_size", batch_size)
    t = _positive("seq_len", seq_len)
    n_windows = max(len(arr) - 1, 0) // t
    if n_windows == 0:
        raise ValueError(
            f"tokens has {len(arr)} entries, too few for one window of seq_len={t} "
            f"(needs {t + 1}); use a shorter seq_len"
        )
    x_all = arr[: n_windows * t].reshape(n_windows, t).astype(np.int64)  # (W, T)
    y_all = arr[1 : n_windows * t + 1].reshape(n_windows, t).astype(np.int64)  # (W, T)
    for start in range(0, n_windows, b):
        yield x_all[start : start + b], y_all[start : start + b]  # (b, T), (b, T)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    r"""The generator's state as JSON-ready data (plain dicts, strings and ints).

    Examples
    --------
    >>> import json
    >>> rng = np.random.default_rng(0)
    >>> saved = json.dumps(rng_state(rng))
    >>> first = rng.integers(0, 1000, size=3).tolist()
    >>> again = rng_from_state(json.loads(saved)).integers(0, 1000, size=3).tolist()
    >>> first == again
    True
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng is a {type(rng).__name__}; pass a numpy.random.Generator")
    return _plain(rng.bit_generator.state)


def _plain(value: Any) -> Any:
    """Convert NumPy scalars and arrays inside nested dicts to Python values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: _unplain(v) for k, v in value.items()}
    return value


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    r"""Rebuild a generator saved with :func:`rng_state`.

    Raises
    ------
    ValueError
        If ``state`` does not name a NumPy bit generator or does not fit it.

    Examples
    --------
    >>> rng = rng_from_state(rng_state(np.random.default_rng(7)))
    >>> rng.integers(0, 10, size=5).tolist() == np.random.default_rng(7).integers(
    ...     0, 10, size=5).tolist()
    True
    """
    if not isinstance(state, dict) or "bit_generator" not in state:
        raise ValueError(
            f"state={state!r:.80}; expected the dict rng_state returns, with a 'bit_generator' key"
        )
    name = state["bit_generator"]
    bit_cls = getattr(np.random, str(name), None)
    if not (isinstance(bit_cls, type) and issubclass(bit_cls, np.random.BitGenerator)):
        raise ValueError(
            f"state['bit_generator']={name!r} is not a NumPy bit generator (e.g. 'PCG64', 'Philox')"
        )
    bit = bit_cls()
    try:
        bit.state = _unplain(state)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"state does not fit {name}: {err}") from None
    return np.random.Generator(bit)

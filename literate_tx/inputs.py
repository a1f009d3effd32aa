"""Checking what users pass to a model: token ids, targets, dtypes.

Every backend calls these before computing anything, so a bad input gets the same clear error
whichever backend it reaches.

Examples
--------
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4)
>>> as_tokens([[1, 2, 3]], cfg).shape
(1, 3)
>>> as_tokens([[1, 2, 30]], cfg)
Traceback (most recent call last):
...
ValueError: tokens must be ids in [0, vocab_size=10); got values from 1 to 30
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_tokens", "as_targets", "check_dtype"]


def check_dtype(dtype) -> str:
    """Normalise a dtype to "float32" or "float64", or raise naming what is allowed.

    Examples
    --------
    >>> import numpy as np
    >>> check_dtype(np.float64), check_dtype("float32")
    ('float64', 'float32')
    """
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype={dtype!r} is not supported; allowed: 'float32', 'float64'")
    return name


def as_tokens(tokens, cfg, name: str = "tokens", *, max_len: int | None = None) -> np.ndarray:
    """Return ``tokens`` as a (B, T) int64 array, checking range and length.

    A 1-D sequence is taken as a batch of one.

    Parameters
    ----------
    tokens : array-like of int, shape (B, T) or (T,)
    cfg : ModelConfig
    name : str
        Argument name used in error messages.
    max_len : int, optional
        Longest allowed T (default ``cfg.max_seq_len``).

    Examples
    --------
    >>> import literate_tx as ltx
    >>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4)
    >>> as_tokens([1, 2], cfg)
    array([[1, 2]])
    >>> as_tokens([[0, 1, 2, 3, 4]], cfg)
    Traceback (most recent call last):
    ...
    ValueError: tokens has 5 positions but max_seq_len=4; pass at most 4 tokens per sequence
    """
    arr = np.asarray(tokens)
    if arr.dtype.kind not in "iu" and (arr.dtype.kind == "b" or arr.size):  # signed, unsigned
        raise ValueError(f"{name} must be integer token ids, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (B, T) or (T,), got shape {arr.shape}")
    if arr.shape[1] == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass at least one token")
    limit = cfg.max_seq_len if max_len is None else max_len
    if arr.shape[1] > limit:
        raise ValueError(
            f"{name} has {arr.shape[1]} positions but max_seq_len={limit}; "
            f"pass at most {limit} tokens per sequence"
        )
    if arr.size <= 64:  # a decoding step's few ids: Python's min and max cost less than NumPy's
        ids = arr.ravel().tolist()
        lo, hi = min(ids), max(ids)
    else:
        lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= cfg.vocab_size:
        raise ValueError(
            f"{name} must be ids in [0, vocab_size={cfg.vocab_size}); got values from {lo} to {hi}"
        )
    return arr.astype(np.int64, copy=False)


def as_targets(targets, tokens: np.ndarray, cfg, ignore_index: int) -> np.ndarray:
    """Return ``targets`` as an int64 array shaped like ``tokens`` (ids or ``ignore_index``).

    Examples
    --------
    >>> import numpy as np, literate_tx as ltx
    >>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4)
    >>> as_targets([[3, -100]], np.array([[1, 2]]), cfg, -100)
    array([[   3, -100]])
    """
    arr = np.asarray(targets)
    if arr.ndim == 1 and tokens.shape[0] == 1:
        arr = arr[None, :]
    if arr.shape != tokens.shape:
        raise ValueError(f"targets have shape {arr.shape} but tokens have shape {tokens.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"targets must be integer ids, got dtype {arr.dtype}")
    bad = (arr != ignore_index) & ((arr < 0) | (arr >= cfg.vocab_size))
    if bad.any():
        raise ValueError(
            f"targets must be ids in [0, vocab_size={cfg.vocab_size}) or ignore_index="
            f"{ignore_index}; got {int(arr[bad][0])}"
        )
    return arr.astype(np.int64, copy=False)

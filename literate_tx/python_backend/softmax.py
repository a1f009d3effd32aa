r"""The softmax over the last axis, stable for any finite logits, one row at a time.

Derived in :mod:`literate_tx.numpy_backend.softmax`: the max-shifted forward pass of eq.
:eq:`softmax-forward` (``-inf`` entries, the masked positions, become exactly 0) and the
Jacobian-vector product of eq. :eq:`softmax-backward`.

Examples
--------
Equal scores under a causal mask give rows 1, 1/2 1/2, 1/3 1/3 1/3:

>>> inf = float("inf")
>>> softmax_forward([[0.0, -inf, -inf], [0.0, 0.0, -inf], [0.0, 0.0, 0.0]])
[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.3333333333333333, 0.3333333333333333, 0.3333333333333333]]
"""

from __future__ import annotations

import math
from operator import mul

from .linear import map_rows

__all__ = ["softmax_forward", "softmax_backward", "log_softmax"]


def _softmax_row(z: list) -> list:
    m = max(z)
    e = [math.exp(v - m) for v in z]  # (N,), every exponent <= 0
    total = sum(e)
    return [v / total for v in e]  # (N,)


def softmax_forward(z: list) -> list:
    r"""Softmax over the last axis, eq. :eq:`softmax-forward`.

    Parameters
    ----------
    z : (..., N) nested list
        Logits; ``-inf`` entries are allowed as long as one entry per row is finite.

    Returns
    -------
    p : (..., N) nested list

    Examples
    --------
    >>> softmax_forward([1e4, 0.0])  # no overflow
    [1.0, 0.0]
    """
    return map_rows(_softmax_row, z)  # (..., N)


def softmax_backward(dp: list, p: list) -> list:
    r"""Gradient through the softmax, eq. :eq:`softmax-backward`.

    Parameters
    ----------
    dp : (..., N) nested list
        Upstream gradient.
    p : (..., N) nested list
        The softmax output.

    Returns
    -------
    dz : (..., N) nested list

    Examples
    --------
    Adding the same number to every logit changes nothing, so the gradient sums to zero:

    >>> p = softmax_forward([0.2, -1.0, 3.0])
    >>> abs(sum(softmax_backward([1.0, 2.0, 5.0], p))) < 1e-15
    True
    """
    if not isinstance(p[0], list):
        dot = sum(map(mul, p, dp))
        return [pi * (di - dot) for pi, di in zip(p, dp, strict=True)]  # (N,)
    return [softmax_backward(d, q) for d, q in zip(dp, p, strict=True)]  # (..., N)


def _log_softmax_row(z: list) -> list:
    m = max(z)
    shifted = [v - m for v in z]  # (N,)
    log_total = math.log(sum(math.exp(v) for v in shifted))
    return [v - log_total for v in shifted]  # (N,)


def log_softmax(z: list) -> list:
    r"""Log of the softmax, :math:`z_i - z_{\max} - \log\sum_j e^{z_j - z_{\max}}`, without ``p``.

    Examples
    --------
    >>> [round(math.exp(v), 6) for v in log_softmax([0.0, math.log(3.0)])]
    [0.25, 0.75]
    """
    return map_rows(_log_softmax_row, z)  # (..., N)

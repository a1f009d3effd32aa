r"""LayerNorm and RMSNorm over the last axis (the model width :math:`C`), one row at a time.

Derived in :mod:`literate_tx.numpy_backend.norms`: LayerNorm's forward and backward passes,
eqs. :eq:`ln-forward` and :eq:`ln-backward` (biased variance, as in ``torch.nn.LayerNorm``), and
RMSNorm's, eqs. :eq:`rms-forward` and :eq:`rms-backward`. The cache holds the rows of
:math:`\hat x` and one :math:`r = 1/\mathrm{std}` per row.

Examples
--------
LayerNorm maps any row to zero mean and unit (biased) variance before the gain:

>>> y, _ = layernorm_forward([[1.0, 2.0, 3.0, 4.0]], [1.0] * 4, [0.0] * 4, eps=0.0)
>>> [round(v, 4) for v in y[0]]
[-1.3416, -0.4472, 0.4472, 1.3416]
"""

from __future__ import annotations

import math
from operator import add, mul
from typing import NamedTuple

from .linear import col_sums, rows, unrows

__all__ = [
    "NormCache",
    "layernorm_forward",
    "layernorm_backward",
    "rmsnorm_forward",
    "rmsnorm_backward",
    "norm_forward",
    "norm_backward",
]


class NormCache(NamedTuple):
    """What the norm backward needs: the normalised input, ``1/std`` and the gain."""

    kind: str
    x_hat: list  # (N, C), the rows of (..., C)
    rstd: list  # (N,), one per row
    weight: list  # (C,)
    has_bias: bool


def layernorm_forward(
    x: list, weight: list, bias: list | None, eps: float
) -> tuple[list, NormCache]:
    r"""LayerNorm over the last axis, eq. :eq:`ln-forward`.

    Parameters
    ----------
    x : (..., C) nested list
    weight : (C,) list
        Gain :math:`\gamma`.
    bias : (C,) list or None
        Shift :math:`\beta`.
    eps : float

    Returns
    -------
    y : (..., C) nested list
    cache : NormCache

    Examples
    --------
    Shifting and scaling the input leaves the output unchanged (with ``eps=0``):

    >>> x = [[0.5, -1.0, 2.0]]
    >>> a, _ = layernorm_forward(x, [1.0] * 3, None, eps=0.0)
    >>> b, _ = layernorm_forward([[3.0 * v + 7.0 for v in x[0]]], [1.0] * 3, None, eps=0.0)
    >>> max(abs(u - v) for u, v in zip(a[0], b[0])) < 1e-12
    True
    """
    x_hat, rstd, y = [], [], []
    for row in rows(x):  # (C,) each
        C = len(row)
        mu = sum(row) / C
        xc = [v - mu for v in row]  # (C,)
        var = sum(map(mul, xc, xc)) / C  # biased variance
        r = 1.0 / math.sqrt(var + eps)
        xh = [v * r for v in xc]  # (C,), eq. (ln-forward)
        out = list(map(mul, xh, weight))  # (C,)
        if bias is not None:
            out = list(map(add, out, bias))
        x_hat.append(xh)
        rstd.append(r)
        y.append(out)
    return unrows(y, x), NormCache("layernorm", x_hat, rstd, weight, bias is not None)


def layernorm_backward(dy: list, cache: NormCache) -> tuple[list, list, list | None]:
    r"""Gradients of :func:`layernorm_forward`, eq. :eq:`ln-backward`.

    Returns
    -------
    dx : (..., C) nested list
    dweight : (C,) list
    dbias : (C,) list or None

    Examples
    --------
    A gradient that is constant across the row is exactly what LayerNorm ignores:

    >>> _, cache = layernorm_forward([[1.0, 2.0, 4.0]], [1.0] * 3, [0.0] * 3, 1e-5)
    >>> dx, _, _ = layernorm_backward([[1.0, 1.0, 1.0]], cache)
    >>> max(abs(v) for v in dx[0]) < 1e-12
    True
    """
    _, x_hat, rstd, weight, has_bias = cache
    dy_rows = rows(dy)  # (N, C)
    dx = []
    for d, xh, r in zip(dy_rows, x_hat, rstd, strict=True):
        C = len(xh)
        g = list(map(mul, d, weight))  # (C,), gradient reaching x_hat
        g_mean = sum(g) / C
        gx_mean = sum(map(mul, g, xh)) / C
        dx.append([r * (gi - g_mean - xi * gx_mean)
                   for gi, xi in zip(g, xh, strict=True)])  # (C,), eq. (ln-backward)
    dweight = col_sums([list(map(mul, d, xh))
                        for d, xh in zip(dy_rows, x_hat, strict=True)])  # (C,)
    dbias = col_sums(dy_rows) if has_bias else None  # (C,)
    return unrows(dx, dy), dweight, dbias


def rmsnorm_forward(x: list, weight: list, eps: float) -> tuple[list, NormCache]:
    r"""RMSNorm over the last axis, eq. :eq:`rms-forward`.

    Parameters
    ----------
    x : (..., C) nested list
    weight : (C,) list
    eps : float

    Returns
    -------
    y : (..., C) nested list
    cache : NormCache

    Examples
    --------
    A row of equal entries becomes a row of ones (its RMS is its value):

    >>> y, _ = rmsnorm_forward([[3.0, 3.0, 3.0, 3.0]], [1.0] * 4, eps=0.0)
    >>> y
    [[1.0, 1.0, 1.0, 1.0]]
    """
    x_hat, rstd, y = [], [], []
    for row in rows(x):  # (C,) each
        ms = sum(map(mul, row, row)) / len(row)
        r = 1.0 / math.sqrt(ms + eps)
        xh = [v * r for v in row]  # (C,), eq. (rms-forward)
        out = list(map(mul, xh, weight))  # (C,)
        x_hat.append(xh)
        rstd.append(r)
        y.append(out)
    return unrows(y, x), NormCache("rmsnorm", x_hat, rstd, weight, False)


def rmsnorm_backward(dy: list, cache: NormCache) -> tuple[list, list, None]:
    r"""Gradients of :func:`rmsnorm_forward`, eq. :eq:`rms-backward`.

    Returns
    -------
    dx : (..., C) nested list
    dweight : (C,) list
    dbias : None

    Examples
    --------
    A gradient along the input itself is what a scale-invariant map ignores:

    >>> x = [[1.0, -2.0, 2.0]]
    >>> _, cache = rmsnorm_forward(x, [1.0] * 3, eps=0.0)
    >>> dx, _, _ = rmsnorm_backward(x, cache)
    >>> max(abs(v) for v in dx[0]) < 1e-12
    True
    """
    _, x_hat, rstd, weight, _ = cache
    dy_rows = rows(dy)  # (N, C)
    dx = []
    for d, xh, r in zip(dy_rows, x_hat, rstd, strict=True):
        g = list(map(mul, d, weight))  # (C,)
        gx_mean = sum(map(mul, g, xh)) / len(xh)
        dx.append([r * (gi - xi * gx_mean)
                   for gi, xi in zip(g, xh, strict=True)])  # (C,), eq. (rms-backward)
    dweight = col_sums([list(map(mul, d, xh))
                        for d, xh in zip(dy_rows, x_hat, strict=True)])  # (C,)
    return unrows(dx, dy), dweight, None


def norm_forward(
    kind: str, x: list, weight: list | None, bias: list | None, eps: float
) -> tuple[list, NormCache | None]:
    """Dispatch on ``kind`` in {"layernorm", "rmsnorm", "none"} (identity).

    Examples
    --------
    >>> y, cache = norm_forward("none", [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], None, None, 1e-5)
    >>> y, cache
    ([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], None)
    """
    if kind == "layernorm":
        return layernorm_forward(x, weight, bias, eps)
    if kind == "rmsnorm":
        return rmsnorm_forward(x, weight, eps)
    return x, None


def norm_backward(
    dy: list, cache: NormCache | None
) -> tuple[list, list | None, list | None]:
    """Backward of :func:`norm_forward`; the identity passes ``dy`` through.

    Examples
    --------
    >>> dx, dw, db = norm_backward([1.0, 1.0, 1.0], None)
    >>> dx, dw, db
    ([1.0, 1.0, 1.0], None, None)
    """
    if cache is None:
        return dy, None, None
    if cache.kind == "layernorm":
        return layernorm_backward(dy, cache)
    return rmsnorm_backward(dy, cache)

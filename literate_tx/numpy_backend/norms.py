r"""LayerNorm and RMSNorm over the last axis (the model width :math:`C`).

LayerNorm
---------
For one row :math:`x \in \mathbb{R}^C` with gain :math:`\gamma` and shift :math:`\beta`:

.. math::
   :label: ln-forward

   \begin{aligned}
   \mu &= \frac1C \sum_i x_i, &
   \sigma^2 &= \frac1C \sum_i (x_i - \mu)^2, &
   r &= (\sigma^2 + \epsilon)^{-1/2}, \\
   \hat x &= (x - \mu)\, r, &
   y &= \gamma \odot \hat x + \beta .
   \end{aligned}

The variance is the *biased* one (divide by :math:`C`), as in ``torch.nn.LayerNorm`` and GPT-2.
Backward: :math:`\delta\hat x = \gamma \odot \delta y` is the gradient reaching :math:`\hat x`.
Since :math:`\partial \hat x_j / \partial x_i = r(I_{ij} - \tfrac1C - \tfrac1C \hat x_i \hat x_j)`,
with :math:`I` the identity matrix (:math:`\delta` is kept for gradients),

.. math::
   :label: ln-backward

   \delta x = r \left( \delta\hat x - \overline{\delta\hat x}
   - \hat x \, \overline{\delta\hat x \odot \hat x} \right), \qquad
   \delta\gamma = \sum_{\text{rows}} \delta y \odot \hat x, \qquad
   \delta\beta = \sum_{\text{rows}} \delta y,

where the bar is the mean over the :math:`C` features of a row. The two subtracted terms remove
the component of :math:`\delta\hat x` along a constant shift of the row (the mean), to which
LayerNorm is invariant, and its projection on :math:`\hat x`, the rescaling direction.
LayerNorm is invariant to rescaling only at :math:`\epsilon = 0`: with :math:`\epsilon > 0`,
:math:`\hat x` has variance :math:`\sigma^2 / (\sigma^2 + \epsilon) < 1`, a row whose variance
is not well above :math:`\epsilon` comes out smaller than unit variance, and scaling :math:`x`
by :math:`a` changes :math:`y` (the projection on :math:`\hat x` then removes only part of the
scale component).

RMSNorm
-------
RMSNorm drops the centring and the shift:

.. math::
   :label: rms-forward

   r = \Big(\frac1C \sum_i x_i^2 + \epsilon\Big)^{-1/2}, \qquad
   \hat x = x\, r, \qquad y = \gamma \odot \hat x .

With :math:`\delta\hat x = \gamma \odot \delta y` and
:math:`\partial \hat x_j / \partial x_i = r(I_{ij} - \tfrac1C \hat x_i \hat x_j)`,

.. math::
   :label: rms-backward

   \delta x = r \left( \delta\hat x - \hat x \, \overline{\delta\hat x \odot \hat x} \right), \qquad
   \delta\gamma = \sum_{\text{rows}} \delta y \odot \hat x .

Only the scale direction is projected out: at :math:`\epsilon = 0` RMSNorm is invariant to
rescaling, never to shifts; with :math:`\epsilon > 0` it is invariant to neither, and a row whose
mean square is comparable to :math:`\epsilon` comes out with an RMS below 1.

Examples
--------
LayerNorm maps any row to zero mean and unit (biased) variance before the gain:

>>> import numpy as np
>>> x = np.array([[1.0, 2.0, 3.0, 4.0]])
>>> y, _ = layernorm_forward(x, np.ones(4), np.zeros(4), eps=0.0)
>>> np.round(y, 4)
array([[-1.3416, -0.4472,  0.4472,  1.3416]])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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
    x_hat: np.ndarray  # (..., C)
    rstd: np.ndarray  # (..., 1)
    weight: np.ndarray  # (C,)
    has_bias: bool


def layernorm_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, eps: float
) -> tuple[np.ndarray, NormCache]:
    r"""LayerNorm over the last axis, eq. :eq:`ln-forward`.

    Parameters
    ----------
    x : (..., C) ndarray
    weight : (C,) ndarray
        Gain :math:`\gamma`.
    bias : (C,) ndarray or None
        Shift :math:`\beta`.
    eps : float

    Returns
    -------
    y : (..., C) ndarray
    cache : NormCache

    Examples
    --------
    Shifting and scaling the input leaves the output unchanged (with ``eps=0``):

    >>> import numpy as np
    >>> x = np.array([[0.5, -1.0, 2.0]])
    >>> a, _ = layernorm_forward(x, np.ones(3), None, eps=0.0)
    >>> b, _ = layernorm_forward(3.0 * x + 7.0, np.ones(3), None, eps=0.0)
    >>> bool(np.allclose(a, b))
    True
    """
    mu = x.mean(axis=-1, keepdims=True)  # (..., 1)
    xc = x - mu  # (..., C)
    var = np.mean(xc * xc, axis=-1, keepdims=True)  # (..., 1), biased variance
    rstd = 1.0 / np.sqrt(var + eps)  # (..., 1)
    x_hat = xc * rstd  # (..., C), eq. (ln-forward)
    y = x_hat * weight  # (..., C)
    if bias is not None:
        y += bias
    return y, NormCache("layernorm", x_hat, rstd, weight, bias is not None)


def layernorm_backward(
    dy: np.ndarray, cache: NormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`layernorm_forward`, eq. :eq:`ln-backward`.

    Returns
    -------
    dx : (..., C) ndarray
    dweight : (C,) ndarray
    dbias : (C,) ndarray or None

    Examples
    --------
    A gradient that is constant across the row is exactly what LayerNorm ignores:

    >>> import numpy as np
    >>> x = np.array([[1.0, 2.0, 4.0]])
    >>> _, cache = layernorm_forward(x, np.ones(3), np.zeros(3), 1e-5)
    >>> dx, _, _ = layernorm_backward(np.ones((1, 3)), cache)
    >>> bool(np.abs(dx).max() < 1e-12)
    True
    """
    _, x_hat, rstd, weight, has_bias = cache
    C = x_hat.shape[-1]
    dx_hat = dy * weight  # (..., C), the gradient reaching x_hat
    dx_hat_mean = dx_hat.mean(axis=-1, keepdims=True)  # (..., 1)
    dx_hat_x_mean = np.mean(dx_hat * x_hat, axis=-1, keepdims=True)  # (..., 1)
    dx = rstd * (dx_hat - dx_hat_mean - x_hat * dx_hat_x_mean)  # (..., C), eq. (ln-backward)
    dweight = np.sum((dy * x_hat).reshape(-1, C), axis=0)  # (C,)
    dbias = dy.reshape(-1, C).sum(axis=0) if has_bias else None  # (C,)
    return dx, dweight, dbias


def rmsnorm_forward(
    x: np.ndarray, weight: np.ndarray, eps: float
) -> tuple[np.ndarray, NormCache]:
    r"""RMSNorm over the last axis, eq. :eq:`rms-forward`.

    Parameters
    ----------
    x : (..., C) ndarray
    weight : (C,) ndarray
    eps : float

    Returns
    -------
    y : (..., C) ndarray
    cache : NormCache

    Examples
    --------
    A row of equal entries becomes a row of ones (its RMS is its value):

    >>> import numpy as np
    >>> y, _ = rmsnorm_forward(np.array([[3.0, 3.0, 3.0, 3.0]]), np.ones(4), eps=0.0)
    >>> y
    array([[1., 1., 1., 1.]])
    """
    ms = np.mean(x * x, axis=-1, keepdims=True)  # (..., 1)
    rstd = 1.0 / np.sqrt(ms + eps)  # (..., 1)
    x_hat = x * rstd  # (..., C), eq. (rms-forward)
    y = x_hat * weight  # (..., C)
    return y, NormCache("rmsnorm", x_hat, rstd, weight, False)


def rmsnorm_backward(dy: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, None]:
    r"""Gradients of :func:`rmsnorm_forward`, eq. :eq:`rms-backward`.

    Returns
    -------
    dx : (..., C) ndarray
    dweight : (C,) ndarray
    dbias : None

    Examples
    --------
    A gradient along the input itself is what a scale-invariant map ignores:

    >>> import numpy as np
    >>> x = np.array([[1.0, -2.0, 2.0]])
    >>> _, cache = rmsnorm_forward(x, np.ones(3), eps=0.0)
    >>> dx, _, _ = rmsnorm_backward(x, cache)
    >>> bool(np.abs(dx).max() < 1e-12)
    True
    """
    _, x_hat, rstd, weight, _ = cache
    C = x_hat.shape[-1]
    dx_hat = dy * weight  # (..., C), the gradient reaching x_hat
    dx_hat_x_mean = np.mean(dx_hat * x_hat, axis=-1, keepdims=True)  # (..., 1)
    dx = rstd * (dx_hat - x_hat * dx_hat_x_mean)  # (..., C), eq. (rms-backward)
    dweight = np.sum((dy * x_hat).reshape(-1, C), axis=0)  # (C,)
    return dx, dweight, None


def norm_forward(
    kind: str, x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float
) -> tuple[np.ndarray, NormCache | None]:
    """Dispatch on ``kind`` in {"layernorm", "rmsnorm", "none"} (identity).

    Examples
    --------
    >>> import numpy as np
    >>> y, cache = norm_forward("none", np.ones((2, 3)), None, None, 1e-5)
    >>> y.shape, cache
    ((2, 3), None)
    """
    if kind == "layernorm":
        return layernorm_forward(x, weight, bias, eps)
    if kind == "rmsnorm":
        return rmsnorm_forward(x, weight, eps)
    return x, None


def norm_backward(
    dy: np.ndarray, cache: NormCache | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Backward of :func:`norm_forward`; the identity passes ``dy`` through.

    Examples
    --------
    >>> import numpy as np
    >>> dx, dw, db = norm_backward(np.ones(3), None)
    >>> dx, dw, db
    (array([1., 1., 1.]), None, None)
    """
    if cache is None:
        return dy, None, None
    if cache.kind == "layernorm":
        return layernorm_backward(dy, cache)
    return rmsnorm_backward(dy, cache)

r"""The affine map :math:`y = x W + b`.

Forward
-------
For a batch of row vectors :math:`x \in \mathbb{R}^{\dots \times n}`, a weight
:math:`W \in \mathbb{R}^{n \times m}` and a bias :math:`b \in \mathbb{R}^{m}`,

.. math::
   :label: linear-forward

   y = x W + b .

Backward
--------
Given the upstream gradient :math:`\partial \mathcal{L} / \partial y = \delta y`, the chain rule on
:math:`y_{rj} = \sum_i x_{ri} W_{ij} + b_j` (with :math:`r` running over all leading axes) gives

.. math::
   :label: linear-backward

   \delta x = \delta y\, W^\top, \qquad
   \delta W = \sum_r x_r^\top \delta y_r, \qquad
   \delta b = \sum_r \delta y_r .

The sums over :math:`r` are one matrix product once the leading axes are flattened.

Examples
--------
>>> import numpy as np
>>> x = np.array([[1.0, 2.0]])
>>> w = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
>>> y, cache = linear_forward(x, w, np.array([0.0, 0.0, 10.0]))
>>> y
array([[ 1.,  2., 13.]])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["LinearCache", "linear_forward", "linear_backward"]


class LinearCache(NamedTuple):
    """What :func:`linear_backward` needs: the input and the weight."""

    x: np.ndarray  # (..., n)
    w: np.ndarray  # (n, m)
    has_bias: bool


def linear_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> tuple[np.ndarray, LinearCache]:
    r"""Compute :math:`y = x W + b`, eq. :eq:`linear-forward`.

    Parameters
    ----------
    x : (..., n) ndarray
    w : (n, m) ndarray
    b : (m,) ndarray or None

    Returns
    -------
    y : (..., m) ndarray
    cache : LinearCache

    Examples
    --------
    >>> import numpy as np
    >>> y, _ = linear_forward(np.ones((2, 3, 4)), np.ones((4, 5)))
    >>> y.shape, float(y[0, 0, 0])
    ((2, 3, 5), 4.0)
    """
    # Flatten the leading axes into one matrix product: NumPy hands a 2-D product to BLAS, while
    # broadcasting a 2-D weight over a 3-D input falls back to a loop >100x slower.
    y = x.reshape(-1, w.shape[0]) @ w  # (N, m), eq. (linear-forward)
    y = y.reshape(*x.shape[:-1], w.shape[1])  # (..., m)
    if b is not None:
        y += b
    return y, LinearCache(x, w, b is not None)


def linear_backward(
    dy: np.ndarray, cache: LinearCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`linear_forward`, eq. :eq:`linear-backward`.

    Parameters
    ----------
    dy : (..., m) ndarray
        Upstream gradient.
    cache : LinearCache

    Returns
    -------
    dx : (..., n) ndarray
    dw : (n, m) ndarray
    db : (m,) ndarray or None

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> _, cache = linear_forward(x, np.eye(2), np.zeros(2))
    >>> dx, dw, db = linear_backward(np.ones((2, 2)), cache)
    >>> dw  # column sums of x, repeated: each output sums the rows' inputs
    array([[4., 4.],
           [6., 6.]])
    >>> db
    array([2., 2.])
    """
    x, w, has_bias = cache
    n, m = w.shape
    dy2 = dy.reshape(-1, m)  # (N, m), leading axes flattened as in the forward pass
    dx = (dy2 @ w.T).reshape(*dy.shape[:-1], n)  # (..., n), eq. (linear-backward)
    dw = x.reshape(-1, n).T @ dy2  # (n, m)
    db = dy2.sum(axis=0) if has_bias else None  # (m,)
    return dx, dw, db

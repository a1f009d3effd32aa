r"""The softmax over the last axis, stable for any finite logits.

Forward
-------
.. math::
   :label: softmax-forward

   p_i = \frac{e^{z_i - z_{\max}}}{\sum_j e^{z_j - z_{\max}}}, \qquad z_{\max} = \max_j z_j .

Subtracting the row maximum :math:`z_{\max}` changes nothing mathematically (numerator and
denominator are both multiplied by :math:`e^{-z_{\max}}`) but keeps every exponent
:math:`\le 0`, so nothing overflows even for logits of :math:`10^4`; entries equal to
:math:`-\infty` (masked positions) become exactly 0.

Backward
--------
The Jacobian is :math:`\partial p_i / \partial z_j = p_i(I_{ij} - p_j)` (:math:`I` the identity), so

.. math::
   :label: softmax-backward

   \delta z = p \odot \big(\delta p - \textstyle\sum_j p_j\, \delta p_j\big) .

Examples
--------
Equal scores under a causal mask give rows 1, 1/2 1/2, 1/3 1/3 1/3:

>>> import numpy as np
>>> z = np.where(np.tril(np.ones((3, 3), dtype=bool)), 0.0, -np.inf)
>>> softmax_forward(z)
array([[1.        , 0.        , 0.        ],
       [0.5       , 0.5       , 0.        ],
       [0.33333333, 0.33333333, 0.33333333]])
"""

from __future__ import annotations

import numpy as np

__all__ = ["softmax_forward", "softmax_backward", "log_softmax"]


def softmax_forward(z: np.ndarray) -> np.ndarray:
    r"""Softmax over the last axis, eq. :eq:`softmax-forward`.

    Parameters
    ----------
    z : (..., N) ndarray
        Logits; ``-inf`` entries are allowed as long as one entry per row is finite.

    Returns
    -------
    p : (..., N) ndarray

    Examples
    --------
    >>> import numpy as np
    >>> softmax_forward(np.array([1e4, 0.0]))  # no overflow
    array([1., 0.])
    """
    z_max = z.max(axis=-1, keepdims=True)  # (..., 1)
    e = np.exp(z - z_max)  # (..., N), every exponent <= 0
    return e / e.sum(axis=-1, keepdims=True)  # (..., N), eq. (softmax-forward)


def softmax_backward(dp: np.ndarray, p: np.ndarray) -> np.ndarray:
    r"""Gradient through the softmax, eq. :eq:`softmax-backward`.

    Parameters
    ----------
    dp : (..., N) ndarray
        Upstream gradient.
    p : (..., N) ndarray
        The softmax output.

    Returns
    -------
    dz : (..., N) ndarray

    Examples
    --------
    Adding the same number to every logit changes nothing, so the gradient sums to zero:

    >>> import numpy as np
    >>> p = softmax_forward(np.array([0.2, -1.0, 3.0]))
    >>> abs(float(softmax_backward(np.array([1.0, 2.0, 5.0]), p).sum())) < 1e-15
    True
    """
    return p * (dp - np.sum(p * dp, axis=-1, keepdims=True))  # (..., N), eq. (softmax-backward)


def log_softmax(z: np.ndarray) -> np.ndarray:
    r"""Log of the softmax, :math:`z_i - z_{\max} - \log\sum_j e^{z_j - z_{\max}}`, without ``p``.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(np.exp(log_softmax(np.array([0.0, np.log(3.0)]))), 6)
    array([0.25, 0.75])
    """
    z_max = z.max(axis=-1, keepdims=True)  # (..., 1)
    shifted = z - z_max  # (..., N)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # (..., N)

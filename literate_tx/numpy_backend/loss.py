r"""Cross-entropy of next-token prediction, averaged over the targets that count.

Forward
-------
For logits :math:`z_n \in \mathbb{R}^V` at each of the :math:`N = BT` positions and targets
:math:`y_n`, positions whose target equals ``ignore_index`` are skipped (padding, prompt tokens):

.. math::
   :label: ce-forward

   \mathcal{L} = -\frac{1}{|\mathcal{C}|} \sum_{n \in \mathcal{C}} \log \mathrm{softmax}(z_n)_{y_n},
   \qquad \mathcal{C} = \{n : y_n \ne \text{ignore\_index}\} .

Backward
--------
Since :math:`\partial(-\log \mathrm{softmax}(z)_y)/\partial z = \mathrm{softmax}(z) - e_y`,

.. math::
   :label: ce-backward

   \delta z_n = \frac{\mathrm{softmax}(z_n) - e_{y_n}}{|\mathcal{C}|}
   \ \text{ for } n \in \mathcal{C}, \qquad \delta z_n = 0 \text{ otherwise.}

Each row of the gradient sums to zero: raising every logit equally changes no probability.

Examples
--------
Uniform logits over :math:`V` classes cost :math:`\log V`:

>>> import numpy as np
>>> loss, _ = cross_entropy_forward(np.zeros((1, 2, 4)), np.array([[1, 3]]))
>>> round(loss, 6) == round(float(np.log(4)), 6)
True
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .softmax import log_softmax

__all__ = ["CrossEntropyCache", "cross_entropy_forward", "cross_entropy_backward"]


class CrossEntropyCache(NamedTuple):
    """Log-probabilities, targets and which positions count."""

    logp: np.ndarray  # (B, T, V)
    targets: np.ndarray  # (B, T), ignored positions replaced by 0
    valid: np.ndarray  # (B, T) bool
    n_valid: int


def cross_entropy_forward(
    logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100
) -> tuple[float, CrossEntropyCache]:
    r"""Mean cross-entropy over non-ignored positions, eq. :eq:`ce-forward`.

    Parameters
    ----------
    logits : (B, T, V) ndarray
    targets : (B, T) int ndarray
    ignore_index : int

    Returns
    -------
    loss : float
    cache : CrossEntropyCache

    Raises
    ------
    ValueError
        If every target equals ``ignore_index`` (the mean would be 0/0).

    Examples
    --------
    Ignored positions contribute nothing:

    >>> import numpy as np
    >>> z = np.array([[[0.0, 50.0], [0.0, 0.0]]])  # the first position would cost 50
    >>> loss, _ = cross_entropy_forward(z, np.array([[-100, 0]]))
    >>> round(loss, 4)  # log 2, from the second position alone
    0.6931
    """
    valid = targets != ignore_index  # (B, T)
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError(
            f"every target equals ignore_index={ignore_index}; at least one position must count"
        )
    safe_targets = np.where(valid, targets, 0)  # (B, T)
    logp = log_softmax(logits)  # (B, T, V)
    picked = np.take_along_axis(logp, safe_targets[..., None], axis=-1)[..., 0]  # (B, T)
    loss = -float(np.sum(picked * valid)) / n_valid  # eq. (ce-forward)
    return loss, CrossEntropyCache(logp, safe_targets, valid, n_valid)


def cross_entropy_backward(cache: CrossEntropyCache) -> np.ndarray:
    r"""Gradient of the mean cross-entropy w.r.t. the logits, eq. :eq:`ce-backward`.

    Returns
    -------
    dlogits : (B, T, V) ndarray

    Examples
    --------
    >>> import numpy as np
    >>> _, cache = cross_entropy_forward(np.zeros((1, 1, 2)), np.array([[0]]))
    >>> cross_entropy_backward(cache)
    array([[[-0.5,  0.5]]])
    """
    logp, targets, valid, n_valid = cache
    dlogits = np.exp(logp)  # (B, T, V), softmax
    np.put_along_axis(dlogits, targets[..., None],
                      np.take_along_axis(dlogits, targets[..., None], axis=-1) - 1.0, axis=-1)
    dlogits *= valid[..., None] / n_valid  # eq. (ce-backward)
    return dlogits

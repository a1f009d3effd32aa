r"""Cross-entropy of next-token prediction, averaged over the targets that count, in lists.

Derived in :mod:`literate_tx.numpy_backend.loss`: the mean over non-ignored positions of eq.
:eq:`ce-forward` and the gradient :math:`(\mathrm{softmax}(z) - e_y)/|\mathcal{C}|` of eq.
:eq:`ce-backward` (zero at ignored positions).

Examples
--------
Uniform logits over :math:`V` classes cost :math:`\log V`:

>>> import math
>>> loss, _ = cross_entropy_forward([[[0.0] * 4, [0.0] * 4]], [[1, 3]])
>>> round(loss, 12) == round(math.log(4), 12)
True
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .softmax import log_softmax

__all__ = ["CrossEntropyCache", "cross_entropy_forward", "cross_entropy_backward"]


class CrossEntropyCache(NamedTuple):
    """Log-probabilities, targets and which positions count."""

    logp: list  # (B, T, V)
    targets: list  # (B, T), ignored positions replaced by 0
    valid: list  # (B, T) bool
    n_valid: int


def cross_entropy_forward(
    logits: list, targets: list, ignore_index: int = -100
) -> tuple[float, CrossEntropyCache]:
    r"""Mean cross-entropy over non-ignored positions, eq. :eq:`ce-forward`.

    Parameters
    ----------
    logits : (B, T, V) nested list
    targets : (B, T) nested list of int
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

    >>> z = [[[50.0, 0.0], [0.0, 0.0]]]  # predicting class 1 at the first position would cost 50
    >>> loss, _ = cross_entropy_forward(z, [[-100, 0]])
    >>> round(loss, 4)  # log 2, from the second position alone
    0.6931
    """
    valid = [[y != ignore_index for y in row] for row in targets]  # (B, T)
    n_valid = sum(map(sum, valid))
    if n_valid == 0:
        raise ValueError(
            f"every target equals ignore_index={ignore_index}; at least one position must count"
        )
    safe_targets = [[y if ok else 0 for y, ok in zip(row, ok_row, strict=True)]
                    for row, ok_row in zip(targets, valid, strict=True)]  # (B, T)
    logp = log_softmax(logits)  # (B, T, V)
    picked = [[lp[y] for lp, y in zip(logp_b, t_b, strict=True)]
              for logp_b, t_b in zip(logp, safe_targets, strict=True)]  # (B, T)
    total = sum(v for p_b, ok_b in zip(picked, valid, strict=True)
                for v, ok in zip(p_b, ok_b, strict=True) if ok)
    loss = -total / n_valid  # eq. (ce-forward)
    return loss, CrossEntropyCache(logp, safe_targets, valid, n_valid)


def cross_entropy_backward(cache: CrossEntropyCache) -> list:
    r"""Gradient of the mean cross-entropy w.r.t. the logits, eq. :eq:`ce-backward`.

    Returns
    -------
    dlogits : (B, T, V) nested list

    Examples
    --------
    >>> _, cache = cross_entropy_forward([[[0.0, 0.0]]], [[0]])
    >>> cross_entropy_backward(cache)
    [[[-0.5, 0.5]]]
    """
    logp, targets, valid, n_valid = cache
    dlogits = []  # (B, T, V)
    for logp_b, t_b, ok_b in zip(logp, targets, valid, strict=True):
        rows = []
        for lp, y, ok in zip(logp_b, t_b, ok_b, strict=True):
            p = [math.exp(v) for v in lp]  # (V,), softmax
            p[y] -= 1.0
            w = ok / n_valid
            rows.append([v * w for v in p])  # eq. (ce-backward)
        dlogits.append(rows)
    return dlogits

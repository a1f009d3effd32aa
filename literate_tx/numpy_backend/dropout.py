r"""Inverted dropout with explicit masks.

In training mode each activation is dropped with probability :math:`\rho` (the configuration's
``dropout``, the *drop rate*), kept with probability :math:`1 - \rho` and, if kept, scaled by
:math:`1/(1 - \rho)`, so that its expectation is unchanged and evaluation needs no rescaling:

.. math::
   :label: dropout

   y = x \odot m, \qquad m_i = \frac{\mathbb{1}[\upsilon_i \ge \rho]}{1 - \rho},
   \quad \upsilon_i \sim U[0, 1) .

The mask is a constant of the forward pass, so the backward pass multiplies by the same mask:
:math:`\delta x = \delta y \odot m`.

Masks are drawn up front by :func:`make_masks`, in a fixed order from one seeded
``numpy.random.Generator``, and then *passed* to the forward pass. That makes dropout
reproducible and lets every backend apply the very same mask, which is how the tests prove the
backends equal in training mode. The drawing belongs to no backend: :func:`make_masks` and
:func:`mask_shapes` live in :mod:`literate_tx.masks` and are imported here unchanged.

Examples
--------
>>> import numpy as np
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 8, 1, 2, 16, 8, dropout=0.5)
>>> mask = make_masks(cfg, 1, 2, np.random.default_rng(0))["embed.dropout"]  # (B, T, C)
>>> x = np.ones((1, 2, 8))
>>> bool(np.array_equal(dropout_forward(x, mask), mask))  # kept entries doubled, eq. (dropout)
True
>>> bool(np.array_equal(dropout_backward(x, mask), mask))  # the same mask on the way back
True
"""

from __future__ import annotations

import numpy as np

from ..masks import make_masks, mask_shapes  # noqa: F401 - re-exported for old imports

# make_masks and mask_shapes come from literate_tx.masks (documented there), not defined here.
__all__ = ["dropout_forward", "dropout_backward"]


def dropout_forward(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Apply a mask from :func:`make_masks` (``None`` means no dropout).

    Examples
    --------
    >>> import numpy as np
    >>> dropout_forward(np.ones(3), np.array([0.0, 2.0, 2.0]))
    array([0., 2., 2.])
    """
    return x if mask is None else x * mask


def dropout_backward(dy: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The gradient passes through the same mask.

    Examples
    --------
    >>> import numpy as np
    >>> dropout_backward(np.ones(2), np.array([2.0, 0.0]))
    array([2., 0.])
    """
    return dy if mask is None else dy * mask

r"""Inverted dropout with explicit masks.

In training mode each activation is kept with probability :math:`1 - p` and, if kept, scaled by
:math:`1/(1 - p)`, so that its expectation is unchanged and evaluation needs no rescaling:

.. math::
   :label: dropout

   y = x \odot m, \qquad m_i = \frac{\mathbb{1}[u_i \ge p]}{1 - p}, \quad u_i \sim U[0, 1) .

The mask is a constant of the forward pass, so the backward pass multiplies by the same mask:
:math:`\delta x = \delta y \odot m`.

Masks are drawn up front by :func:`make_masks`, in a fixed order from one seeded
``numpy.random.Generator``, and then *passed* to the forward pass. That makes dropout
reproducible and lets every backend apply the very same mask, which is how the tests prove the
backends equal in training mode.

Examples
--------
>>> import numpy as np
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 8, 1, 2, 16, 8, dropout=0.5)
>>> masks = make_masks(cfg, 2, 3, np.random.default_rng(0))
>>> for name in masks:
...     print(name)
embed.dropout
blocks.0.attn.weights_dropout
blocks.0.attn.resid_dropout
blocks.0.mlp.resid_dropout
>>> masks["blocks.0.attn.weights_dropout"].shape
(2, 2, 3, 3)
>>> sorted(set(masks["embed.dropout"].ravel().tolist()))  # dropped, or kept and doubled
[0.0, 2.0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["dropout_forward", "dropout_backward", "mask_shapes", "make_masks"]


def mask_shapes(cfg, B: int, T: int) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every dropout mask for a (B, T) batch, in drawing order.

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> list(mask_shapes(ModelConfig(10, 8, 1, 2, 16, 8), 1, 4).values())
    [(1, 4, 8), (1, 2, 4, 4), (1, 4, 8), (1, 4, 8)]
    """
    C, H = cfg.d_model, cfg.n_heads
    shapes = {"embed.dropout": (B, T, C)}
    for i in range(cfg.n_layers):
        shapes[f"blocks.{i}.attn.weights_dropout"] = (B, H, T, T)
        shapes[f"blocks.{i}.attn.resid_dropout"] = (B, T, C)
        shapes[f"blocks.{i}.mlp.resid_dropout"] = (B, T, C)
    return shapes


def make_masks(cfg, B: int, T: int, rng: np.random.Generator, dtype=np.float64) -> dict:
    r"""Draw every dropout mask of eq. :eq:`dropout` for one (B, T) batch.

    Parameters
    ----------
    cfg : ModelConfig
        Supplies ``dropout`` (:math:`p`) and the sizes.
    B, T : int
    rng : numpy.random.Generator
    dtype : numpy dtype

    Returns
    -------
    dict of str to ndarray
        Entries are 0 or :math:`1/(1-p)`; empty when ``cfg.dropout == 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from literate_tx import ModelConfig
    >>> make_masks(ModelConfig(10, 8, 1, 2, 16, 8), 2, 3, np.random.default_rng(0))
    {}
    """
    p = cfg.dropout
    if p == 0.0:
        return {}
    scale = 1.0 / (1.0 - p)
    return {
        name: ((rng.random(shape) >= p) * scale).astype(dtype)  # eq. (dropout)
        for name, shape in mask_shapes(cfg, B, T).items()
    }


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

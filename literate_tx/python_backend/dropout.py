r"""Inverted dropout with explicit masks, on nested lists.

Derived in :mod:`literate_tx.numpy_backend.dropout`, eq. :eq:`dropout`: kept entries are scaled
by :math:`1/(1-\rho)` (:math:`\rho` the drop rate), and the backward pass multiplies by the
same mask.

The masks come from the backend-neutral :func:`literate_tx.masks.make_masks`, drawn from the
same seeded generator in the same order as for the other backends and then turned into nested
lists: a pure-Python model and a NumPy model with the same seed drop the same activations.
(Random numbers are the one thing this backend takes from NumPy; no computation does, and it
never imports the NumPy backend.)

Examples
--------
>>> import numpy as np
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 8, 1, 2, 16, 8, dropout=0.5)
>>> masks = make_masks(cfg, 2, 3, np.random.default_rng(0))
>>> sorted(masks)  # doctest: +NORMALIZE_WHITESPACE
['blocks.0.attn.resid_dropout', 'blocks.0.attn.weights_dropout',
 'blocks.0.mlp.resid_dropout', 'embed.dropout']
>>> type(masks["embed.dropout"]).__name__, len(masks["blocks.0.attn.weights_dropout"][0])
('list', 2)
"""

from __future__ import annotations

from operator import mul

from .. import masks as _masks
from ..masks import mask_shapes
from .linear import zip_map

__all__ = ["dropout_forward", "dropout_backward", "mask_shapes", "make_masks"]


def make_masks(cfg, B: int, T: int, rng, dtype="float64") -> dict:
    r"""Draw every dropout mask of eq. :eq:`dropout`, as nested lists.

    Exactly the draws of :func:`literate_tx.masks.make_masks` (same generator, same order),
    converted with ``tolist()``.

    Parameters
    ----------
    cfg : ModelConfig
    B, T : int
    rng : numpy.random.Generator
    dtype : numpy dtype
        The masks are rounded to it before conversion (``1/(1-rate)`` in float32 for a float32
        model), as in the NumPy backend.

    Returns
    -------
    dict of str to nested list
        Entries are 0 or :math:`1/(1-\rho)`; empty when ``cfg.dropout == 0``.

    Examples
    --------
    The same seed gives the NumPy backend's masks, entry for entry:

    >>> import numpy as np
    >>> from literate_tx import ModelConfig
    >>> from literate_tx.masks import make_masks as array_masks
    >>> cfg = ModelConfig(10, 8, 1, 2, 16, 8, dropout=0.5)
    >>> ours = make_masks(cfg, 1, 2, np.random.default_rng(0))
    >>> arrays = array_masks(cfg, 1, 2, np.random.default_rng(0))
    >>> all(ours[name] == arrays[name].tolist() for name in arrays)
    True
    """
    masks = _masks.make_masks(cfg, B, T, rng, dtype)
    return {name: mask.astype(float).tolist() for name, mask in masks.items()}


def dropout_forward(x: list, mask: list | None) -> list:
    """Apply a mask from :func:`make_masks` (``None`` means no dropout).

    Examples
    --------
    >>> dropout_forward([1.0, 1.0, 1.0], [0.0, 2.0, 2.0])
    [0.0, 2.0, 2.0]
    """
    return x if mask is None else zip_map(mul, x, mask)


def dropout_backward(dy: list, mask: list | None) -> list:
    """The gradient passes through the same mask.

    Examples
    --------
    >>> dropout_backward([1.0, 1.0], [2.0, 0.0])
    [2.0, 0.0]
    """
    return dy if mask is None else zip_map(mul, dy, mask)

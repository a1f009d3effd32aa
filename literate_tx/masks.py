r"""Dropout masks, drawn once for every backend: which activations a training step drops.

Inverted dropout (derived in :mod:`literate_tx.numpy_backend.dropout`, eq. :eq:`dropout`)
multiplies an activation by a mask whose entries are 0 (dropped, with probability
:math:`\rho`, the drop rate ``dropout``) or :math:`1/(1-\rho)` (kept and rescaled, so that the
expectation is unchanged). The masks are
drawn here, up front, in a fixed order from one seeded :class:`numpy.random.Generator`, and then
*passed* to the forward pass of whichever backend runs it: the NumPy backend uses them as they
are, the pure-Python backend as nested lists, the PyTorch backend as tensors. The same seed
therefore drops the same activations in every backend, which is how the tests prove the
backends equal in training mode.

This module belongs to no backend: it needs NumPy's random generator and nothing else, so the
pure-Python backend can draw its masks without importing the NumPy backend.

Masks, in drawing order, for a (B, T) batch: ``embed.dropout`` (B, T, C), then per layer
``blocks.{i}.attn.weights_dropout`` (B, H, T, T), ``blocks.{i}.attn.resid_dropout`` (B, T, C)
and ``blocks.{i}.mlp.resid_dropout`` (B, T, C).

Examples
--------
>>> import numpy as np
>>> from literate_tx import ModelConfig
>>> rng = np.random.default_rng(0)
>>> cfg = ModelConfig(vocab_size=10, d_model=8, n_layers=1, n_heads=2, d_ff=16, max_seq_len=8,
...                   dropout=0.5)
>>> masks = make_masks(cfg, 2, 3, rng)  # B = 2, T = 3
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

__all__ = ["mask_shapes", "make_masks"]


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
        Supplies ``dropout`` (the drop rate :math:`\rho`) and the sizes.
    B, T : int
    rng : numpy.random.Generator
    dtype : numpy dtype

    Returns
    -------
    dict of str to ndarray
        Entries are 0 or :math:`1/(1-\rho)`; empty when ``cfg.dropout == 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from literate_tx import ModelConfig
    >>> make_masks(ModelConfig(10, 8, 1, 2, 16, 8), 2, 3, np.random.default_rng(0))
    {}
    """
    rate = cfg.dropout  # rho
    if rate == 0.0:
        return {}
    scale = 1.0 / (1.0 - rate)
    return {
        name: ((rng.random(shape) >= rate) * scale).astype(dtype)  # eq. (dropout)
        for name, shape in mask_shapes(cfg, B, T).items()
    }

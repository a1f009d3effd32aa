r"""Token embedding, plus an absolute position signal where the config asks for one.

Forward
-------
Token ids :math:`\mathrm{tok} \in \{0..V-1\}^{B \times T}` select rows of the table
:math:`E \in \mathbb{R}^{V \times C}`; for ``position="learned"`` row :math:`t` of a trainable
table :math:`P` is added, for ``"sinusoidal"`` row :math:`t` of the fixed table of
:func:`~literate_tx.numpy_backend.positions.sinusoidal_table`. The result is the first hidden
state :math:`\xi` (the residual stream):

.. math::
   :label: embed-forward

   \xi_{bt} = E_{\mathrm{tok}_{bt}} + P_{t} .

Backward
--------
A row lookup is a product with a one-hot matrix, so its gradient scatters the upstream gradient
back into the rows that were read, *adding* when a token occurs more than once:

.. math::
   :label: embed-backward

   \delta E_v = \sum_{b,t:\ \mathrm{tok}_{bt} = v} \delta \xi_{bt}, \qquad
   \delta P_t = \sum_b \delta \xi_{bt} .

Examples
--------
A token that appears twice collects both gradients:

>>> import numpy as np
>>> E = np.zeros((3, 2))
>>> h, cache = embedding_forward(np.array([[2, 0, 2]]), E, None)
>>> dE, _ = embedding_backward(np.ones((1, 3, 2)), cache)
>>> dE
array([[1., 1.],
       [0., 0.],
       [2., 2.]])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["EmbeddingCache", "embedding_forward", "embedding_backward"]


class EmbeddingCache(NamedTuple):
    """The token ids, the table size and whether a learned position table was used."""

    tokens: np.ndarray  # (B, T) int
    vocab_size: int
    learned_positions: tuple[int, ...] | None  # shape of the position table, if learned


def embedding_forward(
    tokens: np.ndarray,
    table: np.ndarray,
    positions: np.ndarray | None,
    offset: int = 0,
) -> tuple[np.ndarray, EmbeddingCache]:
    r"""Look up token rows and add position rows, eq. :eq:`embed-forward`.

    Parameters
    ----------
    tokens : (B, T) int ndarray
    table : (V, C) ndarray
        Token embedding :math:`E`.
    positions : (T_max, C) ndarray or None
        Learned table, or a fixed table to add (sinusoidal), or None.
    offset : int
        Position of the first token (incremental decoding).

    Returns
    -------
    h : (B, T, C) ndarray
    cache : EmbeddingCache

    Examples
    --------
    >>> import numpy as np
    >>> h, _ = embedding_forward(np.array([[1, 0]]), np.eye(2), 10 * np.eye(2))
    >>> h
    array([[[10.,  1.],
            [ 1., 10.]]])
    """
    T = tokens.shape[1]
    h = table[tokens]  # (B, T, C)
    shape = None
    if positions is not None:
        h = h + positions[offset : offset + T]  # (B, T, C), eq. (embed-forward)
        shape = positions.shape
    return h, EmbeddingCache(tokens, table.shape[0], shape)


def embedding_backward(
    dh: np.ndarray, cache: EmbeddingCache
) -> tuple[np.ndarray, np.ndarray | None]:
    r"""Scatter-add the gradient into the rows read, eq. :eq:`embed-backward`.

    Parameters
    ----------
    dh : (B, T, C) ndarray
    cache : EmbeddingCache

    Returns
    -------
    dtable : (V, C) ndarray
    dpositions : (T_max, C) ndarray or None
        Only when the forward pass used a position table (whether learned or not; the caller
        discards it for a fixed table).

    Examples
    --------
    >>> import numpy as np
    >>> _, cache = embedding_forward(np.array([[0, 0]]), np.zeros((2, 1)), np.zeros((3, 1)))
    >>> dE, dP = embedding_backward(np.array([[[1.0], [2.0]]]), cache)
    >>> dE.ravel().tolist(), dP.ravel().tolist()
    ([3.0, 0.0], [1.0, 2.0, 0.0])
    """
    tokens, V, pos_shape = cache
    B, T, C = dh.shape
    dtable = np.zeros((V, C), dtype=dh.dtype)  # (V, C)
    np.add.at(dtable, tokens.reshape(-1), dh.reshape(-1, C))  # eq. (embed-backward)
    dpositions = None
    if pos_shape is not None:
        dpositions = np.zeros(pos_shape, dtype=dh.dtype)  # (T_max, C)
        dpositions[:T] = dh.sum(axis=0)
    return dtable, dpositions

r"""Token embedding, plus an absolute position signal where the config asks for one, in lists.

Derived in :mod:`literate_tx.numpy_backend.embedding`: the row lookup of eq. :eq:`embed-forward`
and the scatter-add of eq. :eq:`embed-backward` (a token that occurs twice collects both
gradients).

Examples
--------
A token that appears twice collects both gradients:

>>> E = [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
>>> h, cache = embedding_forward([[2, 0, 2]], E, None)
>>> dE, _ = embedding_backward([[[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]], cache)
>>> dE
[[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]
"""

from __future__ import annotations

from operator import add
from typing import NamedTuple

from .linear import zeros

__all__ = ["EmbeddingCache", "embedding_forward", "embedding_backward"]


class EmbeddingCache(NamedTuple):
    """The token ids, the table size and whether a learned position table was used."""

    tokens: list  # (B, T) int
    vocab_size: int
    learned_positions: tuple[int, ...] | None  # shape of the position table, if learned


def embedding_forward(
    tokens: list,
    table: list,
    positions: list | None,
    offset: int = 0,
) -> tuple[list, EmbeddingCache]:
    r"""Look up token rows and add position rows, eq. :eq:`embed-forward`.

    Parameters
    ----------
    tokens : (B, T) nested list of int
    table : (V, C) nested list
        Token embedding :math:`E`.
    positions : (T_max, C) nested list or None
        Learned table, or a fixed table to add (sinusoidal), or None.
    offset : int
        Position of the first token (incremental decoding).

    Returns
    -------
    h : (B, T, C) nested list
    cache : EmbeddingCache

    Examples
    --------
    >>> h, _ = embedding_forward([[1, 0]], [[1.0, 0.0], [0.0, 1.0]], [[10.0, 0.0], [0.0, 10.0]])
    >>> h
    [[[10.0, 1.0], [1.0, 10.0]]]
    """
    h = [[list(table[tok]) for tok in seq] for seq in tokens]  # (B, T, C)
    shape = None
    if positions is not None:
        h = [[list(map(add, row, positions[offset + t])) for t, row in enumerate(h_b)]
             for h_b in h]  # (B, T, C), eq. (embed-forward)
        shape = (len(positions), len(positions[0]))
    return h, EmbeddingCache(tokens, len(table), shape)


def embedding_backward(dh: list, cache: EmbeddingCache) -> tuple[list, list | None]:
    r"""Scatter-add the gradient into the rows read, eq. :eq:`embed-backward`.

    Parameters
    ----------
    dh : (B, T, C) nested list
    cache : EmbeddingCache

    Returns
    -------
    dtable : (V, C) nested list
    dpositions : (T_max, C) nested list or None
        Only when the forward pass used a position table (whether learned or not; the caller
        discards it for a fixed table).

    Examples
    --------
    >>> _, cache = embedding_forward([[0, 0]], [[0.0], [0.0]], [[0.0], [0.0], [0.0]])
    >>> dE, dP = embedding_backward([[[1.0], [2.0]]], cache)
    >>> dE, dP
    ([[3.0], [0.0]], [[1.0], [2.0], [0.0]])
    """
    tokens, V, pos_shape = cache
    C = len(dh[0][0])
    dtable = zeros((V, C))  # (V, C)
    for seq, dh_b in zip(tokens, dh, strict=True):
        for tok, row in zip(seq, dh_b, strict=True):
            dtable[tok] = list(map(add, dtable[tok], row))  # eq. (embed-backward)
    dpositions = None
    if pos_shape is not None:
        dpositions = zeros(pos_shape)  # (T_max, C)
        sums = [[sum(col) for col in zip(*rows_t, strict=True)]  # (C,), summed over B
                for rows_t in zip(*dh, strict=True)]  # (T, C)
        dpositions[: len(sums)] = sums
    return dtable, dpositions

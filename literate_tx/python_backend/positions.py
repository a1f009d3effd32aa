r"""Where is a token? Sinusoidal tables, rotary embeddings (RoPE) and ALiBi biases, in lists.

Derived in :mod:`literate_tx.numpy_backend.positions`: the sinusoidal table of eq.
:eq:`sinusoidal`, the rotate-half RoPE of eq. :eq:`rope` (coordinate :math:`i` of a head paired
with :math:`i + D/2`) and its inverse rotation, eq. :eq:`rope-backward`, and the ALiBi bias of
eq. :eq:`alibi`.

Examples
--------
>>> [round(m, 4) for m in alibi_slopes(4)]
[0.25, 0.0625, 0.0156, 0.0039]
"""

from __future__ import annotations

import math
from operator import add, mul, sub

from .linear import map_rows

__all__ = [
    "sinusoidal_table",
    "rope_tables",
    "rotate_half",
    "apply_rope",
    "rope_backward",
    "alibi_slopes",
    "alibi_bias",
]


def sinusoidal_table(T: int, C: int, offset: int = 0) -> list[list[float]]:
    r"""The fixed sinusoidal table of eq. :eq:`sinusoidal` for positions ``offset .. offset+T-1``.

    Parameters
    ----------
    T : int
        Number of positions.
    C : int
        Model width (odd widths drop the last cosine).
    offset : int
        First position (for incremental decoding).

    Returns
    -------
    P : (T, C) nested list

    Examples
    --------
    Position 0 is ``sin 0 = 0`` on even and ``cos 0 = 1`` on odd coordinates:

    >>> sinusoidal_table(2, 4)[0]
    [0.0, 1.0, 0.0, 1.0]
    """
    omega = [10000.0 ** (-i / C) for i in range(0, C, 2)]  # (ceil(C/2),)
    P = []
    for t in range(offset, offset + T):
        row = [0.0] * C  # (C,)
        row[0::2] = [math.sin(t * w) for w in omega]  # eq. (sinusoidal)
        row[1::2] = [math.cos(t * w) for w in omega][: C // 2]
        P.append(row)
    return P


def rope_tables(
    T: int, D: int, theta: float, offset: int = 0, scaling=None
) -> tuple[list[list[float]], list[list[float]]]:
    r"""Cosines and sines of eq. :eq:`rope` for positions ``offset .. offset+T-1``.

    Parameters
    ----------
    T : int
    D : int
        Head width (even).
    theta : float
        Base :math:`\Theta`.
    offset : int
    scaling : RopeScaling, optional
        Llama 3.1's frequency scaling, eq. :eq:`rope-scaling` (``cfg.rope_scaling``).

    Returns
    -------
    cos, sin : (T, D) nested lists
        Each of the ``D/2`` angles appears twice: at ``i`` and at ``i + D/2``.

    Examples
    --------
    >>> cos, sin = rope_tables(3, 4, 10000.0)
    >>> [round(s, 4) for s in sin[1]]  # position 1: angles 1 and 1/100
    [0.8415, 0.01, 0.8415, 0.01]
    """
    inv_freq = [theta ** (-i / D) for i in range(0, D, 2)]  # (D/2,)
    if scaling is not None:  # eq. (rope-scaling)
        inv_freq = scaling.scale(inv_freq)  # (D/2,)
    angles = [[float(t) * f for f in inv_freq] for t in range(offset, offset + T)]  # (T, D/2)
    angles = [row + row for row in angles]  # (T, D), pair i with i + D/2
    return ([[math.cos(a) for a in row] for row in angles],
            [[math.sin(a) for a in row] for row in angles])


def rotate_half(x: list) -> list:
    r"""The map :math:`\mathrm{rh}(x) = (-x_{D/2:}, x_{:D/2})` of eq. :eq:`rope`, row by row.

    Examples
    --------
    >>> rotate_half([1.0, 2.0, 3.0, 4.0])
    [-3.0, -4.0, 1.0, 2.0]
    """
    def rh(row: list) -> list:
        half = len(row) // 2
        return [-v for v in row[half:]] + list(row[:half])  # (D,)

    return map_rows(rh, x)


def _rotate(x: list, cos: list, sin: list, sign: float) -> list:
    """``x * cos + sign * rh(x) * sin`` for (..., T, D) ``x`` and (T, D) tables."""
    if isinstance(x[0][0], list):
        return [_rotate(part, cos, sin, sign) for part in x]
    combine = add if sign > 0 else sub
    return [list(map(combine, map(mul, row, c), map(mul, rotate_half(row), s)))
            for row, c, s in zip(x, cos, sin, strict=True)]  # (T, D)


def apply_rope(x: list, cos: list, sin: list) -> list:
    r"""Rotate queries or keys by their positions, eq. :eq:`rope`.

    Parameters
    ----------
    x : (B, H, T, D) nested list
    cos, sin : (T, D) nested lists
        From :func:`rope_tables`.

    Returns
    -------
    (B, H, T, D) nested list

    Examples
    --------
    A rotation keeps the length of every pair:

    >>> x = [[[[3.0, 0.0, 4.0, 1.0]]]]
    >>> cos, sin = rope_tables(1, 4, 10000.0, offset=5)
    >>> y = apply_rope(x, cos, sin)[0][0][0]
    >>> round(math.hypot(y[0], y[2]), 12)
    5.0
    """
    return _rotate(x, cos, sin, +1.0)  # (B, H, T, D), eq. (rope)


def rope_backward(dy: list, cos: list, sin: list) -> list:
    r"""Gradient through :func:`apply_rope`, eq. :eq:`rope-backward` (the inverse rotation).

    :math:`\delta y \odot \cos - \mathrm{rh}(\delta y \odot \sin)` equals
    :math:`\delta y \odot \cos - \mathrm{rh}(\delta y) \odot \sin` because the table repeats
    its angles at ``i`` and ``i + D/2``, so ``rh`` commutes with the multiplication by ``sin``.

    Examples
    --------
    >>> x = [[[[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]]]
    >>> cos, sin = rope_tables(2, 4, 10000.0)
    >>> back = rope_backward(apply_rope(x, cos, sin), cos, sin)
    >>> max(abs(a - b) for ra, rb in zip(back[0][0], x[0][0]) for a, b in zip(ra, rb)) < 1e-12
    True
    """
    return _rotate(dy, cos, sin, -1.0)  # (B, H, T, D), eq. (rope-backward)


def alibi_slopes(H: int) -> list[float]:
    r"""Per-head ALiBi slopes :math:`\kappa_h` of eq. :eq:`alibi`.

    Examples
    --------
    Three heads take the two slopes of :math:`n = 2` and the first odd slope of :math:`2n = 4`:

    >>> alibi_slopes(3)
    [0.0625, 0.00390625, 0.25]
    """

    def power_of_two_slopes(n: int) -> list[float]:
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    n = 2 ** int(math.floor(math.log2(H)))
    slopes = power_of_two_slopes(n)
    if n < H:
        slopes += power_of_two_slopes(2 * n)[0::2][: H - n]
    return slopes


def alibi_bias(H: int, T_q: int, T_k: int | None = None, offset: int = 0) -> list:
    r"""The additive score bias :math:`-\kappa_h (i - j)` of eq. :eq:`alibi`.

    Parameters
    ----------
    H : int
        Heads.
    T_q : int
        Number of queries, at positions ``offset .. offset + T_q - 1``.
    T_k : int, optional
        Number of keys, at positions ``0 .. T_k - 1`` (default ``offset + T_q``).
    offset : int

    Returns
    -------
    (H, T_q, T_k) nested list
        Future keys (``j > i``) get a positive bias here; the causal mask removes them.

    Examples
    --------
    In units of the head's slope, the bias is minus the distance ``i - j``:

    >>> [[b / alibi_slopes(1)[0] + 0.0 for b in row] for row in alibi_bias(1, 3)[0]]
    [[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]]
    """
    if T_k is None:
        T_k = offset + T_q
    return [[[-m * (i - j) for j in range(T_k)]  # (T_k,)
             for i in range(offset, offset + T_q)]  # (T_q, T_k)
            for m in alibi_slopes(H)]  # (H, T_q, T_k)

r"""The affine map :math:`y = x W + b` on nested lists, and the list algebra the backend shares.

Derived in :mod:`literate_tx.numpy_backend.linear`, eqs. :eq:`linear-forward` and
:eq:`linear-backward`; this module computes the same thing one dot product at a time.

A vector is a ``list[float]``, a matrix a list of rows, and a (B, T, C) activation a list of
matrices. Every matrix product is :func:`matmul_t`, :math:`a b^\top`: entry :math:`(i, j)` is
the dot product of row :math:`i` of ``a`` with row :math:`j` of ``b``, computed as
``sum(map(mul, row, col))`` — ``map`` walks both rows in C and ``sum`` adds the products, so no
Python bytecode runs per element. :math:`x W` is then ``matmul_t(x, transpose(W))``;
:math:`\delta y\, W^\top` needs no transpose at all (the rows of :math:`W` are the columns of
:math:`W^\top`).

**The one speed device.** Gathering the columns of :math:`W` (``zip(*W)``) on every call costs
about a twentieth of a forward pass of a small model, so :func:`linear_forward` also accepts a
:class:`Weight`: the matrix together with its columns.
:class:`~literate_tx.python_backend.model.PythonModel` keeps each matrix's columns from pass to
pass (gathering them again when the matrix changes) and hands its linear layers such pairs; a
plain nested list works everywhere and is transposed on the spot. The dot products themselves,
``sum(map(mul, row, col))``, are the fastest *plain* way CPython 3.11 has to multiply and add two
lists of floats; they take about nine tenths of a forward pass. The speed path
(:mod:`~literate_tx.python_backend.fast`) computes them from distances, :func:`math.dist`, three
times as fast; a weight is used through its ``times`` method, so both kinds plug in here.

Leading axes are handled as NumPy's ``reshape(-1, n)`` would: :func:`rows` lists the rows of a
(..., n) nested list (sharing them, not copying) and :func:`unrows` regroups computed rows into
the same leading shape.

Examples
--------
>>> x = [[1.0, 2.0]]
>>> w = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
>>> y, cache = linear_forward(x, w, [0.0, 0.0, 10.0])
>>> y
[[1.0, 2.0, 13.0]]
"""

from __future__ import annotations

from operator import mul
from typing import NamedTuple

__all__ = ["Weight", "LinearCache", "linear_forward", "linear_backward", "transpose", "matmul_t",
           "rows", "unrows", "map_rows", "zip_map", "col_sums", "zeros"]


# ---------------------------------------------------------------------- list algebra
def transpose(m: list) -> list[tuple[float, ...]]:
    r"""The rows of :math:`m^\top`, i.e. the columns of ``m`` (as tuples).

    Examples
    --------
    >>> transpose([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    [(1.0, 4.0), (2.0, 5.0), (3.0, 6.0)]
    """
    return list(zip(*m, strict=True))


def matmul_t(a: list, b: list, c: list | None = None) -> list[list[float]]:
    r"""The product :math:`a b^\top` of two matrices given by their rows, plus ``c`` on every row.

    Parameters
    ----------
    a : (N, n) nested list
    b : (M, n) nested list
        For :math:`a W` pass ``b = transpose(W)``.
    c : (M,) list, optional
        Added to every row: entry :math:`(i, j)` is a sum that starts from ``c[j]`` (the
        ``start`` of :func:`sum`), so a bias needs no pass of its own.

    Returns
    -------
    (N, M) nested list

    Examples
    --------
    >>> matmul_t([[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    [[3.0, 2.0, 1.0], [7.0, 4.0, 3.0]]
    >>> matmul_t([[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], [0.0, 10.0, 20.0])
    [[3.0, 12.0, 21.0], [7.0, 14.0, 23.0]]
    """
    if c is None:
        return [[sum(map(mul, row, col)) for col in b] for row in a]
    return [[sum(map(mul, row, col), c_j) for col, c_j in zip(b, c, strict=True)] for row in a]


def rows(x: list) -> list:
    r"""The rows of a (..., n) nested list, leading axes flattened (``x.reshape(-1, n)``).

    The rows are shared with ``x``, not copied; a vector is one row.

    Examples
    --------
    >>> rows([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]
    >>> rows([1.0, 2.0])
    [[1.0, 2.0]]
    """
    if not isinstance(x[0], list):
        return [x]
    while isinstance(x[0][0], list):
        x = [row for matrix in x for row in matrix]
    return x


def unrows(flat: list, like: list) -> list:
    r"""Regroup one entry per row of ``like`` (a row, or a number) into ``like``'s leading shape.

    The inverse of :func:`rows`: ``unrows(rows(x), x) == x``.

    Examples
    --------
    >>> like = [[[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]  # (2, 2, 2)
    >>> unrows([1.0, 2.0, 3.0, 4.0], like)  # one number per row: (2, 2)
    [[1.0, 2.0], [3.0, 4.0]]
    """
    if not isinstance(like[0], list):
        return flat[0]
    entries = iter(flat)

    def regroup(x: list) -> list:
        if not isinstance(x[0][0], list):
            return [next(entries) for _ in x]
        return [regroup(part) for part in x]

    return regroup(like)


def map_rows(f, x: list) -> list:
    r"""Apply ``f`` to every row (innermost list) of a nested list, keeping the shape.

    Examples
    --------
    >>> map_rows(sorted, [[[3.0, 1.0, 2.0]], [[0.0, -1.0, 5.0]]])
    [[[1.0, 2.0, 3.0]], [[-1.0, 0.0, 5.0]]]
    """
    if not isinstance(x[0], list):
        return f(x)
    return [map_rows(f, part) for part in x]


def zip_map(f, x: list, y: list) -> list:
    r"""Element-wise ``f(x, y)`` of two nested lists of the same shape (e.g. ``operator.add``).

    Examples
    --------
    >>> from operator import add
    >>> zip_map(add, [[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]])
    [[11.0, 22.0], [33.0, 44.0]]
    """
    if not isinstance(x[0], list):
        return list(map(f, x, y))
    return [zip_map(f, a, b) for a, b in zip(x, y, strict=True)]


def col_sums(m: list) -> list[float]:
    r"""Sum of the rows of a matrix (``m.sum(axis=0)``).

    Examples
    --------
    >>> col_sums([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    [9.0, 12.0]
    """
    return [sum(col) for col in zip(*m, strict=True)]


def zeros(shape: tuple[int, ...]) -> list:
    r"""A nested list of zeros of the given shape (each row a fresh list).

    Examples
    --------
    >>> zeros((2, 3))
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    if len(shape) == 1:
        return [0.0] * shape[0]
    return [zeros(shape[1:]) for _ in range(shape[0])]


# ---------------------------------------------------------------------- the affine map
class Weight(NamedTuple):
    r"""A weight matrix :math:`W` together with its columns, for :func:`linear_forward`.

    Output :math:`j` of :math:`x W` is the dot product of the input row with column :math:`j`
    of :math:`W`; a ``Weight`` brings those columns along, so that the product need not gather
    them (see the module docstring).

    Examples
    --------
    The same product as with the plain matrix, without the transpose:

    >>> x, w = [[1.0, 1.0]], [[1.0, 2.0], [3.0, 4.0]]
    >>> linear_forward(x, Weight(w, transpose(w)))[0], linear_forward(x, w)[0]
    ([[4.0, 6.0]], [[4.0, 6.0]])
    """

    rows: list  # (n, m), W itself
    cols: list  # (m, n), the columns of W, i.e. the rows of W^T

    def times(self, x_rows: list, b: list | None = None) -> list[list[float]]:
        r"""The rows of :math:`x W + b` for a list of input rows: ``matmul_t(x_rows, cols, b)``.

        :func:`linear_forward` calls this method of whatever weight it is given, so that a
        weight that brings a faster product along (the speed path's
        :class:`~literate_tx.python_backend.fast.NormedWeight`) is used the same way.

        Examples
        --------
        >>> Weight([[1.0, 2.0], [3.0, 4.0]], [(1.0, 3.0), (2.0, 4.0)]).times([[1.0, 1.0]])
        [[4.0, 6.0]]
        """
        return matmul_t(x_rows, self.cols, b)


class LinearCache(NamedTuple):
    """What :func:`linear_backward` needs: the input and the weight."""

    x: list  # (..., n)
    w: list  # (n, m)
    has_bias: bool


def linear_forward(x: list, w: list, b: list | None = None) -> tuple[list, LinearCache]:
    r"""Compute :math:`y = x W + b`, eq. :eq:`linear-forward`.

    Parameters
    ----------
    x : (..., n) nested list
    w : (n, m) nested list, or Weight
        :math:`W`, or :math:`W` with its columns (any object with ``rows`` and a ``times``
        method, such as :class:`~literate_tx.python_backend.fast.NormedWeight`).
    b : (m,) list or None

    Returns
    -------
    y : (..., m) nested list
    cache : LinearCache

    Examples
    --------
    >>> y, _ = linear_forward([[[1.0, 1.0, 1.0, 1.0]] * 3] * 2, [[1.0] * 5] * 4)
    >>> len(y), len(y[0]), len(y[0][0]), y[0][0][0]
    (2, 3, 5, 4.0)
    """
    w = w if hasattr(w, "times") else Weight(w, transpose(w))  # W (n, m) with its columns (m, n)
    y = w.times(rows(x), b)  # (N, m), eq. (linear-forward); N = all leading axes, + b
    return unrows(y, x), LinearCache(x, w.rows, b is not None)


def linear_backward(dy: list, cache: LinearCache) -> tuple[list, list, list | None]:
    r"""Gradients of :func:`linear_forward`, eq. :eq:`linear-backward`.

    Parameters
    ----------
    dy : (..., m) nested list
        Upstream gradient.
    cache : LinearCache

    Returns
    -------
    dx : (..., n) nested list
    dw : (n, m) nested list
    db : (m,) list or None

    Examples
    --------
    >>> x = [[1.0, 2.0], [3.0, 4.0]]
    >>> _, cache = linear_forward(x, [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    >>> dx, dw, db = linear_backward([[1.0, 1.0], [1.0, 1.0]], cache)
    >>> dw  # column sums of x, repeated: each output sums the rows' inputs
    [[4.0, 4.0], [6.0, 6.0]]
    >>> db
    [2.0, 2.0]
    """
    x, w, has_bias = cache
    dy_rows = rows(dy)  # (N, m)
    dx = unrows(matmul_t(dy_rows, w), dy)  # (..., n), dy W^T: the rows of W are W^T's columns
    dw = matmul_t(transpose(rows(x)), transpose(dy_rows))  # (n, m)
    db = col_sums(dy_rows) if has_bias else None  # (m,)
    return dx, dw, db

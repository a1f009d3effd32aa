r"""The pure-Python backend's speed path: dot products by :func:`math.dist`.

The pure-Python forward pass is dot products: nine tenths of its time goes to
``sum(map(mul, row, col))`` in :func:`~literate_tx.python_backend.linear.matmul_t`, about 24 ns
per multiply-add on CPython 3.11. This module computes the same linear layers with the one
function of the standard library that multiplies and adds two vectors of floats without running
bytecode per element *and* without building an iterator per element: :func:`math.dist`, the
Euclidean distance :math:`\lVert p - q\rVert`, which walks both tuples in C. Nothing else in the
model changes: :class:`FastPythonModel` is :class:`~literate_tx.python_backend.model.PythonModel`
with its linear layers' weights handed over as :class:`NormedWeight`\ s. It derives nothing new;
the derivations stay with the plain product, and ``tests/test_python_fast.py`` proves the two
equal.

The identity
------------
For an input row :math:`x`, a column :math:`w` of :math:`W` and any :math:`t > 0`,

.. math::
   :label: dist-dot

   \lVert t x - w\rVert^2 = t^2 \lVert x\rVert^2 - 2 t\, x \cdot w + \lVert w\rVert^2
   \quad\Longrightarrow\quad
   x \cdot w = \frac{t^2 \lVert x\rVert^2 + \lVert w\rVert^2 - \lVert t x - w\rVert^2}{2t}.

:math:`\lVert w\rVert^2` is computed once per column and kept with the weight (recomputed only
when the matrix changes); :math:`\lVert x\rVert^2` and :math:`t x` once per input row, shared by
all :math:`m` outputs; each output is then one ``math.dist(tx, w)`` and four flops.

**Why the scale** :math:`t`. The three squared norms are exact to a few rounding errors
:math:`\varepsilon` of their own size, so the computed dot product is off by about
:math:`\varepsilon\,(t^2\lVert x\rVert^2 + \lVert w\rVert^2) / 2t`. That is smallest,
:math:`\varepsilon \lVert x\rVert \lVert w\rVert` — the size of a plain dot product's own
rounding error — when :math:`t \lVert x\rVert = \lVert w\rVert`. One :math:`t` serves the whole
row: :math:`t = s / \lVert x\rVert` with :math:`s` the root-mean-square column norm of the
matrix, so output :math:`j` is off by about
:math:`\varepsilon \lVert x\rVert (s^2 + \lVert w_j\rVert^2) / 2s`: a plain product's error for
the columns of typical norm (the columns of a weight matrix have similar norms), and
:math:`\varepsilon \lVert x\rVert s / 2` for a column much shorter than the others. Measured
on 8 rows of 64 standard normal values against a (64, 64) matrix of standard deviation 0.02
(columns of norm 0.16): largest error 6.8e-16 with the scale, 2.2e-16 for the plain product and
2.2e-14 without the scale (``tests/test_python_fast.py``).

**Where it falls back.** A row with :math:`\lVert x\rVert^2` zero, infinite or NaN, and a matrix
whose columns are all zero (or not finite), use the plain product: the identity needs
:math:`0 < t < \infty`.

**What it costs.** ``math.dist`` converts a list argument to a tuple on every call, so
:math:`t x` is built as a tuple and the columns are kept as tuples. On a 2-core AMD EPYC (Zen 4)
with CPython 3.11.7, a 64-long product takes 7.7 ns per multiply-add against 24-25 ns for
``sum(map(mul, ...))``; a (5, 64) × (64, 192) layer with bias 0.48 against 1.53 ms
(:doc:`/benchmarks` has the whole forward pass). Attention's scores and weighted sums, a small
share of the pass at these sizes, and the backward pass keep the plain product.

Examples
--------
>>> from literate_tx.python_backend.linear import matmul_t, transpose
>>> w = [[1.0, 2.0], [3.0, 4.0]]  # (n=2, m=2)
>>> x = [[1.0, 1.0], [0.5, -2.0]]
>>> fast = NormedWeight.of(w, transpose(w)).times(x, [0.0, 10.0])
>>> plain = matmul_t(x, transpose(w), [0.0, 10.0])
>>> [round(v, 12) for v in fast[0]], plain[0]
([4.0, 16.0], [4.0, 16.0])
>>> max(abs(a - b) for a, b in zip(fast[1], plain[1])) < 1e-14
True
"""

from __future__ import annotations

import math
from itertools import repeat
from operator import mul
from typing import NamedTuple

from .linear import matmul_t
from .model import PythonModel

__all__ = ["dist_matmul_t", "NormedWeight", "FastPythonModel"]


def dist_matmul_t(a: list, cols: list, norms: list, scale: float,
                  c: list | None = None) -> list[list[float]]:
    r"""``matmul_t(a, cols, c)`` by eq. :eq:`dist-dot`: :math:`a b^\top` (+ ``c``) via distances.

    Parameters
    ----------
    a : (N, n) nested list
        The input rows.
    cols : (M, n) sequence of tuples
        The rows of :math:`b` (for :math:`a W`, the columns of :math:`W`).
    norms : (M,) list
        :math:`\lVert b_j\rVert^2` for each row of ``cols``.
    scale : float
        The target norm :math:`s` of the scaled input rows (the RMS of ``cols``' norms);
        zero or not finite: use the plain product.
    c : (M,) list, optional
        Added to every row.

    Returns
    -------
    (N, M) nested list

    Examples
    --------
    >>> cols = [(1.0, 0.0), (1.0, 1.0)]
    >>> y = dist_matmul_t([[3.0, 4.0]], cols, [1.0, 2.0], 1.2)
    >>> [round(v, 12) for v in y[0]]
    [3.0, 7.0]
    >>> dist_matmul_t([[0.0, 0.0]], cols, [1.0, 2.0], 1.2, [5.0, 6.0])  # |x| = 0: plain
    [[5.0, 6.0]]
    """
    if not 0.0 < scale < math.inf:
        return matmul_t(a, cols, c)
    dist, sqrt = math.dist, math.sqrt
    out = []
    for row in a:
        xx = sum(map(mul, row, row))  # |x|^2
        if not 0.0 < xx < math.inf:  # zero, overflowed or NaN: the identity does not apply
            out.append(matmul_t([row], cols, c)[0])
            continue
        t = scale / sqrt(xx)  # |t x| = s, balanced against the columns' norms
        tx = tuple([v * t for v in row])  # (n,), a tuple: math.dist would copy a list
        k, h = t * t * xx, -0.5 / t
        d = map(dist, repeat(tx), cols)  # |t x - w_j| for every column, in C
        if c is None:
            out.append([(d_j * d_j - k - w2) * h for d_j, w2 in zip(d, norms, strict=True)])
        else:
            out.append([(d_j * d_j - k - w2) * h + c_j
                        for d_j, w2, c_j in zip(d, norms, c, strict=True)])
    return out


class NormedWeight(NamedTuple):
    r"""A weight matrix with its columns (as tuples), their squared norms and their RMS norm.

    Used by :func:`~literate_tx.python_backend.linear.linear_forward` like a
    :class:`~literate_tx.python_backend.linear.Weight`: ``rows`` for the backward pass and
    :meth:`times` for the product, here :func:`dist_matmul_t`.

    Examples
    --------
    >>> w = NormedWeight.of([[3.0], [4.0]], [(3.0, 4.0)])
    >>> w.norms, w.scale
    ([25.0], 5.0)
    >>> [round(v, 12) for v in w.times([[1.0, 1.0]])[0]]
    [7.0]
    """

    rows: list  # (n, m), W itself
    cols: list  # (m, n) tuples, the columns of W
    norms: list  # (m,), |w_j|^2
    scale: float  # sqrt(mean |w_j|^2)

    @classmethod
    def of(cls, rows: list, cols: list) -> NormedWeight:
        """Build one from :math:`W` and its columns (tuples are kept, lists converted)."""
        cols = [col if isinstance(col, tuple) else tuple(col) for col in cols]
        norms = [sum(map(mul, col, col)) for col in cols]
        scale = math.sqrt(sum(norms) / len(norms)) if norms else 0.0
        return cls(rows, cols, norms, scale)

    def times(self, x_rows: list, b: list | None = None) -> list[list[float]]:
        r"""The rows of :math:`x W + b` for a list of input rows, by :func:`dist_matmul_t`."""
        return dist_matmul_t(x_rows, self.cols, self.norms, self.scale, b)


class FastPythonModel(PythonModel):
    r""":class:`~literate_tx.python_backend.model.PythonModel` with :func:`dist_matmul_t` products.

    Same constructor, methods and results (to rounding: see the module docstring); every linear
    layer's weight, the tied head included, is a :class:`NormedWeight` kept from pass to pass
    while its matrix is unchanged. ``create_model(cfg, backend="python", fast=True)`` builds
    one.

    Examples
    --------
    >>> import numpy as np, literate_tx as ltx
    >>> cfg = ltx.ModelConfig(vocab_size=10, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                       max_seq_len=8)
    >>> plain = ltx.create_model(cfg, backend="python", seed=0, dtype="float64")
    >>> fast = ltx.create_model(cfg, backend="python", fast=True, seed=0, dtype="float64")
    >>> a, b = plain.forward([[1, 2, 3]]), fast.forward([[1, 2, 3]])
    >>> bool(np.allclose(a, b, rtol=0, atol=1e-13)), bool(np.array_equal(a, b))
    (True, False)
    """

    def _weight(self, name: str, tied_head: bool = False):
        cols = self._columns(name)  # the same object while the matrix is unchanged
        memo = self._normed_memo = getattr(self, "_normed_memo", {})
        key = (name, tied_head)
        if key not in memo or memo[key][0] is not cols:
            w = self.params[name]
            normed = NormedWeight.of(cols, w) if tied_head else NormedWeight.of(w, cols)
            memo[key] = cols, normed
        return memo[key][1]

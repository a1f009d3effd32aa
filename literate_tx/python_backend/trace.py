r"""Trace mode: watch every step of the forward and backward pass, with shapes and statistics.

The pure-Python backend is the one to read line by line, so it is also the one that can tell you,
step by step, what each line produced. With ``trace`` switched on, each step of the forward pass
(embedding, queries, attention scores, weights, residual sums, logits, loss) and of the backward
pass (the gradient reaching each of those, and finally every parameter's gradient) produces one
:class:`TraceRecord`: where it happened, what it is, its shape with axis symbols
(B, T, C, H, D, F, V as in the project's symbol table) and the mean, standard deviation, minimum
and maximum of its entries, and the entries themselves (``values``, row-major)::

    forward  [block 0] attention scores (B=1, H=4, T=5, T=5) mean=+0.0123 std=0.0456 ...

Where the records go is up to you:

* ``trace=True`` logs each record as one line at level ``INFO`` on the logger
  ``literate_tx.trace`` (call ``logging.basicConfig(level=logging.INFO)`` to see them in a
  terminal);
* ``trace=Trace()`` collects them in ``.records`` (a list of named tuples, ready for
  ``pandas.DataFrame``); ``print(trace)`` shows them as a table;
* ``trace=callable`` calls it with each :class:`TraceRecord`.

Trace mode costs nothing when it is off: the model then passes ``tracer=None`` down, every step
tests ``if tracer:`` and no statistic is computed. Statistics are taken over the *finite* entries
only: masked attention scores are :math:`-\infty` by construction, and the record counts them in
``n_nonfinite`` instead.

Examples
--------
>>> trace = Trace()
>>> tracer = make_tracer(trace).at("block 0")
>>> tracer("attention weights", [[[[1.0, 0.0], [0.5, 0.5]]]], "B H T T")
>>> trace.records[0].shape, trace.records[0].mean
((1, 1, 2, 2), 0.5)
>>> print(trace.records[0])
forward  [block 0] attention weights (B=1, H=1, T=2, T=2) mean=+0.5 std=0.3536 min=+0 max=+1
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["TraceRecord", "Trace", "Tracer", "make_tracer", "shape", "summary", "logger"]

logger = logging.getLogger("literate_tx.trace")


def shape(x) -> tuple[int, ...]:
    r"""The shape of a rectangular nested list (``()`` for a number).

    Examples
    --------
    >>> shape([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), shape(2.5)
    ((2, 3), ())
    """
    dims = []
    while isinstance(x, (list, tuple)):
        dims.append(len(x))
        x = x[0]
    return tuple(dims)


def _flatten(x) -> list[float]:
    """Every number of a nested list, in row-major order."""
    if not isinstance(x, (list, tuple)):
        return [x]
    while x and isinstance(x[0], (list, tuple)):
        x = [v for part in x for v in part]
    return list(x)


def summary(x) -> tuple[float, float, float, float, int]:
    r"""Mean, (population) standard deviation, min and max of the finite entries of ``x``.

    Returns
    -------
    mean, std, min, max : float
        NaN when no entry is finite.
    n_nonfinite : int
        Entries left out (e.g. masked attention scores, :math:`-\infty`).

    Examples
    --------
    >>> summary([[1.0, 3.0], [float("-inf"), 2.0]])
    (2.0, 0.816496580927726, 1.0, 3.0, 1)
    """
    values = _flatten(x)
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, math.nan, math.nan, len(values)
    mean = math.fsum(finite) / len(finite)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / len(finite))
    return mean, std, min(finite), max(finite), len(values) - len(finite)


class TraceRecord(NamedTuple):
    r"""One step of a pass: what was produced, where, its shape and its statistics.

    Examples
    --------
    >>> r = TraceRecord("backward", "lm_head", "dlogits", (1, 2), ("T", "V"), 0.0, 0.5,
    ...                 -0.5, 0.5, 0)
    >>> print(r)
    backward [lm_head] dlogits (T=1, V=2) mean=+0 std=0.5 min=-0.5 max=+0.5
    """

    phase: str  # "forward" or "backward"
    where: str  # "embed", "block 0", "final_norm", "lm_head", "loss", "grads"
    step: str  # what was produced, e.g. "attention scores"
    shape: tuple[int, ...]
    axes: tuple[str, ...]  # one symbol per axis (B, T, C, H, D, F, V), or () if unknown
    mean: float
    std: float
    min: float
    max: float
    n_nonfinite: int  # entries left out of the statistics
    values: tuple[float, ...] = ()  # every entry, row-major (reshape with ``shape``)

    def shape_text(self) -> str:
        """The shape with axis symbols, e.g. ``(B=1, H=4, T=5, T=5)``.

        Examples
        --------
        >>> TraceRecord("forward", "", "x", (2, 3), (), 0, 0, 0, 0, 0).shape_text()
        '(2, 3)'
        """
        if self.axes:
            pairs = zip(self.axes, self.shape, strict=True)
            return "(" + ", ".join(f"{a}={n}" for a, n in pairs) + ")"
        return str(self.shape)

    def __str__(self) -> str:
        masked = f" ({self.n_nonfinite} non-finite left out)" if self.n_nonfinite else ""
        return (f"{self.phase:<8} [{self.where}] {self.step} {self.shape_text()} "
                f"mean={self.mean:+.4g} std={self.std:.4g} min={self.min:+.4g} "
                f"max={self.max:+.4g}{masked}")


class Tracer:
    r"""Turns ``(step, value, axes)`` into a :class:`TraceRecord` and hands it to a sink.

    A tracer remembers the phase (forward or backward) and the place (``"block 0"``); the
    model derives one per place with :meth:`at` and :meth:`phase`. Build one with
    :func:`make_tracer`, which returns ``None`` when tracing is off.

    Examples
    --------
    >>> seen = []
    >>> Tracer(seen.append).at("embed")("h", [[0.0, 2.0]], "T C")
    >>> seen[0].where, seen[0].axes, seen[0].max, seen[0].values
    ('embed', ('T', 'C'), 2.0, (0.0, 2.0))
    """

    def __init__(self, sink: Callable[[TraceRecord], object], phase: str = "forward",
                 where: str = ""):
        self.sink, self.phase_name, self.where = sink, phase, where

    def at(self, where: str) -> Tracer:
        """The same tracer, reporting from ``where``.

        Examples
        --------
        >>> Tracer(print).at("block 1").where
        'block 1'
        """
        return Tracer(self.sink, self.phase_name, where)

    def phase(self, phase: str) -> Tracer:
        """The same tracer, reporting the pass ``phase`` ("forward" or "backward").

        Examples
        --------
        >>> Tracer(print).phase("backward").phase_name
        'backward'
        """
        return Tracer(self.sink, phase, self.where)

    def __call__(self, step: str, x, axes: str = "") -> None:
        dims = shape(x)
        names = tuple(axes.split())
        record = TraceRecord(self.phase_name, self.where, step, dims,
                             names if len(names) == len(dims) else (), *summary(x),
                             tuple(_flatten(x)))
        self.sink(record)


class Trace:
    r"""A collector for trace records: pass an instance as ``trace=`` to a model.

    Attributes
    ----------
    records : list of TraceRecord
        In the order the steps ran.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> trace = Trace()
    >>> model = ltx.create_model(ltx.ModelConfig(10, 4, 1, 2, 8, 8), backend="python",
    ...                          trace=trace)
    >>> _ = model.forward([[1, 2, 3]])
    >>> trace.records[0].step, trace.records[0].shape
    ('token + position embedding', (1, 3, 4))
    >>> print(trace)  # doctest: +ELLIPSIS
    phase    where    step                        shape               mean  ...
    forward  embed    token + position embedding  (B=1, T=3, C=4)  ...
    """

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []

    def __call__(self, record: TraceRecord) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def clear(self) -> None:
        """Forget the records collected so far.

        Examples
        --------
        >>> t = Trace(); t(TraceRecord("forward", "", "x", (), (), 0, 0, 0, 0, 0)); t.clear()
        >>> len(t)
        0
        """
        self.records.clear()

    def rows(self) -> list[list[str]]:
        """The records as rows of text: phase, where, step, shape, mean, std, min, max.

        Examples
        --------
        >>> t = Trace(); t(TraceRecord("forward", "loss", "loss", (), (), 2.5, 0, 2.5, 2.5, 0))
        >>> t.rows()
        [['forward', 'loss', 'loss', '()', '+2.5', '0', '+2.5', '+2.5']]
        """
        return [[r.phase, r.where, r.step, r.shape_text(), f"{r.mean:+.4g}", f"{r.std:.4g}",
                 f"{r.min:+.4g}", f"{r.max:+.4g}"] for r in self.records]

    def table(self) -> str:
        """The records as an aligned text table (what ``print(trace)`` shows).

        Examples
        --------
        >>> t = Trace(); t(TraceRecord("forward", "loss", "loss", (), (), 2.5, 0, 2.5, 2.5, 0))
        >>> print(t.table())
        phase    where  step  shape  mean  std  min   max
        forward  loss   loss  ()     +2.5  0    +2.5  +2.5
        """
        header = ["phase", "where", "step", "shape", "mean", "std", "min", "max"]
        rows = [header, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                 for row in rows)
        return "\n".join(line.rstrip() for line in lines)

    __str__ = table

    def __repr__(self) -> str:
        return f"Trace({len(self.records)} records)"

    def _repr_html_(self) -> str:
        header = ["phase", "where", "step", "shape", "mean", "std", "min", "max"]
        head = "".join(f"<th>{h}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                       for row in self.rows())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _log(record: TraceRecord) -> None:
    logger.info("%s", record)


def make_tracer(trace) -> Tracer | None:
    r"""The tracer for a model's ``trace`` setting, or ``None`` when tracing is off.

    Parameters
    ----------
    trace : bool or callable
        ``False`` (off), ``True`` (log to ``literate_tx.trace`` at INFO; off, with a warning,
        when that logger would drop INFO records) or a callable receiving each
        :class:`TraceRecord`.

    Examples
    --------
    >>> make_tracer(False) is None
    True
    >>> make_tracer("yes")
    Traceback (most recent call last):
    ...
    ValueError: trace='yes' is not supported; allowed: False, True, or a callable ...
    """
    if trace is False or trace is None:
        return None
    if trace is True:
        if logger.isEnabledFor(logging.INFO):
            return Tracer(_log)
        warnings.warn(
            "trace=True logs each step to the logger 'literate_tx.trace' at INFO level, which is "
            "not enabled, so nothing is traced; call logging.basicConfig(level=logging.INFO) "
            "or pass trace=Trace() to collect the records",
            stacklevel=3,
        )
        return None
    if callable(trace):
        return Tracer(trace)
    raise ValueError(
        f"trace={trace!r} is not supported; allowed: False, True, or a callable taking a "
        f"TraceRecord"
    )

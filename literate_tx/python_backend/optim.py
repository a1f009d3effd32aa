r"""Optimisers for pure-Python parameters: SGD, Adam, AdamW and gradient clipping.

The element-by-element mirror of :mod:`literate_tx.numpy_backend.optim`; the equations
are derived there and cited here by the same numbers. Same class names, same
statements in the same order, same comments, so that a diff of the two files
shows only the difference between a NumPy array and a loop. ``math`` only.

A parameter is a nested Python list: a vector is ``list[float]``, a matrix is
``list[list[float]]`` (rows), and so on. Updates are written into those lists
**in place**, so every list object the caller holds sees the new values.
Gradients may be nested lists or anything with a ``tolist()`` method (such as
the NumPy arrays of the public model API). Every update loops over the
innermost lists (the "rows") of the parameter and its gradient and state in
step, and over the elements of each row.

``state_dict()`` holds nested lists and Python numbers, which ``np.savez``
stores as arrays; ``load_state_dict`` accepts those arrays back (through
``tolist()``), so a state saved by either backend resumes in the other. That
bookkeeping, the validation of the hyperparameters and the decay filter are
shared with the NumPy backend: :mod:`literate_tx.optim_rules`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from .. import optim_rules
from ..optim_rules import (  # default_decay_filter: importable from here, as before
    AdamRules,
    AdamWRules,
    SGDRules,
    default_decay_filter,  # noqa: F401
)

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm"]


def _as_lists(x: object) -> object:
    r"""Nested lists from nested lists or from anything with ``tolist()`` (e.g. an ndarray).

    Examples
    --------
    >>> _as_lists([[1.0, 2.0]])
    [[1.0, 2.0]]
    """
    return x.tolist() if hasattr(x, "tolist") else x


def _shape(x: object, name: str) -> tuple[int, ...]:
    r"""Shape of a rectangular nested list of numbers; raise if it is ragged or not numbers.

    Examples
    --------
    >>> _shape([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "w")
    (2, 3)
    """
    if not isinstance(x, list):
        raise TypeError(f"{name} must be a nested list of floats, got {type(x).__name__}")
    if x and isinstance(x[0], list):
        shapes = {_shape(row, name) for row in x}
        if len(shapes) != 1:
            raise ValueError(
                f"{name} is ragged: its rows have shapes {sorted(shapes)}; all must match"
            )
        return (len(x), *shapes.pop())
    for v in x:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{name} must hold floats, found {v!r}")
    return (len(x),)


def _zeros_like(x: list) -> list:
    r"""A nested list of 0.0 with the shape of ``x``.

    Examples
    --------
    >>> _zeros_like([[1.0, 2.0], [3.0, 4.0]])
    [[0.0, 0.0], [0.0, 0.0]]
    """
    return [_zeros_like(r) for r in x] if x and isinstance(x[0], list) else [0.0] * len(x)


def _copy(x: list) -> list:
    r"""A deep copy of a nested list of floats.

    Examples
    --------
    >>> a = [[1.0], [2.0]]; c = _copy(a); c[0][0] = 9.0; a
    [[1.0], [2.0]]
    """
    return [_copy(r) for r in x] if x and isinstance(x[0], list) else list(x)


def _rows(*trees: list | None) -> Iterator[tuple]:
    r"""Walk nested lists of one shape together, yielding their innermost lists side by side.

    A ``None`` tree (a buffer that does not exist) yields ``None`` rows.

    Examples
    --------
    >>> list(_rows([[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]], None))
    [([1.0, 2.0], [5.0, 6.0], None), ([3.0, 4.0], [7.0, 8.0], None)]
    """
    first = trees[0]
    if first and isinstance(first[0], list):
        for children in zip(
            *(t if t is not None else [None] * len(first) for t in trees), strict=True
        ):
            yield from _rows(*children)
    else:
        yield trees


def clip_grad_norm(grads: Mapping[str, list], max_norm: float) -> float:
    r"""Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    Matches ``torch.nn.utils.clip_grad_norm_`` (``norm_type=2``), eqs. (1)-(2)
    of :mod:`literate_tx.numpy_backend.optim`.

    Parameters
    ----------
    grads : dict of str to nested list
        Gradients, any shapes; modified in place.
    max_norm : float
        Largest allowed global norm; must be positive.

    Returns
    -------
    float
        The global norm *before* clipping.

    Examples
    --------
    >>> grads = {"w": [3.0, 0.0], "b": [4.0]}
    >>> clip_grad_norm(grads, max_norm=1.0)
    5.0
    >>> [round(x, 6) for x in grads["w"] + grads["b"]]
    [0.6, 0.0, 0.8]
    >>> clip_grad_norm(grads, max_norm=10.0)  # already short enough: untouched
    0.99999...
    """
    if not (isinstance(max_norm, (int, float)) and max_norm > 0):
        raise ValueError(
            f"max_norm={max_norm!r} is not allowed; max_norm must be a positive number"
        )
    # per-tensor norms, then the norm of those norms, as torch does, eq. (1)
    norms = [math.sqrt(sum(x * x for (row,) in _rows(g) for x in row)) for g in grads.values()]
    total_norm = math.sqrt(sum(n * n for n in norms))
    clip_coef = max_norm / (total_norm + 1e-6)  # eq. (2)
    if clip_coef < 1.0 or math.isnan(clip_coef):
        # one common factor keeps the direction of the full gradient, eq. (2)
        for g in grads.values():
            for (row,) in _rows(g):
                for i in range(len(row)):
                    row[i] *= clip_coef
    return total_norm


class Optimizer(optim_rules.Optimizer):
    r"""Base class of :class:`SGD`, :class:`Adam` and :class:`AdamW`: nested lists as storage.

    The bookkeeping (decay mask, step count, gradient checks, state dictionaries) is
    :class:`literate_tx.optim_rules.Optimizer`'s; this class says what a parameter is here — a
    rectangular nested list of floats, updated in place — and how buffers are made, copied and
    restored. It is not used directly.

    Examples
    --------
    >>> opt = SGD({"w": [0.0, 0.0]}, lr=0.1, momentum=0.9)
    >>> isinstance(opt, Optimizer), list(opt.state), opt.step_count
    (True, ['b'], 0)
    >>> SGD({"w": [[0.0, 1.0], [2.0]]})
    Traceback (most recent call last):
    ...
    ValueError: params['w'] is ragged: its rows have shapes [(1,), (2,)]; all must match
    """

    _kind = "nested lists"

    def _check_param(self, name: str, p: object) -> None:
        pass  # _shape_of checks the nesting and the numbers

    def _shape_of(self, x: object, label: str) -> tuple[list, tuple[int, ...]]:
        lists = _as_lists(x)
        return lists, _shape(lists, label)

    def _zeros_like(self, p: list) -> list:
        return _zeros_like(p)

    def _copy(self, a: list) -> list:
        return _copy(a)

    def _assign(self, a: list, saved: list) -> None:
        for row, saved_row in _rows(a, saved):
            row[:] = [float(x) for x in saved_row]


class SGD(SGDRules, Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    params : dict of str to nested list
        Parameters, any shapes; updated in place by :meth:`step`.
    lr : float, default 1e-3
        Learning rate :math:`\eta` (overridable per step).
    momentum : float, default 0
        Momentum :math:`\mu`, eq. (4); 0 disables the buffer.
    dampening : float, default 0
        Dampening :math:`\tau`, eq. (4).
    weight_decay : float, default 0
        Coupled :math:`L_2` coefficient :math:`\lambda`, eq. (3).
    nesterov : bool, default False
        Nesterov momentum, eq. (5); needs ``momentum > 0`` and ``dampening == 0``.
    decay_filter : callable(name, ndim) -> bool, optional
        Which parameters get weight decay; ``None`` (default) means all.

    Examples
    --------
    >>> w = [1.0, 2.0]
    >>> opt = SGD({"w": w}, lr=0.1)
    >>> opt.step({"w": [0.5, -1.0]})
    >>> w  # the caller's list moved: theta - lr * g, eq. (6)
    [0.95, 2.1]
    """

    def step(self, grads: Mapping[str, object], lr: float | None = None) -> None:
        r"""Apply one SGD update to every parameter, in place; ``grads`` is not modified.

        Parameters
        ----------
        grads : dict of str to nested list (or ndarray)
            One gradient per parameter, same names and shapes.
        lr : float, optional
            Learning rate for this step only (e.g. from a schedule); default ``self.lr``.

        Examples
        --------
        >>> w = [0.0]
        >>> opt = SGD({"w": w}, lr=1.0, momentum=0.5)
        >>> for _ in range(3):
        ...     opt.step({"w": [1.0]})
        >>> w  # buffers 1, 1.5, 1.75, eq. (4)
        [-4.25]
        """
        eta, grads = self._begin_step(grads, lr)
        t = self.step_count
        for name, p in self.params.items():
            # the rows of p, its gradient and its state, walked together, element by element
            b_tree = self.state["b"][name] if self.momentum != 0 else None
            for p_row, g_row, b_row in _rows(p, grads[name], b_tree):
                for i in range(len(p_row)):
                    g = g_row[i]
                    if self.weight_decay != 0 and self.decay[name]:
                        g = g + self.weight_decay * p_row[i]  # coupled L2 decay, eq. (3)
                    if self.momentum != 0:
                        if t == 1:
                            b_row[i] = g  # the buffer starts at the first gradient, eq. (4)
                        else:  # a running average of past gradients, eq. (4)
                            b_row[i] = self.momentum * b_row[i] + (1 - self.dampening) * g
                        # look one momentum step ahead, or follow the buffer, eq. (5)
                        g = g + self.momentum * b_row[i] if self.nesterov else b_row[i]
                    p_row[i] -= eta * g  # eq. (6)


class Adam(AdamRules, Optimizer):
    r"""Adam with bias correction and coupled :math:`L_2` decay, as ``torch.optim.Adam``.

    Parameters
    ----------
    params : dict of str to nested list
        Parameters, any shapes; updated in place by :meth:`step`.
    lr : float, default 1e-3
        Learning rate :math:`\eta` (overridable per step).
    betas : (float, float), default (0.9, 0.999)
        Averaging coefficients :math:`\beta_1, \beta_2 \in [0, 1)`, eqs. (7)-(8).
    eps : float, default 1e-8
        :math:`\epsilon`, added after the square root, eq. (10).
    weight_decay : float, default 0
        Coupled :math:`L_2` coefficient :math:`\lambda`, eq. (3).
    decay_filter : callable(name, ndim) -> bool, optional
        Which parameters get weight decay; ``None`` (default) means all.

    Examples
    --------
    The first step moves every coordinate by about ``lr`` against the sign of
    its gradient, whatever the gradient's size (eqs. (9)-(10) with
    :math:`\hat m_1 = g_1`, :math:`\hat v_1 = g_1^2`):

    >>> w = [0.0, 0.0, 0.0]
    >>> opt = Adam({"w": w}, lr=0.1, eps=0.0)
    >>> opt.step({"w": [1e-3, -5.0, 200.0]})
    >>> [round(x, 12) for x in w]
    [-0.1, 0.1, -0.1]
    """

    def step(self, grads: Mapping[str, object], lr: float | None = None) -> None:
        r"""Apply one Adam (or AdamW) update to every parameter in place; ``grads`` is unchanged.

        Parameters
        ----------
        grads : dict of str to nested list (or ndarray)
            One gradient per parameter, same names and shapes.
        lr : float, optional
            Learning rate for this step only (e.g. from a schedule); default ``self.lr``.

        Examples
        --------
        A constant gradient gives :math:`\hat m_t = g` and :math:`\hat v_t = g^2`
        at every step, so the bias correction keeps steps of exactly ``lr``:

        >>> w = [0.0]
        >>> opt = Adam({"w": w}, lr=0.5, eps=0.0)
        >>> for _ in range(4):
        ...     opt.step({"w": [3.0]})
        >>> round(w[0], 12)
        -2.0
        """
        eta, grads = self._begin_step(grads, lr)
        t = self.step_count
        # the bias corrections of eq. (9), folded into eq. (11)
        bias_correction1 = 1 - self.beta1**t
        bias_correction2 = 1 - self.beta2**t
        step_size = eta / bias_correction1
        bias_correction2_sqrt = math.sqrt(bias_correction2)
        # the hyperparameters as local names: the loop below runs once per scalar parameter
        beta1, beta2, eps, wd, sqrt = self.beta1, self.beta2, self.eps, self.weight_decay, math.sqrt
        for name, p in self.params.items():
            decay = wd != 0 and self.decay[name]
            # the rows of p, its gradient and its state, walked together, element by element
            for p_row, g_row, m_row, v_row in _rows(
                p, grads[name], self.state["m"][name], self.state["v"][name]
            ):
                for i in range(len(p_row)):
                    g = g_row[i]
                    if decay:
                        if self.decoupled:
                            # decoupled decay (AdamW), eq. (12)
                            p_row[i] *= 1 - eta * wd
                        else:
                            # coupled L2 decay (Adam), eq. (3)
                            g = g + wd * p_row[i]
                    # first and second moments, eqs. (7)-(8)
                    m_row[i] = beta1 * m_row[i] + (1 - beta1) * g
                    v_row[i] = beta2 * v_row[i] + (1 - beta2) * g * g
                    # eps after the sqrt, eq. (11)
                    denom = sqrt(v_row[i]) / bias_correction2_sqrt + eps
                    p_row[i] -= step_size * (m_row[i] / denom)  # eq. (11)


class AdamW(AdamWRules, Adam):
    r"""Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Identical to :class:`Adam` except that weight decay shrinks the weights
    directly, :math:`\theta \leftarrow \theta(1-\eta\lambda)` (eq. (12)), before the
    Adam update, and by default only matrices decay
    (:func:`~literate_tx.optim_rules.default_decay_filter`).

    Parameters
    ----------
    params : dict of str to nested list
        Parameters, any shapes; updated in place by :meth:`step`.
    lr : float, default 1e-3
        Learning rate :math:`\eta` (overridable per step).
    betas : (float, float), default (0.9, 0.999)
        Averaging coefficients, eqs. (7)-(8).
    eps : float, default 1e-8
        :math:`\epsilon`, eq. (10).
    weight_decay : float, default 0.01
        Decoupled coefficient :math:`\lambda`, eq. (12) (torch's default).
    decay_filter : callable(name, ndim) -> bool, default ``default_decay_filter``
        Which parameters get weight decay
        (:func:`~literate_tx.optim_rules.default_decay_filter`); ``None`` means all.

    Examples
    --------
    With zero gradients only the decay acts, and only on the matrix:

    >>> params = {"lm_head.w": [[1.0, 1.0], [1.0, 1.0]], "final_norm.weight": [1.0, 1.0]}
    >>> opt = AdamW(params, lr=0.1, weight_decay=0.5)
    >>> opt.step({"lm_head.w": [[0.0, 0.0], [0.0, 0.0]], "final_norm.weight": [0.0, 0.0]})
    >>> params["lm_head.w"], params["final_norm.weight"]
    ([[0.95, 0.95], [0.95, 0.95]], [1.0, 1.0])
    """

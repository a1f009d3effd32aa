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
from ..optim_rules import AdamRules, AdamWRules, SGDRules, clip_coefficient

#: Which parameters decay: the rule both backends share, importable from here as before.
default_decay_filter = optim_rules.default_decay_filter

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
        Gradients, modified in place; ``max_norm`` (positive) as in the NumPy version.

    Returns
    -------
    float
        Eq. (1) of the gradients as they came in (before they were scaled).

    Examples
    --------
    The gradient (0, 6, 8) has length 10; clipped to length 5 it halves:

    >>> grads = {"w": [0.0, 6.0], "b": [8.0]}
    >>> clip_grad_norm(grads, max_norm=5.0), [round(x, 5) for x in grads["w"] + grads["b"]]
    (10.0, [0.0, 3.0, 4.0])
    """
    # per-tensor norms, then the norm of those norms, as torch does, eq. (1)
    norms = [math.sqrt(sum(x * x for (row,) in _rows(g) for x in row)) for g in grads.values()]
    total_norm = math.sqrt(sum(n * n for n in norms))
    clip_coef = clip_coefficient(max_norm, total_norm)  # eq. (2)
    if clip_coef is not None:
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
    lr, momentum, dampening, weight_decay, nesterov, decay_filter
        As :class:`literate_tx.numpy_backend.optim.SGD`.

    Examples
    --------
    >>> w = [1.0, 2.0]
    >>> opt = SGD({"w": w}, lr=0.1)
    >>> opt.step({"w": [0.5, -1.0]})
    >>> w  # the caller's list moved: w - lr * dw, eq. (6)
    [0.95, 2.1]
    """

    def step(self, grads: Mapping[str, object], lr: float | None = None) -> None:
        r"""Apply one SGD update to every parameter, in place; ``grads`` is not modified.

        Parameters
        ----------
        grads : dict of str to nested list (or ndarray)
            One gradient per parameter, same names and shapes; ``lr`` overrides ``self.lr``
            for this step (e.g. from a schedule).

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
    lr, betas, eps, weight_decay, decay_filter
        As :class:`literate_tx.numpy_backend.optim.Adam`.

    Examples
    --------
    The first step moves every coordinate by about ``lr`` against the sign of
    its gradient, whatever the gradient's size (eqs. (9)-(10) with
    :math:`\hat{\mathcal M}_1 = \delta w_1`, :math:`\hat{\mathcal V}_1 = \delta w_1^2`):

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
            One gradient per parameter, same names and shapes; ``lr`` overrides ``self.lr``
            for this step (e.g. from a schedule).

        Examples
        --------
        With a constant gradient the bias correction keeps steps of exactly ``lr`` (as in
        the NumPy version), whatever the gradient's size:

        >>> w = [1.0]
        >>> opt = Adam({"w": w}, lr=0.25, eps=0.0)
        >>> for _ in range(3):
        ...     opt.step({"w": [-7.0]})
        >>> round(w[0], 12)
        1.75
        """
        eta, grads = self._begin_step(grads, lr)
        step_size, bias_correction2_sqrt = self._bias_corrections(eta)  # eqs. (9), (11)
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
    r"""Adam with decoupled weight decay, as ``torch.optim.AdamW``, on nested lists.

    :class:`literate_tx.numpy_backend.optim.AdamW` element by element: the decay of eq. (12)
    shrinks each weight before the Adam update, and by default only matrices decay.

    Parameters
    ----------
    params : dict of str to nested list
        Parameters, any shapes; updated in place by :meth:`step`.
    lr, betas, eps, weight_decay, decay_filter
        As :class:`literate_tx.numpy_backend.optim.AdamW` (``weight_decay=0.01``, matrices
        only).

    Examples
    --------
    With zero gradients only the decay acts, and only on the matrix:

    >>> params = {"lm_head.w": [[1.0, 1.0], [1.0, 1.0]], "final_norm.weight": [1.0, 1.0]}
    >>> opt = AdamW(params, lr=0.1, weight_decay=0.5)
    >>> opt.step({"lm_head.w": [[0.0, 0.0], [0.0, 0.0]], "final_norm.weight": [0.0, 0.0]})
    >>> params["lm_head.w"], params["final_norm.weight"]
    ([[0.95, 0.95], [0.95, 0.95]], [1.0, 1.0])
    """

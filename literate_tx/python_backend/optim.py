r"""Optimisers for pure-Python parameters: SGD, Adam, AdamW and gradient clipping.

The element-by-element mirror of :mod:`literate_tx.optim`; the equations are
derived there and cited here by the same numbers. Same class names, same
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
``tolist()``), so a state saved by either backend resumes in the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm", "default_decay_filter"]

DecayFilter = Callable[[str, int], bool]


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


def _scalar(x: object) -> object:
    r"""A Python number or string from itself or a 0-d array (``np.load`` returns those).

    Examples
    --------
    >>> _scalar(0.5)
    0.5
    """
    return x.item() if hasattr(x, "item") else x


def default_decay_filter(name: str, ndim: int) -> bool:
    r"""Say whether a parameter gets weight decay: matrices yes, biases and norms no.

    The same rule as :func:`literate_tx.optim.default_decay_filter`.

    Parameters
    ----------
    name : str
        Canonical parameter name, e.g. ``"blocks.0.attn.w_q"``.
    ndim : int
        Nesting depth of the parameter (1 for a vector, 2 for a matrix).

    Returns
    -------
    bool
        True if weight decay should be applied.

    Examples
    --------
    >>> [default_decay_filter(n, d) for n, d in [("blocks.0.attn.w_q", 2),
    ...     ("blocks.0.attn.b_q", 1), ("final_norm.weight", 1), ("embed.tokens", 2)]]
    [True, False, False, True]
    """
    leaf = name.rsplit(".", 1)[-1]
    if ndim < 2 or "norm" in name:
        return False
    return not (leaf == "bias" or leaf.startswith("b_"))


def clip_grad_norm(grads: Mapping[str, list], max_norm: float) -> float:
    r"""Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    Matches ``torch.nn.utils.clip_grad_norm_`` (``norm_type=2``), eqs. (1)-(2)
    of :mod:`literate_tx.optim`.

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


def _check_number(
    name: str, value: object, *, low: float, high: float = math.inf, high_open: bool = False
) -> float:
    r"""Return ``value`` as a float if ``low <= value <= high`` (or ``< high``), else raise.

    Examples
    --------
    >>> _check_number("lr", 0.1, low=0.0)
    0.1
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = low <= value and (value < high if high_open else value <= high)
    if not ok:
        upper = "" if high == math.inf else (f" and < {high}" if high_open else f" and <= {high}")
        raise ValueError(
            f"{name}={value!r} is not allowed; {name} must be a finite number >= {low}{upper}"
        )
    return float(value)


class Optimizer:
    r"""Base class of :class:`SGD`, :class:`Adam` and :class:`AdamW`: the shared bookkeeping.

    It holds the parameters, the weight-decay mask, the step count and the
    per-parameter buffers, validates gradients and learning rates, and
    implements :meth:`state_dict` / :meth:`load_state_dict`. Subclasses list
    their hyperparameters in ``_hyper``, create their buffers in ``state`` and
    implement ``step``; it is not used directly.

    Attributes
    ----------
    params : dict of str to nested list
        The caller's parameters (the same objects), updated in place.
    decay : dict of str to bool
        Whether each parameter gets weight decay (from ``decay_filter``).
    shapes : dict of str to tuple of int
        The shape of each parameter, checked against every gradient.
    step_count : int
        Number of steps taken (:math:`t` of the module docstring after a step).
    state : dict of str to dict of str to nested list
        Buffers by kind (``"b"`` or ``"m"``, ``"v"``), then by parameter name.
    lr : float
        Default learning rate, used when ``step`` gets no ``lr``.

    Examples
    --------
    >>> opt = SGD({"w": [0.0, 0.0]}, lr=0.1, momentum=0.9)
    >>> isinstance(opt, Optimizer), list(opt.state), opt.step_count
    (True, ['b'], 0)
    """

    _hyper: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, list], decay_filter: DecayFilter | None) -> None:
        if not isinstance(params, Mapping):
            raise TypeError(
                f"params must be a dict of str to nested lists, got {type(params).__name__}"
            )
        self.shapes = {name: _shape(p, f"params[{name!r}]") for name, p in params.items()}
        self.params = dict(params)
        # which parameters get weight decay (see "Which parameters decay")
        self.decay = {
            n: True if decay_filter is None else bool(decay_filter(n, len(self.shapes[n])))
            for n in params
        }
        self.step_count = 0
        self.state: dict[str, dict[str, list]] = {}

    def _begin_step(
        self, grads: Mapping[str, object], lr: float | None
    ) -> tuple[float, dict[str, list]]:
        r"""Validate ``grads`` and the step's learning rate, count the step, return both.

        Examples
        --------
        >>> opt = SGD({"w": [0.0, 0.0]}, lr=0.1)
        >>> opt._begin_step({"w": [1.0, 1.0]}, lr=0.5), opt.step_count
        ((0.5, {'w': [1.0, 1.0]}), 1)
        """
        if set(grads) != set(self.params):
            missing = sorted(set(self.params) - set(grads))
            extra = sorted(set(grads) - set(self.params))
            raise ValueError(
                f"grads must have the same names as params; missing {missing}, unexpected {extra}"
            )
        lists = {name: _as_lists(grads[name]) for name in self.params}
        for name, shape in self.shapes.items():
            got = _shape(lists[name], f"grads[{name!r}]")
            if got != shape:
                raise ValueError(
                    f"grads[{name!r}] has shape {got}; it must match the parameter's shape {shape}"
                )
        step_lr = self.lr if lr is None else _check_number("lr", lr, low=0.0)
        self.step_count += 1
        return step_lr, lists

    def state_dict(self) -> dict[str, object]:
        r"""Everything needed to resume: step, hyperparameters and buffer copies.

        Returns
        -------
        dict
            Flat mapping, safe for ``np.savez(path, **state)``: ``"optimizer"``
            (class name), ``"step"``, each hyperparameter, and one nested list
            per buffer and parameter named ``"<buffer>.<param name>"``.

        Examples
        --------
        >>> opt = Adam({"w": [0.0, 0.0]}, lr=0.1)
        >>> opt.step({"w": [1.0, 1.0]})
        >>> sorted(opt.state_dict())
        ['beta1', 'beta2', 'eps', 'lr', 'm.w', 'optimizer', 'step', 'v.w', 'weight_decay']
        """
        out: dict[str, object] = {"optimizer": type(self).__name__, "step": self.step_count}
        for h in self._hyper:
            out[h] = getattr(self, h)
        for buf, arrays in self.state.items():
            for name, a in arrays.items():
                out[f"{buf}.{name}"] = _copy(a)
        return out

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        r"""Restore a :meth:`state_dict` (from either backend, or ``np.load``) for an exact resume.

        Hyperparameters are restored too. The decay filter is not state: build
        the optimiser with the same filter as the one that was saved.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`state_dict`; arrays (from ``np.load``) are
            accepted through their ``tolist()`` / ``item()`` methods.

        Examples
        --------
        >>> opt = Adam({"w": [0.0, 0.0]}, lr=0.1)
        >>> opt.step({"w": [1.0, 1.0]})
        >>> resumed = Adam({"w": [0.0, 0.0]}, lr=0.0)
        >>> resumed.load_state_dict(opt.state_dict())
        >>> resumed.lr, resumed.step_count
        (0.1, 1)
        """
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(
                f"state has keys missing {sorted(expected - set(state))} and unexpected "
                f"{sorted(set(state) - expected)} for this {type(self).__name__}"
            )
        kind = _scalar(state["optimizer"])
        if kind != type(self).__name__:
            raise ValueError(
                f"state['optimizer']={kind!r} cannot be loaded into {type(self).__name__}"
            )
        step = _scalar(state["step"])
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"state['step']={step!r} must be a non-negative integer")
        for buf, arrays in self.state.items():
            for name in arrays:
                got = _shape(_as_lists(state[f"{buf}.{name}"]), f"state['{buf}.{name}']")
                if got != self.shapes[name]:
                    raise ValueError(
                        f"state['{buf}.{name}'] has shape {got}; expected {self.shapes[name]}"
                    )
        # validate every hyperparameter on a scratch instance before changing anything
        probe = object.__new__(type(self))
        probe._set_hyper(**{h: _scalar(state[h]) for h in self._hyper})
        for h in self._hyper:
            setattr(self, h, getattr(probe, h))
        self.step_count = step
        for buf, arrays in self.state.items():
            for name, a in arrays.items():
                for row, saved in _rows(a, _as_lists(state[f"{buf}.{name}"])):
                    row[:] = [float(x) for x in saved]

    def _set_hyper(self, **hyper: object) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class SGD(Optimizer):
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

    _hyper = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(
        self,
        params: Mapping[str, list],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        decay_filter: DecayFilter | None = None,
    ) -> None:
        super().__init__(params, decay_filter)
        self._set_hyper(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        if self.momentum != 0:
            # b_0 is never read: step 1 overwrites it with g_1, eq. (4)
            self.state["b"] = {n: _zeros_like(p) for n, p in self.params.items()}

    def _set_hyper(
        self, *, lr: float, momentum: float, dampening: float, weight_decay: float, nesterov: bool
    ) -> None:
        r"""Validate and set the hyperparameters.

        Examples
        --------
        >>> SGD({}, lr=0.1, nesterov=True)
        Traceback (most recent call last):
        ...
        ValueError: nesterov=True needs momentum > 0 and dampening == 0;
        got momentum=0.0, dampening=0.0
        """
        self.lr = _check_number("lr", lr, low=0.0)
        self.momentum = _check_number("momentum", momentum, low=0.0)
        self.dampening = _check_number("dampening", dampening, low=0.0, high=1.0)
        self.weight_decay = _check_number("weight_decay", weight_decay, low=0.0)
        if not isinstance(nesterov, bool):
            raise ValueError(
                f"nesterov={nesterov!r} is not allowed; nesterov must be True or False"
            )
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening == 0; got "
                f"momentum={self.momentum}, dampening={self.dampening}"
            )
        self.nesterov = bool(nesterov)

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


class Adam(Optimizer):
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

    _hyper = ("lr", "beta1", "beta2", "eps", "weight_decay")
    #: AdamW sets this: decay by eq. (12) instead of eq. (3)
    decoupled = False

    def __init__(
        self,
        params: Mapping[str, list],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decay_filter: DecayFilter | None = None,
    ) -> None:
        super().__init__(params, decay_filter)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas={betas!r} is not allowed; betas must be a pair (beta1, beta2)")
        self._set_hyper(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)
        # m_0 = v_0 = 0, eqs. (7)-(8)
        self.state["m"] = {n: _zeros_like(p) for n, p in self.params.items()}
        self.state["v"] = {n: _zeros_like(p) for n, p in self.params.items()}

    def _set_hyper(
        self, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float
    ) -> None:
        r"""Validate and set the hyperparameters.

        Examples
        --------
        >>> Adam({}, betas=(0.9, 1.0))
        Traceback (most recent call last):
        ...
        ValueError: beta2=1.0 is not allowed; beta2 must be a finite number >= 0.0 and < 1.0
        """
        self.lr = _check_number("lr", lr, low=0.0)
        self.beta1 = _check_number("beta1", beta1, low=0.0, high=1.0, high_open=True)
        self.beta2 = _check_number("beta2", beta2, low=0.0, high=1.0, high_open=True)
        self.eps = _check_number("eps", eps, low=0.0)
        self.weight_decay = _check_number("weight_decay", weight_decay, low=0.0)

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


class AdamW(Adam):
    r"""Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Identical to :class:`Adam` except that weight decay shrinks the weights
    directly, :math:`\theta \leftarrow \theta(1-\eta\lambda)` (eq. (12)), before the
    Adam update, and by default only matrices decay (:func:`default_decay_filter`).

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
    decay_filter : callable(name, ndim) -> bool, default :func:`default_decay_filter`
        Which parameters get weight decay; ``None`` means all.

    Examples
    --------
    With zero gradients only the decay acts, and only on the matrix:

    >>> params = {"lm_head.w": [[1.0, 1.0], [1.0, 1.0]], "final_norm.weight": [1.0, 1.0]}
    >>> opt = AdamW(params, lr=0.1, weight_decay=0.5)
    >>> opt.step({"lm_head.w": [[0.0, 0.0], [0.0, 0.0]], "final_norm.weight": [0.0, 0.0]})
    >>> params["lm_head.w"], params["final_norm.weight"]
    ([[0.95, 0.95], [0.95, 0.95]], [1.0, 1.0])
    """

    decoupled = True

    def __init__(
        self,
        params: Mapping[str, list],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        decay_filter: DecayFilter | None = default_decay_filter,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            decay_filter=decay_filter,
        )

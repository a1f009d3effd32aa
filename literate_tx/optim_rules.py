r"""What every optimiser shares, whatever holds its numbers.

The NumPy optimisers (:mod:`literate_tx.numpy_backend.optim`, where the equations are derived)
and the pure-Python ones (:mod:`literate_tx.python_backend.optim`) differ only in how they store
the numbers and walk over them: a ``step`` on arrays, a ``step`` on nested lists. Everything else
is written once, here, and belongs to no backend: which parameters decay, which hyperparameters
are allowed, the bookkeeping of a step and what a state dictionary holds.

Which parameters decay
----------------------
Every optimiser takes ``decay_filter(name, ndim) -> bool``; weight decay is applied only where it
returns True. ``SGD`` and ``Adam`` default to ``None`` (every parameter decays, as with a single
torch parameter group). ``AdamW`` defaults to :func:`default_decay_filter`: matrices decay;
biases and norm gains (vectors) do not, since shrinking them towards zero has no regularising
meaning. Embedding tables are matrices and **do** decay, as in nanoGPT; pass your own filter to
exempt them. This is the same as two torch parameter groups, one with ``weight_decay=λ`` and one
with ``weight_decay=0``.

State dictionaries
------------------
``state_dict()`` returns a flat ``dict`` of the backend's buffers, Python numbers and one
string, keyed ``"optimizer"`` (the class), ``"step"``, the hyperparameters, and
``"<buffer>.<param name>"`` (``b.`` for SGD momentum, ``m.``/``v.`` for Adam), so that
``np.savez(path, **sd)`` stores it without pickle and ``load_state_dict(np.load(path))`` resumes
exactly, in either backend. The decay filter is code, not state: construct the optimiser with the
same one.

How a backend plugs in
----------------------
:class:`Optimizer` is the shared bookkeeping; a backend's base class subclasses it and says how
its numbers are stored, in five methods: ``_shape_of(x, label)`` (check one parameter, gradient
or saved buffer and return it in the backend's form with its shape), ``_check_param`` (a
parameter may be updated in place), ``_zeros_like``, ``_copy`` and ``_assign``. The mixins
:class:`SGDRules`, :class:`AdamRules` and :class:`AdamWRules` hold each optimiser's
hyperparameters, their validation and its buffers; a backend's ``SGD`` is
``class SGD(SGDRules, Optimizer)`` with its own ``step``.

Examples
--------
>>> [default_decay_filter(n, d) for n, d in [("blocks.0.attn.w_q", 2), ("final_norm.weight", 1)]]
[True, False]
>>> check_number("lr", -1.0, low=0.0)
Traceback (most recent call last):
...
ValueError: lr=-1.0 is not allowed; lr must be a finite number >= 0.0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping

__all__ = [
    "AdamRules",
    "AdamWRules",
    "DecayFilter",
    "Optimizer",
    "SGDRules",
    "check_number",
    "clip_coefficient",
    "default_decay_filter",
]

#: ``decay_filter(name, ndim) -> bool``: whether a parameter gets weight decay.
DecayFilter = Callable[[str, int], bool]


def default_decay_filter(name: str, ndim: int) -> bool:
    r"""Say whether a parameter gets weight decay: matrices yes, biases and norms no.

    A parameter decays when it has at least two dimensions, its name does not
    contain ``"norm"``, and its last name component is neither ``bias`` nor
    starts with ``b_`` (the canonical bias names ``attn.b_q``, ``mlp.b_up``, ...).
    Embedding tables (``embed.tokens``, ``embed.positions``) are matrices and
    decay, as in nanoGPT.

    Parameters
    ----------
    name : str
        Canonical parameter name, e.g. ``"blocks.0.attn.w_q"``.
    ndim : int
        Number of dimensions of the parameter (the nesting depth of a nested list).

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


def check_number(
    name: str, value: object, *, low: float, high: float = math.inf, high_open: bool = False
) -> float:
    r"""Return ``value`` as a float if ``low <= value <= high`` (or ``< high``), else raise.

    Any real number is accepted (Python's or NumPy's), but not a bool.

    Parameters
    ----------
    name : str
        The hyperparameter's name, for the message.
    value : object
    low, high : float
        The allowed interval; ``high`` is excluded when ``high_open``.
    high_open : bool

    Returns
    -------
    float

    Examples
    --------
    >>> check_number("lr", 0.1, low=0.0)
    0.1
    >>> check_number("beta2", 1.0, low=0.0, high=1.0, high_open=True)
    Traceback (most recent call last):
    ...
    ValueError: beta2=1.0 is not allowed; beta2 must be a finite number >= 0.0 and < 1.0
    """
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
    if ok:
        ok = low <= value and (value < high if high_open else value <= high)
    if not ok:
        upper = "" if high == math.inf else (f" and < {high}" if high_open else f" and <= {high}")
        raise ValueError(
            f"{name}={value!r} is not allowed; {name} must be a finite number >= {low}{upper}"
        )
    return float(value)


def clip_coefficient(max_norm: float, total_norm: float) -> float | None:
    r"""The common factor :math:`c` of gradient clipping, or None when no clipping is needed.

    Eq. (2) of :mod:`literate_tx.numpy_backend.optim`: :math:`c = \texttt{max\_norm} /
    (\lVert \delta w \rVert + 10^{-6})`, applied only if :math:`c < 1` — or if it is NaN (a
    non-finite norm is applied as torch does by default, with no error).

    Parameters
    ----------
    max_norm : float
        Largest allowed global norm; must be positive.
    total_norm : float
        The global norm of eq. (1).

    Returns
    -------
    float or None

    Examples
    --------
    >>> clip_coefficient(1.0, 4.0), clip_coefficient(10.0, 4.0)
    (0.24999993750001562, None)
    >>> clip_coefficient(0, 4.0)
    Traceback (most recent call last):
    ...
    ValueError: max_norm=0 is not allowed; max_norm must be a positive number
    """
    if not (isinstance(max_norm, (int, float)) and max_norm > 0):
        raise ValueError(
            f"max_norm={max_norm!r} is not allowed; max_norm must be a positive number"
        )
    clip_coef = max_norm / (total_norm + 1e-6)
    return clip_coef if clip_coef < 1.0 or math.isnan(clip_coef) else None


def _scalar(x: object) -> object:
    r"""A Python number or string from itself or a 0-d array (``np.load`` returns those).

    Examples
    --------
    >>> _scalar(0.5)
    0.5
    """
    return x.item() if hasattr(x, "item") else x


class Optimizer:
    r"""The bookkeeping every optimiser shares: parameters, decay mask, step count, state.

    It holds the parameters, the weight-decay mask, the step count and the per-parameter
    buffers, validates gradients and learning rates, and implements :meth:`state_dict` /
    :meth:`load_state_dict`. A backend subclasses it with the methods that know its storage
    (see "How a backend plugs in"); the optimisers then mix in :class:`SGDRules`,
    :class:`AdamRules` or :class:`AdamWRules` and write their ``step``. It is not used directly.

    Attributes
    ----------
    params : dict of str to parameter
        The caller's parameters (the same objects), updated in place.
    shapes : dict of str to tuple of int
        The shape of each parameter, checked against every gradient and saved buffer.
    decay : dict of str to bool
        Whether each parameter gets weight decay (from ``decay_filter``).
    step_count : int
        Number of steps taken (:math:`\tau` of the equations after a step).
    state : dict of str to dict of str to buffer
        Buffers by kind (``"b"`` or ``"m"``, ``"v"``), then by parameter name.
    lr : float
        Default learning rate, used when ``step`` gets no ``lr``.

    Examples
    --------
    >>> from literate_tx.python_backend.optim import SGD
    >>> opt = SGD({"w": [[0.0, 0.0]]}, lr=0.1, momentum=0.9)
    >>> isinstance(opt, Optimizer), opt.shapes, list(opt.state), opt.step_count
    (True, {'w': (1, 2)}, ['b'], 0)
    """

    #: The hyperparameters saved in the state dictionary, set by the rules mixins.
    _hyper: tuple[str, ...] = ()
    #: What a parameter is in this backend, for messages.
    _kind = "parameter"

    def __init__(self, params: Mapping[str, object], decay_filter: DecayFilter | None) -> None:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of str to {self._kind}, "
                            f"got {type(params).__name__}")
        for name, p in params.items():
            self._check_param(name, p)
        self.shapes = {name: self._shape_of(p, f"params[{name!r}]")[1]
                       for name, p in params.items()}
        self.params = dict(params)
        # which parameters get weight decay (see "Which parameters decay")
        self.decay = {
            n: True if decay_filter is None else bool(decay_filter(n, len(self.shapes[n])))
            for n in params
        }
        self.step_count = 0
        self.state: dict[str, dict[str, object]] = {}

    # -- what a backend supplies ---------------------------------------------------------------
    def _check_param(self, name: str, p: object) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _shape_of(self, x: object, label: str) -> tuple[object, tuple[int, ...]]:
        raise NotImplementedError  # pragma: no cover - overridden

    def _zeros_like(self, p: object) -> object:  # pragma: no cover - overridden
        raise NotImplementedError

    def _copy(self, a: object) -> object:  # pragma: no cover - overridden
        raise NotImplementedError

    def _assign(self, a: object, saved: object) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _set_hyper(self, **hyper: object) -> None:  # pragma: no cover - set by the rules
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------
    def _begin_step(self, grads: Mapping[str, object], lr: float | None) -> tuple[float, dict]:
        r"""Validate ``grads`` and the step's learning rate, count the step, return both.

        The gradients come back in the backend's form (nested lists for the pure-Python
        backend, whatever the caller passed).

        Examples
        --------
        >>> from literate_tx.python_backend.optim import SGD
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
        checked = {}
        for name, shape in self.shapes.items():
            checked[name], got = self._shape_of(grads[name], f"grads[{name!r}]")
            if got != shape:
                raise ValueError(
                    f"grads[{name!r}] has shape {got}; it must match the parameter's shape {shape}"
                )
        step_lr = self.lr if lr is None else check_number("lr", lr, low=0.0)
        self.step_count += 1
        return step_lr, checked

    def _state_name(self) -> str:
        """The optimiser named in :meth:`state_dict`: the class, or the one whose updates this
        class reproduces bit for bit (``STATE_NAME``), so that their states interchange."""
        return getattr(type(self), "STATE_NAME", None) or type(self).__name__

    def state_dict(self) -> dict[str, object]:
        r"""Everything needed to resume: step, hyperparameters and buffer copies.

        Returns
        -------
        dict
            Flat mapping, safe for ``np.savez(path, **state)``: ``"optimizer"``
            (class name), ``"step"``, each hyperparameter, and one copy per
            buffer and parameter named ``"<buffer>.<param name>"``.

        Examples
        --------
        >>> from literate_tx.python_backend.optim import Adam
        >>> opt = Adam({"w": [0.0, 0.0]}, lr=0.1)
        >>> opt.step({"w": [1.0, 1.0]})
        >>> sorted(opt.state_dict())
        ['beta1', 'beta2', 'eps', 'lr', 'm.w', 'optimizer', 'step', 'v.w', 'weight_decay']
        """
        out: dict[str, object] = {"optimizer": self._state_name(), "step": self.step_count}
        for h in self._hyper:
            out[h] = getattr(self, h)
        for buf, arrays in self.state.items():
            for name, a in arrays.items():
                out[f"{buf}.{name}"] = self._copy(a)
        return out

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        r"""Restore a :meth:`state_dict` (from either backend, or ``np.load``) for an exact resume.

        Hyperparameters are restored too. The decay filter is not state: build
        the optimiser with the same filter as the one that was saved. Nothing changes
        unless the whole state is valid.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`state_dict`; arrays (from ``np.load``) are
            accepted for numbers, strings and buffers.

        Examples
        --------
        >>> from literate_tx.python_backend.optim import Adam
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
        kind = str(_scalar(state["optimizer"]))
        if kind != self._state_name():
            raise ValueError(
                f"state['optimizer']={kind!r} cannot be loaded into {type(self).__name__}"
            )
        step = _scalar(state["step"])
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"state['step']={state['step']!r} must be a non-negative integer")
        saved = {}
        for buf, arrays in self.state.items():
            for name in arrays:
                key = f"{buf}.{name}"
                saved[key], got = self._shape_of(state[key], f"state[{key!r}]")
                if got != self.shapes[name]:
                    raise ValueError(
                        f"state[{key!r}] has shape {got}; expected {self.shapes[name]}"
                    )
        # validate every hyperparameter on a scratch instance before changing anything
        probe = object.__new__(type(self))
        probe._set_hyper(**{h: _scalar(state[h]) for h in self._hyper})
        for h in self._hyper:
            setattr(self, h, getattr(probe, h))
        self.step_count = int(step)
        for buf, arrays in self.state.items():
            for name, a in arrays.items():
                self._assign(a, saved[f"{buf}.{name}"])


class SGDRules:
    r"""SGD's hyperparameters, their validation and its momentum buffer, for both backends.

    Mixed in before a backend's :class:`Optimizer`: ``class SGD(SGDRules, Optimizer)``.

    Examples
    --------
    >>> from literate_tx.python_backend.optim import SGD
    >>> SGD({}, lr=0.1, nesterov=True)
    Traceback (most recent call last):
    ...
    ValueError: nesterov=True needs momentum > 0 and dampening == 0;
    got momentum=0.0, dampening=0.0
    """

    _hyper = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(
        self,
        params: Mapping[str, object],
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
            # B_0 is never read: step 1 overwrites it with dw_1, eq. (4)
            self.state["b"] = {n: self._zeros_like(p) for n, p in self.params.items()}

    def _set_hyper(
        self, *, lr: float, momentum: float, dampening: float, weight_decay: float, nesterov: bool
    ) -> None:
        self.lr = check_number("lr", lr, low=0.0)
        self.momentum = check_number("momentum", momentum, low=0.0)
        self.dampening = check_number("dampening", dampening, low=0.0, high=1.0)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0.0)
        nesterov = _scalar(nesterov)  # NumPy's bool too
        if not isinstance(nesterov, bool):
            raise ValueError(
                f"nesterov={nesterov!r} is not allowed; nesterov must be True or False"
            )
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening == 0; got "
                f"momentum={self.momentum}, dampening={self.dampening}"
            )
        self.nesterov = nesterov


class AdamRules:
    r"""Adam's hyperparameters, their validation and its two moment buffers, for both backends.

    Mixed in before a backend's :class:`Optimizer`: ``class Adam(AdamRules, Optimizer)``.

    Examples
    --------
    >>> from literate_tx.python_backend.optim import Adam
    >>> Adam({}, betas=(0.9, 1.0))
    Traceback (most recent call last):
    ...
    ValueError: beta2=1.0 is not allowed; beta2 must be a finite number >= 0.0 and < 1.0
    """

    _hyper = ("lr", "beta1", "beta2", "eps", "weight_decay")
    #: AdamW sets this: decay by eq. (12) instead of eq. (3)
    decoupled = False

    def __init__(
        self,
        params: Mapping[str, object],
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
        self.state["m"] = {n: self._zeros_like(p) for n, p in self.params.items()}
        self.state["v"] = {n: self._zeros_like(p) for n, p in self.params.items()}

    def _bias_corrections(self, eta: float) -> tuple[float, float]:
        r"""The bias corrections of eq. (9) folded into eq. (11), for step :math:`\tau`:
        :math:`\eta / (1 - \zeta_1^\tau)` and :math:`\sqrt{1 - \zeta_2^\tau}`.

        Examples
        --------
        >>> from literate_tx.python_backend.optim import Adam
        >>> opt = Adam({}, betas=(0.5, 0.75)); opt.step_count = 1
        >>> opt._bias_corrections(1.0)  # 1 / (1 - 0.5), sqrt(1 - 0.75)
        (2.0, 0.5)
        """
        t = self.step_count
        return eta / (1 - self.beta1**t), math.sqrt(1 - self.beta2**t)

    def _set_hyper(
        self, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float
    ) -> None:
        self.lr = check_number("lr", lr, low=0.0)
        self.beta1 = check_number("beta1", beta1, low=0.0, high=1.0, high_open=True)
        self.beta2 = check_number("beta2", beta2, low=0.0, high=1.0, high_open=True)
        self.eps = check_number("eps", eps, low=0.0)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0.0)


class AdamWRules:
    r"""AdamW's defaults over Adam's: decoupled decay, ``weight_decay=0.01``, matrices only.

    Mixed in before a backend's ``Adam``: ``class AdamW(AdamWRules, Adam)``.

    Examples
    --------
    >>> from literate_tx.python_backend.optim import AdamW
    >>> opt = AdamW({"w": [[1.0]], "b": [1.0]})
    >>> opt.decoupled, opt.weight_decay, opt.decay
    (True, 0.01, {'w': True, 'b': False})
    """

    decoupled = True

    def __init__(self, params: Mapping[str, object], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01,
                 decay_filter: DecayFilter | None = default_decay_filter) -> None:
        # Adam's constructor with AdamW's defaults: decay 0.01, matrices only
        super().__init__(params, lr, betas, eps, weight_decay, decay_filter)

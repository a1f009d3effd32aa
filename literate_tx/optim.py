r"""Optimisers for NumPy parameters: SGD, Adam, AdamW and gradient clipping.

Every optimiser here updates a ``dict[str, ndarray]`` of parameters **in place**
from a ``dict[str, ndarray]`` of gradients with the same names and shapes (the
canonical names of ``DEVELOPING.md``), and follows :mod:`torch.optim` exactly:
the same equations, the same order of floating-point operations wherever that
costs no clarity, so that ``tests/test_optim.py`` can demand agreement with
PyTorch to about :math:`10^{-12}` relative in float64 after many steps.
The pure-Python mirror, :mod:`literate_tx.python_backend.optim`, has the same
classes, statements and comments, written element by element.

Notation
--------
:math:`\theta` a parameter tensor, :math:`g` its gradient, :math:`t = 1, 2, \dots`
the step number, :math:`\eta` the learning rate, :math:`\lambda` the weight decay.
All products and powers of tensors are elementwise.

Gradient clipping
-----------------
The *global* norm treats all gradients as one long vector; like
``torch.nn.utils.clip_grad_norm_`` we take the norm of each tensor and then the
norm of those norms (the same number, summed in a different order):

.. math:: \lVert g \rVert = \Bigl(\sum_k \lVert g_k \rVert_2^2\Bigr)^{1/2} \tag{1}

If that norm exceeds ``max_norm`` every gradient is scaled by one common factor,
so the direction of the full gradient is kept and only its length shrinks. The
:math:`10^{-6}` keeps the division finite for a zero gradient and means that a
clipped gradient ends very slightly *below* ``max_norm``:

.. math:: c = \frac{\texttt{max\_norm}}{\lVert g \rVert + 10^{-6}}, \qquad
          g_k \leftarrow c\, g_k \ \text{ only if } c < 1 \tag{2}

SGD with momentum
-----------------
An :math:`L_2` penalty :math:`\tfrac{\lambda}{2}\lVert\theta\rVert^2` added to the
loss adds :math:`\lambda\theta` to the gradient. ``torch.optim.SGD`` calls this
``weight_decay`` and applies it to the gradient (it is *coupled*: the momentum
below sees it):

.. math:: g \leftarrow g + \lambda\,\theta \tag{3}

Momentum keeps a running buffer :math:`b` of past gradients with coefficient
:math:`\mu` and dampening :math:`\tau`. PyTorch starts the buffer at the first
gradient itself, not at :math:`(1-\tau)\,g_1`:

.. math:: b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1-\tau)\, g_t \tag{4}

Classical momentum steps along the buffer; Nesterov momentum looks one
momentum step ahead (and needs :math:`\tau = 0`):

.. math:: d_t = b_t \quad\text{or, with Nesterov,}\quad d_t = g_t + \mu\, b_t \tag{5}

.. math:: \theta \leftarrow \theta - \eta\, d_t \tag{6}

Without momentum, (3) and (6) give :math:`\theta \leftarrow (1-\eta\lambda)\,\theta - \eta g`:
for plain SGD the :math:`L_2` penalty and "decaying the weights" are the same thing.
For Adam they are not, which is the point of AdamW.

Adam and AdamW
--------------
Adam (Kingma & Ba, 2015) keeps exponential moving averages of the gradient and
of its square:

.. math:: m_t = \beta_1\, m_{t-1} + (1-\beta_1)\, g_t \tag{7}

.. math:: v_t = \beta_2\, v_{t-1} + (1-\beta_2)\, g_t^2 \tag{8}

with :math:`m_0 = v_0 = 0`. Unrolling (7), :math:`m_t = (1-\beta_1)\sum_{i=1}^{t}\beta_1^{t-i} g_i`,
and if the :math:`g_i` share a mean :math:`\bar g` then
:math:`\mathbb{E}\,m_t = (1-\beta_1^t)\,\bar g`: the zero start biases early averages
towards zero. Dividing by that factor removes the bias:

.. math:: \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t} \tag{9}

The step divides the averaged gradient by its root-mean-square, so every
coordinate moves by about :math:`\eta` whatever the scale of its gradient;
:math:`\epsilon` is added *after* the square root:

.. math:: \theta \leftarrow \theta - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} \tag{10}

PyTorch (and this module) folds the two corrections of (9) into (10) without
forming :math:`\hat m_t` and :math:`\hat v_t`; this is (10) exactly, rearranged:

.. math:: \theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}\cdot
          \frac{m_t}{\sqrt{v_t}\,/\sqrt{1-\beta_2^t} + \epsilon} \tag{11}

``torch.optim.Adam`` applies ``weight_decay`` as (3), *coupled*: the
:math:`\lambda\theta` term enters :math:`m` and :math:`v` and is then divided by
:math:`\sqrt{\hat v}`, so weights with large gradients are barely decayed at all.
AdamW (Loshchilov & Hutter, 2019) *decouples* the decay: before the Adam update
it shrinks the weights directly, with no gradient involved,

.. math:: \theta \leftarrow \theta\,(1 - \eta\lambda) \tag{12}

(that is :math:`\theta \leftarrow \theta - \eta\lambda\theta`, written as PyTorch
computes it), and then (7)-(11) run on the raw gradient.

Which parameters decay
----------------------
Every optimiser takes ``decay_filter(name, ndim) -> bool``; weight decay is
applied only where it returns True. :class:`SGD` and :class:`Adam` default to
``None`` (every parameter decays, as with a single torch parameter group).
:class:`AdamW` defaults to :func:`default_decay_filter`: matrices decay;
biases and norm gains (vectors) do not, since shrinking them towards zero has
no regularising meaning. Embedding tables are matrices and **do** decay, as in
nanoGPT; pass your own filter to exempt them. This is the same as two torch
parameter groups, one with ``weight_decay=λ`` and one with ``weight_decay=0``.

State dictionaries
------------------
``state_dict()`` returns a flat ``dict`` of NumPy arrays, Python numbers and one
string, keyed ``"step"``, the hyperparameters, and ``"<buffer>.<param name>"``
(``b.`` for SGD momentum, ``m.``/``v.`` for Adam), so ``np.savez(path, **sd)``
stores it without pickle and ``load_state_dict(np.load(path))`` resumes exactly.
The decay filter is code, not state: construct the optimiser with the same one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm", "default_decay_filter"]

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
        Number of dimensions of the parameter.

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


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    r"""Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    Matches ``torch.nn.utils.clip_grad_norm_`` (``norm_type=2``): eqs. (1)-(2)
    of the module docstring, including the :math:`10^{-6}` in the denominator.
    A non-finite norm is returned and applied as torch does by default (no error).

    Parameters
    ----------
    grads : dict of str to ndarray
        Gradients, any shapes; modified in place.
    max_norm : float
        Largest allowed global norm; must be positive.

    Returns
    -------
    float
        The global norm *before* clipping.

    Examples
    --------
    >>> grads = {"w": np.array([3.0, 0.0]), "b": np.array([4.0])}
    >>> clip_grad_norm(grads, max_norm=1.0)
    5.0
    >>> [round(float(x), 6) for x in np.concatenate([grads["w"], grads["b"]])]
    [0.6, 0.0, 0.8]
    >>> clip_grad_norm(grads, max_norm=10.0)  # already short enough: untouched
    0.99999...
    """
    if not (isinstance(max_norm, (int, float)) and max_norm > 0):
        raise ValueError(
            f"max_norm={max_norm!r} is not allowed; max_norm must be a positive number"
        )
    # per-tensor norms, then the norm of those norms, as torch does, eq. (1)
    norms = [np.linalg.norm(g.ravel()) for g in grads.values()]
    total_norm = float(np.linalg.norm(np.array(norms, dtype=np.float64))) if norms else 0.0
    clip_coef = max_norm / (total_norm + 1e-6)  # eq. (2)
    if clip_coef < 1.0 or math.isnan(clip_coef):
        # one common factor keeps the direction of the full gradient, eq. (2)
        for g in grads.values():
            g *= clip_coef
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
    ok = (
        isinstance(value, (int, float, np.number))
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


class Optimizer:
    r"""Base class of :class:`SGD`, :class:`Adam` and :class:`AdamW`: the shared bookkeeping.

    It holds the parameters, the weight-decay mask, the step count and the
    per-parameter buffers, validates gradients and learning rates, and
    implements :meth:`state_dict` / :meth:`load_state_dict`. Subclasses list
    their hyperparameters in ``_hyper``, create their buffers in ``state`` and
    implement ``step``; it is not used directly.

    Attributes
    ----------
    params : dict of str to ndarray
        The caller's parameters (the same objects), updated in place.
    decay : dict of str to bool
        Whether each parameter gets weight decay (from ``decay_filter``).
    step_count : int
        Number of steps taken (:math:`t` of the module docstring after a step).
    state : dict of str to dict of str to ndarray
        Buffers by kind (``"b"`` or ``"m"``, ``"v"``), then by parameter name.
    lr : float
        Default learning rate, used when ``step`` gets no ``lr``.

    Examples
    --------
    >>> opt = SGD({"w": np.zeros(2)}, lr=0.1, momentum=0.9)
    >>> isinstance(opt, Optimizer), list(opt.state), opt.step_count
    (True, ['b'], 0)
    """

    _hyper: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, np.ndarray], decay_filter: DecayFilter | None) -> None:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of str to ndarray, got {type(params).__name__}")
        for name, p in params.items():
            if not (
                isinstance(p, np.ndarray)
                and np.issubdtype(p.dtype, np.floating)
                and p.flags.writeable
            ):
                raise TypeError(
                    f"params[{name!r}] must be a writeable floating-point ndarray "
                    "(it is updated in place), "
                    f"got {type(p).__name__} {getattr(p, 'dtype', '')}"
                )
        self.params = dict(params)
        # which parameters get weight decay (see "Which parameters decay")
        self.decay = {
            n: True if decay_filter is None else bool(decay_filter(n, p.ndim))
            for n, p in params.items()
        }
        self.step_count = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def _begin_step(self, grads: Mapping[str, np.ndarray], lr: float | None) -> float:
        r"""Validate ``grads`` and the step's learning rate, count the step, return the rate.

        Examples
        --------
        >>> opt = SGD({"w": np.zeros(2)}, lr=0.1)
        >>> opt._begin_step({"w": np.ones(2)}, lr=0.5), opt.step_count
        (0.5, 1)
        """
        if set(grads) != set(self.params):
            missing = sorted(set(self.params) - set(grads))
            extra = sorted(set(grads) - set(self.params))
            raise ValueError(
                f"grads must have the same names as params; missing {missing}, unexpected {extra}"
            )
        for name, p in self.params.items():
            if np.shape(grads[name]) != p.shape:
                raise ValueError(
                    f"grads[{name!r}] has shape {np.shape(grads[name])}; it must match the "
                    f"parameter's shape {p.shape}"
                )
        step_lr = self.lr if lr is None else _check_number("lr", lr, low=0.0)
        self.step_count += 1
        return step_lr

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
            (class name), ``"step"``, each hyperparameter, and one array per
            buffer and parameter named ``"<buffer>.<param name>"``.

        Examples
        --------
        >>> opt = Adam({"w": np.zeros(2)}, lr=0.1)
        >>> opt.step({"w": np.ones(2)})
        >>> sorted(opt.state_dict())
        ['beta1', 'beta2', 'eps', 'lr', 'm.w', 'optimizer', 'step', 'v.w', 'weight_decay']
        """
        out: dict[str, object] = {"optimizer": self._state_name(), "step": self.step_count}
        for h in self._hyper:
            out[h] = getattr(self, h)
        for buf, arrays in self.state.items():
            for name, a in arrays.items():
                out[f"{buf}.{name}"] = a.copy()
        return out

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        r"""Restore a :meth:`state_dict` (e.g. the result of ``np.load``) for an exact resume.

        Hyperparameters are restored too. The decay filter is not state: build
        the optimiser with the same filter as the one that was saved.

        Parameters
        ----------
        state : mapping
            As returned by :meth:`state_dict`; 0-d arrays (from ``np.load``) are
            accepted for numbers and strings.

        Examples
        --------
        >>> import io
        >>> w = np.zeros(2)
        >>> opt = Adam({"w": w}, lr=0.1)
        >>> opt.step({"w": np.ones(2)})
        >>> f = io.BytesIO(); np.savez(f, **opt.state_dict()); _ = f.seek(0)
        >>> resumed = Adam({"w": w.copy()}, lr=0.0)
        >>> resumed.load_state_dict(np.load(f, allow_pickle=False))
        >>> resumed.lr, resumed.step_count
        (0.1, 1)
        """
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(
                f"state has keys missing {sorted(expected - set(state))} and unexpected "
                f"{sorted(set(state) - expected)} for this {type(self).__name__}"
            )
        kind = str(np.asarray(state["optimizer"]))
        if kind != self._state_name():
            raise ValueError(
                f"state['optimizer']={kind!r} cannot be loaded into {type(self).__name__}"
            )
        step = np.asarray(state["step"])
        if not (np.issubdtype(step.dtype, np.integer) and step.ndim == 0 and int(step) >= 0):
            raise ValueError(f"state['step']={state['step']!r} must be a non-negative integer")
        for buf, arrays in self.state.items():
            for name, a in arrays.items():
                saved = np.asarray(state[f"{buf}.{name}"])
                if saved.shape != a.shape:
                    raise ValueError(
                        f"state['{buf}.{name}'] has shape {saved.shape}; expected {a.shape}"
                    )
        # validate every hyperparameter on a scratch instance before changing anything
        probe = object.__new__(type(self))
        probe._set_hyper(**{h: np.asarray(state[h]).item() for h in self._hyper})
        for h in self._hyper:
            setattr(self, h, getattr(probe, h))
        self.step_count = int(step)
        for buf, arrays in self.state.items():
            for name, a in arrays.items():
                a[...] = np.asarray(state[f"{buf}.{name}"])

    def _set_hyper(self, **hyper: object) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    params : dict of str to ndarray
        Parameters, any shapes, floating dtype; updated in place by :meth:`step`.
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
    >>> w = np.array([1.0, 2.0])
    >>> opt = SGD({"w": w}, lr=0.1)
    >>> opt.step({"w": np.array([0.5, -1.0])})
    >>> w.tolist()  # the caller's array moved: theta - lr * g, eq. (6)
    [0.95, 2.1]
    """

    _hyper = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
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
            self.state["b"] = {n: np.zeros_like(p) for n, p in self.params.items()}

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
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ValueError(
                f"nesterov={nesterov!r} is not allowed; nesterov must be True or False"
            )
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening == 0; got "
                f"momentum={self.momentum}, dampening={self.dampening}"
            )
        self.nesterov = bool(nesterov)

    def step(self, grads: Mapping[str, np.ndarray], lr: float | None = None) -> None:
        r"""Apply one SGD update to every parameter, in place; ``grads`` is not modified.

        Parameters
        ----------
        grads : dict of str to ndarray
            One gradient per parameter, same names and shapes.
        lr : float, optional
            Learning rate for this step only (e.g. from a schedule); default ``self.lr``.

        Examples
        --------
        >>> w = np.array([0.0])
        >>> opt = SGD({"w": w}, lr=1.0, momentum=0.5)
        >>> for _ in range(3):
        ...     opt.step({"w": np.array([1.0])})
        >>> w.tolist()  # buffers 1, 1.5, 1.75, eq. (4)
        [-4.25]
        """
        eta = self._begin_step(grads, lr)
        t = self.step_count
        for name, p in self.params.items():
            # every array in this loop has the shape of p (any shape)
            g = grads[name]
            if self.weight_decay != 0 and self.decay[name]:
                g = g + self.weight_decay * p  # coupled L2 decay, eq. (3)
            if self.momentum != 0:
                b = self.state["b"][name]
                if t == 1:
                    b[...] = g  # the buffer starts at the first gradient, eq. (4)
                else:  # a running average of past gradients, eq. (4)
                    b[...] = self.momentum * b + (1 - self.dampening) * g
                # look one momentum step ahead, or follow the buffer, eq. (5)
                g = g + self.momentum * b if self.nesterov else b
            p -= eta * g  # eq. (6)


class Adam(Optimizer):
    r"""Adam with bias correction and coupled :math:`L_2` decay, as ``torch.optim.Adam``.

    Parameters
    ----------
    params : dict of str to ndarray
        Parameters, any shapes, floating dtype; updated in place by :meth:`step`.
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

    >>> w = np.zeros(3)
    >>> opt = Adam({"w": w}, lr=0.1, eps=0.0)
    >>> opt.step({"w": np.array([1e-3, -5.0, 200.0])})
    >>> [round(float(x), 12) for x in w]
    [-0.1, 0.1, -0.1]
    """

    _hyper = ("lr", "beta1", "beta2", "eps", "weight_decay")
    #: AdamW sets this: decay by eq. (12) instead of eq. (3)
    decoupled = False

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
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
        self.state["m"] = {n: np.zeros_like(p) for n, p in self.params.items()}
        self.state["v"] = {n: np.zeros_like(p) for n, p in self.params.items()}

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

    def step(self, grads: Mapping[str, np.ndarray], lr: float | None = None) -> None:
        r"""Apply one Adam (or AdamW) update to every parameter in place; ``grads`` is unchanged.

        Parameters
        ----------
        grads : dict of str to ndarray
            One gradient per parameter, same names and shapes.
        lr : float, optional
            Learning rate for this step only (e.g. from a schedule); default ``self.lr``.

        Examples
        --------
        A constant gradient gives :math:`\hat m_t = g` and :math:`\hat v_t = g^2`
        at every step, so the bias correction keeps steps of exactly ``lr``:

        >>> w = np.zeros(1)
        >>> opt = Adam({"w": w}, lr=0.5, eps=0.0)
        >>> for _ in range(4):
        ...     opt.step({"w": np.array([3.0])})
        >>> round(float(w[0]), 12)
        -2.0
        """
        eta = self._begin_step(grads, lr)
        t = self.step_count
        # the bias corrections of eq. (9), folded into eq. (11)
        bias_correction1 = 1 - self.beta1**t
        bias_correction2 = 1 - self.beta2**t
        step_size = eta / bias_correction1
        bias_correction2_sqrt = math.sqrt(bias_correction2)
        for name, p in self.params.items():
            # every array in this loop has the shape of p (any shape)
            g = grads[name]
            m = self.state["m"][name]
            v = self.state["v"][name]
            if self.weight_decay != 0 and self.decay[name]:
                if self.decoupled:
                    # decoupled decay (AdamW), eq. (12)
                    p *= 1 - eta * self.weight_decay
                else:
                    # coupled L2 decay (Adam), eq. (3)
                    g = g + self.weight_decay * p
            # first and second moments, eqs. (7)-(8)
            m[...] = self.beta1 * m + (1 - self.beta1) * g
            v[...] = self.beta2 * v + (1 - self.beta2) * g * g
            # eps after the sqrt, eq. (11)
            denom = np.sqrt(v) / bias_correction2_sqrt + self.eps
            p -= step_size * (m / denom)  # eq. (11)


class AdamW(Adam):
    r"""Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Identical to :class:`Adam` except that weight decay shrinks the weights
    directly, :math:`\theta \leftarrow \theta(1-\eta\lambda)` (eq. (12)), before the
    Adam update, and by default only matrices decay (:func:`default_decay_filter`).

    Parameters
    ----------
    params : dict of str to ndarray
        Parameters, any shapes, floating dtype; updated in place by :meth:`step`.
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

    >>> params = {"lm_head.w": np.ones((2, 2)), "final_norm.weight": np.ones(2)}
    >>> opt = AdamW(params, lr=0.1, weight_decay=0.5)
    >>> opt.step({"lm_head.w": np.zeros((2, 2)), "final_norm.weight": np.zeros(2)})
    >>> params["lm_head.w"].tolist(), params["final_norm.weight"].tolist()
    ([[0.95, 0.95], [0.95, 0.95]], [1.0, 1.0])
    """

    decoupled = True

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
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

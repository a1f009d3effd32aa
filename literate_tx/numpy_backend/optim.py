r"""Optimisers for NumPy parameters: SGD, Adam, AdamW and gradient clipping, derived.

Every optimiser here updates a ``dict[str, ndarray]`` of parameters **in place**
from a ``dict[str, ndarray]`` of gradients with the same names and shapes (the
canonical names of ``DEVELOPING.md``), and follows :mod:`torch.optim` exactly:
the same equations, the same order of floating-point operations wherever that
costs no clarity, so that ``tests/test_optim.py`` can demand agreement with
PyTorch to about :math:`10^{-12}` relative in float64 after many steps.
The pure-Python mirror, :mod:`literate_tx.python_backend.optim`, has the same
classes, statements and comments, written element by element. (This module is the NumPy
backend's, as that one is the pure-Python backend's; :mod:`literate_tx.optim` still offers its
names.)

Notation
--------
:math:`w` a parameter tensor, :math:`\delta w` its gradient (the glossary's :math:`\delta`),
:math:`\tau = 1, 2, \dots` the step number, :math:`\eta` the learning rate, :math:`\lambda` the
weight decay. All products and powers of tensors are elementwise. The papers and PyTorch's
documentation write :math:`\theta` for the parameters, :math:`g` for the gradient, :math:`t`
for the step, :math:`\mu, \tau` for SGD's momentum and dampening, :math:`m_t, v_t` for Adam's
moments and :math:`\beta_1, \beta_2` for their coefficients; here those letters mean other
things (``docs/symbols.md``), so the optimiser's state is calligraphic
(:math:`\mathcal B, \mathcal M, \mathcal V`) and its averaging coefficients are
:math:`\zeta, \zeta_1, \zeta_2`.

Gradient clipping
-----------------
The *global* norm treats all gradients as one long vector; like
``torch.nn.utils.clip_grad_norm_`` we take the norm of each tensor and then the
norm of those norms (the same number, summed in a different order), over the parameter
tensors :math:`w'`:

.. math:: \lVert \delta w \rVert = \Bigl(\sum_{w'} \lVert \delta w' \rVert_2^2\Bigr)^{1/2} \tag{1}

If that norm exceeds ``max_norm`` every gradient is scaled by one common factor,
so the direction of the full gradient is kept and only its length shrinks. The
:math:`10^{-6}` keeps the division finite for a zero gradient and means that a
clipped gradient ends very slightly *below* ``max_norm``:

.. math:: c = \frac{\texttt{max\_norm}}{\lVert \delta w \rVert + 10^{-6}}, \qquad
          \delta w' \leftarrow c\, \delta w' \ \text{ only if } c < 1 \tag{2}

SGD with momentum
-----------------
An :math:`L_2` penalty :math:`\tfrac{\lambda}{2}\lVert w\rVert^2` added to the
loss adds :math:`\lambda w` to the gradient. ``torch.optim.SGD`` calls this
``weight_decay`` and applies it to the gradient (it is *coupled*: the momentum
below sees it):

.. math:: \delta w \leftarrow \delta w + \lambda\, w \tag{3}

Momentum keeps a running buffer :math:`\mathcal B` of past gradients with coefficient
:math:`\zeta` (``momentum``) and dampening :math:`\Omega` (``dampening``). PyTorch starts the
buffer at the first gradient itself, not at :math:`(1-\Omega)\,\delta w_1`:

.. math:: \mathcal B_1 = \delta w_1, \qquad
          \mathcal B_\tau = \zeta\, \mathcal B_{\tau-1} + (1-\Omega)\, \delta w_\tau \tag{4}

Classical momentum steps along the buffer; Nesterov momentum looks one
momentum step ahead (and needs :math:`\Omega = 0`):

.. math:: \mathcal D_\tau = \mathcal B_\tau \quad\text{or, with Nesterov,}\quad
          \mathcal D_\tau = \delta w_\tau + \zeta\, \mathcal B_\tau \tag{5}

.. math:: w \leftarrow w - \eta\, \mathcal D_\tau \tag{6}

Without momentum, (3) and (6) give :math:`w \leftarrow (1-\eta\lambda)\,w - \eta\,\delta w`:
for plain SGD the :math:`L_2` penalty and "decaying the weights" are the same thing.
For Adam they are not, which is the point of AdamW.

Adam and AdamW
--------------
Adam (Kingma & Ba, 2015) keeps exponential moving averages of the gradient and
of its square (the paper's :math:`m_t, v_t` with coefficients :math:`\beta_1, \beta_2`):

.. math:: \mathcal M_\tau = \zeta_1\, \mathcal M_{\tau-1} + (1-\zeta_1)\, \delta w_\tau \tag{7}

.. math:: \mathcal V_\tau = \zeta_2\, \mathcal V_{\tau-1} + (1-\zeta_2)\, \delta w_\tau^2 \tag{8}

with :math:`\mathcal M_0 = \mathcal V_0 = 0`. Unrolling (7),
:math:`\mathcal M_\tau = (1-\zeta_1)\sum_{\tau'=1}^{\tau}\zeta_1^{\tau-\tau'} \delta w_{\tau'}`,
and if the :math:`\delta w_{\tau'}` share a mean :math:`\overline{\delta w}` then
:math:`\mathbb{E}\,\mathcal M_\tau = (1-\zeta_1^\tau)\,\overline{\delta w}`: the zero start
biases early averages towards zero. Dividing by that factor removes the bias:

.. math:: \hat{\mathcal M}_\tau = \frac{\mathcal M_\tau}{1-\zeta_1^\tau}, \qquad
          \hat{\mathcal V}_\tau = \frac{\mathcal V_\tau}{1-\zeta_2^\tau} \tag{9}

The step divides the averaged gradient by its root-mean-square, so every
coordinate moves by about :math:`\eta` whatever the scale of its gradient;
:math:`\epsilon` (``eps``) is added *after* the square root:

.. math:: w \leftarrow w - \eta\,
          \frac{\hat{\mathcal M}_\tau}{\sqrt{\hat{\mathcal V}_\tau} + \epsilon} \tag{10}

PyTorch (and this module) folds the two corrections of (9) into (10) without
forming :math:`\hat{\mathcal M}_\tau` and :math:`\hat{\mathcal V}_\tau`; this is (10) exactly,
rearranged:

.. math:: w \leftarrow w - \frac{\eta}{1-\zeta_1^\tau}\cdot
          \frac{\mathcal M_\tau}{\sqrt{\mathcal V_\tau}\,/\sqrt{1-\zeta_2^\tau} + \epsilon} \tag{11}

``torch.optim.Adam`` applies ``weight_decay`` as (3), *coupled*: the
:math:`\lambda w` term enters :math:`\mathcal M` and :math:`\mathcal V` and is then divided by
:math:`\sqrt{\hat{\mathcal V}}`, so weights with large gradients are barely decayed at all.
AdamW (Loshchilov & Hutter, 2019) *decouples* the decay: before the Adam update
it shrinks the weights directly, with no gradient involved,

.. math:: w \leftarrow w\,(1 - \eta\lambda) \tag{12}

(that is :math:`w \leftarrow w - \eta\lambda w`, written as PyTorch
computes it), and then (7)-(11) run on the raw gradient.

Which parameters decay, and state dictionaries
----------------------------------------------
The rules both backends share — :func:`~literate_tx.optim_rules.default_decay_filter` (matrices
decay; biases, norm gains do not), the validation of every hyperparameter, and the flat
``state_dict()`` that ``np.savez`` stores without pickle — are written once, in
:mod:`literate_tx.optim_rules`. This module adds what arrays need: the updates below, and the
checks that a parameter is a writeable floating-point array.

Examples
--------
>>> w = np.array([1.0, -1.0])
>>> opt = AdamW({"w": w}, lr=0.1, eps=0.0, weight_decay=0.0)
>>> opt.step({"w": np.array([2.0, -3.0])})
>>> w.tolist()  # the first step moves each coordinate by lr against its gradient's sign
[0.9, -0.9]
"""


from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import optim_rules
from ..optim_rules import (  # default_decay_filter: importable from here, as before
    AdamRules,
    AdamWRules,
    SGDRules,
    clip_coefficient,
    default_decay_filter,  # noqa: F401
)

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm"]


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
    # per-tensor norms, then the norm of those norms, as torch does, eq. (1)
    norms = [np.linalg.norm(g.ravel()) for g in grads.values()]
    total_norm = float(np.linalg.norm(np.array(norms, dtype=np.float64))) if norms else 0.0
    clip_coef = clip_coefficient(max_norm, total_norm)  # eq. (2)
    if clip_coef is not None:
        # one common factor keeps the direction of the full gradient, eq. (2)
        for g in grads.values():
            g *= clip_coef
    return total_norm


class Optimizer(optim_rules.Optimizer):
    r"""Base class of :class:`SGD`, :class:`Adam` and :class:`AdamW`: NumPy arrays as storage.

    The bookkeeping (decay mask, step count, gradient checks, state dictionaries) is
    :class:`literate_tx.optim_rules.Optimizer`'s; this class says what a parameter is here — a
    writeable floating-point array, updated in place — and how buffers are made, copied and
    restored. It is not used directly.

    Examples
    --------
    >>> opt = SGD({"w": np.zeros(2)}, lr=0.1, momentum=0.9)
    >>> isinstance(opt, Optimizer), list(opt.state), opt.step_count
    (True, ['b'], 0)
    >>> SGD({"w": np.zeros(2, dtype=int)})
    Traceback (most recent call last):
    ...
    TypeError: params['w'] must be a writeable floating-point ndarray ...
    """

    _kind = "ndarray"

    def _check_param(self, name: str, p: object) -> None:
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

    def _shape_of(self, x: object, label: str) -> tuple[np.ndarray, tuple[int, ...]]:
        a = np.asarray(x)
        return a, a.shape

    def _zeros_like(self, p: np.ndarray) -> np.ndarray:
        return np.zeros_like(p)

    def _copy(self, a: np.ndarray) -> np.ndarray:
        return a.copy()

    def _assign(self, a: np.ndarray, saved: np.ndarray) -> None:
        a[...] = saved


class SGD(SGDRules, Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    params : dict of str to ndarray
        Parameters, any shapes, floating dtype; updated in place by :meth:`step`.
    lr : float, default 1e-3
        Learning rate :math:`\eta` (overridable per step).
    momentum : float, default 0
        Momentum :math:`\zeta`, eq. (4); 0 disables the buffer.
    dampening : float, default 0
        Dampening :math:`\Omega`, eq. (4).
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
    >>> w.tolist()  # the caller's array moved: w - lr * dw, eq. (6)
    [0.95, 2.1]
    """

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
        eta, grads = self._begin_step(grads, lr)
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


class Adam(AdamRules, Optimizer):
    r"""Adam with bias correction and coupled :math:`L_2` decay, as ``torch.optim.Adam``.

    Parameters
    ----------
    params, lr
        As :class:`SGD`.
    betas : (float, float), default (0.9, 0.999)
        Averaging coefficients :math:`\zeta_1, \zeta_2 \in [0, 1)`, eqs. (7)-(8).
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
    :math:`\hat{\mathcal M}_1 = \delta w_1`, :math:`\hat{\mathcal V}_1 = \delta w_1^2`):

    >>> w = np.zeros(3)
    >>> opt = Adam({"w": w}, lr=0.1, eps=0.0)
    >>> opt.step({"w": np.array([1e-3, -5.0, 200.0])})
    >>> [round(float(x), 12) for x in w]
    [-0.1, 0.1, -0.1]
    """

    def step(self, grads: Mapping[str, np.ndarray], lr: float | None = None) -> None:
        r"""Apply one Adam (or AdamW) update to every parameter in place; ``grads`` is unchanged.

        Parameters
        ----------
        grads, lr
            As :meth:`SGD.step`.

        Examples
        --------
        A constant gradient gives :math:`\hat{\mathcal M}_\tau = \delta w` and
        :math:`\hat{\mathcal V}_\tau = \delta w^2`
        at every step, so the bias correction keeps steps of exactly ``lr``:

        >>> w = np.zeros(1)
        >>> opt = Adam({"w": w}, lr=0.5, eps=0.0)
        >>> for _ in range(4):
        ...     opt.step({"w": np.array([3.0])})
        >>> round(float(w[0]), 12)
        -2.0
        """
        eta, grads = self._begin_step(grads, lr)
        step_size, bias_correction2_sqrt = self._bias_corrections(eta)  # eqs. (9), (11)
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


class AdamW(AdamWRules, Adam):
    r"""Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Identical to :class:`Adam` except that weight decay shrinks the weights
    directly, :math:`w \leftarrow w(1-\eta\lambda)` (eq. (12)), before the
    Adam update, and by default only matrices decay
    (:func:`~literate_tx.optim_rules.default_decay_filter`).

    Parameters
    ----------
    params, lr, betas, eps
        As :class:`Adam`.
    weight_decay : float, default 0.01
        Decoupled coefficient :math:`\lambda`, eq. (12) (torch's default).
    decay_filter : callable(name, ndim) -> bool, default ``default_decay_filter``
        Which parameters get weight decay
        (:func:`~literate_tx.optim_rules.default_decay_filter`); ``None`` means all.

    Examples
    --------
    With zero gradients only the decay acts, and only on the matrix:

    >>> params = {"lm_head.w": np.ones((2, 2)), "final_norm.weight": np.ones(2)}
    >>> opt = AdamW(params, lr=0.1, weight_decay=0.5)
    >>> opt.step({"lm_head.w": np.zeros((2, 2)), "final_norm.weight": np.zeros(2)})
    >>> params["lm_head.w"].tolist(), params["final_norm.weight"].tolist()
    ([[0.95, 0.95], [0.95, 0.95]], [1.0, 1.0])
    """

r"""Element-wise non-linearities of the feed-forward sublayer and their derivatives.

Each activation :math:`a = f(u)` has the backward pass :math:`\delta u = f'(u)\,\delta a`. With
:math:`\sigma(u) = 1/(1+e^{-u})`, :math:`\Phi` the standard normal CDF and :math:`\varphi` its
density:

.. math::
   :label: activations

   \begin{aligned}
   \mathrm{relu}(u) &= \max(u, 0), & \mathrm{relu}'(u) &= \mathbb{1}[u > 0],\\
   \mathrm{gelu}(u) &= u\,\Phi(u) = \tfrac12 u \big(1 + \mathrm{erf}(u/\sqrt2)\big),
     & \mathrm{gelu}'(u) &= \Phi(u) + u\,\varphi(u),\\
   \mathrm{gelu_{tanh}}(u) &= \tfrac12 u\,(1 + \tanh k),\ k = \sqrt{2/\pi}\,(u + 0.044715\,u^3),
     & \mathrm{gelu_{tanh}}'(u) &= \tfrac12(1 + \tanh k)
        + \tfrac12 u\,(1 - \tanh^2 k)\,\sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\,u^2),\\
   \mathrm{swish}(u) &= u\,\sigma(u),
     & \mathrm{swish}'(u) &= \sigma(u)\,\big(1 + u(1 - \sigma(u))\big).
   \end{aligned}

``gelu_tanh`` is the approximation GPT-2 was trained with (``approximate="tanh"`` in PyTorch);
``swish`` with unit slope is PyTorch's ``silu``, the gate non-linearity of SwiGLU.

NumPy has no ``erf``. We take ``scipy.special.erf`` when SciPy is installed and otherwise apply
``math.erf`` element by element; both are correct to double precision, so the exact GELU agrees
with PyTorch's to rounding either way (the element-wise fallback is slower).

Examples
--------
>>> import numpy as np
>>> u = np.array([-1.0, 0.0, 2.0])
>>> activation_forward("relu", u)
array([0., 0., 2.])
>>> np.round(activation_forward("gelu", u), 4)
array([-0.1587,  0.    ,  1.9545])
"""

from __future__ import annotations

import math

import numpy as np

try:  # SciPy's erf is vectorised; math.erf element by element is the exact fallback
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - depends on the environment
    _erf_scalar = np.frompyfunc(math.erf, 1, 1)

    def _erf(x):
        return _erf_scalar(x).astype(x.dtype)


__all__ = ["activation_forward", "activation_backward", "sigmoid", "erf"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, element-wise, in the dtype of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> round(float(erf(np.array([1.0]))[0]), 10)
    0.8427007929
    """
    x = np.asarray(x)
    return np.asarray(_erf(x), dtype=x.dtype)


def sigmoid(u: np.ndarray) -> np.ndarray:
    r"""The logistic function :math:`\sigma(u) = 1/(1 + e^{-u})`, without overflow.

    Examples
    --------
    >>> import numpy as np
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    e = np.exp(-np.abs(u))  # <= 1, never overflows
    return np.where(u >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(u.dtype, copy=False)


def activation_forward(kind: str, u: np.ndarray) -> np.ndarray:
    r"""Apply the activation ``kind`` of eq. :eq:`activations`.

    Parameters
    ----------
    kind : {"relu", "gelu", "gelu_tanh", "swish"}
    u : ndarray

    Returns
    -------
    ndarray, same shape as ``u``

    Examples
    --------
    >>> import numpy as np
    >>> float(activation_forward("swish", np.array([0.0]))[0])
    0.0
    """
    if kind == "relu":
        return np.maximum(u, 0.0)
    if kind == "gelu":
        return 0.5 * u * (1.0 + erf(u * _INV_SQRT_2))  # u Phi(u), eq. (activations)
    if kind == "gelu_tanh":
        k = _SQRT_2_OVER_PI * (u + _GELU_C * (u * u * u))
        return 0.5 * u * (1.0 + np.tanh(k))
    if kind == "swish":
        return u * sigmoid(u)
    raise ValueError(
        f"activation={kind!r} is not element-wise; allowed: relu, gelu, gelu_tanh, swish"
    )


def activation_backward(kind: str, da: np.ndarray, u: np.ndarray) -> np.ndarray:
    r"""Gradient :math:`\delta u = f'(u)\, \delta a` for the activation ``kind``.

    Parameters
    ----------
    kind : {"relu", "gelu", "gelu_tanh", "swish"}
    da : ndarray
        Upstream gradient.
    u : ndarray
        The activation's input.

    Examples
    --------
    The slope of GELU at 0 is :math:`\Phi(0) = 1/2`; of swish, :math:`\sigma(0) = 1/2`:

    >>> import numpy as np
    >>> one, zero = np.ones(1), np.zeros(1)
    >>> [float(activation_backward(k, one, zero)[0]) for k in ("gelu", "gelu_tanh", "swish")]
    [0.5, 0.5, 0.5]
    """
    if kind == "relu":
        return da * (u > 0)
    if kind == "gelu":
        cdf = 0.5 * (1.0 + erf(u * _INV_SQRT_2))
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * u * u)
        return da * (cdf + u * pdf)
    if kind == "gelu_tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (u + _GELU_C * (u * u * u)))
        dk = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * u * u)
        return da * (0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * dk)
    if kind == "swish":
        s = sigmoid(u)
        return da * (s * (1.0 + u * (1.0 - s)))
    raise ValueError(
        f"activation={kind!r} is not element-wise; allowed: relu, gelu, gelu_tanh, swish"
    )

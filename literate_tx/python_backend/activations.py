r"""Element-wise non-linearities of the feed-forward sublayer and their derivatives, in lists.

Derived in :mod:`literate_tx.numpy_backend.activations`, eq. :eq:`activations`: relu, the exact
GELU :math:`u\,\Phi(u)` (here with :func:`math.erf`, element by element), GPT-2's tanh
approximation, and swish :math:`u\,\sigma(u)` (PyTorch's ``silu``, the gate of SwiGLU), each
with its derivative :math:`\delta u = f'(u)\,\delta a`.

Examples
--------
>>> activation_forward("relu", [-1.0, 0.0, 2.0])
[0.0, 0.0, 2.0]
>>> [round(a, 4) for a in activation_forward("gelu", [-1.0, 0.0, 2.0])]
[-0.1587, 0.0, 1.9545]
"""

from __future__ import annotations

import math

from .linear import map_rows, zip_map

__all__ = ["activation_forward", "activation_backward", "sigmoid", "erf"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


def erf(x: list) -> list:
    """The error function, element-wise (:func:`math.erf`).

    Examples
    --------
    >>> [round(v, 10) for v in erf([1.0])]
    [0.8427007929]
    """
    return map_rows(lambda row: [math.erf(v) for v in row], x)


def _sigmoid(u: float) -> float:
    e = math.exp(-abs(u))  # <= 1, never overflows
    return 1.0 / (1.0 + e) if u >= 0 else e / (1.0 + e)


def sigmoid(u: list) -> list:
    r"""The logistic function :math:`\sigma(u) = 1/(1 + e^{-u})`, without overflow.

    Examples
    --------
    >>> sigmoid([-1000.0, 0.0, 1000.0])
    [0.0, 0.5, 1.0]
    """
    return map_rows(lambda row: [_sigmoid(v) for v in row], u)


def activation_forward(kind: str, u: list) -> list:
    r"""Apply the activation ``kind`` of eq. :eq:`activations`.

    Parameters
    ----------
    kind : {"relu", "gelu", "gelu_tanh", "swish"}
    u : nested list

    Returns
    -------
    nested list, same shape as ``u``

    Examples
    --------
    >>> activation_forward("swish", [0.0])
    [0.0]
    """
    if kind == "relu":
        return map_rows(lambda row: [max(v, 0.0) for v in row], u)
    if kind == "gelu":
        return map_rows(lambda row: [0.5 * v * (1.0 + math.erf(v * _INV_SQRT_2)) for v in row], u)
    if kind == "gelu_tanh":
        def gelu_tanh(v: float) -> float:
            k = _SQRT_2_OVER_PI * (v + _GELU_C * (v * v * v))
            return 0.5 * v * (1.0 + math.tanh(k))

        return map_rows(lambda row: [gelu_tanh(v) for v in row], u)
    if kind == "swish":
        return map_rows(lambda row: [v * _sigmoid(v) for v in row], u)
    raise ValueError(
        f"activation={kind!r} is not element-wise; allowed: relu, gelu, gelu_tanh, swish"
    )


def activation_backward(kind: str, da: list, u: list) -> list:
    r"""Gradient :math:`\delta u = f'(u)\, \delta a` for the activation ``kind``.

    Parameters
    ----------
    kind : {"relu", "gelu", "gelu_tanh", "swish"}
    da : nested list
        Upstream gradient.
    u : nested list
        The activation's input.

    Examples
    --------
    The slope of GELU at 0 is :math:`\Phi(0) = 1/2`; of swish, :math:`\sigma(0) = 1/2`:

    >>> [activation_backward(k, [1.0], [0.0])[0] for k in ("gelu", "gelu_tanh", "swish")]
    [0.5, 0.5, 0.5]
    """
    if kind == "relu":
        return zip_map(lambda d, v: d * (v > 0), da, u)
    if kind == "gelu":
        def slope(v: float) -> float:
            cdf = 0.5 * (1.0 + math.erf(v * _INV_SQRT_2))
            pdf = _INV_SQRT_2PI * math.exp(-0.5 * v * v)
            return cdf + v * pdf

        return zip_map(lambda d, v: d * slope(v), da, u)
    if kind == "gelu_tanh":
        def slope(v: float) -> float:
            t = math.tanh(_SQRT_2_OVER_PI * (v + _GELU_C * (v * v * v)))
            dk = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * v * v)
            return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * dk

        return zip_map(lambda d, v: d * slope(v), da, u)
    if kind == "swish":
        def slope(v: float) -> float:
            s = _sigmoid(v)
            return s * (1.0 + v * (1.0 - s))

        return zip_map(lambda d, v: d * slope(v), da, u)
    raise ValueError(
        f"activation={kind!r} is not element-wise; allowed: relu, gelu, gelu_tanh, swish"
    )

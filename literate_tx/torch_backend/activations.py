r"""Element-wise non-linearities of the feed-forward sublayer, from ``torch.nn.functional``.

Definitions and derivatives: :mod:`literate_tx.numpy_backend.activations`
(eq. :eq:`activations`). Each name maps to the PyTorch function computing the same formula:
``relu`` is :func:`torch.nn.functional.relu`; ``gelu`` is the exact, erf-based
:func:`torch.nn.functional.gelu`; ``gelu_tanh`` is ``gelu(approximate="tanh")``, GPT-2's
approximation; ``swish`` is :func:`torch.nn.functional.silu`. Autograd supplies the derivatives.

Examples
--------
>>> import torch
>>> u = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
>>> activation_forward("relu", u).tolist()
[0.0, 0.0, 2.0]
>>> [round(v, 4) for v in activation_forward("gelu", u).tolist()]
[-0.1587, 0.0, 1.9545]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["activation_forward"]


def activation_forward(kind: str, u: torch.Tensor) -> torch.Tensor:
    r"""Apply the activation ``kind`` of eq. :eq:`activations`.

    Parameters
    ----------
    kind : {"relu", "gelu", "gelu_tanh", "swish"}
    u : Tensor

    Returns
    -------
    Tensor, same shape as ``u``

    Examples
    --------
    The tanh approximation stays within about 1e-3 of the exact GELU:

    >>> u = torch.linspace(-4, 4, 81, dtype=torch.float64)
    >>> gap = (activation_forward("gelu", u) - activation_forward("gelu_tanh", u)).abs().max()
    >>> bool(gap < 1e-3), float(activation_forward("swish", torch.zeros(1)))
    (True, 0.0)
    """
    if kind == "relu":
        return F.relu(u)
    if kind == "gelu":
        return F.gelu(u)  # 0.5 u (1 + erf(u / sqrt 2))
    if kind == "gelu_tanh":
        return F.gelu(u, approximate="tanh")  # 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))
    if kind == "swish":
        return F.silu(u)  # u sigmoid(u)
    raise ValueError(
        f"activation={kind!r} is not element-wise; allowed: relu, gelu, gelu_tanh, swish"
    )

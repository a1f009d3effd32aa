r"""The position-wise feed-forward sublayer: an MLP, or the gated SwiGLU.

Forward
-------
The plain MLP widens each position's vector to :math:`F`, applies the activation :math:`f`
(:mod:`~literate_tx.numpy_backend.activations`) and projects back:

.. math::
   :label: mlp-forward

   u = x W_{up} + b_{up}, \qquad a = f(u), \qquad y = a W_{down} + b_{down} .

SwiGLU (Shazeer, 2020; used by Llama) multiplies a swish-activated *gate* with a linear *up*
projection:

.. math::
   :label: swiglu-forward

   \begin{aligned}
   g &= x W_{gate} + b_{gate}, & u &= x W_{up} + b_{up}, \\
   a &= \mathrm{swish}(g) \odot u, & y &= a W_{down} + b_{down} .
   \end{aligned}

Backward
--------
With :math:`\delta a = \delta y\, W_{down}^\top` (eq. :eq:`linear-backward` of the chapter
:doc:`Linear maps </derived/linear>`), the MLP gives :math:`\delta u = f'(u) \odot \delta a`;
SwiGLU's product rule gives

.. math::
   :label: swiglu-backward

   \delta g = \mathrm{swish}'(g) \odot u \odot \delta a, \qquad
   \delta u = \mathrm{swish}(g) \odot \delta a,

and the input gradient sums over the branches: :math:`\delta x = \delta g\, W_{gate}^\top +
\delta u\, W_{up}^\top`.

Examples
--------
>>> import numpy as np
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 2, 1, 1, 3, 4, activation="relu", bias=False)
>>> p = {"w_up": np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]), "w_down": np.ones((3, 2))}
>>> y, _ = feedforward_forward(np.array([[[2.0, 3.0]]]), p, cfg)
>>> y  # relu(2, -2, 3) = (2, 0, 3), summed into both outputs
array([[[5., 5.]]])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import activation_backward, activation_forward, sigmoid
from .linear import LinearCache, linear_backward, linear_forward

__all__ = ["FeedForwardCache", "feedforward_forward", "feedforward_backward"]


class FeedForwardCache(NamedTuple):
    """Pre-activations and linear caches for :func:`feedforward_backward`."""

    activation: str
    lin_gate: LinearCache | None
    lin_up: LinearCache
    lin_down: LinearCache
    g: np.ndarray | None  # (B, T, F), gate pre-activation (SwiGLU only)
    u: np.ndarray  # (B, T, F), up pre-activation


def feedforward_forward(x: np.ndarray, p: dict, cfg) -> tuple[np.ndarray, FeedForwardCache]:
    r"""MLP (eq. :eq:`mlp-forward`) or SwiGLU (eq. :eq:`swiglu-forward`).

    Parameters
    ----------
    x : (B, T, C) ndarray
    p : dict
        ``w_up`` (C, F), ``w_down`` (F, C), ``w_gate`` (C, F) for SwiGLU, and ``b_*`` with bias.
    cfg : ModelConfig

    Returns
    -------
    y : (B, T, C) ndarray
    cache : FeedForwardCache

    Examples
    --------
    SwiGLU with a zero gate is zero: :math:`\mathrm{swish}(0) = 0`.

    >>> import numpy as np
    >>> from literate_tx import ModelConfig
    >>> cfg = ModelConfig(10, 2, 1, 1, 3, 4, activation="swiglu", bias=False)
    >>> p = {"w_gate": np.zeros((2, 3)), "w_up": np.ones((2, 3)), "w_down": np.ones((3, 2))}
    >>> feedforward_forward(np.ones((1, 1, 2)), p, cfg)[0]
    array([[[0., 0.]]])
    """
    lin_gate = g = None
    u, lin_up = linear_forward(x, p["w_up"], p.get("b_up"))  # (B, T, F)
    if cfg.activation == "swiglu":
        g, lin_gate = linear_forward(x, p["w_gate"], p.get("b_gate"))  # (B, T, F)
        a = g * sigmoid(g) * u  # (B, T, F), eq. (swiglu-forward)
    else:
        a = activation_forward(cfg.activation, u)  # (B, T, F), eq. (mlp-forward)
    y, lin_down = linear_forward(a, p["w_down"], p.get("b_down"))  # (B, T, C)
    return y, FeedForwardCache(cfg.activation, lin_gate, lin_up, lin_down, g, u)


def feedforward_backward(dy: np.ndarray, cache: FeedForwardCache) -> tuple[np.ndarray, dict]:
    r"""Gradients of :func:`feedforward_forward`, eq. :eq:`swiglu-backward`.

    Returns
    -------
    dx : (B, T, C) ndarray
    grads : dict
        Same keys as the parameters used.

    Examples
    --------
    >>> import numpy as np
    >>> from literate_tx import ModelConfig
    >>> cfg = ModelConfig(10, 2, 1, 1, 3, 4, activation="relu", bias=False)
    >>> p = {"w_up": np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]), "w_down": np.ones((3, 2))}
    >>> y, cache = feedforward_forward(np.array([[[2.0, 3.0]]]), p, cfg)
    >>> dx, grads = feedforward_backward(np.ones_like(y), cache)
    >>> grads["w_down"]  # = a^T dy with a = (2, 0, 3)
    array([[2., 2.],
           [0., 0.],
           [3., 3.]])
    """
    activation, lin_gate, lin_up, lin_down, g, u = cache
    grads = {}
    da, grads["w_down"], grads["b_down"] = linear_backward(dy, lin_down)  # (B, T, F)
    dx = 0.0
    if activation == "swiglu":
        sg = sigmoid(g)  # (B, T, F)
        du = g * sg * da  # (B, T, F), eq. (swiglu-backward)
        dg = activation_backward("swish", u * da, g)  # (B, T, F)
        dx, grads["w_gate"], grads["b_gate"] = linear_backward(dg, lin_gate)  # (B, T, C)
    else:
        du = activation_backward(activation, da, u)  # (B, T, F)
    dx_up, grads["w_up"], grads["b_up"] = linear_backward(du, lin_up)  # (B, T, C)
    grads = {name: grad for name, grad in grads.items() if grad is not None}
    return dx + dx_up, grads

r"""The position-wise feed-forward sublayer: an MLP, or the gated SwiGLU, in lists.

Derived in :mod:`literate_tx.numpy_backend.feedforward`: the MLP of eq. :eq:`mlp-forward`,
SwiGLU's :math:`\mathrm{swish}(g) \odot u` of eq. :eq:`swiglu-forward` and its product-rule
backward pass, eq. :eq:`swiglu-backward`, whose two branches add up in :math:`\delta x`.

Examples
--------
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 2, 1, 1, 3, 4, activation="relu", bias=False)
>>> p = {"w_up": [[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]], "w_down": [[1.0, 1.0]] * 3}
>>> y, _ = feedforward_forward([[[2.0, 3.0]]], p, cfg)
>>> y  # relu(2, -2, 3) = (2, 0, 3), summed into both outputs
[[[5.0, 5.0]]]
"""

from __future__ import annotations

from operator import add, mul
from typing import NamedTuple

from .activations import activation_backward, activation_forward, sigmoid
from .linear import LinearCache, linear_backward, linear_forward, zip_map

__all__ = ["FeedForwardCache", "feedforward_forward", "feedforward_backward"]


class FeedForwardCache(NamedTuple):
    """Pre-activations and linear caches for :func:`feedforward_backward`."""

    activation: str
    lin_gate: LinearCache | None
    lin_up: LinearCache
    lin_down: LinearCache
    g: list | None  # (B, T, F), gate pre-activation (SwiGLU only)
    u: list  # (B, T, F), up pre-activation


def feedforward_forward(x: list, p: dict, cfg, *, tracer=None) -> tuple[list, FeedForwardCache]:
    r"""MLP (eq. :eq:`mlp-forward`) or SwiGLU (eq. :eq:`swiglu-forward`).

    Parameters
    ----------
    x : (B, T, C) nested list
    p : dict
        ``w_up`` (C, F), ``w_down`` (F, C), ``w_gate`` (C, F) for SwiGLU, and ``b_*`` with bias.
    cfg : ModelConfig
    tracer : Tracer, optional
        Reports each step (see :mod:`~literate_tx.python_backend.trace`).

    Returns
    -------
    y : (B, T, C) nested list
    cache : FeedForwardCache

    Examples
    --------
    SwiGLU with a zero gate is zero: :math:`\mathrm{swish}(0) = 0`.

    >>> from literate_tx import ModelConfig
    >>> cfg = ModelConfig(10, 2, 1, 1, 3, 4, activation="swiglu", bias=False)
    >>> p = {"w_gate": [[0.0] * 3] * 2, "w_up": [[1.0] * 3] * 2, "w_down": [[1.0] * 2] * 3}
    >>> feedforward_forward([[[1.0, 1.0]]], p, cfg)[0]
    [[[0.0, 0.0]]]
    """
    lin_gate = g = None
    u, lin_up = linear_forward(x, p["w_up"], p.get("b_up"))  # (B, T, F)
    if cfg.activation == "swiglu":
        g, lin_gate = linear_forward(x, p["w_gate"], p.get("b_gate"))  # (B, T, F)
        a = zip_map(mul, zip_map(mul, g, sigmoid(g)), u)  # (B, T, F), eq. (swiglu-forward)
    else:
        a = activation_forward(cfg.activation, u)  # (B, T, F), eq. (mlp-forward)
    y, lin_down = linear_forward(a, p["w_down"], p.get("b_down"))  # (B, T, C)
    if tracer:
        tracer("mlp up pre-activation", u, "B T F")
        if g is not None:
            tracer("mlp gate pre-activation", g, "B T F")
        tracer("mlp activation", a, "B T F")
        tracer("mlp output", y, "B T C")
    return y, FeedForwardCache(cfg.activation, lin_gate, lin_up, lin_down, g, u)


def feedforward_backward(dy: list, cache: FeedForwardCache, *,
                         tracer=None) -> tuple[list, dict]:
    r"""Gradients of :func:`feedforward_forward`, eq. :eq:`swiglu-backward`.

    Returns
    -------
    dx : (B, T, C) nested list
    grads : dict
        Same keys as the parameters used.

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> cfg = ModelConfig(10, 2, 1, 1, 3, 4, activation="relu", bias=False)
    >>> p = {"w_up": [[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]], "w_down": [[1.0, 1.0]] * 3}
    >>> y, cache = feedforward_forward([[[2.0, 3.0]]], p, cfg)
    >>> dx, grads = feedforward_backward([[[1.0, 1.0]]], cache)
    >>> grads["w_down"]  # = a^T dy with a = (2, 0, 3)
    [[2.0, 2.0], [0.0, 0.0], [3.0, 3.0]]
    """
    activation, lin_gate, lin_up, lin_down, g, u = cache
    grads = {}
    da, grads["w_down"], grads["b_down"] = linear_backward(dy, lin_down)  # (B, T, F)
    dx = None
    if activation == "swiglu":
        sg = sigmoid(g)  # (B, T, F)
        du = zip_map(mul, zip_map(mul, g, sg), da)  # (B, T, F), eq. (swiglu-backward)
        dg = activation_backward("swish", zip_map(mul, u, da), g)  # (B, T, F)
        dx, grads["w_gate"], grads["b_gate"] = linear_backward(dg, lin_gate)  # (B, T, C)
    else:
        du = activation_backward(activation, da, u)  # (B, T, F)
    if tracer:
        tracer("d mlp activation", da, "B T F")
        tracer("d mlp up pre-activation", du, "B T F")
        if activation == "swiglu":
            tracer("d mlp gate pre-activation", dg, "B T F")
    dx_up, grads["w_up"], grads["b_up"] = linear_backward(du, lin_up)  # (B, T, C)
    grads = {name: grad for name, grad in grads.items() if grad is not None}
    return dx_up if dx is None else zip_map(add, dx, dx_up), grads

r"""The position-wise feed-forward sublayer: an MLP, or the gated SwiGLU.

Derivation: :mod:`literate_tx.numpy_backend.feedforward` (eqs. :eq:`mlp-forward`,
:eq:`swiglu-forward`, :eq:`swiglu-backward`); autograd computes the backward pass.

Examples
--------
>>> import torch
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 2, 1, 1, 3, 4, activation="relu", bias=False)
>>> mlp = FeedForward(cfg)
>>> with torch.no_grad():
...     _ = mlp.w_up.copy_(torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]))
...     _ = mlp.w_down.fill_(1.0)
>>> y, u = mlp(torch.tensor([[[2.0, 3.0]]]))
>>> y.tolist()  # relu(2, -2, 3) = (2, 0, 3), summed into both outputs
[[[5.0, 5.0]]]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import activation_forward
from .linear import linear

__all__ = ["FeedForward"]


class FeedForward(nn.Module):
    r"""MLP or SwiGLU with parameters ``w_gate, b_gate`` (SwiGLU), ``w_up, b_up, w_down, b_down``.

    Parameters
    ----------
    cfg : ModelConfig
    dtype : torch.dtype
    device : torch.device, optional

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> mlp = FeedForward(ModelConfig(10, 8, 1, 2, 16, 8, activation="swiglu", bias=False))
    >>> [(n, tuple(p.shape)) for n, p in mlp.named_parameters()]
    [('w_gate', (8, 16)), ('w_up', (8, 16)), ('w_down', (16, 8))]
    """

    def __init__(self, cfg, *, dtype=torch.float32, device=None):
        super().__init__()
        C, F_ = cfg.d_model, cfg.d_ff
        self.activation = cfg.activation
        shapes = ((("gate", (C, F_)),) if cfg.gated else ()) + (("up", (C, F_)), ("down", (F_, C)))
        for w, shape in shapes:  # canonical order: w_gate, b_gate, w_up, b_up, w_down, b_down
            self.register_parameter(
                f"w_{w}", nn.Parameter(torch.zeros(shape, dtype=dtype, device=device)))
            self.register_parameter(
                f"b_{w}",
                nn.Parameter(torch.zeros(shape[1], dtype=dtype, device=device)) if cfg.bias
                else None)
        if not cfg.gated:
            self.w_gate = self.b_gate = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""MLP (eq. :eq:`mlp-forward`) or SwiGLU (eq. :eq:`swiglu-forward`).

        Parameters
        ----------
        x : (B, T, C) Tensor

        Returns
        -------
        y : (B, T, C) Tensor
        u : (B, T, F) Tensor
            The up projection's pre-activation (the ``mlp.pre_act`` hook).

        Examples
        --------
        SwiGLU with a zero gate is zero: :math:`\mathrm{swish}(0) = 0`.

        >>> from literate_tx import ModelConfig
        >>> mlp = FeedForward(ModelConfig(10, 2, 1, 1, 3, 4, activation="swiglu", bias=False))
        >>> with torch.no_grad():
        ...     _ = mlp.w_up.fill_(1.0); _ = mlp.w_down.fill_(1.0)
        >>> mlp(torch.ones(1, 1, 2))[0].tolist()
        [[[0.0, 0.0]]]
        """
        u = linear(x, self.w_up, self.b_up)  # (B, T, F)
        if self.activation == "swiglu":
            g = linear(x, self.w_gate, self.b_gate)  # (B, T, F)
            a = F.silu(g) * u  # (B, T, F), eq. (swiglu-forward)
        else:
            a = activation_forward(self.activation, u)  # (B, T, F), eq. (mlp-forward)
        y = linear(a, self.w_down, self.b_down)  # (B, T, C)
        return y, u

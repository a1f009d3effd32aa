r"""LayerNorm and RMSNorm over the last axis (the model width :math:`C`), as ``nn.Module``\ s.

Derivations: :mod:`literate_tx.numpy_backend.norms` (eqs. :eq:`ln-forward` to
:eq:`rms-backward`). Both norms here match the NumPy reference exactly: the *biased* variance
(divide by :math:`C`) and :math:`\epsilon` inside the square root. Both are written out, in the
NumPy reference's statements (mean, centred input, variance, reciprocal root, normalised input,
gain and shift), rather than calling ``torch.nn.functional.layer_norm`` or ``rms_norm`` (the
latter only exists from PyTorch 2.4): a reader sees the same equation in every backend. Autograd
computes the backward passes; the one-token decoding step of
:mod:`~literate_tx.torch_backend.fast` calls ``torch.layer_norm`` on these parameters, the same
function fused. The parameters are named ``weight`` (the gain :math:`\gamma`) and ``bias`` (the
shift :math:`\beta`), as in the canonical layout.

Examples
--------
LayerNorm maps any row to zero mean and unit (biased) variance before the gain:

>>> import torch
>>> norm = LayerNorm(4, eps=0.0, dtype=torch.float64)
>>> x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
>>> [round(v, 4) for v in norm(x)[0].tolist()]
[-1.3416, -0.4472, 0.4472, 1.3416]
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LayerNorm", "RMSNorm", "make_norm"]


class LayerNorm(nn.Module):
    r"""LayerNorm over the last axis, eq. :eq:`ln-forward`.

    Parameters
    ----------
    C : int
        Width normalised over.
    eps : float
        Added to the variance inside the square root.
    bias : bool
        Whether there is a shift :math:`\beta`.
    dtype : torch.dtype
    device : torch.device, optional

    Examples
    --------
    Shifting and scaling the input leaves the output unchanged (with ``eps=0``):

    >>> norm = LayerNorm(3, eps=0.0, bias=False, dtype=torch.float64)
    >>> x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    >>> bool(torch.allclose(norm(x), norm(3.0 * x + 7.0)))
    True
    """

    def __init__(self, C: int, eps: float, bias: bool = True, *, dtype=torch.float32,
                 device=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(C, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.zeros(C, dtype=dtype, device=device)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""Normalise each row, eq. :eq:`ln-forward` (biased variance, eps inside the root).

        Half-precision inputs (under autocast) are normalised in float32 and cast back, as in
        :meth:`RMSNorm.forward`.

        Parameters
        ----------
        x : (..., C) Tensor

        Returns
        -------
        (..., C) Tensor

        Examples
        --------
        >>> y = LayerNorm(4, eps=1e-5)(torch.randn(2, 3, 4))
        >>> tuple(y.shape), bool(y.mean(-1).abs().max() < 1e-5)
        ((2, 3, 4), True)
        """
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # (..., C), >= float32
        mu = xf.mean(dim=-1, keepdim=True)  # (..., 1)
        xc = xf - mu  # (..., C)
        var = (xc * xc).mean(dim=-1, keepdim=True)  # (..., 1), biased variance
        rstd = torch.rsqrt(var + self.eps)  # (..., 1)
        x_hat = xc * rstd  # (..., C), eq. (ln-forward)
        y = x_hat * self.weight  # (..., C)
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype)  # (..., C)


class RMSNorm(nn.Module):
    r"""RMSNorm over the last axis, eq. :eq:`rms-forward`.

    Parameters
    ----------
    C : int
    eps : float
    dtype : torch.dtype
    device : torch.device, optional

    Examples
    --------
    A row of equal entries becomes a row of ones (its RMS is its value):

    >>> RMSNorm(4, eps=0.0)(torch.full((1, 4), 3.0)).tolist()
    [[1.0, 1.0, 1.0, 1.0]]
    """

    def __init__(self, C: int, eps: float, *, dtype=torch.float32, device=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(C, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""Divide each row by its root mean square, eq. :eq:`rms-forward`.

        Half-precision inputs (under autocast) are normalised in float32 and cast back.

        Parameters
        ----------
        x : (..., C) Tensor

        Returns
        -------
        (..., C) Tensor

        Examples
        --------
        >>> y = RMSNorm(3, eps=0.0, dtype=torch.float64)(torch.tensor([[1.0, -2.0, 2.0]],
        ...                                                            dtype=torch.float64))
        >>> [round(v, 12) for v in y[0].tolist()]  # RMS of (1, -2, 2) is sqrt(3)
        [0.57735026919, -1.154700538379, 1.154700538379]
        """
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # (..., C), >= float32
        rstd = torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        x_hat = xf * rstd  # (..., C), eq. (rms-forward)
        return (x_hat * self.weight).to(x.dtype)  # (..., C)


def make_norm(cfg, *, dtype=torch.float32, device=None) -> nn.Module:
    r"""The norm ``cfg.norm`` of width ``cfg.d_model``: LayerNorm, RMSNorm or the identity.

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> cfg = ModelConfig(10, 8, 1, 2, 16, 8, norm="rmsnorm")
    >>> [type(make_norm(cfg.replace(norm=n))).__name__ for n in ("layernorm", "rmsnorm", "none")]
    ['LayerNorm', 'RMSNorm', 'Identity']
    >>> [n for n, _ in make_norm(cfg.replace(norm="layernorm", bias=False)).named_parameters()]
    ['weight']
    """
    if cfg.norm == "layernorm":
        return LayerNorm(cfg.d_model, cfg.norm_eps, cfg.bias, dtype=dtype, device=device)
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.d_model, cfg.norm_eps, dtype=dtype, device=device)
    return nn.Identity()

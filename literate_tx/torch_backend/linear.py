r"""The affine map :math:`y = x W + b`, with the weight stored (in, out).

Derivation: :mod:`literate_tx.numpy_backend.linear` (eqs. :eq:`linear-forward`,
:eq:`linear-backward`); autograd computes the backward pass here. The weight is stored
``(in, out)`` like the canonical layout (and GPT-2's Conv1D), not ``(out, in)`` like
``torch.nn.Linear``, so that importing and exporting parameters is a plain copy.

Examples
--------
>>> import torch
>>> x = torch.tensor([[1.0, 2.0]])
>>> w = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
>>> linear(x, w, torch.tensor([0.0, 0.0, 10.0])).tolist()
[[1.0, 2.0, 13.0]]
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["linear", "Linear"]


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    r"""Compute :math:`y = x W + b`, eq. :eq:`linear-forward`.

    Parameters
    ----------
    x : (..., n) Tensor
    w : (n, m) Tensor
    b : (m,) Tensor or None

    Returns
    -------
    y : (..., m) Tensor

    Examples
    --------
    >>> y = linear(torch.ones(2, 3, 4), torch.ones(4, 5))
    >>> tuple(y.shape), float(y[0, 0, 0])
    ((2, 3, 5), 4.0)
    """
    if b is None:
        return x @ w  # (..., m), eq. (linear-forward)
    # x W + b as one BLAS call (GEMM with beta = 1), the leading axes flattened into rows: no
    # separate pass for the bias, 3-4 % of a training step (medium preset, 2-core CPU)
    return torch.addmm(b, x.reshape(-1, x.shape[-1]), w).view(*x.shape[:-1], w.shape[1])


class Linear(nn.Module):
    r"""A linear map with parameters ``w`` (in, out) and, with ``bias=True``, ``b`` (out,).

    Parameters
    ----------
    n_in, n_out : int
    bias : bool
    dtype : torch.dtype
    device : torch.device, optional

    Examples
    --------
    >>> head = Linear(4, 10, bias=False)
    >>> [(name, tuple(p.shape)) for name, p in head.named_parameters()]
    [('w', (4, 10))]
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True, *, dtype=torch.float32,
                 device=None):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n_in, n_out, dtype=dtype, device=device))
        self.b = nn.Parameter(torch.zeros(n_out, dtype=dtype, device=device)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""Apply eq. :eq:`linear-forward`.

        Parameters
        ----------
        x : (..., n_in) Tensor

        Returns
        -------
        (..., n_out) Tensor

        Examples
        --------
        >>> lin = Linear(2, 3)
        >>> tuple(lin(torch.ones(5, 2)).shape)
        (5, 3)
        """
        return linear(x, self.w, self.b)  # (..., n_out)

r"""Token embedding, plus an absolute position signal where the config asks for one.

Derivation: :mod:`literate_tx.numpy_backend.embedding` (eqs. :eq:`embed-forward`,
:eq:`embed-backward`). Here the lookup is :func:`torch.nn.functional.embedding` and autograd
performs the scatter-add of eq. :eq:`embed-backward`. The embedding dropout lives in this module
(its name, ``embed.dropout``, is the name of its mask).

Examples
--------
A token that appears twice collects both gradients:

>>> import torch
>>> from literate_tx import ModelConfig
>>> emb = Embedding(ModelConfig(3, 2, 1, 1, 4, 4, position="none"))
>>> emb(torch.tensor([[2, 0, 2]])).sum().backward()
>>> emb.tokens.grad.tolist()
[[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout
from .positions import sinusoidal_table

__all__ = ["Embedding"]


class Embedding(nn.Module):
    r"""Token table ``tokens`` (V, C), learned ``positions`` (T_max, C) if asked, then dropout.

    Parameters
    ----------
    cfg : ModelConfig
    dtype : torch.dtype
    device : torch.device, optional

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> emb = Embedding(ModelConfig(10, 8, 1, 2, 16, 4, position="learned"))
    >>> [(n, tuple(p.shape)) for n, p in emb.named_parameters()]
    [('tokens', (10, 8)), ('positions', (4, 8))]
    """

    def __init__(self, cfg, *, dtype=torch.float32, device=None):
        super().__init__()
        self.position = cfg.position
        self.tokens = nn.Parameter(
            torch.zeros(cfg.vocab_size, cfg.d_model, dtype=dtype, device=device))
        self.positions = None
        if cfg.position == "learned":
            self.positions = nn.Parameter(
                torch.zeros(cfg.max_seq_len, cfg.d_model, dtype=dtype, device=device))
        self.dropout = Dropout(cfg.dropout)

    def forward(self, tokens: torch.Tensor, masks: Mapping[str, torch.Tensor] | None = None,
                offset: int = 0) -> torch.Tensor:
        r"""Look up token rows, add position rows, apply dropout; eq. :eq:`embed-forward`.

        Parameters
        ----------
        tokens : (B, T) int Tensor
        masks : mapping, optional
            Explicit dropout masks, local names (``"dropout"``); see
            :mod:`~literate_tx.torch_backend.dropout`.
        offset : int
            Position of the first token (incremental decoding).

        Returns
        -------
        h : (B, T, C) Tensor

        Examples
        --------
        >>> from literate_tx import ModelConfig
        >>> emb = Embedding(ModelConfig(2, 2, 1, 1, 4, 2, position="learned"))
        >>> with torch.no_grad():
        ...     _ = emb.tokens.copy_(torch.eye(2)); _ = emb.positions.copy_(10 * torch.eye(2))
        >>> emb(torch.tensor([[1, 0]])).tolist()
        [[[10.0, 1.0], [1.0, 10.0]]]
        """
        T = tokens.shape[1]
        h = F.embedding(tokens, self.tokens)  # (B, T, C)
        if self.positions is not None:
            h = h + self.positions[offset : offset + T]  # (B, T, C), eq. (embed-forward)
        elif self.position == "sinusoidal":
            C = self.tokens.shape[1]
            h = h + sinusoidal_table(T, C, h.dtype, offset, h.device)  # (B, T, C)
        return self.dropout(h, masks, "dropout")  # (B, T, C)

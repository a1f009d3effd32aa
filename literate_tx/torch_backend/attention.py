r"""Causal multi-head self-attention, batched over heads, with RoPE or ALiBi where chosen.

Derivation: :mod:`literate_tx.numpy_backend.attention` (eqs. :eq:`attn-qkv` to
:eq:`attn-backward`, and incremental decoding). Autograd computes the backward pass.

Two paths compute the same function:

* **explicit** — the scores, the causal mask, the softmax and the weighted sum written out as in
  the NumPy reference. It can return the attention weights (B, H, T, T) and apply an explicit
  attention-dropout mask.
* **sdpa** — :func:`torch.nn.functional.scaled_dot_product_attention`, which may dispatch to a
  fused kernel (flash or memory-efficient attention on a GPU). RoPE is applied to ``q`` and ``k``
  before the call; the causal mask is ``is_causal=True`` when no other mask is needed, and
  otherwise passed as ``attn_mask``: a boolean mask with a key/value cache, or a float mask
  holding the ALiBi bias with :math:`-\infty` on future keys. PyTorch's own attention dropout is
  its ``dropout_p``.

:class:`Attention` takes the fast path when it is allowed to (``impl="sdpa"``), the weights are
not requested and no explicit attention-dropout mask is given; it falls back to the explicit
path otherwise. The tests prove the two paths equal.

Examples
--------
With all-zero projections every score is equal, so the causal weights are uniform over the past:

>>> import torch
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 4, 1, 1, 8, 8, bias=False, position="none")
>>> attn = Attention(cfg, dtype=torch.float64)
>>> out, kv, att = attn(torch.ones(1, 3, 4, dtype=torch.float64), need_weights=True)
>>> [[round(a, 4) for a in row] for row in att[0, 0].tolist()]
[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.3333, 0.3333, 0.3333]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout
from .linear import linear
from .positions import alibi_bias, apply_rope, rope_tables

__all__ = ["ATTENTION_IMPLS", "KVCache", "Attention", "split_heads", "merge_heads",
           "causal_visible"]

ATTENTION_IMPLS = ("sdpa", "explicit")


class KVCache(NamedTuple):
    """Keys and values of past positions for one layer (after RoPE); a plain ``(k, v)`` tuple."""

    k: torch.Tensor  # (B, H, T_past, D)
    v: torch.Tensor  # (B, H, T_past, D)


def split_heads(x: torch.Tensor, H: int) -> torch.Tensor:
    """(B, T, C) -> (B, H, T, D), a view.

    Examples
    --------
    >>> tuple(split_heads(torch.zeros(2, 5, 12), 3).shape)
    (2, 3, 5, 4)
    """
    B, T, C = x.shape
    return x.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, D)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """(B, H, T, D) -> (B, T, C), the inverse of :func:`split_heads`.

    Examples
    --------
    >>> x = torch.arange(24.0).reshape(1, 2, 12)
    >>> bool((merge_heads(split_heads(x, 3)) == x).all())
    True
    """
    B, H, T, D = y.shape
    return y.transpose(1, 2).reshape(B, T, H * D)  # (B, T, C)


def causal_visible(T: int, T_past: int = 0, device=None) -> torch.Tensor:
    """Causal visibility: query ``i``, at position ``T_past + i``, sees keys ``j <= T_past + i``.

    Returns
    -------
    (T, T_past + T) bool Tensor

    Examples
    --------
    >>> causal_visible(2, T_past=1).int().tolist()
    [[1, 1, 0], [1, 1, 1]]
    """
    T_k = T_past + T
    j = torch.arange(T_k, device=device)[None, :]  # (1, T_k)
    i = torch.arange(T_past, T_k, device=device)[:, None]  # (T, 1)
    return j <= i  # (T, T_k)


class Attention(nn.Module):
    r"""Causal multi-head self-attention with parameters ``w_q, b_q, ..., w_o, b_o``.

    Parameters
    ----------
    cfg : ModelConfig
    impl : {"sdpa", "explicit"}
        Preferred path (see the module docstring); "sdpa" falls back to "explicit" per call
        when the weights or an explicit attention-dropout mask are needed.
    dtype : torch.dtype
    device : torch.device, optional

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> attn = Attention(ModelConfig(10, 8, 1, 2, 16, 8))
    >>> [n for n, _ in attn.named_parameters()]
    ['w_q', 'b_q', 'w_k', 'b_k', 'w_v', 'b_v', 'w_o', 'b_o']
    """

    def __init__(self, cfg, impl: str = "sdpa", *, dtype=torch.float32, device=None):
        super().__init__()
        if impl not in ATTENTION_IMPLS:
            raise ValueError(
                f"attention={impl!r} is not supported; allowed: "
                f"{', '.join(map(repr, ATTENTION_IMPLS))}"
            )
        C = cfg.d_model
        self.impl = impl
        self.n_heads = cfg.n_heads
        self.position = cfg.position
        self.rope_theta = cfg.rope_theta
        for w in ("q", "k", "v", "o"):  # canonical order: w_q, b_q, w_k, b_k, ...
            self.register_parameter(
                f"w_{w}", nn.Parameter(torch.zeros(C, C, dtype=dtype, device=device)))
            self.register_parameter(
                f"b_{w}",
                nn.Parameter(torch.zeros(C, dtype=dtype, device=device)) if cfg.bias else None)
        self.weights_dropout = Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        *,
        masks: Mapping[str, torch.Tensor] | None = None,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, KVCache, torch.Tensor | None]:
        r"""Causal multi-head self-attention, eqs. :eq:`attn-qkv` to :eq:`attn-out`.

        Parameters
        ----------
        x : (B, T, C) Tensor
        masks : mapping, optional
            Explicit dropout masks with local names (``weights_dropout``, (B, H, T, T)); see
            :mod:`~literate_tx.torch_backend.dropout`.
        past : (k, v) of (B, H, T_past, D) Tensors, optional
            Keys and values of earlier positions (incremental decoding).
        need_weights : bool
            Return the attention weights (forces the explicit path).

        Returns
        -------
        out : (B, T, C) Tensor
        kv : KVCache
            Keys and values including the past, (B, H, T_past + T, D): the next step's ``past``.
        att : (B, H, T, T_past + T) Tensor or None
            The softmax weights before dropout, when ``need_weights``.

        Examples
        --------
        >>> from literate_tx import ModelConfig
        >>> attn = Attention(ModelConfig(10, 8, 1, 2, 16, 8, position="alibi"))
        >>> out, kv, att = attn(torch.randn(3, 5, 8), need_weights=True)
        >>> tuple(out.shape), tuple(kv.k.shape), bool(torch.allclose(att.sum(-1), torch.ones(1)))
        ((3, 5, 8), (3, 2, 5, 4), True)
        """
        B, T, C = x.shape
        H = self.n_heads
        D = C // H
        T_past = 0 if past is None else past[0].shape[2]
        q = split_heads(linear(x, self.w_q, self.b_q), H)  # (B, H, T, D), eq. (attn-qkv)
        k = split_heads(linear(x, self.w_k, self.b_k), H)  # (B, H, T, D)
        v = split_heads(linear(x, self.w_v, self.b_v), H)  # (B, H, T, D)
        if self.position == "rope":
            cos, sin = rope_tables(T, D, self.rope_theta, q.dtype, T_past, q.device)  # (T, D)
            q = apply_rope(q, cos, sin)  # (B, H, T, D)
            k = apply_rope(k, cos, sin)  # (B, H, T, D)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, T_past + T, D)
            v = torch.cat([past[1], v], dim=2)  # (B, H, T_past + T, D)
        explicit_mask = masks is not None and "weights_dropout" in masks
        if self.impl == "explicit" or need_weights or explicit_mask:
            y, att = self._explicit(q, k, v, T_past, masks)  # (B, H, T, D)
        else:
            y, att = self._sdpa(q, k, v, T_past, masks), None  # (B, H, T, D)
        out = linear(merge_heads(y), self.w_o, self.b_o)  # (B, T, C), eq. (attn-out)
        return out, KVCache(k, v), (att if need_weights else None)

    def _scores_bias(self, T: int, T_past: int, dtype, device) -> torch.Tensor | None:
        """ALiBi's additive bias (H, T, T_k), or None for the other position schemes."""
        if self.position != "alibi":
            return None
        return alibi_bias(self.n_heads, T, T_past + T, dtype, T_past, device)  # (H, T, T_k)

    def _explicit(self, q, k, v, T_past: int, masks):
        """Scores, causal mask, softmax and weighted sum written out, eqs. (attn-scores, -out)."""
        T, D = q.shape[2], q.shape[3]
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))  # (B, H, T, T_k), eq. (attn-scores)
        bias = self._scores_bias(T, T_past, s.dtype, s.device)
        if bias is not None:
            s = s + bias  # (H, T, T_k) broadcast over B
        visible = causal_visible(T, T_past, s.device)  # (T, T_k) causal
        s = s.masked_fill(~visible, float("-inf"))  # (B, H, T, T_k)
        att = torch.softmax(s, dim=-1)  # (B, H, T, T_k), eq. (attn-out)
        att_dropped = self.weights_dropout(att, masks, "weights_dropout")  # (B, H, T, T_k)
        return att_dropped @ v, att  # (B, H, T, D), (B, H, T, T_k)

    def _sdpa(self, q, k, v, T_past: int, masks):
        """The same function through ``scaled_dot_product_attention``; RoPE is already applied."""
        T = q.shape[2]
        p = self.weights_dropout.p if (self.training and masks is None) else 0.0
        bias = self._scores_bias(T, T_past, q.dtype, q.device)
        if bias is None and T_past == 0:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        visible = causal_visible(T, T_past, q.device)  # (T, T_k)
        if bias is None:
            mask = visible  # (T, T_k), True = attend
        else:
            mask = bias.masked_fill(~visible, float("-inf"))  # (H, T, T_k), ALiBi + causal
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, D)

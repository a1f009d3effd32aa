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

The three projections :math:`W_q, W_k, W_v` are kept as three canonical parameters but applied
as one (C, 3C) product, their weights concatenated on the fly (as nanoGPT's ``c_attn`` and the
NumPy speed path do): one GEMM instead of three, forward and backward, 1.5x faster for the
projections of a 2,048-token batch; autograd splits the gradient back into the three.

:class:`Attention` takes the fast path when it is allowed to (``impl="sdpa"``), the weights are
not requested and no explicit attention-dropout mask is given; it falls back to the explicit
path otherwise. The tests prove the two paths equal.

The key/value cache (:class:`KVCache`) is the NumPy reference's: buffers for ``max_seq_len``
positions, written in place one decoding step at a time, never concatenated.

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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout
from .linear import linear
from .positions import alibi_bias, apply_rope, rope_tables

__all__ = ["ATTENTION_IMPLS", "KVStorage", "KVCache", "Attention", "split_heads",
           "merge_heads", "causal_visible"]

ATTENTION_IMPLS = ("sdpa", "explicit")


class KVStorage:
    """Buffers with room for ``capacity`` positions of one layer's keys and values.

    ``k`` and ``v`` are allocated by the first write, in its dtype and on its device;
    ``filled`` counts the positions written so far. Shared by the successive
    :class:`KVCache` of one decoding run.
    """

    __slots__ = ("capacity", "k", "v", "filled")

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.k: torch.Tensor | None = None  # (B, H, capacity, D)
        self.v: torch.Tensor | None = None  # (B, H, capacity, D)
        self.filled = 0


@dataclass(frozen=True)
class KVCache:
    r"""Keys and values (after RoPE) of the first ``length`` positions of one layer.

    It unpacks like the pair ``k, v = cache``: two (B, H, length, D) views of a
    :class:`KVStorage`. A decoding step adds T positions with :meth:`append`, which writes them
    in place, at ``length``: O(T) work per step, where ``torch.cat`` would copy the whole past
    (O(length) per step, O(T^2) for a generation). See :mod:`literate_tx.numpy_backend.attention`,
    "Incremental decoding". Because the writes are in place, autograd can differentiate through
    a cache only until its next :meth:`append` (decoding runs under ``torch.inference_mode``).

    Examples
    --------
    >>> kv = KVCache.empty(8).append(torch.ones(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
    >>> kv = kv.append(torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))
    >>> k, v = kv
    >>> kv.length, tuple(k.shape), tuple(kv.storage.k.shape), v[0, 0, :, 0].tolist()
    (4, (1, 2, 4, 4), (1, 2, 8, 4), [0.0, 0.0, 0.0, 1.0])
    """

    storage: KVStorage
    length: int

    @classmethod
    def empty(cls, capacity: int) -> KVCache:
        """A cache of no positions, with room for ``capacity`` (the model's ``max_seq_len``)."""
        return cls(KVStorage(capacity), 0)

    @classmethod
    def from_pair(cls, k: torch.Tensor, v: torch.Tensor, capacity: int) -> KVCache:
        """A cache holding a copy of the (B, H, T, D) keys ``k`` and values ``v``."""
        return cls.empty(max(capacity, k.shape[2])).append(k, v)

    @property
    def k(self) -> torch.Tensor:
        """The keys, (B, H, length, D): a view of the storage."""
        return self.storage.k[:, :, : self.length]  # (B, H, T_past, D)

    @property
    def v(self) -> torch.Tensor:
        """The values, (B, H, length, D): a view of the storage."""
        return self.storage.v[:, :, : self.length]  # (B, H, T_past, D)

    def __iter__(self):
        return iter((self.k, self.v))

    def append(self, k: torch.Tensor, v: torch.Tensor) -> KVCache:
        r"""The cache of ``length + T`` positions: this one followed by ``k, v`` (B, H, T, D).

        Positions below ``length`` are never written, so every cache returned earlier keeps its
        values. Two cases copy the filled positions to fresh storage instead of writing in
        place: the storage already holds more than ``length`` positions (this cache was
        extended before: a second continuation of the same past must not overwrite the first),
        or it has no room for ``length + T``.

        Examples
        --------
        >>> one = torch.ones(1, 1, 1, 2)
        >>> past = KVCache.empty(4).append(one, one)
        >>> a, b = past.append(2 * one, 2 * one), past.append(3 * one, 3 * one)
        >>> a.k[0, 0, :, 0].tolist(), b.k[0, 0, :, 0].tolist()
        ([1.0, 2.0], [1.0, 3.0])
        """
        s, n, T = self.storage, self.length, k.shape[2]
        shared = s.filled != n  # another cache already wrote positions >= n of this storage
        full = n + T > s.capacity
        frozen = (s.k is not None and s.k.is_inference()
                  and not torch.is_inference_mode_enabled())  # writable in inference_mode only
        if shared or full or frozen:
            s = KVStorage(max(s.capacity, n + T))
        if s.k is None:
            B, H, _, D = k.shape
            s.k = k.new_empty(B, H, s.capacity, D)  # (B, H, T_max, D)
            s.v = v.new_empty(B, H, s.capacity, D)  # (B, H, T_max, D)
            if n:
                s.k[:, :, :n] = self.k  # (B, H, T_past, D): the past, copied once
                s.v[:, :, :n] = self.v
        s.k[:, :, n : n + T] = k  # (B, H, T, D), written in place, eq. (attn-kv-cache)
        s.v[:, :, n : n + T] = v  # (B, H, T, D)
        s.filled = n + T
        return KVCache(s, n + T)


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
        past: KVCache | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, KVCache | None, torch.Tensor | None]:
        r"""Causal multi-head self-attention, eqs. :eq:`attn-qkv` to :eq:`attn-out`.

        Parameters
        ----------
        x : (B, T, C) Tensor
        masks : mapping, optional
            Explicit dropout masks with local names (``weights_dropout``, (B, H, T, T)); see
            :mod:`~literate_tx.torch_backend.dropout`.
        past : KVCache, optional
            Keys and values of the T_past earlier positions (incremental decoding; an empty
            cache, ``KVCache.empty(max_seq_len)``, for the first call).
            This call's keys and values are appended to it.
        need_weights : bool
            Return the attention weights (forces the explicit path).

        Returns
        -------
        out : (B, T, C) Tensor
        kv : KVCache or None
            With ``past``: the keys and values including the past, T_past + T positions, the
            next step's ``past``. Without: None.
        att : (B, H, T, T_past + T) Tensor or None
            The softmax weights before dropout, when ``need_weights``.

        Examples
        --------
        >>> from literate_tx import ModelConfig
        >>> attn = Attention(ModelConfig(10, 8, 1, 2, 16, 8, position="alibi"))
        >>> out, kv, att = attn(torch.randn(3, 5, 8), past=KVCache.empty(8), need_weights=True)
        >>> tuple(out.shape), tuple(kv.k.shape), bool(torch.allclose(att.sum(-1), torch.ones(1)))
        ((3, 5, 8), (3, 2, 5, 4), True)
        """
        B, T, C = x.shape
        H = self.n_heads
        D = C // H
        T_past = 0 if past is None else past.length
        # eq. (attn-qkv) as one product with the three weights side by side, (C, 3C): one GEMM
        # instead of three, forward and backward (autograd splits the gradient of the cat)
        w_qkv = torch.cat([self.w_q, self.w_k, self.w_v], dim=1)  # (C, 3C)
        b_qkv = None if self.b_q is None else torch.cat([self.b_q, self.b_k, self.b_v])  # (3C,)
        q, k, v = (split_heads(t, H) for t in linear(x, w_qkv, b_qkv).split(C, dim=-1))
        # q, k, v: (B, H, T, D) views
        if self.position == "rope":
            cos, sin = rope_tables(T, D, self.rope_theta, q.dtype, T_past, q.device)  # (T, D)
            q = apply_rope(q, cos, sin)  # (B, H, T, D)
            k = apply_rope(k, cos, sin)  # (B, H, T, D)
        kv = None
        if past is not None:
            kv = past.append(k, v)  # written in place after the past, not concatenated
            k, v = kv.k, kv.v  # (B, H, T_past + T, D)
        explicit_mask = masks is not None and "weights_dropout" in masks
        if self.impl == "explicit" or need_weights or explicit_mask:
            y, att = self._explicit(q, k, v, T_past, masks)  # (B, H, T, D)
        else:
            y, att = self._sdpa(q, k, v, T_past, masks), None  # (B, H, T, D)
        out = linear(merge_heads(y), self.w_o, self.b_o)  # (B, T, C), eq. (attn-out)
        return out, kv, (att if need_weights else None)

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
        if T > 1:  # a single query is the newest position: it sees every key, nothing to mask
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
        if T == 1:  # a single query is the newest position: it sees every key, nothing to mask
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        if bias is None and T_past == 0:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        visible = causal_visible(T, T_past, q.device)  # (T, T_k)
        if bias is None:
            mask = visible  # (T, T_k), True = attend
        else:
            mask = bias.masked_fill(~visible, float("-inf"))  # (H, T, T_k), ALiBi + causal
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, D)

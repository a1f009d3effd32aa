r"""Causal multi-head self-attention, batched over heads, with RoPE or ALiBi where chosen.

Derivation: :mod:`literate_tx.numpy_backend.attention` (eqs. :eq:`attn-qkv` to
:eq:`attn-backward`, incremental decoding, and grouped-query attention, eqs. :eq:`attn-gqa` and
:eq:`attn-gqa-backward`). Autograd computes the backward pass; for grouped-query attention it
differentiates :func:`repeat_kv` into the sum over each key/value head's query heads.

:meth:`Attention.forward` is the NumPy reference's
:func:`~literate_tx.numpy_backend.attention.attention_forward` statement for statement: the
projections, the head split, RoPE, the cache, the repetition of the key/value heads, the scores,
the causal mask (the same comparison of key and query positions), the softmax, the dropout, the
weighted sum and the output projection, in that order; and it returns the same pair, the output
and an :class:`AttentionCache` with ``att`` and ``kv`` fields.

**The one exception** is the projections. :math:`W_q, W_k, W_v` stay three canonical
parameters, but are applied as one product with the weights side by side, (C, C + 2GD) ((C, 3C)
without grouped-query attention), as nanoGPT's ``c_attn`` and the NumPy speed path do; autograd
splits the gradient back into the three. Why: one GEMM instead of three, forward and backward,
is 1.5x faster for the projections of a 2,048-token batch, and brought the PyTorch backend's
training step level with nanoGPT's on the same configuration (:doc:`/benchmarks`: with three
products, each bias added in a pass of its own, it was 2-3 % slower).

One step has a second form: from the scores to the weighted sum, ``impl="sdpa"`` calls
:func:`torch.nn.functional.scaled_dot_product_attention` instead, which may dispatch to a fused
kernel (flash or memory-efficient attention on a GPU) and never stores the (B, H, T, T) weights.
Its causal mask is ``is_causal=True`` when no other mask is needed, and otherwise passed as
``attn_mask``: a boolean mask with a key/value cache, or a float mask holding the ALiBi bias with
:math:`-\infty` on future keys; PyTorch's own attention dropout is its ``dropout_p``. That form is
taken when it is allowed to (``impl="sdpa"``), the weights are not requested and no explicit
attention-dropout mask is given; the tests prove the two forms equal.

The key/value cache (:class:`KVCache`) is the NumPy reference's: buffers of the :math:`G`
key/value heads for ``max_seq_len`` positions, written in place one decoding step at a time,
never concatenated.

Examples
--------
With all-zero projections every score is equal, so the causal weights are uniform over the past:

>>> import torch
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 4, 1, 1, 8, 8, bias=False, position="none")
>>> attn = Attention(cfg, dtype=torch.float64)
>>> out, cache = attn(torch.ones(1, 3, 4, dtype=torch.float64), need_weights=True)
>>> [[round(a, 4) for a in row] for row in cache.att[0, 0].tolist()]
[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.3333, 0.3333, 0.3333]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout
from .linear import linear
from .positions import alibi_bias, apply_rope, rope_tables

__all__ = ["ATTENTION_IMPLS", "KVStorage", "KVCache", "AttentionCache", "Attention",
           "split_heads", "merge_heads", "repeat_kv", "causal_visible"]

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
        self.k: torch.Tensor | None = None  # (B, G, capacity, D), G = n_kv_heads
        self.v: torch.Tensor | None = None  # (B, G, capacity, D)
        self.filled = 0


@dataclass(frozen=True)
class KVCache:
    r"""Keys and values (after RoPE) of the first ``length`` positions of one layer.

    It unpacks like the pair ``k, v = cache``: two (B, G, length, D) views of a
    :class:`KVStorage`, with ``G = n_kv_heads`` key/value heads. A decoding step adds T
    positions with :meth:`append`, which writes them in place, at ``length``: O(T) work per step,
    where ``torch.cat`` would copy the whole past (O(length) per step, O(T^2) for a generation).
    See :mod:`literate_tx.numpy_backend.attention`, "Incremental decoding". Because the writes
    are in place, autograd can differentiate through a cache only until its next :meth:`append`
    (decoding runs under ``torch.inference_mode``).

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
        """A cache holding a copy of the (B, G, T, D) keys ``k`` and values ``v``."""
        return cls.empty(max(capacity, k.shape[2])).append(k, v)

    @property
    def k(self) -> torch.Tensor:
        """The keys, (B, G, length, D): a view of the storage."""
        return self.storage.k[:, :, : self.length]  # (B, G, T_past, D)

    @property
    def v(self) -> torch.Tensor:
        """The values, (B, G, length, D): a view of the storage."""
        return self.storage.v[:, :, : self.length]  # (B, G, T_past, D)

    def __iter__(self):
        return iter((self.k, self.v))

    def append(self, k: torch.Tensor, v: torch.Tensor) -> KVCache:
        r"""The cache of ``length + T`` positions: this one followed by ``k, v`` (B, G, T, D).

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
            B, G, _, D = k.shape
            s.k = k.new_empty(B, G, s.capacity, D)  # (B, G, T_max, D)
            s.v = v.new_empty(B, G, s.capacity, D)  # (B, G, T_max, D)
            if n:
                s.k[:, :, :n] = self.k  # (B, G, T_past, D): the past, copied once
                s.v[:, :, :n] = self.v
        s.k[:, :, n : n + T] = k  # (B, G, T, D), written in place, eq. (attn-kv-cache)
        s.v[:, :, n : n + T] = v  # (B, G, T, D)
        s.filled = n + T
        return KVCache(s, n + T)


class AttentionCache(NamedTuple):
    r"""What :meth:`Attention.forward` returns besides its output, as the other backends do.

    The NumPy and pure-Python caches also keep what their hand-written backward needs; here
    autograd keeps that, and the cache holds the two fields every backend shares.

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> out, cache = Attention(ModelConfig(10, 8, 1, 2, 16, 8))(torch.ones(1, 3, 8))
    >>> cache.att is None, cache.kv is None  # the fused form, no cache asked for
    (True, True)
    """

    att: torch.Tensor | None  # (B, H, T, T_past + T), softmax weights before dropout
    kv: KVCache | None  # with ``past``: the keys and values including this call's


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


def repeat_kv(x: torch.Tensor, H: int) -> torch.Tensor:
    r"""(B, G, T, D) -> (B, H, T, D): query head ``h`` gets key/value head ``h // R``.

    Eq. :eq:`attn-gqa`, Llama's ``repeat_kv``; with ``G = H`` it returns ``x`` itself. Autograd
    turns the repetition into the sum of eq. :eq:`attn-gqa-backward`.

    Examples
    --------
    >>> k = torch.arange(2.0).reshape(1, 2, 1, 1)  # G = 2 heads holding 0 and 1
    >>> repeat_kv(k, 4)[0, :, 0, 0].tolist()
    [0.0, 0.0, 1.0, 1.0]
    """
    G = x.shape[1]
    return x if G == H else x.repeat_interleave(H // G, dim=1)  # (B, H, T, D)


def causal_visible(T: int, T_past: int = 0, device=None) -> torch.Tensor:
    """Causal visibility: query ``i``, at position ``T_past + i``, sees keys ``j <= T_past + i``.

    The comparison :meth:`Attention.forward` writes out, for the ``sdpa`` form's masks.

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

    ``w_q, w_o`` are (C, C), ``w_k, w_v`` (C, G D) with ``G = cfg.kv_heads`` key/value heads.

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
    >>> tuple(Attention(ModelConfig(10, 8, 1, 2, 16, 8, n_kv_heads=1)).w_k.shape)
    (8, 4)
    """

    def __init__(self, cfg, impl: str = "sdpa", *, dtype=torch.float32, device=None):
        super().__init__()
        if impl not in ATTENTION_IMPLS:
            raise ValueError(
                f"attention={impl!r} is not supported; allowed: "
                f"{', '.join(map(repr, ATTENTION_IMPLS))}"
            )
        C, kv = cfg.d_model, cfg.kv_heads * cfg.d_head  # kv = G D
        self.impl = impl
        self.n_heads = cfg.n_heads
        self.n_kv_heads = cfg.kv_heads
        self.position = cfg.position
        self.rope_theta = cfg.rope_theta
        self.rope_scaling = cfg.rope_scaling
        for w, width in (("q", C), ("k", kv), ("v", kv), ("o", C)):  # canonical order
            self.register_parameter(
                f"w_{w}", nn.Parameter(torch.zeros(C, width, dtype=dtype, device=device)))
            self.register_parameter(
                f"b_{w}",
                nn.Parameter(torch.zeros(width, dtype=dtype, device=device)) if cfg.bias else None)
        self.weights_dropout = Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        *,
        masks: Mapping[str, torch.Tensor] | None = None,
        past: KVCache | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, AttentionCache]:
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
            Compute the attention weights (forces the written-out form).

        Returns
        -------
        out : (B, T, C) Tensor
        cache : AttentionCache
            ``cache.att``: the softmax weights before dropout, (B, H, T, T_past + T), when the
            written-out form ran (always with ``need_weights``), else None. ``cache.kv``: with
            ``past``, the :class:`KVCache` of T_past + T positions of the G key/value heads, the
            next step's ``past``; without, None.

        Examples
        --------
        >>> from literate_tx import ModelConfig
        >>> attn = Attention(ModelConfig(10, 8, 1, 2, 16, 8, position="alibi", n_kv_heads=1))
        >>> out, cache = attn(torch.randn(3, 5, 8), past=KVCache.empty(8), need_weights=True)
        >>> tuple(out.shape), tuple(cache.kv.k.shape), tuple(cache.att.shape)
        ((3, 5, 8), (3, 1, 5, 4), (3, 2, 5, 5))
        >>> bool(torch.allclose(cache.att.sum(-1), torch.ones(1)))
        True
        """
        B, T, C = x.shape
        H, G, D = self.n_heads, self.n_kv_heads, C // self.n_heads
        T_past = 0 if past is None else past.length
        # eq. (attn-qkv) as one product, the weights side by side: the one exception to the
        # reference's statements (the module docstring says why)
        w_qkv = torch.cat([self.w_q, self.w_k, self.w_v], dim=1)  # (C, C + 2 G D)
        b_qkv = None if self.b_q is None else torch.cat([self.b_q, self.b_k, self.b_v])
        q, k, v = linear(x, w_qkv, b_qkv).split([C, G * D, G * D], dim=-1)  # (B, T, C|G D)
        q, k, v = split_heads(q, H), split_heads(k, G), split_heads(v, G)  # (B, H|G, T, D)
        if self.position == "rope":
            cos, sin = rope_tables(T, D, self.rope_theta, x.dtype, T_past, x.device,
                                   self.rope_scaling)  # (T, D)
            q = apply_rope(q, cos, sin)  # (B, H, T, D)
            k = apply_rope(k, cos, sin)  # (B, G, T, D)
        kv = None
        if past is not None:
            kv = past.append(k, v)  # written in place after the past, eq. (attn-kv-cache)
            k, v = kv.k, kv.v  # (B, G, T_past + T, D)
        T_k = T_past + T
        k_h, v_h = repeat_kv(k, H), repeat_kv(v, H)  # (B, H, T_k, D), eq. (attn-gqa)
        att = None
        if self.impl == "explicit" or need_weights or (masks is not None
                                                       and "weights_dropout" in masks):
            s = (q @ k_h.transpose(-2, -1)) * (1.0 / math.sqrt(D))  # (B, H, T, T_k), (attn-scores)
            if self.position == "alibi":
                s = s + alibi_bias(H, T, T_k, s.dtype, T_past, s.device)  # (H, T, T_k) over B
            if T > 1:  # a single query is the newest position: it sees every key, nothing to mask
                visible = (torch.arange(T_k, device=s.device)[None, :]
                           <= torch.arange(T_past, T_k, device=s.device)[:, None])  # (T, T_k)
                s = torch.where(visible, s, float("-inf"))  # (B, H, T, T_k), causal
            att = torch.softmax(s, dim=-1)  # (B, H, T, T_k), eq. (attn-out)
            att_dropped = self.weights_dropout(att, masks, "weights_dropout")  # (B, H, T, T_k)
            y = merge_heads(att_dropped @ v_h)  # (B, H, T, D) -> (B, T, C)
        else:  # the same function in one call (see the module docstring)
            y = merge_heads(self._sdpa(q, k_h, v_h, T_past, masks))  # (B, T, C)
        out = linear(y, self.w_o, self.b_o)  # (B, T, C)
        return out, AttentionCache(att, kv)

    def _sdpa(self, q, k, v, T_past: int, masks):
        """Scores to weighted sum through ``scaled_dot_product_attention``; (B, H, T, D)."""
        T = q.shape[2]
        p = self.weights_dropout.p if (self.training and masks is None) else 0.0
        bias = None
        if self.position == "alibi":
            bias = alibi_bias(self.n_heads, T, T_past + T, q.dtype, T_past, q.device)  # (H, T, T_k)
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

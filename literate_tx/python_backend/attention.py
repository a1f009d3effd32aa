r"""Causal multi-head self-attention, one head at a time, with RoPE or ALiBi where chosen.

Derived in :mod:`literate_tx.numpy_backend.attention`: the projections and head split of eq.
:eq:`attn-qkv`, the scaled, biased and causally masked scores of eq. :eq:`attn-scores`, the
softmax weights and output projection of eq. :eq:`attn-out`, the backward pass of eq.
:eq:`attn-backward` and incremental decoding with a key/value cache, eq. :eq:`attn-kv-cache`. The
NumPy version is batched over heads; here every (batch, head) pair is a Python loop over small
matrices, which is exactly the picture of eq. :eq:`attn-scores`.

With grouped-query attention (``n_kv_heads = G < H``, eqs. :eq:`attn-gqa` and
:eq:`attn-gqa-backward`) the keys and values are split into :math:`G` heads, query head
:math:`h` reads key/value head :math:`h // R` (:func:`repeat_kv` repeats the references to the
rows, not the floats), and the backward adds the :math:`R` query heads' gradients of a shared
head (:func:`sum_kv_groups`).

The key/value cache (:class:`KVCache`) is the NumPy reference's, of the :math:`G` key/value
heads: for every (batch, head) a list with room for ``max_seq_len`` rows, written in place one
decoding step at a time, never concatenated. Lists have no views, so reading the filled prefix
builds new lists of the same row objects (references are copied, floats are not); a row, once
written, is never changed.

Examples
--------
With all-zero projections every score is equal, so the causal weights are uniform over the past:

>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 4, 1, 1, 8, 8, bias=False, position="none")
>>> p = {n: [[0.0] * 4 for _ in range(4)] for n in ("w_q", "w_k", "w_v", "w_o")}
>>> out, cache = attention_forward([[[1.0] * 4] * 3], p, cfg)
>>> cache.att[0][0]
[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.3333333333333333, 0.3333333333333333, 0.3333333333333333]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce
from itertools import chain
from operator import add, mul
from typing import NamedTuple

from .linear import LinearCache, linear_backward, linear_forward, matmul_t, transpose, zip_map
from .positions import alibi_bias, apply_rope, rope_backward, rope_tables
from .softmax import softmax_backward, softmax_forward

__all__ = ["AttentionCache", "KVStorage", "KVCache", "attention_forward", "attention_backward",
           "split_heads", "merge_heads", "repeat_kv", "sum_kv_groups"]


class KVStorage:
    """Buffers with room for ``capacity`` positions of one layer's keys and values.

    ``k`` and ``v`` are allocated by the first write, in its batch and head counts: a list of
    ``capacity`` row slots per (batch, head), ``None`` until written; ``filled`` counts the
    positions written so far. Shared by the successive :class:`KVCache` of one decoding run.
    """

    __slots__ = ("capacity", "k", "v", "filled")

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.k: list | None = None  # (B, G, capacity, D), G = n_kv_heads
        self.v: list | None = None  # (B, G, capacity, D)
        self.filled = 0


def _write(buffer: list, x: list, start: int) -> None:
    """Put the (B, G, T, D) rows of ``x`` into the (B, G, capacity, D) ``buffer`` at ``start``."""
    for buffer_b, x_b in zip(buffer, x, strict=True):
        for buffer_bh, x_bh in zip(buffer_b, x_b, strict=True):
            buffer_bh[start : start + len(x_bh)] = x_bh  # same length: the slots are replaced


@dataclass(frozen=True)
class KVCache:
    r"""Keys and values (after RoPE) of the first ``length`` positions of one layer.

    It unpacks like the pair ``k, v = cache``: two (B, G, length, D) nested lists, the filled
    prefix of a :class:`KVStorage`, with ``G = n_kv_heads`` key/value heads. A decoding step
    adds T positions with :meth:`append`, eq. :eq:`attn-kv-cache`: it writes T rows per (batch,
    head), where concatenation would build new lists of the whole past.

    Examples
    --------
    >>> ones, zeros = [[[[1.0] * 4] * 3] * 2], [[[[0.0] * 4] * 3] * 2]  # (1, 2, 3, 4) each
    >>> kv = KVCache.empty(8).append(ones, zeros)
    >>> kv = kv.append([[[[1.0] * 4]] * 2], [[[[1.0] * 4]] * 2])  # (1, 2, 1, 4) each
    >>> k, v = kv
    >>> kv.length, len(k[0][0]), len(kv.storage.k[0][0]), [row[0] for row in v[0][0]]
    (4, 4, 8, [0.0, 0.0, 0.0, 1.0])
    """

    storage: KVStorage
    length: int

    @classmethod
    def empty(cls, capacity: int) -> KVCache:
        """A cache of no positions, with room for ``capacity`` (the model's ``max_seq_len``)."""
        return cls(KVStorage(capacity), 0)

    @classmethod
    def from_pair(cls, k: list, v: list, capacity: int) -> KVCache:
        """A cache holding a copy of the (B, G, T, D) keys ``k`` and values ``v``.

        The copy is of the lists that hold the rows; the rows themselves are shared, and the
        cache never changes them.
        """
        return cls.empty(max(capacity, len(k[0][0]))).append(k, v)

    @property
    def k(self) -> list:
        """The keys, (B, G, length, D): new lists of the storage's first ``length`` rows."""
        return [[k_bh[: self.length] for k_bh in k_b]
                for k_b in self.storage.k]  # (B, G, T_past, D)

    @property
    def v(self) -> list:
        """The values, (B, G, length, D): new lists of the storage's first ``length`` rows."""
        return [[v_bh[: self.length] for v_bh in v_b]
                for v_b in self.storage.v]  # (B, G, T_past, D)

    def __iter__(self):
        return iter((self.k, self.v))

    def append(self, k: list, v: list) -> KVCache:
        r"""The cache of ``length + T`` positions: this one followed by ``k, v`` (B, G, T, D).

        Positions below ``length`` are never written, so every cache returned earlier keeps its
        values. Two cases copy the filled positions to fresh storage instead of writing in
        place: the storage already holds more than ``length`` positions (this cache was
        extended before: a second continuation of the same past must not overwrite the first),
        or it has no room for ``length + T``.

        Examples
        --------
        >>> one, two, three = ([[[[x, x]]]] for x in (1.0, 2.0, 3.0))  # (1, 1, 1, 2) each
        >>> past = KVCache.empty(4).append(one, one)
        >>> a, b = past.append(two, two), past.append(three, three)
        >>> [row[0] for row in a.k[0][0]], [row[0] for row in b.k[0][0]]
        ([1.0, 2.0], [1.0, 3.0])
        """
        s, n, T = self.storage, self.length, len(k[0][0])
        shared = s.filled != n  # another cache already wrote positions >= n of this storage
        full = n + T > s.capacity
        if shared or full:
            s = KVStorage(max(s.capacity, n + T))
        if s.k is None:
            B, G = len(k), len(k[0])
            s.k = [[[None] * s.capacity for _ in range(G)] for _ in range(B)]  # (B, G, T_max, D)
            s.v = [[[None] * s.capacity for _ in range(G)] for _ in range(B)]  # (B, G, T_max, D)
            if n:
                _write(s.k, self.k, 0)  # (B, G, T_past, D): the past, copied once
                _write(s.v, self.v, 0)
        _write(s.k, k, n)  # (B, G, T, D), written in place, eq. (attn-kv-cache)
        _write(s.v, v, n)  # (B, G, T, D)
        s.filled = n + T
        return KVCache(s, n + T)


class AttentionCache(NamedTuple):
    """What :func:`attention_backward` needs."""

    lin_q: LinearCache
    lin_k: LinearCache
    lin_v: LinearCache
    lin_o: LinearCache
    q: list  # (B, H, T, D), after RoPE
    k: list  # (B, G, T, D), after RoPE: the G = n_kv_heads key heads, not repeated
    v: list  # (B, G, T, D)
    att: list  # (B, H, T, T), softmax weights before dropout
    att_dropped: list  # (B, H, T, T), weights after dropout
    weights_mask: list | None  # (B, H, T, T)
    rope: tuple[list, list] | None  # cos, sin: (T, D)
    kv: KVCache | None = None  # with ``past``: the keys and values including this call's


def split_heads(x: list, H: int) -> list:
    """(B, T, C) -> (B, H, T, D): head ``h`` takes columns ``h*D .. (h+1)*D - 1``.

    Examples
    --------
    >>> y = split_heads([[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]], 3)
    >>> y
    [[[[0.0, 1.0]], [[2.0, 3.0]], [[4.0, 5.0]]]]
    """
    D = len(x[0][0]) // H
    return [[[row[h * D : (h + 1) * D] for row in x_b] for h in range(H)]
            for x_b in x]  # (B, H, T, D)


def repeat_kv(x: list, H: int) -> list:
    """(B, G, T, D) -> (B, H, T, D): query head ``h`` gets key/value head ``h // R``.

    Eq. :eq:`attn-gqa`. The head lists are repeated by reference (no float is copied); with
    ``G = H``, ``x`` itself.

    Examples
    --------
    >>> repeat_kv([[[[0.0]], [[1.0]]]], 4)  # G = 2 heads holding 0 and 1
    [[[[0.0]], [[0.0]], [[1.0]], [[1.0]]]]
    """
    G = len(x[0])
    R = H // G
    return x if G == H else [[x_b[h // R] for h in range(H)] for x_b in x]  # (B, H, T, D)


def sum_kv_groups(dx: list, G: int) -> list:
    r"""(B, H, T, D) -> (B, G, T, D): key/value head :math:`\nu` sums its R query heads' gradients.

    The backward of :func:`repeat_kv`, eq. :eq:`attn-gqa-backward`.

    Examples
    --------
    >>> sum_kv_groups([[[[1.0]], [[2.0]], [[10.0]], [[20.0]]]], 2)  # H = 4 query heads
    [[[[3.0]], [[30.0]]]]
    """
    H = len(dx[0])
    R = H // G
    if G == H:
        return dx
    return [[reduce(lambda a, b: zip_map(add, a, b), dx_b[nu * R : (nu + 1) * R])
             for nu in range(G)]
            for dx_b in dx]  # (B, G, T, D)


def merge_heads(y: list) -> list:
    """(B, H, T, D) -> (B, T, C), the inverse of :func:`split_heads`.

    Examples
    --------
    >>> x = [[[float(i) for i in range(12)], [float(i) for i in range(12, 24)]]]
    >>> merge_heads(split_heads(x, 3)) == x
    True
    """
    return [[list(chain.from_iterable(rows_t)) for rows_t in zip(*y_b, strict=True)]
            for y_b in y]  # (B, T, C)


def attention_forward(
    x: list,
    p: dict,
    cfg,
    *,
    weights_mask: list | None = None,
    past: KVCache | None = None,
    tracer=None,
) -> tuple[list, AttentionCache]:
    r"""Causal multi-head self-attention, eqs. :eq:`attn-qkv` to :eq:`attn-out`.

    Parameters
    ----------
    x : (B, T, C) nested list
    p : dict
        ``w_q, w_o`` of shape (C, C), ``w_k, w_v`` of shape (C, G D) with ``G = cfg.kv_heads``
        and, with ``cfg.bias``, ``b_q, b_k, b_v, b_o``.
    cfg : ModelConfig
    weights_mask : (B, H, T, T) nested list, optional
        Attention-dropout mask (training).
    past : KVCache, optional
        Keys and values of the T_past earlier positions (incremental decoding; no backward
        then). This call's keys and values are appended to it (an empty cache,
        ``KVCache.empty(max_seq_len)``, for the first call).
    tracer : Tracer, optional
        Reports each step (see :mod:`~literate_tx.python_backend.trace`).

    Returns
    -------
    out : (B, T, C) nested list
    cache : AttentionCache
        ``cache.att`` holds the attention weights (B, H, T, T_past + T); with ``past``,
        ``cache.kv`` is the :class:`KVCache` of T_past + T positions, the next step's ``past``.

    Examples
    --------
    >>> from literate_tx import ModelConfig, init_params
    >>> cfg = ModelConfig(10, 8, 1, 2, 16, 8)
    >>> params = init_params(cfg, seed=0, dtype="float64")
    >>> p = {k.split(".")[-1]: v.tolist() for k, v in params.items()
    ...      if k.startswith("blocks.0.attn.")}
    >>> out, cache = attention_forward([[[1.0] * 8] * 5] * 3, p, cfg)
    >>> len(out), len(out[0]), len(out[0][0]), len(cache.att[0]), len(cache.att[0][0][0])
    (3, 5, 8, 2, 5)
    >>> all(abs(sum(row) - 1.0) < 1e-12 for b in cache.att for h in b for row in h)
    True
    """
    T = len(x[0])
    H, G, D = cfg.n_heads, cfg.kv_heads, cfg.d_head
    T_past = 0 if past is None else past.length
    q, lin_q = linear_forward(x, p["w_q"], p.get("b_q"))  # (B, T, C), eq. (attn-qkv)
    k, lin_k = linear_forward(x, p["w_k"], p.get("b_k"))  # (B, T, G D)
    v, lin_v = linear_forward(x, p["w_v"], p.get("b_v"))  # (B, T, G D)
    q, k, v = split_heads(q, H), split_heads(k, G), split_heads(v, G)  # (B, H|G, T, D)
    rope = None
    if cfg.position == "rope":
        rope = rope_tables(T, D, cfg.rope_theta, offset=T_past,
                           scaling=cfg.rope_scaling)  # (T, D) each
        q = apply_rope(q, *rope)  # (B, H, T, D)
        k = apply_rope(k, *rope)  # (B, G, T, D)
    kv = None
    if past is not None:
        kv = past.append(k, v)  # written in place after the past, eq. (attn-kv-cache)
        k, v = kv.k, kv.v  # (B, G, T_past + T, D)
    if tracer:
        tracer("queries", q, "B H T D")
        tracer("keys", k, "B G T D" if G != H else "B H T D")
        tracer("values", v, "B G T D" if G != H else "B H T D")
    T_k = T_past + T
    k_h, v_h = repeat_kv(k, H), repeat_kv(v, H)  # (B, H, T_k, D), eq. (attn-gqa)
    scale = 1.0 / math.sqrt(D)
    s = [[[[dot * scale for dot in row] for row in matmul_t(q_bh, k_bh)]  # (T, T_k)
          for q_bh, k_bh in zip(q_b, k_b, strict=True)]
         for q_b, k_b in zip(q, k_h, strict=True)]  # (B, H, T, T_k), eq. (attn-scores)
    if cfg.position == "alibi":
        s = [zip_map(add, s_b, alibi_bias(H, T, T_k, offset=T_past)) for s_b in s]  # (B, H, T, T_k)
    if T > 1:  # a single query is the newest position: it sees every key, nothing to mask
        s = [[[[s_ij if j <= T_past + i else -math.inf for j, s_ij in enumerate(row)]  # causal
               for i, row in enumerate(s_bh)]
              for s_bh in s_b]
             for s_b in s]  # (B, H, T, T_k)
    att = softmax_forward(s)  # (B, H, T, T_k), eq. (attn-out)
    att_dropped = att if weights_mask is None else zip_map(mul, att, weights_mask)  # (B, H, T, T_k)
    y = merge_heads([[matmul_t(a_bh, transpose(v_bh)) for a_bh, v_bh in zip(a_b, v_b, strict=True)]
                     for a_b, v_b in zip(att_dropped, v_h, strict=True)])  # (B, T, C)
    out, lin_o = linear_forward(y, p["w_o"], p.get("b_o"))  # (B, T, C)
    if tracer:
        tracer("attention scores", s, "B H T T")
        tracer("attention weights", att, "B H T T")
        if weights_mask is not None:
            tracer("attention weights after dropout", att_dropped, "B H T T")
        tracer("heads merged", y, "B T C")
        tracer("attention output", out, "B T C")
    cache = AttentionCache(lin_q, lin_k, lin_v, lin_o, q, k, v, att, att_dropped, weights_mask,
                           rope, kv)
    return out, cache


def attention_backward(dout: list, cache: AttentionCache, *, tracer=None) -> tuple[list, dict]:
    r"""Gradients of :func:`attention_forward`, eq. :eq:`attn-backward`.

    Parameters
    ----------
    dout : (B, T, C) nested list
    cache : AttentionCache
    tracer : Tracer, optional

    Returns
    -------
    dx : (B, T, C) nested list
    grads : dict
        ``w_q .. w_o`` and, with biases, ``b_q .. b_o``.

    Examples
    --------
    Causality in the backward pass: the gradient of the first output reaches the first input only.

    >>> import numpy as np
    >>> from literate_tx import ModelConfig, init_params
    >>> cfg = ModelConfig(10, 4, 1, 2, 8, 8, init_std=1.0)
    >>> params = init_params(cfg, seed=1, dtype="float64")
    >>> p = {k.split(".")[-1]: v.tolist() for k, v in params.items()
    ...      if k.startswith("blocks.0.attn.")}
    >>> x = np.random.default_rng(0).normal(size=(1, 3, 4)).tolist()
    >>> out, cache = attention_forward(x, p, cfg)
    >>> dout = [[[1.0] * 4, [0.0] * 4, [0.0] * 4]]
    >>> dx, grads = attention_backward(dout, cache)
    >>> max(abs(v) for row in dx[0][1:] for v in row) == 0.0, sorted(grads)
    (True, ['b_k', 'b_o', 'b_q', 'b_v', 'w_k', 'w_o', 'w_q', 'w_v'])
    """
    lin_q, lin_k, lin_v, lin_o, q, k, v, att, att_dropped, weights_mask, rope, _ = cache
    H, G, D = len(q[0]), len(k[0]), len(q[0][0][0])
    k_h, v_h = repeat_kv(k, H), repeat_kv(v, H)  # (B, H, T, D), eq. (attn-gqa)
    grads = {}
    dy, grads["w_o"], grads["b_o"] = linear_backward(dout, lin_o)  # (B, T, C)
    dy = split_heads(dy, H)  # (B, H, T, D), split
    dv_h = [[matmul_t(transpose(a_bh), transpose(dy_bh))
             for a_bh, dy_bh in zip(a_b, dy_b, strict=True)]
            for a_b, dy_b in zip(att_dropped, dy, strict=True)]  # (B, H, T, D), eq. (attn-backward)
    datt = [[matmul_t(dy_bh, v_bh) for dy_bh, v_bh in zip(dy_b, v_b, strict=True)]
            for dy_b, v_b in zip(dy, v_h, strict=True)]  # (B, H, T, T)
    if weights_mask is not None:
        datt = zip_map(mul, datt, weights_mask)
    scale = 1.0 / math.sqrt(D)
    ds = [[[[g * scale for g in row] for row in ds_bh] for ds_bh in ds_b]
          for ds_b in softmax_backward(datt, att)]  # (B, H, T, T)
    dq = [[matmul_t(ds_bh, transpose(k_bh)) for ds_bh, k_bh in zip(ds_b, k_b, strict=True)]
          for ds_b, k_b in zip(ds, k_h, strict=True)]  # (B, H, T, D)
    dk_h = [[matmul_t(transpose(ds_bh), transpose(q_bh))
             for ds_bh, q_bh in zip(ds_b, q_b, strict=True)]
            for ds_b, q_b in zip(ds, q, strict=True)]  # (B, H, T, D)
    dk = sum_kv_groups(dk_h, G)  # (B, G, T, D), eq. (attn-gqa-backward)
    dv = sum_kv_groups(dv_h, G)  # (B, G, T, D)
    if rope is not None:
        dq = rope_backward(dq, *rope)  # undo the rotation, eq. (rope-backward)
        dk = rope_backward(dk, *rope)
    if tracer:
        tracer("d heads merged", dy, "B H T D")
        tracer("d attention weights", datt, "B H T T")
        tracer("d attention scores", ds, "B H T T")
        tracer("d queries", dq, "B H T D")
        tracer("d keys", dk, "B G T D" if G != H else "B H T D")
        tracer("d values", dv, "B G T D" if G != H else "B H T D")
    dx_q, grads["w_q"], grads["b_q"] = linear_backward(merge_heads(dq), lin_q)  # (B, T, C)
    dx_k, grads["w_k"], grads["b_k"] = linear_backward(merge_heads(dk), lin_k)  # (B, T, C)
    dx_v, grads["w_v"], grads["b_v"] = linear_backward(merge_heads(dv), lin_v)  # (B, T, C)
    grads = {name: g for name, g in grads.items() if g is not None}
    return zip_map(add, zip_map(add, dx_q, dx_k), dx_v), grads

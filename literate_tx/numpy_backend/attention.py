r"""Causal multi-head self-attention, batched over heads, with RoPE or ALiBi where chosen.

Forward
-------
For the input :math:`x \in \mathbb{R}^{B \times T \times C}` and :math:`H` heads of width
:math:`D = C/H`:

.. math::
   :label: attn-qkv

   q = x W_q + b_q, \quad k = x W_k + b_k, \quad v = x W_v + b_v
   \qquad (B, T, C) \to (B, H, T, D),

where the last step splits the width into heads and moves the head axis forward. With RoPE the
queries and keys are rotated by their positions
(:func:`~literate_tx.numpy_backend.positions.apply_rope`). Each query scores every key, scaled so
that scores of unit-variance vectors have unit variance:

.. math::
   :label: attn-scores

   s_{hij} = \frac{q_{hi} \cdot k_{hj}}{\sqrt D} - \kappa_h\,(i - j), \qquad
   s_{hij} = -\infty \text{ for } j > i \ \text{(causal mask)},

with :math:`\kappa_h` the ALiBi slope of head :math:`h` (eq. :eq:`alibi`; :math:`\kappa_h = 0`
without ALiBi). The weights and the output:

.. math::
   :label: attn-out

   a_{hi\cdot} = \mathrm{softmax}(s_{hi\cdot}), \qquad
   y_{hi} = \sum_j (a \odot m)_{hij}\, v_{hj}, \qquad
   o = \mathrm{merge}(y)\, W_o + b_o,

where :math:`m` is the attention-dropout mask (all ones in evaluation) and ``merge`` undoes the
head split, :math:`(B, H, T, D) \to (B, T, C)`.

Backward
--------
Walking the same steps in reverse, with :math:`\delta` denoting
:math:`\partial\mathcal{L}/\partial\cdot`:

.. math::
   :label: attn-backward

   \begin{aligned}
   \delta y &= \mathrm{split}(\delta o\, W_o^\top), &
   \delta v &= (a \odot m)^\top \delta y, &
   \delta a &= (\delta y\, v^\top) \odot m, \\
   \delta s &= a \odot \big(\delta a - \textstyle\sum_j a_{\cdot j}\, \delta a_{\cdot j}\big), &
   \delta q &= \tfrac{1}{\sqrt D}\, \delta s\, k, &
   \delta k &= \tfrac{1}{\sqrt D}\, \delta s^\top q,
   \end{aligned}

where the code's ``ds`` is :math:`\delta s / \sqrt D`, the factor both products share
(``dq = ds @ k``, ``dk = ds.T @ q``); followed by the inverse RoPE rotation of
:math:`\delta q, \delta k` and the linear backward (eq. :eq:`linear-backward` of the chapter
:doc:`Linear maps </derived/linear>`) for the three projections, whose input gradients add up:
:math:`\delta x = \delta q W_q^\top + \delta k W_k^\top + \delta v W_v^\top`. Masked entries have
:math:`a = 0`, so their :math:`\delta s` is zero: no gradient flows to the future.

Incremental decoding
--------------------
With a key/value cache of :math:`T_p` past positions, the new queries sit at positions
:math:`T_p, \dots, T_p + T - 1` and attend to all :math:`T_p + T` keys; query :math:`i` sees key
:math:`j` iff :math:`j \le T_p + i`. RoPE and ALiBi use the absolute positions, so the result
equals the matching rows of a full recomputation. A single new query (:math:`T = 1`, the usual
decoding step) is the newest position and sees every key: it needs no mask at all.

The keys and values of one position never change once computed (the causal mask keeps later
tokens out of them), so the cache only grows. Concatenating each step's keys to the past would
copy all :math:`T_p` positions at every step, :math:`O(T^2)` copying for a generation of
:math:`T` tokens; :class:`KVCache` instead keeps them in buffers with room for ``max_seq_len``
positions, allocated once, and a step writes only its own :math:`T` positions, at index
:math:`T_p`:

.. math::
   :label: attn-kv-cache

   K_{:, :, T_p : T_p + T} \leftarrow k, \qquad V_{:, :, T_p : T_p + T} \leftarrow v, \qquad
   T_p \leftarrow T_p + T,

and attention reads the filled prefix :math:`K_{:, :, : T_p + T}` (a view, no copy).

Grouped-query attention
-----------------------
With ``n_kv_heads = G`` key/value heads, a divisor of :math:`H`, the key and value projections
are :math:`W_k, W_v \in \mathbb{R}^{C \times G D}` and split into :math:`G` heads, while the queries
keep :math:`H`. The :math:`R = H/G` consecutive query heads of group :math:`\nu` share its key and
value head (the grouping of Llama's ``repeat_kv``): query head :math:`h` reads key/value head
:math:`\nu(h) = \lfloor h/R \rfloor`. Writing the repetition as its own step,

.. math::
   :label: attn-gqa

   \tilde k_h = k_{\nu(h)}, \quad \tilde v_h = v_{\nu(h)} \qquad (B, G, T, D) \to (B, H, T, D),

eqs. :eq:`attn-scores` and :eq:`attn-out` hold unchanged with :math:`\tilde k, \tilde v` in place
of :math:`k, v`, and :math:`G = H` (the default) is ordinary multi-head attention. RoPE rotates
each key head by its position alone, so it may act before or after the repetition; it acts
before, on :math:`G` heads. The key/value cache stores :math:`k, v` (:math:`G` heads), not the
repeated copies: that is what makes a decoding step read :math:`R` times fewer bytes.

Backward: eq. :eq:`attn-backward` gives :math:`\delta\tilde k_h, \delta\tilde v_h` for every query
head. Key head :math:`\nu` enters the loss through the :math:`R` query heads of its group, each a
copy of it, so by the chain rule (the Jacobian of a copy is the identity) its gradient is the sum
of theirs:

.. math::
   :label: attn-gqa-backward

   \delta k_\nu = \sum_{h:\, \nu(h) = \nu} \delta\tilde k_h
   = \sum_{h=\nu R}^{\nu R + R - 1} \delta\tilde k_h,
   \qquad
   \delta v_\nu = \sum_{h=\nu R}^{\nu R + R - 1} \delta\tilde v_h
   \qquad (B, H, T, D) \to (B, G, T, D),

before the inverse RoPE rotation of :math:`\delta k` and the linear backward of the
:math:`(C, G D)` projections. In code the repetition is ``np.repeat`` along the head axis and
the sum is a reshape to :math:`(B, G, R, T, D)` followed by a sum over :math:`R`
(:func:`repeat_kv`, :func:`sum_kv_groups`).

Examples
--------
With all-zero projections every score is equal, so the causal weights are uniform over the past:

>>> import numpy as np
>>> from literate_tx import ModelConfig
>>> cfg = ModelConfig(10, 4, 1, 1, 8, 8, bias=False, position="none")
>>> p = {n: np.zeros((4, 4)) for n in ("w_q", "w_k", "w_v", "w_o")}
>>> out, cache = attention_forward(np.ones((1, 3, 4)), p, cfg)
>>> cache.att[0, 0]
array([[1.        , 0.        , 0.        ],
       [0.5       , 0.5       , 0.        ],
       [0.33333333, 0.33333333, 0.33333333]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .linear import LinearCache, linear_backward, linear_forward
from .positions import alibi_bias, apply_rope, rope_backward, rope_tables
from .softmax import softmax_backward, softmax_forward

__all__ = ["AttentionCache", "KVStorage", "KVCache", "attention_forward", "attention_backward",
           "split_heads", "merge_heads", "repeat_kv", "sum_kv_groups"]


class KVStorage:
    """Buffers with room for ``capacity`` positions of one layer's keys and values.

    ``k`` and ``v`` are allocated by the first write, in its dtype; ``filled`` counts the
    positions written so far. Shared by the successive :class:`KVCache` of one decoding run.
    """

    __slots__ = ("capacity", "k", "v", "filled")

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.k: np.ndarray | None = None  # (B, G, capacity, D), G = n_kv_heads
        self.v: np.ndarray | None = None  # (B, G, capacity, D)
        self.filled = 0


@dataclass(frozen=True)
class KVCache:
    r"""Keys and values (after RoPE) of the first ``length`` positions of one layer.

    It unpacks like the pair ``k, v = cache``: two (B, G, length, D) views of a
    :class:`KVStorage`, with ``G = n_kv_heads`` (``n_heads`` by default): the key/value heads, not
    their repetition to the query heads, eq. :eq:`attn-gqa`. A decoding step adds T positions
    with :meth:`append`, eq. :eq:`attn-kv-cache`: O(T) work per step, where concatenation would
    copy the whole past.

    Examples
    --------
    >>> import numpy as np
    >>> kv = KVCache.empty(8).append(np.ones((1, 2, 3, 4)), np.zeros((1, 2, 3, 4)))
    >>> kv = kv.append(np.ones((1, 2, 1, 4)), np.ones((1, 2, 1, 4)))
    >>> k, v = kv
    >>> kv.length, k.shape, kv.storage.k.shape, v[0, 0, :, 0]
    (4, (1, 2, 4, 4), (1, 2, 8, 4), array([0., 0., 0., 1.]))
    """

    storage: KVStorage
    length: int

    @classmethod
    def empty(cls, capacity: int) -> KVCache:
        """A cache of no positions, with room for ``capacity`` (the model's ``max_seq_len``)."""
        return cls(KVStorage(capacity), 0)

    @classmethod
    def from_pair(cls, k: np.ndarray, v: np.ndarray, capacity: int) -> KVCache:
        """A cache holding a copy of the (B, G, T, D) keys ``k`` and values ``v``."""
        return cls.empty(max(capacity, k.shape[2])).append(k, v)

    @property
    def k(self) -> np.ndarray:
        """The keys, (B, G, length, D): a view of the storage."""
        return self.storage.k[:, :, : self.length]  # (B, G, T_past, D)

    @property
    def v(self) -> np.ndarray:
        """The values, (B, G, length, D): a view of the storage."""
        return self.storage.v[:, :, : self.length]  # (B, G, T_past, D)

    def __iter__(self):
        return iter((self.k, self.v))

    def append(self, k: np.ndarray, v: np.ndarray) -> KVCache:
        r"""The cache of ``length + T`` positions: this one followed by ``k, v`` (B, G, T, D).

        Positions below ``length`` are never written, so every cache returned earlier keeps its
        values. Two cases copy the filled positions to fresh storage instead of writing in
        place: the storage already holds more than ``length`` positions (this cache was
        extended before: a second continuation of the same past must not overwrite the first),
        or it has no room for ``length + T``.

        Examples
        --------
        >>> import numpy as np
        >>> one = np.ones((1, 1, 1, 2))
        >>> past = KVCache.empty(4).append(one, one)
        >>> a, b = past.append(2 * one, 2 * one), past.append(3 * one, 3 * one)
        >>> a.k[0, 0, :, 0], b.k[0, 0, :, 0]
        (array([1., 2.]), array([1., 3.]))
        """
        s, n, T = self.storage, self.length, k.shape[2]
        shared = s.filled != n  # another cache already wrote positions >= n of this storage
        full = n + T > s.capacity
        if shared or full:
            s = KVStorage(max(s.capacity, n + T))
        if s.k is None:
            B, G, _, D = k.shape
            s.k = np.empty((B, G, s.capacity, D), dtype=k.dtype)  # (B, G, T_max, D)
            s.v = np.empty((B, G, s.capacity, D), dtype=v.dtype)  # (B, G, T_max, D)
            if n:
                s.k[:, :, :n] = self.k  # (B, G, T_past, D): the past, copied once
                s.v[:, :, :n] = self.v
        s.k[:, :, n : n + T] = k  # (B, G, T, D), written in place, eq. (attn-kv-cache)
        s.v[:, :, n : n + T] = v  # (B, G, T, D)
        s.filled = n + T
        return KVCache(s, n + T)


class AttentionCache(NamedTuple):
    """What :func:`attention_backward` needs."""

    lin_q: LinearCache
    lin_k: LinearCache
    lin_v: LinearCache
    lin_o: LinearCache
    q: np.ndarray  # (B, H, T, D), after RoPE
    k: np.ndarray  # (B, G, T, D), after RoPE: the G = n_kv_heads key heads, not repeated
    v: np.ndarray  # (B, G, T, D)
    att: np.ndarray  # (B, H, T, T), softmax weights before dropout
    att_dropped: np.ndarray  # (B, H, T, T), weights after dropout
    weights_mask: np.ndarray | None  # (B, H, T, T)
    rope: tuple[np.ndarray, np.ndarray] | None  # cos, sin: (T, D)
    kv: KVCache | None = None  # with ``past``: the keys and values including this call's


def split_heads(x: np.ndarray, H: int) -> np.ndarray:
    """(B, T, C) -> (B, H, T, D), a view.

    Examples
    --------
    >>> import numpy as np
    >>> split_heads(np.zeros((2, 5, 12)), 3).shape
    (2, 3, 5, 4)
    """
    B, T, C = x.shape
    return x.reshape(B, T, H, C // H).transpose(0, 2, 1, 3)  # (B, H, T, D)


def repeat_kv(x: np.ndarray, H: int) -> np.ndarray:
    r"""(B, G, T, D) -> (B, H, T, D): each key/value head repeated for its R = H/G query heads.

    Eq. :eq:`attn-gqa`: query head ``h`` gets head ``h // R``. With ``G = H`` it returns ``x``
    itself.

    Examples
    --------
    >>> import numpy as np
    >>> k = np.arange(2.0).reshape(1, 2, 1, 1)  # G = 2 heads holding 0 and 1
    >>> repeat_kv(k, 4)[0, :, 0, 0]
    array([0., 0., 1., 1.])
    """
    G = x.shape[1]
    return x if G == H else np.repeat(x, H // G, axis=1)  # (B, H, T, D)


def sum_kv_groups(dx: np.ndarray, G: int) -> np.ndarray:
    r"""(B, H, T, D) -> (B, G, T, D), the backward of :func:`repeat_kv`: eq. (attn-gqa-backward).

    Key/value head :math:`\nu` was copied to query heads :math:`\nu R, \dots, \nu R + R - 1`; its
    gradient is the sum of theirs, eq. :eq:`attn-gqa-backward`.

    Examples
    --------
    >>> import numpy as np
    >>> dk = np.array([1.0, 2.0, 10.0, 20.0]).reshape(1, 4, 1, 1)  # H = 4 query heads
    >>> sum_kv_groups(dk, 2)[0, :, 0, 0]
    array([ 3., 30.])
    """
    B, H, T, D = dx.shape
    return dx if G == H else dx.reshape(B, G, H // G, T, D).sum(axis=2)  # (B, G, T, D)


def merge_heads(y: np.ndarray) -> np.ndarray:
    """(B, H, T, D) -> (B, T, C), the inverse of :func:`split_heads`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(24.0).reshape(1, 2, 12)
    >>> bool((merge_heads(split_heads(x, 3)) == x).all())
    True
    """
    B, H, T, D = y.shape
    return y.transpose(0, 2, 1, 3).reshape(B, T, H * D)  # (B, T, C)


def attention_forward(
    x: np.ndarray,
    p: dict,
    cfg,
    *,
    weights_mask: np.ndarray | None = None,
    past: KVCache | None = None,
) -> tuple[np.ndarray, AttentionCache]:
    r"""Causal multi-head self-attention, eqs. :eq:`attn-qkv` to :eq:`attn-out`.

    Parameters
    ----------
    x : (B, T, C) ndarray
    p : dict
        ``w_q, w_o`` of shape (C, C), ``w_k, w_v`` of shape (C, G D) with ``G = cfg.kv_heads``
        and, with ``cfg.bias``, ``b_q, b_k, b_v, b_o``.
    cfg : ModelConfig
    weights_mask : (B, H, T, T) ndarray, optional
        Attention-dropout mask (training).
    past : KVCache, optional
        Keys and values of the T_past earlier positions (incremental decoding; no backward
        then). This call's keys and values are appended to it (an empty cache,
        ``KVCache.empty(max_seq_len)``, for the first call).

    Returns
    -------
    out : (B, T, C) ndarray
    cache : AttentionCache
        ``cache.att`` holds the attention weights (B, H, T, T_past + T); with ``past``,
        ``cache.kv`` is the :class:`KVCache` of T_past + T positions of the G key/value heads,
        the next step's ``past``.

    Examples
    --------
    >>> import numpy as np
    >>> from literate_tx import ModelConfig, init_params
    >>> cfg = ModelConfig(10, 8, 1, 2, 16, 8)
    >>> params = init_params(cfg, seed=0, dtype="float64")
    >>> prefix = "blocks.0.attn."
    >>> p = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    >>> out, cache = attention_forward(np.ones((3, 5, 8)), p, cfg)
    >>> out.shape, cache.att.shape, bool(np.allclose(cache.att.sum(-1), 1.0))
    ((3, 5, 8), (3, 2, 5, 5), True)

    Grouped-query attention, one key/value head shared by both query heads (``w_k, w_v`` are
    (C, D) = (8, 4)):

    >>> cfg1 = cfg.replace(n_kv_heads=1)
    >>> p1 = {k[len(prefix):]: v for k, v in init_params(cfg1, dtype="float64").items()
    ...       if k.startswith(prefix)}
    >>> out, cache = attention_forward(np.ones((3, 5, 8)), p1, cfg1, past=KVCache.empty(8))
    >>> p1["w_k"].shape, cache.k.shape, cache.kv.k.shape, cache.att.shape
    ((8, 4), (3, 1, 5, 4), (3, 1, 5, 4), (3, 2, 5, 5))
    """
    B, T, C = x.shape
    H, G, D = cfg.n_heads, cfg.kv_heads, cfg.d_head
    T_past = 0 if past is None else past.length
    q, lin_q = linear_forward(x, p["w_q"], p.get("b_q"))  # (B, T, C), eq. (attn-qkv)
    k, lin_k = linear_forward(x, p["w_k"], p.get("b_k"))  # (B, T, G D)
    v, lin_v = linear_forward(x, p["w_v"], p.get("b_v"))  # (B, T, G D)
    q, k, v = split_heads(q, H), split_heads(k, G), split_heads(v, G)  # (B, H|G, T, D)
    rope = None
    if cfg.position == "rope":
        rope = rope_tables(T, D, cfg.rope_theta, x.dtype, offset=T_past,
                           scaling=cfg.rope_scaling)  # (T, D) each
        q = apply_rope(q, *rope)  # (B, H, T, D)
        k = apply_rope(k, *rope)  # (B, G, T, D)
    kv = None
    if past is not None:
        kv = past.append(k, v)  # written in place after the past, eq. (attn-kv-cache)
        k, v = kv.k, kv.v  # (B, G, T_past + T, D)
    T_k = T_past + T
    k_h, v_h = repeat_kv(k, H), repeat_kv(v, H)  # (B, H, T_k, D), eq. (attn-gqa)
    s = (q @ k_h.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(D))  # (B, H, T, T_k), eq. (attn-scores)
    if cfg.position == "alibi":
        s += alibi_bias(H, T, T_k, x.dtype, offset=T_past)  # (H, T, T_k) broadcast over B
    if T > 1:  # a single query is the newest position: it sees every key, nothing to mask
        visible = np.arange(T_k)[None, :] <= np.arange(T_past, T_k)[:, None]  # (T, T_k) causal
        s = np.where(visible, s, -np.inf)  # (B, H, T, T_k)
    att = softmax_forward(s)  # (B, H, T, T_k), eq. (attn-out)
    att_dropped = att if weights_mask is None else att * weights_mask  # (B, H, T, T_k)
    y = merge_heads(att_dropped @ v_h)  # (B, H, T, D) -> (B, T, C)
    out, lin_o = linear_forward(y, p["w_o"], p.get("b_o"))  # (B, T, C)
    cache = AttentionCache(lin_q, lin_k, lin_v, lin_o, q, k, v, att, att_dropped, weights_mask,
                           rope, kv)
    return out, cache


def attention_backward(dout: np.ndarray, cache: AttentionCache) -> tuple[np.ndarray, dict]:
    r"""Gradients of :func:`attention_forward`, eq. :eq:`attn-backward`.

    Parameters
    ----------
    dout : (B, T, C) ndarray
    cache : AttentionCache

    Returns
    -------
    dx : (B, T, C) ndarray
    grads : dict
        ``w_q .. w_o`` and, with biases, ``b_q .. b_o``.

    Examples
    --------
    Causality in the backward pass: the gradient of the first output reaches the first input only.

    >>> import numpy as np
    >>> from literate_tx import ModelConfig, init_params
    >>> cfg = ModelConfig(10, 4, 1, 2, 8, 8, init_std=1.0)
    >>> params = init_params(cfg, seed=1, dtype="float64")
    >>> prefix = "blocks.0.attn."
    >>> p = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    >>> x = np.random.default_rng(0).normal(size=(1, 3, 4))
    >>> out, cache = attention_forward(x, p, cfg)
    >>> dout = np.zeros_like(out); dout[0, 0] = 1.0
    >>> dx, grads = attention_backward(dout, cache)
    >>> bool(np.abs(dx[0, 1:]).max() == 0.0), sorted(grads)
    (True, ['b_k', 'b_o', 'b_q', 'b_v', 'w_k', 'w_o', 'w_q', 'w_v'])
    """
    lin_q, lin_k, lin_v, lin_o, q, k, v, att, att_dropped, weights_mask, rope, _ = cache
    H, G, D = q.shape[1], k.shape[1], q.shape[3]
    k_h, v_h = repeat_kv(k, H), repeat_kv(v, H)  # (B, H, T, D), eq. (attn-gqa)
    grads = {}
    dy, grads["w_o"], grads["b_o"] = linear_backward(dout, lin_o)  # (B, T, C)
    dy = split_heads(dy, H)  # (B, H, T, D), split
    dv_h = att_dropped.transpose(0, 1, 3, 2) @ dy  # (B, H, T, D), eq. (attn-backward)
    datt = dy @ v_h.transpose(0, 1, 3, 2)  # (B, H, T, T)
    if weights_mask is not None:
        datt = datt * weights_mask
    ds = softmax_backward(datt, att) * (1.0 / math.sqrt(D))  # (B, H, T, T): delta s / sqrt(D)
    dq = ds @ k_h  # (B, H, T, D)
    dk_h = ds.transpose(0, 1, 3, 2) @ q  # (B, H, T, D)
    dk = sum_kv_groups(dk_h, G)  # (B, G, T, D), eq. (attn-gqa-backward)
    dv = sum_kv_groups(dv_h, G)  # (B, G, T, D)
    if rope is not None:
        dq = rope_backward(dq, *rope)  # undo the rotation, eq. (rope-backward)
        dk = rope_backward(dk, *rope)
    dx_q, grads["w_q"], grads["b_q"] = linear_backward(merge_heads(dq), lin_q)  # (B, T, C)
    dx_k, grads["w_k"], grads["b_k"] = linear_backward(merge_heads(dk), lin_k)  # (B, T, C)
    dx_v, grads["w_v"], grads["b_v"] = linear_backward(merge_heads(dv), lin_v)  # (B, T, C)
    grads = {name: g for name, g in grads.items() if g is not None}
    return dx_q + dx_k + dx_v, grads

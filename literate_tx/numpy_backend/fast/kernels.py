r"""The fused kernels of the speed path: norms, attention in blocks of query rows and the MLP, each
forward with its backward and a named cache.

Examples
--------
>>> from literate_tx.numpy_backend.fast.kernels import _query_blocks
>>> _query_blocks(128, 0, 64)
[(0, 64, 64), (64, 128, 128)]
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from ..activations import activation_backward, activation_forward, sigmoid
from ..attention import repeat_kv, sum_kv_groups
from ..positions import alibi_bias, apply_rope, rope_backward, rope_tables
from .gelu import gelu_backward, gelu_forward
from .memory import Allocator, fresh

# --------------------------------------------------------------------------- kernels
# Each kernel works on rows (N, C) with N = B*T flattened, or on (B, H, T, *) for attention.
# Each takes ``new``, the allocator of its large arrays (see .memory): ``fresh`` allocates, a
# Workspace scope hands out the same arrays again at the next step. Every array it hands out is
# written in full (``out=``) before it is read.


class _Norm(NamedTuple):
    kind: str
    x_hat: np.ndarray  # (N, C)
    rstd: np.ndarray  # (N, 1)
    weight: np.ndarray  # (C,)
    has_bias: bool


@functools.lru_cache(maxsize=16)
def _mean_vector(C: int, dtype: np.dtype) -> np.ndarray:
    """The (C,) vector of 1/C that :func:`_row_mean` multiplies by (read-only, made once)."""
    vec = np.full(C, 1.0 / C, dtype=dtype)
    vec.setflags(write=False)
    return vec


def _row_mean(x):
    """Mean of each row of ``x`` (N, C) as a matrix-vector product (BLAS, ~4x ``x.mean(-1)``)."""
    return (x @ _mean_vector(x.shape[-1], x.dtype))[:, None]  # (N, 1)


def _norm_fwd(kind, x, weight, bias, eps, new: Allocator = fresh):
    """LayerNorm / RMSNorm of eqs. (ln-forward), (rms-forward) with two buffers."""
    if kind == "none":
        return x, None
    if kind == "layernorm":
        xc = np.subtract(x, _row_mean(x), out=new("centred", x.shape, x.dtype))  # (N, C)
    else:
        xc = x
    sq = np.multiply(xc, xc, out=new("x_hat", x.shape, x.dtype))  # (N, C)
    rstd = 1.0 / np.sqrt(_row_mean(sq) + eps)  # (N, 1)
    x_hat = np.multiply(xc, rstd, out=sq)  # (N, C), reuses the square's buffer
    y = np.multiply(x_hat, weight, out=new("y", x.shape, x.dtype))  # (N, C)
    if bias is not None:
        y += bias
    return y, _Norm(kind, x_hat, rstd, weight, bias is not None)


def _norm_bwd(dy, cache, new: Allocator = fresh):
    """Backward of :func:`_norm_fwd`, eqs. (ln-backward), (rms-backward), in place."""
    if cache is None:
        return dy, None, None
    kind, x_hat, rstd, weight, has_bias = cache
    C = x_hat.shape[-1]
    dweight = np.einsum("nc,nc->c", dy, x_hat)  # (C,), without forming the product
    dbias = dy.sum(axis=0) if has_bias else None  # (C,)
    g = np.multiply(dy, weight, out=new("dx", dy.shape, dy.dtype))  # (N, C)
    gx_mean = np.einsum("nc,nc->n", g, x_hat)[:, None]  # (N, 1)
    gx_mean *= 1.0 / C
    t = np.multiply(x_hat, gx_mean, out=new("t", dy.shape, dy.dtype))  # (N, C)
    if kind == "layernorm":
        g -= _row_mean(g)
    g -= t
    g *= rstd  # (N, C), dx
    return g, dweight, dbias


def _linear(x, w, b, out=None):
    y = np.matmul(x, w, out=out)  # (N, m)
    if b is not None:
        y += b
    return y


@functools.lru_cache(maxsize=32)
def _score_bias(T: int, T_past: int, H: int, alibi: bool, dtype: np.dtype) -> np.ndarray | None:
    """What the scores of T queries at positions ``T_past ..`` get added: ``-inf`` for the keys
    after each query (the causal mask), plus ALiBi; None when there is nothing to add.

    One addition of a cached (T, T_k) or (H, T, T_k) table instead of a masked copy (3x
    faster). A single query (a decoding step) is the newest position and sees every key, so
    only ALiBi is left for it.
    """
    T_k = T_past + T
    bias = None
    if T > 1:
        future = np.arange(T_k)[None, :] > np.arange(T_past, T_k)[:, None]  # (T, T_k)
        bias = np.where(future, -np.inf, 0.0).astype(dtype)  # (T, T_k)
    if alibi:
        slopes = alibi_bias(H, T, T_k, dtype, offset=T_past)  # (H, T, T_k)
        bias = slopes if bias is None else bias + slopes
    if bias is not None:
        bias.setflags(write=False)
    return bias


def _softmax_inplace(s):
    """Softmax over the last axis of ``s``, overwriting it, eq. (softmax-forward).

    The row sums are a matrix product with a column of ones (BLAS, 3x faster than ``sum``).
    """
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    total = s @ np.ones((s.shape[-1], 1), dtype=s.dtype)  # (..., T, 1), row sums
    s *= np.reciprocal(total, out=total)
    return s


class _Block(NamedTuple):
    """One block of query rows of the causal attention, as the backward pass needs it."""
    r0: int  # first query row of the block
    r1: int  # one past its last row
    keys: int  # the keys these rows see: 0 .. T_past + r1 - 1
    att: np.ndarray  # (B, H, r1 - r0, keys), the attention weights
    att_dropped: np.ndarray  # (B, H, r1 - r0, keys), after the weights' dropout
    mask: np.ndarray | None  # (B, H, r1 - r0, keys), the weights' dropout mask


class _Attn(NamedTuple):
    x: np.ndarray  # (N, C), input rows
    w_qkv: np.ndarray  # (C, C + 2 G D), with W_q scaled by 1 / sqrt(D)
    w_o: np.ndarray  # (C, C)
    has_bias: bool
    q: np.ndarray  # (B, H, T, D), after RoPE, scaled by 1 / sqrt(D)
    k: np.ndarray  # (B, H, T, D), after RoPE, repeated to the H query heads (attn-gqa)
    v: np.ndarray  # (B, H, T, D), repeated likewise
    blocks: tuple[_Block, ...]  # the query blocks, in order
    rope: tuple[np.ndarray, np.ndarray] | None  # (T, D) each
    y: np.ndarray  # (N, C), merged heads
    kv_heads: int  # G, the key/value heads


def _query_blocks(T: int, T_past: int, block: int) -> list[tuple[int, int, int]]:
    r"""Split T query rows into blocks of at most ``block`` rows: ``(r0, r1, keys)`` each.

    Query :math:`i` (at position :math:`T_{past} + i`) sees keys :math:`0 .. T_{past} + i`, so
    the rows :math:`r_0 .. r_1 - 1` together need only the first :math:`T_{past} + r_1` keys:
    every score right of that is masked to :math:`-\infty` and its weight is exactly 0. Scoring
    each block against its own keys skips the masked triangle's blocks; with two blocks of 64
    rows for T = 128 that is a quarter of the (T, T) work, forward and backward (the
    diagonal blocks keep their mask).
    """
    return [(r0, min(T, r0 + block), T_past + min(T, r0 + block)) for r0 in range(0, T, block)]


def _attention_fwd(x, B, T, p, cfg, weights_mask, past=None, block=64, new: Allocator = fresh):
    r"""Eqs. (attn-qkv) to (attn-out) with one QKV product and heads as strided views.

    Grouped-query attention (G key/value heads): the product is (C, C + 2GD) wide, the G heads
    go into the cache, and the keys and values are repeated to the H query heads for the scores,
    eq. (attn-gqa) (a (B, H, T_k, D) copy, small beside the (B, H, T, T_k) scores); the backward
    pass sums them back, eq. (attn-gqa-backward).

    The score scale :math:`1/\sqrt{D}` of eq. (attn-scores) is folded into :math:`W_q` and
    :math:`b_q` (a (C, C) product instead of a pass over every (T, T) score matrix, forward and
    backward); RoPE is linear, so rotating the scaled query is the same. The scores, softmax
    and weighted values run per block of ``block`` query rows against the keys those rows can
    see (:func:`_query_blocks`).

    With ``past`` (a :class:`~literate_tx.numpy_backend.attention.KVCache`, incremental
    decoding) the new keys and values are appended to it and the T queries, at positions
    ``T_past ..``, attend to all ``T_past + T`` keys; the third value returned is the extended
    cache (None without ``past``).
    """
    C, H, G, D = cfg.d_model, cfg.n_heads, cfg.kv_heads, cfg.d_head
    GD = G * D
    scale = 1.0 / math.sqrt(D)
    T_past = 0 if past is None else past.length
    heads = ((0, C, H), (C, C + GD, G), (C + GD, C + 2 * GD, G))  # q, k, v columns and heads
    if past is None:
        w_qkv = np.concatenate([p["w_q"] * scale, p["w_k"], p["w_v"]], axis=1)  # (C, C + 2GD)
        b_qkv = np.concatenate([p["b_q"] * scale, p["b_k"], p["b_v"]]) if cfg.bias else None
        qkv = _linear(x, w_qkv, b_qkv, out=new("qkv", (B * T, C + 2 * GD), x.dtype))
        qkv = qkv.reshape(B, T, C + 2 * GD)  # (B, T, C + 2GD)
        q, k, v = (qkv[:, :, a:b].reshape(B, T, n, D).transpose(0, 2, 1, 3)
                   for a, b, n in heads)  # (B, H, T, D), (B, G, T, D) twice: views
    else:  # a decoding step has few rows: three small products cost less than concatenating
        w_qkv = None  # no backward pass after decoding
        q, k, v = (_linear(x, p[f"w_{name}"], p.get(f"b_{name}")).reshape(B, T, n, D)
                   .transpose(0, 2, 1, 3)
                   for name, (_, _, n) in zip("qkv", heads, strict=True))  # (B, H|G, T, D)
        q *= scale  # (B, H, T, D), the scaled query, as W_q / sqrt(D) gives
    rope = None
    if cfg.position == "rope":
        rope = rope_tables(T, D, cfg.rope_theta, x.dtype, offset=T_past,
                           scaling=cfg.rope_scaling)  # (T, D) each
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)  # (B, H, T, D), (B, G, T, D)
    kv = None
    if past is not None:
        kv = past.append(k, v)  # written in place after the past, eq. (attn-kv-cache)
        k, v = kv.k, kv.v  # (B, G, T_past + T, D)
    k, v = repeat_kv(k, H), repeat_kv(v, H)  # (B, H, T_k, D), eq. (attn-gqa); G = H: no copy
    bias = _score_bias(T, T_past, H, cfg.position == "alibi", x.dtype)  # (T, T_k), (H, T, T_k)
    y = new("heads", (B, T, H, D), x.dtype)  # merged-heads layout, written per head below
    y_heads = y.transpose(0, 2, 1, 3)  # (B, H, T, D), a view
    blocks = []
    for j, (r0, r1, keys) in enumerate(_query_blocks(T, T_past, block)):
        s = np.matmul(q[:, :, r0:r1], k[:, :, :keys].transpose(0, 1, 3, 2),
                      out=new(f"att{j}", (B, H, r1 - r0, keys), x.dtype))  # (B, H, Tb, keys)
        if bias is not None:
            s += bias[..., r0:r1, :keys]  # the causal mask (and ALiBi) of these rows
        att = _softmax_inplace(s)  # (B, H, Tb, keys)
        mask = None if weights_mask is None else weights_mask[:, :, r0:r1, :keys]
        att_dropped = att if mask is None else np.multiply(
            att, mask, out=new(f"att_dropped{j}", att.shape, x.dtype))  # (B, H, Tb, keys)
        np.matmul(att_dropped, v[:, :, :keys], out=y_heads[:, :, r0:r1])  # (B, H, Tb, D)
        blocks.append(_Block(r0, r1, keys, att, att_dropped, mask))
    y = y.reshape(B * T, C)  # (N, C), merged heads
    out = _linear(y, p["w_o"], p.get("b_o"), out=new("out", (B * T, C), x.dtype))  # (N, C)
    return out, _Attn(x, w_qkv, p["w_o"], cfg.bias, q, k, v, tuple(blocks), rope, y, G), kv


def _attention_bwd(dout, cache, new: Allocator = fresh):
    """Eq. (attn-backward) per query block; the three projections' gradients come from one
    (C, C + 2GD) product. With grouped-query attention the H heads' key and value gradients are
    summed over each group, eq. (attn-gqa-backward)."""
    x, w_qkv, w_o, has_bias, q, k, v, blocks, rope, y, G = cache
    B, H, T, D = q.shape
    C, GD = H * D, G * D
    grouped = G != H
    scale = 1.0 / math.sqrt(D)
    grads = {"w_o": y.T @ dout}  # (C, C)
    if has_bias:
        grads["b_o"] = dout.sum(axis=0)  # (C,)
    dy = np.matmul(dout, w_o.T, out=new("dy", (B * T, C), x.dtype))  # (N, C)
    dy = dy.reshape(B, T, H, D).transpose(0, 2, 1, 3)  # (B, H, T, D), a view
    dqkv = new("dqkv", (B, T, C + 2 * GD), x.dtype)  # (B, T, C + 2GD)
    dq, dk, dv = (dqkv[:, :, a:b].reshape(B, T, n, D).transpose(0, 2, 1, 3)
                  for a, b, n in ((0, C, H), (C, C + GD, G), (C + GD, C + 2 * GD, G)))
    # dq: (B, H, T, D), dk, dv: (B, G, T, D), views. Gradients with respect to the scaled
    # query q' = q / sqrt(D) and to k (q' k^T = s), in RoPE's rotated coordinates when there
    # is a rotation (undone after the loop), and per query head when grouped (summed after it)
    dq_r = dq if rope is None else new("dq_rotated", (B, H, T, D), x.dtype)
    dk_r = dk if rope is None and not grouped else new("dk_rotated", (B, H, T, D), x.dtype)
    dv_h = dv if not grouped else new("dv_heads", (B, H, T, D), x.dtype)
    # The last block sees every key: it writes dk and dv, the others add to their first keys.
    for n, (r0, r1, keys, att, att_dropped, mask) in enumerate(reversed(blocks)):
        dy_b, q_b = dy[:, :, r0:r1], q[:, :, r0:r1]  # (B, H, Tb, D) views
        datt = np.matmul(dy_b, v[:, :, :keys].transpose(0, 1, 3, 2),
                         out=new(f"datt{n}", att.shape, x.dtype))  # (B, H, Tb, keys)
        if mask is not None:
            datt *= mask
        # softmax backward, eq. (softmax-backward): ds = a * (da - sum(a * da)), in place; the
        # row dot products sum(a * da) by einsum, which never forms the product (3x faster)
        datt -= np.einsum("bhij,bhij->bhi", att, datt)[..., None]
        datt *= att  # (B, H, Tb, keys), ds with respect to the scaled scores
        np.matmul(datt, k[:, :, :keys], out=dq_r[:, :, r0:r1])  # (B, H, Tb, D)
        if n == 0:
            np.matmul(att_dropped.transpose(0, 1, 3, 2), dy_b, out=dv_h)  # (B, H, T_k, D)
            np.matmul(datt.transpose(0, 1, 3, 2), q_b, out=dk_r)  # (B, H, T_k, D)
        else:  # the first keys' share of this block: a product into scratch, then added
            part = new("keys_part", (B, H, keys, D), x.dtype)  # (B, H, keys, D)
            dv_h[:, :, :keys] += np.matmul(att_dropped.transpose(0, 1, 3, 2), dy_b, out=part)
            dk_r[:, :, :keys] += np.matmul(datt.transpose(0, 1, 3, 2), q_b, out=part)
    if grouped:  # eq. (attn-gqa-backward): each key/value head sums its R query heads
        dv[...] = sum_kv_groups(dv_h, G)  # (B, G, T, D)
        dk_r = sum_kv_groups(dk_r, G)  # (B, G, T, D); RoPE's backward is the same per head
        if rope is None:
            dk[...] = dk_r
    if rope is not None:
        dq[...] = rope_backward(dq_r, *rope)  # undo the rotation, eq. (rope-backward)
        dk[...] = rope_backward(dk_r, *rope)
    dqkv = dqkv.reshape(B * T, C + 2 * GD)  # (N, C + 2GD)
    dx = np.matmul(dqkv, w_qkv.T, out=new("dx", (B * T, C), x.dtype))  # (N, C), the three
    # input gradients summed by one product
    dw_qkv = x.T @ dqkv  # (C, C + 2GD)
    columns = {"q": (0, C), "k": (C, C + GD), "v": (C + GD, C + 2 * GD)}
    for name, (a, b) in columns.items():
        grads[f"w_{name}"] = np.ascontiguousarray(dw_qkv[:, a:b])  # (C, C), (C, GD), (C, GD)
    grads["w_q"] *= scale  # chain rule through the folded scale: q' = x (W_q / sqrt D)
    if has_bias:
        db_qkv = dqkv.sum(axis=0)  # (C + 2GD,)
        for name, (a, b) in columns.items():
            grads[f"b_{name}"] = db_qkv[a:b].copy()  # (C,), (GD,), (GD,)
        grads["b_q"] *= scale
    return dx, grads


class _MLP(NamedTuple):
    activation: str
    x: np.ndarray  # (N, C)
    w_gate: np.ndarray | None  # (C, F)
    w_up: np.ndarray  # (C, F)
    w_down: np.ndarray  # (F, C)
    has_bias: bool
    g: np.ndarray | None  # (N, F), gate pre-activation (SwiGLU)
    u: np.ndarray  # (N, F), up pre-activation
    cdf: np.ndarray | None  # (N, F), the GELUs' gate (Phi(u) or sigma(2k)) or sigmoid(g) (SwiGLU)
    a: np.ndarray  # (N, F), activation


def _mlp_fwd(x, p, cfg, new: Allocator = fresh):
    """Eqs. (mlp-forward), (swiglu-forward); the GELUs keep their gate for the backward pass."""
    act = cfg.activation
    g = cdf = None
    N, F = x.shape[0], p["w_up"].shape[1]
    u = _linear(x, p["w_up"], p.get("b_up"), out=new("u", (N, F), x.dtype))  # (N, F)
    if act == "swiglu":
        g = _linear(x, p["w_gate"], p.get("b_gate"))  # (N, F)
        cdf = sigmoid(g)  # (N, F)
        a = g * cdf  # (N, F)
        a *= u
    elif act in ("gelu", "gelu_tanh"):
        a, cdf = gelu_forward(act, u, out=(new("a", u.shape, u.dtype),
                                           new("gate", u.shape, u.dtype)))
        # (N, F) each: u c(u) and the gate c, Phi(u) or sigma(2k)
    else:
        a = activation_forward(act, u)  # (N, F)
    y = _linear(a, p["w_down"], p.get("b_down"), out=new("y", x.shape, x.dtype))  # (N, C)
    return y, _MLP(act, x, p.get("w_gate"), p["w_up"], p["w_down"], cfg.bias, g, u, cdf, a)


def _mlp_bwd(dy, cache, new: Allocator = fresh):
    """Eq. (swiglu-backward), and the GELUs' slopes of :mod:`.gelu`, in place."""
    act, x, w_gate, w_up, w_down, has_bias, g, u, cdf, a = cache
    grads = {"w_down": a.T @ dy}  # (F, C)
    if has_bias:
        grads["b_down"] = dy.sum(axis=0)  # (C,)
    da = np.matmul(dy, w_down.T, out=new("da", u.shape, u.dtype))  # (N, F)
    dx = None
    if act == "swiglu":
        du = g * cdf  # (N, F), swish(g)
        du *= da
        dg = activation_backward("swish", u * da, g)  # (N, F)
        dx = dg @ w_gate.T  # (N, C)
        grads["w_gate"] = x.T @ dg  # (C, F)
        if has_bias:
            grads["b_gate"] = dg.sum(axis=0)
    elif act in ("gelu", "gelu_tanh"):
        du = gelu_backward(act, da, u, cdf)  # (N, F), over da
    else:
        du = activation_backward(act, da, u)  # (N, F)
    dx_up = np.matmul(du, w_up.T, out=new("dx", dy.shape, dy.dtype))  # (N, C)
    dx = dx_up if dx is None else dx + dx_up
    grads["w_up"] = x.T @ du  # (C, F)
    if has_bias:
        grads["b_up"] = du.sum(axis=0)  # (F,)
    return dx, grads



r"""One transformer block: attention and feed-forward sublayers wired by a residual layout.

Derived in :mod:`literate_tx.numpy_backend.block`: the pre, post and sandwich layouts of eq.
:eq:`residual` and the "gradient highway" of their backward pass (a residual sum passes its
gradient to both of its terms). The hook names recorded by ``record`` are the same as there:
``resid_pre``, ``attn.weights``, ``attn.out``, ``resid_mid``, ``mlp.pre_act``, ``mlp.out``,
``resid_post``.

Examples
--------
With all sublayer weights zero a pre-LN block is the identity:

>>> from literate_tx import ModelConfig, init_params
>>> cfg = ModelConfig(10, 4, 1, 2, 8, 8, bias=False)
>>> p = {k[len("blocks.0."):]: (0.0 * v).tolist() for k, v in init_params(cfg).items()
...      if k.startswith("blocks.0.")}
>>> x = [[[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0]]]
>>> y, _ = block_forward(x, p, cfg)
>>> y == x
True
"""

from __future__ import annotations

from operator import add
from typing import NamedTuple

from .attention import AttentionCache, KVCache, attention_backward, attention_forward
from .dropout import dropout_backward, dropout_forward
from .feedforward import FeedForwardCache, feedforward_backward, feedforward_forward
from .linear import zip_map
from .norms import NormCache, norm_backward, norm_forward

__all__ = ["BlockCache", "block_forward", "block_backward", "subdict"]


class BlockCache(NamedTuple):
    """Caches of the block's pieces, in forward order."""

    residual: str
    attn_norm: NormCache | None
    attn: AttentionCache
    attn_out_norm: NormCache | None
    attn_resid_mask: list | None
    mlp_norm: NormCache | None
    mlp: FeedForwardCache
    mlp_out_norm: NormCache | None
    mlp_resid_mask: list | None


def subdict(p: dict, prefix: str) -> dict:
    """Entries of ``p`` whose names start with ``prefix``, with the prefix removed.

    Examples
    --------
    >>> subdict({"attn.w_q": 1, "mlp.w_up": 2}, "attn.")
    {'w_q': 1}
    """
    return {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}


def _norm(cfg, p: dict, name: str, x: list):
    return norm_forward(cfg.norm, x, p.get(f"{name}.weight"), p.get(f"{name}.bias"), cfg.norm_eps)


def block_forward(
    x: list,
    p: dict,
    cfg,
    *,
    masks: dict | None = None,
    past: KVCache | None = None,
    record: dict | None = None,
    tracer=None,
) -> tuple[list, BlockCache]:
    r"""One block in the layout ``cfg.residual``, eq. :eq:`residual`.

    Parameters
    ----------
    x : (B, T, C) nested list
    p : dict
        The block's parameters with the ``blocks.{i}.`` prefix removed.
    cfg : ModelConfig
    masks : dict, optional
        Dropout masks with local names (``attn.weights_dropout``, ``attn.resid_dropout``,
        ``mlp.resid_dropout``).
    past : KVCache, optional
        Cached keys and values of earlier positions.
    record : dict, optional
        Filled with the hook values listed in the module docstring.
    tracer : Tracer, optional
        Reports each step (see :mod:`~literate_tx.python_backend.trace`).

    Returns
    -------
    y : (B, T, C) nested list
    cache : BlockCache

    Examples
    --------
    >>> from literate_tx import ModelConfig, init_params
    >>> cfg = ModelConfig(10, 4, 1, 2, 8, 8, residual="post")
    >>> p = {k: v.tolist()
    ...      for k, v in subdict(init_params(cfg, dtype="float64"), "blocks.0.").items()}
    >>> rec = {}
    >>> y, _ = block_forward([[[1.0] * 4] * 3] * 2, p, cfg, record=rec)
    >>> sorted(rec)
    ['attn.out', 'attn.weights', 'mlp.out', 'mlp.pre_act', 'resid_mid', 'resid_post', 'resid_pre']
    """
    masks = masks or {}
    post, sandwich = cfg.residual == "post", cfg.residual == "sandwich"
    if record is not None:
        record["resid_pre"] = x
    # attention sublayer
    h, attn_norm = (x, None) if post else _norm(cfg, p, "attn_norm", x)  # (B, T, C)
    if tracer and not post:
        tracer("attn_norm output", h, "B T C")
    a, attn = attention_forward(h, subdict(p, "attn."), cfg,
                                weights_mask=masks.get("attn.weights_dropout"), past=past,
                                tracer=tracer)
    attn_out_norm = None
    if sandwich:
        a, attn_out_norm = _norm(cfg, p, "attn_out_norm", a)  # (B, T, C)
    a = dropout_forward(a, masks.get("attn.resid_dropout"))  # (B, T, C)
    x = zip_map(add, x, a)  # (B, T, C), the residual sum
    if post:
        x, attn_norm = _norm(cfg, p, "attn_norm", x)  # (B, T, C)
    if record is not None:
        record["attn.weights"], record["attn.out"], record["resid_mid"] = attn.att, a, x
    if tracer:
        tracer("attention branch (added to the residual)", a, "B T C")
        tracer("residual stream after attention", x, "B T C")
    # feed-forward sublayer
    h, mlp_norm = (x, None) if post else _norm(cfg, p, "mlp_norm", x)  # (B, T, C)
    if tracer and not post:
        tracer("mlp_norm output", h, "B T C")
    m, mlp = feedforward_forward(h, subdict(p, "mlp."), cfg, tracer=tracer)  # (B, T, C)
    mlp_out_norm = None
    if sandwich:
        m, mlp_out_norm = _norm(cfg, p, "mlp_out_norm", m)  # (B, T, C)
    m = dropout_forward(m, masks.get("mlp.resid_dropout"))  # (B, T, C)
    x = zip_map(add, x, m)  # (B, T, C)
    if post:
        x, mlp_norm = _norm(cfg, p, "mlp_norm", x)  # (B, T, C)
    if record is not None:
        record["mlp.pre_act"], record["mlp.out"], record["resid_post"] = mlp.u, m, x
    if tracer:
        tracer("mlp branch (added to the residual)", m, "B T C")
        tracer("residual stream after mlp", x, "B T C")
    cache = BlockCache(cfg.residual, attn_norm, attn, attn_out_norm,
                       masks.get("attn.resid_dropout"), mlp_norm, mlp, mlp_out_norm,
                       masks.get("mlp.resid_dropout"))
    return x, cache


def _add_norm_grads(grads: dict, name: str, dw, db) -> None:
    if dw is not None:
        grads[f"{name}.weight"] = dw
    if db is not None:
        grads[f"{name}.bias"] = db


def block_backward(dy: list, cache: BlockCache, *, tracer=None) -> tuple[list, dict]:
    r"""Gradients of :func:`block_forward`, walking eq. :eq:`residual` backwards.

    Returns
    -------
    dx : (B, T, C) nested list
    grads : dict
        Local parameter names (``attn.w_q``, ``mlp_norm.weight``, ...).

    Examples
    --------
    The residual path alone carries the gradient through a block whose weights are zero:

    >>> from literate_tx import ModelConfig, init_params
    >>> cfg = ModelConfig(10, 4, 1, 2, 8, 8)
    >>> p = {k: (0.0 * v).tolist()
    ...      for k, v in subdict(init_params(cfg, dtype="float64"), "blocks.0.").items()}
    >>> y, cache = block_forward([[[1.0] * 4] * 2], p, cfg)
    >>> dx, grads = block_backward([[[3.0] * 4] * 2], cache)
    >>> dx
    [[[3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0]]]
    """
    post, sandwich = cache.residual == "post", cache.residual == "sandwich"
    grads: dict = {}
    if tracer:
        tracer("d block output", dy, "B T C")
    # feed-forward sublayer, in reverse
    if post:
        dy, dw, db = norm_backward(dy, cache.mlp_norm)  # (B, T, C)
        _add_norm_grads(grads, "mlp_norm", dw, db)
    dm = dropout_backward(dy, cache.mlp_resid_mask)  # (B, T, C), branch of the residual sum
    if sandwich:
        dm, dw, db = norm_backward(dm, cache.mlp_out_norm)
        _add_norm_grads(grads, "mlp_out_norm", dw, db)
    if tracer:
        tracer("d mlp output", dm, "B T C")
    dh, g = feedforward_backward(dm, cache.mlp, tracer=tracer)  # (B, T, C)
    grads.update({f"mlp.{k}": v for k, v in g.items()})
    if not post:
        dh, dw, db = norm_backward(dh, cache.mlp_norm)
        _add_norm_grads(grads, "mlp_norm", dw, db)
    dx = zip_map(add, dy, dh)  # (B, T, C), the two paths of the residual sum meet
    if tracer:
        tracer("d residual stream after attention", dx, "B T C")
    # attention sublayer, in reverse
    if post:
        dx, dw, db = norm_backward(dx, cache.attn_norm)
        _add_norm_grads(grads, "attn_norm", dw, db)
    da = dropout_backward(dx, cache.attn_resid_mask)  # (B, T, C)
    if sandwich:
        da, dw, db = norm_backward(da, cache.attn_out_norm)
        _add_norm_grads(grads, "attn_out_norm", dw, db)
    if tracer:
        tracer("d attention output", da, "B T C")
    dh, g = attention_backward(da, cache.attn, tracer=tracer)  # (B, T, C)
    grads.update({f"attn.{k}": v for k, v in g.items()})
    if not post:
        dh, dw, db = norm_backward(dh, cache.attn_norm)
        _add_norm_grads(grads, "attn_norm", dw, db)
    dx = zip_map(add, dx, dh)  # (B, T, C)
    if tracer:
        tracer("d block input", dx, "B T C")
    return dx, grads

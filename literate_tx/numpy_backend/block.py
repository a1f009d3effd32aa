r"""One transformer block: attention and feed-forward sublayers wired by a residual layout.

Each block applies two sublayers :math:`S` — attention, then the feed-forward network — each inside
a residual connection. The layouts differ only in where the norm :math:`N` sits
(:math:`\mathrm{drop}` is residual dropout):

.. math::
   :label: residual

   \begin{aligned}
   \text{pre:}      &\quad x \leftarrow x + \mathrm{drop}(S(N(x))) \\
   \text{post:}     &\quad x \leftarrow N\big(x + \mathrm{drop}(S(x))\big) \\
   \text{sandwich:} &\quad x \leftarrow x + \mathrm{drop}(N'(S(N(x))))
   \end{aligned}

*Post*-LN is the original Transformer's layout: every block's output is normalised, so the last
block needs no final norm, but the gradient reaching early layers passes through :math:`2L` norms
and training needs a learning-rate warmup. *Pre*-LN (GPT-2, Llama) leaves an identity path from
the loss to the embedding, :math:`\partial x_{out}/\partial x_{in} = I + \dots`, which keeps
gradients well scaled with depth; its residual stream grows, so a final norm precedes the head.
*Sandwich* (CogView, Gemma 2) adds a second norm :math:`N'` on each branch's output to bound what
each sublayer can add.

Backward
--------
For a residual sum :math:`z = x + r(x)` the gradient splits and adds back,
:math:`\delta x = \delta z + (\partial r / \partial x)^\top \delta z`, the "gradient highway"; the
norm, dropout and sublayer backward passes are those of their own modules.

Hooks
-----
When the forward pass is given a ``record`` dict it stores, under names local to the block,
``resid_pre``, ``attn.weights`` (B, H, T, T), ``attn.out`` (the branch added to the residual),
``resid_mid``, ``mlp.pre_act`` (the pre-activation, for dead-unit statistics), ``mlp.out`` and
``resid_post``.

Examples
--------
With all sublayer weights zero a pre-LN block is the identity:

>>> import numpy as np
>>> from literate_tx import ModelConfig, init_params
>>> cfg = ModelConfig(10, 4, 1, 2, 8, 8, bias=False)
>>> p = {k[len("blocks.0."):]: 0.0 * v
...      for k, v in init_params(cfg).items() if k.startswith("blocks.0.")}
>>> x = np.arange(12.0).reshape(1, 3, 4)
>>> y, _ = block_forward(x, p, cfg)
>>> bool((y == x).all())
True
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .attention import AttentionCache, KVCache, attention_backward, attention_forward
from .dropout import dropout_backward, dropout_forward
from .feedforward import FeedForwardCache, feedforward_backward, feedforward_forward
from .norms import NormCache, norm_backward, norm_forward

__all__ = ["BlockCache", "block_forward", "block_backward", "subdict"]


class BlockCache(NamedTuple):
    """Caches of the block's pieces, in forward order."""

    residual: str
    attn_norm: NormCache | None
    attn: AttentionCache
    attn_out_norm: NormCache | None
    attn_resid_mask: np.ndarray | None
    mlp_norm: NormCache | None
    mlp: FeedForwardCache
    mlp_out_norm: NormCache | None
    mlp_resid_mask: np.ndarray | None


def subdict(p: dict, prefix: str) -> dict:
    """Entries of ``p`` whose names start with ``prefix``, with the prefix removed.

    Examples
    --------
    >>> subdict({"attn.w_q": 1, "mlp.w_up": 2}, "attn.")
    {'w_q': 1}
    """
    return {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}


def _norm(cfg, p: dict, name: str, x: np.ndarray):
    return norm_forward(cfg.norm, x, p.get(f"{name}.weight"), p.get(f"{name}.bias"), cfg.norm_eps)


def block_forward(
    x: np.ndarray,
    p: dict,
    cfg,
    *,
    masks: dict | None = None,
    past: KVCache | None = None,
    record: dict | None = None,
) -> tuple[np.ndarray, BlockCache]:
    r"""One block in the layout ``cfg.residual``, eq. :eq:`residual`.

    Parameters
    ----------
    x : (B, T, C) ndarray
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

    Returns
    -------
    y : (B, T, C) ndarray
    cache : BlockCache

    Examples
    --------
    >>> import numpy as np
    >>> from literate_tx import ModelConfig, init_params
    >>> cfg = ModelConfig(10, 4, 1, 2, 8, 8, residual="post")
    >>> p = subdict(init_params(cfg, dtype="float64"), "blocks.0.")
    >>> rec = {}
    >>> y, _ = block_forward(np.ones((2, 3, 4)), p, cfg, record=rec)
    >>> sorted(rec)
    ['attn.out', 'attn.weights', 'mlp.out', 'mlp.pre_act', 'resid_mid', 'resid_post', 'resid_pre']
    """
    masks = masks or {}
    post, sandwich = cfg.residual == "post", cfg.residual == "sandwich"
    if record is not None:
        record["resid_pre"] = x
    # attention sublayer
    h, attn_norm = (x, None) if post else _norm(cfg, p, "attn_norm", x)  # (B, T, C)
    a, attn = attention_forward(h, subdict(p, "attn."), cfg,
                                weights_mask=masks.get("attn.weights_dropout"), past=past)
    attn_out_norm = None
    if sandwich:
        a, attn_out_norm = _norm(cfg, p, "attn_out_norm", a)  # (B, T, C)
    a = dropout_forward(a, masks.get("attn.resid_dropout"))  # (B, T, C)
    x = x + a  # (B, T, C), the residual sum, eq. (residual)
    if post:
        x, attn_norm = _norm(cfg, p, "attn_norm", x)  # (B, T, C)
    if record is not None:
        record["attn.weights"], record["attn.out"], record["resid_mid"] = attn.att, a, x
    # feed-forward sublayer
    h, mlp_norm = (x, None) if post else _norm(cfg, p, "mlp_norm", x)  # (B, T, C)
    m, mlp = feedforward_forward(h, subdict(p, "mlp."), cfg)  # (B, T, C)
    mlp_out_norm = None
    if sandwich:
        m, mlp_out_norm = _norm(cfg, p, "mlp_out_norm", m)  # (B, T, C)
    m = dropout_forward(m, masks.get("mlp.resid_dropout"))  # (B, T, C)
    x = x + m  # (B, T, C)
    if post:
        x, mlp_norm = _norm(cfg, p, "mlp_norm", x)  # (B, T, C)
    if record is not None:
        record["mlp.pre_act"], record["mlp.out"], record["resid_post"] = mlp.u, m, x
    cache = BlockCache(cfg.residual, attn_norm, attn, attn_out_norm,
                       masks.get("attn.resid_dropout"), mlp_norm, mlp, mlp_out_norm,
                       masks.get("mlp.resid_dropout"))
    return x, cache


def _add_norm_grads(grads: dict, name: str, dw, db) -> None:
    if dw is not None:
        grads[f"{name}.weight"] = dw
    if db is not None:
        grads[f"{name}.bias"] = db


def block_backward(dy: np.ndarray, cache: BlockCache) -> tuple[np.ndarray, dict]:
    r"""Gradients of :func:`block_forward`, walking eq. :eq:`residual` backwards.

    Returns
    -------
    dx : (B, T, C) ndarray
    grads : dict
        Local parameter names (``attn.w_q``, ``mlp_norm.weight``, ...).

    Examples
    --------
    The residual path alone carries the gradient through a block whose weights are zero:

    >>> import numpy as np
    >>> from literate_tx import ModelConfig, init_params
    >>> cfg = ModelConfig(10, 4, 1, 2, 8, 8)
    >>> p = {k: 0.0 * v for k, v in subdict(init_params(cfg, dtype="float64"), "blocks.0.").items()}
    >>> y, cache = block_forward(np.ones((1, 2, 4)), p, cfg)
    >>> dx, grads = block_backward(np.full((1, 2, 4), 3.0), cache)
    >>> bool((dx == 3.0).all())
    True
    """
    post, sandwich = cache.residual == "post", cache.residual == "sandwich"
    grads: dict = {}
    # feed-forward sublayer, in reverse
    if post:
        dy, dw, db = norm_backward(dy, cache.mlp_norm)  # (B, T, C)
        _add_norm_grads(grads, "mlp_norm", dw, db)
    dm = dropout_backward(dy, cache.mlp_resid_mask)  # (B, T, C), branch of the residual sum
    if sandwich:
        dm, dw, db = norm_backward(dm, cache.mlp_out_norm)
        _add_norm_grads(grads, "mlp_out_norm", dw, db)
    dh, g = feedforward_backward(dm, cache.mlp)  # (B, T, C)
    grads.update({f"mlp.{k}": v for k, v in g.items()})
    if not post:
        dh, dw, db = norm_backward(dh, cache.mlp_norm)
        _add_norm_grads(grads, "mlp_norm", dw, db)
    dx = dy + dh  # (B, T, C), the two paths of the residual sum meet
    # attention sublayer, in reverse
    if post:
        dx, dw, db = norm_backward(dx, cache.attn_norm)
        _add_norm_grads(grads, "attn_norm", dw, db)
    da = dropout_backward(dx, cache.attn_resid_mask)  # (B, T, C)
    if sandwich:
        da, dw, db = norm_backward(da, cache.attn_out_norm)
        _add_norm_grads(grads, "attn_out_norm", dw, db)
    dh, g = attention_backward(da, cache.attn)  # (B, T, C)
    grads.update({f"attn.{k}": v for k, v in g.items()})
    if not post:
        dh, dw, db = norm_backward(dh, cache.attn_norm)
        _add_norm_grads(grads, "attn_norm", dw, db)
    return dx + dh, grads

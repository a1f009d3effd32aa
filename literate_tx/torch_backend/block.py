r"""One transformer block: attention and feed-forward sublayers wired by a residual layout.

Derivation and the three layouts (pre, post, sandwich; eq. :eq:`residual`):
:mod:`literate_tx.numpy_backend.block`. Autograd computes the backward pass, including the
"gradient highway" of the residual sums.

The submodules are registered in the canonical parameter order of :mod:`literate_tx.params`
(in the post layout the norm follows its sublayer), so ``named_parameters()`` lists the block's
canonical names in order.

Hooks
-----
Given a ``record`` dict, the forward pass stores, under names local to the block, ``resid_pre``,
``attn.weights`` (B, H, T, T), ``attn.out``, ``resid_mid``, ``mlp.pre_act``, ``mlp.out`` and
``resid_post``, the same hooks as the NumPy block.

Examples
--------
With all sublayer weights zero a pre-LN block is the identity:

>>> import torch
>>> from literate_tx import ModelConfig
>>> block = Block(ModelConfig(10, 4, 1, 2, 8, 8, bias=False))
>>> x = torch.arange(12.0).reshape(1, 3, 4)
>>> y, kv = block(x)
>>> bool((y == x).all())
True
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .attention import Attention, KVCache
from .dropout import Dropout
from .feedforward import FeedForward
from .norms import make_norm

__all__ = ["Block", "subdict"]


def subdict(p: Mapping | None, prefix: str) -> dict | None:
    """Entries of ``p`` whose names start with ``prefix``, prefix removed (None stays None).

    Examples
    --------
    >>> subdict({"attn.w_q": 1, "mlp.w_up": 2}, "attn."), subdict(None, "attn.")
    ({'w_q': 1}, None)
    """
    if p is None:
        return None
    return {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}


class Block(nn.Module):
    r"""One block in the layout ``cfg.residual``, eq. :eq:`residual`.

    Parameters
    ----------
    cfg : ModelConfig
    attention : {"sdpa", "explicit"}
        Preferred attention path, see :mod:`~literate_tx.torch_backend.attention`.
    dtype : torch.dtype
    device : torch.device, optional

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> block = Block(ModelConfig(10, 4, 1, 2, 8, 8, residual="post", bias=False))
    >>> [n for n, _ in block.named_parameters()][-3:]
    ['mlp.w_up', 'mlp.w_down', 'mlp_norm.weight']
    """

    def __init__(self, cfg, attention: str = "sdpa", *, dtype=torch.float32, device=None):
        super().__init__()
        self.residual = cfg.residual
        kw = dict(dtype=dtype, device=device)
        sandwich = cfg.residual == "sandwich"
        # registration order = canonical parameter order
        if cfg.residual != "post":
            self.attn_norm = make_norm(cfg, **kw)
        self.attn = Attention(cfg, attention, **kw)
        if sandwich:
            self.attn_out_norm = make_norm(cfg, **kw)
        if cfg.residual == "post":
            self.attn_norm = make_norm(cfg, **kw)
        self.attn_resid_dropout = Dropout(cfg.dropout)
        if cfg.residual != "post":
            self.mlp_norm = make_norm(cfg, **kw)
        self.mlp = FeedForward(cfg, **kw)
        if sandwich:
            self.mlp_out_norm = make_norm(cfg, **kw)
        if cfg.residual == "post":
            self.mlp_norm = make_norm(cfg, **kw)
        self.mlp_resid_dropout = Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        *,
        masks: Mapping[str, torch.Tensor] | None = None,
        past: KVCache | None = None,
        record: dict | None = None,
    ) -> tuple[torch.Tensor, KVCache | None]:
        r"""One block in the layout ``cfg.residual``, eq. :eq:`residual`.

        Parameters
        ----------
        x : (B, T, C) Tensor
        masks : mapping, optional
            Dropout masks with local names (``attn.weights_dropout``, ``attn.resid_dropout``,
            ``mlp.resid_dropout``); None lets PyTorch draw them in training mode.
        past : KVCache, optional
            Cached keys and values of earlier positions (incremental decoding).
        record : dict, optional
            Filled with the hook values listed in the module docstring.

        Returns
        -------
        y : (B, T, C) Tensor
        kv : KVCache or None
            With ``past``: this layer's keys and values, including the past.

        Examples
        --------
        >>> from literate_tx import ModelConfig
        >>> rec = {}
        >>> y, kv = Block(ModelConfig(10, 4, 1, 2, 8, 8))(torch.ones(2, 3, 4), record=rec)
        >>> sorted(rec)  # doctest: +NORMALIZE_WHITESPACE
        ['attn.out', 'attn.weights', 'mlp.out', 'mlp.pre_act',
         'resid_mid', 'resid_post', 'resid_pre']
        """
        post, sandwich = self.residual == "post", self.residual == "sandwich"
        attn_masks = subdict(masks, "attn.")
        mlp_masks = subdict(masks, "mlp.")
        if record is not None:
            record["resid_pre"] = x
        # attention sublayer
        h = x if post else self.attn_norm(x)  # (B, T, C)
        a, attn = self.attn(h, masks=attn_masks, past=past,
                            need_weights=record is not None)  # (B, T, C)
        if sandwich:
            a = self.attn_out_norm(a)  # (B, T, C)
        a = self.attn_resid_dropout(a, attn_masks, "resid_dropout")  # (B, T, C)
        x = x + a  # (B, T, C), the residual sum
        if post:
            x = self.attn_norm(x)  # (B, T, C)
        if record is not None:
            record["attn.weights"], record["attn.out"], record["resid_mid"] = attn.att, a, x
        # feed-forward sublayer
        h = x if post else self.mlp_norm(x)  # (B, T, C)
        m, u = self.mlp(h)  # (B, T, C), (B, T, F)
        if sandwich:
            m = self.mlp_out_norm(m)  # (B, T, C)
        m = self.mlp_resid_dropout(m, mlp_masks, "resid_dropout")  # (B, T, C)
        x = x + m  # (B, T, C)
        if post:
            x = self.mlp_norm(x)  # (B, T, C)
        if record is not None:
            record["mlp.pre_act"], record["mlp.out"], record["resid_post"] = u, m, x
        return x, attn.kv

r"""The PyTorch backend's speed path: a decoding step for one new token, without the modules.

Generating text with the key/value cache feeds one token per step. At batch 1 every tensor of
that step holds a few hundred numbers: a (1, C) row times a (C, 3C) matrix is 50k
multiply-adds, well under a microsecond of arithmetic, while one PyTorch operation costs 1-10 µs
on a CPU, and every ``nn.Module`` call, ``subdict`` of the dropout masks and parameter access
through ``nn.Module.__getattr__`` adds Python on top. The module's decoding step
(:class:`~literate_tx.torch_backend.model.Transformer` with ``past``) is therefore almost all
overhead: 0.9 ms per token on the medium benchmark preset (L=4, C=128, 2-core AMD EPYC), while
recomputing the whole sequence costs 3-4.5 ms per token on average over 256 new tokens — so
the cache paid only x3.6-x4.5.

:func:`decode_step` computes the same function for one new token per sequence with as few
operations as the maths allows:

* **One query sees every key**, so there is no causal mask, and the attention is written out
  as two ``torch.bmm`` and a softmax (``scaled_dot_product_attention``'s CPU kernel costs more
  than the three at this size).
* **The three projections as one** (C, C + 2GD) product ((C, 3C) without grouped-query
  attention), the weights concatenated once and kept in
  :class:`DecodeWeights` until a parameter changes (the module concatenates them at every call,
  so that autograd sees the canonical parameters). The scale :math:`1/\sqrt{D}` of
  eq. :eq:`attn-scores` is folded into :math:`W_q` and :math:`b_q` there: an operation with a
  Python number costs 2.6 µs, more than twice an operation of two tensors.
* **The exact GELU in two operations.** With :math:`z = u/\sqrt{2}`,

  .. math::
     :label: fast-gelu

     \mathrm{GELU}(u)\, W_{down} = \tfrac{u}{2}\,\bigl(1 + \mathrm{erf}(u/\sqrt{2})\bigr)\, W_{down}
     = z\,(1 + \mathrm{erf}\, z)\; \tfrac{W_{down}}{\sqrt{2}},

  so :math:`W_{up}, b_{up}` (which give :math:`u`) and :math:`W_{down}` are kept divided by
  :math:`\sqrt{2}`, and the activation is ``torch.addcmul(z, z, torch.erf(z))``: 3 µs for 512
  values, where ``F.gelu`` takes 8 µs (the other activations are the modules' own
  functions).
* **The weights gathered once**: every tensor the step reads is a field of a
  :class:`DecodeLayer`, not a chain of module attributes (about 0.4 µs per access).
* **Position tables computed once** for all ``max_seq_len`` positions (the sinusoidal table,
  RoPE's cosines and sines, ALiBi's distances) and sliced at the new position; the module
  recomputes its tables at every call, eight or more operations each.
* **Grouped-query attention without repetition**: the :math:`R = H/G` queries of a key/value
  group form one (R, D) matrix against the group's cached keys, so the keys and values are read
  once per group and never repeated (eq. :eq:`attn-gqa` by grouping the queries instead of
  copying the keys; for :math:`G = H` this is the usual one query per head).
* **Rows, not sequences**: the hidden state is a (B, C) matrix, so every linear layer is one
  ``torch.addmm`` with nothing to reshape.

The keys and values go into the same :class:`~literate_tx.torch_backend.attention.KVCache` the
module uses, so a cache moves freely between the two paths. Norms are the modules' own
(LayerNorm as ``torch.layer_norm`` on its parameters, RMSNorm its ``forward``), every residual
layout and position scheme is handled, and ``tests/test_torch_fast.py`` proves the step equal
to the module over the whole switch matrix, in float64 (1e-10) and float32, and checks that
changed weights reach the next step. The folded constants change the rounding only: float64
logits agree to within 6e-15 relative (O(1) weights, two layers, every position scheme).

:class:`FastTorchModel` takes the step for every ``decode`` call with one new token per
sequence; a prompt (several tokens) and everything else go through the module.

**Measured** on the medium preset, float32, batch 1 (2026-12, 2-core AMD EPYC, torch 2.13 CPU):
the step 0.34 ms against the module's 0.9 ms; inside :func:`~literate_tx.generation.generate`
0.43 ms per token, and the cache x7.1-x9.5 faster than recomputation (the module: x3.6-x4.5).
At batch 16 the cache is x29 faster with the step, x16 with the module. :doc:`/benchmarks` has
the tables and the commands.

Examples
--------
>>> import numpy as np, literate_tx as ltx
>>> cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, position="rope")
>>> fast = ltx.create_model(cfg, backend="torch", fast=True, dtype="float64")
>>> plain = ltx.create_model(cfg, backend="torch", params=fast.parameters(), dtype="float64")
>>> _, kv = fast.decode([[1, 2, 3]])  # the prompt: through the module
>>> step, kv = fast.decode([[4]], kv)  # one new token: decode_step
>>> full = plain.forward([[1, 2, 3, 4]])
>>> bool(np.allclose(step[0, 0], full[0, 3], rtol=0, atol=1e-12))
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from operator import attrgetter
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .activations import activation_forward
from .attention import KVCache
from .model import TorchModel, Transformer
from .norms import LayerNorm
from .positions import alibi_slopes, apply_rope, rope_tables, sinusoidal_table

_SQRT_HALF = math.sqrt(0.5)
_version = attrgetter("_version")  # a tensor's in-place modification counter

__all__ = ["DecodeLayer", "DecodeWeights", "decode_step", "FastTorchModel"]


def _addmm(b: torch.Tensor | None, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w + b`` for (B, n) rows: one BLAS call (``b`` None: no bias)."""
    return torch.mm(x, w) if b is None else torch.addmm(b, x, w)  # (B, m)


def _norm(module: nn.Module) -> Callable | None:
    """A norm module as a function of (B, C) rows; None for ``nn.Identity`` (no norm)."""
    if isinstance(module, nn.Identity):
        return None
    if isinstance(module, LayerNorm):  # the operator, without the module call around it
        return partial(torch.layer_norm, normalized_shape=module.weight.shape,
                       weight=module.weight, bias=module.bias, eps=module.eps)
    return module.forward  # RMSNorm: its own few operators


class DecodeLayer(NamedTuple):
    r"""One block's weights for :func:`decode_step`: the module's own tensors, and copies.

    The norms are functions of (B, C) rows (None: no norm at that site). Every weight is the
    module's own parameter (so that in-place updates show through), except the copies:
    ``w_qkv`` and ``b_qkv``, :math:`[W_q/\sqrt{D}\; W_k\; W_v]` and the three biases side by
    side, and for the exact GELU ``w_up``, ``b_up`` and ``w_down``, divided by :math:`\sqrt{2}`
    (eq. :eq:`fast-gelu`).
    """

    attn_norm: Callable | None
    w_qkv: torch.Tensor  # (C, C + 2 G D), (C, 3C) without grouped-query attention
    b_qkv: torch.Tensor | None  # (C + 2 G D,)
    w_o: torch.Tensor  # (C, C)
    b_o: torch.Tensor | None  # (C,)
    attn_out_norm: Callable | None  # sandwich only
    mlp_norm: Callable | None
    w_gate: torch.Tensor | None  # (C, F), SwiGLU only
    b_gate: torch.Tensor | None
    w_up: torch.Tensor  # (C, F)
    b_up: torch.Tensor | None
    w_down: torch.Tensor  # (F, C)
    b_down: torch.Tensor | None
    mlp_out_norm: Callable | None  # sandwich only


@dataclass(frozen=True)
class DecodeWeights:
    r"""What :func:`decode_step` keeps between calls: the weights, gathered, and the tables.

    Reaching a parameter through ``module.blocks[i].attn.w_o`` runs ``nn.Module.__getattr__``
    (about 0.4 µs each, more than a hundred per step at four layers); this gathers them once.

    Attributes
    ----------
    layers : list of DecodeLayer
        Per block, its weights, with :math:`[W_q/\sqrt{D}\; W_k\; W_v]` (C, C + 2GD) and the
        three biases (C + 2GD,) concatenated.
    tokens : Tensor
        The token embedding, (V, C).
    positions : Tensor or None
        Position rows added to the embedding, (max_seq_len, C): the learned table (the
        parameter itself) or the sinusoidal one; None otherwise.
    cos, sin : Tensor or None
        RoPE's tables, (max_seq_len, D), for ``position="rope"``.
    alibi : Tensor or None
        For ``position="alibi"``: :math:`-\kappa_h (T_{max} - 1 - k)`, (H, max_seq_len), so that
        the bias of query :math:`n` on keys :math:`j \le n`, :math:`-\kappa_h (n - j)`, is the slice
        ``alibi[:, T_max - 1 - n:]``.
    final_norm : callable or None
    head : Tensor
        :math:`W_{head}`, (C, V): ``lm_head.w``, or the embedding's transpose when tied.
    sources : tuple of Tensor
        The parameters behind the copies (:class:`DecodeLayer`).
    key : tuple
        Their data pointers and version counters at :meth:`of`.

    Notes
    -----
    :meth:`is_current` sees every in-place change of the copied parameters (an optimiser step,
    ``load_parameters``, ``load_state_dict``, ``p.data = ...``); a parameter *replaced* by a
    new ``nn.Parameter`` object is not seen: build new weights with :meth:`of`.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> module = Transformer(ltx.ModelConfig(10, 8, 1, 2, 16, 8, position="alibi"))
    >>> w = DecodeWeights.of(module)
    >>> tuple(w.layers[0].w_qkv.shape), tuple(w.alibi.shape), w.positions is None
    ((8, 24), (2, 8), True)
    >>> w.is_current()
    True
    >>> with torch.no_grad():
    ...     _ = module.blocks[0].attn.w_k.add_(1.0)
    >>> w.is_current()
    False
    """

    layers: list
    tokens: torch.Tensor
    positions: torch.Tensor | None
    cos: torch.Tensor | None
    sin: torch.Tensor | None
    alibi: torch.Tensor | None
    final_norm: Callable | None
    head: torch.Tensor
    sources: tuple
    key: tuple

    @staticmethod
    def _key(sources) -> tuple:
        return (*map(torch.Tensor.data_ptr, sources), *map(_version, sources))

    def is_current(self) -> bool:
        """Whether none of the copied parameters changed since :meth:`of`."""
        return self._key(self.sources) == self.key

    @classmethod
    def of(cls, module: Transformer) -> DecodeWeights:
        """Gather the weights of ``module``, concatenate its projections, compute its tables."""
        cfg = module.config
        E = module.embed.tokens  # (V, C); also gives the dtype and the device
        T_max, C, H = cfg.max_seq_len, cfg.d_model, cfg.n_heads
        D = C // H
        erf_gelu = cfg.activation == "gelu"
        layers, sources = [], []
        for block in module.blocks:
            attn, mlp = block.attn, block.mlp
            biases = attn.b_q is not None
            sources += [attn.w_q, attn.w_k, attn.w_v]
            sources += [attn.b_q, attn.b_k, attn.b_v] if biases else []
            sources += ([mlp.w_up, mlp.w_down] + ([mlp.b_up] if biases else [])) if erf_gelu else []
            with torch.no_grad():
                # eq. (attn-scores)'s 1 / sqrt(D) folded into W_q and b_q
                w_qkv = torch.cat([attn.w_q / math.sqrt(D), attn.w_k, attn.w_v],
                                  dim=1)  # (C, C + 2 G D)
                b_qkv = (torch.cat([attn.b_q / math.sqrt(D), attn.b_k, attn.b_v])  # (C + 2 G D,)
                         if biases else None)
                w_up, b_up, w_down = mlp.w_up, mlp.b_up, mlp.w_down
                if erf_gelu:  # the exact GELU's 1 / sqrt(2)s folded in, eq. (fast-gelu)
                    w_up, w_down = w_up * _SQRT_HALF, w_down * _SQRT_HALF  # (C, F), (F, C)
                    b_up = None if b_up is None else b_up * _SQRT_HALF  # (F,)
            optional = {name: (_norm(getattr(block, name)) if hasattr(block, name) else None)
                        for name in ("attn_out_norm", "mlp_out_norm")}
            layers.append(DecodeLayer(
                _norm(block.attn_norm), w_qkv, b_qkv, attn.w_o, attn.b_o,
                optional["attn_out_norm"], _norm(block.mlp_norm),
                mlp.w_gate, mlp.b_gate, w_up, b_up, w_down, mlp.b_down,
                optional["mlp_out_norm"]))
        positions = module.embed.positions  # (T_max, C) or None
        cos = sin = alibi = None
        if cfg.position == "sinusoidal":
            positions = sinusoidal_table(T_max, C, E.dtype, 0, E.device)  # (T_max, C)
        elif cfg.position == "rope":
            cos, sin = rope_tables(T_max, D, cfg.rope_theta, E.dtype, 0, E.device,
                                   cfg.rope_scaling)  # (T_max, D)
        elif cfg.position == "alibi":
            distance = torch.arange(T_max - 1, -1, -1, dtype=torch.float64, device=E.device)
            slopes = alibi_slopes(H).to(E.device)  # (H,), float64
            alibi = (-slopes[:, None] * distance).to(E.dtype)  # (H, T_max): -kappa_h (T_max-1-k)
        head = E.T if module.lm_head is None else module.lm_head.w  # (C, V)
        return cls(layers, E, positions, cos, sin, alibi, _norm(module.final_norm), head,
                   tuple(sources), cls._key(sources))


def decode_step(config, weights: DecodeWeights, tokens: torch.Tensor,
                past: Sequence[KVCache]) -> tuple[torch.Tensor, list[KVCache]]:
    r"""Logits of one new token per sequence after the cached positions: the module's function.

    The same equations as :meth:`Transformer.forward <.model.Transformer.forward>` with
    ``past`` — eqs. :eq:`embed-forward`, :eq:`attn-qkv` to :eq:`attn-out`, :eq:`residual`,
    :eq:`model-forward` — for a query at position :math:`n` = ``past[0].length``, which sees
    keys :math:`0..n`. Run it under :func:`torch.inference_mode` or :func:`torch.no_grad`, in
    evaluation (no dropout).

    Parameters
    ----------
    config : ModelConfig
    weights : DecodeWeights
        ``DecodeWeights.of(module)``, current (:meth:`DecodeWeights.is_current`).
    tokens : (B, 1) int64 Tensor
    past : sequence of KVCache
        One per layer, all of the same length :math:`n <` ``max_seq_len``.

    Returns
    -------
    logits : (B, 1, V) Tensor
    kv : list of KVCache
        The caches with this token's keys and values appended (in place, as the module does).

    Examples
    --------
    >>> import literate_tx as ltx
    >>> cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8)
    >>> module = Transformer(cfg, dtype=torch.float64)
    >>> _, kv = module(torch.tensor([[1, 2]]), return_kv=True)
    >>> with torch.inference_mode():
    ...     step, kv = decode_step(cfg, DecodeWeights.of(module), torch.tensor([[3]]), kv)
    >>> full = module(torch.tensor([[1, 2, 3]]))
    >>> bool(torch.allclose(step[:, 0], full[:, 2], rtol=0, atol=1e-12)), kv[0].length
    (True, 3)
    """
    B, C, H, G = tokens.shape[0], config.d_model, config.n_heads, config.kv_heads
    D, R = C // H, H // G
    n = past[0].length  # the new token's position
    post = config.residual == "post"
    activation = config.activation
    # eq. (embed-forward): the token's row plus its position's
    x = F.embedding(tokens[:, 0], weights.tokens)  # (B, C)
    if weights.positions is not None:
        x = x + weights.positions[n]  # (B, C)
    kv = []
    for layer, cache in zip(weights.layers, past, strict=True):
        # attention sublayer, eqs. (attn-qkv) to (attn-out) for one query
        h = x if layer.attn_norm is None or post else layer.attn_norm(x)  # (B, C)
        qkv = _addmm(layer.b_qkv, h, layer.w_qkv)  # (B, C + 2 G D); q divided by sqrt(D)
        if G == H:
            q, k, v = qkv.view(B, 3, H, 1, D).unbind(1)  # (B, H, 1, D) views
        else:
            q, k, v = qkv.split([C, G * D, G * D], dim=1)  # (B, C), (B, G D), (B, G D)
            q, k, v = q.view(B, H, 1, D), k.view(B, G, 1, D), v.view(B, G, 1, D)
        if weights.cos is not None:
            cos, sin = weights.cos[n], weights.sin[n]  # (D,), position n
            q = apply_rope(q, cos, sin)  # (B, H, 1, D), eq. (rope)
            k = apply_rope(k, cos, sin)  # (B, G, 1, D)
        cache = cache.append(k, v)  # written in place at position n
        kv.append(cache)
        # query heads g R .. g R + R - 1 against key/value head g, eq. (attn-gqa): (B G) groups
        keys = cache.k.reshape(B * G, n + 1, D)  # (B G, n + 1, D), a view
        s = torch.bmm(q.reshape(B * G, R, D), keys.transpose(1, 2))  # (B G, R, n + 1)
        if weights.alibi is not None:  # + (H, 1, n + 1) over B: -kappa_h (n - j)
            s = (s.view(B, H, 1, n + 1) + weights.alibi[:, None, config.max_seq_len - 1 - n:]
                 ).view(B * G, R, n + 1)
        att = torch.softmax(s, dim=-1)  # (B G, R, n + 1); no mask: key n is the newest
        y = torch.bmm(att, cache.v.reshape(B * G, n + 1, D))  # (B G, R, D) = (B, H, D)
        a = _addmm(layer.b_o, y.view(B, C), layer.w_o)  # (B, C), eq. (attn-out)
        if layer.attn_out_norm is not None:  # sandwich
            a = layer.attn_out_norm(a)  # (B, C)
        x = x + a  # (B, C), the residual sum
        if post and layer.attn_norm is not None:
            x = layer.attn_norm(x)  # (B, C)
        # feed-forward sublayer, eq. (mlp-forward) or (swiglu-forward)
        h = x if layer.mlp_norm is None or post else layer.mlp_norm(x)  # (B, C)
        u = _addmm(layer.b_up, h, layer.w_up)  # (B, F); u / sqrt(2) for the exact GELU
        if activation == "gelu":
            u = torch.addcmul(u, u, torch.erf(u))  # (B, F), eq. (fast-gelu): z (1 + erf z)
        elif activation == "swiglu":
            u = F.silu(_addmm(layer.b_gate, h, layer.w_gate)) * u  # (B, F)
        else:
            u = activation_forward(activation, u)  # (B, F)
        m = _addmm(layer.b_down, u, layer.w_down)  # (B, C)
        if layer.mlp_out_norm is not None:  # sandwich
            m = layer.mlp_out_norm(m)  # (B, C)
        x = x + m  # (B, C)
        if post and layer.mlp_norm is not None:
            x = layer.mlp_norm(x)  # (B, C)
    if weights.final_norm is not None:
        x = weights.final_norm(x)  # (B, C)
    return torch.mm(x, weights.head).unsqueeze(1), kv  # (B, 1, V)


class FastTorchModel(TorchModel):
    r""":class:`~.model.TorchModel` whose one-token decoding steps run :func:`decode_step`.

    Same constructor arguments, attributes and methods as :class:`~.model.TorchModel`
    (``create_model(cfg, backend="torch", fast=True)`` builds one). ``decode`` with one new
    token per sequence takes the fast step; a prompt of several tokens, ``forward``,
    ``loss_and_grads`` and ``run_with_cache`` are the module's. The concatenated projections
    are rebuilt whenever a parameter behind them changes, so training between decoding calls
    is safe.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> m = FastTorchModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
    >>> m.fast, m.num_parameters()
    (True, 840)
    >>> m
    FastTorchModel(1 layers, d_model=8, 840 parameters, float32, cpu, sdpa)
    """

    fast = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._weights: DecodeWeights | None = None

    def _decode(self, tokens: torch.Tensor, past: list[KVCache]):
        if tokens.shape[1] != 1:  # a prompt: the module
            return super()._decode(tokens, past)
        if self._weights is None or not self._weights.is_current():
            self._weights = DecodeWeights.of(self.module)
        return decode_step(self.config, self._weights, tokens, past)  # (B, 1, V), kv

r"""An independent GPT-2 for the benchmark, written the way most PyTorch code writes it.

The PyTorch backend (:mod:`literate_tx.torch_backend`) mirrors the NumPy derivations module
for module: one ``nn.Module`` per equation, the canonical parameter names. It is fair to ask
what that costs in speed, so ``literate-tx bench`` also times this model (backend
``torch-baseline``). It follows the usual layout of a GPT-2 in PyTorch, as nanoGPT's
``model.py`` has it:

- learned positions added to the token embedding;
- pre-LN blocks, :math:`x + \mathrm{attn}(\mathrm{LN}_1 x)` then
  :math:`x + \mathrm{mlp}(\mathrm{LN}_2 x)`;
- one ``nn.Linear`` ``c_attn`` for :math:`W_q, W_k, W_v` together;
- :func:`torch.nn.functional.scaled_dot_product_attention` with ``is_causal=True``;
- ``nn.LayerNorm`` and ``nn.GELU`` modules;
- a final LayerNorm and a linear head.

It was written for this package; no code was taken from nanoGPT. It loads the canonical
parameters: :math:`W_q, W_k, W_v` are stacked into ``c_attn``, and each weight is transposed
into ``nn.Linear``'s (out, in) layout. ``tests/test_baseline.py`` therefore proves that it
computes the same function as the PyTorch backend.

Only GPT-2's layout is built: LayerNorm, pre-LN residuals, GELU (exact or tanh), learned
positions, no dropout. A config with any other switch raises a ``ValueError`` that names it.

Examples
--------
>>> import numpy as np, literate_tx as ltx
>>> cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 6)
>>> ours = ltx.create_model(cfg, backend="torch", seed=0, dtype="float64")
>>> base = BaselineModel(cfg, ours.parameters(), dtype="float64")
>>> bool(np.allclose(base.forward([[1, 2, 3]]), ours.forward([[1, 2, 3]]), rtol=0, atol=1e-12))
True
>>> base.num_parameters() == ours.num_parameters()
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .inputs import as_targets, as_tokens, check_dtype

__all__ = ["GPT2", "BaselineModel"]

# the switches this layout has, and the values it supports
_SUPPORTED = {"norm": ("layernorm",), "residual": ("pre",), "activation": ("gelu", "gelu_tanh"),
              "position": ("learned",)}


def _check(config: ModelConfig) -> None:
    for field, allowed in _SUPPORTED.items():
        value = getattr(config, field)
        if value not in allowed:
            raise ValueError(f"{field}={value!r} is not allowed for the GPT-2 baseline; "
                             f"allowed: {', '.join(map(repr, allowed))}")
    if config.dropout != 0:
        raise ValueError(f"dropout={config.dropout!r} is not allowed for the GPT-2 baseline; "
                         "it is timed without dropout (dropout=0)")
    if config.n_kv_heads is not None:
        raise ValueError(f"n_kv_heads={config.n_kv_heads!r} is not allowed for the GPT-2 "
                         "baseline; GPT-2 has one key/value head per query head "
                         "(n_kv_heads=None)")


class _Attention(nn.Module):
    def __init__(self, C: int, H: int, bias: bool):
        super().__init__()
        self.n_heads = H
        self.c_attn = nn.Linear(C, 3 * C, bias=bias)  # W_q, W_k, W_v stacked
        self.c_proj = nn.Linear(C, C, bias=bias)  # W_o

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Causal self-attention of (B, T, C) rows, all heads by one SDPA call."""
        B, T, C = x.shape
        H = self.n_heads
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))  # (B, T, C)


class _MLP(nn.Module):
    def __init__(self, C: int, F_: int, bias: bool, approximate: str):
        super().__init__()
        self.c_fc = nn.Linear(C, F_, bias=bias)  # W_up
        self.gelu = nn.GELU(approximate=approximate)
        self.c_proj = nn.Linear(F_, C, bias=bias)  # W_down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The feed-forward sublayer on (B, T, C): W_down GELU(W_up x), plus biases."""
        return self.c_proj(self.gelu(self.c_fc(x)))  # (B, T, C)


class _Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        C = cfg.d_model
        approximate = "tanh" if cfg.activation == "gelu_tanh" else "none"
        self.ln_1 = nn.LayerNorm(C, eps=cfg.norm_eps, bias=cfg.bias)
        self.attn = _Attention(C, cfg.n_heads, cfg.bias)
        self.ln_2 = nn.LayerNorm(C, eps=cfg.norm_eps, bias=cfg.bias)
        self.mlp = _MLP(C, cfg.d_ff, cfg.bias, approximate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One pre-LN block on (B, T, C): both sublayers with their residual sums."""
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)


class GPT2(nn.Module):
    r"""GPT-2 in the usual PyTorch layout: ``wte``, ``wpe``, blocks ``h``, ``ln_f``, ``lm_head``.

    Parameters
    ----------
    config : ModelConfig
        GPT-2's layout only (see the module docstring); ``tie_embeddings`` shares ``wte``
        with the head, as GPT-2 does.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> GPT2(ltx.ModelConfig(10, 8, 1, 2, 16, 4))(torch.tensor([[1, 2, 3]])).shape
    torch.Size([1, 3, 10])
    >>> GPT2(ltx.ModelConfig(10, 8, 1, 2, 16, 4, position="rope"))
    Traceback (most recent call last):
    ...
    ValueError: position='rope' is not allowed for the GPT-2 baseline; allowed: 'learned'
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        _check(config)
        self.config = cfg = config
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.max_seq_len, cfg.d_model)
        self.h = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight  # one tensor, (V, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) of token ids (B, T)."""
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe.weight[:T]  # (B, T, C)
        for block in self.h:
            x = block(x)  # (B, T, C)
        return self.lm_head(self.ln_f(x))  # (B, T, V)

    def canonical_tensors(self):
        """``(name, tensor, rows, transposed)`` for every canonical parameter
        (:mod:`literate_tx.params`): the tensor of this module that holds it, the rows of it
        (the slice of ``c_attn`` for :math:`W_q, W_k, W_v` and their biases, else None), and
        whether ``nn.Linear``'s (out, in) layout stores it transposed."""
        cfg, C = self.config, self.config.d_model
        out = [("embed.tokens", self.wte.weight, None, False),  # (V, C)
               ("embed.positions", self.wpe.weight, None, False)]  # (T_max, C)
        for i, block in enumerate(self.h):
            p = f"blocks.{i}."
            linears = [(f"attn.{w}_{n}", block.attn.c_attn, slice(j * C, (j + 1) * C))
                       for j, n in enumerate("qkv") for w in "wb"]
            linears += [(f"attn.{w}_o", block.attn.c_proj, None) for w in "wb"]
            linears += [(f"mlp.{w}_up", block.mlp.c_fc, None) for w in "wb"]
            linears += [(f"mlp.{w}_down", block.mlp.c_proj, None) for w in "wb"]
            for name, linear, rows in linears:
                if name.split(".")[1].startswith("w"):
                    out.append((p + name, linear.weight, rows, True))  # (out, in) = W^T
                elif cfg.bias:
                    out.append((p + name, linear.bias, rows, False))
            for norm, name in ((block.ln_1, "attn_norm"), (block.ln_2, "mlp_norm")):
                out.append((p + name + ".weight", norm.weight, None, False))
                if cfg.bias:
                    out.append((p + name + ".bias", norm.bias, None, False))
        out.append(("final_norm.weight", self.ln_f.weight, None, False))
        if cfg.bias:
            out.append(("final_norm.bias", self.ln_f.bias, None, False))
        if not cfg.tie_embeddings:
            out.append(("lm_head.w", self.lm_head.weight, None, True))  # (V, C) = W_head^T
        return out

    @torch.no_grad()
    def load_canonical(self, params: Mapping[str, np.ndarray]) -> None:
        """Copy canonical parameters (:mod:`literate_tx.params`) into this layout."""
        for name, tensor, rows, transposed in self.canonical_tensors():
            value = torch.as_tensor(np.asarray(params[name]))
            (tensor if rows is None else tensor[rows]).copy_(value.T if transposed else value)


class BaselineModel:
    r"""The :class:`GPT2` module with the few methods the benchmark uses.

    Parameters
    ----------
    config : ModelConfig
    params : mapping of str to ndarray, optional
        Canonical parameters; default: the module's own initialisation.
    dtype : {"float32", "float64"}

    Examples
    --------
    >>> import literate_tx as ltx
    >>> m = BaselineModel(ltx.ModelConfig(10, 8, 1, 2, 16, 4))
    >>> m.forward([[1, 2]]).shape, m.num_parameters()
    ((1, 2, 10), 808)
    """

    backend = "torch"

    def __init__(self, config: ModelConfig, params: Mapping | None = None, *,
                 dtype: str = "float32"):
        self.config = config
        self.module = GPT2(config).to(getattr(torch, check_dtype(dtype)))
        if params is not None:
            self.module.load_canonical(params)

    def num_parameters(self) -> int:
        """Distinct parameters (a tied head counts once), as the backends count them."""
        return sum(p.numel() for p in self.module.parameters())

    def forward(self, tokens) -> np.ndarray:
        """Logits (B, T, V) of (B, T) token ids (checked as the backends check them), as a NumPy
        array (evaluation, no gradients)."""
        self.module.eval()
        with torch.no_grad():
            return self.module(torch.as_tensor(as_tokens(tokens, self.config))).numpy()

    def loss_and_grads(self, tokens, targets) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy of (B, T) targets and its gradients under the canonical names,
        by autograd (as the backends' ``loss_and_grads``, without ``ignore_index``)."""
        arr = as_tokens(tokens, self.config)  # (B, T)
        tgt = as_targets(targets, arr, self.config, -100)  # (B, T)
        self.module.train()
        self.module.zero_grad(set_to_none=True)
        logits = self.module(torch.as_tensor(arr))  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), torch.as_tensor(tgt).flatten())
        loss.backward()
        grads = {}
        for name, tensor, rows, transposed in self.module.canonical_tensors():
            g = tensor.grad if rows is None else tensor.grad[rows]
            grads[name] = (g.T if transposed else g).numpy().copy()
        return float(loss.detach()), grads

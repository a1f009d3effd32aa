r"""The canonical parameter layout, shared by every backend.

Every weight of the model has one name and one shape, decided here from a
:class:`~literate_tx.config.ModelConfig` alone. Each backend stores its weights in its own type
(nested lists, ``ndarray``, ``torch.nn.Parameter``) but imports and exports exactly this dict of
NumPy arrays, so that ``create_model(cfg, backend="python", params=torch_model.parameters())``
works.

Conventions
-----------
* Linear weights are stored ``(in, out)`` so that a layer computes :math:`y = x W + b` with the
  batch-first row vector :math:`x` — the notation of the derivations. (This is GPT-2's ``Conv1D``
  layout; ``torch.nn.Linear`` and Llama checkpoints store ``(out, in)`` and are transposed on
  import.)
* The key and value projections are ``(C, G D)`` with ``G = n_kv_heads`` key/value heads of
  width ``D`` (grouped-query attention); ``G = H`` by default, and then every attention weight is
  ``(C, C)``.
* Names are dotted paths: ``embed.*``, ``blocks.{i}.*``, ``final_norm.*``, ``lm_head.*``, listed in
  the order a forward pass first touches them.

Initialisation
--------------
:func:`init_params` draws from one seeded ``numpy.random.Generator`` in the canonical order, so a
seed fixes the weights for every backend:

.. math::
   :label: init

   W \sim \mathcal{N}(0, \sigma_\text{init}^2), \qquad
   W_{o}, W_{down} \sim \mathcal{N}\!\left(0, \frac{\sigma_\text{init}^2}{2L}\right), \qquad
   b = 0, \quad \gamma = 1, \quad \beta = 0,

where :math:`\sigma_\text{init}` is ``init_std``; the residual projections are scaled down by
:math:`1/\sqrt{2L}` as in GPT-2 so that the variance of the residual stream does not grow with
depth (each of the :math:`2L` sublayers adds one term).

Examples
--------
>>> from literate_tx import ModelConfig
>>> from literate_tx.params import param_shapes
>>> cfg = ModelConfig(vocab_size=10, d_model=8, n_layers=1, n_heads=2, d_ff=16, max_seq_len=4,
...                   bias=False, norm="rmsnorm", tie_embeddings=True)
>>> for name, shape in param_shapes(cfg).items():
...     print(name, shape)
embed.tokens (10, 8)
embed.positions (4, 8)
blocks.0.attn_norm.weight (8,)
blocks.0.attn.w_q (8, 8)
blocks.0.attn.w_k (8, 8)
blocks.0.attn.w_v (8, 8)
blocks.0.attn.w_o (8, 8)
blocks.0.mlp_norm.weight (8,)
blocks.0.mlp.w_up (8, 16)
blocks.0.mlp.w_down (16, 8)
final_norm.weight (8,)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .config import ModelConfig

__all__ = ["param_shapes", "init_params", "num_parameters", "validate_params", "layout_table",
           "is_no_decay"]

DTYPES = ("float32", "float64")


def _norm_shapes(prefix: str, cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of one norm layer's parameters (none for ``norm="none"``)."""
    if cfg.norm == "none":
        return {}
    shapes = {f"{prefix}.weight": (cfg.d_model,)}
    if cfg.norm == "layernorm" and cfg.bias:
        shapes[f"{prefix}.bias"] = (cfg.d_model,)
    return shapes


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    r"""Names and shapes of every parameter, in canonical order.

    Parameters
    ----------
    cfg : ModelConfig
        The architecture.

    Returns
    -------
    dict of str to tuple of int
        Ordered as a forward pass first uses them.

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> cfg = ModelConfig(10, 8, 2, 2, 16, 4, activation="swiglu", position="rope")
    >>> [n.split(".")[-1] for n in param_shapes(cfg) if n.startswith("blocks.1.mlp.")]
    ['w_gate', 'b_gate', 'w_up', 'b_up', 'w_down', 'b_down']

    With grouped-query attention the keys and values are ``G D = n_kv_heads * d_head`` wide:

    >>> shapes = param_shapes(cfg.replace(n_kv_heads=1))
    >>> shapes["blocks.0.attn.w_q"], shapes["blocks.0.attn.w_k"], shapes["blocks.0.attn.b_v"]
    ((8, 8), (8, 4), (4,))
    """
    C, F, V = cfg.d_model, cfg.d_ff, cfg.vocab_size
    kv = cfg.kv_heads * cfg.d_head  # G D: keys and values of the G key/value heads
    shapes: dict[str, tuple[int, ...]] = {"embed.tokens": (V, C)}
    if cfg.position == "learned":
        shapes["embed.positions"] = (cfg.max_seq_len, C)
    for i in range(cfg.n_layers):
        p = f"blocks.{i}"
        if cfg.residual != "post":
            shapes.update(_norm_shapes(f"{p}.attn_norm", cfg))
        for w, width in (("q", C), ("k", kv), ("v", kv), ("o", C)):
            shapes[f"{p}.attn.w_{w}"] = (C, width)
            if cfg.bias:
                shapes[f"{p}.attn.b_{w}"] = (width,)
        if cfg.residual == "sandwich":
            shapes.update(_norm_shapes(f"{p}.attn_out_norm", cfg))
        if cfg.residual == "post":
            shapes.update(_norm_shapes(f"{p}.attn_norm", cfg))
        if cfg.residual != "post":
            shapes.update(_norm_shapes(f"{p}.mlp_norm", cfg))
        mlp = [("gate", (C, F))] if cfg.gated else []
        for w, shape in mlp + [("up", (C, F)), ("down", (F, C))]:
            shapes[f"{p}.mlp.w_{w}"] = shape
            if cfg.bias:
                shapes[f"{p}.mlp.b_{w}"] = (shape[1],)
        if cfg.residual == "sandwich":
            shapes.update(_norm_shapes(f"{p}.mlp_out_norm", cfg))
        if cfg.residual == "post":
            shapes.update(_norm_shapes(f"{p}.mlp_norm", cfg))
    if cfg.has_final_norm:
        shapes.update(_norm_shapes("final_norm", cfg))
    if not cfg.tie_embeddings:
        shapes["lm_head.w"] = (C, V)
    return shapes


def num_parameters(cfg: ModelConfig) -> int:
    """Total number of scalar parameters.

    Examples
    --------
    >>> from literate_tx import gpt2_config
    >>> num_parameters(gpt2_config())  # GPT-2 small
    124439808
    """
    return sum(math.prod(s) for s in param_shapes(cfg).values())


def _check_dtype(dtype: str | np.dtype) -> np.dtype:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; allowed: 'float32', 'float64'")
    return np.dtype(name)


def init_params(cfg: ModelConfig, seed: int = 0, dtype: str = "float32") -> dict[str, np.ndarray]:
    r"""Seeded initial parameters in the canonical layout, eq. :eq:`init`.

    Parameters
    ----------
    cfg : ModelConfig
        The architecture.
    seed : int
        Seed of the ``numpy.random.Generator``; the same seed gives the same weights in every
        backend.
    dtype : {"float32", "float64"}
        Floating-point type of the arrays.

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> cfg = ModelConfig(10, 8, 1, 2, 16, 4)
    >>> p = init_params(cfg, seed=0)
    >>> p["blocks.0.attn_norm.weight"][:3], p["blocks.0.attn.b_q"][:3]
    (array([1., 1., 1.], dtype=float32), array([0., 0., 0.], dtype=float32))
    >>> bool((init_params(cfg, seed=0)["embed.tokens"] == p["embed.tokens"]).all())
    True
    """
    dt = _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    residual_std = cfg.init_std / math.sqrt(2 * cfg.n_layers)
    params: dict[str, np.ndarray] = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[1]
        if "norm" in name.rsplit(".", 2)[-2] and leaf == "weight":
            value = np.ones(shape)
        elif leaf == "bias" or leaf.startswith("b_"):
            value = np.zeros(shape)
        elif leaf in ("w_o", "w_down"):
            value = rng.normal(0.0, residual_std, size=shape)
        else:
            value = rng.normal(0.0, cfg.init_std, size=shape)
        params[name] = value.astype(dt)
    return params


def validate_params(cfg: ModelConfig, params: Mapping[str, object]) -> dict[str, np.ndarray]:
    """Check names and shapes against the layout; return the params as float ndarrays.

    Raises
    ------
    ValueError
        Naming the missing, unexpected or mis-shaped tensor, or the tensor holding a NaN or inf.

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> cfg = ModelConfig(10, 8, 1, 2, 16, 4)
    >>> p = init_params(cfg)
    >>> p["lm_head.w"] = p["lm_head.w"][:, :5]
    >>> validate_params(cfg, p)
    Traceback (most recent call last):
    ...
    ValueError: parameter 'lm_head.w' has shape (8, 5), but the config needs (8, 10)
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping of name -> array, got {type(params).__name__}")
    shapes = param_shapes(cfg)
    missing = [n for n in shapes if n not in params]
    if missing:
        raise ValueError(
            f"missing parameter(s) {', '.join(map(repr, missing[:5]))}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            + " required by the config"
        )
    extra = [n for n in params if n not in shapes]
    if extra:
        raise ValueError(
            f"unexpected parameter(s) {', '.join(map(repr, extra[:5]))} not in the config's layout "
            "(does the config match the weights?)"
        )
    out = {}
    for name, shape in shapes.items():
        value = np.asarray(params[name])
        if value.shape != shape:
            raise ValueError(
                f"parameter {name!r} has shape {value.shape}, but the config needs {shape}"
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"parameter {name!r} has dtype {value.dtype}; expected a float type")
        if not np.isfinite(value).all():
            raise ValueError(f"parameter {name!r} contains NaN or inf")
        out[name] = value
    return out


def is_no_decay(name: str) -> bool:
    """Whether a parameter is a norm gain/shift or a bias (no weight decay by default).

    Examples
    --------
    >>> [is_no_decay(n) for n in ("blocks.0.attn.w_q", "blocks.0.attn.b_q", "final_norm.weight")]
    [False, True, True]
    """
    parts = name.split(".")
    leaf, parent = parts[-1], (parts[-2] if len(parts) > 1 else "")
    return leaf == "bias" or leaf.startswith("b_") or parent.endswith("norm")


def layout_table(cfg: ModelConfig) -> str:
    """A Markdown table of the layout: name, shape and number of values.

    Examples
    --------
    >>> from literate_tx import ModelConfig
    >>> cfg = ModelConfig(4, 2, 1, 1, 2, 2, norm="none", bias=False, tie_embeddings=True,
    ...                   position="none")
    >>> print(layout_table(cfg))
    | name | shape | values |
    |---|---|---|
    | `embed.tokens` | (4, 2) | 8 |
    | `blocks.0.attn.w_q` | (2, 2) | 4 |
    | `blocks.0.attn.w_k` | (2, 2) | 4 |
    | `blocks.0.attn.w_v` | (2, 2) | 4 |
    | `blocks.0.attn.w_o` | (2, 2) | 4 |
    | `blocks.0.mlp.w_up` | (2, 2) | 4 |
    | `blocks.0.mlp.w_down` | (2, 2) | 4 |
    | **total** | | 32 |
    """
    rows = ["| name | shape | values |", "|---|---|---|"]
    for name, shape in param_shapes(cfg).items():
        rows.append(f"| `{name}` | {shape} | {math.prod(shape)} |")
    rows.append(f"| **total** | | {num_parameters(cfg)} |")
    return "\n".join(rows)

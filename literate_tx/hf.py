r"""Hugging Face checkpoints in and out: GPT-2 and Llama folders for every backend.

A Hugging Face model folder holds two things this module reads and writes:

``config.json``
    the architecture, in the family's own words (``n_embd`` for GPT-2, ``hidden_size`` for
    Llama, ...);
``model.safetensors``
    the weights, by the family's own names; a large model splits them over several
    ``model-0000k-of-0000n.safetensors`` files listed in ``model.safetensors.index.json``
    (``save_hf(..., max_shard_size="2GB")`` writes them so).

:func:`load_hf` turns such a folder into a :class:`~literate_tx.config.ModelConfig` and the
canonical parameters of :mod:`literate_tx.params`, which every backend accepts; :func:`save_hf`
writes a model of any backend back in the same format, readable by ``transformers``'
``from_pretrained``. Two families are understood, ``GPT2LMHeadModel`` (``model_type`` ``"gpt2"``)
and ``LlamaForCausalLM`` (``"llama"``); anything else is refused by name.

Renaming, transposing, splitting
--------------------------------
Our linear maps compute :math:`y = x W + b` with :math:`W` stored ``(in, out)``. GPT-2's ``Conv1D``
stores its weights the same way, so they are copied. Llama's ``nn.Linear`` computes
:math:`y = x W^\top + b` with :math:`W` stored ``(out, in)``, so each of its weights is
transposed; so is every ``lm_head.weight``, stored ``(V, C)`` where ours is ``(C, V)``. GPT-2 fuses
the three input projections of attention into one ``c_attn`` map of width :math:`3C`:

.. math::
   :label: hf-c-attn

   x W_{c\_attn} = [\, x W_q \;|\; x W_k \;|\; x W_v \,], \qquad
   W_{c\_attn} = [\, W_q \;|\; W_k \;|\; W_v \,] \in \mathbb{R}^{C \times 3C},

so its weight splits column-wise into three ``(C, C)`` blocks, and its bias likewise into three
:math:`C`-vectors. With grouped-query attention (Llama's ``num_key_value_heads`` :math:`G < H`),
``k_proj`` and ``v_proj`` have :math:`G D` output rows and become our ``(C, G D)`` ``w_k`` and
``w_v`` (see :mod:`literate_tx.config`).

The heads need no reordering: both families cut the :math:`C` columns of a projection into
:math:`H` consecutive blocks of :math:`D`, as we do, and Llama's rotary embedding pairs dimension
:math:`i` of a head with dimension :math:`i + D/2` (*rotate half*), which is our convention too
(:mod:`literate_tx.numpy_backend.positions`). ``{i}`` below is the block index; a row applies
when our side of it exists in the configuration (biases only with ``bias=True``, ``lm_head``
only when the head is untied: a tied head is the token embedding, which Hugging Face writes
once).

GPT-2:

========================================  ===============================  ==============
GPT2LMHeadModel tensor                    canonical parameter              how
========================================  ===============================  ==============
``transformer.wte.weight``                ``embed.tokens``                 as is
``transformer.wpe.weight``                ``embed.positions``              as is
``transformer.h.{i}.ln_1.weight``         ``blocks.{i}.attn_norm.weight``  as is
``transformer.h.{i}.ln_1.bias``           ``blocks.{i}.attn_norm.bias``    as is
``transformer.h.{i}.attn.c_attn.weight``  ``blocks.{i}.attn.w_{q,k,v}``    split in three
``transformer.h.{i}.attn.c_attn.bias``    ``blocks.{i}.attn.b_{q,k,v}``    split in three
``transformer.h.{i}.attn.c_proj.weight``  ``blocks.{i}.attn.w_o``          as is
``transformer.h.{i}.attn.c_proj.bias``    ``blocks.{i}.attn.b_o``          as is
``transformer.h.{i}.ln_2.weight``         ``blocks.{i}.mlp_norm.weight``   as is
``transformer.h.{i}.ln_2.bias``           ``blocks.{i}.mlp_norm.bias``     as is
``transformer.h.{i}.mlp.c_fc.weight``     ``blocks.{i}.mlp.w_up``          as is
``transformer.h.{i}.mlp.c_fc.bias``       ``blocks.{i}.mlp.b_up``          as is
``transformer.h.{i}.mlp.c_proj.weight``   ``blocks.{i}.mlp.w_down``        as is
``transformer.h.{i}.mlp.c_proj.bias``     ``blocks.{i}.mlp.b_down``        as is
``transformer.ln_f.weight``               ``final_norm.weight``            as is
``transformer.ln_f.bias``                 ``final_norm.bias``              as is
``lm_head.weight``                        ``lm_head.w``                    transposed
========================================  ===============================  ==============

Llama:

====================================================  ===============================  ==========
LlamaForCausalLM tensor                               canonical parameter              how
====================================================  ===============================  ==========
``model.embed_tokens.weight``                         ``embed.tokens``                 as is
``model.layers.{i}.input_layernorm.weight``           ``blocks.{i}.attn_norm.weight``  as is
``model.layers.{i}.self_attn.q_proj.weight``          ``blocks.{i}.attn.w_q``          transposed
``model.layers.{i}.self_attn.q_proj.bias``            ``blocks.{i}.attn.b_q``          as is
``model.layers.{i}.self_attn.k_proj.weight``          ``blocks.{i}.attn.w_k``          transposed
``model.layers.{i}.self_attn.k_proj.bias``            ``blocks.{i}.attn.b_k``          as is
``model.layers.{i}.self_attn.v_proj.weight``          ``blocks.{i}.attn.w_v``          transposed
``model.layers.{i}.self_attn.v_proj.bias``            ``blocks.{i}.attn.b_v``          as is
``model.layers.{i}.self_attn.o_proj.weight``          ``blocks.{i}.attn.w_o``          transposed
``model.layers.{i}.self_attn.o_proj.bias``            ``blocks.{i}.attn.b_o``          as is
``model.layers.{i}.post_attention_layernorm.weight``  ``blocks.{i}.mlp_norm.weight``   as is
``model.layers.{i}.mlp.gate_proj.weight``             ``blocks.{i}.mlp.w_gate``        transposed
``model.layers.{i}.mlp.gate_proj.bias``               ``blocks.{i}.mlp.b_gate``        as is
``model.layers.{i}.mlp.up_proj.weight``               ``blocks.{i}.mlp.w_up``          transposed
``model.layers.{i}.mlp.up_proj.bias``                 ``blocks.{i}.mlp.b_up``          as is
``model.layers.{i}.mlp.down_proj.weight``             ``blocks.{i}.mlp.w_down``        transposed
``model.layers.{i}.mlp.down_proj.bias``               ``blocks.{i}.mlp.b_down``        as is
``model.norm.weight``                                 ``final_norm.weight``            as is
``lm_head.weight``                                    ``lm_head.w``                    transposed
====================================================  ===============================  ==========

Both tables are printed by :func:`mapping_table` from the rules the code applies
(:func:`mapping_rules`), and a test checks that they are the ones above.

The configuration
-----------------
=========================  ============================  ===================================
``ModelConfig``            GPT-2 ``config.json``          Llama ``config.json``
=========================  ============================  ===================================
``vocab_size``             ``vocab_size``                 ``vocab_size``
``d_model``                ``n_embd``                     ``hidden_size``
``n_layers``               ``n_layer``                    ``num_hidden_layers``
``n_heads``                ``n_head``                     ``num_attention_heads``
``n_kv_heads``             (always ``n_head``)            ``num_key_value_heads``
``d_ff``                   ``n_inner`` (null: ``4C``)     ``intermediate_size``
``max_seq_len``            ``n_positions``                ``max_position_embeddings``
``norm_eps``               ``layer_norm_epsilon``         ``rms_norm_eps``
``rope_theta``             --                             ``rope_parameters.rope_theta``
``activation``             ``activation_function``        ``hidden_act = "silu"``: SwiGLU
``bias``                   always true                    ``attention_bias`` = ``mlp_bias``
``tie_embeddings``         ``tie_word_embeddings``        ``tie_word_embeddings``
``dropout``                the three ``*_pdrop``          ``attention_dropout`` (must be 0)
``init_std``               ``initializer_range``          ``initializer_range``
=========================  ============================  ===================================

GPT-2's ``activation_function`` ``"gelu_new"`` (and ``"gelu_pytorch_tanh"``) is our
``"gelu_tanh"``; ``"gelu"``, ``"relu"`` and ``"silu"`` are ``"gelu"``, ``"relu"`` and ``"swish"``.
Llama 3.1's RoPE scaling (``rope_type: "llama3"``, in ``rope_scaling`` or ``rope_parameters``)
becomes :attr:`ModelConfig.rope_scaling <literate_tx.config.ModelConfig>`, a
:class:`~literate_tx.config.RopeScaling`. Refused, each by name, because the model here would
compute something else: every other RoPE scaling (``"linear"``, ``"dynamic"``, ``"yarn"``,
...), a sliding
window, a ``head_dim`` other than ``hidden_size / num_attention_heads``, biases on the attention
maps but not the feed-forward ones (or the reverse), GPT-2's ``scale_attn_by_inverse_layer_idx``,
unscaled attention or cross-attention, GPT-2 dropouts that differ from each other, any other
activation, and any other ``model_type``. Loading also refuses a folder holding only
``pytorch_model.bin``: that is a pickle, and this package never unpickles.

The safetensors format
----------------------
A ``.safetensors`` file is an 8-byte little-endian length :math:`n`, then :math:`n` bytes of JSON
naming each tensor's dtype, shape and byte range, then the raw little-endian data: reading it
executes nothing. The ``safetensors`` package (``pip install "literate-tx[hf]"``) reads and writes
it when installed; without it, or for ``bfloat16`` tensors (which have no NumPy dtype), the few
lines of :func:`read_safetensors` and :func:`write_safetensors` do the same, so the core package
needs no extra dependency. A ``bfloat16`` or ``float16`` weight is widened exactly to
``float32``.

Examples
--------
>>> import os, tempfile, numpy as np, literate_tx as ltx
>>> cfg = ltx.gpt2_config(vocab_size=50, d_model=16, n_layers=2, n_heads=2, max_seq_len=16)
>>> model = ltx.create_model(cfg, backend="numpy", seed=0, dtype="float64")
>>> folder = tempfile.mkdtemp()
>>> save_hf(model, folder)
>>> sorted(os.listdir(folder))
['config.json', 'model.safetensors']
>>> cfg2, params = load_hf(folder)
>>> cfg2 == cfg, all(np.array_equal(params[k], v) for k, v in model.parameters().items())
(True, True)
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .checkpoint import atomic_write
from .config import ModelConfig, RopeScaling
from .params import param_shapes

__all__ = [
    "ARCHITECTURES",
    "Rule",
    "config_from_hf",
    "config_to_hf",
    "family_of",
    "from_hf_state",
    "load_hf",
    "mapping_rules",
    "mapping_table",
    "read_safetensors",
    "save_hf",
    "to_hf_state",
    "write_safetensors",
]

#: ``model_type`` -> the ``architectures`` entry Hugging Face writes for it
ARCHITECTURES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}


# =============================================================================== the mapping
class Rule(NamedTuple):
    r"""One row of the mapping: a Hugging Face tensor and the canonical parameter(s) it holds.

    Attributes
    ----------
    hf : str
        The Hugging Face name; ``{i}`` stands for the block index.
    ours : tuple of str
        The canonical name(s); more than one when the tensor is split (GPT-2's ``c_attn``).
    how : {"copy", "transpose", "split"}
        ``copy`` as is; ``transpose`` an ``(out, in)`` weight into ``(in, out)``; ``split`` the
        last axis into the canonical parameters' widths, in order (eq. :eq:`hf-c-attn`).

    Examples
    --------
    >>> rule = mapping_rules("llama")[2]
    >>> rule.hf, rule.ours, rule.how
    ('model.layers.{i}.self_attn.q_proj.weight', ('blocks.{i}.attn.w_q',), 'transpose')
    """

    hf: str
    ours: tuple[str, ...]
    how: str


def _gpt2_rules() -> list[Rule]:
    h = "transformer.h.{i}"
    b = "blocks.{i}"
    rules = [Rule("transformer.wte.weight", ("embed.tokens",), "copy"),
             Rule("transformer.wpe.weight", ("embed.positions",), "copy")]
    for hf_part, ours_part in (("ln_1", "attn_norm"),):
        rules += [Rule(f"{h}.{hf_part}.{p}", (f"{b}.{ours_part}.{p}",), "copy")
                  for p in ("weight", "bias")]
    rules += [
        Rule(f"{h}.attn.c_attn.weight", tuple(f"{b}.attn.w_{w}" for w in "qkv"), "split"),
        Rule(f"{h}.attn.c_attn.bias", tuple(f"{b}.attn.b_{w}" for w in "qkv"), "split"),
        Rule(f"{h}.attn.c_proj.weight", (f"{b}.attn.w_o",), "copy"),
        Rule(f"{h}.attn.c_proj.bias", (f"{b}.attn.b_o",), "copy"),
        Rule(f"{h}.ln_2.weight", (f"{b}.mlp_norm.weight",), "copy"),
        Rule(f"{h}.ln_2.bias", (f"{b}.mlp_norm.bias",), "copy"),
        Rule(f"{h}.mlp.c_fc.weight", (f"{b}.mlp.w_up",), "copy"),
        Rule(f"{h}.mlp.c_fc.bias", (f"{b}.mlp.b_up",), "copy"),
        Rule(f"{h}.mlp.c_proj.weight", (f"{b}.mlp.w_down",), "copy"),
        Rule(f"{h}.mlp.c_proj.bias", (f"{b}.mlp.b_down",), "copy"),
        Rule("transformer.ln_f.weight", ("final_norm.weight",), "copy"),
        Rule("transformer.ln_f.bias", ("final_norm.bias",), "copy"),
        Rule("lm_head.weight", ("lm_head.w",), "transpose"),
    ]
    return rules


def _llama_rules() -> list[Rule]:
    h = "model.layers.{i}"
    b = "blocks.{i}"
    rules = [Rule("model.embed_tokens.weight", ("embed.tokens",), "copy"),
             Rule(f"{h}.input_layernorm.weight", (f"{b}.attn_norm.weight",), "copy")]
    for w in "qkvo":
        rules += [Rule(f"{h}.self_attn.{w}_proj.weight", (f"{b}.attn.w_{w}",), "transpose"),
                  Rule(f"{h}.self_attn.{w}_proj.bias", (f"{b}.attn.b_{w}",), "copy")]
    rules.append(Rule(f"{h}.post_attention_layernorm.weight", (f"{b}.mlp_norm.weight",), "copy"))
    for w in ("gate", "up", "down"):
        rules += [Rule(f"{h}.mlp.{w}_proj.weight", (f"{b}.mlp.w_{w}",), "transpose"),
                  Rule(f"{h}.mlp.{w}_proj.bias", (f"{b}.mlp.b_{w}",), "copy")]
    rules += [Rule("model.norm.weight", ("final_norm.weight",), "copy"),
              Rule("lm_head.weight", ("lm_head.w",), "transpose")]
    return rules


_RULES = {"gpt2": _gpt2_rules(), "llama": _llama_rules()}


def _check_family(family: str) -> str:
    if family not in _RULES:
        raise ValueError(
            f"model_type={family!r} is not supported; supported: "
            + ", ".join(f"{k!r} ({v})" for k, v in ARCHITECTURES.items())
        )
    return family


def mapping_rules(family: str) -> list[Rule]:
    r"""The mapping of one family, in canonical order: a list of :class:`Rule`.

    Parameters
    ----------
    family : {"gpt2", "llama"}
        Hugging Face's ``model_type``.

    Examples
    --------
    >>> [r.how for r in mapping_rules("gpt2") if "c_attn" in r.hf]
    ['split', 'split']
    >>> mapping_rules("mistral")
    Traceback (most recent call last):
    ...
    ValueError: model_type='mistral' is not supported; supported: 'gpt2' (GPT2LMHeadModel), ...
    """
    return list(_RULES[_check_family(family)])


_HOW_TEXT = {"copy": "as is", "transpose": "transposed", "split": "split in three"}


def _ours_text(names: tuple[str, ...]) -> str:
    """``a.w_q`` or, for a split, ``a.w_{q,k,v}``."""
    if len(names) == 1:
        return f"``{names[0]}``"
    prefix = os.path.commonprefix(list(names))
    return f"``{prefix}{{{','.join(n[len(prefix):] for n in names)}}}``"


def mapping_table(family: str, *, fmt: str = "rst") -> str:
    r"""The mapping of ``family`` as a table (Hugging Face name, ours, how).

    Parameters
    ----------
    family : {"gpt2", "llama"}
    fmt : {"rst", "markdown"}
        reStructuredText (as in this module's docstring) or a Markdown pipe table.

    Examples
    --------
    >>> print(mapping_table("gpt2").splitlines()[3])
    ``transformer.wte.weight``                ``embed.tokens``                 as is
    >>> print(mapping_table("llama", fmt="markdown").splitlines()[4])
    | `model.layers.{i}.self_attn.q_proj.weight` | `blocks.{i}.attn.w_q` | transposed |
    """
    if fmt not in ("rst", "markdown"):
        raise ValueError(f"fmt={fmt!r} is not supported; allowed: 'rst', 'markdown'")
    header = (f"{ARCHITECTURES[_check_family(family)]} tensor", "canonical parameter", "how")
    rows = [(f"``{r.hf}``", _ours_text(r.ours), _HOW_TEXT[r.how])
            for r in mapping_rules(family)]
    if fmt == "markdown":
        lines = [f"| {' | '.join(header)} |", "|---|---|---|"]
        lines += [f"| {a.replace('``', '`')} | {b.replace('``', '`')} | {c} |"
                  for a, b, c in rows]
        return "\n".join(lines)
    widths = [max(len(row[k]) for row in [*rows, header]) for k in range(3)]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    lines.append(rule)
    return "\n".join(lines)


def _expand(rule: Rule, n_layers: int) -> list[tuple[str, tuple[str, ...]]]:
    """The (hf, ours) name pairs of a rule, one per block for ``{i}`` rules."""
    if "{i}" not in rule.hf:
        return [(rule.hf, rule.ours)]
    return [(rule.hf.format(i=i), tuple(o.format(i=i) for o in rule.ours))
            for i in range(n_layers)]


#: tensors Hugging Face files may hold that are not parameters (masks, cached tables)
_BUFFER_SUFFIXES = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")


def _is_buffer(family: str, name: str) -> bool:
    return name.endswith(_BUFFER_SUFFIXES) and not name.endswith(".c_attn.bias") and (
        family == "gpt2" or name.endswith(".rotary_emb.inv_freq"))


def _normalise_names(family: str, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """GPT-2 files written by older code omit the ``transformer.`` prefix: add it."""
    if family != "gpt2":
        return dict(tensors)
    return {(k if k.startswith(("transformer.", "lm_head.")) else f"transformer.{k}"): v
            for k, v in tensors.items()}


def from_hf_state(config: ModelConfig, family: str,
                  tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    r"""Canonical parameters from a Hugging Face state dict (renamed, transposed, split).

    Parameters
    ----------
    config : ModelConfig
        The architecture (e.g. from :func:`config_from_hf`).
    family : {"gpt2", "llama"}
    tensors : mapping of str to ndarray
        Hugging Face names to arrays; non-parameter buffers (GPT-2's causal-mask ``attn.bias``,
        Llama's ``rotary_emb.inv_freq``) are ignored, and so is ``lm_head.weight`` when the
        head is tied.

    Returns
    -------
    dict of str to ndarray
        In canonical order, each array contiguous.

    Raises
    ------
    ValueError
        Naming a missing tensor, an unexpected one, or a shape that does not fit ``config``.

    Examples
    --------
    Gradients map like weights, since each step is linear:

    >>> import numpy as np, literate_tx as ltx
    >>> cfg = ltx.llama_config(vocab_size=8, d_model=4, n_layers=1, n_heads=2, d_ff=6)
    >>> hf = to_hf_state(cfg, ltx.init_params(cfg, seed=0))
    >>> hf["model.layers.0.mlp.gate_proj.weight"].shape  # (F, C): nn.Linear's (out, in)
    (6, 4)
    >>> from_hf_state(cfg, "llama", hf)["blocks.0.mlp.w_gate"].shape
    (4, 6)
    >>> del hf["model.norm.weight"]
    >>> from_hf_state(cfg, "llama", hf)
    Traceback (most recent call last):
    ...
    ValueError: the llama checkpoint has no tensor 'model.norm.weight' (for final_norm.weight)
    """
    shapes = param_shapes(config)
    source = _normalise_names(_check_family(family), tensors)
    used: set[str] = set()
    out: dict[str, np.ndarray] = {}
    for rule in mapping_rules(family):
        for hf_name, ours in _expand(rule, config.n_layers):
            if not all(o in shapes for o in ours):
                continue
            if hf_name not in source:
                raise ValueError(f"the {family} checkpoint has no tensor {hf_name!r} "
                                 f"(for {', '.join(ours)})")
            array = np.asarray(source[hf_name])
            used.add(hf_name)
            if rule.how == "split":
                widths = [shapes[o][-1] for o in ours]
                expected = (*shapes[ours[0]][:-1], sum(widths))
            elif rule.how == "transpose":
                expected = shapes[ours[0]][::-1]
            else:
                expected = shapes[ours[0]]
            if array.shape != expected:
                raise ValueError(
                    f"tensor {hf_name!r} has shape {array.shape}, but the configuration needs "
                    f"{expected} (for {', '.join(ours)})")
            if rule.how == "split":
                cuts = np.cumsum(widths)[:-1]
                for name, part in zip(ours, np.split(array, cuts, axis=-1), strict=True):
                    out[name] = np.ascontiguousarray(part)
            elif rule.how == "transpose":
                out[ours[0]] = np.ascontiguousarray(array.T)
            else:
                out[ours[0]] = np.ascontiguousarray(array)
    unused = [k for k in source if k not in used and not _is_buffer(family, k)
              and not (k == "lm_head.weight" and config.tie_embeddings)]
    if unused:
        raise ValueError(
            f"the {family} checkpoint holds tensor(s) this configuration has no place for: "
            f"{', '.join(map(repr, unused[:5]))}{' ...' if len(unused) > 5 else ''}")
    return {name: out[name] for name in shapes}


def to_hf_state(config: ModelConfig, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    r"""Hugging Face tensors from canonical parameters (the inverse of :func:`from_hf_state`).

    The family is :func:`family_of` ``(config)``. A tied head writes no ``lm_head.weight``, as
    Hugging Face does.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> cfg = ltx.gpt2_config(vocab_size=8, d_model=4, n_layers=1, n_heads=2, max_seq_len=4)
    >>> hf = to_hf_state(cfg, ltx.init_params(cfg, seed=0))
    >>> hf["transformer.h.0.attn.c_attn.weight"].shape  # [W_q | W_k | W_v]
    (4, 12)
    >>> "lm_head.weight" in hf
    False
    """
    family = family_of(config)
    shapes = param_shapes(config)
    missing = [k for k in shapes if k not in params]
    if missing:
        raise ValueError(f"params lacks {', '.join(map(repr, missing[:5]))} for this configuration")
    out: dict[str, np.ndarray] = {}
    for rule in mapping_rules(family):
        for hf_name, ours in _expand(rule, config.n_layers):
            if not all(o in shapes for o in ours):
                continue
            arrays = [np.asarray(params[o]) for o in ours]
            for name, a in zip(ours, arrays, strict=True):
                if a.shape != shapes[name]:
                    raise ValueError(f"params[{name!r}] has shape {a.shape}; the configuration "
                                     f"needs {shapes[name]}")
            if rule.how == "split":
                array = np.concatenate(arrays, axis=-1)
            elif rule.how == "transpose":
                array = arrays[0].T
            else:
                array = arrays[0]
            out[hf_name] = np.ascontiguousarray(array)
    return out


# ========================================================================= configurations
def _gpt2_mismatches(cfg: ModelConfig) -> list[str]:
    wanted = dict(norm="layernorm", residual="pre", position="learned", bias=True)
    bad = [f"{k}={v!r} (not {getattr(cfg, k)!r})" for k, v in wanted.items()
           if getattr(cfg, k) != v]
    if cfg.activation not in _GPT2_ACT_OUT:
        bad.append(f"activation in {tuple(_GPT2_ACT_OUT)} (not {cfg.activation!r})")
    if cfg.kv_heads != cfg.n_heads:
        bad.append(f"n_kv_heads=None (not {cfg.n_kv_heads!r})")
    return bad


def _llama_mismatches(cfg: ModelConfig) -> list[str]:
    wanted = dict(norm="rmsnorm", residual="pre", position="rope", activation="swiglu")
    return [f"{k}={v!r} (not {getattr(cfg, k)!r})" for k, v in wanted.items()
            if getattr(cfg, k) != v]


def family_of(config: ModelConfig) -> str:
    r"""The Hugging Face family a configuration can be written as: ``"gpt2"`` or ``"llama"``.

    Raises
    ------
    ValueError
        Naming, for each family, the fields that do not fit it.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> family_of(ltx.gpt2_config()), family_of(ltx.llama_config())
    ('gpt2', 'llama')
    >>> family_of(ltx.gpt2_config(position="rope"))
    Traceback (most recent call last):
    ...
    ValueError: this configuration is neither GPT-2 nor Llama: GPT-2 needs position='learned' ...
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    gpt2, llama = _gpt2_mismatches(config), _llama_mismatches(config)
    if not gpt2:
        return "gpt2"
    if not llama:
        return "llama"
    raise ValueError(
        f"this configuration is neither GPT-2 nor Llama: GPT-2 needs {', '.join(gpt2)}; "
        f"Llama needs {', '.join(llama)}")


#: GPT-2 ``activation_function`` -> ours, and ours -> what we write
_GPT2_ACT_IN = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu",
                "relu": "relu", "silu": "swish", "swish": "swish"}
_GPT2_ACT_OUT = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu", "swish": "silu"}


def _get(hf: Mapping[str, Any], key: str, default: Any = ..., *, where: str) -> Any:
    if key in hf and hf[key] is not None:
        return hf[key]
    if default is ...:
        raise ValueError(f"{where}: the field {key!r} is missing")
    return default


def _refuse(where: str, key: str, value: Any, why: str) -> ValueError:
    return ValueError(f"{where}: {key}={value!r} is not supported: {why}")


def _gpt2_fields(hf: Mapping[str, Any], where: str) -> dict[str, Any]:
    for key, ok, why in (
        ("scale_attn_weights", True, "attention scores are always divided by sqrt(D) here"),
        ("scale_attn_by_inverse_layer_idx", False, "scores are not scaled by 1/(layer + 1) here"),
        ("add_cross_attention", False, "a decoder-only model has no cross-attention"),
    ):
        value = hf.get(key, ok)
        if value is not None and value != ok:
            raise _refuse(where, key, value, why)
    act = _get(hf, "activation_function", "gelu_new", where=where)
    if act not in _GPT2_ACT_IN:
        raise _refuse(where, "activation_function", act,
                      f"allowed: {', '.join(map(repr, _GPT2_ACT_IN))}")
    drops = {k: _get(hf, k, 0.1, where=where) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    if len(set(drops.values())) > 1:
        raise _refuse(where, "resid_pdrop, embd_pdrop, attn_pdrop", tuple(drops.values()),
                      "one dropout probability serves all three here; make them equal")
    d_model = _get(hf, "n_embd", where=where)
    d_ff = _get(hf, "n_inner", None, where=where)
    return dict(
        vocab_size=_get(hf, "vocab_size", where=where),
        d_model=d_model,
        n_layers=_get(hf, "n_layer", where=where),
        n_heads=_get(hf, "n_head", where=where),
        d_ff=4 * d_model if d_ff is None and isinstance(d_model, int) else d_ff,
        max_seq_len=_get(hf, "n_positions", _get(hf, "n_ctx", 1024, where=where), where=where),
        norm="layernorm", residual="pre", activation=_GPT2_ACT_IN[act], position="learned",
        bias=True,
        tie_embeddings=bool(_get(hf, "tie_word_embeddings", True, where=where)),
        dropout=drops["resid_pdrop"],
        norm_eps=_get(hf, "layer_norm_epsilon", 1e-5, where=where),
        init_std=_get(hf, "initializer_range", 0.02, where=where),
    )


_LLAMA3_KEYS = {"factor": "factor", "low_freq_factor": "low_freq_factor",
                "high_freq_factor": "high_freq_factor",
                "original_max_position_embeddings": "original_max_seq_len"}


def _rope(hf: Mapping[str, Any], where: str) -> tuple[float, RopeScaling | None]:
    """RoPE's base and scaling from ``rope_parameters`` (transformers 5) or ``rope_theta`` and
    ``rope_scaling`` (4.x). Only Llama 3.1's ``"llama3"`` scaling is implemented."""
    theta, scaling = None, None
    for key in ("rope_parameters", "rope_scaling"):  # every one checked, then the base read
        rope = hf.get(key)
        if rope is None:
            continue
        if not isinstance(rope, Mapping):
            raise _refuse(where, key, rope, "expected an object")
        kind = rope.get("rope_type", rope.get("type", "default"))
        if kind == "llama3":
            missing = [k for k in _LLAMA3_KEYS if k not in rope]
            if missing:
                raise _refuse(where, key, rope, f"'llama3' scaling needs {', '.join(missing)}")
            try:
                scaling = RopeScaling(**{ours: rope[k] for k, ours in _LLAMA3_KEYS.items()})
            except ValueError as exc:
                raise ValueError(f"{where}: {key}: {exc}") from None
        elif kind != "default":
            raise _refuse(where, f"{key}.rope_type", kind,
                          "'default' or 'llama3' (Llama 3.1's frequency scaling); other RoPE "
                          "scalings change the angles in ways not implemented here")
        elif key == "rope_scaling" and set(rope) - {"rope_type", "type", "rope_theta"}:
            raise _refuse(where, key, rope, "RoPE scaling is not implemented here")
        if theta is None and "rope_theta" in rope:
            theta = rope["rope_theta"]
    theta = theta if theta is not None else _get(hf, "rope_theta", 10000.0, where=where)
    return theta, scaling


def _llama_fields(hf: Mapping[str, Any], where: str) -> dict[str, Any]:
    rope_theta, rope_scaling = _rope(hf, where)  # options first: refused before missing fields
    act = _get(hf, "hidden_act", "silu", where=where)
    if act != "silu":
        raise _refuse(where, "hidden_act", act, "Llama's SwiGLU gate is 'silu' here")
    for key in ("sliding_window", "layer_types"):
        if hf.get(key) is not None and (key != "layer_types" or set(hf[key]) != {
                "full_attention"}):
            raise _refuse(where, key, hf[key], "attention is full causal attention here")
    attn_bias = bool(_get(hf, "attention_bias", False, where=where))
    mlp_bias = bool(_get(hf, "mlp_bias", False, where=where))
    if attn_bias != mlp_bias:
        raise _refuse(where, "attention_bias, mlp_bias", (attn_bias, mlp_bias),
                      "biases come in every linear map or in none here")
    if _get(hf, "attention_dropout", 0.0, where=where) != 0:
        raise _refuse(where, "attention_dropout", hf["attention_dropout"],
                      "dropout here also drops residual branches; use 0")
    d_model = _get(hf, "hidden_size", where=where)
    n_heads = _get(hf, "num_attention_heads", where=where)
    head_dim = hf.get("head_dim")
    if head_dim is not None and isinstance(d_model, int) and isinstance(n_heads, int) \
            and n_heads and head_dim * n_heads != d_model:
        raise _refuse(where, "head_dim", head_dim,
                      f"a head is hidden_size / num_attention_heads = {d_model}/{n_heads} wide "
                      "here")
    kv = _get(hf, "num_key_value_heads", n_heads, where=where)
    return dict(
        vocab_size=_get(hf, "vocab_size", where=where),
        d_model=d_model,
        n_layers=_get(hf, "num_hidden_layers", where=where),
        n_heads=n_heads,
        n_kv_heads=None if kv == n_heads else kv,
        d_ff=_get(hf, "intermediate_size", where=where),
        max_seq_len=_get(hf, "max_position_embeddings", 2048, where=where),
        norm="rmsnorm", residual="pre", activation="swiglu", position="rope",
        bias=attn_bias,
        tie_embeddings=bool(_get(hf, "tie_word_embeddings", False, where=where)),
        dropout=0.0,
        norm_eps=_get(hf, "rms_norm_eps", 1e-6, where=where),
        rope_theta=rope_theta,
        rope_scaling=rope_scaling,
        init_std=_get(hf, "initializer_range", 0.02, where=where),
    )


def config_from_hf(hf_config: Mapping[str, Any], *,
                   source: str = "config.json") -> tuple[ModelConfig, str]:
    r"""The :class:`~literate_tx.config.ModelConfig` of a Hugging Face ``config.json``.

    Parameters
    ----------
    hf_config : mapping
        The parsed ``config.json``.
    source : str
        Where it came from, for error messages.

    Returns
    -------
    config : ModelConfig
    family : {"gpt2", "llama"}

    Raises
    ------
    ValueError
        Naming an unsupported ``model_type`` or option, or a missing field.

    Examples
    --------
    >>> cfg, family = config_from_hf({"model_type": "llama", "vocab_size": 32, "hidden_size": 8,
    ...     "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
    ...     "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}})
    >>> family, cfg.rope_theta, cfg.norm_eps, cfg.tie_embeddings
    ('llama', 500000.0, 1e-06, False)
    >>> config_from_hf({"model_type": "llama", "rope_scaling": {"rope_type": "yarn"}})
    Traceback (most recent call last):
    ...
    ValueError: config.json: rope_scaling.rope_type='yarn' is not supported: 'default' or ...
    """
    if not isinstance(hf_config, Mapping):
        raise ValueError(f"{source}: expected a JSON object, got {type(hf_config).__name__}")
    family = hf_config.get("model_type")
    try:
        _check_family(family)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    arch = hf_config.get("architectures")
    if arch is not None and list(arch) != [ARCHITECTURES[family]]:
        raise ValueError(f"{source}: architectures={arch!r} is not supported; a {family!r} "
                         f"model loads as [{ARCHITECTURES[family]!r}] (the causal LM head)")
    fields = (_gpt2_fields if family == "gpt2" else _llama_fields)(hf_config, source)
    try:
        return ModelConfig(**fields), family
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def config_to_hf(config: ModelConfig) -> dict[str, Any]:
    r"""The Hugging Face ``config.json`` of a configuration (:func:`family_of` decides which).

    Examples
    --------
    >>> import literate_tx as ltx
    >>> hf = config_to_hf(ltx.gpt2_config(vocab_size=50, d_model=16, n_layers=1, n_heads=2))
    >>> hf["architectures"], hf["n_embd"], hf["n_inner"], hf["activation_function"]
    (['GPT2LMHeadModel'], 16, 64, 'gelu_new')
    >>> config_from_hf(hf)[0] == ltx.gpt2_config(vocab_size=50, d_model=16, n_layers=1, n_heads=2)
    True
    """
    family = family_of(config)
    c = config
    rope: dict[str, Any] = {}
    if c.rope_scaling is not None:
        rope = {k: getattr(c.rope_scaling, ours) for k, ours in _LLAMA3_KEYS.items()}
        rope["rope_type"] = "llama3"
    common = dict(architectures=[ARCHITECTURES[family]], model_type=family,
                  vocab_size=c.vocab_size, tie_word_embeddings=c.tie_embeddings,
                  initializer_range=c.init_std, bos_token_id=None, eos_token_id=None,
                  pad_token_id=None, use_cache=True)
    if family == "gpt2":
        return dict(
            common, n_embd=c.d_model, n_layer=c.n_layers, n_head=c.n_heads, n_inner=c.d_ff,
            n_positions=c.max_seq_len, activation_function=_GPT2_ACT_OUT[c.activation],
            layer_norm_epsilon=c.norm_eps, resid_pdrop=c.dropout, embd_pdrop=c.dropout,
            attn_pdrop=c.dropout, scale_attn_weights=True,
            scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False,
            add_cross_attention=False)
    return dict(
        common, hidden_size=c.d_model, num_hidden_layers=c.n_layers,
        num_attention_heads=c.n_heads, num_key_value_heads=c.kv_heads, head_dim=c.d_head,
        intermediate_size=c.d_ff, max_position_embeddings=c.max_seq_len, hidden_act="silu",
        rms_norm_eps=c.norm_eps, rope_theta=c.rope_theta,
        rope_parameters={"rope_type": "default", "rope_theta": c.rope_theta, **rope},
        rope_scaling=rope or None, attention_bias=c.bias, mlp_bias=c.bias,
        attention_dropout=0.0, pretraining_tp=1)


# ========================================================================= safetensors
_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8",
              "I32": "<i4", "U8": "u1", "BOOL": "?"}
_ST_NAMES = {"float64": "F64", "float32": "F32", "float16": "F16"}


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    r"""Read every tensor of a ``.safetensors`` file (floating tensors widened to float32 at least).

    Uses the ``safetensors`` package when it is installed and the file holds no ``bfloat16``;
    otherwise parses the format itself: an 8-byte little-endian header length, a JSON header,
    the raw data. A ``bfloat16`` value is the top half of a ``float32``, so shifting its 16 bits
    up by 16 gives that ``float32`` exactly.

    Raises
    ------
    ValueError
        Naming the file and what is wrong with it (truncated, a bad header, an unknown dtype).

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "t.safetensors")
    >>> write_safetensors(path, {"w": np.arange(6.0).reshape(2, 3)})
    >>> read_safetensors(path)["w"]
    array([[0., 1., 2.],
           [3., 4., 5.]])
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as exc:
        raise type(exc)(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(blob) < 8:
        raise ValueError(f"{path}: not a safetensors file (only {len(blob)} bytes)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"{path}: truncated safetensors file (header of {n} bytes, file of "
                         f"{len(blob)})")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: the safetensors header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    has_bf16 = any(isinstance(v, dict) and v.get("dtype") == "BF16" for v in header.values())
    if not has_bf16:
        try:
            from safetensors.numpy import load_file
        except ImportError:
            pass
        else:
            return {k: _widen(v) for k, v in load_file(str(path)).items()}
    data = memoryview(blob)[8 + n:]
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{path}: tensor {name!r} has a malformed header entry") from None
        if dtype not in _ST_DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has dtype {dtype!r}; allowed: "
                             f"{', '.join(_ST_DTYPES)}")
        raw_dtype = np.dtype(_ST_DTYPES[dtype])
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(data) or end - begin != count * raw_dtype.itemsize:
            raise ValueError(f"{path}: tensor {name!r} has byte range [{begin}, {end}) that does "
                             f"not fit its shape {shape} and dtype {dtype} in the file")
        array = np.frombuffer(data[begin:end], dtype=raw_dtype).reshape(shape)
        if dtype == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        out[name] = _widen(array)
    return out


def _widen(array: np.ndarray) -> np.ndarray:
    """float16 (and bfloat16, already widened) to float32; other dtypes unchanged, writable."""
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return np.array(array, copy=True) if not array.flags.writeable else array


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> None:
    r"""Write float arrays to a ``.safetensors`` file, atomically.

    Uses the ``safetensors`` package when installed, otherwise writes the format itself
    (tensors in name order, the header padded with spaces to a multiple of 8 bytes).
    ``metadata`` defaults to ``{"format": "pt"}``, which ``transformers`` expects.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "t.safetensors")
    >>> write_safetensors(path, {"b": np.zeros(2, np.float32), "a": np.ones((1, 2))})
    >>> {k: (v.dtype.name, v.shape) for k, v in read_safetensors(path).items()}
    {'a': ('float64', (1, 2)), 'b': ('float32', (2,))}
    """
    meta = dict(metadata if metadata is not None else {"format": "pt"})
    arrays: dict[str, np.ndarray] = {}
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype.name not in _ST_NAMES:
            raise ValueError(f"tensor {name!r} has dtype {a.dtype.name}; allowed: "
                             f"{', '.join(_ST_NAMES)}")
        arrays[name] = a.astype(a.dtype.newbyteorder("<"), copy=False)
    try:
        from safetensors.numpy import save
    except ImportError:
        header: dict[str, Any] = {"__metadata__": meta}
        offset = 0
        for name, a in arrays.items():
            header[name] = {"dtype": _ST_NAMES[a.dtype.name], "shape": list(a.shape),
                            "data_offsets": [offset, offset + a.nbytes]}
            offset += a.nbytes
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 8)
        blob = b"".join([struct.pack("<Q", len(text)), text,
                         *(a.tobytes() for a in arrays.values())])
    else:
        blob = save(arrays, metadata=meta)
    atomic_write(path, lambda f: f.write(blob))


# ========================================================================= folders
_INDEX = "model.safetensors.index.json"
_SHARD_NAME = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
#: the units of ``max_shard_size``, as ``transformers`` reads them: decimal and binary
_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def _read_folder_tensors(folder: Path) -> dict[str, np.ndarray]:
    index = folder / _INDEX
    single = folder / "model.safetensors"
    if single.is_file():
        return read_safetensors(single)
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{index}: not a safetensors index with a 'weight_map' "
                             f"({exc})") from None
        tensors: dict[str, np.ndarray] = {}
        for shard in sorted(set(weight_map.values())):
            if Path(shard).name != shard:
                raise ValueError(f"{index}: shard {shard!r} is not a file name in {folder}")
            part = read_safetensors(folder / shard)
            tensors.update({k: v for k, v in part.items() if weight_map.get(k) == shard})
        missing = [k for k in weight_map if k not in tensors]
        if missing:
            raise ValueError(f"{index}: tensor {missing[0]!r} is not in its shard "
                             f"{weight_map[missing[0]]!r}")
        return tensors
    if any((folder / n).exists() for n in ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        raise ValueError(
            f"{folder} holds pytorch_model.bin but no model.safetensors; .bin files are pickles "
            "and are never loaded here; convert the folder once with transformers "
            "(from_pretrained, then save_pretrained(..., safe_serialization=True))")
    raise FileNotFoundError(f"{folder} has neither model.safetensors nor "
                            "model.safetensors.index.json")


def load_hf(path: str | os.PathLike, *, dtype: str | None = None
            ) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    r"""Read a Hugging Face GPT-2 or Llama folder: its configuration and canonical parameters.

    Parameters
    ----------
    path : str or path-like
        A folder with ``config.json`` and ``model.safetensors`` (or sharded
        ``*.safetensors`` with ``model.safetensors.index.json``), as ``save_pretrained`` writes;
        or the ``config.json`` inside it.
    dtype : {None, "float32", "float64"}
        Cast the parameters; ``None`` keeps float32 and float64 weights as stored and widens
        float16 and bfloat16 to float32.

    Returns
    -------
    config : ModelConfig
    params : dict of str to ndarray
        Canonical parameters: ``create_model(config, backend, params=params)`` in any backend.

    Raises
    ------
    FileNotFoundError
        When the folder, its ``config.json`` or its weights are missing.
    ValueError
        Naming an unsupported architecture or option, a missing or unexpected tensor, or a
        shape that does not match ``config.json``.

    Examples
    --------
    >>> import tempfile, literate_tx as ltx
    >>> cfg = ltx.llama_config(vocab_size=32, d_model=16, n_layers=1, n_heads=4, n_kv_heads=2)
    >>> folder = tempfile.mkdtemp()
    >>> save_hf((cfg, ltx.init_params(cfg, seed=0)), folder)
    >>> cfg2, params = load_hf(folder, dtype="float64")
    >>> cfg2 == cfg, params["blocks.0.attn.w_k"].shape, params["blocks.0.attn.w_k"].dtype
    (True, (16, 8), dtype('float64'))
    """
    folder = Path(path)
    if folder.name == "config.json" and folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder (expected a Hugging Face model folder "
                                "with config.json and model.safetensors)")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json; it is not a Hugging Face model "
                                "folder")
    try:
        hf_config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{config_path}: not valid JSON ({exc})") from None
    config, family = config_from_hf(hf_config, source=str(config_path))
    tensors = _read_folder_tensors(folder)
    params = from_hf_state(config, family, tensors)
    if dtype is not None:
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype={dtype!r} is not supported; allowed: None, 'float32', "
                             "'float64'")
        params = {k: v.astype(dtype, copy=False) for k, v in params.items()}
    return config, params


def _shard_limit(max_shard_size: int | str) -> int:
    """``max_shard_size`` in bytes: a positive int, or a whole number and a unit ("500MB")."""
    allowed = ("a positive number of bytes (int) or a whole number with a unit, e.g. '500MB' or "
               f"'2GiB' (units: {', '.join(_SIZE_UNITS)})")
    if isinstance(max_shard_size, (int, np.integer)) and not isinstance(max_shard_size, bool):
        limit = int(max_shard_size)
    elif isinstance(max_shard_size, str):
        match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]+)\s*", max_shard_size)
        if match is None or match.group(2) not in _SIZE_UNITS:
            raise ValueError(f"max_shard_size={max_shard_size!r} is not understood; allowed: "
                             f"{allowed}")
        limit = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    else:
        raise ValueError(f"max_shard_size={max_shard_size!r} is a {type(max_shard_size).__name__};"
                         f" allowed: None (one file) or {allowed}")
    if limit <= 0:
        raise ValueError(f"max_shard_size={max_shard_size!r} is not positive; allowed: {allowed}")
    return limit


def _plan_shards(tensors: Mapping[str, np.ndarray], limit: int) -> list[list[str]]:
    """Tensor names in name order, cut into runs of at most ``limit`` bytes each; a tensor larger
    than ``limit`` is a run by itself."""
    shards: list[list[str]] = [[]]
    size = 0
    for name in sorted(tensors):
        nbytes = tensors[name].nbytes
        if shards[-1] and size + nbytes > limit:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    return shards


def _remove_stale_weights(folder: Path, keep: set[str]) -> None:
    """Delete the weight files of an earlier save that ``keep`` (the new set) does not hold:
    ``model.safetensors``, the index and ``model-0000k-of-0000n.safetensors`` shards."""
    for path in folder.iterdir():
        name = path.name
        ours = name in ("model.safetensors", _INDEX) or _SHARD_NAME.fullmatch(name)
        if ours and name not in keep and path.is_file():
            path.unlink()


def save_hf(model, directory: str | os.PathLike, *,
            max_shard_size: int | str | None = None) -> None:
    r"""Write a model as a Hugging Face folder: ``config.json`` and ``model.safetensors``.

    ``transformers``' ``GPT2LMHeadModel.from_pretrained`` / ``LlamaForCausalLM.from_pretrained``
    (or ``AutoModelForCausalLM``) read the folder back. Every file is written atomically; the
    folder is created if missing.

    With ``max_shard_size``, weights totalling more than that many bytes are split the way
    ``save_pretrained`` splits them: the tensors, taken in name order, fill
    ``model-00001-of-0000n.safetensors``, ``model-00002-of-0000n.safetensors``, ... one after
    another, a new file starting when the next tensor would push the current one past the limit
    (a single tensor larger than the limit gets a file to itself), and
    ``model.safetensors.index.json`` maps each tensor to its file and records ``total_size``, the
    bytes of all tensors. Weights that fit the limit go to the one ``model.safetensors``.

    Weight files of an earlier save that the new ones would be confused with are then deleted:
    ``model.safetensors`` when writing shards (readers prefer it to an index), and any
    ``model.safetensors.index.json`` or ``model-0000k-of-0000n.safetensors`` that is not part of
    the new set. Every other file in the folder is left alone.

    Parameters
    ----------
    model : model of any backend, or (ModelConfig, params)
        Anything with ``.config`` and ``.parameters()``, or a configuration with its canonical
        parameters (e.g. what :func:`load_hf` returns). The configuration must be GPT-2 or
        Llama shaped (:func:`family_of`); the weights keep their dtype (float32 or float64).
        Llama has no dropout on its residual branches, so a Llama-shaped model's ``dropout``
        (which acts in training only) is written as ``attention_dropout = 0``.
    directory : str or path-like
    max_shard_size : int, str or None
        The largest weight file, in bytes (an int) or as ``transformers`` writes it: a whole
        number and a unit, decimal ``"KB"``, ``"MB"``, ``"GB"`` (:math:`10^3, 10^6, 10^9`) or
        binary ``"KiB"``, ``"MiB"``, ``"GiB"`` (:math:`2^{10}, 2^{20}, 2^{30}`), e.g. ``"5GB"``.
        ``None`` (the default) writes one ``model.safetensors`` whatever its size.

    Raises
    ------
    ValueError
        If the configuration fits neither family, the parameters do not fit it, or
        ``max_shard_size`` is not a positive size (the message names the value and the units).

    Examples
    --------
    A tiny GPT-2 in float64 holds 9664 bytes of weights; a limit of 5 kB splits them in two:

    >>> import json, os, tempfile, numpy as np, literate_tx as ltx
    >>> cfg = ltx.gpt2_config(vocab_size=32, d_model=8, n_layers=1, n_heads=2, max_seq_len=8)
    >>> model = ltx.create_model(cfg, backend="numpy", seed=0, dtype="float64")
    >>> folder = tempfile.mkdtemp()
    >>> save_hf(model, folder, max_shard_size="5KB")
    >>> sorted(os.listdir(folder))  # doctest: +NORMALIZE_WHITESPACE
    ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors',
     'model.safetensors.index.json']
    >>> json.load(open(os.path.join(folder, "model.safetensors.index.json")))["metadata"]
    {'total_size': 9664}
    >>> cfg2, params = load_hf(folder)
    >>> cfg2 == cfg, all(np.array_equal(params[k], v) for k, v in model.parameters().items())
    (True, True)

    A configuration of neither family is refused by name:

    >>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8, norm="rmsnorm", position="alibi")
    >>> save_hf(ltx.create_model(cfg), tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: this configuration is neither GPT-2 nor Llama: GPT-2 needs norm='layernorm' ...
    """
    if isinstance(model, tuple) and len(model) == 2:
        config, params = model
    elif hasattr(model, "config") and hasattr(model, "parameters"):
        config, params = model.config, model.parameters()
    else:
        raise TypeError(f"model must be a model of any backend or a (ModelConfig, params) pair, "
                        f"got {type(model).__name__}")
    limit = None if max_shard_size is None else _shard_limit(max_shard_size)
    tensors = to_hf_state(config, params)
    hf_config = config_to_hf(config)
    dtypes = {a.dtype.name for a in tensors.values()}
    hf_config["torch_dtype"] = dtypes.pop() if len(dtypes) == 1 else "float32"
    folder = Path(directory)
    shards = [sorted(tensors)] if limit is None else _plan_shards(tensors, limit)
    if len(shards) == 1:
        write_safetensors(folder / "model.safetensors", tensors)
        written = {"model.safetensors"}
    else:
        n = len(shards)
        weight_map: dict[str, str] = {}
        for k, names in enumerate(shards, start=1):
            shard = f"model-{k:05d}-of-{n:05d}.safetensors"
            write_safetensors(folder / shard, {name: tensors[name] for name in names})
            weight_map.update(dict.fromkeys(names, shard))
        index = {"metadata": {"total_size": sum(int(a.nbytes) for a in tensors.values())},
                 "weight_map": weight_map}
        index_text = json.dumps(index, indent=2, sort_keys=True) + "\n"
        atomic_write(folder / _INDEX, lambda f: f.write(index_text.encode("utf-8")))
        written = {_INDEX, *weight_map.values()}
    _remove_stale_weights(folder, written)
    text = json.dumps(hf_config, indent=2, sort_keys=True) + "\n"
    atomic_write(folder / "config.json", lambda f: f.write(text.encode("utf-8")))

r"""The code every backend shares, which backend equivalence cannot check.

Two backends that read the same dropout masks and the same initial weights agree even when the
masks or the weights are wrong. So the shared pieces are tested for what they should be:
dropout masks hold 0 or 1/(1-p) and keep the expectation (mean 1), the residual projections
start :math:`\sqrt{2L}` times smaller than the other weights (eq. ``init`` of
:mod:`literate_tx.params`), and every preset's initial weights have the statistics the
derivation promises.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import literate_tx as ltx
from literate_tx.bench import PRESETS
from literate_tx.masks import make_masks, mask_shapes
from literate_tx.params import init_params, param_shapes

Z = 6.0  # a sample statistic may stray this many standard errors before the test fails


# --------------------------------------------------------------------------- dropout masks
@given(p=st.floats(0.01, 0.95), B=st.integers(1, 3), T=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(["float32", "float64"]))
def test_masks_hold_zero_or_the_inverse_keep_probability(p, B, T, seed, dtype):
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, dropout=p)
    masks = make_masks(cfg, B, T, np.random.default_rng(seed), dtype)
    assert list(masks) == list(mask_shapes(cfg, B, T))  # every mask, in drawing order
    kept = np.array(1.0 / (1.0 - p), dtype=dtype)  # 1/(1-p) rounded to the model's dtype
    for name, mask in masks.items():
        assert mask.shape == mask_shapes(cfg, B, T)[name]
        assert mask.dtype == np.dtype(dtype)
        assert np.all((mask == 0) | (mask == kept)), name


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_masks_keep_the_expectation(p):
    """E[m] = (1 - p) / (1 - p) = 1, and a fraction p of the entries is dropped.

    With n entries the sample mean has standard error sqrt(p / ((1 - p) n)); the dropped
    fraction sqrt(p (1 - p) / n).
    """
    cfg = ltx.ModelConfig(10, 64, 2, 4, 16, 32, dropout=p)
    masks = make_masks(cfg, 8, 32, np.random.default_rng(0), "float64")
    every = np.concatenate([m.ravel() for m in masks.values()])
    n = every.size
    assert abs(every.mean() - 1.0) < Z * math.sqrt(p / ((1 - p) * n))
    assert abs((every == 0).mean() - p) < Z * math.sqrt(p * (1 - p) / n)
    for name, mask in masks.items():  # each mask on its own too (the smallest has 16k entries)
        assert abs(mask.mean() - 1.0) < Z * math.sqrt(p / ((1 - p) * mask.size)), name


def test_masks_are_a_function_of_the_seed():
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, dropout=0.5)
    a = make_masks(cfg, 2, 4, np.random.default_rng(7))
    b = make_masks(cfg, 2, 4, np.random.default_rng(7))
    c = make_masks(cfg, 2, 4, np.random.default_rng(8))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    no_dropout = ltx.ModelConfig(10, 8, 2, 2, 16, 8)
    assert make_masks(no_dropout, 2, 4, np.random.default_rng(7)) == {}


# --------------------------------------------------------------------------- initialisation
def expected_std(cfg: ltx.ModelConfig, name: str) -> float | None:
    """The standard deviation eq. ``init`` gives ``name``, or None for a constant (0 or 1)."""
    leaf = name.rsplit(".", 1)[1]
    if "norm" in name or leaf == "bias" or leaf.startswith("b_"):
        return None
    if leaf in ("w_o", "w_down"):
        return cfg.init_std / math.sqrt(2 * cfg.n_layers)  # the residual branch's output
    return cfg.init_std


@pytest.mark.parametrize("n_layers", [1, 2, 4, 8])
def test_residual_projections_start_sqrt_2L_smaller(n_layers):
    """W_o and W_down ~ N(0, sigma^2 / 2L), every other matrix ~ N(0, sigma^2).

    The sample standard deviation of n draws has relative standard error about 1/sqrt(2n).
    """
    cfg = ltx.ModelConfig(32, 64, n_layers, 4, 256, 16, init_std=0.05)
    params = init_params(cfg, seed=1, dtype="float64")
    for kind in ("attn.w_o", "mlp.w_down", "attn.w_q", "mlp.w_up"):
        pooled = np.concatenate([params[f"blocks.{i}.{kind}"].ravel() for i in range(n_layers)])
        want = expected_std(cfg, f"blocks.0.{kind}")
        assert abs(pooled.std() / want - 1) < Z / math.sqrt(2 * pooled.size), kind
    ratio = (np.concatenate([params[f"blocks.{i}.attn.w_q"].ravel() for i in range(n_layers)]).std()
             / np.concatenate([params[f"blocks.{i}.attn.w_o"].ravel()
                               for i in range(n_layers)]).std())
    assert ratio == pytest.approx(math.sqrt(2 * n_layers), rel=0.05)


SMALL = dict(vocab_size=256, d_model=64, n_layers=4, n_heads=4, max_seq_len=64)
PRESET_CONFIGS = {
    **{f"bench-{name}": preset.config for name, preset in PRESETS.items()},
    "gpt2-shaped": ltx.gpt2_config(**SMALL),
    "llama-shaped": ltx.llama_config(**SMALL),
    "llama-shaped-gqa": ltx.llama_config(**SMALL, n_kv_heads=2),
}


@pytest.mark.parametrize("name", sorted(PRESET_CONFIGS))
def test_initial_statistics_of_every_preset(name):
    """Per parameter: norm gains exactly 1, biases exactly 0, matrices zero-mean with the
    standard deviation of eq. ``init``, all in the requested dtype, the canonical shapes."""
    cfg = PRESET_CONFIGS[name]
    params = init_params(cfg, seed=0, dtype="float32")
    assert {k: v.shape for k, v in params.items()} == param_shapes(cfg)
    assert sum(v.size for v in params.values()) == ltx.num_parameters(cfg)
    for pname, value in params.items():
        assert value.dtype == np.float32, pname
        assert np.isfinite(value).all(), pname
        std = expected_std(cfg, pname)
        if std is None:
            constant = 1.0 if "norm" in pname and pname.endswith("weight") else 0.0
            assert np.all(value == constant), pname
            continue
        x = value.astype(np.float64).ravel()
        assert abs(x.mean()) < Z * std / math.sqrt(x.size), pname
        assert abs(x.std() / std - 1) < Z / math.sqrt(2 * x.size), pname


def test_initialisation_is_a_function_of_the_seed_alone():
    cfg = ltx.gpt2_config(**SMALL)
    a, b = init_params(cfg, seed=3), init_params(cfg, seed=3, dtype="float64")
    assert all(np.array_equal(a[k], b[k].astype(np.float32)) for k in a)
    c = init_params(cfg, seed=4)
    assert not np.array_equal(a["blocks.0.attn.w_q"], c["blocks.0.attn.w_q"])

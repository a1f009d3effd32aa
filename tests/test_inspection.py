"""Inspection: the same captures in every backend, and statistics equal to hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import batches, configs, random_params

import literate_tx as ltx
from literate_tx.inspection import (
    DeadUnits,
    activation_stats,
    compare_caches,
    dead_relu_fraction,
    format_table,
    gradient_norms,
    hook_layer,
    residual_norms,
)

HOOKS_PER_BLOCK = ("resid_pre", "attn.weights", "attn.out", "resid_mid", "mlp.pre_act", "mlp.out",
                   "resid_post")


def build(backend: str, cfg, params):
    """The model in ``backend``, or a skip when that backend's optional package is missing."""
    if backend == "torch":
        pytest.importorskip("torch")
    return ltx.create_model(cfg, backend=backend, params=params, dtype="float64")


# --------------------------------------------------------------------------- captures
@pytest.mark.parametrize("backend", ["python", "torch"])
@settings(max_examples=8)
@given(cfg=configs(), seed=st.integers(0, 2**16), data=st.data())
def test_same_weights_same_captures_in_every_backend(backend, cfg, seed, data):
    params = random_params(cfg, seed=seed)
    tokens, _ = data.draw(batches(cfg))
    ref_logits, ref = ltx.create_model(cfg, params=params, dtype="float64").run_with_cache(tokens)
    logits, cache = build(backend, cfg, params).run_with_cache(tokens)
    expected = {"embed.out", "final_norm.out"} | {
        f"blocks.{i}.{h}" for i in range(cfg.n_layers) for h in HOOKS_PER_BLOCK}
    assert set(ref) == expected
    for row in compare_caches(ref, cache):
        scale = max(1.0, float(np.abs(ref[row.hook]).max()))
        assert row.max_abs_diff <= 1e-9 * scale, row
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-9, atol=1e-9)
    # the statistics built on them agree too
    for a, b in zip(activation_stats(ref), activation_stats(cache), strict=True):
        assert a.hook == b.hook
        assert math.isclose(a.rms, b.rms, rel_tol=1e-9, abs_tol=1e-12)


def test_captures_are_the_forward_pass():
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, activation="relu")
    model = ltx.create_model(cfg, params=random_params(cfg, seed=0), dtype="float64")
    logits, cache = model.run_with_cache([[1, 2, 3]])
    full, weights = model.forward([[1, 2, 3]], return_weights=True)
    np.testing.assert_array_equal(logits, full)
    for i, w in enumerate(weights):
        np.testing.assert_array_equal(cache[f"blocks.{i}.attn.weights"], w)
    # pre-LN: each block's output is its input plus the two branches
    for i in range(2):
        np.testing.assert_allclose(cache[f"blocks.{i}.resid_post"],
                                   cache[f"blocks.{i}.resid_pre"] + cache[f"blocks.{i}.attn.out"]
                                   + cache[f"blocks.{i}.mlp.out"], rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- statistics
def test_activation_stats_by_hand():
    x = np.array([[[1.0, 2.0], [3.0, -2.0]]])  # mean 1, squares 1 4 9 4 -> mean 4.5
    row = activation_stats({"blocks.3.attn.out": x, "embed.out": np.zeros((1, 1, 2))})[0]
    assert (row.hook, row.layer, row.shape) == ("blocks.3.attn.out", 3, (1, 2, 2))
    assert row.mean == 1.0
    assert row.variance == 3.5  # 4.5 - 1
    assert row.rms == math.sqrt(4.5)
    assert (row.min, row.max) == (-2.0, 3.0)


@given(st.integers(0, 2**16))
def test_activation_stats_identities(seed):
    x = np.random.default_rng(seed).normal(size=(2, 3, 4))
    row = activation_stats({"h": x})[0]
    assert math.isclose(row.rms ** 2, row.mean ** 2 + row.variance, rel_tol=1e-12)
    assert math.isclose(row.variance, float(np.var(x)), rel_tol=1e-12)


def test_residual_norms_by_hand_and_in_layer_order():
    cache = {
        "blocks.1.resid_pre": np.array([[[0.0, 2.0]]]),
        "blocks.0.resid_post": np.array([[[0.0, 2.0]]]),
        "blocks.0.resid_pre": np.array([[[3.0, 4.0], [6.0, 8.0]]]),  # lengths 5, 10
        "blocks.0.attn.out": np.ones((1, 1, 2)),
    }
    rows = residual_norms(cache)
    assert [r.hook for r in rows] == ["blocks.0.resid_pre", "blocks.0.resid_post",
                                      "blocks.1.resid_pre"]
    assert (rows[0].mean_norm, rows[0].max_norm) == (7.5, 10.0)


def test_dead_relu_fraction_by_hand():
    u = np.array([[[1.0, -1.0, 0.0], [2.0, -3.0, 0.0]],
                  [[-1.0, -2.0, 0.0], [-1.0, -1.0, 0.0]]])  # (B=2, T=2, F=3)
    rows = dead_relu_fraction({"blocks.1.mlp.pre_act": u, "blocks.0.mlp.pre_act": -u})
    # unit 0 fires twice, units 1 and 2 (0 counts as off) never; 10 of 12 entries are off
    assert rows[1] == DeadUnits(layer=1, n_units=3, inactive=10 / 12, dead=2 / 3)
    # negated: unit 1 fires everywhere, unit 0 fires twice, unit 2 never
    assert rows[0] == DeadUnits(layer=0, n_units=3, inactive=6 / 12, dead=1 / 3)


def test_dead_relu_fraction_rejects_other_activations_and_empty_caches():
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8, activation="gelu")
    with pytest.raises(ValueError, match=r"config.activation='gelu'; allowed: 'relu'"):
        dead_relu_fraction({}, cfg)
    with pytest.raises(ValueError, match="no 'blocks.{i}.mlp.pre_act' hook"):
        dead_relu_fraction({"embed.out": np.zeros(2)})


def test_dead_relu_fraction_on_a_model_counts_relu_zeros():
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8, activation="relu")
    model = ltx.create_model(cfg, params=random_params(cfg, seed=4), dtype="float64")
    _, cache = model.run_with_cache([[1, 2, 3, 4, 5]])
    [row] = dead_relu_fraction(cache, cfg)
    u = cache["blocks.0.mlp.pre_act"]
    assert row.inactive == float(np.mean(np.maximum(u, 0.0) == 0.0))


def test_gradient_norms_by_hand_and_groups_combine_into_the_global_norm():
    g = {"embed.tokens": np.array([[3.0, 4.0]]), "blocks.0.attn.w_q": np.array([[1.0]]),
         "blocks.0.mlp.w_up": np.array([[2.0, 2.0]]), "blocks.1.mlp.w_up": np.array([2.0]),
         "lm_head.w": np.zeros((2, 2))}
    by_layer = gradient_norms(g, by="layer")
    assert [(r.name, r.layer, r.size, r.norm) for r in by_layer] == [
        ("embed", None, 2, 5.0), ("blocks.0", 0, 3, 3.0), ("blocks.1", 1, 1, 2.0),
        ("lm_head", None, 4, 0.0)]
    total = math.sqrt(sum(float((v ** 2).sum()) for v in g.values()))
    assert math.isclose(math.sqrt(sum(r.norm ** 2 for r in by_layer)), total)
    with pytest.raises(ValueError, match=r"by='block' is not supported; allowed: 'parameter'"):
        gradient_norms(g, by="block")


@pytest.mark.parametrize("backend", ["numpy", "python", "torch"])
def test_gradient_norms_of_a_model_cover_every_parameter(backend):
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8)
    model = build(backend, cfg, random_params(cfg, seed=0))
    loss, grads = model.loss_and_grads([[1, 2, 3]], [[2, 3, 4]])
    rows = gradient_norms(grads)
    assert [r.name for r in rows] == list(model.parameters())
    groups = [r.name for r in gradient_norms(grads, by="layer")]
    assert groups == ["embed", "blocks.0", "blocks.1", "final_norm", "lm_head"]
    ref = ltx.create_model(cfg, params=random_params(cfg, seed=0), dtype="float64")
    expected = gradient_norms(ref.loss_and_grads([[1, 2, 3]], [[2, 3, 4]])[1], by="layer")
    for a, b in zip(gradient_norms(grads, by="layer"), expected, strict=True):
        assert math.isclose(a.norm, b.norm, rel_tol=1e-9)


def test_compare_caches_reports_mismatched_hooks():
    with pytest.raises(ValueError, match=r"only in the first \['a'\]"):
        compare_caches({"a": np.zeros(1)}, {"b": np.zeros(1)})
    with pytest.raises(ValueError, match=r"hook 'a' has shape \(1,\)"):
        compare_caches({"a": np.zeros(1)}, {"a": np.zeros(2)})


def test_hook_layer_and_format_table():
    assert hook_layer("blocks.0.resid_pre") == 0
    assert hook_layer("final_norm.out") is None
    text = format_table(activation_stats({"blocks.0.attn.out": np.ones((1, 2, 2))}))
    header, line = text.splitlines()
    assert header.split() == ["hook", "layer", "shape", "mean", "variance", "rms", "min", "max"]
    assert line.split() == ["blocks.0.attn.out", "0", "1x2x2", "1", "0", "1", "1", "1"]
    assert format_table([]) == ""
    with pytest.raises(ValueError, match="dataclass"):
        format_table([{"a": 1}])

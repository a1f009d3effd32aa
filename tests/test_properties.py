"""Properties the maths guarantees, checked on the NumPy reference with hypothesis."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import configs, random_params

import literate_tx as ltx
from literate_tx.numpy_backend import norms, positions, softmax

seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=40)
@given(configs(), st.integers(0, 2**31 - 1), st.data())
def test_causality_future_tokens_never_change_earlier_logits(cfg, seed, data):
    rng = np.random.default_rng(seed)
    model = ltx.create_model(cfg, params=random_params(cfg, seed), dtype="float64")
    T = data.draw(st.integers(2, cfg.max_seq_len))
    t = data.draw(st.integers(1, T - 1))
    tokens = rng.integers(0, cfg.vocab_size, size=(1, T))
    changed = tokens.copy()
    bump = 1 + rng.integers(0, cfg.vocab_size - 1, T - t)  # never 0 mod V: every token changes
    changed[0, t:] = (changed[0, t:] + bump) % cfg.vocab_size
    a, b = model.forward(tokens), model.forward(changed)
    np.testing.assert_array_equal(a[0, :t], b[0, :t])


@given(st.integers(1, 3), st.integers(2, 9), seeds, st.floats(0.1, 100), st.floats(-50, 50))
def test_layernorm_invariant_to_shift_and_scale(B, C, seed, scale, shift):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, C))
    w, b = rng.normal(size=C), rng.normal(size=C)
    y1, _ = norms.layernorm_forward(x, w, b, eps=0.0)
    y2, _ = norms.layernorm_forward(scale * x + shift, w, b, eps=0.0)
    np.testing.assert_allclose(y1, y2, rtol=1e-7, atol=1e-7)


@given(st.integers(1, 3), st.integers(1, 9), seeds, st.floats(0.01, 100))
def test_rmsnorm_invariant_to_scale(B, C, seed, scale):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, C))
    w = rng.normal(size=C)
    y1, _ = norms.rmsnorm_forward(x, w, eps=0.0)
    y2, _ = norms.rmsnorm_forward(scale * x, w, eps=0.0)
    np.testing.assert_allclose(y1, y2, rtol=1e-9, atol=1e-12)


@given(st.sampled_from([2, 4, 8]), seeds, st.integers(0, 50), st.integers(0, 50),
       st.integers(-20, 20))
def test_rope_scores_depend_only_on_relative_position(D, seed, s, t, shift):
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(1, 1, 1, D)), rng.normal(size=(1, 1, 1, D))

    def score(i, j):
        ci, si = positions.rope_tables(1, D, 10000.0, offset=i)
        cj, sj = positions.rope_tables(1, D, 10000.0, offset=j)
        return float(np.sum(positions.apply_rope(q, ci, si) * positions.apply_rope(k, cj, sj)))

    s2, t2 = s + abs(shift), t + abs(shift)
    assert abs(score(s, t) - score(s2, t2)) < 1e-9 * max(1.0, abs(score(s, t)))


@given(st.integers(1, 5), seeds, st.sampled_from([1e4, -1e4, 1e6]))
def test_softmax_finite_for_huge_logits(N, seed, big):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(2, N + 1))
    z[:, 0] = big
    p = softmax.softmax_forward(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(-1), 1.0)
    logp = softmax.log_softmax(z)
    assert np.isfinite(logp).all()


@given(configs(), seeds)
def test_attention_rows_are_distributions_over_the_past(cfg, seed):
    model = ltx.create_model(cfg, params=random_params(cfg, seed), dtype="float64")
    tokens = np.random.default_rng(seed).integers(0, cfg.vocab_size, size=(2, cfg.max_seq_len))
    _, weights = model.forward(tokens, return_weights=True)
    for w in weights:
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)
        assert np.all(np.triu(w[0, 0], k=1) == 0.0)


@given(configs(), seeds)
def test_float32_matches_float64(cfg, seed):
    params = random_params(cfg, seed, scale=0.5)
    tokens = np.random.default_rng(seed).integers(0, cfg.vocab_size, size=(2, 4))
    a = ltx.create_model(cfg, params=params, dtype="float64").forward(tokens)
    m32 = ltx.create_model(cfg, params=params, dtype="float32")
    b = m32.forward(tokens)
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3 * max(1.0, np.abs(a).max()))


@given(configs(), seeds)
def test_decode_with_kv_cache_equals_full_forward(cfg, seed):
    model = ltx.create_model(cfg, params=random_params(cfg, seed, scale=0.5), dtype="float64")
    tokens = np.random.default_rng(seed).integers(0, cfg.vocab_size, size=(2, cfg.max_seq_len))
    full = model.forward(tokens)
    split = 1 + seed % (cfg.max_seq_len - 1)
    a, kv = model.decode(tokens[:, :split])
    rows = [a]
    for t in range(split, cfg.max_seq_len):
        b, kv = model.decode(tokens[:, t : t + 1], kv)
        rows.append(b)
    np.testing.assert_allclose(np.concatenate(rows, axis=1), full, rtol=1e-10,
                               atol=1e-10 * np.abs(full).max())

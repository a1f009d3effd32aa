"""The pure-Python speed path equals the plain one: ``dist_matmul_t`` and ``FastPythonModel``.

``dist_matmul_t`` computes every dot product through ``math.dist`` (eq. ``dist-dot`` of
:mod:`literate_tx.python_backend.fast`); it must agree with ``matmul_t`` to a few rounding errors
of ``|x| |w|`` over magnitudes from 1e-3 to 1e3, fall back on zero and non-finite rows, and the
model built on it must give the plain model's logits, loss, gradients and cached decoding over
the full switch matrix. Speed is never asserted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import given
from hypothesis import strategies as st
from strategies import batches, configs, random_params

import literate_tx as ltx
from literate_tx.numpy_backend.dropout import make_masks
from literate_tx.python_backend import PythonModel
from literate_tx.python_backend.fast import FastPythonModel, NormedWeight, dist_matmul_t
from literate_tx.python_backend.linear import linear_forward, matmul_t, transpose

EPS = 2.0**-52


def _matrix(rng, shape, scale):
    return (rng.normal(0.0, 1.0, size=shape) * scale).tolist()


@given(n=st.integers(1, 40), m=st.integers(1, 12), N=st.integers(1, 4),
       x_scale=st.sampled_from([1e-3, 1.0, 8.0, 1e3]), w_scale=st.sampled_from([1e-3, 0.02, 1.0]),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_dist_product_equals_plain_product(n, m, N, x_scale, w_scale, bias, seed):
    rng = np.random.default_rng(seed)
    x, w = _matrix(rng, (N, n), x_scale), _matrix(rng, (n, m), w_scale)
    b = _matrix(rng, (m,), w_scale) if bias else None
    plain = matmul_t(x, transpose(w), b)
    fast = NormedWeight.of(w, transpose(w)).times(x, b)
    col_norms = np.linalg.norm(np.asarray(w), axis=0)  # (m,)
    s = math.sqrt(float(np.mean(col_norms**2)))  # the weight's scale
    size = np.maximum(col_norms, (s * s + col_norms**2) / (2 * s))  # |w_j|, or more if |w_j| << s
    for row, p_row, f_row in zip(x, plain, fast, strict=True):
        bound = 64 * EPS * math.sqrt(sum(v * v for v in row)) * size + 4 * EPS * np.abs(p_row)
        assert np.all(np.abs(np.subtract(f_row, p_row)) <= bound), (p_row, f_row)


def test_the_scale_keeps_the_error_at_a_plain_products_size():
    # a LayerNorm output (|x|^2 = n) against small weights: unscaled, the identity would lose
    # about |x| / |w| in accuracy; scaled, the error stays near eps |x| |w|
    rng = np.random.default_rng(0)
    n, m = 64, 64
    x, w = _matrix(rng, (8, n), 1.0), _matrix(rng, (n, m), 0.02)
    cols = [tuple(c) for c in transpose(w)]
    norms = [sum(v * v for v in c) for c in cols]
    # reference products correctly rounded from the (exact) float products, platform-independent
    exact = np.array([[math.fsum(a * b for a, b in zip(row, col, strict=True)) for col in cols]
                      for row in x])  # (8, m)
    scaled = np.asarray(dist_matmul_t(x, cols, norms, math.sqrt(sum(norms) / m)))
    unscaled_err = max(
        abs((sum(v * v for v in row) + nw - math.dist(row, col) ** 2) / 2 - exact[i, j])
        for i, row in enumerate(x) for j, (col, nw) in enumerate(zip(cols, norms, strict=True)))
    scaled_err = float(np.abs(scaled - exact).max())
    assert scaled_err < 1e-15 < unscaled_err


@pytest.mark.parametrize("bad", [0.0, math.inf, -math.inf, math.nan])
def test_rows_the_identity_cannot_take_use_the_plain_product(bad):
    w = [[1.0, 2.0], [3.0, 4.0]]
    x = [[bad, 0.0 if bad == 0.0 else 1.0], [1.0, 2.0]]
    fast = NormedWeight.of(w, transpose(w)).times(x, [0.5, -0.5])
    plain = matmul_t(x, transpose(w), [0.5, -0.5])
    np.testing.assert_array_equal(np.asarray(fast[0]), np.asarray(plain[0]))  # NaN == NaN here
    np.testing.assert_allclose(fast[1], plain[1], rtol=0, atol=1e-14)


def test_an_all_zero_matrix_uses_the_plain_product():
    w = [[0.0, 0.0], [0.0, 0.0]]
    weight = NormedWeight.of(w, transpose(w))
    assert weight.scale == 0.0
    assert weight.times([[1.0, 2.0]], [1.0, 2.0]) == [[1.0, 2.0]]


def test_linear_forward_takes_a_normed_weight_and_caches_the_rows():
    w = [[1.0, 2.0, 0.5], [3.0, 4.0, -1.0]]
    x = [[[1.0, -1.0], [0.25, 2.0]]]  # (1, 2, 2)
    y_fast, cache_fast = linear_forward(x, NormedWeight.of(w, transpose(w)), [0.0, 1.0, 2.0])
    y_plain, cache_plain = linear_forward(x, w, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(y_fast, y_plain, rtol=0, atol=1e-14)
    assert cache_fast.w is w
    assert cache_plain.w is w


TOL = 1e-11  # relative to max(1, |value|): O(1) weights, float64


def _close(a, b, what):
    assert_close(a, b, TOL, what)


@given(cfg=configs(dropout=True), data=st.data(), train=st.booleans())
def test_fast_model_equals_plain_model(cfg, data, train):
    tokens, targets = data.draw(batches(cfg, max_batch=2))
    params = random_params(cfg, data.draw(st.integers(0, 2**16)), scale=0.5)
    plain = PythonModel(cfg, params, dtype="float64")
    fast = ltx.create_model(cfg, backend="python", fast=True, params=params, dtype="float64")
    assert isinstance(fast, FastPythonModel)
    assert repr(fast).startswith("FastPythonModel(")
    masks = make_masks(cfg, *tokens.shape, np.random.default_rng(1), "float64") if train else None
    _close(plain.forward(tokens, train=train, masks=masks),
           fast.forward(tokens, train=train, masks=masks), "logits")
    loss_p, grads_p = plain.loss_and_grads(tokens, targets, train=train, masks=masks)
    loss_f, grads_f = fast.loss_and_grads(tokens, targets, train=train, masks=masks)
    _close(loss_p, loss_f, "loss")
    assert list(grads_f) == list(grads_p)
    for name in grads_p:
        _close(grads_p[name], grads_f[name], name)


@given(cfg=configs(), data=st.data())
def test_fast_decoding_equals_plain_decoding(cfg, data):
    tokens, _ = data.draw(batches(cfg, max_batch=1))
    params = random_params(cfg, data.draw(st.integers(0, 2**16)), scale=0.5)
    plain, fast = PythonModel(cfg, params, dtype="float64"), FastPythonModel(cfg, params,
                                                                             dtype="float64")
    split = max(1, tokens.shape[1] // 2)
    lp, kv_p = plain.decode(tokens[:, :split])
    lf, kv_f = fast.decode(tokens[:, :split])
    _close(lp, lf, "prefill logits")
    if tokens.shape[1] > split:
        lp, _ = plain.decode(tokens[:, split:], kv_p)
        lf, _ = fast.decode(tokens[:, split:], kv_f)
        _close(lp, lf, "decode logits")


@pytest.mark.parametrize("tie", [False, True])
def test_changed_weights_reach_the_next_fast_pass(tie):
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, tie_embeddings=tie)
    model = FastPythonModel(cfg, seed=1, dtype="float64")
    before = model.forward([[1, 2, 3]])  # fills both memos
    model.params["blocks.0.attn.w_q"][3][5] += 0.5
    model.params["embed.tokens"][2][1] -= 1.0  # read by the tied head through its columns
    after = model.forward([[1, 2, 3]])
    fresh = FastPythonModel(cfg, model.parameters(), dtype="float64").forward([[1, 2, 3]])
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, fresh)


def test_fast_model_trains_like_the_plain_model():
    from literate_tx.python_backend.optim import AdamW

    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
    tokens, targets = np.array([[1, 2, 3, 4]]), np.array([[2, 3, 4, 5]])
    losses = {}
    for cls in (PythonModel, FastPythonModel):
        model = cls(cfg, seed=2, dtype="float64")
        opt = AdamW(model.params, lr=1e-2)
        run = []
        for _ in range(5):
            loss, grads = model.loss_and_grads(tokens, targets)
            opt.step(grads)
            run.append(loss)
        losses[cls.__name__] = run
    np.testing.assert_allclose(losses["FastPythonModel"], losses["PythonModel"], rtol=1e-10)
    assert losses["PythonModel"][-1] < losses["PythonModel"][0]

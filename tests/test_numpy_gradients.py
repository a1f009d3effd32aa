"""The NumPy backend's hand-derived gradients against central finite differences, in float64.

(a) each layer's backward over generated shapes; (b) the whole model, every element of every
parameter, over configurations drawn from the full switch matrix with O(1) random weights.
The error measure is ``max|analytic - numeric| / max(max|numeric|, 1)``, a relative error for
gradients of order one and an absolute one for small gradients; it must stay below 1e-6.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from helpers import summarise
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import SWITCH_VALUES, batches, configs, random_params

import literate_tx as ltx
from literate_tx.numpy_backend import (
    activations,
    attention,
    embedding,
    feedforward,
    linear,
    norms,
    positions,
    softmax,
)
from literate_tx.numpy_backend import loss as ce
from literate_tx.numpy_backend.dropout import make_masks

TOL = 1e-6
WORST: dict[str, float] = {}
CHECKED: list[ltx.ModelConfig] = []  # whole-model configurations whose every gradient was checked
SWITCHES = ("norm", "residual", "activation", "position", "bias", "tie_embeddings", "dropout",
            "n_layers", "n_heads", "kv_heads")


def _summary() -> list[str]:
    """The worst errors accepted and the switch values covered, for the terminal summary."""
    if not WORST:
        return []
    lines = [", ".join(f"{k}={v:.1e}" for k, v in sorted(WORST.items()))]
    if CHECKED:
        lines.append(f"whole-model checks: {len(CHECKED)} configurations "
                     f"({len(set(CHECKED))} distinct); switch values covered:")
        for field in SWITCHES:
            counts = Counter(getattr(c, field) for c in CHECKED)
            lines.append(f"  {field}: " + ", ".join(f"{k}={n}" for k, n in
                                                    sorted(counts.items(), key=str)))
    return lines


summarise("worst relative gradient errors against finite differences (test_numpy_gradients)",
          _summary)


def rel_err(analytic: np.ndarray, numeric: np.ndarray) -> float:
    return float(np.max(np.abs(analytic - numeric)) / max(np.max(np.abs(numeric)), 1.0))


def numeric_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of x (in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def record(name: str, err: float) -> None:
    WORST[name] = max(WORST.get(name, 0.0), err)


def check(name: str, analytic: np.ndarray, f, x: np.ndarray) -> None:
    err = rel_err(analytic, numeric_grad(f, x))
    record(name, err)
    assert err < TOL, f"{name}: relative error {err:.2e}"


shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(2, 6))
seeds = st.integers(0, 2**31 - 1)


# --------------------------------------------------------------------------- (a) layers
@given(shapes, st.integers(1, 5), st.booleans(), seeds)
def test_linear_backward(shape, n_out, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    w = rng.normal(size=(shape[-1], n_out))
    b = rng.normal(size=n_out) if bias else None
    R = rng.normal(size=shape[:-1] + (n_out,))

    def f():
        return float(np.sum(linear.linear_forward(x, w, b)[0] * R))

    _, cache = linear.linear_forward(x, w, b)
    dx, dw, db = linear.linear_backward(R, cache)
    check("linear.x", dx, f, x)
    check("linear.w", dw, f, w)
    if bias:
        check("linear.b", db, f, b)


@given(shapes, st.sampled_from(["layernorm", "rmsnorm"]), st.booleans(), seeds)
def test_norm_backward(shape, kind, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * 2 + 0.5
    w = rng.normal(size=shape[-1])
    b = rng.normal(size=shape[-1]) if (bias and kind == "layernorm") else None
    R = rng.normal(size=shape)

    def f():
        return float(np.sum(norms.norm_forward(kind, x, w, b, 1e-5)[0] * R))

    _, cache = norms.norm_forward(kind, x, w, b, 1e-5)
    dx, dw, db = norms.norm_backward(R, cache)
    check(f"{kind}.x", dx, f, x)
    check(f"{kind}.weight", dw, f, w)
    if b is not None:
        check(f"{kind}.bias", db, f, b)


@given(shapes, st.sampled_from(["relu", "gelu", "gelu_tanh", "swish"]), seeds)
def test_activation_backward(shape, kind, seed):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=shape) * 2
    if kind == "relu":  # keep away from the kink, where no derivative exists
        u = np.where(np.abs(u) < 1e-3, 0.5, u)
    R = rng.normal(size=shape)

    def f():
        return float(np.sum(activations.activation_forward(kind, u) * R))

    check(f"activation.{kind}", activations.activation_backward(kind, R, u), f, u)


@given(shapes, seeds, st.booleans())
def test_softmax_backward(shape, seed, masked):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=shape) * 3
    if masked:
        z[..., 1:] = np.where(rng.random(shape[:-1] + (shape[-1] - 1,)) < 0.3, -np.inf, z[..., 1:])
    R = rng.normal(size=shape)

    def f():
        return float(np.sum(softmax.softmax_forward(z) * R))

    p = softmax.softmax_forward(z)
    dz = softmax.softmax_backward(R, p)
    finite = np.isfinite(z)
    # differentiate only finite entries: perturbing -inf is meaningless
    g = np.zeros_like(z)
    for i in zip(*np.nonzero(finite), strict=True):
        old = z[i]
        z[i] = old + 1e-6
        fp = f()
        z[i] = old - 1e-6
        fm = f()
        z[i] = old
        g[i] = (fp - fm) / 2e-6
    err = rel_err(np.where(finite, dz, 0.0), g)
    record("softmax", err)
    assert err < TOL
    assert np.all(dz[~finite] == 0.0)


@given(st.integers(1, 2), st.integers(1, 5), st.sampled_from([2, 4, 6]), st.integers(0, 3), seeds)
def test_rope_backward(B, T, D, offset, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, 2, T, D))
    cos, sin = positions.rope_tables(T, D, 100.0, offset=offset)
    R = rng.normal(size=x.shape)

    def f():
        return float(np.sum(positions.apply_rope(x, cos, sin) * R))

    check("rope", positions.rope_backward(R, cos, sin), f, x)


@given(st.integers(1, 3), st.integers(1, 5), st.integers(2, 5), st.booleans(), seeds)
def test_embedding_backward(B, T, V, learned, seed):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, V, size=(B, T))
    table = rng.normal(size=(V, 3))
    pos = rng.normal(size=(6, 3)) if learned else None
    R = rng.normal(size=(B, T, 3))

    def f():
        return float(np.sum(embedding.embedding_forward(tokens, table, pos)[0] * R))

    _, cache = embedding.embedding_forward(tokens, table, pos)
    dtable, dpos = embedding.embedding_backward(R, cache)
    check("embedding.tokens", dtable, f, table)
    if learned:
        check("embedding.positions", dpos, f, pos)


@given(configs(max_layers=1, dropout=True), st.integers(1, 2), st.integers(1, 5), seeds)
def test_attention_backward(cfg, B, T, seed):
    rng = np.random.default_rng(seed)
    params = random_params(cfg, seed)
    p = {k.split(".")[-1]: v for k, v in params.items() if k.startswith("blocks.0.attn.")}
    x = rng.normal(size=(B, T, cfg.d_model))
    mask = make_masks(cfg, B, T, rng).get("blocks.0.attn.weights_dropout")
    R = rng.normal(size=x.shape)

    def f():
        return float(np.sum(attention.attention_forward(x, p, cfg, weights_mask=mask)[0] * R))

    _, cache = attention.attention_forward(x, p, cfg, weights_mask=mask)
    dx, grads = attention.attention_backward(R, cache)
    check("attention.x", dx, f, x)
    for name, g in grads.items():
        check(f"attention.{name}", g, f, p[name])


@given(configs(max_layers=1, dropout=True, gqa=True), st.integers(1, 2), st.integers(1, 5), seeds)
def test_attention_backward_grouped_query(cfg, B, T, seed):
    """Grouped-query attention for sure: the shared key/value heads' gradients, eq.
    (attn-gqa-backward), summed over their query groups, against finite differences."""
    assert cfg.kv_heads < cfg.n_heads
    test_attention_backward.hypothesis.inner_test(cfg, B, T, seed)


@given(configs(max_layers=1), st.integers(1, 2), st.integers(1, 4), seeds)
def test_feedforward_backward(cfg, B, T, seed):
    rng = np.random.default_rng(seed)
    params = random_params(cfg, seed)
    p = {k.split(".")[-1]: v for k, v in params.items() if k.startswith("blocks.0.mlp.")}
    x = rng.normal(size=(B, T, cfg.d_model))
    R = rng.normal(size=x.shape)

    def f():
        return float(np.sum(feedforward.feedforward_forward(x, p, cfg)[0] * R))

    _, cache = feedforward.feedforward_forward(x, p, cfg)
    if cfg.activation == "relu" and np.min(np.abs(cache.u)) < 1e-4:
        return  # a pre-activation on the kink: no derivative to compare
    dx, grads = feedforward.feedforward_backward(R, cache)
    check("feedforward.x", dx, f, x)
    for name, g in grads.items():
        check(f"feedforward.{name}", g, f, p[name])


@given(st.integers(1, 3), st.integers(1, 4), st.integers(2, 6), seeds)
def test_cross_entropy_backward(B, T, V, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(B, T, V)) * 3
    y = rng.integers(0, V, size=(B, T))
    y[rng.random((B, T)) < 0.3] = -100
    y[0, 0] = 0

    def f():
        return ce.cross_entropy_forward(z, y)[0]

    _, cache = ce.cross_entropy_forward(z, y)
    check("cross_entropy", ce.cross_entropy_backward(cache), f, z)


# --------------------------------------------------------------------------- (b) whole model
def _check_model_gradients(cfg, data):
    seed = data.draw(seeds)
    tokens, targets = data.draw(batches(cfg))
    # Without norms, O(1) weights compound over layers (losses of 1e9 were seen), and finite
    # differences of such a function lose all precision; half-scale weights keep it measurable.
    scale = 1.0 if cfg.norm != "none" else 0.5
    model = ltx.create_model(cfg, backend="numpy", params=random_params(cfg, seed, scale),
                             dtype="float64")
    masks = make_masks(cfg, *tokens.shape, np.random.default_rng(seed))
    train = bool(masks)
    loss, grads = model.loss_and_grads(tokens, targets, train=train, masks=masks)
    assume(loss < 1e3)
    _, cache = model.run_with_cache(tokens)
    if cfg.activation == "relu":
        pre = [v for k, v in cache.items() if k.endswith("mlp.pre_act")]
        if min(np.min(np.abs(p)) for p in pre) < 1e-4:
            return  # on a ReLU kink, finite differences are meaningless
    assert sorted(grads) == sorted(ltx.param_shapes(cfg))
    for name, value in model.params.items():
        def f():
            return model.loss_and_grads(tokens, targets, train=train, masks=masks)[0]

        analytic, numeric = grads[name], numeric_grad(f, value)
        if rel_err(analytic, numeric) >= TOL:
            # A correct gradient can miss for two reasons. (1) The loss curves strongly (a
            # LayerNorm row of small variance): the central difference errs by eps^2 times a
            # third derivative, which Richardson's extrapolation from a step four times smaller
            # removes. (2) A ReLU kink lies within the step (the guard above sees evaluation
            # mode, not the dropout masks): there is no derivative, so those entries, where the
            # two steps disagree by far more than eps^2 terms, are left out. A wrong analytic
            # gradient misses the extrapolation as well.
            finer = numeric_grad(f, value, eps=2.5e-7)
            if cfg.activation == "relu":
                smooth = np.abs(numeric - finer) < 1e-3 * max(np.max(np.abs(numeric)), 1.0)
                if smooth.mean() < 0.5:
                    return
                analytic, numeric, finer = analytic[smooth], numeric[smooth], finer[smooth]
            numeric = (16 * finer - numeric) / 15  # error O(eps^4)
        err = rel_err(analytic, numeric)
        record("model", err)
        assert err < TOL, f"{name}: relative error {err:.2e} for {cfg}"
    CHECKED.append(cfg)


@settings(max_examples=30)
@given(configs(dropout=True), st.data())
def test_model_gradients_every_parameter(cfg, data):
    """Every element of every parameter, over the full switch matrix, with O(1) weights."""
    _check_model_gradients(cfg, data)


@pytest.mark.parametrize(("field", "value"), SWITCH_VALUES, ids=lambda v: str(v))
@settings(max_examples=4)
@given(data=st.data())
def test_model_gradients_every_switch_value(field, value, data):
    """The same check with one switch fixed, so that every value of every switch is visited
    (random draws alone met ALiBi, RoPE and position="none" once each in 30 examples)."""
    _check_model_gradients(data.draw(configs(dropout=True, **{field: value})), data)


@settings(max_examples=10)
@given(data=st.data())
def test_model_gradients_grouped_query(data):
    """The whole model with grouped-query attention (n_kv_heads < n_heads), every parameter."""
    cfg = data.draw(configs(dropout=True, gqa=True))
    assert cfg.kv_heads < cfg.n_heads
    _check_model_gradients(cfg, data)

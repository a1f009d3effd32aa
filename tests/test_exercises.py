"""The course's exercises: every folded solution on the site is checked here.

The solutions live in ``docs/course/solutions.py`` and the course's models in
``docs/course/buildup.py``; the pages include them with ``literalinclude``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import literate_tx as ltx
from literate_tx.numpy_backend.attention import attention_forward
from literate_tx.numpy_backend.block import block_backward, block_forward, subdict
from literate_tx.numpy_backend.norms import layernorm_backward, layernorm_forward

COURSE = Path(__file__).resolve().parent.parent / "docs" / "course"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"course_{name}", COURSE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sol = _load("solutions")
buildup = _load("buildup")


def numeric_grad(f, w, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of w (in place)."""
    g = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        old = w[i]
        w[i] = old + eps
        plus = f()
        w[i] = old - eps
        minus = f()
        w[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return g


def tokens(rng, V, B=2, T=5):
    return rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))


# -- the course's models: forward and backward agree with finite differences ----------------------
@pytest.mark.parametrize("name", list(buildup.STEPS))
def test_course_model_gradients(name):
    rng = np.random.default_rng(0)
    V = 7
    model = buildup.STEPS[name](V, C=8, T=6, seed=1) if name != "bigram" else buildup.Bigram(V)
    model.params = {k: v.astype(np.float64) * 20 for k, v in model.params.items()}
    x, y = tokens(rng, V, T=6)
    _, grads = model.loss_and_grads(x, y)
    assert sorted(grads) == sorted(model.params)
    for key, w in model.params.items():
        numeric = numeric_grad(lambda: model.loss_and_grads(x, y)[0], w)
        np.testing.assert_allclose(grads[key], numeric, atol=1e-6, rtol=1e-4, err_msg=key)


def test_gpt_step_is_the_package_model():
    rng = np.random.default_rng(0)
    gpt = buildup.GPT(11, C=8, T=6, seed=2)
    gpt.params = {k: v.astype(np.float64) for k, v in gpt.params.items()}
    x, y = tokens(rng, 11, T=6)
    loss, grads = gpt.loss_and_grads(x, y)
    model = ltx.create_model(gpt.cfg, backend="numpy", params=gpt.params, dtype="float64")
    ref_loss, ref_grads = model.loss_and_grads(x, y)
    assert loss == pytest.approx(ref_loss, abs=1e-12)
    assert sorted(grads) == sorted(ref_grads)
    for key in grads:
        np.testing.assert_allclose(grads[key], ref_grads[key], atol=1e-12, err_msg=key)


def test_training_lowers_the_loss_and_caches_results(tmp_path, monkeypatch):
    data = buildup.load_data(chars=3000)
    hist = buildup.train(buildup.Bigram(len(data.vocab)), data, steps=40, every=20)
    assert hist.steps == [0, 20, 40]
    assert hist.val_loss[-1] < hist.val_loss[0]
    monkeypatch.setattr(buildup, "_CACHE", tmp_path)
    monkeypatch.setitem(buildup.RECIPE, "steps", 10)
    first = buildup.run_step("bigram", data, fresh=True)
    assert (tmp_path / "bigram.json").is_file()
    again = buildup.run_step("bigram", data)
    assert again.val_loss == first.val_loss


# -- step 1 ---------------------------------------------------------------------------------------
def test_uniform_loss_is_the_loss_of_equal_logits():
    V = 13
    model = buildup.Bigram(V)
    model.params["table"][:] = 0.0
    rng = np.random.default_rng(0)
    loss, _ = model.loss_and_grads(*tokens(rng, V))
    assert loss == pytest.approx(sol.uniform_loss(V), abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(V=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_bigram_table_grad(V, seed):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((V, V))
    x, y = tokens(rng, V, B=3, T=4)
    ours = sol.bigram_table_grad(table, x, y)
    model = buildup.Bigram(V)
    model.params["table"] = table
    np.testing.assert_allclose(ours, model.loss_and_grads(x, y)[1]["table"], atol=1e-12)
    numeric = numeric_grad(lambda: model.loss_and_grads(x, y)[0], table)
    np.testing.assert_allclose(ours, numeric, atol=1e-8)


def test_count_table_is_optimal_on_its_own_text():
    rng = np.random.default_rng(0)
    stream = rng.integers(0, 5, size=400)
    best = sol.count_bigram_table(stream, 5, alpha=0.0 + 1e-12)
    # Any other table (here: perturbed ones) has a higher loss on the text it was counted on.
    for _ in range(5):
        other = best + 0.1 * rng.standard_normal(best.shape)
        assert sol.table_loss(best, stream) < sol.table_loss(other, stream)
    assert sol.table_loss(best, stream) < sol.uniform_loss(5)


# -- step 2 ---------------------------------------------------------------------------------------
def test_one_head_shapes():
    B, T, C, V = 3, 5, 8, 11
    model = buildup.OneHead(V, C=C, T=T)
    x = np.zeros((B, T), dtype=np.int64)
    shapes = sol.one_head_shapes(B, T, C, V)
    h = model.params["tokens"][x] + model.params["positions"][:T]
    out, cache = attention_forward(h, model.params, model.cfg)
    assert shapes["x"] == x.shape
    assert shapes["h"] == h.shape
    assert shapes["q"] == cache.q.shape
    assert shapes["weights"] == cache.att.shape
    assert shapes["scores"] == cache.att.shape
    assert shapes["out"] == out.shape
    assert shapes["logits"] == (h @ model.params["w_out"]).shape


def test_breaking_the_mask_lets_the_future_in():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 3))
    w = [rng.standard_normal((3, 3)) for _ in range(3)]
    for causal in (True, False):
        def first_output(causal=causal):
            return float(sol.attention_one_head(x, *w, causal=causal)[0, 0].sum())

        g = numeric_grad(first_output, x)
        future = np.abs(g[0, 1:]).max()
        assert (future < 1e-9) if causal else (future > 1e-3)
    # The causal version is the package's one-head attention.
    cfg = ltx.ModelConfig(10, 3, 1, 1, 4, 8, bias=False, position="none")
    p = {"w_q": w[0], "w_k": w[1], "w_v": w[2], "w_o": np.eye(3)}
    np.testing.assert_allclose(sol.attention_one_head(x, *w), attention_forward(x, p, cfg)[0],
                               atol=1e-12)


# -- step 3 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [buildup.OneHead, buildup.MultiHead])
def test_attention_param_count(cls):
    model = cls(11, C=8, T=6)
    n = sum(v.size for v in model.params.values())
    assert sol.attention_param_count(11, 8, 6, model.H) == n


@pytest.mark.parametrize("D", [4, 16, 64])
def test_score_std(D):
    assert sol.score_std(D) == pytest.approx(1.0, abs=0.05)
    assert sol.score_std(D, scaled=False) == pytest.approx(math.sqrt(D), rel=0.05)


# -- step 4 ---------------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), eps=st.sampled_from([0.0, 1e-5, 0.5]))
def test_layernorm_backward_by_hand(seed, eps):
    rng = np.random.default_rng(seed)
    x, dy, gamma = rng.standard_normal((3, 2, 5)), rng.standard_normal((3, 2, 5)), \
        rng.standard_normal(5)
    ours = sol.layernorm_backward_by_hand(dy, x, gamma, eps)
    _, cache = layernorm_forward(x, gamma, None, eps)
    np.testing.assert_allclose(ours, layernorm_backward(dy, cache)[0], atol=1e-10)
    numeric = numeric_grad(
        lambda: float((layernorm_forward(x, gamma, None, eps)[0] * dy).sum()), x)
    np.testing.assert_allclose(ours, numeric, atol=1e-6)


def test_zero_branches_pass_the_gradient_through():
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8, bias=False)
    p = subdict(ltx.init_params(cfg, seed=0, dtype="float64"), "blocks.0.")
    p["attn.w_o"][:] = 0.0
    p["mlp.w_down"][:] = 0.0
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 4, 8))
    y, cache = block_forward(x, p, cfg)
    dx, grads = block_backward(dy, cache)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_allclose(dx, sol.residual_grad_with_zero_branches(dy), atol=1e-14)
    assert np.abs(grads["attn.w_o"]).max() > 0
    assert np.abs(grads["mlp.w_down"]).max() > 0


# -- step 5 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("L", [1, 2, 3])
def test_gpt_param_count(L):
    cfg = ltx.ModelConfig(vocab_size=11, d_model=8, n_layers=L, n_heads=2, d_ff=32,
                          max_seq_len=6, bias=False, position="learned")
    model = ltx.create_model(cfg, backend="numpy", seed=0)
    assert sol.gpt_param_count(11, 8, 6, L, 32) == model.num_parameters()


# -- backprop by hand ------------------------------------------------------------------------------
def _block_setup(seed):
    cfg = ltx.ModelConfig(10, 8, 1, 2, 12, 8, bias=False, init_std=0.5)
    p = subdict(ltx.init_params(cfg, seed=seed, dtype="float64"), "blocks.0.")
    rng = np.random.default_rng(seed)
    p["attn_norm.weight"] = 1.0 + 0.3 * rng.standard_normal(8)
    p["mlp_norm.weight"] = 1.0 + 0.3 * rng.standard_normal(8)
    return cfg, p, rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 5, 8))


@pytest.mark.parametrize("seed", [0, 1])
def test_block_by_hand_matches_the_package(seed):
    cfg, p, x, dy = _block_setup(seed)
    y, cache = sol.block_forward_by_hand(x, p, H=cfg.n_heads, eps=cfg.norm_eps)
    ref_y, ref_cache = block_forward(x, p, cfg)
    np.testing.assert_allclose(y, ref_y, atol=1e-12)
    dx, grads = sol.block_backward_by_hand(dy, cache)
    ref_dx, ref_grads = block_backward(dy, ref_cache)
    np.testing.assert_allclose(dx, ref_dx, atol=1e-11)
    assert sorted(grads) == sorted(ref_grads)
    for key in grads:
        np.testing.assert_allclose(grads[key], ref_grads[key], atol=1e-11, err_msg=key)


def test_block_by_hand_matches_finite_differences():
    cfg, p, x, dy = _block_setup(3)

    def objective():
        return float((sol.block_forward_by_hand(x, p, cfg.n_heads, cfg.norm_eps)[0] * dy).sum())

    _, cache = sol.block_forward_by_hand(x, p, cfg.n_heads, cfg.norm_eps)
    dx, grads = sol.block_backward_by_hand(dy, cache)
    np.testing.assert_allclose(dx, numeric_grad(objective, x), atol=1e-7)
    for key in ("attn.w_q", "mlp.w_up", "attn_norm.weight"):
        np.testing.assert_allclose(grads[key], numeric_grad(objective, p[key]), atol=1e-7,
                                   err_msg=key)


# -- the derivation chapters' exercises -----------------------------------------------------------
def test_linear_grads():
    from literate_tx.numpy_backend.linear import linear_backward, linear_forward

    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    dy = rng.standard_normal((2, 3, 5))
    dx, dw, db = sol.linear_grads(x, w, dy)
    ref = linear_backward(dy, linear_forward(x, w, b)[1])
    for ours, theirs in zip((dx, dw, db), ref, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
    np.testing.assert_allclose(dw, numeric_grad(lambda: float(((x @ w + b) * dy).sum()), w),
                               atol=1e-7)


def test_embedding_grad_accumulates_repeated_tokens():
    from literate_tx.numpy_backend.embedding import embedding_backward, embedding_forward

    rng = np.random.default_rng(0)
    E, tokens = rng.standard_normal((6, 3)), np.array([[1, 4, 1, 1]])
    dh = rng.standard_normal((1, 4, 3))
    ours = sol.embedding_grad(tokens, dh, 6)
    _, cache = embedding_forward(tokens, E, None)
    np.testing.assert_allclose(ours, embedding_backward(dh, cache)[0], atol=1e-12)
    wrong = np.zeros_like(E)
    wrong[tokens.reshape(-1)] += dh.reshape(-1, 3)  # the pitfall the exercise names
    assert not np.allclose(wrong, ours)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), t=st.integers(0, 50), u=st.integers(0, 50),
       shift=st.integers(1, 30))
def test_rope_score_depends_on_the_distance_only(seed, t, u, shift):
    from literate_tx.numpy_backend.positions import apply_rope, rope_tables

    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((2, 8))
    assert sol.rope_score(q, k, t, u) == pytest.approx(sol.rope_score(q, k, t + shift, u + shift),
                                                       abs=1e-9)
    cos, sin = rope_tables(max(t, u) + 1, 8, 10000.0, np.float64)
    rq = apply_rope(np.broadcast_to(q, (1, 1, max(t, u) + 1, 8)).copy(), cos, sin)[0, 0, t]
    rk = apply_rope(np.broadcast_to(k, (1, 1, max(t, u) + 1, 8)).copy(), cos, sin)[0, 0, u]
    assert sol.rope_score(q, k, t, u) == pytest.approx(float(rq @ rk), abs=1e-9)


def test_softmax_backward_by_hand():
    from literate_tx.numpy_backend.softmax import softmax_backward, softmax_forward

    rng = np.random.default_rng(0)
    z, dp = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    p = softmax_forward(z)
    ours = sol.softmax_backward_by_hand(dp, p)
    np.testing.assert_allclose(ours, softmax_backward(dp, p), atol=1e-12)
    np.testing.assert_allclose(ours, numeric_grad(lambda: float((sol.softmax(z) * dp).sum()), z),
                               atol=1e-8)


def test_uniform_causal_weights():
    cfg = ltx.ModelConfig(10, 4, 1, 2, 8, 8, bias=False, position="none")
    p = {n: np.zeros((4, 4)) for n in ("w_q", "w_k", "w_v", "w_o")}
    _, cache = attention_forward(np.ones((1, 5, 4)), p, cfg)
    np.testing.assert_allclose(cache.att[0, 1], sol.uniform_causal_weights(5), atol=1e-12)


@pytest.mark.parametrize("rho2_over_eps", [1e-3, 1.0, 1e3])
def test_normalised_rms(rho2_over_eps):
    from literate_tx.numpy_backend.norms import rmsnorm_forward

    eps = 1e-5
    rho = math.sqrt(rho2_over_eps * eps)
    x = np.random.default_rng(0).standard_normal(16)
    x *= rho / np.sqrt(np.mean(x * x))
    y, _ = rmsnorm_forward(x, np.ones(16), eps)
    assert float(np.sqrt(np.mean(y * y))) == pytest.approx(sol.normalised_rms(rho, eps), rel=1e-9)
    if rho2_over_eps == 1.0:
        assert sol.normalised_rms(rho, eps) == pytest.approx(1 / math.sqrt(2))


def test_gelu_grad():
    from literate_tx.numpy_backend.activations import activation_backward

    u = np.linspace(-4, 4, 41)
    np.testing.assert_allclose(sol.gelu_grad(u), activation_backward("gelu", np.ones_like(u), u),
                               atol=1e-12)
    assert sol.gelu_grad(np.array([-1.0]))[0] < 0 < sol.gelu_grad(np.array([-0.5]))[0]
    assert sol.gelu_grad(np.array([1.0]))[0] > 1


def test_swiglu_equal_width():
    C, F = 12, 48
    Fs = int(sol.swiglu_equal_width(F))
    counts = {}
    for activation, width in (("gelu", F), ("swiglu", Fs)):
        cfg = ltx.ModelConfig(10, C, 1, 2, width, 8, bias=False, activation=activation)
        params = ltx.init_params(cfg)
        counts[activation] = sum(v.size for k, v in params.items() if ".mlp.w_" in k)
    assert counts["gelu"] == counts["swiglu"]


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_inverted_dropout_mean(p):
    assert sol.inverted_dropout_mean(p) == pytest.approx(1.0, abs=0.01)


def test_cross_entropy_grad():
    from literate_tx.numpy_backend.loss import cross_entropy_backward, cross_entropy_forward

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 5))
    targets = np.array([[1, -100, 4], [0, 2, -100]])
    loss, cache = cross_entropy_forward(logits, targets)
    ours = sol.cross_entropy_grad(logits, targets)
    np.testing.assert_allclose(ours, cross_entropy_backward(cache), atol=1e-12)
    np.testing.assert_allclose(
        ours, numeric_grad(lambda: cross_entropy_forward(logits, targets)[0], logits), atol=1e-8)

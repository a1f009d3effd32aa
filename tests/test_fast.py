"""The speed path equals the reference: FastNumpyModel and FastAdamW against NumpyModel and AdamW.

Over the full switch matrix (hypothesis): logits, loss, every gradient, in evaluation and in
training mode with explicit dropout masks, threaded and unthreaded; float64 to ~1e-10, float32
to the tolerance documented in :mod:`literate_tx.numpy_backend.fast`. Speed is never asserted.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, check_decoding
from hypothesis import given
from hypothesis import strategies as st
from strategies import batches, configs, prompts_and_steps, random_params

import literate_tx as ltx
from literate_tx.masks import make_masks
from literate_tx.numpy_backend import NumpyModel
from literate_tx.numpy_backend.activations import activation_backward, activation_forward, erf
from literate_tx.numpy_backend.fast import (
    FastAdamW,
    FastNumpyModel,
    fast_erf,
    gelu_backward,
    gelu_forward,
    keep_freed_memory,
)
from literate_tx.numpy_backend.optim import AdamW

pytest.importorskip("threadpoolctl")

F64 = dict(rtol=1e-10, atol=1e-10)
F32 = dict(rtol=2e-4, atol=2e-4)  # relative to O(1) weights and activations, see fast.py


def _close(a, b, tol, what):
    assert_close(a, b, tol["atol"], what)


# query rows per attention block: 1 and 2 split every sequence, 3 leaves a short last block
QUERY_BLOCKS = st.sampled_from([1, 2, 3, 64])


def _pair(cfg, seed, dtype, threads, query_block=64):
    params = random_params(cfg, seed, scale=0.5, dtype=dtype)
    return (NumpyModel(cfg, params, dtype=dtype),
            FastNumpyModel(cfg, params, dtype=dtype, threads=threads, query_block=query_block))


@given(cfg=configs(dropout=True), data=st.data(), dtype=st.sampled_from(["float64", "float32"]),
       threads=st.sampled_from([1, 2, 3]), train=st.booleans(), query_block=QUERY_BLOCKS)
def test_fast_model_equals_reference(cfg, data, dtype, threads, train, query_block):
    tokens, targets = data.draw(batches(cfg, max_batch=3))
    ref, fast = _pair(cfg, data.draw(st.integers(0, 2**16)), dtype, threads, query_block)
    tol = F64 if dtype == "float64" else F32
    masks = make_masks(cfg, *tokens.shape, np.random.default_rng(1), dtype) if train else None
    _close(ref.forward(tokens, train=train, masks=masks),
           fast.forward(tokens, train=train, masks=masks), tol, "logits")
    loss_r, grads_r = ref.loss_and_grads(tokens, targets, train=train, masks=masks)
    loss_f, grads_f = fast.loss_and_grads(tokens, targets, train=train, masks=masks)
    _close(loss_r, loss_f, tol, "loss")
    assert list(grads_f) == list(grads_r)
    for name in grads_r:
        assert grads_f[name].shape == grads_r[name].shape
        assert grads_f[name].dtype == np.dtype(dtype), name
        _close(grads_r[name], grads_f[name], tol, name)


@given(cfg=configs(), data=st.data())
def test_threaded_equals_unthreaded(cfg, data):
    tokens, targets = data.draw(batches(cfg, max_batch=4))
    params = random_params(cfg, data.draw(st.integers(0, 2**16)), scale=0.5)
    one = FastNumpyModel(cfg, params, dtype="float64", threads=1)
    two = FastNumpyModel(cfg, params, dtype="float64", threads=2)
    loss_1, grads_1 = one.loss_and_grads(tokens, targets)
    loss_2, grads_2 = two.loss_and_grads(tokens, targets)
    _close(loss_1, loss_2, F64, "loss")
    _close(one.forward(tokens), two.forward(tokens), F64, "logits")
    for name in grads_1:
        _close(grads_1[name], grads_2[name], F64, name)


@given(cfg=configs(dropout=True), data=st.data(), dtype=st.sampled_from(["float64", "float32"]),
       threads=st.sampled_from([1, 2]), query_block=QUERY_BLOCKS)
def test_reused_buffers_leave_nothing_behind(cfg, data, dtype, threads, query_block):
    """The workspace (``reuse_buffers=True``) hands the same arrays to every step. A second
    step on other data must equal a model that allocates afresh, and must not change the
    gradients the first step returned (they are the caller's, not the workspace's)."""
    params = random_params(cfg, data.draw(st.integers(0, 2**16)), scale=0.5, dtype=dtype)
    kept = FastNumpyModel(cfg, params, dtype=dtype, threads=threads, query_block=query_block)
    fresh = FastNumpyModel(cfg, params, dtype=dtype, threads=threads, query_block=query_block,
                           reuse_buffers=False)
    first_batch = data.draw(batches(cfg, max_batch=3))
    tokens, targets = first_batch  # the second step: other tokens in the same shapes, so
    second = ((tokens + 1) % cfg.vocab_size, targets[:, ::-1].copy())  # every array is reused
    train = data.draw(st.booleans())
    masks = [make_masks(cfg, *b[0].shape, np.random.default_rng(k), dtype) if train else None
             for k, b in enumerate((first_batch, second))]
    loss_1, grads_1 = kept.loss_and_grads(*first_batch, train=train, masks=masks[0])
    saved = {name: g.copy() for name, g in grads_1.items()}
    logits_1 = kept.forward(first_batch[0])
    loss_2, grads_2 = kept.loss_and_grads(*second, train=train, masks=masks[1])
    assert kept.workspaces[0].nbytes > 0
    assert fresh.workspaces == []
    for name in grads_1:  # the first step's results are untouched by the second
        assert np.array_equal(grads_1[name], saved[name]), name
    assert np.array_equal(logits_1, fresh.forward(first_batch[0]))
    loss_f, grads_f = fresh.loss_and_grads(*second, train=train, masks=masks[1])
    assert loss_2 == loss_f
    for name in grads_f:
        assert np.array_equal(grads_2[name], grads_f[name]), name


def test_train_mode_draws_the_reference_masks():
    cfg = ltx.ModelConfig(11, 8, 2, 2, 16, 6, dropout=0.3)
    ref = NumpyModel(cfg, seed=4, dtype="float64")
    fast = FastNumpyModel(cfg, seed=4, dtype="float64", threads=2)
    tokens = np.arange(12).reshape(2, 6) % 11
    loss_r, grads_r = ref.loss_and_grads(tokens, tokens, train=True)
    loss_f, grads_f = fast.loss_and_grads(tokens, tokens, train=True)
    assert abs(loss_r - loss_f) < 1e-12
    for name in grads_r:
        _close(grads_r[name], grads_f[name], F64, name)


@given(cfg=configs(), data=st.data(), dtype=st.sampled_from(["float64", "float32"]),
       weight_decay=st.sampled_from([0.0, 0.1]), query_block=QUERY_BLOCKS)
def test_training_steps_equal_reference(cfg, data, dtype, weight_decay, query_block):
    """Three AdamW steps: reference model + AdamW against fast model + FastAdamW."""
    tokens, targets = data.draw(batches(cfg, max_batch=3))
    ref, fast = _pair(cfg, data.draw(st.integers(0, 2**16)), dtype, 2, query_block)
    # Adam's step g / (|g| + eps) turns a float32 rounding difference in a gradient near zero
    # (a dead ReLU, a 2-wide LayerNorm) into a step of up to lr; eps = 1e-4 in float32 bounds
    # that by (difference / 1e-4) * lr, while float64 keeps the default.
    eps = 1e-8 if dtype == "float64" else 1e-4
    opt_r = AdamW(ref.params, lr=1e-2, weight_decay=weight_decay, eps=eps)
    opt_f = FastAdamW(fast.params, lr=1e-2, weight_decay=weight_decay, eps=eps)
    for _ in range(3):
        opt_r.step(ref.loss_and_grads(tokens, targets)[1])
        opt_f.step(fast.loss_and_grads(tokens, targets)[1])
    # Adam divides by sqrt(v), so a gradient near 0 turns rounding into steps of up to lr:
    # tolerances are in units of lr (1e-2). The key bias's exact gradient is zero (it shifts a
    # query's scores by a constant, which the softmax ignores), so its updates are pure rounding
    # noise in either implementation and are not compared.
    tol = dict(rtol=0, atol=1e-8) if dtype == "float64" else dict(rtol=0, atol=2e-3)
    for name, p in ref.params.items():
        if not name.endswith("attn.b_k"):
            _close(p, fast.params[name], tol, name)


@given(shape=st.sampled_from([(3,), (2, 5), (4, 3, 2)]), seed=st.integers(0, 2**16),
       steps=st.integers(1, 4), dtype=st.sampled_from(["float64", "float32", "mixed"]),
       weight_decay=st.sampled_from([0.0, 0.05]), threads=st.sampled_from([1, 2, 3]))
def test_fast_adamw_is_bit_identical(shape, seed, steps, dtype, weight_decay, threads):
    """Flat moments split over 1-3 threads, or per parameter when the dtypes differ."""
    rng = np.random.default_rng(seed)
    init = {"w": rng.normal(size=shape).astype("float64" if dtype == "mixed" else dtype),
            "b": rng.normal(size=shape[-1:]).astype("float32" if dtype == "mixed" else dtype)}
    a = {k: v.copy() for k, v in init.items()}
    b = {k: v.copy() for k, v in init.items()}
    opt_a = AdamW(a, lr=0.01, weight_decay=weight_decay)
    opt_b = FastAdamW(b, lr=0.01, weight_decay=weight_decay, threads=threads)
    assert opt_b._flat_intact() == (dtype != "mixed")
    for _ in range(steps):
        grads = {k: rng.normal(size=v.shape).astype(v.dtype) for k, v in init.items()}
        opt_a.step(grads)
        opt_b.step(grads)
    for k in init:
        assert np.array_equal(a[k], b[k])
        assert np.array_equal(opt_a.state["m"][k], opt_b.state["m"][k])
        assert np.array_equal(opt_a.state["v"][k], opt_b.state["v"][k])


def test_fast_erf_saturates_without_clipping():
    """Far outside the fitted [-4, 4] the polynomial grows (or overflows) and tanh gives +-1:
    no clipping, no overflow warning, NaN stays NaN."""
    import math
    import warnings

    x = np.concatenate([np.geomspace(4.0, 3e38, 2001), [np.inf]]).astype(np.float32)
    x = np.concatenate([x, -x, [np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fast_erf(x)
    exact = np.array([math.copysign(1.0, v) if math.isinf(v) else math.erf(v)
                      for v in x[:-1].astype(np.float64)])
    assert np.abs(got[:-1].astype(np.float64) - exact).max() <= 6e-8  # one float32 ulp of 1
    assert np.isnan(got[-1])


@given(kind=st.sampled_from(["gelu", "gelu_tanh"]),
       u=st.lists(st.floats(-30, 30, allow_nan=False), min_size=1, max_size=300),
       dtype=st.sampled_from(["float64", "float32"]))
def test_fused_gelus_equal_the_reference(kind, u, dtype):
    """gelu_forward / gelu_backward (sigmoid form of the tanh GELU, chunked) against the
    reference formulas of eq. (activations), evaluated in float64."""
    u64 = np.array(u)
    u = u64.astype(dtype)
    da = np.cos(u64).astype(dtype)
    a, gate = gelu_forward(kind, u)
    du = gelu_backward(kind, da.copy(), u, gate)
    assert a.dtype == du.dtype == np.dtype(dtype)
    ref_u = u.astype(np.float64)  # the same inputs, rounded as the model sees them
    tol = 1e-13 if dtype == "float64" else 2e-6  # float32: a few ulps of O(1) values
    scale = np.maximum(1.0, np.abs(ref_u))
    assert np.all(np.abs(a - activation_forward(kind, ref_u)) <= tol * scale)
    ref_du = activation_backward(kind, da.astype(np.float64), ref_u)
    assert np.all(np.abs(du - ref_du) <= tol * scale)


def test_fused_gelus_chunk_boundaries_and_bad_kind():
    """Arrays longer than one chunk, and a kind without a fused kernel."""
    u = np.linspace(-8, 8, 200_003)
    for kind in ("gelu", "gelu_tanh"):
        a, gate = gelu_forward(kind, u)
        np.testing.assert_allclose(a, activation_forward(kind, u), rtol=0, atol=1e-13)
        du = gelu_backward(kind, np.ones_like(u), u, gate)
        np.testing.assert_allclose(du, activation_backward(kind, np.ones_like(u), u), rtol=0,
                                   atol=1e-13)
    with pytest.raises(ValueError, match="kind='swish' is not allowed"):
        gelu_forward("swish", u)


def test_fast_erf_float32_accuracy_and_dtype():
    x = np.linspace(-8, 8, 20001, dtype=np.float32)
    got = fast_erf(x)
    assert got.dtype == np.float32
    assert np.abs(got.astype(np.float64) - erf(x.astype(np.float64))).max() < 5e-7
    x64 = np.linspace(-3, 3, 11)
    assert np.array_equal(fast_erf(x64), erf(x64))  # float64 keeps the reference erf


def test_float32_has_no_float64_intermediates():
    cfg = ltx.ModelConfig(13, 8, 2, 2, 16, 6, position="sinusoidal", activation="gelu")
    fast = FastNumpyModel(cfg, seed=0, dtype="float32", threads=2)
    tokens = np.arange(12).reshape(2, 6) % 13
    assert fast.forward(tokens).dtype == np.float32
    _, grads = fast.loss_and_grads(tokens, tokens)
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}


@given(cfg=configs(max_seq_len=8), data=st.data(), dtype=st.sampled_from(["float64", "float32"]),
       query_block=QUERY_BLOCKS)
def test_fast_decoding_equals_reference_decoding(cfg, data, dtype, query_block):
    # a prompt, then one token at a time, then a second continuation of the same past (which must
    # not overwrite the first's positions), all against the reference's decode and forward
    params = random_params(cfg, data.draw(st.integers(0, 2**16)), scale=0.5, dtype=dtype)
    ref = NumpyModel(cfg, params, dtype=dtype)
    fast = FastNumpyModel(cfg, params, dtype=dtype, query_block=query_block)
    tol = F64 if dtype == "float64" else F32
    tokens, split = data.draw(prompts_and_steps(cfg))
    check_decoding(ref, fast, tokens, split, tol["atol"])


def test_fast_decoding_takes_plain_pairs_and_checks_like_the_reference():
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 6)
    ref = NumpyModel(cfg, seed=3, dtype="float64")
    fast = FastNumpyModel(cfg, ref.parameters(), dtype="float64", threads=1)
    _, kv = ref.decode([[1, 2, 3]])
    pairs = [(np.array(k), np.array(v)) for k, v in kv]  # plain (k, v) arrays are copied in
    a, _ = ref.decode([[4]], pairs)
    b, _ = fast.decode([[4]], pairs)
    _close(a, b, F64, "logits from plain pairs")
    with pytest.raises(ValueError, match="kv_cache has 1 layers"):
        fast.decode([[4]], pairs[:1])
    with pytest.raises(ValueError, match="max_seq_len|at most"):
        fast.decode([[1, 2, 3, 4]], kv)  # 3 + 4 positions > max_seq_len = 6


def test_api_and_inherited_methods():
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, position="rope")
    fast = FastNumpyModel(cfg, seed=0, dtype="float64", threads=2)
    ref = NumpyModel(cfg, fast.parameters(), dtype="float64")
    logits, weights = fast.forward([1, 2, 3], return_weights=True)
    assert logits.shape == (3, 10)
    assert weights[0].shape == (1, 2, 3, 3)
    a, kv = fast.decode([[1, 2]])
    b, _ = ref.decode([[1, 2]])
    assert np.allclose(a, b)
    assert fast.forward([1, 2, 3]).shape == (3, 10)  # 1-D input gives (T, V)
    assert repr(fast).startswith("FastNumpyModel(")
    assert "threads=2" in repr(fast)
    assert keep_freed_memory() in (True, False)


def test_the_allocator_is_changed_only_when_asked():
    """keep_memory is opt-in: a plain FastNumpyModel leaves glibc's settings alone."""
    import subprocess
    import sys

    code = (
        "import literate_tx as ltx\n"
        "from literate_tx.numpy_backend.fast import FastNumpyModel, memory\n"
        "cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)\n"
        "FastNumpyModel(cfg, threads=1)\n"
        "print(memory._memory_kept)\n"
        "FastNumpyModel(cfg, threads=1, keep_memory=True)\n"
        "print(memory._memory_kept == memory.keep_freed_memory())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_bad_threads(threads):
    with pytest.raises(ValueError, match="threads="):
        FastNumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), threads=threads)


@pytest.mark.parametrize("query_block", [0, -2, 1.5, True, "64", None])
def test_bad_query_block(query_block):
    with pytest.raises(ValueError, match=f"query_block={query_block!r} is not allowed"):
        FastNumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), query_block=query_block)


def test_bench_quick_smoke(tmp_path, capsys):
    """The benchmark runs end to end and writes its files (timings are not checked)."""
    from literate_tx import bench

    code = bench.main(["--presets", "tiny", "--backends", "numpy,numpy-fast,python",
                       "--dtypes", "float64", "--repeats", "1", "--warmup", "0",
                       "--gen-tokens", "3", "--lead-in", "0.01", "--out", str(tmp_path)])
    assert code == 0
    data = (tmp_path / "benchmark_results.json").read_text()
    assert '"numpy-fast"' in data
    assert (tmp_path / "report.txt").exists()
    assert "Headline figures" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "value"), [("lead_in", -0.1), ("settle", -1), ("lead_in", "0.2"),
                                         ("settle", True)])
def test_bench_bad_waits(name, value):
    from literate_tx import bench

    with pytest.raises(ValueError, match=f"{name}="):
        bench.run_suite(presets=["tiny"], backends=["numpy"], **{name: value})


def test_fast_adamw_state_round_trip_and_replaced_moments():
    """load_state_dict writes into the flat buffers (still flat, still exact); a moment array
    replaced by the user is used as it is (the per-parameter path)."""
    rng = np.random.default_rng(0)
    init = {"w": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    a, b = ({k: v.copy() for k, v in init.items()} for _ in range(2))
    opt_a, opt_b = AdamW(a, lr=0.01), FastAdamW(b, lr=0.01)
    grads = [{k: rng.normal(size=v.shape) for k, v in init.items()} for _ in range(4)]
    for g in grads[:2]:
        opt_a.step(g)
        opt_b.step(g)
    resumed = FastAdamW({k: v.copy() for k, v in b.items()}, lr=0.0)
    resumed.load_state_dict(opt_b.state_dict())
    assert resumed._flat_intact()
    resumed.state["v"]["b"] = resumed.state["v"]["b"].copy()  # no longer a view
    assert not resumed._flat_intact()
    for g in grads[2:]:
        opt_a.step(g)
        resumed.step(g)
    for k in init:
        assert np.array_equal(a[k], resumed.params[k])
        assert np.array_equal(opt_a.state["v"][k], resumed.state["v"][k])


@pytest.mark.parametrize("threads", [0, 1.5, True])
def test_fast_adamw_bad_threads(threads):
    with pytest.raises(ValueError, match="threads="):
        FastAdamW({"w": np.zeros(2)}, threads=threads)


def test_bench_compact_prints_narrow_and_keeps_the_full_report(tmp_path, capsys):
    from literate_tx import bench

    code = bench.main(["--presets", "tiny", "--backends", "numpy,numpy-fast", "--dtypes",
                       "float64", "--ops", "forward", "--repeats", "1", "--warmup", "0",
                       "--no-memory", "--lead-in", "0", "--compact", "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if " forward " in line]
    assert len(table) == 2
    assert max(map(len, printed.splitlines()[:-1])) <= 80  # the last line names the files
    assert "tracemalloc MB" in (tmp_path / "report.txt").read_text()

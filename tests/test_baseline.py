"""The benchmark's independent GPT-2 (:mod:`literate_tx.baseline`) computes the PyTorch
backend's function on the same canonical weights, so timing one against the other compares
two ways of writing the same model. Speed is never asserted."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import given
from hypothesis import strategies as st
from strategies import configs, random_params

import literate_tx as ltx

torch = pytest.importorskip("torch")
from literate_tx.baseline import GPT2, BaselineModel  # noqa: E402

GPT2_LAYOUT = dict(norm="layernorm", residual="pre", position="learned", gqa=False)


@given(cfg=configs(**GPT2_LAYOUT, activation="gelu") | configs(**GPT2_LAYOUT,
                                                               activation="gelu_tanh"),
       data=st.data())
def test_baseline_equals_the_torch_backend(cfg, data):
    """Logits, loss and every gradient under the canonical names, float64, on O(1) random
    weights, over bias, tied head, both GELUs and the sizes ``configs`` draws."""
    params = random_params(cfg, data.draw(st.integers(0, 2**16)), scale=0.5)
    ours = ltx.create_model(cfg, backend="torch", params=params, dtype="float64")
    base = BaselineModel(cfg, params, dtype="float64")
    assert base.num_parameters() == ours.num_parameters()
    T = data.draw(st.integers(1, cfg.max_seq_len))
    ids = st.lists(st.integers(0, cfg.vocab_size - 1), min_size=2 * T, max_size=2 * T)
    tokens = np.asarray(data.draw(ids)).reshape(2, T)
    targets = np.asarray(data.draw(ids)).reshape(2, T)
    assert_close(ours.forward(tokens), base.forward(tokens), 1e-10, "logits")
    loss_ours, grads_ours = ours.loss_and_grads(tokens, targets)
    loss_base, grads_base = base.loss_and_grads(tokens, targets)
    assert_close(loss_ours, loss_base, 1e-10, "loss")
    assert sorted(grads_base) == sorted(grads_ours)
    for name, g in grads_ours.items():
        assert grads_base[name].shape == g.shape, name
        assert_close(g, grads_base[name], 1e-10, name)


@pytest.mark.parametrize(("field", "value"), [("norm", "rmsnorm"), ("norm", "none"),
                                              ("residual", "post"), ("residual", "sandwich"),
                                              ("activation", "relu"), ("activation", "swiglu"),
                                              ("position", "rope"), ("position", "alibi"),
                                              ("position", "sinusoidal"), ("dropout", 0.1),
                                              ("n_kv_heads", 1)])
def test_other_layouts_are_refused_by_name(field, value):
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4, **{field: value})
    with pytest.raises(ValueError, match=f"{field}={value!r} is not allowed for the GPT-2"):
        GPT2(cfg)


def test_tied_head_is_one_tensor_and_dtype_is_checked():
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4, tie_embeddings=True)
    m = BaselineModel(cfg, ltx.init_params(cfg, seed=1, dtype="float64"), dtype="float64")
    assert m.module.lm_head.weight is m.module.wte.weight
    assert m.forward([[1, 2]]).dtype == np.float64
    with pytest.raises(ValueError, match="dtype='float16' is not supported"):
        BaselineModel(cfg, dtype="float16")
    with pytest.raises(ValueError, match="tokens"):  # ids are checked as the backends check them
        m.forward([[1, 10]])


def test_bench_times_the_baseline_for_training_only():
    from literate_tx import bench

    res = bench.run_suite(presets=["tiny"], backends=["numpy-fast", "torch-sdpa", "torch-baseline"],
                          dtypes=["float32"], repeats=1, warmup=0, gen_tokens=2, memory=False,
                          lead_in=0.0, verbose=False,
                          ops=["forward", "train_step", "generate", "generate_nocache"])
    timed = {(r["backend"], r["op"]) for r in res["results"]}
    assert {("torch-baseline", "forward"), ("torch-baseline", "train_step")} <= timed
    assert not {op for b, op in timed if b == "torch-baseline"} & {"generate", "generate_nocache"}
    names = {r["name"] for r in res["ratios"] if r["op"] == "train_step"}
    assert "torch-sdpa speed-up over torch-baseline" in names
    assert "torch-sdpa speed-up over torch-baseline" in bench.format_report(res)

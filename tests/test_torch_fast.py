"""PyTorch's speed path equals the module: FastTorchModel's one-token decoding step.

Over the full switch matrix (hypothesis, and every value of every switch for sure): the logits
of a prompt and then one token at a time against the module's own decoding and its full forward
pass, the caches' keys and values, a second continuation of the same past, in float64 to 1e-10
and float32 to 1e-4 (relative to O(1) weights). Also: weights that change between steps (an
optimiser step, ``load_parameters``) reach the step; caches move between the two paths; the
CPU and a GPU agree where there is one. Speed is never asserted.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, check_decoding
from hypothesis import given
from hypothesis import strategies as st
from strategies import SWITCH_VALUES, configs, prompts_and_steps, random_params

import literate_tx as ltx

torch = pytest.importorskip("torch")

from literate_tx.torch_backend import TorchModel  # noqa: E402
from literate_tx.torch_backend.attention import KVCache  # noqa: E402
from literate_tx.torch_backend.fast import DecodeWeights, FastTorchModel, decode_step  # noqa: E402

F64 = dict(atol=1e-10)
F32 = dict(atol=1e-4)


def _close(a, b, tol, what):
    assert_close(a, b, tol["atol"], what)


def _decode_both(cfg, data, dtype):
    """Prompt, token-by-token steps and a second continuation, plain and fast."""
    params = random_params(cfg, data.draw(st.integers(0, 2**16)), scale=0.5, dtype=dtype)
    plain = TorchModel(cfg, params, dtype=dtype)
    fast = FastTorchModel(cfg, params, dtype=dtype)
    tol = F64 if dtype == "float64" else F32
    tokens, split = data.draw(prompts_and_steps(cfg))
    check_decoding(plain, fast, tokens, split, tol["atol"])


@given(cfg=configs(max_seq_len=8), data=st.data(), dtype=st.sampled_from(["float64", "float32"]))
def test_fast_decoding_equals_the_module(cfg, data, dtype):
    _decode_both(cfg, data, dtype)


@pytest.mark.parametrize(("field", "value"), SWITCH_VALUES, ids=lambda v: str(v))
@given(data=st.data())
def test_fast_decoding_every_switch_value(field, value, data):
    cfg = data.draw(configs(max_seq_len=6, **{field: value}))
    _decode_both(cfg, data, "float64")


def test_decode_step_alone_matches_forward_rows():
    cfg = ltx.ModelConfig(11, 8, 2, 2, 16, 8, position="alibi", activation="swiglu")
    module = TorchModel(cfg, random_params(cfg, 0, scale=0.5), dtype="float64").module
    tokens = torch.tensor([[1, 5, 2, 7, 3]])
    full = module(tokens)  # (1, 5, V)
    _, kv = module(tokens[:, :1], return_kv=True)
    weights = DecodeWeights.of(module)
    with torch.inference_mode():
        for t in range(1, 5):
            step, kv = decode_step(cfg, weights, tokens[:, t:t + 1], kv)
            assert step.shape == (1, 1, 11)
            assert torch.allclose(step[:, 0], full[:, t], rtol=0, atol=1e-12), t


@pytest.mark.parametrize("change", ["optimiser", "load_parameters", "data", "each copied"])
def test_changed_weights_reach_the_next_step(change):
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, activation="gelu")
    params = random_params(cfg, 1, scale=0.5)
    fast = FastTorchModel(cfg, params, dtype="float64")
    _, kv = fast.decode([[1, 2]])
    fast.decode([[3]], kv)  # builds the decoding weights
    before = fast._weights
    if change == "optimiser":
        opt = torch.optim.SGD(fast.module.parameters(), lr=0.1)
        loss = fast.module(torch.tensor([[1, 2, 3]])).square().mean()
        loss.backward()
        opt.step()
    elif change == "load_parameters":
        fast.load_parameters(random_params(cfg, 2, scale=0.5))
    elif change == "data":  # a tensor swapped in under the same Parameter
        with torch.no_grad():
            w = fast.module.blocks[1].attn.w_v
            w.data = w.data + 0.25
    else:  # every parameter the weights copy (W_qkv, and the GELU's folded W_up, b_up, W_down)
        for name in ("attn.w_q", "attn.b_k", "attn.w_v", "mlp.w_up", "mlp.b_up", "mlp.w_down"):
            assert before.is_current()
            with torch.no_grad():
                fast.module.get_parameter(f"blocks.1.{name}").mul_(1.5)
            assert not before.is_current(), name
            fast.decode([[3]], kv)
            before = fast._weights
        fast._weights = None
        fast.decode([[3]], kv)
        before = fast._weights
        with torch.no_grad():
            fast.module.blocks[0].mlp.w_down.mul_(1.5)
    assert not before.is_current()
    plain = TorchModel(cfg, fast.parameters(), dtype="float64")
    _, kv_f = fast.decode([[1, 2]])
    _, kv_p = plain.decode([[1, 2]])
    a, _ = plain.decode([[3]], kv_p)
    b, _ = fast.decode([[3]], kv_f)
    _close(a, b, F64, "after the change")
    assert fast._weights is not before


def test_caches_move_between_the_two_paths():
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, position="rope")
    params = random_params(cfg, 3, scale=0.5)
    plain, fast = TorchModel(cfg, params, dtype="float64"), FastTorchModel(cfg, params,
                                                                           dtype="float64")
    full = plain.forward([[1, 2, 3, 4, 5]])
    _, kv = plain.decode([[1, 2]])
    a, kv = fast.decode([[3]], kv)  # the plain path's cache, continued by the fast step
    b, kv = plain.decode([[4]], kv)  # and back
    pairs = [(k.numpy().copy(), v.numpy().copy()) for k, v in kv]
    c, _ = fast.decode([[5]], pairs)  # plain (k, v) arrays are copied into a cache
    for got, t in ((a, 2), (b, 3), (c, 4)):
        _close(full[0, t], got[0, 0], F64, f"position {t}")
    assert isinstance(kv[0], KVCache)


def test_checks_and_api_are_the_plain_models():
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 6)
    fast = ltx.create_model(cfg, backend="torch", fast=True, dtype="float64", attention="explicit")
    assert isinstance(fast, FastTorchModel)
    assert fast.attention == "explicit"
    assert repr(fast).startswith("FastTorchModel(2 layers")
    _, kv = fast.decode([[1, 2, 3]])
    with pytest.raises(ValueError, match="kv_cache has 1 layers"):
        fast.decode([[4]], kv[:1])
    with pytest.raises(ValueError, match=r"vocab_size=10"):
        fast.decode([[10]], kv)
    _, kv = fast.decode([[4]], kv)
    _, kv = fast.decode([[5]], kv)
    _, kv = fast.decode([[6]], kv)  # the cache is full: 6 positions
    with pytest.raises(ValueError, match="max_seq_len"):
        fast.decode([[7]], kv)
    ref = ltx.create_model(cfg, backend="torch", params=fast.parameters(), dtype="float64",
                           attention="explicit")
    assert np.array_equal(fast.forward([[1, 2]]), ref.forward([[1, 2]]))


def test_generation_is_the_same_text():
    cfg = ltx.ModelConfig(12, 16, 2, 2, 32, 40, position="learned")
    fast = ltx.create_model(cfg, backend="torch", fast=True, seed=4, dtype="float64")
    plain = ltx.create_model(cfg, backend="torch", seed=4, dtype="float64")
    for kw in (dict(temperature=0), dict(temperature=1.0, top_k=5, seed=9)):
        assert ltx.generate(fast, [1, 2, 3], 30, **kw) == ltx.generate(plain, [1, 2, 3], 30, **kw)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():  # pragma: no cover - only where there is a GPU
    cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, position="alibi")
    params = random_params(cfg, 5, scale=0.5)
    cpu = FastTorchModel(cfg, params, dtype="float64")
    gpu = FastTorchModel(cfg, params, dtype="float64", device="cuda")
    _, kv_c = cpu.decode([[1, 2]])
    _, kv_g = gpu.decode([[1, 2]])
    a, _ = cpu.decode([[3]], kv_c)
    b, kv_g = gpu.decode([[3]], kv_g)
    _close(a, b, F64, "cuda step")
    assert kv_g[0].k.device.type == "cuda"


def test_bench_times_torch_fast_for_generation_only_and_batches():
    """``torch-fast`` rows exist for generation only; ``gen_batch`` generates several sequences
    (the same tokens with and without the cache) and counts all their new tokens."""
    from literate_tx import bench

    res = bench.run_suite(presets=["tiny"], backends=["numpy-fast", "torch-sdpa", "torch-fast"],
                          dtypes=["float64"], ops=["forward", "generate", "generate_nocache"],
                          repeats=1, warmup=0, gen_tokens=3, gen_batch=2, memory=False,
                          lead_in=0.0, verbose=False)
    ops = {(r["backend"], r["op"]) for r in res["results"]}
    assert ("torch-fast", "forward") not in ops
    assert ("torch-fast", "generate") in ops
    row = next(r for r in res["results"] if r["op"] == "generate")
    assert row["batch"] == 2
    assert row["tokens_per_call"] == 6
    kv = [r for r in res["ratios"] if r["name"].startswith("KV cache")]
    assert {r["backend"] for r in kv} == {"numpy-fast", "torch-sdpa", "torch-fast"}
    assert all(r["same_tokens"] and r["batch"] == 2 for r in kv)
    assert "x 2 sequences" in bench.format_report(res)
    with pytest.raises(ValueError, match="gen_batch=0"):
        bench.run_suite(presets=["tiny"], backends=["numpy"], gen_batch=0)

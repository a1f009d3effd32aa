"""Grouped-query attention: what ``n_kv_heads`` means, pinned down apart from the backends.

The cross-backend and finite-difference tests (``test_equivalence.py``,
``test_numpy_gradients.py``, the speed-path tests) draw ``n_kv_heads`` with every other switch;
they prove the backends agree with each other and with the derivatives of the NumPy reference.
They cannot tell *which* query heads share a key/value head, since every backend could group
them the same wrong way. This file fixes that meaning: a model with ``G`` key/value heads is the
multi-head model whose key and value weights repeat each of the ``G`` heads for its ``R = H/G``
consecutive query heads (Llama's ``repeat_kv``), and the gradient of a shared head is the sum of
its copies' gradients, eq. (attn-gqa-backward). Tolerance: 1e-10 relative, float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import batches, configs, random_params

import literate_tx as ltx
from literate_tx.numpy_backend.dropout import make_masks

BACKENDS = ("numpy", "python", "torch")
TOL = 1e-10


def _repeat_columns(w: np.ndarray, G: int, R: int) -> np.ndarray:
    """(..., G D) -> (..., H D): each head's D columns repeated for its R query heads."""
    D = w.shape[-1] // G
    heads = w.reshape(*w.shape[:-1], G, 1, D)  # (..., G, 1, D)
    return np.broadcast_to(heads, (*w.shape[:-1], G, R, D)).reshape(*w.shape[:-1], G * R * D)


def _sum_columns(g: np.ndarray, G: int, R: int) -> np.ndarray:
    """(..., H D) -> (..., G D): the gradients of the R copies of each head summed."""
    D = g.shape[-1] // (G * R)
    return g.reshape(*g.shape[:-1], G, R, D).sum(axis=-2).reshape(*g.shape[:-1], G * D)


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-30)


def _model(backend, cfg, params, fast=False):
    if backend == "torch":
        pytest.importorskip("torch")
    return ltx.create_model(cfg, backend=backend, params=params, dtype="float64", fast=fast)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_grouped_query_is_multi_head_with_repeated_key_value_weights(backend, data):
    cfg = data.draw(configs(max_layers=2, max_seq_len=5, dropout=True, gqa=True))
    G, R = cfg.kv_heads, cfg.n_heads // cfg.kv_heads
    seed = data.draw(st.integers(0, 2**31 - 1))
    tokens, targets = data.draw(batches(cfg))
    params = random_params(cfg, seed, scale=1.0 if cfg.norm != "none" else 0.5)
    mha_cfg = cfg.replace(n_kv_heads=None)
    mha_params = {n: (_repeat_columns(v, G, R) if n.split(".")[-1] in ("w_k", "w_v", "b_k", "b_v")
                      else v) for n, v in params.items()}
    masks = make_masks(cfg, *tokens.shape, np.random.default_rng(seed)) or None
    gqa, mha = _model(backend, cfg, params), _model(backend, mha_cfg, mha_params)
    kwargs = dict(train=masks is not None, masks=masks)
    assert _rel_err(gqa.forward(tokens, **kwargs), mha.forward(tokens, **kwargs)) <= TOL
    loss, grads = gqa.loss_and_grads(tokens, targets, **kwargs)
    mha_loss, mha_grads = mha.loss_and_grads(tokens, targets, **kwargs)
    assert abs(loss - mha_loss) <= TOL * max(1.0, abs(mha_loss))
    scale = max(float(np.max(np.abs(g))) for g in mha_grads.values())
    for name, g in grads.items():
        expected = mha_grads[name]
        if name.split(".")[-1] in ("w_k", "w_v", "b_k", "b_v"):
            expected = _sum_columns(expected, G, R)  # eq. (attn-gqa-backward)
        err = float(np.max(np.abs(np.asarray(g) - expected))) / scale
        assert err <= TOL, f"{backend}: gradient of {name}: {err:.2e}"


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "fast"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_kv_cache_holds_only_the_key_value_heads(backend, fast):
    cfg = ltx.ModelConfig(11, 16, 2, 4, 12, 9, n_kv_heads=2, position="rope")
    model = _model(backend, cfg, random_params(cfg, seed=3), fast)
    _, kv = model.decode(np.array([[1, 2, 3]]))
    _, kv = model.decode(np.array([[4]]), kv)
    assert len(kv) == cfg.n_layers
    for layer in kv:
        k, v = layer
        for t in (k, v):
            shape = np.asarray(t.numpy() if hasattr(t, "numpy") else t).shape
            assert shape == (1, 2, 4, cfg.d_head)  # (B, G, T, D): G = 2 heads, not H = 4


def test_n_kv_heads_is_validated_and_defaults_to_n_heads():
    cfg = ltx.ModelConfig(11, 16, 1, 4, 12, 9)
    assert cfg.n_kv_heads is None
    assert cfg.kv_heads == 4
    assert cfg.replace(n_kv_heads=4) == cfg  # one spelling of multi-head attention
    assert ltx.ModelConfig.from_json(cfg.replace(n_kv_heads=2).to_json()).kv_heads == 2
    old = cfg.to_dict()
    del old["n_kv_heads"]  # a config saved before the field existed
    assert ltx.ModelConfig.from_dict(old) == cfg
    for bad in (3, 0, -2, 8, 2.0, True, "2"):
        with pytest.raises(ValueError, match=r"n_kv_heads=.*allowed: None \(= n_heads\) or one "
                                             r"of 1, 2, 4"):
            cfg.replace(n_kv_heads=bad)
    assert ltx.llama_config(n_heads=8, d_model=64, n_kv_heads=2).kv_heads == 2
    shapes = ltx.param_shapes(cfg.replace(n_kv_heads=1, bias=True))
    assert shapes["blocks.0.attn.w_k"] == shapes["blocks.0.attn.w_v"] == (16, 4)
    assert shapes["blocks.0.attn.b_k"] == (4,)
    assert shapes["blocks.0.attn.w_q"] == (16, 16)


@settings(max_examples=10, deadline=None)
@given(configs(max_layers=1, max_seq_len=5), st.integers(0, 2**31 - 1), st.integers(1, 4))
def test_the_three_attention_functions_return_the_same_pair(cfg, seed, T):
    """``out, cache = attention(...)`` in every backend (issue 16, the mirror): the same output,
    ``cache.att`` the (B, H, T, T) weights, ``cache.kv`` the cache of the G key/value heads."""
    torch = pytest.importorskip("torch")
    from literate_tx.numpy_backend import attention as np_attn
    from literate_tx.python_backend import attention as py_attn
    from literate_tx.torch_backend import attention as torch_attn

    prefix = "blocks.0.attn."
    p = {n[len(prefix):]: v for n, v in random_params(cfg, seed).items() if n.startswith(prefix)}
    x = np.random.default_rng(seed).normal(size=(2, T, cfg.d_model))
    module = torch_attn.Attention(cfg, dtype=torch.float64)
    module.load_state_dict({n: torch.from_numpy(v) for n, v in p.items()})
    results = {
        "numpy": np_attn.attention_forward(x, p, cfg, past=np_attn.KVCache.empty(5)),
        "python": py_attn.attention_forward(x.tolist(), {n: v.tolist() for n, v in p.items()},
                                            cfg, past=py_attn.KVCache.empty(5)),
        "torch": module(torch.from_numpy(x), past=torch_attn.KVCache.empty(5),
                        need_weights=True),
    }

    def array(t):
        return np.array(t.tolist() if hasattr(t, "tolist") else t)

    out_ref = results["numpy"][0]
    for name, result in results.items():
        assert len(result) == 2, name
        out, cache = result
        assert _rel_err(array(out), out_ref) <= TOL, name
        assert array(cache.att).shape == (2, cfg.n_heads, T, T), name
        for t in cache.kv:
            assert array(t).shape == (2, cfg.kv_heads, T, cfg.d_head), name


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_grouped_query_model_trains_saves_and_loads(backend, tmp_path):
    """TrainConfig(n_kv_heads=...) reaches the model (the NumPy run on the speed path); the
    checkpoint holds (C, G D) key/value weights and loads back to the same logits."""
    if backend == "torch":
        pytest.importorskip("torch")
    from literate_tx.training import TrainConfig, load_trained, train

    cfg = TrainConfig(steps=2, batch_size=2, d_model=16, n_layers=1, n_heads=4, n_kv_heads=2,
                      d_ff=16, n_train=20, n_val=5, n_test=5, backend=backend, out=str(tmp_path))
    result = train(cfg, quiet=True)
    model, _, saved, _ = load_trained(str(tmp_path / "last.npz"))
    assert saved.n_kv_heads == 2
    assert model.config.kv_heads == 2
    assert model.parameters()["blocks.0.attn.w_k"].shape == (16, 8)  # (C, G D), D = 4
    if backend == "numpy":
        assert type(model).__name__ == "FastNumpyModel"
    assert result.steps == 2
    with pytest.raises(ValueError, match=r"n_kv_heads=3 is not allowed; it must divide n_heads=4"):
        TrainConfig(n_heads=4, n_kv_heads=3)

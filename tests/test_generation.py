"""Generation: the sampling distribution, seeded determinism across backends, and the KV cache."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from strategies import configs, random_params

import literate_tx as ltx
from literate_tx.config import POSITIONS
from literate_tx.generation import generate, sample_token, sampling_probs

BACKENDS = ("numpy", "python", "torch")

logit_vectors = arrays(np.float64, st.integers(1, 12),
                       elements=st.floats(-20, 20, allow_nan=False, allow_infinity=False))
temperatures = st.floats(0.05, 5.0)


def build(backend: str, cfg, params, dtype: str = "float64"):
    """The model in ``backend``, or a skip when that backend's optional package is missing."""
    if backend == "torch":
        pytest.importorskip("torch")
    return ltx.create_model(cfg, backend=backend, params=params, dtype=dtype)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# --------------------------------------------------------------------------- the distribution
@given(logit_vectors, temperatures)
def test_top_k_one_is_greedy(z, temperature):
    np.testing.assert_array_equal(sampling_probs(z, temperature, top_k=1), sampling_probs(z, 0))
    assert sampling_probs(z, 0)[np.argmax(z)] == 1.0


@given(logit_vectors, temperatures)
def test_top_p_one_without_top_k_is_the_tempered_softmax(z, temperature):
    expected = softmax(z / temperature)
    np.testing.assert_allclose(sampling_probs(z, temperature), expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(sampling_probs(z, temperature, top_p=1.0), expected,
                               rtol=1e-12, atol=1e-300)


@given(logit_vectors, temperatures, st.integers(1, 12))
def test_top_k_keeps_the_k_most_probable(z, temperature, k):
    probs = sampling_probs(z, temperature, top_k=k)
    kept = np.flatnonzero(probs > 0)
    assert len(kept) <= min(k, z.size)
    assert np.isclose(probs.sum(), 1.0)
    # every kept logit is at least every dropped one
    dropped = np.setdiff1d(np.arange(z.size), kept)
    if dropped.size and kept.size:
        assert z[kept].min() >= z[dropped].max()


@given(logit_vectors, temperatures, st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_nucleus(z, temperature, p):
    full = softmax(z / temperature)
    probs = sampling_probs(z, temperature, top_p=p)
    kept = probs > 0
    assert kept[np.argmax(z)]  # the top token is always kept
    assert np.isclose(probs.sum(), 1.0)
    # renormalised over the kept set
    np.testing.assert_allclose(probs[kept], full[kept] / full[kept].sum(), rtol=1e-9)
    mass = full[kept].sum()
    assert mass >= p - 1e-12 or kept.all()
    # minimal: without its least probable member the set falls short of p
    if kept.sum() > 1:
        assert mass - full[kept].min() < p + 1e-12


def test_sampling_probs_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"temperature=-1"):
        sampling_probs([0.0, 1.0], -1)
    with pytest.raises(ValueError, match=r"top_p=1.5 must be None \(off\) or a number in \(0, 1\]"):
        sampling_probs([0.0, 1.0], top_p=1.5)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., V\)"):
        sampling_probs(np.zeros((2, 0)))


def test_sample_token_never_draws_zero_probability():
    rng = np.random.default_rng(0)
    draws = [sample_token([0.0, 0.3, 0.0, 0.7, 0.0], rng) for _ in range(500)]
    assert set(draws) == {1, 3}
    assert 0.6 < draws.count(3) / 500 < 0.8


# --------------------------------------------------------------------------- generate()
def _model(position="learned", max_seq_len=12, backend="numpy"):
    cfg = ltx.ModelConfig(9, 8, 2, 2, 12, max_seq_len, position=position)
    return build(backend, cfg, random_params(cfg, seed=3))


def test_generate_returns_only_the_continuation_and_respects_the_length():
    model = _model()
    out = generate(model, [1, 2, 3], 6, seed=0)
    assert len(out) == 6
    assert all(0 <= t < 9 for t in out)
    assert generate(model, [1, 2, 3], 0) == []
    with pytest.raises(ValueError, match=r"exceeds max_seq_len=12"):
        generate(model, [1, 2, 3], 10)
    with pytest.raises(ValueError, match=r"prompt_ids must be ids in \[0, vocab_size=9\)"):
        generate(model, [1, 20], 2)
    with pytest.raises(ValueError, match=r"max_new_tokens=-1"):
        generate(model, [1], -1)


def test_generate_stops_at_the_stop_token_without_including_it():
    model = _model()
    greedy = generate(model, [1, 2], 8, temperature=0)
    stop = greedy[3]
    out = generate(model, [1, 2], 8, temperature=0, stop_token=stop)
    assert out == greedy[: greedy.index(stop)]


def test_same_seed_same_tokens_different_seed_usually_differs():
    model = _model()
    runs = [generate(model, [4], 10, seed=s, temperature=2.0) for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=6)
@given(cfg=configs(max_seq_len=8), seed=st.integers(0, 2**16),
       top_k=st.sampled_from([None, 1, 3]), top_p=st.sampled_from([None, 0.9]))
def test_identical_seeds_give_identical_tokens_in_every_backend(backend, cfg, seed, top_k, top_p):
    params = random_params(cfg, seed=seed)
    reference = ltx.create_model(cfg, backend="numpy", params=params, dtype="float64")
    model = build(backend, cfg, params)
    kwargs = dict(temperature=1.5, top_k=top_k, top_p=top_p, seed=seed)
    expected = generate(reference, [0, 1], 5, **kwargs)
    assert generate(model, [0, 1], 5, **kwargs) == expected
    assert generate(model, [0, 1], 5, use_cache=False, **kwargs) == expected


# --------------------------------------------------------------------------- the KV cache
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("position", POSITIONS)
def test_kv_cache_equals_full_recomputation(backend, position):
    """Prompt of 3, then one token at a time from offset 3: every row equals the full forward."""
    cfg = ltx.ModelConfig(11, 8, 2, 2, 12, 9, position=position, norm="rmsnorm",
                          activation="swiglu")
    model = build(backend, cfg, random_params(cfg, seed=1))
    tokens = np.array([[3, 1, 4, 1, 5, 9, 2, 6]])
    full = model.forward(tokens)  # (1, 8, V)
    logits, kv = model.decode(tokens[:, :3])
    rows = [np.asarray(logits)]
    for t in range(3, tokens.shape[1]):
        logits, kv = model.decode(tokens[:, t : t + 1], kv)
        rows.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(rows, axis=1), full, rtol=1e-9, atol=1e-10)
    greedy = generate(model, [3, 1, 4], 6, temperature=0)
    assert greedy == generate(model, [3, 1, 4], 6, temperature=0, use_cache=False)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=8)
@given(cfg=configs(max_seq_len=7), seed=st.integers(0, 2**16), split=st.integers(1, 6))
def test_kv_cache_equals_full_recomputation_for_any_config(backend, cfg, seed, split):
    model = build(backend, cfg, random_params(cfg, seed=seed))
    tokens = np.random.default_rng(seed).integers(0, cfg.vocab_size, size=(1, 7))
    full = model.forward(tokens)
    first, kv = model.decode(tokens[:, :split])
    rest = [np.asarray(first)]
    for t in range(split, 7):
        logits, kv = model.decode(tokens[:, t : t + 1], kv)
        rest.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(rest, axis=1), full, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_kv_cache_in_float32_gives_the_same_greedy_tokens(backend):
    cfg = ltx.ModelConfig(13, 16, 2, 4, 32, 24, position="alibi")
    model = build(backend, cfg, random_params(cfg, seed=2, scale=0.5, dtype="float32"), "float32")
    assert (generate(model, [1, 2, 3], 12, temperature=0)
            == generate(model, [1, 2, 3], 12, temperature=0, use_cache=False))


def _copy(a) -> np.ndarray:
    """A NumPy copy of an array, a CPU tensor or a nested list."""
    return np.array(a.numpy() if hasattr(a, "numpy") else a)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("position", POSITIONS)
@settings(max_examples=4)
@given(seed=st.integers(0, 2**16), split=st.integers(1, 5))
def test_kv_cache_is_written_in_place_and_a_reused_cache_is_not_overwritten(backend, position,
                                                                           seed, split):
    """One storage of max_seq_len positions serves the whole run; two continuations of the same
    past (ALiBi and RoPE at an offset) both equal the full forward pass, and the first
    continuation's cache keeps its values after the second one is decoded."""
    cfg = ltx.ModelConfig(11, 8, 2, 2, 12, 9, position=position, norm="rmsnorm")
    model = build(backend, cfg, random_params(cfg, seed=seed))
    rng = np.random.default_rng(seed)
    prefix = rng.integers(0, 11, size=(2, split))
    a, b = (rng.integers(0, 11, size=(2, 9 - split)) for _ in range(2))
    _, past = model.decode(prefix)
    storage = past[0].storage
    assert storage.capacity == cfg.max_seq_len
    assert past[0].length == split
    logits_a, kv_a = model.decode(a[:, :1], past)
    assert kv_a[0].storage is storage  # the first extension writes in place
    for t in range(1, a.shape[1]):
        step, kv_a = model.decode(a[:, t : t + 1], kv_a)
        logits_a = np.concatenate([logits_a, step], axis=1)
    keys_a = _copy(kv_a[1].k)
    logits_b, kv_b = model.decode(b, past)  # the same past again: a copy, not an overwrite
    assert kv_b[0].storage is not storage
    full_a = model.forward(np.concatenate([prefix, a], axis=1))[:, split:]
    full_b = model.forward(np.concatenate([prefix, b], axis=1))[:, split:]
    np.testing.assert_allclose(logits_a, full_a, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(logits_b, full_b, rtol=1e-9, atol=1e-10)
    np.testing.assert_array_equal(_copy(kv_a[1].k), keys_a)
    k, v = kv_b[0]  # unpacks like a (k, v) pair
    assert _copy(k).shape == _copy(v).shape == (2, 2, 9, 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_accepts_plain_key_value_pairs(backend):
    cfg = ltx.ModelConfig(11, 8, 2, 2, 12, 9, position="alibi")
    model = build(backend, cfg, random_params(cfg, seed=4))
    tokens = np.array([[3, 1, 4, 1, 5]])
    _, kv = model.decode(tokens[:, :3])
    pairs = [(_copy(k), _copy(v)) for k, v in kv]
    step, _ = model.decode(tokens[:, 3:], pairs)
    np.testing.assert_allclose(step, model.forward(tokens)[:, 3:], rtol=1e-9, atol=1e-10)


def test_torch_decode_ignores_and_keeps_the_module_mode():
    """Decoding is evaluation whatever ``module.training`` says (no dropout), and it does not
    switch the mode (``.train()`` walks every submodule: it used to cost more than the step)."""
    torch = pytest.importorskip("torch")
    cfg = ltx.ModelConfig(11, 8, 2, 2, 12, 9, dropout=0.5)
    model = build("torch", cfg, random_params(cfg, seed=5))
    model.module.train()
    calls = []
    model.module.train = lambda mode=True: calls.append(mode)  # record any mode switch
    tokens = np.array([[3, 1, 4, 1, 5]])
    full = model.forward(tokens)
    _, kv = model.decode(tokens[:, :3])
    step, kv = model.decode(tokens[:, 3:], kv)
    assert calls == []
    assert model.module.training
    np.testing.assert_allclose(step, full[:, 3:], rtol=1e-9, atol=1e-10)
    # the cache (inference tensors) also serves the plain module outside inference_mode
    del model.module.train
    model.module.eval()
    with torch.no_grad():
        more = model.module(torch.tensor([[9]]), past=kv)
    np.testing.assert_allclose(more.numpy()[0, 0], model.forward([[3, 1, 4, 1, 5, 9]])[0, -1],
                               rtol=1e-9, atol=1e-10)

"""The pure-Python backend is the NumPy backend's function: same logits, loss and gradients.

Every check draws a configuration from the full switch matrix (norm, residual layout, activation,
position scheme, bias, tied embeddings; dropout where stated), O(1) random weights in float64 and
a random batch, runs both backends and asserts that they agree to a relative error of 1e-10.

How the relative error is measured (:func:`assert_close`): per tensor,
``max|a - b| / max(max|b|, 1e-4 * g)``, where ``g`` is the largest entry of any reference
tensor compared in the same call. The floor matters only for tensors that are zero in exact
arithmetic and hence pure rounding noise in both backends — the key bias, whose gradient
vanishes because a softmax ignores a shift shared by a whole row of scores, and the query
weights when every visible key is the same vector (repeated tokens without a position signal).
Comparing such noise with itself would fail for no reason; comparing it at the scale of the pass
still catches any real error.

Without a norm, O(1) weights compound from layer to layer (the logits of two SwiGLU layers reach
1e8) and the attention saturates; its gradients are then limited by conditioning, not by the
code. Those configurations get weights of scale 0.5 instead, which keeps them O(1) yet
well-conditioned.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import batches, configs, random_params

import literate_tx as ltx
from literate_tx.config import POSITIONS
from literate_tx.numpy_backend.dropout import make_masks
from literate_tx.params import param_shapes
from literate_tx.python_backend import PythonModel, Trace, TraceRecord
from literate_tx.python_backend import trace as trace_module

RTOL = 1e-10
FEW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def relative_error(a, b, floor: float = 1e-30) -> float:
    """``max|a - b| / max(max|b|, floor)`` for one tensor."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), floor))


def assert_close(ours: dict, reference: dict, rtol: float = RTOL) -> float:
    """Assert every tensor of ``ours`` matches ``reference``; return the worst relative error."""
    assert list(ours) == list(reference)
    g = max(float(np.abs(np.asarray(v)).max()) for v in reference.values())
    errors = {name: relative_error(ours[name], reference[name], max(1e-4 * g, 1e-30))
              for name in reference}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= rtol, f"{worst}: relative error {errors[worst]:.3g} > {rtol:g}"
    return errors[worst]


def weight_scale(cfg) -> float:
    return 1.0 if cfg.norm != "none" else 0.5


def pair(cfg, seed: int):
    """A NumPy and a pure-Python model with the same O(1) float64 weights and the same seed."""
    params = random_params(cfg, seed, scale=weight_scale(cfg))
    reference = ltx.create_model(cfg, backend="numpy", params=params, seed=seed, dtype="float64")
    ours = ltx.create_model(cfg, backend="python", params=params, seed=seed, dtype="float64")
    return ours, reference


def well_conditioned(cfg):
    r"""The config itself, except that LayerNorm over two features gets ``norm_eps=0.5``.

    LayerNorm of a row of two numbers is :math:`\pm(1, -1)` up to :math:`\epsilon`: the map is
    nearly constant, its Jacobian is :math:`O(\epsilon/\sigma^2)` and both backends compute it by
    cancelling two nearly equal terms, so gradients upstream of it agree only to about
    :math:`10^{-16}\,\sigma^2/\epsilon`. A large :math:`\epsilon` keeps the map well-conditioned.
    """
    if cfg.norm == "layernorm" and cfg.d_model == 2:
        return cfg.replace(norm_eps=0.5)
    return cfg


@st.composite
def cases(draw, dropout: bool = False):
    cfg = well_conditioned(draw(configs(dropout=dropout)))
    tokens, targets = draw(batches(cfg))
    return cfg, tokens, targets, draw(st.integers(0, 2**31 - 1))


def compare_pass(ours, reference, tokens, targets, **kwargs) -> None:
    logits = ours.forward(tokens, **kwargs)
    logits_ref = reference.forward(tokens, **kwargs)
    loss, grads = ours.loss_and_grads(tokens, targets, **kwargs)
    loss_ref, grads_ref = reference.loss_and_grads(tokens, targets, **kwargs)
    assert_close({"logits": logits}, {"logits": logits_ref})
    assert relative_error(loss, loss_ref) <= RTOL
    assert_close(grads, grads_ref)


# --------------------------------------------------------------------- equal to NumPy
@MANY
@given(cases())
def test_eval_mode_matches_numpy(case):
    cfg, tokens, targets, seed = case
    ours, reference = pair(cfg, seed)
    compare_pass(ours, reference, tokens, targets)


@FEW
@given(cases())
def test_train_mode_without_dropout_matches_numpy(case):
    cfg, tokens, targets, seed = case
    ours, reference = pair(cfg, seed)
    compare_pass(ours, reference, tokens, targets, train=True)


@FEW
@given(cases(dropout=True))
def test_same_explicit_masks_give_the_same_result(case):
    cfg, tokens, targets, seed = case
    ours, reference = pair(cfg, seed)
    masks = make_masks(cfg, *tokens.shape, np.random.default_rng(seed))
    compare_pass(ours, reference, tokens, targets, train=True, masks=masks)


@FEW
@given(cases(dropout=True))
def test_masks_drawn_from_the_same_seed_agree(case):
    cfg, tokens, targets, seed = case
    ours, reference = pair(cfg, seed)
    loss, grads = ours.loss_and_grads(tokens, targets, train=True)
    loss_ref, grads_ref = reference.loss_and_grads(tokens, targets, train=True)
    assert relative_error(loss, loss_ref) <= RTOL
    assert_close(grads, grads_ref)


@FEW
@given(cases())
def test_run_with_cache_and_weights_match_numpy(case):
    cfg, tokens, _, seed = case
    ours, reference = pair(cfg, seed)
    logits, cache = ours.run_with_cache(tokens)
    logits_ref, cache_ref = reference.run_with_cache(tokens)
    assert sorted(cache) == sorted(cache_ref)
    assert_close({"logits": logits, **cache}, {"logits": logits_ref, **cache_ref})
    _, weights = ours.forward(tokens, return_weights=True)
    _, weights_ref = reference.forward(tokens, return_weights=True)
    assert_close(dict(enumerate(weights)), dict(enumerate(weights_ref)))


@pytest.mark.parametrize("position", POSITIONS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decode_with_kv_cache_equals_full_recomputation(position, data):
    cfg = well_conditioned(data.draw(configs()).replace(position=position))
    tokens, _ = data.draw(batches(cfg))
    ours, reference = pair(cfg, 0)
    full = ours.forward(tokens)
    T = tokens.shape[1]
    prompt = data.draw(st.integers(1, T))
    steps = [ours.decode(tokens[:, :prompt])]
    for t in range(prompt, T):
        steps.append(ours.decode(tokens[:, t : t + 1], steps[-1][1]))
    decoded = np.concatenate([logits for logits, _ in steps], axis=1)
    assert_close({"decoded": decoded}, {"decoded": full})
    assert_close({"decoded": decoded}, {"decoded": reference.forward(tokens)})
    assert len(steps[-1][1][0].k[0][0]) == T  # the cache holds every position


# --------------------------------------------------------------------- API behaviour
def test_float32_model_rounds_parameters_and_returns_float32():
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
    model = ltx.create_model(cfg, backend="python", seed=0)
    reference = ltx.create_model(cfg, backend="numpy", seed=0)
    assert model.dtype == "float32"
    assert model.backend == "python"
    assert repr(model) == "PythonModel(1 layers, d_model=8, 840 parameters, float32)"
    for name, value in model.parameters().items():
        assert value.dtype == np.float32
        assert np.array_equal(value, reference.parameters()[name])
    logits = model.forward([1, 2, 3])
    assert logits.shape == (3, 10)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, reference.forward([1, 2, 3]), rtol=1e-4, atol=1e-6)


def test_params_are_live_nested_lists():
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
    model = PythonModel(cfg, dtype="float64")
    before = model.forward([[1, 2]])
    model.params["lm_head.w"][0][0] += 1.0  # what an in-place optimiser step does
    after = model.forward([[1, 2]])
    assert isinstance(model.params["embed.tokens"][0][0], float)
    assert not np.array_equal(before, after)


def test_bad_inputs_raise_value_errors_naming_the_problem():
    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4, dropout=0.5)
    model = PythonModel(cfg)
    with pytest.raises(ValueError, match="vocab_size=10"):
        model.forward([[1, 2, 30]])
    with pytest.raises(ValueError, match="trace=3 is not supported"):
        PythonModel(cfg, trace=3)
    with pytest.raises(ValueError, match="unknown entry 'blocks.7.attn.resid_dropout'"):
        model.forward([[1, 2]], train=True, masks={"blocks.7.attn.resid_dropout": np.ones(1)})
    with pytest.raises(ValueError, match=r"masks\['embed.dropout'\] has shape \(1, 1, 8\)"):
        model.forward([[1, 2]], train=True, masks={"embed.dropout": np.ones((1, 1, 8))})
    with pytest.raises(ValueError, match="ignore_index"):
        model.loss_and_grads([[1, 2]], [[-100, -100]])


# --------------------------------------------------------------------- trace mode
FULL = ltx.ModelConfig(11, 8, 2, 2, 6, 8, residual="sandwich", activation="swiglu",
                       position="rope", dropout=0.25)


def test_trace_reports_forward_and_backward_steps_with_shapes():
    trace = Trace()
    model = PythonModel(FULL, trace=trace, dtype="float64")
    tokens = np.array([[1, 2, 3], [4, 5, 6]])
    model.loss_and_grads(tokens, tokens, train=True)
    by_step = {(r.phase, r.where, r.step): r for r in trace.records}
    B, T, C, H, D, F, V = 2, 3, 8, 2, 4, 6, 11
    expected = {
        ("forward", "embed", "token + position embedding"): (B, T, C),
        ("forward", "block 0", "queries"): (B, H, T, D),
        ("forward", "block 1", "attention scores"): (B, H, T, T),
        ("forward", "block 1", "attention weights"): (B, H, T, T),
        ("forward", "block 0", "mlp gate pre-activation"): (B, T, F),
        ("forward", "block 0", "residual stream after mlp"): (B, T, C),
        ("forward", "lm_head", "logits"): (B, T, V),
        ("forward", "loss", "cross-entropy"): (),
        ("backward", "loss", "d logits"): (B, T, V),
        ("backward", "block 1", "d attention scores"): (B, H, T, T),
        ("backward", "block 0", "d mlp up pre-activation"): (B, T, F),
        ("backward", "block 0", "d block input"): (B, T, C),
        ("backward", "embed", "d embedding output"): (B, T, C),
    }
    for key, shape in expected.items():
        assert key in by_step, key
        assert by_step[key].shape == shape, key
    for name, shape in param_shapes(FULL).items():
        assert by_step[("backward", "grads", name)].shape == shape
    scores = by_step[("forward", "block 1", "attention scores")]
    assert scores.axes == ("B", "H", "T", "T")
    assert scores.n_nonfinite == B * H * T * (T - 1) // 2  # the causal mask's -inf entries
    weights = by_step[("forward", "block 1", "attention weights")]
    assert weights.mean == pytest.approx(1.0 / T)  # each row sums to one
    assert 0.0 <= weights.min <= weights.max <= 1.0
    phases = [r.phase for r in trace.records]
    assert phases == sorted(phases, key=["forward", "backward"].index)  # forward, then backward
    table = str(trace)
    assert table.splitlines()[0].split() == ["phase", "where", "step", "shape", "mean", "std",
                                            "min", "max"]
    assert "(B=2, H=2, T=3, T=3)" in table


def test_trace_callback_and_logging(caplog):
    records: list[TraceRecord] = []
    model = PythonModel(FULL, trace=records.append)
    model.forward([[1, 2]])
    assert records
    assert all(isinstance(r, TraceRecord) for r in records)
    model.trace = True
    with caplog.at_level(logging.INFO, logger="literate_tx.trace"):
        model.forward([[1, 2]])
    lines = [r.getMessage() for r in caplog.records if r.name == "literate_tx.trace"]
    assert len(lines) == len(records)
    assert any(line.startswith("forward  [block 0] attention scores (B=1, H=2, T=2, T=2) mean=")
               for line in lines)


def test_trace_true_warns_when_info_logging_is_off():
    level = trace_module.logger.level
    trace_module.logger.setLevel(logging.WARNING)
    try:
        with pytest.warns(UserWarning, match="logging.basicConfig"):
            PythonModel(FULL, trace=True).forward([[1, 2]])
    finally:
        trace_module.logger.setLevel(level)


def test_trace_off_is_silent_and_computes_nothing(monkeypatch, caplog):
    def forbidden(*args, **kwargs):
        raise AssertionError("a statistic was computed with trace off")

    monkeypatch.setattr(trace_module, "summary", forbidden)
    monkeypatch.setattr(trace_module.Tracer, "__call__", forbidden)
    model = PythonModel(FULL)
    with caplog.at_level(logging.DEBUG):
        model.loss_and_grads([[1, 2, 3]], [[2, 3, 4]], train=True)
        model.run_with_cache([[1, 2, 3]])
        model.decode([[1, 2]])
    assert not [r for r in caplog.records if r.name.startswith("literate_tx")]

"""The three backends are one function: every pair agrees, directly, on the same inputs.

``test_python_backend.py`` and ``test_torch_backend.py`` each compare one backend with the NumPy
reference in depth; this file closes the triangle. For each configuration drawn from the full
switch matrix it builds the model in all three backends from the same canonical weights and
checks every pair — including pure Python against PyTorch — on logits, loss and every gradient,
in evaluation mode and in training mode with the same explicit dropout masks.

Error measure (float64): ``max|a - b| / max(max|b|, 1e-3 * G)`` per tensor, ``G`` the largest
gradient entry of the model; the floor covers gradients that are exactly zero mathematically
(``attn.b_k``: softmax ignores a constant added to every score of a row), which both backends
return as rounding noise. Tolerance 1e-10.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import summarise
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import SWITCH_VALUES, batches, configs, random_params

import literate_tx as ltx
from literate_tx.numpy_backend.dropout import make_masks

torch = pytest.importorskip("torch")

TOL = 1e-10
FLOOR = 1e-3
WORST: dict[str, float] = {}  # worst error seen per backend pair and quantity
SEEN: list[ltx.ModelConfig] = []


def _summary() -> list[str]:
    """The worst errors accepted, for the terminal summary (empty if no test ran)."""
    if not WORST:
        return []
    return [f"{len(SEEN)} configurations ({len(set(SEEN))} distinct)",
            *(f"{k}: {v:.1e}" for k, v in sorted(WORST.items()))]


summarise("worst float64 errors between backends (test_equivalence)", _summary)


def record(key: str, err: float) -> float:
    WORST[key] = max(WORST.get(key, 0.0), err)
    return err


def rel_err(a, b, floor=0.0) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), floor, 1e-30)


@settings(max_examples=20)
@given(configs(max_layers=2, max_seq_len=5, dropout=True), st.data())
def test_all_three_backends_pairwise(cfg, data):
    _check_pairwise(cfg, data)


@pytest.mark.parametrize(("field", "value"), SWITCH_VALUES, ids=lambda v: str(v))
@settings(max_examples=3)
@given(data=st.data())
def test_all_three_backends_every_switch_value(field, value, data):
    """The same with one switch fixed: every value of every switch is visited for sure."""
    cfg = data.draw(configs(max_layers=2, max_seq_len=5, dropout=True, **{field: value}))
    _check_pairwise(cfg, data)


def _check_pairwise(cfg, data):
    seed = data.draw(st.integers(0, 2**31 - 1))
    tokens, targets = data.draw(batches(cfg, max_batch=2))
    params = random_params(cfg, seed, scale=1.0 if cfg.norm != "none" else 0.5)
    models = {b: ltx.create_model(cfg, backend=b, params=params, dtype="float64")
              for b in ("python", "numpy", "torch")}
    masks = make_masks(cfg, *tokens.shape, np.random.default_rng(seed))
    results = {}
    for name, model in models.items():
        logits = model.forward(tokens, train=bool(masks), masks=masks or None)
        loss, grads = model.loss_and_grads(tokens, targets, train=bool(masks), masks=masks or None)
        results[name] = (logits, loss, grads)
    for a, b in itertools.combinations(results, 2):
        la, lossa, ga = results[a]
        lb, lossb, gb = results[b]
        assert record(f"{a}/{b} logits", rel_err(la, lb)) <= TOL, f"{a} vs {b}: logits"
        loss_err = record(f"{a}/{b} loss", abs(lossa - lossb) / max(1.0, abs(lossb)))
        assert loss_err <= TOL, f"{a} vs {b}: loss"
        assert list(ga) == list(gb) == list(ltx.param_shapes(cfg))
        G = max(float(np.max(np.abs(g))) for g in gb.values())
        for n in gb:
            err = record(f"{a}/{b} gradients", rel_err(ga[n], gb[n], FLOOR * G))
            assert err <= TOL, f"{a} vs {b}: gradient of {n}: {err:.2e}"
    SEEN.append(cfg)


@settings(max_examples=10)
@given(configs(max_layers=2, max_seq_len=5), st.integers(0, 2**31 - 1))
def test_weights_move_freely_between_backends(cfg, seed):
    """torch -> python -> numpy -> torch: parameters survive each hop exactly."""
    params = random_params(cfg, seed)
    t = ltx.create_model(cfg, backend="torch", params=params, dtype="float64")
    p = ltx.create_model(cfg, backend="python", params=t.parameters(), dtype="float64")
    n = ltx.create_model(cfg, backend="numpy", params=p.parameters(), dtype="float64")
    back = ltx.create_model(cfg, backend="torch", params=n.parameters(), dtype="float64")
    for name, value in params.items():
        np.testing.assert_array_equal(back.parameters()[name], value)

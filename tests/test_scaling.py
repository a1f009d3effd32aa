"""Gradient accumulation (every backend), mixed precision, torch.compile, the device report and
the refusals of :mod:`literate_tx.training` (issue 18, item 3). CUDA paths skip without a GPU."""

from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from literate_tx.api import create_model
from literate_tx.cli import main
from literate_tx.data.digits import IGNORE_INDEX
from literate_tx.training import TrainConfig, Trainer
from literate_tx.training.distributed import DistInfo, micro_batches, part_rows
from literate_tx.training.engines import _NumpyEngine, _PythonEngine

try:
    import torch
except ImportError:  # pragma: no cover - torch is an optional extra
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")
BACKENDS = ["numpy", "python"] + ([] if torch is None else ["torch"])

SMALL = dict(d_model=8, n_layers=1, n_heads=2, d_ff=16, n_train=40, n_val=5, n_test=5,
             warmup_steps=0, eval_every=100, checkpoint_every=100)


def _cfg(**changes) -> TrainConfig:
    fields = {**SMALL, "out": tempfile.mkdtemp(), "steps": 3, "batch_size": 6, **changes}
    return TrainConfig(**fields)


def _batch(seed: int, B: int, T: int, V: int):
    """Random ids and targets, a random share of them ignored (at least one counted)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, size=(B, T))  # (B, T)
    y = rng.integers(0, V, size=(B, T))  # (B, T)
    drop = rng.random((B, T)) < rng.uniform(0.0, 0.8)
    drop.flat[rng.integers(0, B * T)] = False
    y[drop] = IGNORE_INDEX
    return x, y


def _engine(backend: str, cfg: TrainConfig, model_cfg):
    if backend == "torch":
        from literate_tx.training.engines import _TorchEngine

        model = create_model(model_cfg, "torch", seed=1, dtype="float64")
        return _TorchEngine(model, cfg, 0)
    model = create_model(model_cfg, backend, seed=1, dtype="float64")
    return (_PythonEngine if backend == "python" else _NumpyEngine)(model, cfg)


# ============================================================================ accumulation
@settings(max_examples=12, deadline=None)
@given(backend=st.sampled_from(BACKENDS), B=st.integers(1, 6),
       data=st.data(), seed=st.integers(0, 2**16))
def test_accumulated_gradient_equals_the_whole_batch(backend, B, data, seed):
    # eq. (2) of training.distributed: micro-batches weighted by their counted targets give
    # the loss and the gradient of the whole batch, whatever the number of micro-batches
    n = data.draw(st.integers(1, B), label="grad_accum")
    T, V = 5, 11
    whole_cfg = _cfg(backend=backend, batch_size=B, dtype="float64", grad_accum=1)
    parts_cfg = whole_cfg.replace(grad_accum=n)
    model_cfg = whole_cfg.model_config(V, T)
    x, y = _batch(seed, B, T, V)
    loss_1, grads_1 = _engine(backend, whole_cfg, model_cfg).gradients(x, y)
    loss_n, grads_n = _engine(backend, parts_cfg, model_cfg).gradients(x, y)
    assert loss_n == pytest.approx(loss_1, rel=1e-12, abs=1e-14)
    assert grads_n.keys() == grads_1.keys()
    for name in grads_1:
        np.testing.assert_allclose(grads_n[name], grads_1[name], rtol=1e-10, atol=1e-13,
                                   err_msg=name)


def test_the_weights_are_counted_targets_not_equal_shares():
    # the mean of micro-batch means differs when the parts count different targets: the
    # equality above is not a coincidence of equal parts
    x, y = _batch(3, 4, 5, 11)
    y[0] = IGNORE_INDEX
    y[0, 0] = 1  # one target in the first half, many in the second
    cfg = _cfg(batch_size=4, dtype="float64")
    model_cfg = cfg.model_config(11, 5)
    engine = _engine("numpy", cfg, model_cfg)
    whole, _ = engine.gradients(x, y)
    parts, _ = micro_batches(x, y, DistInfo(), 2)
    means = [engine.model.loss_and_grads(a, b)[0] for a, b in parts]
    assert abs(np.mean(means) - whole) > 1e-3


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 40), world=st.integers(1, 4), accum=st.integers(1, 4))
def test_parts_are_disjoint_consecutive_and_cover_the_batch(B, world, accum):
    if B < world * accum:
        with pytest.raises(ValueError, match="too small"):
            part_rows(B, 0, world, accum)
        return
    rows = [part_rows(B, r, world, accum) for r in range(world)]
    flat = [s for per_rank in rows for s in per_rank]
    assert all(len(per_rank) == accum for per_rank in rows)
    assert [i for s in flat for i in range(s.start, s.stop)] == list(range(B))
    sizes = [s.stop - s.start for s in flat]
    assert min(sizes) >= 1
    assert max(sizes) - min(sizes) <= 1


def test_training_with_accumulation_follows_the_whole_batch_run():
    # the same run, 1 or 3 micro-batches: the same updates up to round-off (float64, SGD)
    base = dict(backend="numpy", dtype="float64", optimizer="sgd", lr=0.2, steps=3,
                batch_size=6, fast=False)
    one = Trainer(_cfg(**base), quiet=True)
    one.train()
    three = Trainer(_cfg(**base, grad_accum=3), quiet=True)
    three.train()
    a, b = one.engine.parameters(), three.engine.parameters()
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-12, atol=1e-14, err_msg=name)
    assert [r["loss"] for r in three.history if r["split"] == "train"] == pytest.approx(
        [r["loss"] for r in one.history if r["split"] == "train"], rel=1e-12)


# ============================================================================ refusals
@pytest.mark.parametrize("backend", ["numpy", "python"])
@pytest.mark.parametrize(("field", "value"), [("amp", "bf16"), ("amp", "fp16"),
                                              ("compile", True)])
def test_torch_features_are_refused_on_other_backends(backend, field, value):
    with pytest.raises(ValueError, match="is not allowed with backend") as info:
        TrainConfig(backend=backend, **{field: value})
    message = str(info.value)
    assert f"{field}={value!r}" in message
    assert f"backend={backend!r}" in message
    assert "'torch'" in message


def test_amp_needs_float32():
    with pytest.raises(ValueError, match=r"amp='bf16' is not allowed with dtype='float64'"):
        TrainConfig(backend="torch", amp="bf16", dtype="float64")


def test_grad_accum_larger_than_the_batch_is_refused():
    with pytest.raises(ValueError, match=r"grad_accum=5 is not allowed with batch_size=4"):
        TrainConfig(grad_accum=5, batch_size=4)


@pytest.mark.parametrize("backend", ["numpy", "python"])
def test_several_processes_are_refused_on_other_backends(backend, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match=rf"backend='{backend}' is not allowed with 2 "
                                         r"processes .*allowed backends: 'torch'"):
        Trainer(_cfg(backend=backend), quiet=True)


def test_cli_refuses_amp_on_numpy_in_one_line(capsys):
    assert main(["train", "--backend", "numpy", "--amp", "bf16", "--steps", "1",
                 "--out", tempfile.mkdtemp()]) == 2
    err = capsys.readouterr().err
    assert "amp='bf16' is not allowed with backend='numpy'" in err
    assert "Traceback" not in err


@needs_torch
def test_cli_flags_reach_the_config():
    from literate_tx.cli import _resolve_config, build_parser

    args = build_parser().parse_args(
        ["train", "--backend", "torch", "--amp", "fp16", "--grad-accum", "4", "--compile",
         "--optimizer", "sgd", "--device", "cpu"])
    cfg = _resolve_config(args)
    assert (cfg.amp, cfg.grad_accum, cfg.compile, cfg.optimizer, cfg.device) == (
        "fp16", 4, True, "sgd", "cpu")
    args = build_parser().parse_args(["train", "--backend", "torch", "--compile", "false"])
    assert _resolve_config(args).compile is False


# ============================================================================ torch features
def _train_torch(**changes):
    stream = io.StringIO()
    trainer = Trainer(_cfg(backend="torch", **changes), stream=stream)
    trainer.train()
    return trainer, stream.getvalue()


@needs_torch
def test_device_auto_is_detected_and_reported():
    trainer, text = _train_torch(steps=1)
    if torch.cuda.is_available():
        assert trainer.engine.device.type == "cuda"
        assert "device cuda" in text
    else:
        assert trainer.engine.device.type == "cpu"
        assert "device cpu (auto: no CUDA or MPS device found)" in text


@pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_trains_on_cuda():  # pragma: no cover - no GPU on CI
    trainer, _ = _train_torch(steps=3, amp="fp16", device="cuda")
    assert all(np.isfinite(r["loss"]) for r in trainer.history if r["split"] == "train")


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@needs_torch
def test_mixed_precision_trains_close_to_float32(amp):
    full, _ = _train_torch(steps=3, device="cpu")
    mixed, text = _train_torch(steps=3, device="cpu", amp=amp)
    assert f"mixed precision {amp}" in text
    assert ("float16 on the CPU" in text) == (amp == "fp16")
    f = [r["loss"] for r in full.history if r["split"] == "train"]
    m = [r["loss"] for r in mixed.history if r["split"] == "train"]
    assert m != f  # autocast really lowered the products
    assert m == pytest.approx(f, rel=0.05)


@needs_torch
def test_fp16_scaler_state_resumes_exactly():
    cfg = _cfg(backend="torch", device="cpu", amp="fp16", steps=4)
    straight = Trainer(cfg, quiet=True)
    straight.train()
    split = cfg.replace(out=tempfile.mkdtemp())
    Trainer(split, quiet=True).train(stop_after=2)
    resumed = Trainer(split, resume=True, quiet=True)
    assert resumed.engine.scaler.get_scale() == straight.engine.scaler.get_scale()
    resumed.train()
    a, b = straight.engine.parameters(), resumed.engine.parameters()
    for name in a:
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)


@needs_torch
def test_fp16_overflow_skips_the_update_instead_of_stopping():
    trainer = Trainer(_cfg(backend="torch", device="cpu", amp="fp16", steps=3), quiet=True)
    trainer.train(stop_after=1)
    engine = trainer.engine
    engine.scaler.update(1e38)  # the scaled loss overflows float32 in the backward pass
    before = engine.parameters()
    x, y = trainer.data.batch(np.random.default_rng(0), 6)
    loss, norm = engine.step(x, y, 0.01, 2)
    assert np.isfinite(loss)
    assert not np.isfinite(norm)
    after = engine.parameters()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert engine.scaler.get_scale() == pytest.approx(5e37)


@needs_torch
def test_torch_accumulation_and_sgd_follow_the_whole_batch_run():
    base = dict(device="cpu", dtype="float64", optimizer="sgd", lr=0.2, steps=3)
    one, _ = _train_torch(**base)
    three, _ = _train_torch(**base, grad_accum=3)
    a, b = one.engine.parameters(), three.engine.parameters()
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-12, atol=1e-14, err_msg=name)


@needs_torch
def test_compile_that_cannot_start_falls_back_with_a_message(monkeypatch):
    eager, _ = _train_torch(device="cpu")

    def refuse(*args, **kwargs):
        raise RuntimeError("Dynamo is not supported on this Python")

    monkeypatch.setattr(torch, "compile", refuse)
    compiled, text = _train_torch(device="cpu", compile=True)
    assert "compile: torch.compile failed here (RuntimeError: Dynamo is not supported" in text
    assert "training continues without it" in text
    for name, value in eager.engine.parameters().items():
        np.testing.assert_array_equal(compiled.engine.parameters()[name], value)


@needs_torch
def test_compile_that_fails_on_the_first_step_falls_back_with_a_message(monkeypatch):
    eager, _ = _train_torch(device="cpu")
    calls = []

    def broken(module, **kwargs):
        def run(*args, **kw):
            calls.append(1)
            raise RuntimeError("InductorError: no working C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    compiled, text = _train_torch(device="cpu", compile=True)
    assert calls == [1]  # tried once, then eager for good
    assert "compile: torch.compile failed here (RuntimeError: InductorError" in text
    for name, value in eager.engine.parameters().items():
        np.testing.assert_array_equal(compiled.engine.parameters()[name], value)


@pytest.mark.skipif(os.environ.get("LITERATE_TX_TEST_COMPILE") != "1",
                    reason="torch.compile takes minutes on a small CPU; set "
                           "LITERATE_TX_TEST_COMPILE=1 to run it")
def test_real_compile_trains_like_eager():  # pragma: no cover - opt-in
    eager, _ = _train_torch(device="cpu", steps=2)
    compiled, text = _train_torch(device="cpu", steps=2, compile=True)
    assert "failed" not in text
    assert compiled.engine.compiled is not None
    for name, value in eager.engine.parameters().items():
        np.testing.assert_allclose(compiled.engine.parameters()[name], value, rtol=1e-4,
                                   atol=1e-5)


@needs_torch
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    import literate_tx.training.distributed as distributed
    from literate_tx.training.distributed import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Test GPU")
    assert resolve_device("auto", "torch", DistInfo()) == ("cuda", "cuda (auto: Test GPU)")
    assert resolve_device("auto", "torch", DistInfo(1, 2, 1))[0] == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(distributed, "_mps_available", lambda torch: True)
    assert resolve_device("auto", "torch", DistInfo())[0] == "mps"
    monkeypatch.setattr(distributed, "_mps_available", lambda torch: False)
    assert resolve_device("auto", "torch", DistInfo())[0] == "cpu"
    assert resolve_device("cpu", "torch", DistInfo()) == ("cpu", "cpu")


@needs_torch
def test_resume_may_change_grad_accum():
    base = dict(device="cpu", dtype="float64", optimizer="sgd", lr=0.2, steps=4)
    straight, _ = _train_torch(**base)
    cfg = _cfg(backend="torch", **base)
    Trainer(cfg, quiet=True).train(stop_after=2)
    resumed = Trainer(cfg.replace(grad_accum=3), resume=True, quiet=True)
    resumed.train()
    for name, value in straight.engine.parameters().items():
        np.testing.assert_allclose(resumed.engine.parameters()[name], value, rtol=1e-12,
                                   atol=1e-14, err_msg=name)

"""The trainer: exact resume in every backend, files written, non-finite detection, configs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from literate_tx import read_checkpoint
from literate_tx.training import (
    NonFiniteError,
    TrainConfig,
    Trainer,
    default_config,
    evaluate_checkpoint,
    load_trained,
    train,
)


def _needs_torch():
    return pytest.importorskip("torch")


def tiny(tmp_path, name="run", **overrides) -> TrainConfig:
    fields = dict(
        task="digits", backend="numpy", steps=6, batch_size=4, d_model=16, n_layers=1,
        n_heads=2, d_ff=32, n_digits=3, n_train=60, n_val=10, n_test=10, warmup_steps=2,
        eval_every=3, checkpoint_every=4, dtype="float64", out=str(tmp_path / name),
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def _params(trainer: Trainer) -> dict[str, np.ndarray]:
    return trainer.engine.parameters()


# ------------------------------------------------------------------------------ exact resume
@pytest.mark.parametrize(
    ("backend", "dropout", "size"),
    [
        ("numpy", 0.0, {}),
        ("numpy", 0.2, {}),
        ("python", 0.2, dict(d_model=8, d_ff=16, batch_size=2, n_val=4, n_test=4)),
        ("torch", 0.0, {}),
        ("torch", 0.2, {}),
    ],
)
def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(tmp_path, backend, dropout, size):
    if backend == "torch":
        _needs_torch()
    base = dict(backend=backend, dropout=dropout, **size)
    whole = Trainer(tiny(tmp_path, "whole", **base), quiet=True)
    whole.train()
    first = Trainer(tiny(tmp_path, "split", **base), quiet=True)
    assert first.train(stop_after=3).finished is False
    del first  # a new process would start from the files alone
    second = Trainer(tiny(tmp_path, "split", **base), quiet=True, resume=True)
    assert second.step == 3
    result = second.train()
    assert result.finished
    assert result.steps == 6
    a, b = _params(whole), _params(second)
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == np.float64
        assert np.array_equal(a[name], b[name]), name
    # the train-loss records of steps 4..6 match too (same batches, same masks)
    losses = [
        [r["loss"] for r in t.history if r["split"] == "train" and r["step"] > 3]
        for t in (whole, second)
    ]
    assert losses[0] == losses[1]


@pytest.mark.parametrize(
    ("backend", "tokenizer", "vocab_size"),
    [("numpy", "char", None), ("numpy", "word", 200), ("numpy", "bpe", 300),
     ("torch", "bpe", 300)],
)
def test_text_resume_is_bit_for_bit_with_every_tokenizer(tmp_path, backend, tokenizer,
                                                          vocab_size):
    if backend == "torch":
        _needs_torch()
    text = tmp_path / "corpus.txt"
    text.write_text("the cat sat on the mat, the dog sat on the log. " * 40)
    base = dict(task="text", backend=backend, text_file=str(text), tokenizer=tokenizer,
                vocab_size=vocab_size, seq_len=8, batch_size=2, dropout=0.1, eval_batches=1,
                sample_tokens=4, sample_prompt="the ")
    whole = Trainer(tiny(tmp_path, "whole", **base), quiet=True)
    whole.train()
    Trainer(tiny(tmp_path, "split", **base), quiet=True).train(stop_after=3)
    second = Trainer(tiny(tmp_path, "split", **base), quiet=True, resume=True)
    assert type(second.data.codec).__name__.lower().startswith(tokenizer)
    second.train()
    a, b = _params(whole), _params(second)
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    model, tok, _, _ = load_trained(tmp_path / "split" / "last.npz")
    assert tok.to_dict() == whole.data.codec.to_dict()
    assert evaluate_checkpoint(tmp_path / "split" / "last.npz")["loss"] == pytest.approx(
        whole.evaluate("val")["loss"])


def test_dropout_changes_the_run(tmp_path):
    plain = Trainer(tiny(tmp_path, "a"), quiet=True)
    plain.train()
    dropped = Trainer(tiny(tmp_path, "b", dropout=0.2), quiet=True)
    dropped.train()
    assert not np.array_equal(_params(plain)["lm_head.w"], _params(dropped)["lm_head.w"])


def test_backends_follow_the_same_trajectory(tmp_path):
    """Same data, same schedule, same AdamW: numpy, python and torch agree to rounding."""
    _needs_torch()
    small = dict(d_model=8, d_ff=16, batch_size=2, n_val=4, n_test=4, steps=4)
    runs = {}
    for backend in ("numpy", "python", "torch"):
        trainer = Trainer(tiny(tmp_path, backend, backend=backend, **small), quiet=True)
        trainer.train()
        runs[backend] = _params(trainer)
    for backend in ("python", "torch"):
        for name, value in runs["numpy"].items():
            np.testing.assert_allclose(runs[backend][name], value, rtol=1e-7, atol=1e-9)


def test_fast_numpy_path_trains_like_the_reference(tmp_path):
    """fast=True (the default) and fast=False follow the same float64 trajectory, with dropout."""
    runs = {}
    for fast in (True, False):
        trainer = Trainer(tiny(tmp_path, f"fast-{fast}", fast=fast, dropout=0.2), quiet=True)
        trainer.train()
        assert type(trainer.model).__name__ == ("FastNumpyModel" if fast else "NumpyModel")
        runs[fast] = _params(trainer)
    for name, value in runs[False].items():
        np.testing.assert_allclose(runs[True][name], value, rtol=1e-9, atol=1e-11, err_msg=name)


def test_fast_python_path_trains_like_the_reference(tmp_path):
    """The pure-Python speed path (the default) follows the plain model's float64 trajectory."""
    runs = {}
    for fast in (True, False):
        trainer = Trainer(tiny(tmp_path, f"py-fast-{fast}", backend="python", fast=fast,
                               d_model=8, d_ff=16, batch_size=2, n_val=4, n_test=4,
                               dropout=0.2), quiet=True)
        trainer.train()
        assert type(trainer.model).__name__ == ("FastPythonModel" if fast else "PythonModel")
        runs[fast] = _params(trainer)
    for name, value in runs[False].items():
        np.testing.assert_allclose(runs[True][name], value, rtol=1e-9, atol=1e-11, err_msg=name)


def test_resume_refuses_a_different_config(tmp_path):
    Trainer(tiny(tmp_path), quiet=True).train(stop_after=2)
    with pytest.raises(ValueError, match=r"lr=0\.1 \(saved 0\.003\)"):
        Trainer(tiny(tmp_path, lr=0.1), quiet=True, resume=True)


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume"):
        Trainer(tiny(tmp_path), resume=True)


# ------------------------------------------------------------------------------ files
def test_files_written(tmp_path):
    cfg = tiny(tmp_path)
    result = train(cfg, quiet=True)
    out = tmp_path / "run"
    assert {p.name for p in out.iterdir()} >= {
        "metrics.jsonl", "last.npz", "best.npz", "summary.json", "config.yaml",
    }
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train_records] == list(range(1, 7))
    assert set(train_records[0]) >= {"step", "loss", "lr", "grad_norm", "tokens_per_s", "time"}
    assert train_records[0]["lr"] == 0.0  # warmup starts from zero
    val = [r for r in records if r["split"] == "val"]
    assert [r["step"] for r in val] == [3, 6]
    assert set(val[0]) >= {"loss", "exact_match", "per_operation"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary == result.metrics
    assert set(summary["test"]["per_operation"]) == {"First", "Second", "Last", "Max", "Min"}
    ckpt = read_checkpoint(out / "last.npz")
    assert ckpt.metadata["step"] == 6
    assert ckpt.metadata["train_config"] == cfg.to_dict()
    assert "bit_generator" in ckpt.metadata["rng"]["data"]
    assert any(k.startswith("optim/m.") for k in ckpt.state)
    assert json.loads(ckpt.metadata["tokenizer"])["type"] == "digits"
    assert TrainConfig.load_yaml(out / "config.yaml") == cfg


def test_text_task_writes_perplexity_and_a_sample(tmp_path):
    cfg = tiny(tmp_path, task="text", seq_len=16, eval_batches=2, sample_tokens=20,
               sample_prompt="The ")
    result = train(cfg, quiet=True)
    assert set(result.metrics["val"]) == {"loss", "perplexity", "accuracy"}
    assert result.metrics["val"]["perplexity"] == pytest.approx(
        np.exp(result.metrics["val"]["loss"]))
    assert result.metrics["sample"]["text"].startswith("The ")
    model, tokenizer, tcfg, meta = load_trained(result.last_checkpoint)
    assert tokenizer.decode(tokenizer.encode("Alice")) == "Alice"
    assert evaluate_checkpoint(result.last_checkpoint)["loss"] == pytest.approx(
        result.metrics["val"]["loss"], rel=1e-9)


def test_evaluate_checkpoint_recomputes_the_test_metrics(tmp_path):
    result = train(tiny(tmp_path), quiet=True)
    again = evaluate_checkpoint(result.last_checkpoint, backend="python")
    assert again["exact_match"] == result.metrics["test"]["exact_match"]


@pytest.mark.parametrize("fast_run", [True, False])
def test_load_trained_builds_the_model_the_run_was_measured_with(tmp_path, fast_run):
    """By default the NumPy and pure-Python models are the speed path exactly when the run
    trained with it, and the metrics are the trainer's; ``fast`` overrides, in every backend."""
    from literate_tx.numpy_backend.fast import FastNumpyModel
    from literate_tx.python_backend.fast import FastPythonModel
    from literate_tx.torch_backend.fast import FastTorchModel

    result = train(tiny(tmp_path, fast=fast_run), quiet=True)
    path = result.last_checkpoint
    assert isinstance(load_trained(path)[0], FastNumpyModel) is fast_run
    assert isinstance(load_trained(path, backend="python")[0], FastPythonModel) is fast_run
    fast = load_trained(path, fast=True)[0]
    assert isinstance(fast, FastNumpyModel)
    assert fast.threads == 1  # as the trainer builds it
    assert type(load_trained(path, fast=False)[0]).__name__ == "NumpyModel"
    for fast in (None, True, False):
        assert evaluate_checkpoint(path, fast=fast)["exact_match"] == (
            result.metrics["test"]["exact_match"])
    pytest.importorskip("torch")
    assert not isinstance(load_trained(path, backend="torch")[0], FastTorchModel)
    assert isinstance(load_trained(path, backend="torch", fast=True)[0], FastTorchModel)


@pytest.mark.parametrize("fast", ["yes", 1, 0.0])
def test_load_trained_rejects_a_fast_that_is_not_a_bool(tmp_path, fast):
    result = train(tiny(tmp_path), quiet=True)
    with pytest.raises(ValueError, match=f"fast={fast!r} is not allowed"):
        load_trained(result.last_checkpoint, fast=fast)


def test_a_new_run_replaces_the_old_one_only_when_asked(tmp_path):
    train(tiny(tmp_path, steps=6), quiet=True)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(tiny(tmp_path, steps=3), quiet=True)
    train(tiny(tmp_path, steps=3), quiet=True, overwrite=True)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert max(json.loads(line)["step"] for line in lines) == 3


def test_resume_drops_metrics_written_after_the_checkpoint(tmp_path):
    cfg = tiny(tmp_path, checkpoint_every=100)
    Trainer(cfg, quiet=True).train(stop_after=2)
    path = tmp_path / "run" / "metrics.jsonl"
    with open(path, "a") as f:  # as if the process died after logging step 3
        f.write(json.dumps({"step": 3, "split": "train", "loss": 1.0}) + "\n")
    Trainer(cfg, quiet=True, resume=True).train()
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]


# ------------------------------------------------------------------------------ NaN / inf
def test_nan_in_a_gradient_stops_training_naming_step_and_tensor(tmp_path):
    trainer = Trainer(tiny(tmp_path), quiet=True)
    real = trainer.model.loss_and_grads
    calls = []

    def poisoned(*args, **kwargs):
        loss, grads = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            grads["blocks.0.attn.w_k"][0, 0] = np.nan
            grads["lm_head.w"][0, 0] = np.inf
        return loss, grads

    trainer.model.loss_and_grads = poisoned
    with pytest.raises(NonFiniteError, match=r"step 3: NaN or inf in the gradient of "
                                             r"'blocks\.0\.attn\.w_k'"):
        trainer.train()


def test_nan_loss_stops_training(tmp_path):
    trainer = Trainer(tiny(tmp_path, backend="python", d_model=8, d_ff=16), quiet=True)
    real = trainer.model.loss_and_grads
    trainer.model.loss_and_grads = lambda *a, **k: (float("nan"), real(*a, **k)[1])
    with pytest.raises(NonFiniteError, match="step 1: the loss is nan"):
        trainer.train()


def test_torch_nan_gradient_is_named(tmp_path):
    torch = _needs_torch()
    trainer = Trainer(tiny(tmp_path, backend="torch"), quiet=True)
    param = dict(trainer.model.module.named_parameters())["blocks.0.mlp.w_up"]
    param.register_hook(lambda g: g * torch.tensor(float("inf")))
    with pytest.raises(NonFiniteError, match=r"step 1: .*'blocks\.0\.mlp\.w_up'"):
        trainer.train()


# ------------------------------------------------------------------------------ config
def test_config_yaml_round_trip(tmp_path):
    cfg = default_config("text", n_layers=1, grad_clip=None, dropout=0.1)
    path = tmp_path / "c.yaml"
    cfg.save_yaml(path)
    assert TrainConfig.load_yaml(path) == cfg


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(batch_size=0), "batch_size=0 is not allowed"),
        (dict(lr=-1.0), "lr=-1.0 is not allowed"),
        (dict(lr=1e-3, min_lr=1e-2), "min_lr=0.01 is not allowed"),
        (dict(backend="jax"), "backend='jax' is not allowed; allowed: 'numpy', 'python'"),
        (dict(dropout=1.0), "dropout=1.0 is not allowed"),
        (dict(d_model=10, n_heads=4), "n_heads=4 is not allowed; it must divide d_model=10"),
        (dict(dataset="file"), "dataset='file' is not allowed without text_file"),
        (dict(n_digits=0), "n_digits=0 is not allowed"),
        (dict(steps=True), "steps=True is not allowed"),
    ],
)
def test_config_errors_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**fields)


def test_yaml_errors_name_the_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: digits\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown TrainConfig field\(s\): "
                                         r"'learning_rate'"):
        TrainConfig.load_yaml(path)
    path.write_text("steps: [\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        TrainConfig.load_yaml(path)

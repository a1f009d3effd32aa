"""Plots: axes counts, tick labels equal to the tokens, data equal to the model's weights, files."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from strategies import random_params

import literate_tx as ltx
from literate_tx.flops import flops_per_token
from literate_tx.inspection import inspect_checkpoint
from literate_tx.plots import (
    attention_stack,
    attention_text,
    plot_attention,
    plot_layer_statistics,
    plot_metrics,
    plot_operation_accuracy,
    plot_runs,
    read_metrics,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def relu_model():
    cfg = ltx.ModelConfig(12, 8, 3, 2, 16, 10, activation="relu")
    return ltx.create_model(cfg, params=random_params(cfg, seed=0), dtype="float64")


def _records(n_steps=6, per_operation=True):
    records = []
    for s in range(1, n_steps + 1):
        records.append({"step": s, "split": "train", "loss": 3.0 / s, "lr": 1e-3 * s,
                        "grad_norm": 1.0 + s, "tokens_per_s": 100.0, "time": 0.5 * s})
        if s % 3 == 0:
            val = {"step": s, "split": "val", "loss": 2.5 / s, "exact_match": s / n_steps,
                   "time": 0.5 * s}
            if per_operation:
                val["per_operation"] = {"First": 1.0, "Max": s / n_steps}
            records.append(val)
    return records


# --------------------------------------------------------------------------- attention
def test_attention_grid_shape_labels_and_data_are_the_models_weights(relu_model):
    tokens = [[3, 1, 4, 1, 5]]
    labels = ["t3", "t1", "t4", "t1", "t5"]
    _, weights = relu_model.forward(tokens, return_weights=True)
    fig = plot_attention(weights, labels)
    L, H = 3, 2
    assert len(fig.axes) == L * H + 1  # + the colour bar
    for i in range(L):
        for h in range(H):
            ax = fig.axes[i * H + h]
            assert [t.get_text() for t in ax.get_xticklabels()] == labels
            assert [t.get_text() for t in ax.get_yticklabels()] == labels
            np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), weights[i][0, h])
            assert ax.get_title() == f"layer {i}, head {h}"


def test_attention_from_a_cache_and_a_subset(relu_model):
    _, cache = relu_model.run_with_cache([[1, 2, 3], [4, 5, 6]])
    fig = plot_attention(cache, list("xyz"), batch_index=1, layers=[2], heads=[1])
    assert len(fig.axes) == 2
    np.testing.assert_array_equal(np.asarray(fig.axes[0].images[0].get_array()),
                                  cache["blocks.2.attn.weights"][1, 1])
    assert attention_stack(cache).shape == (3, 2, 3, 3)


def test_attention_errors_name_the_problem(relu_model):
    _, weights = relu_model.forward([[1, 2, 3]], return_weights=True)
    with pytest.raises(ValueError, match="tokens_labels has 2 labels but the weights have T=3"):
        plot_attention(weights, ["a", "b"])
    with pytest.raises(ValueError, match=r"heads=\[5\] must be a non-empty list of indices in "
                                         r"\[0, 2\)"):
        plot_attention(weights, "abc", heads=[5])
    with pytest.raises(ValueError, match="batch_index=3 is out of range"):
        attention_stack(weights, batch_index=3)


def test_attention_text_shape_and_shading(relu_model):
    _, weights = relu_model.forward([[1, 2, 3, 4]], return_weights=True)
    text = attention_text(weights[0][0, 1], ["a", "bb", " ", "d"])
    lines = text.splitlines()
    assert len(lines) == 4
    assert {len(line) for line in lines} == {len("bb |") + 2 * 4}
    assert [line.split("|")[0].strip() for line in lines] == ["a", "bb", "␣", "d"]
    # the first query sees only itself: a full block, then nothing
    assert lines[0].endswith("|██      ")
    assert set(text) <= set(" ░▒▓█|abd␣\n")
    with pytest.raises(ValueError, match=r"one head's \(T_q, T_k\) matrix"):
        attention_text(weights[0], list("abcd"))


def test_attention_text_levels():
    text = attention_text([[0.0, 0.25, 0.5, 0.75, 1.0]], list("abcde"))
    assert text == "e |  ░░▒▒▓▓██"


# --------------------------------------------------------------------------- runs
def test_read_metrics_from_file_and_folder(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = _records()
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert read_metrics(path) == records
    assert read_metrics(tmp_path) == records
    (tmp_path / "bad.jsonl").write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2: not JSON"):
        read_metrics(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError):
        read_metrics(tmp_path / "missing")


def test_plot_metrics_panels_and_data():
    records = _records()
    fig = plot_metrics(records)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "exact match", "learning rate",
                                                   "gradient norm"]
    train, val = fig.axes[0].get_lines()
    np.testing.assert_array_equal(train.get_ydata(), [3.0 / s for s in range(1, 7)])
    np.testing.assert_array_equal(val.get_xdata(), [3, 6])
    only_loss = plot_metrics([{"step": 1, "split": "train", "loss": 1.0}])
    assert len(only_loss.axes) == 1
    with pytest.raises(ValueError, match="no 'loss'"):
        plot_metrics([{"step": 1}])


def test_plot_operation_accuracy_from_dict_and_records():
    fig = plot_operation_accuracy(_records())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["First", "Max"]
    assert [float(p.get_height()) for p in ax.patches] == [1.0, 1.0]
    assert "step 6" in ax.get_ylabel()
    with pytest.raises(ValueError, match="no 'per_operation'"):
        plot_operation_accuracy(_records(per_operation=False))


def test_plot_runs_three_views_and_flops():
    a, b = _records(), _records(n_steps=9)
    fig = plot_runs({"a": a, "b": b}, flops_per_step={"a": 10.0, "b": 20.0})
    assert len(fig.axes) == 3
    step_ax, time_ax, flops_ax = fig.axes
    np.testing.assert_array_equal(time_ax.get_lines()[0].get_xdata(),
                                  [0.5 * s for s in range(1, 7)])
    np.testing.assert_array_equal(flops_ax.get_lines()[1].get_xdata(),
                                  [20.0 * s for s in range(1, 10)])
    assert [t.get_text() for t in step_ax.get_legend().get_texts()] == ["a", "b"]
    assert len(plot_runs({"a": a}).axes) == 2  # no FLOPs known: no compute panel


def test_flops_per_token_counts_the_products():
    cfg = ltx.ModelConfig(50, 16, 2, 2, 64, 32, tie_embeddings=True)
    matmul = 2 * (4 * 16 * 16 + 2 * 16 * 64)  # attention and MLP weights per block
    biases_and_norms = sum(int(np.prod(s)) for n, s in ltx.param_shapes(cfg).items()
                           if n.startswith(("blocks.", "final_norm")) and len(s) == 1)
    N = matmul + biases_and_norms + 16 * 50  # the tied head still multiplies
    assert flops_per_token(cfg) == 6 * N + 12 * 2 * 32 * 16
    assert flops_per_token(cfg, seq_len=8) == 6 * N + 12 * 2 * 8 * 16


# --------------------------------------------------------------------------- statistics
def test_plot_layer_statistics_panels_and_values(relu_model):
    _, cache = relu_model.run_with_cache([[1, 2, 3, 4]])
    _, grads = relu_model.loss_and_grads([[1, 2, 3, 4]], [[2, 3, 4, 5]])
    fig = plot_layer_statistics(cache, grads, relu_model.config)
    assert [ax.get_title() for ax in fig.axes] == ["activation RMS", "residual stream norm",
                                                  "ReLU units", "gradient norm"]
    rms_line = fig.axes[0].get_lines()[0]  # resid_pre
    expected = [np.sqrt(np.mean(cache[f"blocks.{i}.resid_pre"] ** 2)) for i in range(3)]
    np.testing.assert_allclose(rms_line.get_ydata(), expected)
    assert len(fig.axes[3].patches) == 6  # embed, 3 blocks, final_norm, lm_head
    fig = plot_layer_statistics(cache)
    assert len(fig.axes) == 2


# --------------------------------------------------------------------------- a checkpoint
def test_inspect_checkpoint_with_ids_writes_files(tmp_path, relu_model):
    path = tmp_path / "model.npz"
    ltx.save_checkpoint(path, relu_model.config, relu_model.parameters())
    paths = inspect_checkpoint(path, "3 1 4 1", tmp_path / "out")
    assert [p.name for p in paths] == ["attention.png", "statistics.png", "summary.txt"]
    for p in paths:
        assert p.stat().st_size > 0
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = paths[2].read_text()
    assert "token ids: [3, 1, 4, 1]" in summary
    assert "attention, layer 2, head 1" in summary
    assert "ReLU units" in summary
    with pytest.raises(ValueError, match="space-separated token ids"):
        inspect_checkpoint(path, "hello", tmp_path / "out")


def test_inspect_checkpoint_checks_out_dir_before_running(tmp_path, relu_model, monkeypatch):
    """A bad ``out_dir`` is one error naming it, raised before the checkpoint is even read."""
    import literate_tx.training as training

    path = tmp_path / "model.npz"
    ltx.save_checkpoint(path, relu_model.config, relu_model.parameters())
    (tmp_path / "a_file").write_text("x")
    read = []
    monkeypatch.setattr(training, "load_trained", lambda *a, **k: read.append(a))
    with pytest.raises(NotADirectoryError, match=r"out_dir='.*a_file.*' is not allowed: .*a_file "
                                                 r"is a file, not a folder"):
        inspect_checkpoint(path, "3 1", tmp_path / "a_file" / "out")
    assert read == []


def test_inspect_checkpoint_uses_the_stored_tokenizer(tmp_path):
    from literate_tx.tokenizers import CharTokenizer

    tok = CharTokenizer.train("abcd", special_tokens=[])
    cfg = ltx.ModelConfig(tok.vocab_size, 8, 1, 2, 16, 8)
    path = tmp_path / "m.npz"
    ltx.save_checkpoint(path, cfg, ltx.init_params(cfg),
                        metadata={"tokenizer": json.dumps(tok.to_dict())})
    paths = inspect_checkpoint(path, "abca", tmp_path, backend="numpy")
    assert "tokens: ['a', 'b', 'c', 'a']" in paths[2].read_text()


def test_everything_reads_a_real_training_run(tmp_path):
    from literate_tx.training import TrainConfig, train

    cfg = TrainConfig(task="digits", steps=4, batch_size=4, d_model=8, n_layers=1, n_heads=2,
                      d_ff=16, n_train=40, n_val=10, n_test=10, eval_every=2, warmup_steps=1,
                      out=str(tmp_path / "run"))
    result = train(cfg, quiet=True)
    run = tmp_path / "run"
    assert [ax.get_ylabel() for ax in plot_metrics(run).axes] == [
        "loss", "exact match", "learning rate", "gradient norm"]
    fig = plot_runs({"tiny": run})
    assert len(fig.axes) == 3  # FLOPs per step read from the run's checkpoint
    model_cfg = ltx.read_checkpoint(run / "last.npz").config
    per_step = flops_per_token(model_cfg) * 4 * model_cfg.max_seq_len
    np.testing.assert_allclose(fig.axes[2].get_lines()[0].get_xdata(),
                               per_step * np.arange(1, 5))
    bars = plot_operation_accuracy(run).axes[0].patches
    assert [float(p.get_height()) for p in bars] == list(
        result.metrics["test"]["per_operation"].values())
    paths = inspect_checkpoint(run / "last.npz", "Max ( 1 2 3 ) =", tmp_path / "inspect")
    assert "tokens: ['<bos>', 'Max', '(', '1', '2', '3', ')', '=']" in paths[2].read_text()

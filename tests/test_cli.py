"""The ``literate-tx`` command, called in-process through ``main([...])``."""

from __future__ import annotations

import io
import json

import pytest

from literate_tx import read_checkpoint
from literate_tx.cli import main
from literate_tx.training import TrainConfig

TINY = ["--steps", "4", "--batch-size", "4", "--d-model", "16", "--n-layers", "1",
        "--n-heads", "2", "--d-ff", "32", "--n-digits", "3", "--n-train", "60", "--n-val",
        "10", "--n-test", "10", "--warmup-steps", "1", "--eval-every", "2", "--quiet"]
TINY_TEXT = ["--task", "text", "--steps", "3", "--batch-size", "2", "--seq-len", "16",
             "--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--d-ff", "32",
             "--eval-batches", "1", "--quiet"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "digits"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "text"
    assert main(["train", *TINY_TEXT, "--out", str(out)]) == 0
    return out


def test_train_writes_every_file_and_prints_the_result(digits_run, capsys):
    names = {p.name for p in digits_run.iterdir()}
    assert names >= {"metrics.jsonl", "last.npz", "best.npz", "summary.json", "config.yaml"}
    summary = json.loads((digits_run / "summary.json").read_text())
    assert summary["steps"] == 4
    assert set(summary["test"]["per_operation"]) == {"First", "Second", "Last", "Max", "Min"}
    cfg = TrainConfig.load_yaml(digits_run / "config.yaml")
    assert (cfg.d_model, cfg.n_digits, cfg.task) == (16, 3, "digits")


def test_train_prints_the_summary_to_stdout(tmp_path, capsys):
    assert main(["train", *TINY, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "test exact match" in out
    assert "Max" in out


def test_resume_extends_a_run(tmp_path):
    out = str(tmp_path / "r")
    assert main(["train", *TINY, "--steps", "2", "--out", out]) == 0
    # --steps may grow on resume; everything else comes from the checkpoint
    assert main(["train", "--resume", "--out", out, "--steps", "4", "--quiet"]) == 0
    steps = [json.loads(line)["step"] for line in (tmp_path / "r" / "metrics.jsonl")
             .read_text().splitlines() if json.loads(line)["split"] == "train"]
    assert steps == [1, 2, 3, 4]
    assert read_checkpoint(tmp_path / "r" / "last.npz").metadata["step"] == 4


def test_resume_without_a_run_is_a_usage_error(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_config_file_and_flags_override_it(tmp_path):
    path = tmp_path / "c.yaml"
    assert main(["train", *TINY, "--lr", "0.01", "--save-config", str(path)]) == 0
    assert TrainConfig.load_yaml(path).lr == 0.01
    out = tmp_path / "r"
    assert main(["train", "--config", str(path), "--lr", "0.002", "--out", str(out),
                 "--quiet"]) == 0
    cfg = TrainConfig.load_yaml(out / "config.yaml")
    assert (cfg.lr, cfg.d_model, cfg.steps) == (0.002, 16, 4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--steps", "zero"], "argument --steps: 'zero' is not an integer"),
        (["train", "--backend", "jax"], "argument --backend: invalid choice: 'jax'"),
        (["train", "--lr", "-1"], "lr=-1.0 is not allowed"),
        (["train", "--d-model", "10", "--n-heads", "4"], "n_heads=4 is not allowed"),
        (["train", "--dropout", "1.5"], "dropout=1.5 is not allowed"),
        (["train", "--config", "/nonexistent.yaml"], "--config: no file at"),
        (["eval", "/nonexistent.npz"], "no checkpoint at /nonexistent.npz"),
        (["generate"], "give either a CHECKPOINT or --hf DIR"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_flags_and_values_exit_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_shakespeare_offline_fails_clearly(tmp_path, monkeypatch, capsys):
    from literate_tx.data import text

    def offline(url, target, sha):
        raise text.DownloadError(f"could not download {url} (offline)")

    monkeypatch.setenv("LITERATE_TX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(text, "_download", offline)
    assert main(["train", *TINY_TEXT, "--dataset", "shakespeare", "--out",
                 str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "could not download" in err
    assert "--text-file" in err


def test_nan_during_training_exits_1(tmp_path, monkeypatch, capsys):
    import literate_tx.training as training
    import literate_tx.training.engines as engines

    def diverge(step, loss, grads):
        raise training.NonFiniteError(f"step {step}: the loss is nan; training stopped")

    monkeypatch.setattr(engines, "_check_finite", diverge)
    assert main(["train", *TINY, "--out", str(tmp_path / "r")]) == 1
    assert "step 1: the loss is nan" in capsys.readouterr().err


def test_bad_yaml_field_is_named(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("task: digits\nlearning_rate: 0.1\n")
    assert main(["train", "--config", str(path)]) == 2
    assert "unknown TrainConfig field(s): 'learning_rate'" in capsys.readouterr().err


def test_eval_recomputes_the_test_metrics(digits_run, capsys):
    assert main(["eval", str(digits_run / "last.npz"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    summary = json.loads((digits_run / "summary.json").read_text())
    assert metrics["exact_match"] == summary["test"]["exact_match"]
    assert main(["eval", str(digits_run / "best.npz")]) == 0
    assert "exact_match" in capsys.readouterr().out


def test_eval_text(text_run, capsys):
    assert main(["eval", str(text_run / "last.npz")]) == 0
    out = capsys.readouterr().out
    assert "perplexity" in out


def test_generate_text_is_reproducible(text_run, capsys):
    argv = ["generate", str(text_run / "last.npz"), "--prompt", "Alice was",
            "--max-new-tokens", "30", "--seed", "3", "--top-k", "5"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.startswith("Alice was")
    assert main(argv) == 0
    assert capsys.readouterr().out == first


def test_generate_digits_answers_after_the_equals_sign(digits_run, capsys):
    assert main(["generate", str(digits_run / "last.npz"), "--prompt", "Max ( 5 3 9 ) =",
                 "--max-new-tokens", "1", "--temperature", "0"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("Max ( 5 3 9 ) = ")
    assert len(out.split()) == 8


def test_generate_digits_gives_the_answer_alone_by_default(digits_run, capsys):
    for backend, fast in (("numpy", "true"), ("numpy", "false"), ("torch", "true")):
        if backend == "torch":
            pytest.importorskip("torch")
        assert main(["generate", str(digits_run / "last.npz"), "--prompt", "Min ( 5 3 9 ) =",
                     "--temperature", "0", "--backend", backend, "--fast", fast]) == 0
        words = capsys.readouterr().out.split()
        assert words[:7] == ["Min", "(", "5", "3", "9", ")", "="]
        assert len(words) == 8  # one answer token, nothing after it
        assert words[7].isdigit()


def test_eval_and_generate_take_fast_as_a_boolean(digits_run, capsys):
    for command in ("eval", "generate"):
        assert main([command, str(digits_run / "last.npz"), "--fast", "maybe"]) == 2
        assert "--fast: 'maybe' is not a boolean" in capsys.readouterr().err
    assert main(["eval", str(digits_run / "last.npz"), "--json", "--fast", "false"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["eval", str(digits_run / "last.npz"), "--json", "--fast", "true"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert fast.pop("loss") == pytest.approx(plain.pop("loss"), rel=1e-5)  # float32 rounding
    assert fast == plain  # the same answers


def test_generate_rejects_a_bad_temperature(text_run, capsys):
    assert main(["generate", str(text_run / "last.npz"), "--temperature", "-1"]) == 2
    assert "temperature" in capsys.readouterr().err


def test_interactive_generate(text_run, capsys, monkeypatch):
    lines = io.StringIO("temp 0\ntopk 3\ntopp zero\ntopk -1\nThe \nq\nnot read\n")
    monkeypatch.setattr("sys.stdin", lines)
    assert main(["generate", str(text_run / "last.npz"), "--interactive",
                 "--max-new-tokens", "5"]) == 0
    captured = capsys.readouterr()
    assert "temperature = 0.0" in captured.err
    assert "top_k = 3" in captured.err
    assert "topp: 'zero' is not allowed (not a number); top_p stays None" in captured.err
    assert "topk: '-1' is not allowed (give an int >= 1, or 0 for off); top_k stays 3" \
        in captured.err
    assert "> " in captured.err
    # stdout holds the generated text alone: one line, the prompt and 5 characters
    assert captured.out.startswith("The ")
    assert len(captured.out.splitlines()) == 1


def test_inspect_writes_the_pictures_and_the_summary(digits_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["inspect", str(digits_run / "last.npz"), "--prompt", "Max ( 5 3 9 ) =",
                 "--out", str(tmp_path / "plots")])
    assert code == 0
    names = ("attention.png", "statistics.png", "summary.txt")
    for name in names:
        assert (tmp_path / "plots" / name).stat().st_size > 0, name
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {tmp_path / 'plots' / name}" for name in names]


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("literate_tx", "python", "numpy", "torch", "backends", "device"):
        assert word in out


def test_help_exits_0(capsys):
    assert main(["train", "--help"]) == 0
    assert "--d-model" in capsys.readouterr().out


def test_python_dash_m_is_the_same_command():
    import literate_tx.__main__ as entry

    assert entry.main is main


def test_bench_subcommand_is_wired(tmp_path, capsys):
    """`literate-tx bench` runs the benchmark module: a bad preset is a usage error (exit 2)."""
    from literate_tx.cli import main

    assert main(["bench", "--help"]) == 0
    assert "--presets" in capsys.readouterr().out
    assert main(["bench", "--presets", "huge", "--out", str(tmp_path)]) == 2


def test_create_model_fast_option_gives_the_speed_path():
    import literate_tx as ltx
    from literate_tx.numpy_backend.fast import FastNumpyModel

    cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
    assert isinstance(ltx.create_model(cfg, fast=True), FastNumpyModel)


@pytest.mark.parametrize(("value", "expected"), [("none", None), ("off", None), ("0.5", 0.5)])
def test_grad_clip_none_turns_clipping_off(value, expected):
    from literate_tx.cli import _resolve_config, build_parser

    args = build_parser().parse_args(["train", "--grad-clip", value])
    assert _resolve_config(args).grad_clip == expected


def test_grad_clip_not_given_keeps_the_default():
    from literate_tx.cli import _resolve_config, build_parser

    args = build_parser().parse_args(["train"])
    assert _resolve_config(args).grad_clip == TrainConfig().grad_clip

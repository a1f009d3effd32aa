"""The lab (``literate-tx lab``): its logic, and its pages driven headless by Streamlit's AppTest.

The logic tests need only the core package; the page tests need the ``lab`` extra (Streamlit,
Plotly) and are skipped without it. The browser check of the real server is
``tests/test_lab_browser.py`` (``nox -s lab``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import literate_tx as ltx
from literate_tx.lab import forms, jobs, models, runs
from literate_tx.training import TrainConfig, Trainer, sample_text, train

APP = Path(__file__).resolve().parents[1] / "literate_tx" / "lab" / "app.py"
TINY = dict(batch_size=4, d_model=16, n_layers=2, n_heads=2, d_ff=32, n_train=60, n_val=10,
            n_test=10, warmup_steps=1, eval_every=5)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A runs folder with two finished digits runs of different widths."""
    base = tmp_path_factory.mktemp("runs")
    train(TrainConfig(steps=12, out=str(base / "narrow"), **TINY), quiet=True)
    train(TrainConfig(steps=12, out=str(base / "wide"), **{**TINY, "d_model": 24}), quiet=True)
    return base


# ============================================================================ runs
def test_find_and_summarise_runs(root):
    found = runs.find_runs(root)
    assert sorted(p.name for p in found) == ["narrow", "wide"]
    narrow, wide = runs.compare_runs([root / "narrow", root / "wide"])
    assert narrow.steps_done == narrow.steps_total == 12
    assert narrow.finished
    assert wide.parameters > narrow.parameters
    assert wide.flops_per_step > narrow.flops_per_step
    records = runs.read_metrics(root / "narrow")
    assert narrow.best_val_loss == min(r["loss"] for r in records if r["split"] == "val")
    assert narrow.row()["best val perplexity"] == pytest.approx(math.exp(narrow.best_val_loss))
    table = runs.config_table([narrow, wide], only_different=True)
    assert {row["field"] for row in table} == {"out", "d_model"}


def test_read_metrics_tolerates_a_line_being_written_but_not_damage(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "split": "train", "loss": 2.0}\n{"step": 2, "sp')
    assert len(runs.read_metrics(tmp_path)) == 1
    path.write_text('{"step": 1, "sp\n{"step": 2, "split": "train", "loss": 2.0}\n')
    with pytest.raises(ValueError, match="line 1: not JSON"):
        runs.read_metrics(tmp_path)
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        runs.read_metrics(tmp_path / "missing")


def test_compare_runs_refuses_more_than_four_and_duplicates(root):
    with pytest.raises(ValueError, match="at most 4"):
        runs.compare_runs([root / "narrow"] * 5)
    with pytest.raises(ValueError, match="twice"):
        runs.compare_runs([root / "narrow", root / "narrow"])


# ============================================================================ forms
def test_tooltips_are_train_configs_field_descriptions():
    help_ = forms.field_help()
    assert help_["steps"] == "Number of optimiser updates (``>= 1``)."
    assert help_["beta1"] == help_["beta2"]
    assert "AdamW" in help_["beta1"]
    assert help_["dtype"].startswith("one of {")  # no description: its allowed values
    for name in forms.ARCHITECTURE + ("lr", "batch_size", "seed", "warmup_steps"):
        assert help_.get(name), name


def test_make_config_reports_impossible_sizes():
    with pytest.raises(ValueError, match="n_heads=3 is not allowed; it must divide d_model=16"):
        forms.make_config("digits", "default", {"d_model": 16, "n_heads": 3})
    with pytest.raises(ValueError, match="warmup_steps=50 is not allowed with steps=10"):
        forms.make_config("digits", "default", {"steps": 10, "warmup_steps": 50})
    cfg = forms.make_config("text", "default", {"d_model": 32, "n_heads": 4})
    assert (cfg.task, cfg.d_model, cfg.seq_len) == ("text", 32, 64)


# ============================================================================ jobs
def test_stop_saves_a_checkpoint_that_resumes_exactly(tmp_path):
    """Stopping a background job mid-run and resuming it gives the uninterrupted run's weights."""
    cfg = TrainConfig(steps=1500, out=str(tmp_path / "job"), checkpoint_every=100000,
                      **{**TINY, "eval_every": 100000})
    job = jobs.start_training(cfg)
    with pytest.raises(ValueError, match="already training"):
        jobs.start_training(cfg)
    metrics = Path(cfg.out) / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and job.running:
        if metrics.is_file() and metrics.read_text().count('"train"') >= 20:
            break
        time.sleep(0.02)
    assert job.running, job.log()
    assert job.stop() == 130
    assert job.status == "stopped"
    stopped_at = json.loads(metrics.read_text().splitlines()[-1])["step"]
    assert 20 <= stopped_at < cfg.steps
    _, params, _, meta = ltx.checkpoint.read_checkpoint(Path(cfg.out) / "last.npz")
    assert meta["step"] == stopped_at
    with pytest.raises(ValueError, match="holds a run"):
        jobs.start_training(cfg)  # neither resume nor overwrite

    resumed = jobs.start_training(cfg, resume=True)
    assert resumed.wait(120) == 0, resumed.log()
    assert resumed.status == "finished"
    straight = Trainer(cfg.replace(out=str(tmp_path / "straight")), quiet=True)
    straight.train()
    a = ltx.checkpoint.read_checkpoint(Path(cfg.out) / "last.npz").params
    b = straight.engine.parameters()
    assert all(np.array_equal(a[k], b[k]) for k in b)

    again = jobs.start_training(cfg.replace(steps=3), overwrite=True)
    assert again.wait(120) == 0, again.log()
    assert runs.run_summary(cfg.out).steps_done == 3


def test_a_failing_job_reports_the_trainers_message(tmp_path):
    cfg = TrainConfig(task="text", text_file=str(tmp_path / "gone.txt"), steps=2,
                      out=str(tmp_path / "run"), batch_size=2, seq_len=8, d_model=8,
                      n_heads=2, d_ff=16, n_layers=1, warmup_steps=1)
    job = jobs.start_training(cfg)
    job.wait(120)
    assert job.status == "failed"
    assert "gone.txt" in job.error()
    assert "Traceback" not in job.error()


# ============================================================================ models
@pytest.fixture(scope="module")
def checkpoint(root) -> Path:
    return root / "narrow" / "last.npz"


def test_attention_rows_are_causal_distributions(checkpoint):
    view = models.attention(models.load(checkpoint), "Max ( 5 3 9 ) =")
    L, H, T, _ = view.weights.shape
    assert (L, H, T) == (2, 2, len(view.labels))
    assert len(set(view.labels)) == T
    np.testing.assert_allclose(view.weights.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(view.weights, 1) == 0)
    np.testing.assert_allclose(view.head(1, None), view.weights[1].mean(0))


def test_bad_input_raises_the_packages_clear_errors(checkpoint, tmp_path):
    loaded = models.load(checkpoint)
    with pytest.raises(ValueError, match="the prompt is empty"):
        models.attention(loaded, "  ")
    with pytest.raises(ValueError, match="reads at most"):
        models.attention(loaded, "Max ( " + "1 " * 40 + ") =")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(checkpoint.read_bytes()[:-500])
    with pytest.raises(ValueError, match="broken.npz"):
        models.load(broken)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), temperature=st.sampled_from([0.0, 0.7, 1.3]),
       n_new=st.integers(0, 20), top_k=st.sampled_from([None, 3]))
def test_streamed_tokens_equal_sample_text(seed, temperature, n_new, top_k):
    """Streaming draws the same tokens as ``literate-tx generate`` (past the window too)."""
    cfg = ltx.ModelConfig(12, 8, 1, 2, 16, 6)
    model = ltx.create_model(cfg, seed=1, dtype="float64")
    kwargs = dict(temperature=temperature, top_k=top_k, seed=seed)
    assert list(models.stream_tokens(model, [1, 2, 3], n_new, **kwargs)) == \
        sample_text(model, [1, 2, 3], n_new, **kwargs)


def test_the_same_checkpoint_generates_the_same_text_in_every_backend(checkpoint):
    from literate_tx.api import available_backends

    texts = {b: "".join(models.stream_text(models.load(checkpoint, b), "Max ( 5 3 9 ) =", 4,
                                           temperature=0.9, seed=5))
             for b in models.BACKENDS if b in available_backends()}
    assert len(set(texts.values())) == 1, texts


def test_internals_gradients_are_the_models(checkpoint):
    from literate_tx.inspection import gradient_norms

    loaded = models.load(checkpoint)
    found = models.internals(loaded, "Max ( 5 3 9 ) = 9")
    ids = loaded.tokenizer.encode("Max ( 5 3 9 ) = 9")
    loss, grads = loaded.model.loss_and_grads([ids[:-1]], [ids[1:]])
    assert found.loss == pytest.approx(float(loss))
    want = {r.name: r.norm for r in gradient_norms(grads, by="layer")}
    assert {g["name"]: g["norm"] for g in found.gradients} == pytest.approx(want)
    for name, values in found.gradient_values.items():  # every entry of the group, once
        assert np.linalg.norm(values) == pytest.approx(want[name])
    assert [r.hook for r in found.residual][:2] == ["blocks.0.resid_pre", "blocks.0.resid_mid"]


def test_trace_values_are_what_the_model_computes(checkpoint):
    records = models.trace_pass("Max ( 5 3 9 ) = 9", checkpoint)
    logits = next(r for r in records if r.step == "logits")
    loaded = models.load(checkpoint)
    ids = loaded.tokenizer.encode("Max ( 5 3 9 ) = 9")[:-1]
    want = ltx.create_model(loaded.model.config, "numpy", params=loaded.model.parameters(),
                            dtype="float64").forward([ids])
    np.testing.assert_allclose(np.reshape(logits.values, logits.shape), want, atol=1e-9)
    assert records[-1].phase == "backward"
    with pytest.raises(ValueError, match="the prompt is empty"):
        models.trace_pass("")


def test_benchmark_rows():
    rows = models.benchmark("tiny", ["numpy"], ["forward"], repeats=1)
    assert [(r["backend"], r["op"]) for r in rows] == [("numpy", "forward")]
    assert rows[0]["min_ms"] <= rows[0]["median_ms"] <= rows[0]["max_ms"]
    with pytest.raises(ValueError, match="presets"):
        models.benchmark("huge")


# ============================================================================ the pages
def _app(root: Path, monkeypatch):
    pytest.importorskip("streamlit")
    pytest.importorskip("plotly")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LTX_LAB_ROOT", str(root))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    return at


def _page(at, name: str):
    at.sidebar.radio(key="page").set_value(name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _chart(at, key: str) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if chart.proto.id and key in chart.proto.id or spec.get("layout", {}).get("title", {}) \
                .get("text") == key:
            return spec
    raise AssertionError(f"no chart {key!r}")


def _values(data) -> np.ndarray:
    """A chart's data array: a list, or Plotly's typed array ``{"dtype", "bdata"}``."""
    if isinstance(data, dict) and "bdata" in data:
        import base64

        flat = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        shape = data.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(data)


def test_train_page_trains_and_draws_the_runs_curves(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch)
    assert not at.error
    for key, value in {"t_steps_digits": 12, "t_batch_digits": 4}.items():
        at.number_input(key=key).set_value(value)
    for name, value in {"d_model": 16, "d_ff": 32, "n_layers": 1, "warmup_steps": 1,
                        "eval_every": 4, "n_train": 60, "n_val": 10, "n_test": 10}.items():
        at.number_input(key=f"t_{name}_digits_default").set_value(value)
    at.run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="t_start").click().run()
    job = jobs.job_for(tmp_path / "digits-numpy")
    assert job is not None
    assert job.wait(120) == 0, job.log()
    at.run()
    assert not at.error
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    records = runs.read_metrics(tmp_path / "digits-numpy")
    assert metrics["step"] == "12"
    last = [r for r in records if r["split"] == "train"][-1]
    assert metrics["train loss"] == f"{last['loss']:.4f}"
    loss = _chart(at, "loss")
    assert loss["data"][0]["y"] == pytest.approx([r["loss"] for r in records
                                                   if r["split"] == "train"])
    assert loss["data"][1]["x"] == [4, 8, 12]
    assert _chart(at, "learning rate")["data"][0]["y"][0] == pytest.approx(records[0]["lr"])

    at.button(key="t_start").click().run()  # the folder holds a run now
    assert [e.value for e in at.error] == [
        f"{tmp_path / 'digits-numpy'} holds a run already: resume it, replace it (overwrite), "
        "or choose another run folder"]
    at.checkbox(key="t_overwrite").check().run()
    at.button(key="t_start").click().run()
    assert jobs.job_for(tmp_path / "digits-numpy").wait(120) == 0


def test_train_page_shows_impossible_sizes_as_a_message(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch)
    at.number_input(key="t_d_model_digits_default").set_value(30)
    at.run()
    assert [e.value for e in at.error] == [
        "n_heads=4 is not allowed; it must divide d_model=30"]
    assert not at.exception


def test_attention_page_maps_and_errors(root, monkeypatch):
    at = _page(_app(root, monkeypatch), "Attention")
    assert not at.error, [e.value for e in at.error]
    spec = _chart(at, "a_map")
    z = np.array([t["z"] for t in spec["data"]], dtype=float)  # (H, T, T)
    np.testing.assert_allclose(z.sum(-1), 1.0, rtol=1e-5)
    assert spec["data"][0]["x"][:2] == ["0 <bos>", "1 Max"]
    assert "weight" in spec["data"][0]["hovertemplate"]
    ops = _chart(at, "a_ops")
    assert len(ops["data"]) == 5
    at.text_input(key="a_prompt").set_value("").run()
    assert [e.value for e in at.error] == [
        "the prompt is empty; type some text (digits: e.g. 'Max ( 5 3 9 ) =')"]
    assert not at.exception


def test_a_corrupt_checkpoint_is_a_message(root, tmp_path, monkeypatch):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a checkpoint")
    at = _page(_app(root, monkeypatch), "Generate")
    at.selectbox(key="g_ckpt").set_value("another file...").run()
    at.text_input(key="g_path").set_value(str(broken)).run()
    assert len(at.error) == 1
    assert "is not a literate-tx checkpoint" in at.error[0].value
    assert not at.exception


def test_generate_page_streams_the_cli_text(root, monkeypatch):
    at = _page(_app(root, monkeypatch), "Generate")
    at.slider(key="g_temp").set_value(0.9)
    at.number_input(key="g_n").set_value(3)
    at.number_input(key="g_seed").set_value(11)
    at.button(key="g_go").click().run()
    assert not at.error, [e.value for e in at.error]
    loaded = models.load(runs.find_runs(root)[0] / "best.npz")
    want = sample_text(loaded.model, loaded.tokenizer.encode("Max ( 5 3 9 ) ="), 3,
                       temperature=0.9, seed=11)
    assert at.session_state.g_last == "Max ( 5 3 9 ) =" + "".join(
        " " + loaded.tokenizer.decode([t]) for t in want)


def test_internals_compare_trace_and_benchmark_pages(root, monkeypatch):
    at = _page(_app(root, monkeypatch), "Internals")
    assert not at.error, [e.value for e in at.error]
    assert {t["name"] for t in _chart(at, "gradient per layer")["data"]} == {"norm", "RMS"}
    at.selectbox(key="i_hook").set_value("gradient of blocks.0").run()
    counts = _values(_chart(at, "gradient of blocks.0 values")["data"][0]["y"])
    assert counts.sum() == sum(v.size for k, v in ltx.checkpoint.read_checkpoint(
        runs.find_runs(root)[0] / "best.npz").params.items() if k.startswith("blocks.0."))

    _page(at, "Compare runs")
    assert not at.error, [e.value for e in at.error]
    assert {t["name"] for t in _chart(at, "training loss")["data"]} == {"narrow", "wide"}
    at.radio(key="r_axis").set_value("FLOPs").run()
    spec = _chart(at, "training loss")
    assert spec["layout"]["xaxis"]["type"] == "log"
    assert spec["data"][0]["x"][0] > 0

    _page(at, "Trace")
    assert not at.error, [e.value for e in at.error]
    at.slider(key="x_step").set_value(2).run()
    assert "forward" in at.markdown[-1].value
    assert not at.exception

    _page(at, "Benchmark")
    at.multiselect(key="b_backends").set_value(["numpy"])
    at.multiselect(key="b_ops").set_value(["forward"])
    at.number_input(key="b_repeats").set_value(1)
    at.button(key="b_go").click().run()
    assert not at.error, [e.value for e in at.error]
    assert [t["name"] for t in _chart(at, "b_chart")["data"]] == ["numpy"]


# ============================================================================ the command
def test_the_logic_imports_without_streamlit():
    """The core package and the lab's logic never import Streamlit or Plotly."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['streamlit'] = None; sys.modules['plotly'] = None\n"
            "import literate_tx, literate_tx.cli, literate_tx.lab\n"
            "from literate_tx.lab import forms, jobs, models, runs\n"
            "from literate_tx.cli import main\n"
            "print(main(['lab', '--no-browser']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "1", out.stderr
    assert out.stderr.strip() == ('literate-tx lab: the lab needs Streamlit and Plotly: '
                                  'pip install "literate-tx[lab]" (streamlit, plotly not '
                                  'installed)')


def test_bad_port_is_a_usage_error(capsys):
    from literate_tx.cli import main

    assert main(["lab", "--port", "70000", "--no-browser"]) == 2
    assert "--port: 70000 is not a TCP port" in capsys.readouterr().err


def test_literate_tx_lab_serves_on_localhost_and_stops(tmp_path):
    pytest.importorskip("streamlit")
    pytest.importorskip("plotly")
    import signal
    import subprocess
    import sys
    import urllib.request

    from literate_tx.lab import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "literate_tx", "lab", "--no-browser",
                             "--port", str(port), "--root", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "literate_tx lab:" not in line:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert line.startswith(f"literate_tx lab: http://127.0.0.1:{port}/"), line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
    assert code == 0

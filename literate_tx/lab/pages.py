r"""The lab's Streamlit pages (needs the ``lab`` extra: ``pip install "literate-tx[lab]"``).

The pages only draw: what they show is computed by :mod:`literate_tx.lab.runs`,
:mod:`literate_tx.lab.jobs`, :mod:`literate_tx.lab.forms` and :mod:`literate_tx.lab.models`.
Every page runs inside :func:`_guarded`, which turns the package's errors (a bad size, a damaged
checkpoint, an empty prompt) into a red message on the page, never a stack trace.

``streamlit run literate_tx/lab/app.py`` runs :func:`main`; ``literate-tx lab`` does that on
127.0.0.1 with the settings of :func:`literate_tx.lab.server_command`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from . import forms, jobs, models, runs

PAGES = ("Train", "Attention", "Internals", "Compare runs", "Generate", "Trace", "Benchmark")
_LAYOUT = dict(margin=dict(l=50, r=20, t=40, b=40), height=320)


def _root() -> Path:
    return Path(os.environ.get("LTX_LAB_ROOT", "runs"))


def _guarded(page) -> None:
    """Run one page; show an error as a message (the package's own words), not a traceback."""
    try:
        page()
    except (ValueError, TypeError, OSError, KeyError, RuntimeError, ImportError) as exc:
        st.error(str(exc) or type(exc).__name__)
    except Exception as exc:  # anything else: still no stack trace on the page
        st.error(f"{type(exc).__name__}: {exc}")


def main() -> None:
    """The app: a page picker in the sidebar (or ``?page=Name`` in the URL) and that page."""
    st.set_page_config(page_title="literate_tx lab", layout="wide")
    wanted = st.query_params.get("page", "Train")
    if "page" not in st.session_state:
        st.session_state.page = wanted if wanted in PAGES else "Train"
    st.sidebar.title("literate_tx lab")
    page = st.sidebar.radio("Page", PAGES, key="page")
    st.sidebar.caption(f"runs folder: `{_root()}`")
    st.title(page)
    _guarded({"Train": train_page, "Attention": attention_page, "Internals": internals_page,
              "Compare runs": compare_page, "Generate": generate_page, "Trace": trace_page,
              "Benchmark": benchmark_page}[page])


# ============================================================================ shared widgets
def _short(path: str) -> str:
    """A path as the pages show it: relative to the runs folder when it lies inside it."""
    try:
        return str(Path(path).relative_to(_root()))
    except ValueError:
        return str(path)


def _checkpoints() -> list[str]:
    found = []
    for folder in runs.find_runs(_root()):
        found += [str(folder / n) for n in ("best.npz", "last.npz") if (folder / n).is_file()]
    return found


def _pick_checkpoint(key: str) -> str:
    found = _checkpoints()
    options = found + ["another file..."]
    choice = st.selectbox("Checkpoint", options, key=f"{key}_ckpt", format_func=_short,
                          help="best.npz / last.npz of the runs under the runs folder")
    if choice == "another file...":
        choice = st.text_input("Path of a checkpoint (.npz)", key=f"{key}_path")
    if not choice:
        raise ValueError("no checkpoint chosen; train a model on the Train page or give a path")
    return choice


def _pick_backend(key: str) -> str:
    from ..api import available_backends

    have = [b for b in models.BACKENDS if b in available_backends()]
    return st.selectbox("Backend", have, key=f"{key}_backend",
                        help="any backend runs any checkpoint (the same weights)")


def _pick_model(key: str):
    """A checkpoint and a backend side by side, loaded: the first row of the model pages."""
    c1, c2 = st.columns([3, 1])
    with c1:
        path = _pick_checkpoint(key)
    with c2:
        backend = _pick_backend(key)
    return models.load(path, backend)


def _default_prompt(loaded, digits_prompt: str) -> str:
    """``digits_prompt`` for a digits model, else the run's sample prompt (or nothing)."""
    if loaded.task == "digits":
        return digits_prompt
    return loaded.train_config.sample_prompt if loaded.train_config else ""


def _line_chart(series: dict[str, tuple[list, list]], title: str, xlabel: str, ylabel: str,
                *, log_x: bool = False, log_y: bool = False) -> go.Figure:
    fig = go.Figure()
    for name, (x, y) in series.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines" if len(x) > 20 else
                                 "lines+markers", name=name))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, **_LAYOUT)
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


# ============================================================================ Train
def _number(name: str, value: Any, help_text: str, key: str):
    if isinstance(value, bool):
        return st.checkbox(name, value=value, help=help_text, key=key)
    if name in forms.CHOICES:
        options = forms.CHOICES[name]
        return st.selectbox(name, options, index=options.index(value) if value in options
                            else 0, help=help_text, key=key)
    if isinstance(value, int):
        return int(st.number_input(name, value=value, step=1, help=help_text, key=key))
    if isinstance(value, float):
        return float(st.number_input(name, value=value, format="%g", help=help_text, key=key))
    shown = "-".join(map(str, value)) if isinstance(value, tuple) else (
        "" if value is None else str(value))
    text = st.text_input(name, value=shown, help=help_text, key=key)
    return _parse(text, value)


def _parse(text: str, default: Any) -> Any:
    """A text box's value as the field's type (None, int, float, tuple, str)."""
    text = text.strip()
    if isinstance(default, str):
        return text
    if not text or text.lower() == "none":
        return None
    if isinstance(default, tuple) or "-" in text[1:] and text.replace("-", "").isdigit():
        parts = text.replace(",", "-").split("-")
        try:
            return tuple(int(p) for p in parts) if len(parts) > 1 else int(parts[0])
        except ValueError:
            raise ValueError(f"{text!r} is not a digit count; use N or LOW-HIGH") from None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def train_page() -> None:
    """The Train page: the form, start / stop / resume, and the live curves of the job.

    Driven headless by ``tests/test_lab.py`` (Streamlit's ``AppTest``).
    """
    help_ = forms.field_help()
    c1, c2, c3, c4 = st.columns(4)
    task = c1.selectbox("Task", ("digits", "text", "file"), key="t_task",
                        format_func={"digits": "digits", "text": "text (Alice)",
                                     "file": "a text file"}.get,
                        help="digits: answer Max ( 5 3 9 ) = 9; text: a character model")
    from ..api import available_backends

    backends = [b for b in models.BACKENDS if b in available_backends()]
    backend = c2.selectbox("Backend", backends, key="t_backend", help=help_.get("backend"))
    real_task = "text" if task == "file" else task
    recipe = c3.selectbox("Recipe", forms.recipes(real_task), key="t_recipe",
                          help="the starting values; every field below can be changed")
    base = forms.recipe_config(real_task, recipe)
    out = c4.text_input("Run folder", value=str(_root() / f"{real_task}-{backend}"),
                        key="t_out", help=help_.get("out"))
    values: dict[str, Any] = {"backend": backend, "out": out}
    if task == "file":
        values["text_file"] = st.text_input("Text file (UTF-8)", key="t_file",
                                            help=help_.get("text_file"))
    c1, c2, c3 = st.columns(3)
    values["steps"] = int(c1.number_input("steps", 1, value=base.steps, key=f"t_steps_{task}",
                                          help=help_.get("steps")))
    values["batch_size"] = int(c2.number_input("batch_size", 1, value=base.batch_size,
                                               key=f"t_batch_{task}",
                                               help=help_.get("batch_size")))
    values["lr"] = float(c3.number_input("lr", 0.0, value=base.lr, format="%g",
                                         key=f"t_lr_{task}", help=help_.get("lr")))
    st.subheader("Architecture")
    cols = st.columns(len(forms.ARCHITECTURE) // 2 + 1)
    for i, name in enumerate(forms.ARCHITECTURE):
        with cols[i % len(cols)]:
            values[name] = _number(name, getattr(base, name), help_.get(name, ""),
                                   f"t_{name}_{task}_{recipe}")
    with st.expander("More settings (schedule, evaluation, seed, data ...)"):
        cols = st.columns(4)
        for i, name in enumerate(forms.other_fields()):
            with cols[i % 4]:
                values[name] = _number(name, getattr(base, name), help_.get(name, ""),
                                       f"t_{name}_{task}_{recipe}")
    config = forms.make_config(task, recipe, values)
    job = jobs.job_for(config.out)
    running = job is not None and job.running
    b1, b2, b3, b4 = st.columns([1, 1, 1, 3])
    overwrite = False
    if jobs.holds_run(config.out) and not running:
        overwrite = b4.checkbox("Start replaces the run in this folder", key="t_overwrite",
                                help="the folder holds a run; Start deletes it and begins a "
                                "new one (Resume continues it instead)")
    if b1.button("Start", type="primary", disabled=running, key="t_start",
                 help="start a new run in the run folder"):
        job = jobs.start_training(config, overwrite=overwrite)
        running = True
    if b2.button("Resume", disabled=running, key="t_resume",
                 help="continue the run in the folder from its last.npz, up to `steps`"):
        job = jobs.start_training(config, resume=True)
        running = True
    if b3.button("Stop", disabled=not running, key="t_stop",
                 help="stop after the current step and save last.npz (resumable)"):
        job.stop()
        running = False
    _live(config.out, running)


def _live(out: str, running: bool) -> None:
    @st.fragment(run_every=1.5 if running else None)
    def panel():
        job = jobs.job_for(out)
        if job is not None:
            status = job.status
            st.caption(f"job: **{status}** — `{' '.join(job.command()[1:])}`")
            if status == "failed":
                st.error(job.error())
            elif status == "stopped":
                st.info(f"stopped; {Path(out) / 'last.npz'} saved — press Resume to continue")
            if status in ("finished", "stopped", "failed") and st.session_state.get(
                    "t_was_running") == out:
                st.session_state.t_was_running = None
                st.rerun()  # enable the buttons again
            if status in ("running", "stopping"):
                st.session_state.t_was_running = out
        if not (Path(out) / "metrics.jsonl").is_file():
            st.info("no metrics yet in this run folder; press Start")
            return
        _curves(out)
        if job is not None:
            with st.expander("training log"):
                st.code(job.log() or "(empty)", language=None)

    panel()


def _curves(out: str) -> None:
    records = runs.read_metrics(out)
    steps, loss = runs.series(records, "train", "loss")
    vsteps, vloss = runs.series(records, "val", "loss")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("step", steps[-1] if steps else 0)
    m2.metric("train loss", f"{loss[-1]:.4f}" if loss else "-")
    m3.metric("val loss", f"{vloss[-1]:.4f}" if vloss else "-")
    _, tps = runs.series(records, "train", "tokens_per_s")
    m4.metric("tokens/s", f"{np.median(tps[-20:]):,.0f}" if tps else "-")
    c1, c2 = st.columns(2)
    c1.plotly_chart(_line_chart({"train": (steps, loss), "validation": (vsteps, vloss)},
                                "loss", "step", "cross-entropy"), key="c_loss")
    acc_key = next((k for k in ("exact_match", "accuracy") if runs.series(records, "val", k)[0]),
                   None)
    if acc_key:
        c2.plotly_chart(_line_chart({acc_key: runs.series(records, "val", acc_key)},
                                    f"validation {acc_key}", "step", acc_key), key="c_acc")
    else:
        c2.plotly_chart(_line_chart({"perplexity": runs.series(records, "val", "perplexity")},
                                    "validation perplexity", "step", "perplexity"), key="c_acc")
    c1, c2 = st.columns(2)
    c1.plotly_chart(_line_chart({"lr": runs.series(records, "train", "lr")}, "learning rate",
                                "step", "lr"), key="c_lr")
    c2.plotly_chart(_line_chart({"tokens/s": runs.series(records, "train", "tokens_per_s")},
                                "throughput", "step", "tokens / s"), key="c_tps")


# ============================================================================ Attention
def _heatmap(weights: np.ndarray, labels: list[str]) -> go.Heatmap:
    return go.Heatmap(z=np.asarray(weights).tolist(), x=labels, y=labels, colorscale="Blues",
                      zmin=0, zmax=1,
                      hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>")


def attention_page() -> None:
    """The Attention page: a checkpoint's attention maps for a prompt, per head and per op.

    Driven headless by ``tests/test_lab.py`` (Streamlit's ``AppTest``).
    """
    loaded = _pick_model("a")
    default = _default_prompt(loaded, "Max ( 5 3 9 ) =")
    prompt = st.text_input("Prompt", value=default, key="a_prompt")
    view = models.attention(loaded, prompt)
    L, H = view.weights.shape[:2]
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", range(L), key="a_layer")
    head = c2.selectbox("Head", ["all", *range(H)], key="a_head")
    st.caption(f"greedy next token: **{view.next_token}** — hover a cell for the query, the key "
               "and the weight")
    if head == "all":
        fig = make_subplots(1, H, subplot_titles=[f"head {h}" for h in range(H)],
                            shared_yaxes=True)
        for h in range(H):
            fig.add_trace(_heatmap(view.head(layer, h), view.labels), 1, h + 1)
        fig.update_layout(height=380, margin=dict(l=60, r=20, t=40, b=60))
    else:
        fig = go.Figure(_heatmap(view.head(layer, head), view.labels))
        fig.update_layout(title=f"layer {layer}, head {head}", height=480,
                          xaxis_title="key", yaxis_title="query")
    # categories: a token label such as "1 Max" must not be read as a number or a date
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category", autorange="reversed")
    st.plotly_chart(fig, key="a_map")
    per_op = models.digits_prompts(loaded)
    if per_op:
        st.subheader("Per operation (the same digits)")
        shown = None if head == "all" else head
        fig = make_subplots(1, len(per_op), subplot_titles=[
            f"{op} → {models.attention(loaded, p).next_token}" for op, p in per_op.items()])
        for i, p in enumerate(per_op.values()):
            v = models.attention(loaded, p)
            fig.add_trace(_heatmap(v.head(layer, shown), v.labels), 1, i + 1)
        fig.update_traces(showscale=False)
        fig.update_xaxes(type="category", showticklabels=False)
        fig.update_yaxes(type="category", autorange="reversed")
        fig.update_layout(height=330, margin=dict(l=60, r=20, t=40, b=60))
        st.caption(f"layer {layer}, " + ("mean over heads" if shown is None else f"head {shown}"))
        st.plotly_chart(fig, key="a_ops")


# ============================================================================ Internals
def internals_page() -> None:
    """The Internals page: activation and gradient statistics per layer, residual stream norm.

    Driven headless by ``tests/test_lab.py`` (Streamlit's ``AppTest``).
    """
    loaded = _pick_model("i")
    default = _default_prompt(loaded, "Max ( 5 3 9 ) = 9")
    prompt = st.text_input("Prompt", value=default, key="i_prompt",
                           help="the gradients are those of predicting each token of the prompt "
                           "from the ones before it")
    found = models.internals(loaded, prompt)
    if found.loss is not None:
        st.metric("next-token loss on the prompt", f"{found.loss:.4f}")
    layered = [r for r in found.activations if r.layer is not None]
    kinds = sorted({r.hook.split(".", 2)[2] for r in layered})
    series = {k: ([r.layer for r in layered if r.hook.split(".", 2)[2] == k],
                  [r.rms for r in layered if r.hook.split(".", 2)[2] == k]) for k in kinds}
    c1, c2 = st.columns(2)
    c1.plotly_chart(_line_chart(series, "activation RMS per layer", "layer", "RMS"),
                    key="i_rms")
    order = {"resid_pre": 0.0, "resid_mid": 0.5, "resid_post": 1.0}
    pts = sorted((r.layer + order.get(r.hook.rsplit(".", 1)[-1], 0.0), r.mean_norm)
                 for r in found.residual if r.layer is not None)
    c2.plotly_chart(_line_chart({"mean ‖h‖": ([p[0] for p in pts], [p[1] for p in pts])},
                                "residual stream norm", "block (pre, mid +0.5, post +1)",
                                "mean ‖ξ_t‖₂"), key="i_resid")
    if found.gradients:
        g = found.gradients
        names = [r["name"] for r in g]
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_trace(go.Bar(x=names, y=[r["norm"] for r in g], name="norm", offsetgroup=0),
                      secondary_y=False)
        fig.add_trace(go.Bar(x=names, y=[r["rms"] for r in g], name="RMS", offsetgroup=1),
                      secondary_y=True)
        fig.update_yaxes(title_text="‖g‖₂", secondary_y=False)
        fig.update_yaxes(title_text="RMS = ‖g‖₂ / √n", secondary_y=True)
        fig.update_layout(title="gradient per layer", barmode="group", **_LAYOUT)
        c1.plotly_chart(fig, key="i_grad")
    shown = {**found.values, **{f"gradient of {k}": v for k, v in
                                found.gradient_values.items()}}
    hook = c2.selectbox("Histogram of", list(shown), key="i_hook",
                        help="any hooked activation, or the gradient of a layer's parameters")
    counts, edges = models.histogram(shown[hook])
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts,
                           width=np.diff(edges), name=hook))
    fig.update_layout(title=f"{hook} values", xaxis_title="value", yaxis_title="count",
                      **_LAYOUT)
    c2.plotly_chart(fig, key="i_hist")
    st.dataframe([dataclasses.asdict(r) for r in found.activations], key="i_table")


# ============================================================================ Compare runs
def compare_page() -> None:
    """The Compare runs page: up to four runs' curves, configurations and summary table.

    Driven headless by ``tests/test_lab.py`` (Streamlit's ``AppTest``).
    """
    found = [str(p) for p in runs.find_runs(_root())]
    if not found:
        st.info(f"no runs under {_root()}; train one on the Train page")
        return
    chosen = st.multiselect("Runs (up to 4)", found, default=found[:min(2, len(found))],
                            max_selections=runs.MAX_COMPARED, key="r_runs",
                            format_func=_short)
    summaries = runs.compare_runs(chosen)
    axis = st.radio("x axis", ("step", "wall time", "FLOPs"), horizontal=True, key="r_axis")
    train_series, val_series, ppl_series = {}, {}, {}
    for s in summaries:
        records = runs.read_metrics(s.folder)
        for store, split, key in ((train_series, "train", "loss"), (val_series, "val", "loss"),
                                  (ppl_series, "val", "perplexity")):
            steps, ys = runs.series(records, split, key)
            if axis == "step":
                xs = steps
            elif axis == "wall time":
                _, xs = runs.series(records, split, "time")
                if len(xs) != len(ys):
                    continue
            else:
                if s.flops_per_step is None:
                    continue
                xs = [n * s.flops_per_step for n in steps]
            store[s.label] = (xs, ys)
    xlabel = {"step": "step", "wall time": "training time (s)",
              "FLOPs": "training FLOPs (6N + 12LTC per token)"}[axis]
    st.plotly_chart(_line_chart(train_series, "training loss", xlabel, "loss",
                                log_x=axis == "FLOPs"), key="r_train")
    c1, c2 = st.columns(2)
    c1.plotly_chart(_line_chart(val_series, "validation loss", xlabel, "loss",
                                log_x=axis == "FLOPs"), key="r_val")
    c2.plotly_chart(_line_chart(ppl_series, "validation perplexity (e^loss)", xlabel,
                                "perplexity", log_x=axis == "FLOPs", log_y=True), key="r_ppl")
    st.subheader("Summary")
    st.dataframe([s.row() for s in summaries], key="r_summary")
    st.subheader("Configuration")
    diff = st.checkbox("only the fields that differ", value=True, key="r_diff")
    st.dataframe(runs.config_table(summaries, only_different=diff), key="r_config")


# ============================================================================ Generate
def generate_page() -> None:
    """The Generate page: sampling settings and the text streamed token by token.

    Driven headless by ``tests/test_lab.py`` (Streamlit's ``AppTest``).
    """
    loaded = _pick_model("g")
    digits = loaded.task == "digits"
    default = _default_prompt(loaded, "Max ( 5 3 9 ) =")
    prompt = st.text_area("Prompt", value=default, key="g_prompt", height=80)
    c1, c2, c3, c4, c5 = st.columns(5)
    temperature = c1.slider("temperature", 0.0, 2.0, 0.0 if digits else 0.8, 0.05,
                            key="g_temp", help="0: greedy (always the most probable token)")
    top_k = int(c2.number_input("top-k (0: off)", 0, value=0, key="g_topk",
                                help="sample only from the k most probable tokens"))
    top_p = c3.slider("top-p (1: off)", 0.05, 1.0, 1.0, 0.05, key="g_topp",
                      help="sample from the fewest tokens whose probabilities reach p")
    seed = int(c4.number_input("seed", 0, value=0, key="g_seed",
                               help="the same seed gives the same text in every backend"))
    n_new = int(c5.number_input("new tokens", 0, value=1 if digits else 200, key="g_n"))
    if st.button("Generate", type="primary", key="g_go"):
        pieces = models.stream_text(loaded, prompt, n_new, temperature=temperature,
                                    top_k=top_k or None, top_p=None if top_p >= 1 else top_p,
                                    seed=seed)
        text = st.write_stream(pieces)
        st.session_state.g_last = text if isinstance(text, str) else "".join(text)


# ============================================================================ Trace
def trace_page() -> None:
    """The Trace page: a pure-Python forward and backward pass, operation by operation.

    Driven headless by ``tests/test_lab.py`` (Streamlit's ``AppTest``).
    """
    source = st.radio("Model", ("a tiny fresh digits model", "a checkpoint"), horizontal=True,
                      key="x_source")
    path = _pick_checkpoint("x") if source == "a checkpoint" else None
    prompt = st.text_input("Prompt (the loss predicts each token from the ones before)",
                           value="Max ( 5 3 9 ) = 9", key="x_prompt")
    records = models.trace_pass(prompt, path)
    st.caption(f"{len(records)} operations: forward pass, then backward pass, in the pure-Python "
               "backend")
    i = st.slider("Operation", 1, len(records), 1, key="x_step") - 1
    r = records[i]
    st.markdown(f"**{r.phase}** · `{r.where}` · **{r.step}** · shape `{r.shape_text()}`")
    m = st.columns(5)
    for col, (name, value) in zip(m, (("mean", r.mean), ("std", r.std), ("min", r.min),
                                      ("max", r.max), ("non-finite", r.n_nonfinite)),
                                  strict=True):
        col.metric(name, f"{value:+.4g}" if name != "non-finite" else value)
    values = np.asarray(r.values, dtype=np.float64).reshape(r.shape or ())
    if values.ndim >= 2:
        lead = values.shape[:-2]
        picks = tuple(st.select_slider(f"index of axis {r.axes[k] if r.axes else k}",
                                       range(n), key=f"x_ax{k}_{i}") if n > 1 else 0
                      for k, n in enumerate(lead))
        shown = values[picks]  # the last two axes
        st.dataframe(shown, key="x_values")
    else:
        st.dataframe(np.atleast_1d(values)[None, :], key="x_values")
    with st.expander("all operations"):
        st.dataframe([{"#": n + 1, "phase": q.phase, "where": q.where, "step": q.step,
                       "shape": q.shape_text(), "mean": q.mean, "std": q.std}
                      for n, q in enumerate(records)], key="x_all")


# ============================================================================ Benchmark
def benchmark_page() -> None:
    """The Benchmark page: the backend benchmark at a chosen size, as a chart.

    Driven headless by ``tests/test_lab.py`` (Streamlit's ``AppTest``).
    """
    from ..bench import BACKENDS, OPS, PRESETS, _have_torch

    allowed = [b for b in BACKENDS if _have_torch() or not b.startswith("torch")]
    c1, c2, c3 = st.columns(3)
    preset = c1.selectbox("Size", list(PRESETS), key="b_preset",
                          format_func=lambda p: repr(PRESETS[p]))
    dtype = c2.selectbox("dtype", ("float32", "float64"), key="b_dtype")
    repeats = int(c3.number_input("repeats", 1, 20, 3, key="b_repeats"))
    backends = st.multiselect("Backends", allowed, default=["numpy", "numpy-fast"],
                              key="b_backends")
    ops = st.multiselect("Operations", OPS, default=["forward", "train_step"], key="b_ops")
    if st.button("Run the benchmark", type="primary", key="b_go"):
        started = time.perf_counter()
        with st.spinner("timing (round-robin over the backends)..."):
            st.session_state.b_rows = models.benchmark(preset, backends, ops, dtype=dtype,
                                                       repeats=repeats)
        st.caption(f"took {time.perf_counter() - started:.1f} s")
    rows = st.session_state.get("b_rows")
    if not rows:
        st.info("choose a size and press Run (the tiny size takes a few seconds)")
        return
    fig = go.Figure()
    for backend in dict.fromkeys(r["backend"] for r in rows):
        sub = [r for r in rows if r["backend"] == backend]
        fig.add_trace(go.Bar(x=[r["op"] for r in sub], y=[r["median_ms"] for r in sub],
                             name=backend,
                             error_y=dict(type="data", symmetric=False,
                                          array=[r["max_ms"] - r["median_ms"] for r in sub],
                                          arrayminus=[r["median_ms"] - r["min_ms"]
                                                      for r in sub])))
    fig.update_layout(title="median time per call (min-max bars)", barmode="group",
                      yaxis_title="ms", yaxis_type="log", yaxis_dtick=1, **_LAYOUT)
    st.plotly_chart(fig, key="b_chart")
    st.dataframe(rows, key="b_table")

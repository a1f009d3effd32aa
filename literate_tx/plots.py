r"""Pictures of real data: attention maps, training curves, layer statistics, run comparisons.

Every function takes numbers a model or a training run actually produced — the attention
weights of ``model.forward(..., return_weights=True)`` or ``model.run_with_cache``, the lines of a
run's ``metrics.jsonl``, the gradients of ``model.loss_and_grads`` — and returns a
:class:`matplotlib.figure.Figure`. None calls ``plt.show``; figures are created through pyplot (so
notebooks and sphinx-gallery display them) and work with the non-interactive ``Agg`` backend.
Close them with ``plt.close(fig)`` when you make many.

:func:`attention_text` draws attention in a terminal;
:func:`literate_tx.inspection.inspect_checkpoint` — behind ``literate-tx inspect`` — uses these
pictures to write a summary of a saved model.

Training compute
----------------
:func:`plot_runs` can put runs of different sizes on one axis of training compute, estimated by
:func:`literate_tx.flops.flops_per_token` (eq. :eq:`flops-per-token`).

Examples
--------
>>> import literate_tx as ltx
>>> import matplotlib.pyplot as plt
>>> cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8)
>>> logits, weights = ltx.create_model(cfg).forward([[1, 2, 3]], return_weights=True)
>>> fig = plot_attention(weights, ["a", "b", "c"])
>>> len(fig.axes)  # 2 layers x 2 heads + a colour bar
5
>>> plt.close(fig)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .flops import flops_per_token
from .inspection import activation_stats, dead_relu_fraction, gradient_norms, residual_norms

__all__ = [
    "attention_stack",
    "plot_attention",
    "attention_text",
    "read_metrics",
    "plot_metrics",
    "plot_operation_accuracy",
    "plot_layer_statistics",
    "plot_runs",
]

SHADES = " ░▒▓█"


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


# =========================================================================== attention
def attention_stack(weights, *, batch_index: int = 0) -> np.ndarray:
    r"""Attention weights of one sequence as one (L, H, T, T) array.

    Parameters
    ----------
    weights : list of (B, H, T, T) arrays, (L, B, H, T, T) array, or dict
        ``model.forward(..., return_weights=True)[1]``, or the cache of ``run_with_cache``
        (its ``blocks.{i}.attn.weights`` entries are taken).
    batch_index : int
        Which sequence of the batch.

    Returns
    -------
    (L, H, T_q, T_k) float64 ndarray

    Examples
    --------
    >>> import numpy as np
    >>> attention_stack([np.ones((2, 3, 4, 4))] * 5, batch_index=1).shape
    (5, 3, 4, 4)
    """
    if isinstance(weights, Mapping):
        layers = sorted((k for k in weights if k.startswith("blocks.") and
                         k.endswith(".attn.weights")), key=lambda k: int(k.split(".")[1]))
        if not layers:
            raise ValueError("weights is a dict without 'blocks.{i}.attn.weights' entries; pass "
                             "run_with_cache's cache or forward(..., return_weights=True)[1]")
        weights = [weights[k] for k in layers]
    arrays = [np.asarray(w, dtype=np.float64) for w in weights]
    if not arrays or any(a.ndim != 4 for a in arrays):
        raise ValueError(
            "weights must be a non-empty list of (B, H, T, T) arrays, one per layer; got shapes "
            f"{[a.shape for a in arrays]}"
        )
    B = arrays[0].shape[0]
    if not -B <= batch_index < B:
        raise ValueError(f"batch_index={batch_index} is out of range for a batch of {B}")
    return np.stack([a[batch_index] for a in arrays])  # (L, H, T, T)


def _labels(labels, T: int, name: str = "tokens_labels") -> list[str]:
    labels = [str(t) for t in labels]
    if len(labels) != T:
        raise ValueError(f"{name} has {len(labels)} labels but the weights have T={T} positions")
    return labels


def plot_attention(weights, tokens_labels: Sequence, *, batch_index: int = 0,
                   layers: Sequence[int] | None = None, heads: Sequence[int] | None = None,
                   title: str | None = None, cmap: str = "viridis"):
    r"""Attention heatmaps as a grid: one row per layer, one column per head.

    Rows of each heatmap are queries, columns keys; both are labelled with the tokens. The
    colour scale is fixed to [0, 1] so that heads can be compared; the last axis is the colour
    bar.

    Parameters
    ----------
    weights : list of (B, H, T, T) arrays or a run_with_cache dict
        Real attention weights (see :func:`attention_stack`).
    tokens_labels : sequence of str, length T
        What to write on the ticks (token strings or ids).
    batch_index : int
    layers, heads : sequence of int, optional
        A subset to draw (default all).
    title : str, optional
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
        ``len(layers) * len(heads)`` heatmaps, then the colour bar. ``fig.axes[i * n_heads + h]
        .images[0].get_array()`` is layer ``i``, head ``h``'s (T, T) matrix.

    Examples
    --------
    >>> import numpy as np, matplotlib.pyplot as plt
    >>> w = [np.tril(np.ones((1, 3, 4, 4))) / np.arange(1, 5)[:, None]]  # 1 layer, 3 heads
    >>> fig = plot_attention(w, list("abcd"))
    >>> len(fig.axes), [t.get_text() for t in fig.axes[0].get_xticklabels()]
    (4, ['a', 'b', 'c', 'd'])
    >>> plt.close(fig)
    """
    att = attention_stack(weights, batch_index=batch_index)  # (L, H, T, T)
    L, H, T_q, T_k = att.shape
    labels = _labels(tokens_labels, T_k)
    layers = list(range(L)) if layers is None else list(layers)
    heads = list(range(H)) if heads is None else list(heads)
    for name, chosen, n in (("layers", layers, L), ("heads", heads, H)):
        bad = [i for i in chosen if not 0 <= i < n]
        if bad or not chosen:
            raise ValueError(f"{name}={chosen} must be a non-empty list of indices in [0, {n})")
    plt = _pyplot()
    size = 0.28 * T_k + 1.2
    fig, axes = plt.subplots(len(layers), len(heads), squeeze=False,
                             figsize=(size * len(heads) + 1.0, size * len(layers) + 0.6),
                             constrained_layout=True)
    image = None
    for r, i in enumerate(layers):
        for c, h in enumerate(heads):
            ax = axes[r, c]
            image = ax.imshow(att[i, h], cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks(range(T_k), labels, rotation=90, fontsize=7)
            ax.set_yticks(range(T_q), labels[T_k - T_q:], fontsize=7)
            ax.set_title(f"layer {i}, head {h}", fontsize=9)
            if r == len(layers) - 1:
                ax.set_xlabel("key")
            if c == 0:
                ax.set_ylabel("query")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    if title:
        fig.suptitle(title)
    return fig


def attention_text(weights, labels: Sequence, *, shades: str = SHADES) -> str:
    r"""One head's attention as shaded characters, for a terminal.

    Each weight :math:`a \in [0, 1]` becomes ``shades[round(a * (len(shades) - 1))]``, written twice
    so that cells are about square; each row starts with its query's label.

    Parameters
    ----------
    weights : (T_q, T_k) array_like
        One head's weights (e.g. ``weights[layer][0, head]``).
    labels : sequence of str, length T_k
        Token labels; the queries are the last ``T_q`` of them.
    shades : str
        Characters from weight 0 to weight 1.

    Returns
    -------
    str
        ``T_q`` lines, each ``label |`` followed by ``2 * T_k`` characters.

    Examples
    --------
    >>> print(attention_text([[1, 0, 0], [0.5, 0.5, 0], [0, 0, 1]], ["a", "b", "c"]))
    a |██
    b |▒▒▒▒
    c |    ██
    """
    a = np.asarray(weights, dtype=np.float64)  # (T_q, T_k)
    if a.ndim != 2:
        raise ValueError(f"weights must be one head's (T_q, T_k) matrix, got shape {a.shape}")
    if len(shades) < 2:
        raise ValueError(f"shades={shades!r} needs at least two characters")
    T_q, T_k = a.shape
    labels = _labels(labels, T_k, "labels")
    shown = [lab.replace(" ", "␣").replace("\n", "⏎") for lab in labels]
    width = max(len(s) for s in shown)
    levels = np.rint(np.clip(a, 0.0, 1.0) * (len(shades) - 1)).astype(int)  # (T_q, T_k)
    lines = []
    for i in range(T_q):
        cells = "".join(shades[k] * 2 for k in levels[i])
        lines.append(f"{shown[T_k - T_q + i]:>{width}} |{cells}")
    return "\n".join(lines)


# =========================================================================== training runs
def read_metrics(path_or_records) -> list[dict[str, Any]]:
    r"""The records of a run: a ``metrics.jsonl`` file, a run folder holding one, or a list.

    Examples
    --------
    >>> read_metrics([{"step": 1, "split": "train", "loss": 2.0}])[0]["loss"]
    2.0
    """
    if isinstance(path_or_records, (str, os.PathLike)):
        path = Path(path_or_records)
        if path.is_dir():
            path = path / "metrics.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"no metrics file at {path}")
        records = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}, line {n}: not JSON ({exc})") from exc
        return records
    records = list(path_or_records)
    if not all(isinstance(r, Mapping) for r in records):
        raise ValueError("path_or_records must be a path or a list of dicts (metrics.jsonl lines)")
    return [dict(r) for r in records]


def _series(records, split: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in records if r.get("split") == split and isinstance(r.get(key), (int, float))
            and "step" in r]
    return (np.array([r["step"] for r in rows], dtype=float),
            np.array([r[key] for r in rows], dtype=float))


def _accuracy_key(records) -> str | None:
    for key in ("exact_match", "accuracy"):
        if any(r.get("split") == "val" and key in r for r in records):
            return key
    return None


def plot_metrics(path_or_records, *, title: str | None = None):
    r"""Training curves of one run: loss, validation accuracy, learning rate and gradient norm.

    Panels appear only for what the records hold: loss (train and validation) always;
    validation accuracy (``exact_match`` for digits, next-token ``accuracy`` for text);
    learning rate; gradient norm — all against the step.

    Parameters
    ----------
    path_or_records : path or list of dict
        ``<run>/metrics.jsonl``, the run folder, or its records.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> records = [{"step": s, "split": "train", "loss": 3.0 / s, "lr": 1e-3, "grad_norm": 1.0}
    ...            for s in range(1, 5)] + [{"step": 4, "split": "val", "loss": 1.0,
    ...                                      "exact_match": 0.5}]
    >>> fig = plot_metrics(records)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['loss', 'exact match', 'learning rate', 'gradient norm']
    >>> plt.close(fig)
    """
    records = read_metrics(path_or_records)
    train_steps, train_loss = _series(records, "train", "loss")
    val_steps, val_loss = _series(records, "val", "loss")
    if not train_steps.size and not val_steps.size:
        raise ValueError("the records hold no 'loss' with a 'split' of 'train' or 'val'")
    acc_key = _accuracy_key(records)
    panels = ["loss"] + ([acc_key] if acc_key else [])
    panels += [k for k in ("lr", "grad_norm") if _series(records, "train", k)[0].size]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2),
                             constrained_layout=True, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "loss":
            if train_steps.size:
                ax.plot(train_steps, train_loss, lw=0.8, alpha=0.6, label="train")
            if val_steps.size:
                ax.plot(val_steps, val_loss, "o-", ms=3, label="validation")
            ax.set_ylabel("loss")
            ax.legend()
        elif panel == acc_key:
            steps, acc = _series(records, "val", acc_key)
            ax.plot(steps, acc, "o-", ms=3, color="C2")
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel(acc_key.replace("_", " "))
        else:
            steps, values = _series(records, "train", panel)
            ax.plot(steps, values, lw=0.8, color="C3" if panel == "lr" else "C4")
            ax.set_ylabel({"lr": "learning rate", "grad_norm": "gradient norm"}[panel])
            if panel == "grad_norm" and values.size and values.min() > 0:
                ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def _per_operation(source) -> tuple[dict[str, float], str]:
    if isinstance(source, Mapping) and all(isinstance(v, (int, float)) for v in source.values()):
        return {str(k): float(v) for k, v in source.items()}, "per-operation accuracy"
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        summary = Path(source) / "summary.json"
        if summary.is_file():
            test = json.loads(summary.read_text(encoding="utf-8")).get("test", {})
            if isinstance(test.get("per_operation"), Mapping):
                return dict(test["per_operation"]), "test accuracy"
    records = read_metrics(source)
    for r in reversed(records):
        if isinstance(r.get("per_operation"), Mapping):
            where = f"{r.get('split', '')} accuracy at step {r.get('step')}"
            return dict(r["per_operation"]), where
    raise ValueError("no 'per_operation' accuracies found; pass a dict {operation: accuracy}, "
                     "a digits run folder, or its metrics.jsonl records")


def plot_operation_accuracy(source, *, title: str | None = None):
    r"""Accuracy per operation of the digits task, as bars.

    Parameters
    ----------
    source : dict, path or list of dict
        ``{operation: accuracy}``; a run folder (its ``summary.json`` test accuracies, else
        the last validation record); or ``metrics.jsonl`` records (the last with a
        ``per_operation`` dict).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axis whose bars' heights are the accuracies, in the given order.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = plot_operation_accuracy({"First": 1.0, "Max": 0.75})
    >>> [float(p.get_height()) for p in fig.axes[0].patches]
    [1.0, 0.75]
    >>> plt.close(fig)
    """
    accuracy, what = _per_operation(source)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.1 * len(accuracy) + 2.0, 3.2), constrained_layout=True)
    names = list(accuracy)
    bars = ax.bar(names, [accuracy[n] for n in names], color="C0")
    ax.bar_label(bars, labels=[f"{accuracy[n]:.0%}" for n in names], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel(what)
    ax.set_title(title or "digits task: accuracy per operation")
    return fig


# =========================================================================== layer statistics
def plot_layer_statistics(cache: Mapping[str, np.ndarray], grads: Mapping | None = None,
                          config=None, *, title: str | None = None):
    r"""Per-layer activation statistics, and gradient norms when ``grads`` are given.

    Panels: the RMS of each hook kind (``resid_pre``, ``attn.out``, ``mlp.pre_act``,
    ``mlp.out``, ``resid_post``) against the layer; the mean residual-stream norm before, inside
    and after each block; the dead and inactive ReLU fractions (when ``config.activation`` is
    ``"relu"``); the gradient norm of each layer's parameters (when ``grads`` is given).

    Parameters
    ----------
    cache : dict
        From ``model.run_with_cache``.
    grads : dict, optional
        From ``model.loss_and_grads``.
    config : ModelConfig, optional
        Enables the ReLU panel for ReLU models.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import literate_tx as ltx, matplotlib.pyplot as plt
    >>> cfg = ltx.ModelConfig(10, 8, 3, 2, 16, 8, activation="relu")
    >>> model = ltx.create_model(cfg, dtype="float64")
    >>> _, cache = model.run_with_cache([[1, 2, 3]])
    >>> _, grads = model.loss_and_grads([[1, 2, 3]], [[2, 3, 4]])
    >>> fig = plot_layer_statistics(cache, grads, cfg)
    >>> [ax.get_title() for ax in fig.axes]
    ['activation RMS', 'residual stream norm', 'ReLU units', 'gradient norm']
    >>> plt.close(fig)
    """
    from matplotlib.ticker import MaxNLocator

    stats = [r for r in activation_stats(cache) if r.layer is not None]
    if not stats:
        raise ValueError("cache has no 'blocks.{i}.*' hooks; pass run_with_cache's cache")
    relu = config is not None and config.activation == "relu"
    panels = ["rms", "resid"] + (["relu"] if relu else []) + (["grad"] if grads is not None else [])
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.3),
                             constrained_layout=True, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "rms":
            for kind in ("resid_pre", "attn.out", "mlp.pre_act", "mlp.out", "resid_post"):
                rows = [r for r in stats if r.hook.split(".", 2)[2] == kind]
                ax.plot([r.layer for r in rows], [r.rms for r in rows], "o-", ms=3, label=kind)
            ax.set_title("activation RMS")
            ax.set_ylabel("RMS")
            ax.legend(fontsize=7)
        elif panel == "resid":
            rows = residual_norms(cache)
            for j, kind in enumerate(("resid_pre", "resid_mid", "resid_post")):
                sub = [r for r in rows if r.hook.endswith(kind)]
                # a block's mid-point sits between its pre and post on the x axis
                ax.plot([r.layer + j / 2 for r in sub], [r.mean_norm for r in sub], "o", ms=4,
                        label=kind)
            ordered = sorted(rows, key=lambda r: r.layer + ("pre", "mid", "post").index(
                r.hook.rsplit("_", 1)[1]) / 2)
            ax.plot([r.layer + ("pre", "mid", "post").index(r.hook.rsplit("_", 1)[1]) / 2
                     for r in ordered], [r.mean_norm for r in ordered], "-", color="0.6", lw=0.8)
            ax.set_title("residual stream norm")
            ax.set_ylabel(r"mean $\Vert \xi_t \Vert_2$")
            ax.legend(fontsize=7)
        elif panel == "relu":
            rows = dead_relu_fraction(cache, config)
            ax.plot([r.layer for r in rows], [r.inactive for r in rows], "o-", ms=3,
                    label="inactive (u <= 0)")
            ax.plot([r.layer for r in rows], [r.dead for r in rows], "s-", ms=3,
                    label="dead (never fires)")
            ax.set_ylim(-0.02, 1.02)
            ax.set_title("ReLU units")
            ax.set_ylabel("fraction")
            ax.legend(fontsize=7)
        else:
            rows = gradient_norms(grads, by="layer")
            ax.bar(range(len(rows)), [r.norm for r in rows], color="C4")
            ax.set_xticks(range(len(rows)), [r.name for r in rows], rotation=45, fontsize=7,
                          ha="right")
            ax.set_title("gradient norm")
            ax.set_ylabel(r"$\Vert \nabla \mathcal{L} \Vert_2$")
        if panel == "resid":
            ax.set_xlabel("block (pre, mid at +0.5, post at +1)")
        elif panel != "grad":
            ax.set_xlabel("layer")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


# =========================================================================== comparing runs
def _run_flops_per_step(run) -> float | None:
    """From a trainer's run folder: batch_size x seq_len tokens per step, eq. (flops-per-token)."""
    if not isinstance(run, (str, os.PathLike)):
        return None
    folder = Path(run)
    folder = folder if folder.is_dir() else folder.parent
    for name in ("last.npz", "best.npz"):
        if (folder / name).is_file():
            from .checkpoint import read_checkpoint

            ckpt = read_checkpoint(folder / name)
            train_cfg = ckpt.metadata.get("train_config") or {}
            batch = train_cfg.get("batch_size")
            if not batch:
                return None
            T = train_cfg.get("seq_len") or ckpt.config.max_seq_len
            T = min(int(T), ckpt.config.max_seq_len)
            return flops_per_token(ckpt.config, T) * int(batch) * T
    return None


def plot_runs(runs: Mapping[str, Any], *, flops_per_step: Mapping[str, float] | None = None,
              split: str = "train", title: str | None = None):
    r"""Several runs' loss against the step, the training time and the training compute.

    Parameters
    ----------
    runs : dict of label -> run folder, metrics path or records
    flops_per_step : dict of label -> float, optional
        FLOPs of one optimiser step (e.g. ``flops_per_token(cfg, T) * batch_size * T``). For a
        run folder written by the trainer it is read from its checkpoint (``batch_size`` and
        ``seq_len`` of the training config, eq. :eq:`flops-per-token`). Runs with neither are left
        out of the compute panel, which is dropped when no run has a figure.
    split : {"train", "val"}
        Which loss to draw.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Axes: loss against step, against ``time`` (seconds of training), and against FLOPs.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> a = [{"step": s, "split": "train", "loss": 2.0 / s, "time": 0.1 * s} for s in (1, 2, 3)]
    >>> b = [{"step": s, "split": "train", "loss": 1.5 / s, "time": 0.3 * s} for s in (1, 2, 3)]
    >>> fig = plot_runs({"small": a, "big": b}, flops_per_step={"small": 1e9, "big": 4e9})
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['step', 'training time (s)', 'training FLOPs (6N + 12LTC per token)']
    >>> plt.close(fig)
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs must be a non-empty dict of label -> run folder / metrics / records")
    if split not in ("train", "val"):
        raise ValueError(f"split={split!r} is not supported; allowed: 'train', 'val'")
    flops_per_step = dict(flops_per_step or {})
    curves = {}
    for label, run in runs.items():
        records = read_metrics(run)
        steps, loss = _series(records, split, "loss")
        _, times = _series(records, split, "time")
        per_step = flops_per_step.get(label)
        if per_step is None:
            per_step = _run_flops_per_step(run)
        curves[label] = (steps, loss, times if times.size == steps.size else None, per_step)
    panels = ["step", "time"]
    if any(c[3] for c in curves.values()):
        panels.append("flops")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.3), sharey=True,
                             constrained_layout=True, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for k, (label, (steps, loss, times, per_step)) in enumerate(curves.items()):
            if panel == "step":
                x = steps
            elif panel == "time":
                if times is None:
                    continue
                x = times
            else:
                if not per_step:
                    continue
                x = steps * per_step
            ax.plot(x, loss, lw=1.0, color=f"C{k}", label=label)
        ax.set_xlabel({"step": "step", "time": "training time (s)",
                       "flops": "training FLOPs (6N + 12LTC per token)"}[panel])
        if panel == "flops":
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"{'validation' if split == 'val' else 'training'} loss")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig

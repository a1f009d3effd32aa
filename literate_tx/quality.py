r"""Time to quality: validation loss against wall-clock time, per backend, in one run.

A step time says how fast a backend computes; what a user waits for is a model of a given
quality. This measurement trains the same character-level model (a recipe of
:mod:`literate_tx.training.recipes`, ``tiny`` by default) on the same text with each backend
for the same wall-clock budget, and records the validation loss every ``budget / evals``
seconds of training:

``numpy-fast``
    :class:`~literate_tx.numpy_backend.fast.FastNumpyModel` and
    :class:`~literate_tx.numpy_backend.fast.FastAdamW` (the trainer's NumPy default);
``torch``
    the PyTorch backend, eager;
``torch-compiled``
    the same with ``TrainConfig(compile=True)`` (:func:`torch.compile` of the forward pass).

Same data, same start
    Every backend starts from the same weights (``seed``), draws the same batches (the
    trainer's data generator) and follows the same learning rate per *step*: the recipe's
    warmup, then its peak rate held constant (a cosine needs a known number of steps, and the
    backends do different numbers in the same time). The ``k``-th update is therefore the
    same update in every backend up to rounding; a faster backend simply makes more of them.
What the clock counts
    Only training: drawing the batch, the step and, for the compiled backend, the compilation
    of its first step (a real cost a user pays). Evaluations stop the clock; they score
    ``eval_batches`` fixed validation batches, the same in every backend.
Bits per character
    The loss is in nats per token; a token is a character here, so the bits per character are
    :math:`\mathcal{L} / \ln 2`.
The ratio
    Let :math:`\mathcal{L}^\star` be the last validation loss of ``torch`` (eager). For each
    backend, :math:`t(\mathcal{L}^\star)` is the training time at which its curve first
    reaches :math:`\mathcal{L}^\star` (linear interpolation between the two evaluations
    around it; ``None`` if it never does within the budget). The report gives
    :math:`t_{\text{numpy-fast}}(\mathcal{L}^\star) / t_{\text{torch}}(\mathcal{L}^\star)`:
    below 1, the NumPy speed path reaches PyTorch's quality sooner. When it does not reach it
    within the budget, the ratio of the times to the worse of the two last losses (a loss
    both reached) is reported as well.

Run it with ``literate-tx bench --time-to-quality --budget 90`` (or
``python -m literate_tx.bench --time-to-quality``): three backends of 90 s each plus their
eight evaluations each take under six minutes. As with every speed figure, only an idle
machine gives numbers worth comparing (see ``DEVELOPING.md``).

Examples
--------
>>> r = time_to_quality(budget=0.3, backends=["numpy-fast"], evals=2, verbose=False,
...                     overrides=dict(d_model=16, n_heads=2, d_ff=32, n_layers=1,
...                                    batch_size=2, seq_len=16, eval_batches=1))
>>> [c["backend"] for c in r["curves"]], r["curves"][0]["points"][0]["time"]
(['numpy-fast'], 0.0)
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = ["QUALITY_BACKENDS", "format_quality_report", "plot_quality", "time_to_quality"]

#: The backends compared, in the order they run.
QUALITY_BACKENDS: tuple[str, ...] = ("numpy-fast", "torch", "torch-compiled")


def _config(recipe: str, backend: str, out: str, seed: int, threads: int | None,
            overrides: Mapping[str, Any]):
    from .training import default_config

    fields: dict[str, Any] = dict(overrides)
    fields.update(out=out, seed=seed, threads=threads, schedule="constant", steps=10**9,
                  dtype="float32", tokenizer="char", dataset=fields.get("dataset", "default"))
    if backend == "numpy-fast":
        fields.update(backend="numpy", fast=True)
    else:
        fields.update(backend="torch", device="cpu", compile=backend == "torch-compiled")
    return default_config("text", recipe=recipe, **fields)


def _crossing(points: Sequence[Mapping[str, float]], target: float) -> float | None:
    """Training time at which the curve first reaches ``target`` (interpolated), or None."""
    for before, after in zip(points, points[1:], strict=False):
        if after["loss"] <= target:
            if before["loss"] <= target:
                return before["time"]
            share = (before["loss"] - target) / (before["loss"] - after["loss"])
            return before["time"] + share * (after["time"] - before["time"])
    return points[0]["time"] if points and points[0]["loss"] <= target else None


def _split_batch_over_threads(trainer, threads: int) -> None:
    """Give numpy-fast its own parallelism with ``threads``: the batch split over that many
    Python threads (the trainer's model uses one, see ``_model_options``), as PyTorch gets
    ``threads`` intra-op threads; the same weights, so the run is the same function."""
    from .api import create_model
    from .training.engines import _NumpyEngine

    cfg = trainer.config
    model = create_model(trainer.model_config, "numpy", params=trainer.model.parameters(),
                         dtype=cfg.dtype, fast=True, threads=threads)
    engine = _NumpyEngine(model, cfg)
    engine.dropout_rng = trainer.engine.dropout_rng
    trainer.model, trainer.engine = model, engine


def _run_one(backend: str, recipe: str, budget: float, evals: int, seed: int,
             threads: int | None, overrides: Mapping[str, Any],
             log: TextIO | None) -> dict[str, Any]:
    from .training import Trainer
    from .training.trainer import _thread_limit

    with tempfile.TemporaryDirectory(prefix="ltx-quality-") as out:
        cfg = _config(recipe, backend, out, seed, threads, overrides)
        trainer = Trainer(cfg, quiet=True)
        if backend == "numpy-fast" and threads is not None and threads > 1:
            _split_batch_over_threads(trainer, threads)
        data, engine = trainer.data, trainer.engine

        def score(elapsed: float, step: int) -> dict[str, float]:
            loss = data.evaluate(trainer.model, "val", cfg.eval_batches)["loss"]
            point = {"time": round(elapsed, 3), "step": step, "loss": loss,
                     "bits_per_char": loss / math.log(2)}
            if log is not None:
                log.write(f"  {backend:<15} {elapsed:7.1f} s  step {step:5d}  val loss "
                          f"{loss:.4f}  ({point['bits_per_char']:.3f} bits/char)\n")
                log.flush()
            return point

        points = [score(0.0, 0)]
        elapsed, step = 0.0, 0
        first_step = None
        every = budget / evals
        with _thread_limit(threads, cfg.backend):
            next_eval = every
            while elapsed < budget:
                t0 = time.perf_counter()
                x, y = data.batch(trainer.data_rng, cfg.batch_size)  # (B, T), (B, T)
                engine.step(x, y, trainer.schedule(step), step + 1)
                dt = time.perf_counter() - t0
                elapsed += dt
                step += 1
                if first_step is None:
                    first_step = dt
                if elapsed >= next_eval or elapsed >= budget:
                    points.append(score(elapsed, step))
                    next_eval = (math.floor(elapsed / every) + 1) * every
        compiled = bool(getattr(engine, "compiled", None) is not None)
        return {"backend": backend, "steps": step, "train_time": round(elapsed, 3),
                "first_step_s": round(first_step or 0.0, 3),
                "steps_per_s": round(step / elapsed, 3) if elapsed else None,
                # the rate once compiled (the first step of torch-compiled compiles)
                "steps_per_s_after_first": (round((step - 1) / (elapsed - first_step), 3)
                                            if step > 1 and elapsed > first_step else None),
                "compiled": compiled if backend == "torch-compiled" else None,
                "points": points}


def time_to_quality(*, recipe: str = "tiny", budget: float = 90.0,
                    backends: Sequence[str] = QUALITY_BACKENDS, evals: int = 8, seed: int = 0,
                    threads: int | None = 1, overrides: Mapping[str, Any] | None = None,
                    verbose: bool = True, stream: TextIO | None = None) -> dict[str, Any]:
    r"""Train each backend for ``budget`` seconds and record validation loss against time.

    Parameters
    ----------
    recipe : str
        A recipe of :mod:`literate_tx.training.recipes` (character tokens, the embedded
        *Alice* unless ``overrides`` names another ``dataset``).
    budget : float
        Seconds of training per backend (evaluations not counted).
    backends : sequence of str
        From :data:`QUALITY_BACKENDS`; ``torch`` must be among them for the ratio.
    evals : int
        Evaluations per backend after the one at time 0, every ``budget / evals`` seconds.
    seed : int
        Weights and batches (the same in every backend).
    threads : int, optional
        BLAS and PyTorch threads (the trainer's ``threads``), the same for every backend;
        above 1, numpy-fast also splits each batch over that many Python threads (its own
        parallelism, as in :mod:`literate_tx.bench`).
    overrides : mapping, optional
        Other :class:`~literate_tx.training.TrainConfig` fields (e.g. a smaller model).
    verbose : bool
        Print each evaluation to ``stream`` (default ``sys.stderr``).

    Returns
    -------
    dict
        ``curves`` (one per backend: ``points`` of ``time``, ``step``, ``loss``,
        ``bits_per_char``), ``target`` (torch's last loss), ``reach`` (seconds to the target
        per backend, or None), ``ratio_numpy_fast_to_torch``, ``common_loss`` (the worse of
        numpy-fast's and torch's last losses, which both reached) and
        ``ratio_at_common_loss`` (the ratio of their times to it), and the settings and
        machine.

    Examples
    --------
    >>> time_to_quality(backends=["jax"], verbose=False)
    Traceback (most recent call last):
    ...
    ValueError: backends=['jax'] is not allowed; choose from 'numpy-fast', 'torch', ...
    """
    import sys

    from . import bench

    bad = [b for b in backends if b not in QUALITY_BACKENDS]
    if bad or not backends:
        raise ValueError(f"backends={list(backends)!r} is not allowed; choose from "
                         + ", ".join(map(repr, QUALITY_BACKENDS)))
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
        raise ValueError(f"budget={budget!r} is not allowed; give seconds > 0")
    if isinstance(evals, bool) or not isinstance(evals, int) or evals < 1:
        raise ValueError(f"evals={evals!r} is not allowed; give an int >= 1")
    log = (stream or sys.stderr) if verbose else None
    overrides = dict(overrides or {})
    curves = []
    for backend in backends:
        if log is not None:
            log.write(f"{backend}: {budget:g} s of training, recipe {recipe!r}\n")
        curves.append(_run_one(backend, recipe, float(budget), evals, seed, threads, overrides,
                               log))
    by_name = {c["backend"]: c for c in curves}
    target = by_name["torch"]["points"][-1]["loss"] if "torch" in by_name else None
    reach = ({c["backend"]: _crossing(c["points"], target) for c in curves}
             if target is not None else {})
    ratio = None
    if reach.get("torch") and reach.get("numpy-fast") is not None:
        ratio = reach["numpy-fast"] / reach["torch"]
    # the same ratio at the loss both reached (the worse of their last losses): always defined
    common = common_ratio = None
    if "torch" in by_name and "numpy-fast" in by_name:
        common = max(by_name[b]["points"][-1]["loss"] for b in ("torch", "numpy-fast"))
        t_np = _crossing(by_name["numpy-fast"]["points"], common)
        t_torch = _crossing(by_name["torch"]["points"], common)
        if t_np is not None and t_torch:
            common_ratio = t_np / t_torch
    cfg = _config(recipe, "numpy-fast", "unused", seed, threads, overrides)
    return {
        "kind": "time-to-quality", "recipe": recipe, "budget_s": budget, "evals": evals,
        "seed": seed, "threads": threads, "overrides": overrides,
        "model": {k: getattr(cfg, k) for k in ("d_model", "n_layers", "n_heads", "d_ff",
                                                "seq_len", "batch_size", "lr", "warmup_steps")},
        "environment": bench._environment(threads or 1),
        "curves": curves, "target": target, "reach": reach,
        "ratio_numpy_fast_to_torch": ratio,
        "common_loss": common, "ratio_at_common_loss": common_ratio,
    }


def plot_quality(results: Mapping[str, Any], path: str | os.PathLike):
    r"""Draw validation loss (bits per character on the right) against seconds of training,
    one line per backend, with torch's last loss dashed; save it to ``path`` (PNG).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "q.png")
    >>> fig = plot_quality({"recipe": "tiny", "budget_s": 1, "threads": 1, "target": 2.5,
    ...     "curves": [{"backend": "torch", "points": [{"time": 0.0, "loss": 4.0},
    ...                                                {"time": 1.0, "loss": 2.5}]}]}, p)
    >>> os.path.getsize(p) > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c in results["curves"]:
        ax.plot([p["time"] for p in c["points"]], [p["loss"] for p in c["points"]],
                marker="o", markersize=3, label=c["backend"])
    if results.get("target") is not None:
        ax.axhline(results["target"], color="grey", linestyle="--", linewidth=1,
                   label="torch's last loss")
    ax.set_xlabel("seconds of training (evaluations not counted)")
    ax.set_ylabel("validation loss (nats per character)")
    right = ax.secondary_yaxis("right", functions=(lambda x: x / math.log(2),
                                                   lambda x: x * math.log(2)))
    right.set_ylabel("bits per character")
    ax.set_title(f"time to quality: recipe {results['recipe']!r}, "
                 f"{results['budget_s']:g} s per backend, {results['threads']} thread(s)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def format_quality_report(results: Mapping[str, Any]) -> str:
    r"""The result of :func:`time_to_quality` as a text table.

    Columns: steps done in the budget, steps per second, the first step's time (with
    ``torch.compile``'s compilation), steps per second after the first, the last validation
    loss and its bits per character, and :math:`t(\mathcal{L}^\star)`, the training time at
    which the backend first reached torch's last loss :math:`\mathcal{L}^\star`.

    Examples
    --------
    >>> print(format_quality_report({"recipe": "tiny", "budget_s": 1.0, "threads": 1,
    ...     "target": 2.0, "reach": {"torch": 1.0}, "ratio_numpy_fast_to_torch": None,
    ...     "curves": [{"backend": "torch", "steps": 5, "train_time": 1.0, "first_step_s": 0.2,
    ...                 "points": [{"time": 0.0, "step": 0, "loss": 4.0, "bits_per_char": 5.77},
    ...                            {"time": 1.0, "step": 5, "loss": 2.0,
    ...                             "bits_per_char": 2.885}]}]}))
    time to quality: recipe 'tiny', 1 s of training per backend, 1 thread(s)
    backend          steps  steps/s  1st step  2nd+ /s  final loss  bits/char  t(2.0000)
    torch                5     5.00    0.20 s        -      2.0000      2.885        1.0 s
    numpy-fast / torch time to torch's final loss: not measured (needs numpy-fast and torch)
    curves (training seconds: validation loss):
      torch           0: 4.000, 1: 2.000
    """
    lines = [f"time to quality: recipe {results['recipe']!r}, {results['budget_s']:g} s of "
             f"training per backend, {results['threads']} thread(s)"]
    target = results.get("target")
    head = f"t({target:.4f})" if target is not None else "t(torch's loss)"
    lines.append(f"{'backend':<15} {'steps':>6}  {'steps/s':>7}  {'1st step':>8}  "
                 f"{'2nd+ /s':>7}  {'final loss':>10}  {'bits/char':>9}  {head}")
    for c in results["curves"]:
        last = c["points"][-1]
        rate = c["steps"] / c["train_time"] if c["train_time"] else float("nan")
        t = results.get("reach", {}).get(c["backend"])
        when = f"{t:.1f} s" if t is not None else "not reached"
        then = c.get("steps_per_s_after_first")
        then = f"{then:.2f}" if then is not None else "-"
        lines.append(f"{c['backend']:<15} {c['steps']:>6}  {rate:>7.2f}  "
                     f"{c['first_step_s']:>6.2f} s  {then:>7}  {last['loss']:>10.4f}  "
                     f"{last['bits_per_char']:>9.3f}  {when:>11}")
    ratio = results.get("ratio_numpy_fast_to_torch")
    reach = results.get("reach", {})
    if ratio is not None:
        verdict = f"{ratio:.2f}"
    elif "numpy-fast" in reach and reach.get("torch"):
        verdict = "numpy-fast did not reach it within the budget"
    else:
        verdict = "not measured (needs numpy-fast and torch)"
    lines.append(f"numpy-fast / torch time to torch's final loss: {verdict}")
    if results.get("ratio_at_common_loss") is not None:
        lines.append(f"numpy-fast / torch time to the loss both reached "
                     f"({results['common_loss']:.4f}): {results['ratio_at_common_loss']:.2f}")
    lines.append("curves (training seconds: validation loss):")
    for c in results["curves"]:
        pts = ", ".join(f"{p['time']:.0f}: {p['loss']:.3f}" for p in c["points"])
        lines.append(f"  {c['backend']:<15} {pts}")
    return "\n".join(lines)

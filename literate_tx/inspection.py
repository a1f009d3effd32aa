r"""Looking inside a model: statistics of every hooked activation and of the gradients.

Every backend's ``model.run_with_cache(tokens)`` returns the logits and a dict of NumPy arrays by
hook name — ``embed.out``; per block ``blocks.{i}.resid_pre``, ``.attn.weights``, ``.attn.out``,
``.resid_mid``, ``.mlp.pre_act``, ``.mlp.out``, ``.resid_post``; ``final_norm.out`` — so the
functions here work on any backend's captures, and on hand-made dicts in tests.

What is computed
----------------
For an activation :math:`x` with :math:`n` entries (all batch items, positions and features
together), in float64:

.. math::
   :label: insp-moments

   \mu = \frac1n \sum x, \qquad \sigma^2 = \frac1n \sum (x - \mu)^2, \qquad
   \mathrm{rms} = \sqrt{\tfrac1n \textstyle\sum x^2} = \sqrt{\mu^2 + \sigma^2} .

The **residual-stream norm** of a layer is the mean over batch items and positions of the
Euclidean length :math:`\lVert \xi_{bt} \rVert_2` of the :math:`C`-vector at that position. In a
pre-LN model it grows with depth, since every block adds to it and nothing normalises it.

For a ReLU feed-forward layer with pre-activation :math:`u \in \mathbb{R}^{B \times T \times F}`
(hook ``mlp.pre_act``), a unit is *inactive* at a position when :math:`u \le 0` (ReLU outputs 0 and
passes no gradient), and **dead** when it is inactive at every position of the batch:

.. math::
   :label: insp-dead

   \text{inactive} = \frac{|\{(b,t,f) : u_{btf} \le 0\}|}{BTF}, \qquad
   \text{dead} = \frac{|\{f : u_{btf} \le 0\ \forall b, t\}|}{F} .

The **gradient norm** of a parameter :math:`W` is :math:`\lVert \nabla_W \mathcal L \rVert_2`
(Frobenius); a group's norm — all ``blocks.{i}.*`` parameters of layer :math:`i`, or ``embed.*`` —
is the root of the sum of its members' squared norms, so the groups' norms combine the same way
into the global norm that gradient clipping uses.

Every function returns a list of small frozen dataclasses, one per row; :func:`format_table`
prints any such list as an aligned table. :func:`inspect_checkpoint` — behind
``literate-tx inspect`` — runs a saved model on a prompt and writes these tables, with the
pictures of :mod:`literate_tx.plots`, into a folder.

Examples
--------
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, activation="relu")
>>> model = ltx.create_model(cfg, seed=0, dtype="float64")
>>> logits, cache = model.run_with_cache([[1, 2, 3, 4]])
>>> rows = activation_stats(cache)
>>> rows[0].hook, rows[0].shape
('embed.out', (1, 4, 8))
>>> [r.layer for r in dead_relu_fraction(cache, cfg)]
[0, 1]
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "HookStats",
    "ResidualNorm",
    "DeadUnits",
    "GradientNorm",
    "HookDifference",
    "hook_layer",
    "activation_stats",
    "residual_norms",
    "dead_relu_fraction",
    "gradient_norms",
    "compare_caches",
    "format_table",
    "inspect_checkpoint",
]

_LAYER = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True)
class HookStats:
    """Moments of one hooked activation, eq. :eq:`insp-moments`."""

    hook: str
    layer: int | None
    shape: tuple[int, ...]
    mean: float
    variance: float
    rms: float
    min: float
    max: float


@dataclass(frozen=True)
class ResidualNorm:
    """Mean and largest per-position length of the residual stream at one hook."""

    hook: str
    layer: int | None
    mean_norm: float
    max_norm: float


@dataclass(frozen=True)
class DeadUnits:
    """Inactive and dead fractions of one ReLU layer, eq. :eq:`insp-dead`."""

    layer: int
    n_units: int
    inactive: float
    dead: float


@dataclass(frozen=True)
class GradientNorm:
    """L2 norm of one parameter's (or one group's) gradient."""

    name: str
    layer: int | None
    size: int
    norm: float


@dataclass(frozen=True)
class HookDifference:
    """Largest absolute difference between two captures of the same hook."""

    hook: str
    shape: tuple[int, ...]
    max_abs_diff: float


def hook_layer(name: str) -> int | None:
    """The block index in a hook or parameter name, or None outside the blocks.

    Examples
    --------
    >>> hook_layer("blocks.12.attn.weights"), hook_layer("embed.out")
    (12, None)
    """
    match = _LAYER.match(name)
    return int(match.group(1)) if match else None


def _check_cache(cache) -> None:
    if not isinstance(cache, Mapping):
        raise ValueError(
            f"cache must be a dict of hook name -> array (the second value of "
            f"model.run_with_cache), got {type(cache).__name__}"
        )


def activation_stats(cache: Mapping[str, np.ndarray]) -> list[HookStats]:
    r"""Mean, variance, RMS, min and max of every hooked activation, eq. :eq:`insp-moments`.

    Parameters
    ----------
    cache : dict of str to ndarray
        From ``model.run_with_cache(tokens)``, any backend.

    Returns
    -------
    list of HookStats
        One row per hook, in the cache's order.

    Examples
    --------
    >>> import numpy as np
    >>> row = activation_stats({"blocks.0.mlp.out": np.array([[1.0, -1.0], [3.0, 1.0]])})[0]
    >>> row.layer, row.mean, row.variance, row.rms
    (0, 1.0, 2.0, 1.7320508075688772)
    """
    _check_cache(cache)
    rows = []
    for name, value in cache.items():
        x = np.asarray(value, dtype=np.float64)  # any shape, e.g. (B, T, C) or (B, H, T, T)
        mean = float(x.mean())
        rows.append(HookStats(name, hook_layer(name), tuple(x.shape), mean,
                              float(((x - mean) ** 2).mean()),  # eq. (insp-moments)
                              float(np.sqrt((x * x).mean())),
                              float(x.min()), float(x.max())))
    return rows


_RESIDUAL_HOOKS = ("resid_pre", "resid_mid", "resid_post")


def residual_norms(cache: Mapping[str, np.ndarray]) -> list[ResidualNorm]:
    r"""Per-position length of the residual stream before, inside and after every block.

    Parameters
    ----------
    cache : dict of str to ndarray
        With ``blocks.{i}.resid_pre`` / ``resid_mid`` / ``resid_post`` of shape (B, T, C).

    Returns
    -------
    list of ResidualNorm
        Ordered by layer, then pre, mid, post; ``mean_norm`` averages
        :math:`\lVert \xi_{bt} \rVert_2` over b and t.

    Examples
    --------
    >>> import numpy as np
    >>> cache = {"blocks.0.resid_pre": np.array([[[3.0, 4.0], [0.0, 1.0]]])}  # (1, 2, 2)
    >>> residual_norms(cache)
    [ResidualNorm(hook='blocks.0.resid_pre', layer=0, mean_norm=3.0, max_norm=5.0)]
    """
    _check_cache(cache)
    names = [n for n in cache
             if hook_layer(n) is not None and n.split(".", 2)[2] in _RESIDUAL_HOOKS]
    names.sort(key=lambda n: (hook_layer(n), _RESIDUAL_HOOKS.index(n.split(".", 2)[2])))
    rows = []
    for name in names:
        h = np.asarray(cache[name], dtype=np.float64)  # (B, T, C)
        lengths = np.sqrt((h * h).sum(axis=-1))  # (B, T)
        rows.append(ResidualNorm(name, hook_layer(name), float(lengths.mean()),
                                 float(lengths.max())))
    return rows


def dead_relu_fraction(cache: Mapping[str, np.ndarray], config=None) -> list[DeadUnits]:
    r"""Inactive and dead ReLU units per layer, eq. :eq:`insp-dead`, from ``mlp.pre_act <= 0``.

    Parameters
    ----------
    cache : dict of str to ndarray
        With ``blocks.{i}.mlp.pre_act`` of shape (B, T, F).
    config : ModelConfig, optional
        When given, checked to have ``activation="relu"`` (for other activations a negative
        pre-activation does not silence the unit).

    Returns
    -------
    list of DeadUnits
        One row per layer.

    Examples
    --------
    Unit 0 fires once, unit 1 never: half the entries are inactive and one unit of two is dead.

    >>> import numpy as np
    >>> u = np.array([[[1.0, -1.0], [-2.0, -2.0]]])  # (B=1, T=2, F=2)
    >>> dead_relu_fraction({"blocks.0.mlp.pre_act": u})
    [DeadUnits(layer=0, n_units=2, inactive=0.75, dead=0.5)]
    """
    _check_cache(cache)
    if config is not None and config.activation != "relu":
        raise ValueError(
            f"dead_relu_fraction needs a ReLU model, but config.activation="
            f"{config.activation!r}; allowed: 'relu'"
        )
    rows = []
    for name, value in cache.items():
        if hook_layer(name) is None or not name.endswith(".mlp.pre_act"):
            continue
        u = np.asarray(value)  # (B, T, F)
        off = u <= 0  # (B, T, F), ReLU outputs 0 and passes no gradient
        dead_units = off.reshape(-1, u.shape[-1]).all(axis=0)  # (F,), off at every position
        rows.append(DeadUnits(hook_layer(name), int(u.shape[-1]), float(off.mean()),
                              float(dead_units.mean())))
    if not rows:
        raise ValueError("cache has no 'blocks.{i}.mlp.pre_act' hook; pass run_with_cache's dict")
    return sorted(rows, key=lambda r: r.layer)


def _group(name: str) -> str:
    layer = hook_layer(name)
    return f"blocks.{layer}" if layer is not None else name.split(".", 1)[0]


def gradient_norms(grads: Mapping[str, np.ndarray], *, by: str = "parameter") -> list[GradientNorm]:
    r"""L2 norms of the gradients from ``model.loss_and_grads``, per parameter or per layer.

    Parameters
    ----------
    grads : dict of str to ndarray
        Canonical parameter names to gradients.
    by : {"parameter", "layer"}
        ``"layer"`` groups ``blocks.{i}.*`` into ``blocks.{i}`` and other names by their first
        component (``embed``, ``final_norm``, ``lm_head``), combining norms as
        :math:`\sqrt{\sum \lVert g \rVert^2}`.

    Returns
    -------
    list of GradientNorm
        In the order of ``grads`` (groups in order of first appearance).

    Examples
    --------
    >>> import numpy as np
    >>> g = {"embed.tokens": np.array([[3.0, 4.0]]), "blocks.0.attn.w_q": np.array([[1.0]]),
    ...      "blocks.0.mlp.w_up": np.array([[2.0, 2.0]])}
    >>> [(r.name, r.norm) for r in gradient_norms(g)]
    [('embed.tokens', 5.0), ('blocks.0.attn.w_q', 1.0), ('blocks.0.mlp.w_up', 2.8284271247461903)]
    >>> [(r.name, r.size, r.norm) for r in gradient_norms(g, by="layer")]
    [('embed', 2, 5.0), ('blocks.0', 3, 3.0)]
    """
    if not isinstance(grads, Mapping):
        raise ValueError(
            f"grads must be a dict of parameter name -> array, got {type(grads).__name__}"
        )
    if by not in ("parameter", "layer"):
        raise ValueError(f"by={by!r} is not supported; allowed: 'parameter', 'layer'")
    squares: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for name, value in grads.items():
        g = np.asarray(value, dtype=np.float64)
        key = name if by == "parameter" else _group(name)
        squares[key] = squares.get(key, 0.0) + float((g * g).sum())
        sizes[key] = sizes.get(key, 0) + int(g.size)
    return [GradientNorm(key, hook_layer(key + "."), sizes[key], math.sqrt(sq))
            for key, sq in squares.items()]


def compare_caches(a: Mapping[str, np.ndarray],
                   b: Mapping[str, np.ndarray]) -> list[HookDifference]:
    r"""Largest absolute difference hook by hook, e.g. between two backends' captures.

    Raises
    ------
    ValueError
        If the hook names or a hook's shape differ.

    Examples
    --------
    >>> import numpy as np
    >>> compare_caches({"embed.out": np.zeros(2)}, {"embed.out": np.array([0.0, 0.5])})
    [HookDifference(hook='embed.out', shape=(2,), max_abs_diff=0.5)]
    """
    _check_cache(a)
    _check_cache(b)
    if set(a) != set(b):
        raise ValueError(
            f"the captures have different hooks: only in the first {sorted(set(a) - set(b))}, "
            f"only in the second {sorted(set(b) - set(a))}"
        )
    rows = []
    for name in a:
        x, y = np.asarray(a[name], dtype=np.float64), np.asarray(b[name], dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"hook {name!r} has shape {x.shape} in the first capture and "
                             f"{y.shape} in the second")
        rows.append(HookDifference(name, tuple(x.shape),
                                   float(np.abs(x - y).max()) if x.size else 0.0))
    return rows


def format_table(rows: Sequence, *, floatfmt: str = ".4g") -> str:
    r"""An aligned plain-text table of dataclass rows (one column per field).

    Examples
    --------
    >>> print(format_table([GradientNorm("embed", None, 2, 5.0),
    ...                     GradientNorm("blocks.0", 0, 3, 3.0)]))
    name      layer  size  norm
    embed     -      2     5
    blocks.0  0      3     3
    """
    rows = list(rows)
    if not rows:
        return ""
    if not all(dataclasses.is_dataclass(r) for r in rows):
        raise ValueError("format_table needs rows that are dataclass instances (e.g. HookStats)")
    names = [f.name for f in dataclasses.fields(rows[0])]

    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return format(value, floatfmt)
        if isinstance(value, tuple):
            return "x".join(map(str, value))
        return str(value)

    table = [names] + [[cell(getattr(r, n)) for n in names] for r in rows]
    widths = [max(len(line[j]) for line in table) for j in range(len(names))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in table)


# =========================================================================== a checkpoint
def _token_labels(tokenizer, ids: list[int]) -> list[str]:
    if tokenizer is None:
        return [str(i) for i in ids]
    return [tokenizer.decode([i]) for i in ids]


def inspect_checkpoint(checkpoint_path, prompt: str, out_dir, *, backend: str = "numpy",
                       tokenizer=None) -> list[Path]:
    r"""Run a saved model on ``prompt`` and write what it computes into ``out_dir``.

    The prompt is encoded with ``tokenizer`` if given, else with the tokenizer the trainer
    stored in the checkpoint's metadata (key ``"tokenizer"``), else read as space-separated token
    ids. The model runs ``run_with_cache`` once and three files are written:

    * ``attention.png`` — every layer's and head's attention weights
      (:func:`literate_tx.plots.plot_attention`);
    * ``statistics.png`` — per-layer activation statistics
      (:func:`literate_tx.plots.plot_layer_statistics`);
    * ``summary.txt`` — the config, the tokens, the statistics tables of this module and every
      head's attention as text (:func:`literate_tx.plots.attention_text`).

    The pictures need matplotlib (the ``[lab]`` extra).

    Parameters
    ----------
    checkpoint_path : path
        Written by :func:`literate_tx.save_checkpoint` (e.g. the trainer's ``last.npz``).
    prompt : str
    out_dir : path
        Created if missing; checked before the model runs.
    backend : {"numpy", "python", "torch"}
    tokenizer : object with ``encode`` and ``decode``, optional

    Returns
    -------
    list of pathlib.Path
        ``[attention.png, statistics.png, summary.txt]`` inside ``out_dir``, each written
        atomically.

    Raises
    ------
    NotADirectoryError, OSError
        ``out_dir`` is a file, lies under one, or cannot be created or written (the message
        names it), before anything is computed.

    Examples
    --------
    >>> import os, tempfile, literate_tx as ltx
    >>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
    >>> folder = tempfile.mkdtemp()
    >>> ltx.save_checkpoint(os.path.join(folder, "m.npz"), cfg, ltx.init_params(cfg))
    >>> paths = inspect_checkpoint(os.path.join(folder, "m.npz"), "1 2 3", folder)
    >>> [p.name for p in paths]
    ['attention.png', 'statistics.png', 'summary.txt']
    """
    import matplotlib.pyplot as plt

    from .checkpoint import atomic_write, prepare_output_folder
    from .plots import attention_stack, attention_text, plot_attention, plot_layer_statistics
    from .training import load_trained

    out = prepare_output_folder(out_dir, field="out_dir")  # before any work

    # reads the file with read_checkpoint, and the trainer's tokenizer from its metadata
    model, stored_tokenizer, _, _ = load_trained(checkpoint_path, backend=backend, dtype="float64")
    cfg = model.config
    tokenizer = stored_tokenizer if tokenizer is None else tokenizer
    if tokenizer is not None:
        ids = [int(i) for i in tokenizer.encode(prompt)]
    else:
        try:
            ids = [int(t) for t in prompt.split()]
        except ValueError:
            raise ValueError(
                f"prompt={prompt!r}: the checkpoint stores no tokenizer, so the prompt must be "
                "space-separated token ids (e.g. '1 5 2'), or pass tokenizer="
            ) from None
    if not ids:
        raise ValueError(f"prompt={prompt!r} encodes to no tokens; give a longer prompt")
    if len(ids) > cfg.max_seq_len:
        raise ValueError(f"prompt encodes to {len(ids)} tokens but max_seq_len="
                         f"{cfg.max_seq_len}; shorten it")
    logits, cache = model.run_with_cache([ids])
    labels = _token_labels(tokenizer, ids)
    paths = [out / "attention.png", out / "statistics.png", out / "summary.txt"]
    for path, fig in ((paths[0], plot_attention(cache, labels, title=f"attention on {prompt!r}")),
                      (paths[1], plot_layer_statistics(cache, None, cfg,
                                                       title=f"activations on {prompt!r}"))):
        try:
            atomic_write(path, lambda f, fig=fig: fig.savefig(f, format="png", dpi=110))
        finally:
            plt.close(fig)
    next_id = int(np.argmax(logits[0, -1]))
    att = attention_stack(cache)  # (L, H, T, T)
    lines = [f"checkpoint: {checkpoint_path}", f"backend: {backend}",
             f"config: {json.dumps(cfg.to_dict(), sort_keys=True)}",
             f"prompt: {prompt!r}", f"token ids: {ids}", f"tokens: {labels}",
             f"greedy next token: {next_id} ({_token_labels(tokenizer, [next_id])[0]!r})", "",
             "activation statistics", format_table(activation_stats(cache)), "",
             "residual stream norms", format_table(residual_norms(cache)), ""]
    if cfg.activation == "relu":
        lines += ["ReLU units", format_table(dead_relu_fraction(cache, cfg)), ""]
    for i in range(att.shape[0]):
        for h in range(att.shape[1]):
            lines += [f"attention, layer {i}, head {h} (rows: queries, columns: keys)",
                      attention_text(att[i, h], labels), ""]
    atomic_write(paths[2], lambda f: f.write("\n".join(lines).encode("utf-8")))
    return paths

"""Diagrams of the block and of the model, drawn with matplotlib while the site builds."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

COLORS = {"norm": "#f6d8ae", "attn": "#a8d5e2", "mlp": "#b8e0b0", "embed": "#ddd",
          "head": "#e8c6e8", "add": "#fff"}


def _box(ax, x, y, text, kind, w=2.6, h=0.55):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                fc=COLORS[kind], ec="k", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def _arrow(ax, start, end, **kw):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, lw=1, **kw))


def _add(ax, x, y):
    ax.add_patch(plt.Circle((x, y), 0.17, fc="white", ec="k", lw=1))
    ax.text(x, y, "+", ha="center", va="center", fontsize=11)


def block_diagram(ax=None):
    """A pre-norm block: two residual branches, each behind a LayerNorm."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 5.2), layout="constrained")
    x_main, x_br = 0.0, 2.2
    _arrow(ax, (x_main, 0.0), (x_main, 1.83))
    ax.text(x_main - 0.15, 0.1, "$h$ (B, T, C)", ha="right", fontsize=9)
    # attention branch
    _arrow(ax, (x_main, 0.5), (x_br, 0.5), connectionstyle="arc3,rad=0")
    _box(ax, x_br, 0.9, "LayerNorm", "norm")
    _box(ax, x_br, 1.6, "causal multi-head\nattention", "attn", h=0.7)
    _arrow(ax, (x_br, 0.5), (x_br, 0.62))
    _arrow(ax, (x_br, 1.18), (x_br, 1.25))
    _arrow(ax, (x_br, 1.95), (x_main + 0.17, 2.0))
    _add(ax, x_main, 2.0)
    _arrow(ax, (x_main, 2.17), (x_main, 3.73))
    # MLP branch
    _arrow(ax, (x_main, 2.4), (x_br, 2.4))
    _box(ax, x_br, 2.8, "LayerNorm", "norm")
    _box(ax, x_br, 3.5, "MLP: $W_{down}\\,\\mathrm{gelu}(W_{up}\\,\\cdot)$", "mlp", h=0.6)
    _arrow(ax, (x_br, 2.4), (x_br, 2.52))
    _arrow(ax, (x_br, 3.08), (x_br, 3.2))
    _arrow(ax, (x_br, 3.8), (x_main + 0.17, 3.9))
    _add(ax, x_main, 3.9)
    _arrow(ax, (x_main, 4.07), (x_main, 4.6))
    ax.text(x_main - 0.15, 4.45, "$h'$ (B, T, C)", ha="right", fontsize=9)
    ax.text(x_main - 0.25, 1.0, "residual\npath", ha="right", fontsize=8, color="0.4")
    ax.set_xlim(-1.6, 3.7)
    ax.set_ylim(-0.2, 4.8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("One pre-norm transformer block", fontsize=10)
    return ax


def model_diagram(L: int = 2, ax=None):
    """The GPT: embeddings, L blocks, a final norm, the head, the loss."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 5.2), layout="constrained")
    rows = [("token ids $x$  (B, T)", None),
            ("$E[x] + P$: embeddings", "embed")]
    rows += [(f"block {i}", "attn") for i in range(L)]
    rows += [("final LayerNorm", "norm"), ("$\\cdot\\,W_{out}$: logits (B, T, V)", "head"),
             ("cross-entropy with the next ids", "head")]
    for i, (text, kind) in enumerate(rows):
        y = 0.9 * i
        if kind is None:
            ax.text(0, y, text, ha="center", va="center", fontsize=9)
        else:
            _box(ax, 0, y, text, kind, w=3.0, h=0.5)
        if i:
            _arrow(ax, (0, y - 0.9 + (0.12 if i == 1 else 0.27)), (0, y - 0.27))
    ax.set_xlim(-1.8, 1.8)
    ax.set_ylim(-0.5, 0.9 * len(rows) - 0.4)
    ax.axis("off")
    ax.set_title(f"The GPT of step 5 ({L} blocks)", fontsize=10)
    return ax

"""
Tracing one forward and backward pass in pure Python
=====================================================

The pure-Python backend computes with lists of floats and :mod:`math` only, so every line can
be read — and, with *trace mode*, every line can report what it produced. This example runs one
forward pass and one backward pass of a tiny model with a
:class:`~literate_tx.python_backend.trace.Trace` collecting a record per step: where it
happened, its shape (with the axis symbols of the :doc:`notation page </notation>`) and the
mean, standard deviation, minimum and maximum of its entries.

We then plot the standard deviation of every step, through the layers, to see how the signal
and the gradient travel through the network at initialisation.
"""

# %%
# A tiny model with trace mode switched on
# ----------------------------------------
# ``trace=`` takes ``True`` (log each step), a callable, or a
# :class:`~literate_tx.python_backend.trace.Trace`, which keeps the records in ``.records``.
# Four layers of width 16 are enough to see a pattern and still run in well under a second.
import numpy as np

import literate_tx as ltx
from literate_tx.python_backend.trace import Trace

cfg = ltx.ModelConfig(
    vocab_size=16, d_model=16, n_layers=4, n_heads=2, d_ff=32, max_seq_len=8,
    norm="layernorm", residual="pre", activation="gelu", position="learned",
)  # fmt: skip
trace = Trace()
model = ltx.create_model(cfg, backend="python", seed=0, dtype="float64", trace=trace)
print(model)

# %%
# One training example: predict the next token
# --------------------------------------------
# ``loss_and_grads`` runs the forward pass (one record per step), the loss, and the backward
# pass (the gradient reaching each step, then every parameter's gradient).
tokens = np.array([[1, 5, 2, 7, 3, 9]])
targets = np.array([[5, 2, 7, 3, 9, 4]])
loss, grads = model.loss_and_grads(tokens, targets)
print(f"loss = {loss:.4f}")
print(f"log V = {np.log(cfg.vocab_size):.4f}: the loss of a model that knows nothing")
print(f"{len(trace)} trace records")

# %%
# The forward pass, step by step
# ------------------------------
# ``print(trace)`` shows every record as a table (phase, place, step, shape, mean, standard
# deviation, minimum, maximum). To fit this page we print four of those columns, grouped by
# place, for the embedding, the first block and the end of the network. Look at the standard
# deviations: the embedding is small (``init_std=0.02``), each norm output has a standard
# deviation of almost exactly 1, and the attention weights of each row sum to one, so their
# mean is :math:`1/T`.


def show(records):
    """Step, shape, mean and standard deviation of each record, grouped by place."""
    print(f"{'step':<43}{'shape':<21}{'mean':>10}{'std':>9}")
    where = None
    for r in records:
        if r.where != where:
            where = r.where
            print(f"[{where}]")
        print(f"  {r.step:<41}{r.shape_text():<21}{r.mean:>+10.2g}{r.std:>9.3g}")


show(r for r in trace.records if r.phase == "forward"
     and r.where in ("embed", "block 0", "final_norm", "lm_head", "loss"))

# %%
# The backward pass
# -----------------
# The backward records run in the opposite order: the gradient of the logits first, then the
# gradient reaching each step of each block, from the last block to the first. Note how small
# the gradients of the queries and keys are at initialisation: with tiny scores, the softmax is
# almost uniform and barely responds to them.
show(r for r in trace.records if r.phase == "backward"
     and r.where in ("loss", "lm_head", "final_norm", "block 3"))

# %%
# Parameter gradients agree with the NumPy backend
# ------------------------------------------------
# The same weights in the NumPy reference give the same loss and gradients: the trace reports
# what the very function proven equal by the test suite computes.
reference = ltx.create_model(cfg, backend="numpy", params=model.parameters(),
                             dtype="float64")
ref_loss, ref_grads = reference.loss_and_grads(tokens, targets)
worst = max(float(np.max(np.abs(grads[k] - ref_grads[k]))) for k in grads)
print(f"|loss difference| = {abs(loss - ref_loss):.1e}")
print(f"largest gradient difference = {worst:.1e}")

# %%
# The signal and the gradient through the layers
# ----------------------------------------------
# Each record carries the standard deviation of its entries. Plotting it for the residual
# stream (forward) and for the gradient reaching each block's input (backward) shows the two
# signals a deep network must keep in range. With pre-norm blocks the residual stream grows
# slowly, as each block adds its branch, while the gradient passes back through the identity
# paths almost unchanged.
import matplotlib.pyplot as plt

forward_steps = [r for r in trace.records
                 if r.phase == "forward" and r.where != "loss"]
backward_steps = [r for r in trace.records
                  if r.phase == "backward" and r.where not in ("grads", "loss")]

# One colour per place, the same in both panels.
places = list(dict.fromkeys(r.where for r in forward_steps))
shades = plt.cm.viridis(np.linspace(0, 0.9, len(places)))  # (n_places, 4) RGBA
colors = dict(zip(places, shades, strict=True))

fig, axes = plt.subplots(2, 1, figsize=(9, 7), layout="constrained")
for ax, steps, title in (
    (axes[0], forward_steps, "forward: std of each step's output"),
    (axes[1], backward_steps, "backward: std of the gradient reaching each step"),
):
    for where in dict.fromkeys(r.where for r in steps):
        idx = [i for i, r in enumerate(steps) if r.where == where]
        ax.scatter(idx, [steps[i].std for i in idx], color=colors[where], label=where,
                   s=18)
    ax.plot([r.std for r in steps], color="0.8", lw=0.8, zorder=0)
    ax.set_yscale("log")
    ax.set_ylabel("standard deviation")
    ax.set_title(title)
axes[1].set_xlabel("step of the pass, in order")
# One legend for both panels, above them, so that it hides no point.
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncol=7,
           fontsize=8)
plt.show()

# %%
# The residual stream alone
# -------------------------
# Picking out the records named "residual stream after mlp" (one per block) gives the
# standard deviation of the residual stream after each block, the quantity the
# :doc:`architecture ablation <plot_architecture_ablation>` compares across layouts.
stream = [r.std for r in trace.records
          if r.phase == "forward" and r.step == "residual stream after mlp"]
grad_in = [r.std for r in trace.records
           if r.phase == "backward" and r.step == "d block input"][::-1]
for layer, (s, g) in enumerate(zip(stream, grad_in, strict=True)):
    print(f"block {layer}: residual std {s:.4f}   gradient std at block input {g:.4f}")

# %%
# Conclusion
# ----------
# Trace mode turns the pure-Python backend into a microscope: every intermediate value of a
# pass, named and measured, with no change to the code that computes it (and no cost when it
# is off). See :mod:`literate_tx.python_backend.trace` for the API and
# :mod:`literate_tx.python_backend.model` for the model it instruments; the derivation of each
# step is in :doc:`/derived/index`.

"""
Inside a trained model: attention, activations and gradients
============================================================

We train a small transformer on the digits task (``Max ( 5 3 9 ) = 9``) for a few seconds, then
look inside it with one call, ``model.run_with_cache(tokens)``, which every backend provides.
From its captures we draw the attention of every head, print per-hook statistics, count dead
ReLU units, and compare gradient norms across layers — all with :mod:`literate_tx.inspection`
and :mod:`literate_tx.plots`, all on the weights this script trains.
"""

# %%
# Training a small model
# ----------------------
# Two layers of width 32 with ReLU feed-forward layers, trained with the package's trainer for
# 400 steps. What to look for: the validation exact match climbs well above chance (one digit
# in ten).
import tempfile

from literate_tx.training import TrainConfig, load_trained, train

run = tempfile.mkdtemp()
config = TrainConfig(
    task="digits", steps=400, batch_size=32, d_model=32, n_layers=2, n_heads=2, d_ff=64,
    activation="relu", lr=3e-3, warmup_steps=40, n_train=2000, n_val=200, n_test=200,
    eval_every=100, out=run, seed=0,
)
result = train(config, quiet=True)
print("test exact match:", result.metrics["test"]["exact_match"])

# %%
# The training curves
# -------------------
# :func:`~literate_tx.plots.plot_metrics` reads the run's ``metrics.jsonl``. What to look for:
# the loss starts near :math:`\ln 20 \approx 3` (a uniform guess over the vocabulary) and falls
# steadily, the validation exact match rises with it, and the gradient norm grows as the model
# leaves its small initialisation.
from literate_tx.plots import plot_metrics, plot_operation_accuracy

fig = plot_metrics(run, title="digits, 2 layers, d_model 32")

# %%
# Which operations did it learn?
# ------------------------------
# The test accuracy broken down by operation. What to look for: which operations lag. In a run
# this short, the ones that read a fixed position (``First``, ``Second``) are usually nearly
# solved before those that must compare every digit (``Max``, ``Min``).
fig = plot_operation_accuracy(run)

# %%
# Capturing every intermediate value
# ----------------------------------
# ``run_with_cache`` returns the logits and a dict of arrays by hook name. We load the trained
# checkpoint in float64 and feed one example.
model, tokenizer, _, _ = load_trained(result.last_checkpoint, dtype="float64")
prompt = "Max ( 5 3 9 ) ="
ids = tokenizer.encode(prompt)
labels = [tokenizer.decode([i]) for i in ids]
logits, cache = model.run_with_cache([ids])
print("predicted answer:", tokenizer.decode([int(logits[0, -1].argmax())]))
print(f"{len(cache)} hooks, the first five:")
for name in list(cache)[:5]:
    print("   ", name)

# %%
# Attention of every head
# -----------------------
# One row per layer, one column per head; rows are queries, columns keys. What to look for: in
# the last layer the ``=`` query (bottom row), where the answer is predicted, puts most of its
# weight on the digit it has to copy.
from literate_tx.plots import attention_text, plot_attention

fig = plot_attention(cache, labels, title=f"attention on {prompt!r} (trained weights)")
print(attention_text(cache["blocks.1.attn.weights"][0, 0], labels))

# %%
# Statistics of every hook
# ------------------------
# Mean, variance and RMS of each captured activation, as a table. What to look for: the RMS of
# the residual stream (``resid_*``) grows from block to block, as each block adds its branch,
# and the final norm rescales it to the order of its learned gain.
from literate_tx.inspection import activation_stats, dead_relu_fraction, format_table

print(format_table(activation_stats(cache)))
print()
print(format_table(dead_relu_fraction(cache, model.config)))

# %%
# Activations and gradients per layer
# -----------------------------------
# The gradient norms come from ``model.loss_and_grads`` on a batch of the task's training data.
# What to look for: most ReLU pre-activations are negative at any one position, yet over a
# batch of 64 examples hardly any unit is dead (silent everywhere); the residual norm climbs
# through every block; and the gradient reaching the embedding is not smaller than the blocks'
# — the pre-LN residual path carries it down undiminished.
import numpy as np

from literate_tx.data import DigitsTask
from literate_tx.plots import plot_layer_statistics

task = DigitsTask()
examples = task.make_splits(64, 8, 8, seed=1).train
x, y = task.to_arrays(examples)  # (N, T) inputs and answer-only targets
loss, grads = model.loss_and_grads(x, y)
print(f"loss on 64 training examples: {loss:.3f}")
_, batch_cache = model.run_with_cache(x)
fig = plot_layer_statistics(batch_cache, grads, model.config,
                            title="trained digits model")
resid_norms = [np.linalg.norm(batch_cache[f"blocks.{i}.resid_post"], axis=-1).mean()
               for i in range(2)]  # mean over (N, T) of each position's norm
print("mean residual norm after each block:", [round(float(n), 3) for n in resid_norms])

# %%
# Conclusion
# ----------
# Every backend's ``run_with_cache`` gives the same captures, so the same inspection code
# works on the pure-Python, NumPy and PyTorch models. The statistics are in
# :mod:`literate_tx.inspection` (:func:`~literate_tx.inspection.activation_stats`,
# :func:`~literate_tx.inspection.residual_norms`,
# :func:`~literate_tx.inspection.dead_relu_fraction`,
# :func:`~literate_tx.inspection.gradient_norms`); the pictures in :mod:`literate_tx.plots`
# (:func:`~literate_tx.plots.plot_attention`, :func:`~literate_tx.plots.plot_layer_statistics`,
# :func:`~literate_tx.plots.plot_metrics`); ``literate-tx inspect CHECKPOINT --prompt TEXT``
# writes them for any saved model (:func:`~literate_tx.inspection.inspect_checkpoint`).

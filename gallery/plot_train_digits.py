"""
Training on the digit-operations task
=====================================

A small transformer learns five operations on a list of digits — ``First``, ``Second``,
``Last``, ``Max`` and ``Min`` — from examples such as ``Max ( 2 8 5 ) = 8``. The task has one
right answer per question, so we can score it exactly, operation by operation, on a held-out
test set; and it can only be solved by *attending* to the right digit, so the trained
attention weights are easy to read.

We train with the NumPy backend through :class:`literate_tx.training.Trainer`, plot the loss
curves and the test accuracy per operation, and then ask whether the model looks at the largest
digit when it answers a ``Max`` question.

To keep the docs build fast this uses three digits per example and 400 steps (3 to 5 s of
training measured on a 2-core CPU, with the NumPy backend's speed path, the trainer's default);
``literate-tx train --task digits`` runs the full recipe (three to six digits, 1000 steps), which
reaches at least 99% on every operation. The run is seeded (``seed=0``, the default), so running
the script again gives the same numbers and curves; only the timing varies.
"""

# %%
# Training
# --------
# Two layers of width 64 with four heads each, AdamW with a linear warmup and a cosine decay,
# batches of 64 questions. Only the answer position has a target, so the training loss is the
# cross-entropy of the answer alone. Every 50 steps the trainer scores the validation split by
# greedy exact match. Everything it logs is also in ``metrics.jsonl`` in the run folder.
import tempfile

from literate_tx.training import TrainConfig, Trainer

config = TrainConfig(
    task="digits", backend="numpy", steps=400, batch_size=64, lr=3e-3, warmup_steps=50,
    d_model=64, n_layers=2, n_heads=4, d_ff=256, n_digits=3, n_train=3000, n_val=500,
    n_test=1000, eval_every=50, out=tempfile.mkdtemp(),
)
trainer = Trainer(config, quiet=True)
result = trainer.train()
print(f"{result.steps} steps in {result.wall_time:.1f} s")
print(f"test exact match: {result.metrics['test']['exact_match']:.1%}")

# %%
# Loss curves
# -----------
# What to look for: the training loss (one batch per point, so noisy) and the validation loss
# fall together; there is no gap, since every test question is new but the *rule* is the same.
# Accuracy jumps once the model has found which digit each operation needs.
import matplotlib.pyplot as plt
import numpy as np

train_rows = [r for r in trainer.history if r["split"] == "train"]
val_rows = [r for r in trainer.history if r["split"] == "val"]
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
steps = np.array([r["step"] for r in train_rows])
losses = np.array([r["loss"] for r in train_rows])
ax_loss.plot(steps, losses, color="0.75", lw=0.8, label="train (per batch)")
smooth = np.convolve(losses, np.ones(20) / 20, mode="valid")
ax_loss.plot(steps[19:], smooth, color="C0", label="train (20-step mean)")
val_steps = [r["step"] for r in val_rows]
ax_loss.plot(val_steps, [r["loss"] for r in val_rows], "o-", color="C1",
             label="validation")
ax_loss.set(yscale="log", xlabel="step", ylabel="cross-entropy of the answer",
            title="Loss")
ax_loss.legend()
for op in val_rows[0]["per_operation"]:
    ax_acc.plot(val_steps, [r["per_operation"][op] for r in val_rows], "o-", label=op)
ax_acc.set(xlabel="step", ylabel="validation exact match", ylim=(0, 1.02),
           title="Accuracy per operation")
ax_acc.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %%
# Test accuracy per operation
# ---------------------------
# What to look for: every bar close to 1 on questions the model never saw. ``First`` and
# ``Last`` need a fixed position, ``Second`` a position relative to ``(``, while ``Max`` and
# ``Min`` need a comparison of all digits. The validation curves above show that this does not
# make them slow starters: at step 50 ``Min`` is ahead of every other operation. But ``Max``
# and ``Min`` are the last to reach 100% (at step 300, where the three positional operations
# got there by step 150), and they are the only ones that miss a few test questions here.
per_op = result.metrics["test"]["per_operation"]
fig, ax = plt.subplots(figsize=(6, 3.2))
bars = ax.bar(list(per_op), list(per_op.values()), color="C2")
ax.bar_label(bars, labels=[f"{v:.1%}" for v in per_op.values()])
ax.set(ylim=(0, 1.1), ylabel="test exact match",
       title=f"Held-out test set ({config.n_test} questions)")
fig.tight_layout()
plt.show()

# %%
# Where does the model look when it answers ``Max``?
# --------------------------------------------------
# The answer is read from the logits at the ``=`` position. ``model.forward(...,
# return_weights=True)`` returns the attention weights of every layer, shape (B, H, T, T);
# the row of the ``=`` query says which positions each head reads from. These are the trained
# weights, not an illustration.
from literate_tx.data import DigitsExample

task, model = trainer.data.task, trainer.model
example = DigitsExample("Max", (2, 8, 5))
tokens, _ = task.to_arrays([example])
logits, weights = model.forward(tokens, return_weights=True)
labels = task.decode(tokens[0]).split()
answer_at = int(task.answer_positions([example])[0])
print("question:", example.prompt, "-> model says", task.greedy_predictor(
    lambda t: logits)([example])[0])

fig, axes = plt.subplots(2, 4, figsize=(12, 6.2), sharex=True, sharey=True)
for layer in range(2):
    for head in range(4):
        ax = axes[layer, head]
        ax.imshow(weights[layer][0, head], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"layer {layer}, head {head}", fontsize=9)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.add_patch(plt.Rectangle((-0.5, answer_at - 0.5), len(labels), 1, fill=False,
                                   ec="red", lw=1.5))
fig.suptitle("Attention weights for 'Max ( 2 8 5 ) =' (rows: queries, columns: keys; "
             "red: the '=' row that answers)")
fig.tight_layout()
plt.show()

# %%
# Does a head pick out the largest digit?
# ---------------------------------------
# One example can mislead, so we count. For every ``Max`` question of the test set and every
# head, we take the digit position that the ``=`` query attends to most and check whether it
# holds the largest digit. A head that scores near 100% has learned "attend to the maximum";
# chance is about one in three.
max_examples = [ex for ex in trainer.data.splits.test if ex.operation == "Max"]
tokens, _ = task.to_arrays(max_examples)
_, weights = model.forward(tokens, return_weights=True)
rows = np.arange(len(max_examples))
answer_at = task.answer_positions(max_examples)
digit_cols = np.arange(3, 3 + 3)  # "<bos> Max (" come first
ties = np.array([list(ex.digits).count(max(ex.digits)) > 1 for ex in max_examples])
for layer in range(2):
    for head in range(4):
        w = weights[layer][rows, head, answer_at][:, digit_cols]  # (N, 3)
        chosen = np.argmax(w, axis=1)
        picked_max = np.array([ex.digits[c] == max(ex.digits)
                               for ex, c in zip(max_examples, chosen, strict=True)])
        print(f"layer {layer} head {head}: attends most to a largest digit in "
              f"{picked_max.mean():6.1%} of {len(max_examples)} Max questions")
print(f"({ties.mean():.0%} of these questions have a tied largest digit; "
      "any tied position counts)")

# %%
# Conclusion
# ----------
# A two-layer model trained for a few hundred steps answers unseen questions almost perfectly,
# and the counts above show whether a single head does the comparison for ``Max`` or the work
# is split between heads and layers (several heads can share it; the residual stream adds
# their outputs). The same :class:`~literate_tx.training.Trainer` trains the pure-Python and
# PyTorch backends (``backend="python"`` / ``"torch"``) and resumes a run exactly; on the
# command line the full recipe is ``literate-tx train --task digits``. See
# :mod:`literate_tx.training` and :mod:`literate_tx.data.digits`.

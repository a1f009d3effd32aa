"""
Attention weights of a hand-built model
=======================================

Attention heads can implement simple algorithms. Here we *write* the weights of a one-layer
model by hand so that its two heads do two known jobs, run the NumPy backend, and plot the
attention weights it actually computes:

* head 0 is a **previous-token head**: every query attends to the position just before it;
* head 1 is a **same-token head**: every query attends to every position that holds its own
  token, itself included, so a token seen for the first time attends only to itself.

Nothing here is trained or faked: the heatmaps are ``model.forward(..., return_weights=True)``.
"""

# %%
# A model whose residual stream holds "which token" and "which position"
# ----------------------------------------------------------------------
# We use one-hot embeddings: dimensions 0-7 say which token is here, dimensions 8-15 which
# position. No norms and no biases, so the scores are exactly the dot products we design.
import matplotlib.pyplot as plt
import numpy as np

import literate_tx as ltx

V, T = 8, 8
cfg = ltx.ModelConfig(
    vocab_size=V, d_model=16, n_layers=1, n_heads=2, d_ff=4, max_seq_len=T,
    norm="none", bias=False, position="learned", activation="relu",
)
params = {name: np.zeros(shape) for name, shape in ltx.param_shapes(cfg).items()}
params["embed.tokens"][:, :V] = np.eye(V)  # token t -> e_t
params["embed.positions"][:, V:] = np.eye(T)  # position p -> e_{8+p}

# %%
# Writing the two heads
# ---------------------
# Head 0 uses columns 0-7 of the query and key projections; head 1 columns 8-15.
# A score is :math:`q_i \cdot k_j / \sqrt{D}`, so a sharpness of 30 makes the softmax nearly
# one-hot.
sharp = 30.0
w_q, w_k = params["blocks.0.attn.w_q"], params["blocks.0.attn.w_k"]
for p in range(T):
    w_k[V + p, p] = 1.0  # head 0 key: "I am at position p"
    if p > 0:
        w_q[V + p, p - 1] = sharp  # head 0 query: "I look for position p - 1"
for t in range(V):
    w_k[t, V + t] = 1.0  # head 1 key: "I am token t"
    w_q[t, V + t] = sharp  # head 1 query: "I look for token t"

model = ltx.create_model(cfg, backend="numpy", params=params, dtype="float64")

# %%
# Running a sequence with repeated tokens
# ---------------------------------------
tokens = np.array([[3, 1, 4, 1, 5, 3, 2, 4]])
logits, weights = model.forward(tokens, return_weights=True)
att = weights[0][0]  # (H, T, T) for layer 0, batch item 0
print("head 0, query 3 attends to:", np.round(att[0, 3], 3))
print("head 1, query 5 (token 3) attends to:", np.round(att[1, 5], 3))

# %%
# Plotting the weights
# --------------------
# Rows are queries, columns keys; the upper triangle is empty because of the causal mask.
# What to look for: head 0 is a sub-diagonal (the first token, with nothing before it, attends
# to itself); head 1 fills the diagonal (every token matches itself) and lights up where a
# token meets an earlier copy of itself, splitting its attention evenly between the matches
# (the second ``3`` above gives 1/2 to the first ``3`` and 1/2 to itself).
labels = [str(t) for t in tokens[0]]
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), constrained_layout=True)
titles = ["head 0: previous token", "head 1: same token"]
for h, (ax, title) in enumerate(zip(axes, titles, strict=True)):
    im = ax.imshow(att[h], cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(T), labels)
    ax.set_yticks(range(T), labels)
    ax.set_xlabel("key (token)")
    ax.set_ylabel("query (token)")
    ax.set_title(title)
fig.colorbar(im, ax=axes, shrink=0.8, label="attention weight")
plt.show()

# %%
# Conclusion
# ----------
# The attention weights are a softmax of designed dot products, masked causally
# (:mod:`literate_tx.numpy_backend.attention`). Trained models learn heads like these on their
# own; :ref:`the digits tutorial <sphx_glr_auto_examples_plot_train_digits.py>` shows one
# learning to find the largest digit.

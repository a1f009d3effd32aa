"""
Where is a token? Sinusoidal tables, RoPE rotations and ALiBi biases
====================================================================

Attention alone cannot tell positions apart: permute the keys and each query's weighted sum is
unchanged. This example draws the three position schemes of
:mod:`literate_tx.numpy_backend.positions` from the functions the models call:

* the **sinusoidal** table added to the token embeddings;
* **RoPE**, which rotates queries and keys so that their dot product depends only on the
  *distance* between positions;
* **ALiBi**, which adds a per-head penalty proportional to that distance to the scores.

Every picture is computed here, by the package's own code.
"""

# %%
# The sinusoidal table
# --------------------
# Row :math:`t` of the table is what gets added to the embedding at position :math:`t`:
# sines on even, cosines on odd coordinates, with wavelengths growing geometrically from
# :math:`2\pi` to :math:`10000 \cdot 2\pi`. What to look for: the left columns oscillate fast
# (they tell neighbours apart), the right ones barely move (they tell far-apart positions apart).
# The similarity of two rows, :math:`P_s \cdot P_t`, depends mostly on :math:`|s - t|`.
import matplotlib.pyplot as plt
import numpy as np

from literate_tx.numpy_backend.positions import sinusoidal_table

T, C = 64, 32
P = sinusoidal_table(T, C)  # (T, C)
similarity = P @ P.T  # (T, T)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
im = axes[0].imshow(P, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
axes[0].set(xlabel="coordinate", ylabel="position t", title="sinusoidal table P")
fig.colorbar(im, ax=axes[0])
im = axes[1].imshow(similarity, cmap="viridis")
axes[1].set(xlabel="position t", ylabel="position s", title=r"$P_s \cdot P_t$")
fig.colorbar(im, ax=axes[1])
print("P_s . P_t along the first row:", np.round(similarity[0, :6], 2))

# %%
# RoPE rotates pairs of coordinates
# ---------------------------------
# RoPE pairs coordinate :math:`i` of a head with coordinate :math:`i + D/2` and rotates the pair
# by the angle :math:`t\,\theta_i`, :math:`\theta_i = \Theta^{-2i/D}`. Here one query vector is
# rotated to positions 0..15. Left: its first pair, in its plane. Right: the angle each pair
# has turned through, measured from the rotated vectors. What to look for: the points stay on a
# circle (a rotation keeps lengths); the angles grow linearly with the position, one radian per
# position for the fastest pair and ever more slowly for the others.
from literate_tx.numpy_backend.positions import apply_rope, rope_tables

D, theta = 8, 10000.0
rng = np.random.default_rng(0)
q = rng.normal(size=(1, 1, 1, D))  # (B, H, T, D): one query
positions = np.arange(16)
cos, sin = rope_tables(len(positions), D, theta)  # (T, D) each
rotated = apply_rope(np.repeat(q, len(positions), axis=2), cos, sin)[0, 0]  # (T, D)
half = D // 2
# angle of pair i at position t, minus its angle at position 0, unwrapped
angles = np.unwrap(np.arctan2(rotated[:, half:], rotated[:, :half]), axis=0)  # (T, D/2)
angles -= angles[0]
fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
axes[0].plot(rotated[:, 0], rotated[:, half], "-", color="0.8")
points = axes[0].scatter(rotated[:, 0], rotated[:, half], c=positions, cmap="viridis")
axes[0].set(aspect="equal", title="pair 0 at positions 0..15", xlabel="coordinate 0",
            ylabel=f"coordinate {half}")
fig.colorbar(points, ax=axes[0], label="position t")
for i in range(half):
    axes[1].plot(positions, angles[:, i], "o-", ms=3, label=f"pair {i}")
axes[1].set(xlabel="position t", ylabel="angle turned (radians)",
            title=r"$t\,\theta_i$")
axes[1].legend()
lengths = np.hypot(rotated[:, 0], rotated[:, half])
print("length of pair 0 at every position:", np.round(lengths[:4], 6), "...")
print("angle per position of each pair:", np.round(angles[1], 4))

# %%
# RoPE scores depend on the distance only
# ---------------------------------------
# Put the *same* query at every position :math:`s` and the same key at every position
# :math:`t`. Without positions all scores would be equal; with RoPE the score
# :math:`\mathrm{rope}(q, s) \cdot \mathrm{rope}(k, t)` is a function of :math:`s - t`, so the
# matrix is constant along each diagonal (a Toeplitz matrix). What to look for: stripes parallel
# to the diagonal, and a printed spread along diagonals at rounding level.
k = rng.normal(size=(1, 1, 1, D))
T_r = 24
cos, sin = rope_tables(T_r, D, theta)
q_rot = apply_rope(np.repeat(q, T_r, axis=2), cos, sin)[0, 0]  # (T, D)
k_rot = apply_rope(np.repeat(k, T_r, axis=2), cos, sin)[0, 0]  # (T, D)
scores = q_rot @ k_rot.T  # (T, T): query position s, key position t
spread = max(np.ptp(np.diagonal(scores, offset)) for offset in range(-T_r + 1, T_r))
print(f"largest spread of a diagonal of the score matrix: {spread:.1e}")
fig, ax = plt.subplots(figsize=(5, 4.2), constrained_layout=True)
im = ax.imshow(scores, cmap="RdBu_r")
ax.set(xlabel="key position t", ylabel="query position s",
       title=r"$\mathrm{rope}(q, s) \cdot \mathrm{rope}(k, t)$")
fig.colorbar(im, ax=ax)
plt.show()

# %%
# ALiBi: a distance penalty per head
# ----------------------------------
# ALiBi adds :math:`-m_h (i - j)` to the score of query :math:`i` and key :math:`j`, with
# slopes :math:`m_h = 2^{-8h/H}`. What to look for: head 0 (steepest slope) penalises distance
# heavily, so it looks at recent tokens; the last head is nearly flat, so it can look far back.
# The upper triangle is drawn blank because the causal mask removes it.
from literate_tx.numpy_backend.positions import alibi_bias, alibi_slopes

H, T_a = 4, 16
bias = alibi_bias(H, T_a)  # (H, T, T)
causal = np.tril(np.ones((T_a, T_a), dtype=bool))
print("slopes:", alibi_slopes(H))
fig, axes = plt.subplots(1, H, figsize=(12, 3.4), constrained_layout=True)
for h, ax in enumerate(axes):
    im = ax.imshow(np.where(causal, bias[h], np.nan), cmap="magma", vmin=bias.min(),
                   vmax=0)
    ax.set(title=f"head {h}: slope {alibi_slopes(H)[h]:.4g}", xlabel="key j")
axes[0].set_ylabel("query i")
fig.colorbar(im, ax=axes, label="bias added to the score")
plt.show()

# %%
# What the biases do to attention
# -------------------------------
# With all raw scores equal, the weights of the last query are the softmax of its ALiBi bias
# row alone. What to look for: the steep head decays geometrically with distance, the flat head
# spreads its attention over the whole past.
from literate_tx.numpy_backend.softmax import softmax_forward

last_row = softmax_forward(bias[:, -1, :])  # (H, T): weights of the last query
fig, ax = plt.subplots(figsize=(6, 3.4), constrained_layout=True)
for h in range(H):
    ax.plot(np.arange(T_a), last_row[h], "o-", ms=3, label=f"head {h}")
ax.set(xlabel="key position j", ylabel=f"weight of query {T_a - 1}", yscale="log")
ax.legend()
print("weight on the newest key per head:", np.round(last_row[:, -1], 3))

# %%
# Conclusion
# ----------
# Sinusoidal and learned tables add position to the token embedding
# (:func:`~literate_tx.numpy_backend.positions.sinusoidal_table`); RoPE rotates queries and keys
# (:func:`~literate_tx.numpy_backend.positions.rope_tables`,
# :func:`~literate_tx.numpy_backend.positions.apply_rope`) so that scores are relative; ALiBi adds
# a per-head distance penalty to the scores
# (:func:`~literate_tx.numpy_backend.positions.alibi_bias`). Pick one with
# ``ModelConfig(position="sinusoidal" | "learned" | "rope" | "alibi" | "none")``; the same
# switch drives every backend.

"""
How fast is each backend?
=========================

The same model runs in pure Python, in NumPy (the readable reference and its speed path,
:class:`~literate_tx.numpy_backend.fast.FastNumpyModel`) and in PyTorch. This page times a
training step of each, with the very functions of :mod:`literate_tx.bench` that
``python -m literate_tx.bench`` runs, on a **quick** setting so that the page builds in seconds:
the ``small`` preset (B=8, T=64, C=64, 2 layers), float32, three repeats.

The numbers are measured while the documentation builds, on whatever machine builds it, so
read the *ratios* between backends rather than the absolute times. The full benchmark and its
results are on the :doc:`/benchmarks` page.
"""

# %%
# Time the backends
# -----------------
# :func:`literate_tx.bench.run_suite` builds every backend's model on the same weights and calls
# them round-robin (one call of each in turn), so that a change of the machine's load hits
# every backend alike. The pure-Python backend is too slow for this preset; it gets a section of
# its own below, on the ``tiny`` preset.
import literate_tx as ltx
from literate_tx import bench

backends = ["numpy", "numpy-fast"]
if "torch" in ltx.available_backends():
    backends += ["torch-sdpa", "torch-explicit"]
results = bench.run_suite(
    presets=["small"], backends=backends, dtypes=["float32"],
    ops=["forward", "train_step"], repeats=3, warmup=1, memory=False, lead_in=0.2,
    verbose=False,
)
print(f"{len(results['results'])} measurements in {results['wall_s']} s, "
      f"threads: {results['settings']['threads']}, "
      f"float32 matmul peak: {results['matmul_peak_gflops']['float32']} GFLOP/s")

# %%
# The table
# ---------
# Median and inter-quartile range of the wall-clock time, tokens per second, the model FLOPs
# rate (:math:`6N + 12LTC` per token for a step) and its fraction of a large matmul's rate
# measured in the same run. Look at how far from the matmul peak a small model stays: the
# element-wise work and the Python overhead between the products do not run at matmul speed.
print(bench.format_report(results, compact=True))

# %%
# Training throughput
# -------------------
# Tokens per second of one training step (forward, backward and AdamW), with the
# inter-quartile range as an error bar.
import matplotlib.pyplot as plt
import numpy as np

rows = [r for r in results["results"] if r["op"] == "train_step"]
names = [r["backend"] for r in rows]
tps = np.array([r["tokens_per_s"] for r in rows])
low = tps - np.array([r["tokens_per_call"] / r["q75_s"] for r in rows])
high = np.array([r["tokens_per_call"] / r["q25_s"] for r in rows]) - tps
fig, ax = plt.subplots(figsize=(6.5, 3.2))
ax.bar(names, tps, yerr=[low, high], capsize=4, color="tab:blue")
ax.set_ylabel("tokens / s")
ax.set_title("training step, small preset, float32 (higher is better)")
fig.tight_layout()
plt.show()

# %%
# The pure-Python backend
# -----------------------
# One forward pass of the ``tiny`` preset (5 tokens, C=64, 2 layers) in every backend, the plain
# pure-Python one and its speed path
# :class:`~literate_tx.python_backend.fast.FastPythonModel` included. The plain one spends nine
# tenths of its time in ``sum(map(mul, row, col))``; the speed path gets its dot products from
# ``math.dist`` (see :mod:`literate_tx.python_backend.fast`).
tiny_backends = ["python", "python-fast", "numpy", "numpy-fast"]
if "torch" in ltx.available_backends():
    tiny_backends.append("torch-sdpa")
tiny = bench.run_suite(
    presets=["tiny"], backends=tiny_backends, dtypes=["float64"], ops=["forward"],
    repeats=5, warmup=1, memory=False, lead_in=0.1, verbose=False,
)
print(bench.format_report(tiny, compact=True))

fig, ax = plt.subplots(figsize=(6.5, 2.8))
rows = tiny["results"]
ms = [r["median_s"] * 1e3 for r in rows]
ax.barh([r["backend"] for r in rows], ms, color="tab:green")
ax.axvline(10.0, color="gray", linestyle="--", label="10 ms")
ax.set_xscale("log")
ax.set_xlabel("forward pass, ms (log scale; lower is better)")
ax.invert_yaxis()
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %%
# Generation with and without the key/value cache
# -----------------------------------------------
# Greedy generation of 64 new tokens after an 8-token prompt on the ``small`` preset, batch 1,
# through :func:`literate_tx.generate`: with the cache (one token per step through
# ``model.decode``) and without it (the whole sequence again at every step), paired round by
# round. ``torch-fast`` is PyTorch's speed path for decoding,
# :class:`~literate_tx.torch_backend.fast.FastTorchModel`: the same module, a one-token step
# without the module calls.
gen_backends = ["numpy", "numpy-fast"]
if "torch" in ltx.available_backends():
    gen_backends += ["torch-sdpa", "torch-fast"]
gen = bench.run_suite(
    presets=["small"], backends=gen_backends, dtypes=["float32"],
    ops=["generate", "generate_nocache"], gen_tokens=64, repeats=3, warmup=1, memory=False,
    lead_in=0.1, verbose=False,
)
speedups = [r for r in gen["ratios"] if r["name"].startswith("KV cache")]
for r in speedups:
    print(f"{r['backend']:12s} x{r['median']:5.1f} (min x{r['min']:.1f}, max x{r['max']:.1f}), "
          f"{'the same tokens' if r['same_tokens'] else 'different tokens'}")

fig, ax = plt.subplots(figsize=(6.5, 2.6))
ax.barh([r["backend"] for r in speedups], [r["median"] for r in speedups], color="tab:purple",
        xerr=[[r["median"] - r["min"] for r in speedups],
              [r["max"] - r["median"] for r in speedups]], capsize=4)
ax.set_xlabel("speed-up of the KV cache over recomputation (higher is better)")
ax.set_title("64 new tokens, small preset, float32, batch 1")
ax.invert_yaxis()
fig.tight_layout()
plt.show()

# %%
# A cached step is one token through the model; at this size its cost is mostly the fixed cost
# of each operation, and PyTorch's operations cost about three times NumPy's here, which is
# what the speed paths work around. The speed-up grows with the length: recomputing costs more
# with every token, a cached step hardly does, so 64 tokens show less of it than the 256 of the
# :doc:`/benchmarks` page (which has the medium model, at batch 1 and 16).

# %%
# Conclusion
# ----------
# The reference NumPy model is written for reading; the speed path computes the same function
# (``tests/test_fast.py`` proves it to 1e-10 in float64) with fused products, in-place
# element-wise work and both CPU cores, which is what makes it competitive with PyTorch's eager
# mode on a small CPU. Run the whole benchmark with ``python -m literate_tx.bench`` (see
# :func:`literate_tx.bench.main`), and build the fast model with
# :class:`~literate_tx.numpy_backend.fast.FastNumpyModel`.

r"""The NumPy backend's speed path: the same model and the same maths, arranged for throughput.

The reference modules of this package are written to be read: one function per equation, a
fresh array per step. :class:`FastNumpyModel` computes exactly the same function and the same
gradients (``tests/test_fast.py`` proves it over the full switch matrix), but it is arranged
so that a training step on a small CPU runs faster than PyTorch in eager mode. Every trick
lives in this one module, so the reference stays the one the documentation explains.

What made it fast
-----------------
Measured on a shared 2-core AMD EPYC (AVX-512, OpenBLAS), float32, config V=65, C=128, L=4,
H=4, F=512, T=128, B=16; factors are for the training step, each against the version without it.

1. **Batched attention as** ``np.matmul`` **on strided views**, never ``np.einsum``: ``matmul``
   hands every (T, D) head to BLAS through its strides, ``einsum`` loops (15-20x on
   :math:`QK^\top`). The three projections :math:`W_q, W_k, W_v` are concatenated into one
   (C, 3C) matrix ((C, C + 2GD) with grouped-query attention), so one GEMM replaces three and
   the heads are views into its output.
2. **A vectorised erf for float32.** ``scipy.special.erf`` takes ~30 ns per element here,
   which made the exact GELU the most expensive line of the model. For float32 we evaluate
   :math:`\mathrm{erf}(x) \approx \tanh(x\,P(x^2))` with a degree-6 polynomial fitted for this
   module (:func:`fast_erf`, max abs error :math:`1.4 \cdot 10^{-7}`): 15 in-place passes and a
   vectorised ``np.tanh``, in L2-sized chunks (first Eigen's rational approximation, 25 passes;
   the tanh form computes :math:`\Phi(u)` 1.3x faster); float64 keeps SciPy's erf.
   The GELU's :math:`\Phi(u) = \tfrac12(1 + \tanh y)` is evaluated as the equal
   :math:`1/(1 + e^{-2y})`: on an AVX2 machine NumPy's float32 ``exp`` costs about half its
   ``tanh`` (2.4 against 4.3 ns per element), which took :math:`\Phi(u)` from 3.6 to 2.6 ms
   per (1024, 512) block (AMD EPYC without AVX-512, 2026-12).
   The forward pass keeps :math:`\Phi(u)` for the backward pass, so it is computed once per layer.
   No clipping to the fitted interval: ``np.minimum`` / ``np.maximum`` against a scalar cost
   six times a multiplication here (0.19 against 0.03 ms per 512k float32), and dropping them
   took :math:`\Phi(u)` from 1.27 to 0.87 ms per (1024, 512) block (2026-12, AMD EPYC).
3. **In-place** ``out=`` **sequences** for the softmax, its backward pass, the GELU and its
   derivative, and the optimiser: one buffer instead of one temporary per operator. Fewer
   passes over the (B, H, T, T) scores: the scale :math:`1/\sqrt{D}` folded into :math:`W_q`,
   the causal mask added as a cached table of ``-inf`` (not a masked copy), row sums and means
   as products with a vector of ones (BLAS), row dot products by ``einsum`` (never forming
   the product). With the tanh erf, these took the forward and backward pass of half the
   batch on one core from 104 to 97 ms (Intel Xeon, 2026-12).
4. **float32 end to end**: every constant is a Python scalar (which NumPy casts to the array's
   dtype), never a float64 array that would promote the whole expression.
5. **Two Python threads, one BLAS thread each.** About 40 % of a step is element-wise work
   that NumPy runs on one core. Splitting the batch in two halves and running each half's
   forward and backward pass in its own thread (NumPy releases the GIL inside ufuncs and
   matmul) uses both cores for that part too; the gradients of the halves add up.
6. **Keeping memory between steps** (:mod:`.memory`): glibc returns large freed blocks to the
   operating system, and the next step faults the pages back in, zero-filled: 16 951 page
   faults and 55 ms of system time in a 420 ms step of the ``tiny`` recipe (one thread, AMD
   EPYC Zen 4, 2026-12). The model's own :class:`Workspace` (``reuse_buffers=True``, the
   default) keeps the step's large arrays by name and writes into them again at the next
   step: no page faults, and that step took 388 ms. :func:`keep_freed_memory` (``mallopt``'s
   ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``) keeps every freed block of the process
   instead; it changes the allocator for everything else in the process too (it also took
   PyTorch's ``tiny`` step from 434 to 393 ms), so it is opt-in: ``keep_memory=True`` (the
   step benchmark's ``numpy-fast`` asks for it; the trainer does not).
7. **The embedding backward as a one-hot matrix product** for small vocabularies instead of
   ``np.add.at``, which is unbuffered and slow.
8. **Causal attention in blocks of query rows** (:func:`_query_blocks`): a block of rows
   :math:`r_0 .. r_1 - 1` is scored only against the keys :math:`0 .. r_1 - 1` it may see,
   so the masked upper triangle is skipped block by block, as flash attention does. With two
   blocks of 64 rows at T = 128 that is a quarter of the scores, the softmax and the four
   (T, T) products of the backward pass: 1.06x on the training step (AMD EPYC, AVX2,
   2026-12). Smaller blocks skip more but make more, smaller BLAS calls (32 rows: no gain).
9. **Both GELUs fused** (:mod:`.gelu`): the tanh GELU of the GPT-2 convention (the recipes'
   activation) written as :math:`u\,\sigma(2k)`, forward and backward as in-place passes over
   L2-sized chunks, like the exact GELU's. The reference formulas cost 20 + 37 ms per layer of
   the ``tiny`` recipe and these 7 + 6.5 ms: its step went from 475 to 412 ms (one thread,
   AMD EPYC Zen 4, 2026-12).

``decode`` (incremental decoding with the key/value cache) runs the same kernels on the new
tokens; the reference's own checks and
:class:`~literate_tx.numpy_backend.attention.KVCache` are kept.

What it does not change: the parameters (canonical names, shapes and dtype), the dropout masks
(drawn by the same generator in the same order), ``run_with_cache`` and
``forward(..., return_weights=True)``, which are the reference's own.

Tolerances
----------
float64 results agree with the reference to about :math:`10^{-12}` relative: only the order of
a few sums differs (one (C, 3C) product instead of three, the halves of the batch). float32
results differ by a few units in the last place per operation, plus the erf approximation;
``tests/test_fast.py`` allows :math:`2 \cdot 10^{-4}` relative to the largest entry.

Examples
--------
>>> import numpy as np, literate_tx as ltx
>>> cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8)
>>> ref = ltx.create_model(cfg, backend="numpy", seed=0, dtype="float64")
>>> fast = FastNumpyModel(cfg, ref.parameters(), dtype="float64", threads=2)
>>> tokens, targets = np.array([[1, 2, 3], [4, 5, 6]]), np.array([[2, 3, 4], [5, 6, 7]])
>>> (loss_a, grads_a), (loss_b, grads_b) = (m.loss_and_grads(tokens, targets) for m in (ref, fast))
>>> abs(loss_a - loss_b) < 1e-12
True
>>> max(float(np.abs(grads_a[n] - grads_b[n]).max()) for n in grads_a) < 1e-12
True
"""


from .erf import fast_erf
from .gelu import gelu_backward, gelu_forward
from .memory import Workspace, keep_freed_memory
from .model import FastNumpyModel
from .optim import FastAdamW

__all__ = ["FastNumpyModel", "FastAdamW", "Workspace", "fast_erf", "gelu_backward",
           "gelu_forward", "keep_freed_memory"]

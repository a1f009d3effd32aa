r"""Benchmark the backends: forward, forward + backward, a training step, and generation.

Run ``python -m literate_tx.bench`` (or ``nox -s bench``, or ``literate-tx bench``)::

    python -m literate_tx.bench --presets tiny,small,medium --dtypes float32,float64 \
        --out bench_results

It writes ``benchmark_results.json`` and ``report.txt`` into ``--out`` and prints the report.
``--time-to-quality`` measures instead validation loss against wall-clock time per backend
(:mod:`literate_tx.quality`) and writes ``quality_results.json``, ``quality_report.txt`` and
``quality.png``.

What is measured
----------------
For each size preset, dtype and backend (``numpy`` the reference, ``numpy-fast`` the speed path
of :mod:`literate_tx.numpy_backend.fast`, ``python``, ``python-fast`` the speed path of
:mod:`literate_tx.python_backend.fast`, ``torch-sdpa`` and ``torch-explicit``, and
``torch-fast``, whose decoding steps are those of :mod:`literate_tx.torch_backend.fast` and
which is timed for generation only: for the other operations it is ``torch-sdpa``'s module; and
``torch-baseline``, the independent GPT-2 of :mod:`literate_tx.baseline` on the same weights,
timed for ``forward``, ``fwd_bwd`` and ``train_step`` only):

``forward``
    Logits of a (B, T) batch in evaluation mode. NumPy / Python: ``model.forward``; PyTorch:
    ``model.module(tokens)`` under ``torch.no_grad()`` (the module, as a PyTorch user runs it).
``fwd_bwd``
    Loss and every gradient. NumPy / Python: ``model.loss_and_grads``; PyTorch: forward,
    cross-entropy and ``loss.backward()`` on the module (gradients set to None first).
``train_step``
    ``fwd_bwd`` plus one AdamW update: :class:`literate_tx.numpy_backend.optim.AdamW` for ``numpy``,
    :class:`~literate_tx.numpy_backend.fast.FastAdamW` (bit-identical) for ``numpy-fast``,
    :class:`literate_tx.python_backend.optim.AdamW` for ``python`` and ``python-fast``,
    ``torch.optim.AdamW``
    (default ``foreach`` implementation) for PyTorch.
``generate`` / ``generate_nocache``
    Greedy generation of ``gen_tokens`` new tokens after an 8-token prompt, batch 1, through
    :func:`literate_tx.generation.generate` with ``use_cache=True`` (``model.decode`` and a
    key/value cache) or ``use_cache=False`` (the whole sequence again for every token); with
    ``gen_batch`` > 1, the same greedy loop on that many different prompts at once. Both
    run on the same model (``max_seq_len`` raised to prompt + ``gen_tokens`` if needed) and
    share their rounds, so the KV cache speed-up is a paired ratio like the backends' ratios;
    the report also says whether the two produced the same tokens.

Every operation is warmed up, then repeated; the backends are timed **round-robin** (one call
of each backend in turn, ``repeats`` times) so that a change in the machine's load hits all of
them alike, and ratios are taken between calls of the same round. Each timed call follows a
**lead-in** of untimed calls of the same backend and operation (``lead_in`` seconds, at least
one call), so that it runs as in a loop rather than straight after another backend. We report
the median, the inter-quartile range and the min / max of the wall-clock times
(``time.perf_counter``), tokens per second (B·T tokens per call; new tokens for generation), and:

* **FLOPs** per call from the usual estimate (:func:`literate_tx.flops.flops_per_token`):
  :math:`6N + 12\,L\,T\,C` per token for forward + backward, a third of it for the forward pass,
  where :math:`N` counts the weights that take part in a matrix product (not the lookup tables)
  and :math:`12LTC` the two attention products :math:`QK^\top` and :math:`AV` (the full
  :math:`T \times T` square, the usual convention, although ``numpy-fast``'s query blocks and
  SDPA's kernel skip part of its masked half). The optimiser is not counted.
* **achieved GFLOP/s** and its fraction of the **matmul peak**: a large square ``np.matmul``
  in the same dtype, timed in the same run with the same threads.
* **peak memory**: for NumPy and Python the peak of ``tracemalloc`` during one call (NumPy
  reports its array buffers to it); for every backend on Linux the growth of the process's peak
  resident set during one call (``/proc/self/clear_refs`` then ``VmHWM``). PyTorch's CPU
  allocator is invisible to ``tracemalloc``, so only the RSS figure exists for it; allocators
  that keep freed memory (glibc after :func:`~literate_tx.numpy_backend.fast.keep_freed_memory`)
  make the RSS figure a lower bound.

Threads are pinned for the whole run: BLAS through ``threadpoolctl`` (``--threads``, default the
CPUs available), ``torch.set_num_threads`` likewise; ``numpy-fast`` splits the batch over that
many Python threads with one BLAS thread each. ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` are
recorded with the BLAS kernel ``threadpoolctl`` reports, and the load average before and after.

Examples
--------
>>> results = run_suite(presets=["tiny"], backends=["numpy", "numpy-fast"],
...                     dtypes=["float64"], repeats=2, warmup=1, ops=["fwd_bwd"],
...                     gen_tokens=4, settle=0.0, verbose=False)
>>> sorted({(r["backend"], r["op"]) for r in results["results"]})
[('numpy', 'fwd_bwd'), ('numpy-fast', 'fwd_bwd')]
>>> results["results"][0]["tokens_per_call"], results["results"][0]["num_parameters"]
(5, 73792)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .config import ModelConfig
from .flops import flops_per_token

__all__ = ["PRESETS", "BACKENDS", "OPS", "Preset", "run_suite", "format_report", "matmul_peak",
           "step_flops", "add_arguments", "run", "main"]


class Preset:
    """A model size and a batch shape to time it on.

    Examples
    --------
    >>> PRESETS["medium"].tokens, PRESETS["medium"].config.d_ff
    (2048, 512)
    """

    def __init__(self, name: str, config: ModelConfig, batch: int, seq_len: int,
                 python: bool = False):
        self.name, self.config, self.batch, self.seq_len = name, config, batch, seq_len
        self.python = python  # the pure-Python backend finishes in reasonable time

    @property
    def tokens(self) -> int:
        """Tokens per step, B·T.

        Examples
        --------
        >>> PRESETS["medium"].tokens
        2048
        """
        return self.batch * self.seq_len

    def __repr__(self) -> str:
        c = self.config
        return (f"Preset({self.name}: V={c.vocab_size} C={c.d_model} L={c.n_layers} "
                f"H={c.n_heads} F={c.d_ff}, B={self.batch} T={self.seq_len})")


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", ModelConfig(50, 64, 2, 4, 128, max_seq_len=5), 1, 5, python=True),
    "small": Preset("small", ModelConfig(65, 64, 2, 4, 256, max_seq_len=64), 8, 64),
    "medium": Preset("medium", ModelConfig(65, 128, 4, 4, 512, max_seq_len=128), 16, 128),
}
BACKENDS = ("numpy", "numpy-fast", "python", "python-fast", "torch-sdpa", "torch-explicit",
            "torch-fast", "torch-baseline")
PYTHON_BACKENDS = ("python", "python-fast")  # run only on presets where they finish in time
GENERATION_ONLY = ("torch-fast",)  # the same module as torch-sdpa for the other ops
TRAINING_ONLY = ("torch-baseline",)  # a plain nn.Module: no decode, so no generation
OPS = ("forward", "fwd_bwd", "train_step", "generate", "generate_nocache")
PROMPT_LEN = 8


# --------------------------------------------------------------------------- environment
def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not Linux


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class _Threads:
    """Pin BLAS (threadpoolctl) and PyTorch to ``n`` threads; restore on exit."""

    def __init__(self, n: int):
        self.n = n
        self._limiter = None
        self._torch_before = None

    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            self._limiter = None
        else:
            self._limiter = threadpool_limits(limits=self.n, user_api="blas")
        if _have_torch():
            import torch

            self._torch_before = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self._limiter is not None:
            self._limiter.restore_original_limits()
        if self._torch_before is not None:
            import torch

            torch.set_num_threads(self._torch_before)


def _environment(threads: int) -> dict:
    env = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus_usable": _usable_cpus(),
        "threads": threads,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        env["blas"] = "threadpoolctl not installed: BLAS threads not pinned or reported"
    else:
        env["blas"] = [{k: info.get(k) for k in ("internal_api", "version", "architecture",
                                                  "num_threads", "threading_layer")}
                       for info in threadpool_info() if info.get("user_api") == "blas"]
    if _have_torch():
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        env["cpu"] = names[0] if names else None
    except OSError:  # pragma: no cover - not Linux
        env["cpu"] = None
    return env


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


# --------------------------------------------------------------------------- measurements
def matmul_peak(dtype: str = "float32", n: int = 1024, repeats: int = 5) -> float:
    r"""GFLOP/s of a square ``np.matmul`` of size ``n`` (best of ``repeats``): the machine's peak.

    Examples
    --------
    >>> matmul_peak("float64", n=64, repeats=2) > 0
    True
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def step_flops(config: ModelConfig, batch: int, seq_len: int, op: str) -> float | None:
    r"""Model FLOPs of one call of ``op``: :math:`(6N + 12LTC) \cdot BT` for a step, 1/3 forward.

    Examples
    --------
    >>> cfg = PRESETS["medium"].config
    >>> round(step_flops(cfg, 16, 128, "train_step") / 1e9, 2), step_flops(cfg, 1, 8, "generate")
    (11.46, None)
    """
    per_token = flops_per_token(config, seq_len)  # forward + backward, eq. (flops-per-token)
    if op in ("fwd_bwd", "train_step"):
        return per_token * batch * seq_len
    if op == "forward":
        return per_token / 3.0 * batch * seq_len
    return None


def _rss_peak_reset() -> int | None:
    """Reset the process's peak RSS (Linux) and return the current RSS in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kib("VmRSS") * 1024
    except (OSError, TypeError):
        return None


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover
        return None
    return None


def _memory(call: Callable[[], object], traced: bool) -> dict:
    """Peak memory of one call: tracemalloc (NumPy / Python) and peak-RSS growth (Linux)."""
    out: dict = {"tracemalloc_peak_mb": None, "rss_peak_delta_mb": None}
    if traced:
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        call()
        out["tracemalloc_peak_mb"] = round((tracemalloc.get_traced_memory()[1] - base) / 2**20, 3)
        tracemalloc.stop()
    rss = _rss_peak_reset()
    if rss is not None:
        call()
        hwm = _status_kib("VmHWM")
        if hwm is not None:
            out["rss_peak_delta_mb"] = round(max(hwm * 1024 - rss, 0) / 2**20, 3)
    return out


def _summary(times: Sequence[float]) -> dict:
    t = np.asarray(times, dtype=np.float64)
    q25, med, q75 = np.percentile(t, [25, 50, 75])
    return {"median_s": float(med), "q25_s": float(q25), "q75_s": float(q75),
            "min_s": float(t.min()), "max_s": float(t.max()), "repeats": int(t.size),
            "times_s": [float(x) for x in t]}


# --------------------------------------------------------------------------- the callables
def _make_model(backend: str, config: ModelConfig, dtype: str, params, threads: int):
    """The model behind a benchmark backend name: ``numpy``, ``numpy-fast`` (``fast=True``),
    ``torch-sdpa`` (``attention="sdpa"``), ..."""
    from .api import create_model

    if backend == "torch-baseline":
        from .baseline import BaselineModel

        return BaselineModel(config, params, dtype=dtype)
    base, _, variant = backend.partition("-")
    options = {}
    if variant == "fast":
        options["fast"] = True
        if base == "numpy":  # its Python threads pin BLAS to one thread each: threadpoolctl
            try:
                import threadpoolctl  # noqa: F401
            except ImportError:
                threads = 1
            options["threads"] = threads
            # opt in to glibc keeping freed blocks: the speed path as measured on the
            # benchmarks page (a process-wide setting, so never a model's default)
            options["keep_memory"] = True
    elif variant:
        options["attention"] = variant
    return create_model(config, base, params=params, dtype=dtype, **options)


def _calls(backend: str, model, tokens: np.ndarray, targets: np.ndarray, gen_tokens: int,
           prompts: np.ndarray | None = None):
    """``{op: zero-argument callable}`` for one model; ``prompts`` (B, P) for generation."""
    calls: dict[str, Callable[[], object]] = {}
    prompts = tokens[:1, :PROMPT_LEN] if prompts is None else prompts
    from .generation import generate

    def gen(use_cache: bool):
        if len(prompts) == 1:  # one sequence: the package's own generate, as a user runs it
            prompt = [int(t) for t in prompts[0]]
            return lambda: generate(model, prompt, gen_tokens, temperature=0.0,
                                    use_cache=use_cache)

        def batched():  # several sequences at once: greedy decoding by hand, (B, T) per call
            seqs = np.asarray(prompts)  # (B, P)
            logits, kv = model.decode(seqs) if use_cache else (model.forward(seqs), None)
            new = []
            for i in range(gen_tokens):
                new.append(np.asarray(logits, np.float64)[:, -1].argmax(axis=-1)[:, None])
                if i == gen_tokens - 1:
                    break
                if use_cache:
                    logits, kv = model.decode(new[-1], kv)  # (B, 1, V)
                else:
                    seqs = np.concatenate([seqs, new[-1]], axis=1)  # (B, P + i + 1)
                    logits = model.forward(seqs)  # (B, P + i + 1, V)
            return np.concatenate(new, axis=1)  # (B, gen_tokens)

        return batched

    if backend.startswith("torch-"):
        import torch

        module = model.module
        X, Y = torch.as_tensor(tokens), torch.as_tensor(targets)
        opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
        V = model.config.vocab_size

        def forward():
            module.eval()
            with torch.no_grad():
                return module(X)

        def fwd_bwd():
            module.train()
            for p in module.parameters():
                p.grad = None
            loss = torch.nn.functional.cross_entropy(module(X).reshape(-1, V), Y.reshape(-1))
            loss.backward()
            return loss

        def train_step():
            loss = fwd_bwd()
            opt.step()
            return loss

    else:
        if backend in PYTHON_BACKENDS:
            from .python_backend.optim import AdamW as Optimiser
        elif backend == "numpy-fast":
            from .numpy_backend.fast import FastAdamW as Optimiser
        else:
            from .optim import AdamW as Optimiser
        opt = Optimiser(model.params, lr=1e-4)

        def forward():
            return model.forward(tokens)

        def fwd_bwd():
            return model.loss_and_grads(tokens, targets)

        def train_step():
            loss, grads = model.loss_and_grads(tokens, targets)
            opt.step(grads)
            return loss

    calls.update(forward=forward, fwd_bwd=fwd_bwd, train_step=train_step,
                 generate=gen(True), generate_nocache=gen(False))
    return calls


# --------------------------------------------------------------------------- the suite
def run_suite(presets: Sequence[str] = ("tiny", "small", "medium"),
              backends: Sequence[str] = BACKENDS,
              dtypes: Sequence[str] = ("float32", "float64"),
              repeats: int = 7, warmup: int = 2, threads: int | None = None,
              ops: Sequence[str] = OPS, gen_tokens: int = 256, gen_batch: int = 1,
              memory: bool = True, lead_in: float = 0.2, settle: float = 0.0,
              verbose: bool = True) -> dict:
    r"""Time every (preset, dtype, backend, op); return a JSON-ready dict.

    Parameters
    ----------
    presets : sequence of {"tiny", "small", "medium"}
    backends : sequence of str
        Any of ``BACKENDS``: ``"numpy"``, ``"numpy-fast"``, ``"python"``, ``"python-fast"``,
        ``"torch-sdpa"``, ``"torch-explicit"``, ``"torch-fast"`` (generation only),
        ``"torch-baseline"`` (no generation). The two pure-Python ones run only on presets
        where they finish in reasonable time (``tiny``); PyTorch backends are skipped when
        PyTorch is not installed.
    dtypes : sequence of {"float32", "float64"}
    repeats, warmup : int
        Timed and untimed calls per operation (round-robin over the backends).
    threads : int, optional
        BLAS, PyTorch and ``numpy-fast`` threads; default the CPUs available.
    ops : sequence of {"forward", "fwd_bwd", "train_step", "generate", "generate_nocache"}
    gen_tokens : int
        New tokens per generation call (capped by 16 for ``python``).
    gen_batch : int
        Sequences generated at once. 1 (the default) times
        :func:`literate_tx.generation.generate`; more run the same greedy loop on a (B, T) batch
        of different prompts, ``model.decode`` or ``model.forward`` once per new token.
    memory : bool
        Also measure peak memory (one more call per operation).
    lead_in : float
        When several backends alternate, each timed call is preceded by untimed calls of the
        *same* operation, back to back, for at least this many seconds (at least one call).
        The timed call then runs as in a training or generation loop: on cores the previous
        backend's spinning BLAS / OpenMP threads have left, with the caches and the machine
        warm. ``0`` times each call straight after the previous backend's.
    settle : float
        Seconds to sleep before each timed call (after the lead-in), when several backends
        alternate. The old way of letting spinning threads go idle; it is not the default
        because waking from idle costs a virtual machine's cores 5-15 % of the next call
        (2026-12, 2-core AMD EPYC guest: numpy-fast's medium training step 107 ms after a
        0.3 s sleep, 93 ms back to back, 96 ms after a 0.3 s busy wait).
    verbose : bool
        Print progress to stderr.

    Returns
    -------
    dict
        ``environment``, ``settings``, ``matmul_peak_gflops`` (by dtype), ``results`` (one dict
        per measurement) and ``ratios`` (paired, per round).

    Examples
    --------
    >>> run_suite(presets=["huge"])
    Traceback (most recent call last):
    ...
    ValueError: presets=['huge'] is not allowed; choose from 'tiny', 'small', 'medium'
    """
    _check_choice("presets", presets, PRESETS)
    _check_choice("backends", backends, BACKENDS)
    _check_choice("dtypes", dtypes, ("float32", "float64"))
    _check_choice("ops", ops, OPS)
    for name, value, low in (("repeats", repeats, 1), ("warmup", warmup, 0),
                             ("gen_tokens", gen_tokens, 1), ("gen_batch", gen_batch, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} is not allowed; {name} must be an int >= {low}")
    for name, value in (("lead_in", lead_in), ("settle", settle)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name}={value!r} is not allowed; {name} must be seconds >= 0")
    threads = _usable_cpus() if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads={threads!r} is not allowed; threads must be an int >= 1")
    if not _have_torch():
        backends = [b for b in backends if not b.startswith("torch-")]

    def log(msg):
        if verbose:
            print(msg, file=sys.stderr, flush=True)

    out: dict = {"settings": {"presets": list(presets), "backends": list(backends),
                              "dtypes": list(dtypes), "repeats": repeats, "warmup": warmup,
                              "threads": threads, "ops": list(ops), "gen_tokens": gen_tokens,
                              "gen_batch": gen_batch,
                              "lead_in_s": lead_in, "settle_s": settle,
                              "prompt_len": PROMPT_LEN},
                 "load_before": _load(), "results": [], "ratios": []}
    started = time.perf_counter()
    with _Threads(threads):
        out["environment"] = _environment(threads)
        out["matmul_peak_gflops"] = {dt: round(matmul_peak(dt), 2) for dt in dtypes}
        log(f"matmul peak (GFLOP/s): {out['matmul_peak_gflops']}")
        for preset_name in presets:
            preset = PRESETS[preset_name]
            for dtype in dtypes:
                _run_group(preset, dtype, backends, ops, repeats, warmup, threads, gen_tokens,
                           gen_batch, memory, lead_in, settle, out, log)
        # the peak again at the end: the load may have changed during the run
        end_peak = {dt: round(matmul_peak(dt), 2) for dt in dtypes}
        out["matmul_peak_gflops_end"] = end_peak
    for r in out["results"]:
        peak = max(out["matmul_peak_gflops"][r["dtype"]], end_peak[r["dtype"]])
        r["peak_fraction"] = None if r["gflops"] is None else round(r["gflops"] / peak, 4)
    out["load_after"] = _load()
    out["wall_s"] = round(time.perf_counter() - started, 1)
    return out


def _check_choice(name, values, allowed):
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{name}={list(values)!r} is not allowed; choose from "
                         f"{', '.join(map(repr, allowed))}")


def _run_group(preset, dtype, backends, ops, repeats, warmup, threads, gen_tokens, gen_batch,
               memory, lead_in, settle, out, log):
    """One preset and dtype: build every backend's model on the same weights, time round-robin."""
    from .params import init_params

    cfg = preset.config
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, cfg.vocab_size, size=(preset.batch, preset.seq_len))
    targets = rng.integers(0, cfg.vocab_size, size=(preset.batch, preset.seq_len))
    all_names = [b for b in backends if b not in PYTHON_BACKENDS or preset.python]
    gen_cfg = cfg.replace(max_seq_len=max(cfg.max_seq_len, PROMPT_LEN + gen_tokens))
    params = init_params(cfg, seed=0, dtype=dtype)
    gen_params = init_params(gen_cfg, seed=0, dtype=dtype)
    models = {b: _make_model(b, cfg, dtype, params, threads) for b in all_names}
    gen_models = {b: _make_model(b, gen_cfg, dtype, gen_params, threads) for b in all_names
                  if b not in TRAINING_ONLY}
    prompts = np.resize(tokens.ravel(), (gen_batch, PROMPT_LEN))  # (B_gen, P), different rows
    for group in _op_groups(ops):
        calls, n_tokens, outputs = {}, {}, {}
        generation_group = group[0].startswith("generate")
        names = [b for b in all_names if (b not in GENERATION_ONLY or generation_group)
                 and (b not in TRAINING_ONLY or not generation_group)]
        for op in group:
            generating = op.startswith("generate")
            for b in names:
                m = gen_models[b] if generating else models[b]
                new = (min(gen_tokens, 16) if (generating and b in PYTHON_BACKENDS)
                       else gen_tokens)
                calls[op, b] = _calls(b, m, tokens, targets, new, prompts)[op]
                n_tokens[op, b] = new * gen_batch if generating else preset.tokens
        log(f"[{preset.name} {dtype}] {', '.join(group)}: {', '.join(names)}")
        for _ in range(warmup):
            for call in calls.values():
                call()
        times: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
        for _ in range(repeats):
            for key, call in calls.items():  # one round: every op of the group, every backend
                if len(calls) > 1:
                    _lead_in(call, lead_in)  # run as in a loop, not just after another backend
                    if settle:
                        time.sleep(settle)
                t0 = time.perf_counter()
                result = call()
                times[key].append(time.perf_counter() - t0)
                if key[0].startswith("generate"):
                    outputs[key] = result  # the generated tokens
        for op in group:
            generating = op.startswith("generate")
            for b in names:
                model = models[b]
                s = _summary(times[op, b])
                flops = None if generating else step_flops(cfg, preset.batch, preset.seq_len, op)
                row = {"preset": preset.name, "dtype": dtype, "backend": b, "op": op,
                       "batch": gen_batch if generating else preset.batch,
                       "seq_len": PROMPT_LEN if generating else preset.seq_len,
                       "tokens_per_call": n_tokens[op, b],
                       "num_parameters": model.num_parameters(),
                       **s,
                       "tokens_per_s": n_tokens[op, b] / s["median_s"],
                       "flops_per_call": flops,
                       "gflops": None if flops is None else flops / s["median_s"] / 1e9}
                if memory:
                    row.update(_memory(calls[op, b], traced=not b.startswith("torch-")))
                out["results"].append(row)
            # paired ratios, round by round: numpy-fast against every other backend, and the
            # PyTorch backend against the independent GPT-2
            pairs = [("numpy-fast", b) for b in names if b != "numpy-fast"] \
                if "numpy-fast" in names else []
            if "torch-baseline" in names:
                pairs += [(b, "torch-baseline") for b in ("torch-sdpa", "torch-explicit")
                          if b in names]
            for fast, slow in pairs:
                per_round = np.asarray(times[op, slow]) / np.asarray(times[op, fast])
                if generating and n_tokens[op, slow] != n_tokens[op, fast]:
                    per_round = per_round * n_tokens[op, fast] / n_tokens[op, slow]
                out["ratios"].append({
                    "preset": preset.name, "dtype": dtype, "op": op,
                    "name": f"{fast} speed-up over {slow}",
                    "median": float(np.median(per_round)), "min": float(per_round.min()),
                    "max": float(per_round.max())})
        # the KV cache speed-up, paired per round: the same model, prompt and number of greedy
        # tokens with and without the cache; the two must also agree on the tokens
        if len(group) == 2:
            for b in names:
                per_round = (np.asarray(times["generate_nocache", b])
                             / np.asarray(times["generate", b]))
                out["ratios"].append({
                    "preset": preset.name, "dtype": dtype, "op": "generate",
                    "name": f"KV cache speed-up for {b}", "backend": b,
                    "tokens": n_tokens["generate", b] // gen_batch, "batch": gen_batch,
                    "median": float(np.median(per_round)), "min": float(per_round.min()),
                    "max": float(per_round.max()),
                    "same_tokens": bool(_as_list(outputs["generate", b])
                                        == _as_list(outputs["generate_nocache", b]))})


def _lead_in(call: Callable[[], object], seconds: float) -> int:
    """Run ``call`` untimed, back to back, for at least ``seconds`` (once at least if > 0).

    Examples
    --------
    >>> _lead_in(lambda: None, 0.0), _lead_in(lambda: time.sleep(0.01), 0.001)
    (0, 1)
    """
    if seconds <= 0:
        return 0
    n, start = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - start < seconds:
        call()
        n += 1
    return n


def _op_groups(ops: Sequence[str]) -> list[list[str]]:
    """The ops timed in the same rounds: each op alone, except that ``generate`` and
    ``generate_nocache`` share their rounds, so that their ratio is paired per round.

    Examples
    --------
    >>> _op_groups(["forward", "generate", "fwd_bwd", "generate_nocache"])
    [['forward'], ['generate', 'generate_nocache'], ['fwd_bwd']]
    """
    generation = [op for op in ops if op.startswith("generate")]
    return [generation if op.startswith("generate") else [op] for op in ops
            if not op.startswith("generate") or op == generation[0]]


def _as_list(tokens) -> list[int]:
    return [int(t) for t in np.asarray(tokens).ravel()]


# --------------------------------------------------------------------------- the report
def _find(results, **key):
    for r in results:
        if all(r.get(k) == v for k, v in key.items()):
            return r
    return None


def format_report(results: dict, compact: bool = False) -> str:
    r"""A plain-text report: environment, one table per preset and dtype, and the headline ratios.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_suite`.
    compact : bool
        Only the median, tokens/s, GFLOP/s and %peak columns, and a short BLAS line: about 75
        characters wide, for a narrow page (the gallery). The full report is 140 wide.

    Examples
    --------
    >>> res = run_suite(presets=["tiny"], backends=["numpy"], dtypes=["float64"], repeats=1,
    ...                 warmup=0, ops=["forward"], memory=False, settle=0.0, verbose=False)
    >>> print(format_report(res))  # doctest: +ELLIPSIS
    literate_tx benchmark
    ...
    tiny float64 ...
    backend         op                  median ms ...
    numpy           forward ...
    >>> max(map(len, format_report(res, compact=True).splitlines())) <= 80
    True
    """
    env, st = results["environment"], results["settings"]
    lines = ["literate_tx benchmark", "=" * 21,
             f"cpu: {env.get('cpu')} ({env['cpus_usable']} usable), threads: {st['threads']}, "
             f"torch threads: {env.get('torch_threads', '-')}",
             f"numpy {env['numpy']}, torch {env.get('torch', '-')}, python {env['python']}",
             f"BLAS: {_blas_line(env['blas']) if compact else env['blas']}",
             f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']} "
             f"OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']}",
             f"load average before {results['load_before']}, after {results.get('load_after')}",
             f"matmul peak GFLOP/s: start {results['matmul_peak_gflops']}, end "
             f"{results.get('matmul_peak_gflops_end')}",
             f"repeats {st['repeats']} after {st['warmup']} warm-up, round-robin over backends,",
             f"lead-in {st.get('lead_in_s', 0)} s, settle {st.get('settle_s', 0)} s; "
             f"wall {results.get('wall_s')} s", ""]
    if compact:
        header = (f"{'backend':15s} {'op':17s} {'median ms':>10s} {'tokens/s':>10s} "
                  f"{'GFLOP/s':>8s} {'%peak':>6s}")
    else:
        header = (f"{'backend':15s} {'op':17s} {'median ms':>10s} {'IQR ms':>15s} "
                  f"{'min-max ms':>17s} {'tokens/s':>10s} {'GFLOP/s':>8s} {'%peak':>6s} "
                  f"{'tracemalloc MB':>14s} {'RSS+ MB':>8s} {'params':>8s}")
    groups: dict[tuple, list] = {}
    for r in results["results"]:
        groups.setdefault((r["preset"], r["dtype"]), []).append(r)
    for (preset, dtype), rows in groups.items():
        p = PRESETS[preset]
        lines += [f"{preset} {dtype} (B={p.batch}, T={p.seq_len}, V={p.config.vocab_size}, "
                  f"C={p.config.d_model}, L={p.config.n_layers}, H={p.config.n_heads}, "
                  f"F={p.config.d_ff}; generation: batch {st.get('gen_batch', 1)}, "
                  f"{st['prompt_len']}-token prompt)",
                  header, "-" * len(header)]
        for r in sorted(rows, key=lambda r: (OPS.index(r["op"]), BACKENDS.index(r["backend"]))):
            ms = 1e3
            frac = r.get("peak_fraction")
            gflops = "" if r["gflops"] is None else format(r["gflops"], ".2f")
            peak = "" if frac is None else format(100 * frac, ".1f")
            if compact:
                lines.append(f"{r['backend']:15s} {r['op']:17s} {r['median_s'] * ms:10.3f} "
                             f"{r['tokens_per_s']:10.0f} {gflops:>8s} {peak:>6s}")
                continue
            lines.append(
                f"{r['backend']:15s} {r['op']:17s} {r['median_s'] * ms:10.3f} "
                f"{r['q25_s'] * ms:7.2f}-{r['q75_s'] * ms:<7.2f} "
                f"{r['min_s'] * ms:8.2f}-{r['max_s'] * ms:<8.2f} {r['tokens_per_s']:10.0f} "
                f"{gflops:>8s} {peak:>6s} "
                f"{_mb(r.get('tracemalloc_peak_mb')):>14s} {_mb(r.get('rss_peak_delta_mb')):>8s} "
                f"{r['num_parameters']:8d}")
        lines.append("")
    lines += ["Headline figures", "----------------"] + _headlines(results)
    if compact:  # the table rows are 72 wide; wrap the prose lines
        lines = [part for line in lines
                 for part in (textwrap.wrap(line, 78, subsequent_indent="    ") or [""])]
    return "\n".join(lines) + "\n"


def _blas_line(blas) -> str:
    """``openblas 0.3.31 SkylakeX, 2 threads`` for each BLAS library (or the note, unchanged)."""
    if not isinstance(blas, list):
        return str(blas)
    return "; ".join(f"{b.get('internal_api')} {b.get('version')} {b.get('architecture')}, "
                     f"{b.get('num_threads')} threads" for b in blas) or "none found"


def _mb(x):
    return "" if x is None else f"{x:.2f}"


def _headlines(results) -> list[str]:
    res, out = results["results"], []
    for ratio in results["ratios"]:
        if ratio["op"] == "train_step" and ratio["name"].endswith(
                ("torch-sdpa", "torch-explicit", "torch-baseline")):
            out.append(f"{ratio['preset']} {ratio['dtype']} train step: {ratio['name']}: "
                       f"x{ratio['median']:.2f} (paired per round, min x{ratio['min']:.2f}, "
                       f"max x{ratio['max']:.2f})")
    for ratio in results["ratios"]:
        if ratio["name"].startswith("KV cache speed-up"):
            same = ("the same tokens" if ratio["same_tokens"] else
                    "the tokens DIFFER (rounding at a near-tie of two logits?)")
            out.append(f"{ratio['preset']} {ratio['dtype']} {ratio['backend']}: KV cache "
                       f"x{ratio['median']:.1f} faster for {ratio['tokens']} new tokens"
                       + (f" x {ratio['batch']} sequences" if ratio.get("batch", 1) > 1 else "")
                       + " (paired "
                       f"per round, min x{ratio['min']:.1f}, max x{ratio['max']:.1f}; {same})")
    for r in res:
        if r["backend"] in PYTHON_BACKENDS and r["op"] == "forward":
            out.append(f"{r['preset']} {r['dtype']} {r['backend']} forward: "
                       f"{r['median_s'] * 1e3:.2f} ms")
    for r in res:
        if r["backend"] == "torch-sdpa" and r["op"] in ("fwd_bwd", "train_step"):
            ex = _find(res, preset=r["preset"], dtype=r["dtype"], backend="torch-explicit",
                       op=r["op"])
            if ex is not None:
                out.append(f"{r['preset']} {r['dtype']} {r['op']}: torch SDPA "
                           f"{r['tokens_per_s']:.0f} tokens/s vs explicit "
                           f"{ex['tokens_per_s']:.0f} tokens/s")
    return out or ["(none for this selection)"]


# --------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the benchmark's options to ``parser`` (shared by ``python -m literate_tx.bench`` and
    ``literate-tx bench``).

    Examples
    --------
    >>> import argparse
    >>> args = add_arguments(argparse.ArgumentParser()).parse_args(["--quick"])
    >>> args.quick, args.out
    (True, 'bench_results')
    """
    parser.add_argument("--presets", default="tiny,small,medium",
                        help="comma-separated sizes: " + ", ".join(PRESETS))
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated: " + ", ".join(BACKENDS))
    parser.add_argument("--dtypes", default="float32,float64", help="float32 and/or float64")
    parser.add_argument("--ops", default=",".join(OPS), help="comma-separated: " + ", ".join(OPS))
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per operation (default 7; 3 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed calls first (default 2; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS / torch / numpy-fast threads (default: usable CPUs)")
    parser.add_argument("--gen-tokens", type=int, default=None,
                        help="new tokens per generation (default 256; 32 with --quick)")
    parser.add_argument("--gen-batch", type=int, default=1,
                        help="sequences generated at once (default 1: literate_tx.generate)")
    parser.add_argument("--lead-in", type=float, default=0.2,
                        help="seconds of untimed back-to-back calls of the same backend before "
                             "each timed call (default 0.2)")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds of sleep before each timed call (default 0)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory calls")
    parser.add_argument("--compact", action="store_true",
                        help="print a narrow table (median, tokens/s, GFLOP/s, %%peak); "
                             "report.txt keeps every column")
    parser.add_argument("--quick", action="store_true",
                        help="few repeats, 32 generated tokens: a smoke run")
    parser.add_argument("--out", default="bench_results",
                        help="folder for benchmark_results.json and report.txt")
    group = parser.add_argument_group(
        "time to quality", "validation loss against wall-clock time (literate_tx.quality)")
    group.add_argument("--time-to-quality", action="store_true",
                       help="train each backend for --budget seconds on the same data and "
                       "report its validation loss over time (instead of the timings)")
    group.add_argument("--budget", type=float, default=90.0,
                       help="seconds of training per backend (default 90: with the "
                       "evaluations, under 6 minutes)")
    group.add_argument("--recipe", default="tiny", help="training recipe (default tiny)")
    group.add_argument("--quality-backends", default="numpy-fast,torch,torch-compiled",
                       help="comma-separated: numpy-fast, torch, torch-compiled")
    group.add_argument("--evals", type=int, default=8,
                       help="validation points per backend after the first (default 8)")
    group.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="change a TrainConfig field of the recipe, e.g. --set "
                       "batch_size=16 (repeatable)")
    return parser


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for parsed ``args``; write the JSON and the report; return 0.

    Examples
    --------
    >>> import argparse, tempfile
    >>> args = add_arguments(argparse.ArgumentParser()).parse_args(
    ...     ["--presets", "tiny", "--backends", "numpy", "--dtypes", "float64", "--ops",
    ...      "forward", "--repeats", "1", "--warmup", "0", "--no-memory",
    ...      "--out", tempfile.mkdtemp()])
    >>> import contextlib, io
    >>> with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    ...     code = run(args)
    >>> code
    0
    """
    if getattr(args, "time_to_quality", False):
        return _run_quality(args)
    results = run_suite(
        presets=_split(args.presets), backends=_split(args.backends), dtypes=_split(args.dtypes),
        ops=_split(args.ops),
        repeats=args.repeats if args.repeats is not None else (3 if args.quick else 7),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else 2),
        threads=args.threads,
        gen_tokens=args.gen_tokens if args.gen_tokens is not None else (32 if args.quick else 256),
        gen_batch=args.gen_batch,
        memory=not args.no_memory, lead_in=args.lead_in, settle=args.settle)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark_results.json").write_text(json.dumps(results, indent=1))
    report = format_report(results)
    (out / "report.txt").write_text(report)
    print(format_report(results, compact=True) if args.compact else report)
    print(f"wrote {out / 'benchmark_results.json'} and {out / 'report.txt'}")
    return 0


def _run_quality(args: argparse.Namespace) -> int:
    import yaml

    from .quality import format_quality_report, plot_quality, time_to_quality

    overrides = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep or not field:
            raise ValueError(f"--set {item!r}: use FIELD=VALUE, e.g. --set batch_size=16")
        overrides[field.strip()] = yaml.safe_load(value)
    results = time_to_quality(recipe=args.recipe, budget=args.budget,
                              backends=_split(args.quality_backends), evals=args.evals,
                              threads=args.threads or 1, overrides=overrides)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality_results.json").write_text(json.dumps(results, indent=1))
    report = format_quality_report(results)
    (out / "quality_report.txt").write_text(report + "\n")
    plot_quality(results, out / "quality.png")
    print(report)
    print(f"wrote {out / 'quality_results.json'}, {out / 'quality_report.txt'} and "
          f"{out / 'quality.png'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m literate_tx.bench``; ``argv`` defaults to ``sys.argv[1:]``.

    Examples
    --------
    >>> main(["--presets", "huge"])
    Traceback (most recent call last):
    ...
    ValueError: presets=['huge'] is not allowed; choose from 'tiny', 'small', 'medium'
    """
    parser = argparse.ArgumentParser(prog="python -m literate_tx.bench",
                                     description="Benchmark the literate_tx backends.")
    return run(add_arguments(parser).parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

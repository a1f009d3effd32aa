r""":class:`FastNumpyModel`: the reference model with the fused, threaded training step and
decoding.

Examples
--------
>>> from literate_tx.numpy_backend.fast import FastNumpyModel
>>> FastNumpyModel.__mro__[1].__name__
'NumpyModel'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ...config import ModelConfig
from ...inputs import as_targets, as_tokens
from ..block import subdict
from ..model import NumpyModel
from .kernels import _attention_bwd, _attention_fwd, _mlp_bwd, _mlp_fwd, _norm_bwd, _norm_fwd
from .memory import Allocator, Workspace, fresh, keep_freed_memory, within


# --------------------------------------------------------------------------- the model
def _check_positive_int(name: str, value, note: str = "") -> int:
    """``value`` if it is a positive int (not a bool); else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed; {name} must be a positive int{note}")
    return value


def _check_threads(threads: int | None) -> int:
    """``threads``, or by default the CPUs this process may use, at most 2; a clear error for
    anything but a positive int."""
    if threads is None:
        threads = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1))
    return _check_positive_int("threads", threads, " (or None for automatic)")


class FastNumpyModel(NumpyModel):
    r""":class:`~.model.NumpyModel` with the fused, threaded training step of this module.

    Same constructor arguments, attributes and methods as the reference; ``forward`` (without
    ``return_weights``), ``loss_and_grads`` and ``decode`` take the fast path, everything else
    is inherited.

    Parameters
    ----------
    config : ModelConfig
    params : mapping of str to ndarray, optional
    seed : int
    dtype : {"float32", "float64"}
    threads : int, optional
        Python threads that split the batch (each drives one BLAS thread while the step runs).
        Default: the number of CPUs this process may use, at most 2. ``1`` runs unthreaded with
        BLAS's own threads.
    keep_memory : bool
        Call :func:`~literate_tx.numpy_backend.fast.keep_freed_memory`, which changes the
        allocator of the whole process (every later allocation, not only this model's).
        Default False: opt in where the process does nothing else, as the benchmark does.
        The function computed is the same either way.
    query_block : int
        Query rows per block of the causal attention (:func:`_query_blocks`): each block is
        scored only against the keys it can see. Default 64; ``max_seq_len`` or more turns
        the blocking off. Any value gives the same function.
    reuse_buffers : bool
        Keep the large arrays of ``loss_and_grads`` in a
        :class:`~literate_tx.numpy_backend.fast.Workspace` per thread (``self.workspaces``) and
        write into them again at the next call, instead of allocating (and page-faulting)
        them every step. Default True. The arrays stay allocated between calls, about the
        activation memory of one step; ``False`` frees them after each call. The gradients and
        logits returned are fresh arrays either way, and the function is the same.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> m = FastNumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), threads=1)
    >>> m.backend, m.fast, m.threads, m.query_block, m.num_parameters()
    ('numpy', True, 1, 64, 840)
    >>> _ = m.loss_and_grads([[1, 2, 3]], [[2, 3, 4]])
    >>> m.workspaces
    [Workspace(36 arrays, 0.0 MiB)]
    >>> FastNumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), threads=0)
    Traceback (most recent call last):
    ...
    ValueError: threads=0 is not allowed; threads must be a positive int (or None for automatic)
    >>> FastNumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), query_block=0.5)
    Traceback (most recent call last):
    ...
    ValueError: query_block=0.5 is not allowed; query_block must be a positive int
    """

    fast = True

    def __init__(self, config: ModelConfig, params: Mapping | None = None, *, seed: int = 0,
                 dtype: str = "float32", threads: int | None = None, keep_memory: bool = False,
                 query_block: int = 64, reuse_buffers: bool = True):
        self.query_block = _check_positive_int("query_block", query_block)
        if not isinstance(reuse_buffers, bool):
            raise ValueError(f"reuse_buffers={reuse_buffers!r} is not allowed; give True or "
                             "False")
        self.reuse_buffers = reuse_buffers
        super().__init__(config, params, seed=seed, dtype=dtype)
        self.threads = threads = _check_threads(threads)
        #: One workspace per thread, filled by the first ``loss_and_grads`` call.
        self.workspaces = [Workspace() for _ in range(threads)] if reuse_buffers else []
        self._pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None
        self._blas = None
        if threads > 1:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError as exc:
                raise ImportError("threads > 1 needs threadpoolctl to give each thread one BLAS "
                                  "thread: pip install threadpoolctl (or pass threads=1)") from exc
            self._blas = ThreadpoolController()
        if keep_memory:
            keep_freed_memory()

    def load_parameters(self, params: Mapping) -> None:
        """As :meth:`NumpyModel.load_parameters`; also splits each block's parameters for
        :meth:`_decode` (shared arrays, so in-place updates reach them)."""
        super().load_parameters(params)
        self._block_parts = [(subdict(b, "attn."), subdict(b, "mlp.")) for b in self._blocks]

    # ------------------------------------------------------------------ one shard of a batch
    def _shard(self, tokens, targets, masks, n_valid, backward, ws: Allocator = fresh):
        """Forward (and backward) of a slice of the batch; the loss is summed, not averaged.

        ``ws``: where the large arrays come from (:mod:`.memory`): the forward pass of layer i
        takes them from scope ``i.``, its backward pass from ``bwd0.`` or ``bwd1.`` by the
        parity of i, so that a layer never writes over the gradient it receives, which the
        layer above left in the other scope.
        """
        cfg, p = self.config, self.params
        B, T = tokens.shape
        C, V = cfg.d_model, cfg.vocab_size
        x = self._embed_rows(tokens, 0, masks.get("embed.dropout"),
                             out=ws("embed", (B, T, C), p["embed.tokens"].dtype))  # (N, C)
        caches = []
        for i in range(cfg.n_layers):
            x, cache, _ = self._block_fwd(x, B, T, self._blocks[i],
                                          subdict(masks, f"blocks.{i}."),
                                          parts=self._block_parts[i], new=within(ws, f"{i}."))
            caches.append(cache)
        x, logits, final, w_head = self._head(x, within(ws, "head."))  # (N, C), (N, V)
        if not backward:
            return logits.reshape(B, T, V)
        # cross-entropy, eqs. (ce-forward), (ce-backward), summed over this shard
        tgt = targets.reshape(-1)  # (N,)
        valid = tgt != -1  # (N,), targets were remapped so that -1 means "ignored"
        rows = np.arange(tgt.size)
        logits -= logits.max(axis=-1, keepdims=True)  # (N, V), shifted logits
        probs = np.exp(logits, out=ws("probs", logits.shape, logits.dtype))  # (N, V)
        total = probs.sum(axis=-1, keepdims=True)  # (N, 1)
        logp = logits[rows, tgt] - np.log(total[:, 0])  # (N,)
        loss_sum = -float(np.sum(logp[valid]))
        probs /= total
        probs[rows, tgt] -= 1.0
        probs *= 1.0 / n_valid
        probs[~valid] = 0.0  # (N, V), dlogits
        grads = {}
        dx = np.matmul(probs, w_head.T, out=ws("head.dx", (B * T, C), probs.dtype))  # (N, C)
        dw_head = x.T @ probs  # (C, V)
        if final is not None:
            dx, grads["final_norm.weight"], db = _norm_bwd(dx, final, within(ws, "head.bwd."))
            if db is not None:
                grads["final_norm.bias"] = db
        for i in reversed(range(cfg.n_layers)):
            dx, g = self._block_bwd(dx, caches[i], within(ws, f"bwd{i % 2}."))  # (N, C)
            grads.update({f"blocks.{i}.{k}": v for k, v in g.items()})
        if "embed.dropout" in masks:
            dx *= masks["embed.dropout"].reshape(B * T, C)
        flat = tokens.reshape(-1)  # (N,)
        if V * flat.size <= 2**24:  # one-hot product, eq. (embed-backward)
            dtable = (flat[None, :] == np.arange(V)[:, None]).astype(x.dtype) @ dx  # (V, C)
        else:  # pragma: no cover - large vocabularies
            dtable = np.zeros((V, C), dtype=x.dtype)
            np.add.at(dtable, flat, dx)
        if cfg.tie_embeddings:
            dtable += dw_head.T
        else:
            grads["lm_head.w"] = dw_head
        grads["embed.tokens"] = dtable
        if cfg.position == "learned":
            dpos = np.zeros_like(p["embed.positions"])  # (T_max, C)
            dpos[:T] = dx.reshape(B, T, C).sum(axis=0)
            grads["embed.positions"] = dpos
        return loss_sum, grads

    def _block_fwd(self, x, B, T, p, masks, past=None, parts=None, new: Allocator = fresh):
        """Eq. (residual) on rows (N, C), as :func:`~.block.block_forward`.

        Returns the output rows, what the backward pass needs, and (with ``past``, for
        incremental decoding) this layer's extended key/value cache. ``parts``: the attention's
        and the MLP's parameters under their local names, if already split off ``p``. ``new``:
        the allocator of this layer's arrays.
        """
        cfg = self.config
        post, sandwich = cfg.residual == "post", cfg.residual == "sandwich"

        def norm(name, z):
            return _norm_fwd(cfg.norm, z, p.get(f"{name}.weight"), p.get(f"{name}.bias"),
                             cfg.norm_eps, within(new, f"{name}."))

        attn_mask = masks.get("attn.resid_dropout")
        mlp_mask = masks.get("mlp.resid_dropout")
        h, attn_norm = (x, None) if post else norm("attn_norm", x)  # (N, C)
        attn_p, mlp_p = parts or (subdict(p, "attn."), subdict(p, "mlp."))
        a, attn, kv = _attention_fwd(h, B, T, attn_p, cfg, masks.get("attn.weights_dropout"),
                                     past, self.query_block, within(new, "attn."))  # (N, C)
        attn_out_norm = None
        if sandwich:
            a, attn_out_norm = norm("attn_out_norm", a)
        if attn_mask is not None:
            a *= attn_mask.reshape(B * T, -1)
        x = np.add(x, a, out=new("after_attn", x.shape, x.dtype))  # (N, C)
        if post:
            x, attn_norm = norm("attn_norm", x)
        h, mlp_norm = (x, None) if post else norm("mlp_norm", x)
        m, mlp = _mlp_fwd(h, mlp_p, cfg, within(new, "mlp."))  # (N, C)
        mlp_out_norm = None
        if sandwich:
            m, mlp_out_norm = norm("mlp_out_norm", m)
        if mlp_mask is not None:
            m *= mlp_mask.reshape(B * T, -1)
        x = np.add(x, m, out=new("after_mlp", x.shape, x.dtype))  # (N, C)
        if post:
            x, mlp_norm = norm("mlp_norm", x)
        return x, (cfg.residual, attn_norm, attn, attn_out_norm, attn_mask, mlp_norm, mlp,
                   mlp_out_norm, mlp_mask), kv

    @staticmethod
    def _block_bwd(dy, cache, new: Allocator = fresh):
        """Eq. (residual) backwards, as :func:`~.block.block_backward`; ``new`` allocates its
        arrays (never the one ``dy`` lives in, see :meth:`_shard`)."""
        (residual, attn_norm, attn, attn_out_norm, attn_mask, mlp_norm, mlp, mlp_out_norm,
         mlp_mask) = cache
        post, sandwich = residual == "post", residual == "sandwich"
        grads = {}

        def norm_bwd(name, dz, norm_cache):
            return norm_grads(name, _norm_bwd(dz, norm_cache, within(new, f"{name}.")))

        def norm_grads(name, triple):
            dz, dw, db = triple
            if dw is not None:
                grads[f"{name}.weight"] = dw
            if db is not None:
                grads[f"{name}.bias"] = db
            return dz

        if post:
            dy = norm_bwd("mlp_norm", dy, mlp_norm)
        dm = dy if mlp_mask is None else dy * mlp_mask.reshape(dy.shape)  # (N, C)
        if sandwich:
            dm = norm_bwd("mlp_out_norm", dm, mlp_out_norm)
        dh, g = _mlp_bwd(dm, mlp, within(new, "mlp."))
        grads.update({f"mlp.{k}": v for k, v in g.items()})
        if not post:
            dh = norm_bwd("mlp_norm", dh, mlp_norm)
        dx = np.add(dy, dh, out=new("dx", dy.shape, dy.dtype))  # (N, C), the paths meet
        if post:
            dx = norm_bwd("attn_norm", dx, attn_norm)
        da = dx if attn_mask is None else dx * attn_mask.reshape(dx.shape)
        if sandwich:
            da = norm_bwd("attn_out_norm", da, attn_out_norm)
        dh, g = _attention_bwd(da, attn, within(new, "attn."))
        grads.update({f"attn.{k}": v for k, v in g.items()})
        if not post:
            dh = norm_bwd("attn_norm", dh, attn_norm)
        dh += dx
        return dh, grads

    # ------------------------------------------------------------------ incremental decoding
    def _decode(self, tokens, past):
        """:meth:`~.model.NumpyModel.decode` with this module's kernels, on the calling thread.

        The same layers as :meth:`_shard`'s forward pass, for T new tokens at positions
        ``T_past ..``: the embedding adds the positions from ``T_past`` on, and every layer's
        attention appends its keys and values to its cache (eq. (attn-kv-cache)). A decoding
        step has one row per sequence, too little work to split over threads.
        """
        B, T = tokens.shape
        x = self._embed_rows(tokens, past[0].length)  # (N, C)
        kv = []
        for i in range(self.config.n_layers):
            x, _, layer_kv = self._block_fwd(x, B, T, self._blocks[i], {}, past[i],
                                             self._block_parts[i])
            kv.append(layer_kv)
        logits = self._head(x)[1]  # (N, V)
        return logits.reshape(B, T, self.config.vocab_size), kv

    # ------------------------------------------------------------------ shared by both passes
    def _embed_rows(self, tokens, offset: int, mask=None, out=None):
        """Eq. (embed-forward) for (B, T) tokens at positions ``offset ..``, times the
        embedding's dropout ``mask`` if given: the residual stream as (B T, C) rows, written
        into ``out`` (B, T, C) if given."""
        B, T = tokens.shape
        h = np.take(self.params["embed.tokens"], tokens, axis=0, out=out)  # (B, T, C), a copy
        pos = self._position_table(T, offset)
        if pos is not None:
            h += pos[offset:offset + T]  # (T, C), positions offset .. offset + T - 1
        if mask is not None:
            h *= mask
        return h.reshape(B * T, self.config.d_model)  # (N, C)

    def _head(self, x, new: Allocator = fresh):
        """The final norm (if any) and the head on rows (N, C): the normed rows, the logits
        (N, V), the norm's cache (None without a norm) and :math:`W_{head}` (C, V)."""
        cfg, p = self.config, self.params
        final = None
        if cfg.has_final_norm:
            x, final = _norm_fwd(cfg.norm, x, p["final_norm.weight"], p.get("final_norm.bias"),
                                 cfg.norm_eps, within(new, "final_norm."))  # (N, C)
        w_head = p["embed.tokens"].T if cfg.tie_embeddings else p["lm_head.w"]  # (C, V)
        logits = np.matmul(x, w_head, out=new("logits", (x.shape[0], w_head.shape[1]), x.dtype))
        return x, logits, final, w_head  # (N, C), (N, V)

    # ------------------------------------------------------------------ threads
    def _run(self, tokens, targets, masks, n_valid, backward):
        """Split the batch over ``self.threads`` threads, each with one BLAS thread."""
        n = min(self.threads, tokens.shape[0])
        # the workspaces serve the training step only: evaluation and decoding come in other
        # shapes, which would replace the step's arrays at every switch
        spaces = self.workspaces if backward and self.reuse_buffers else [fresh] * n
        if n == 1:
            return [self._shard(tokens, targets, masks, n_valid, backward, spaces[0])]
        bounds = np.linspace(0, tokens.shape[0], n + 1).astype(int)
        parts = [slice(bounds[j], bounds[j + 1]) for j in range(n)]

        def job(j):
            part = parts[j]
            return self._shard(tokens[part], None if targets is None else targets[part],
                               {name: m[part] for name, m in masks.items()}, n_valid, backward,
                               spaces[j])

        with self._blas.limit(limits=1, user_api="blas"):
            futures = [self._pool.submit(job, j) for j in range(1, n)]
            first = job(0)
            return [first] + [f.result() for f in futures]

    # ------------------------------------------------------------------ public API
    def forward(self, tokens, *, train: bool = False, masks: Mapping | None = None,
                return_weights: bool = False):
        """Logits for every position; as :meth:`NumpyModel.forward` (same arguments).

        Examples
        --------
        >>> import numpy as np, literate_tx as ltx
        >>> cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8)
        >>> fast = FastNumpyModel(cfg, dtype="float64", threads=1)
        >>> ref = NumpyModel(cfg, fast.parameters(), dtype="float64")
        >>> bool(np.allclose(fast.forward([1, 2, 3]), ref.forward([1, 2, 3]), atol=1e-12))
        True
        """
        if return_weights:
            return super().forward(tokens, train=train, masks=masks, return_weights=True)
        arr = as_tokens(tokens, self.config)
        self._masks = self._masks_for(arr, train, masks)
        logits = np.concatenate(self._run(arr, None, self._masks, 1, backward=False))
        return logits[0] if np.ndim(tokens) == 1 else logits

    def loss_and_grads(self, tokens, targets, *, train: bool = False,
                       masks: Mapping | None = None, ignore_index: int = -100):
        """Mean cross-entropy and its gradients; as :meth:`NumpyModel.loss_and_grads`.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = FastNumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), dtype="float64")
        >>> loss, grads = m.loss_and_grads([[1, 2]], [[2, 3]])
        >>> round(loss, 1), list(grads) == list(m.parameters())
        (2.3, True)
        >>> m.loss_and_grads([[1, 2]], [[-100, -100]])
        Traceback (most recent call last):
        ...
        ValueError: every target equals ignore_index=-100; at least one position must count
        """
        arr = as_tokens(tokens, self.config)
        tgt = as_targets(targets, arr, self.config, ignore_index)
        valid = tgt != ignore_index
        n_valid = int(valid.sum())
        if n_valid == 0:
            raise ValueError(f"every target equals ignore_index={ignore_index}; at least one "
                             "position must count")
        tgt = np.where(valid, tgt, -1)  # (B, T), -1 marks ignored positions for _shard
        self._masks = self._masks_for(arr, train, masks)
        results = self._run(arr, tgt, self._masks, n_valid, backward=True)
        loss = sum(r[0] for r in results) / n_valid
        grads = results[0][1]
        for _, other in results[1:]:
            for name, g in other.items():
                grads[name] += g
        return loss, {name: grads[name] for name in self.params}  # canonical order

    def __repr__(self) -> str:
        return "Fast" + super().__repr__() + f"[threads={self.threads}]"



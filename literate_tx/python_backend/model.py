r"""The whole decoder-only transformer in pure Python: forward, hand-derived backward, and the API.

Derived in :mod:`literate_tx.numpy_backend.model`: the forward pass of eq. :eq:`model-forward`
(embedding, blocks, final norm, head — :math:`W_{head} = E^\top` when tied) and its reverse-mode
backward pass, where a tied :math:`E` collects the lookup's and the head's gradients.

Everything between the API and the numbers is lists of Python floats and :mod:`math`. NumPy
appears only at the boundary: parameters come in and go out as arrays (converted with
``tolist()``), returned logits and gradients are arrays, and the dropout masks are drawn by the
NumPy backend's generator so that both backends drop the same entries.

**Precision.** Python floats are IEEE doubles, so this backend always *computes* in double
precision. ``dtype`` is kept for the API: parameters are rounded to it when loaded (a float32
model holds exactly float32 values) and every returned array is cast to it.

**Weight columns.** Each output of a linear layer is the dot product of the input row with a
column of :math:`W`; the model keeps those columns from pass to pass and gathers them again only
for a matrix that changed (``PythonModel._columns``).

**Trace mode.** ``trace=True`` or ``trace=Trace()`` reports every step of the forward and
backward pass with its shape and statistics; see :mod:`~literate_tx.python_backend.trace`.

Examples
--------
>>> import numpy as np
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(vocab_size=10, d_model=8, n_layers=2, n_heads=2, d_ff=16, max_seq_len=8)
>>> model = ltx.create_model(cfg, backend="python", seed=0, dtype="float64")
>>> tokens = np.array([[1, 2, 3, 4]])
>>> model.forward(tokens).shape
(1, 4, 10)
>>> loss, grads = model.loss_and_grads(tokens, np.array([[2, 3, 4, 5]]))
>>> sorted(grads) == sorted(model.parameters())
True
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import add

import numpy as np

from ..config import ModelConfig
from ..inputs import as_targets, as_tokens, check_dtype
from ..params import init_params, validate_params
from .attention import KVCache
from .block import block_backward, block_forward, subdict
from .dropout import dropout_backward, dropout_forward, make_masks, mask_shapes
from .embedding import embedding_backward, embedding_forward
from .linear import Weight, linear_backward, linear_forward, transpose, zip_map
from .loss import cross_entropy_backward, cross_entropy_forward
from .norms import norm_backward, norm_forward
from .positions import sinusoidal_table
from .trace import make_tracer

__all__ = ["PythonModel"]


def _shape(x) -> tuple[int, ...]:
    dims = []
    while isinstance(x, (list, tuple)):
        dims.append(len(x))
        x = x[0]
    return tuple(dims)


class PythonModel:
    r"""The transformer of eq. :eq:`model-forward` with lists of floats and hand-written gradients.

    Use :func:`literate_tx.create_model` with ``backend="python"`` rather than calling this
    directly.

    Parameters
    ----------
    config : ModelConfig
    params : mapping of str to ndarray, optional
        Canonical parameters; default: :func:`~literate_tx.params.init_params` with ``seed``.
    seed : int
        Seeds the initial weights (when ``params`` is None) and the dropout generator.
    dtype : {"float32", "float64"}
        Precision of the parameters and of every returned array; the arithmetic itself is
        always double precision (Python floats).
    trace : bool or callable
        ``False`` (default) is silent and costs nothing; ``True`` logs each step to the logger
        ``literate_tx.trace`` at INFO level; a callable (such as a
        :class:`~literate_tx.python_backend.trace.Trace`) receives each
        :class:`~literate_tx.python_backend.trace.TraceRecord`.

    Attributes
    ----------
    params : dict of str to nested list
        The weights themselves, as nested lists of floats; the pure-Python optimisers of
        :mod:`literate_tx.python_backend.optim` update them in place.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> m = PythonModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), seed=0)
    >>> m.backend, m.dtype, m.num_parameters()
    ('python', 'float32', 840)
    """

    backend = "python"

    def __init__(self, config: ModelConfig, params: Mapping | None = None, *, seed: int = 0,
                 dtype: str = "float32", trace=False):
        if not isinstance(config, ModelConfig):
            raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
        self.config = config
        self.dtype = check_dtype(dtype)
        make_tracer(trace)  # validates the setting now rather than at the first call
        self.trace = trace
        self.rng = np.random.default_rng(seed)
        if params is None:
            params = init_params(config, seed=seed, dtype=self.dtype)
        self.params = {}
        self._columns_memo: dict[str, tuple[list, list]] = {}
        self.load_parameters(params)

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, by canonical name, as arrays of the model's dtype.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = PythonModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
        >>> list(m.parameters())[:2]
        ['embed.tokens', 'embed.positions']
        """
        return {name: np.array(value, dtype=self.dtype) for name, value in self.params.items()}

    def load_parameters(self, params: Mapping) -> None:
        """Replace the parameters (checked against the config, rounded to the model's dtype).

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = PythonModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
        >>> m.load_parameters({"embed.tokens": 0})
        Traceback (most recent call last):
        ...
        ValueError: missing parameter(s) 'embed.positions', ... required by the config
        """
        checked = validate_params(self.config, params)
        self.params = {name: np.asarray(v, dtype=self.dtype).astype(np.float64).tolist()
                       for name, v in checked.items()}

    def num_parameters(self) -> int:
        """Number of scalar parameters.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> PythonModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8, tie_embeddings=True)).num_parameters()
        760
        """
        return int(sum(np.prod(_shape(v)) for v in self.params.values()))

    # ------------------------------------------------------------------ internals
    def _columns(self, name: str) -> list:
        r"""``transpose(self.params[name])``, kept from pass to pass while the matrix is unchanged.

        The speed device of :mod:`~literate_tx.python_backend.linear`, and the model's only
        state besides its parameters. The parameters are live nested lists that optimisers and
        users change in place, so next to the columns the memo keeps a shallow copy of the rows
        as they were. Python floats are immutable: any change puts other float objects into the
        rows, and ``rows != copy`` (a comparison in C that tests identity before value, several
        times cheaper than transposing) says whether the columns are stale. A float replaced by
        an equal one leaves them valid.
        """
        w = self.params[name]
        rows_then, cols = self._columns_memo.get(name, (None, None))
        if rows_then != w:
            rows_then, cols = [list(row) for row in w], transpose(w)
            self._columns_memo[name] = rows_then, cols
        return cols

    def _pass_params(self) -> dict:
        """The parameters for one pass, each linear layer's matrix as a :class:`~.linear.Weight`.

        Every matrix outside the embedding is the weight of a linear layer.
        """
        return {name: self._weight(name)
                if isinstance(w[0], list) and not name.startswith("embed.") else w
                for name, w in self.params.items()}

    def _weight(self, name: str, tied_head: bool = False) -> Weight:
        r"""The matrix ``name`` with its columns; ``tied_head``: :math:`E^\top` for the head.

        The tied head's rows are the columns of :math:`E` and its columns are the rows of
        :math:`E`. (The speed path, :class:`~literate_tx.python_backend.fast.FastPythonModel`,
        overrides this method and nothing else.)
        """
        if tied_head:
            return Weight(self._columns(name), self.params[name])
        return Weight(self.params[name], self._columns(name))

    def _position_table(self, T: int, offset: int) -> list | None:
        cfg = self.config
        if cfg.position == "learned":
            return self.params["embed.positions"]
        if cfg.position == "sinusoidal":
            return sinusoidal_table(offset + T, cfg.d_model)
        return None

    def _forward(self, tokens, masks=None, record=None, past=None, tracer=None):
        """Run eq. :eq:`model-forward`; return logits and everything the backward needs."""
        cfg, p = self.config, self._pass_params()
        masks = masks or {}
        offset = 0 if past is None else past[0].length
        h, emb = embedding_forward(tokens, p["embed.tokens"],
                                   self._position_table(len(tokens[0]), offset), offset)
        if tracer:
            tracer.at("embed")("token + position embedding", h, "B T C")
        h = dropout_forward(h, masks.get("embed.dropout"))  # (B, T, C)
        if tracer and "embed.dropout" in masks:
            tracer.at("embed")("after dropout", h, "B T C")
        if record is not None:
            record["embed.out"] = h
        blocks = []
        for i in range(cfg.n_layers):
            local = None if record is None else {}
            h, cache = block_forward(h, subdict(p, f"blocks.{i}."), cfg,
                                     masks=subdict(masks, f"blocks.{i}."),
                                     past=None if past is None else past[i], record=local,
                                     tracer=tracer and tracer.at(f"block {i}"))
            blocks.append(cache)
            if record is not None:
                record.update({f"blocks.{i}.{k}": v for k, v in local.items()})
        final = None
        if cfg.has_final_norm:
            h, final = norm_forward(cfg.norm, h, p["final_norm.weight"], p.get("final_norm.bias"),
                                    cfg.norm_eps)  # (B, T, C)
            if tracer:
                tracer.at("final_norm")("output", h, "B T C")
        if record is not None:
            record["final_norm.out"] = h
        w_head = (self._weight("embed.tokens", tied_head=True) if cfg.tie_embeddings
                  else p["lm_head.w"])  # (C, V); tied: E^T
        logits, head = linear_forward(h, w_head)  # (B, T, V)
        if tracer:
            tracer.at("lm_head")("logits", logits, "B T V")
        return logits, (emb, masks.get("embed.dropout"), blocks, final, head)

    def _backward(self, dlogits, caches, tracer=None) -> dict[str, list]:
        """Walk :meth:`_forward` backwards; return gradients by canonical name."""
        cfg = self.config
        emb, emb_mask, blocks, final, head = caches
        grads: dict[str, list] = {}
        dh, dw_head, _ = linear_backward(dlogits, head)  # (B, T, C), (C, V)
        if tracer:
            tracer.at("lm_head")("d final hidden state", dh, "B T C")
        if final is not None:
            dh, grads["final_norm.weight"], db = norm_backward(dh, final)
            if db is not None:
                grads["final_norm.bias"] = db
            if tracer:
                tracer.at("final_norm")("d input", dh, "B T C")
        for i in reversed(range(cfg.n_layers)):
            dh, g = block_backward(dh, blocks[i],
                                   tracer=tracer and tracer.at(f"block {i}"))  # (B, T, C)
            grads.update({f"blocks.{i}.{k}": v for k, v in g.items()})
        dh = dropout_backward(dh, emb_mask)
        dtable, dpos = embedding_backward(dh, emb)
        if cfg.tie_embeddings:
            # the head's use of E adds to the lookup's
            dtable = zip_map(add, dtable, transpose(dw_head))  # (V, C)
        else:
            grads["lm_head.w"] = dw_head
        grads["embed.tokens"] = dtable
        if cfg.position == "learned":
            grads["embed.positions"] = dpos
        if tracer:
            tracer.at("embed")("d embedding output", dh, "B T C")
            for name in self.params:
                tracer.at("grads")(name, grads[name])
        return {name: grads[name] for name in self.params}  # canonical order

    def _masks_for(self, tokens, train, masks):
        if not train:
            return {}
        B, T = len(tokens), len(tokens[0])
        if masks is None:
            return make_masks(self.config, B, T, self.rng, self.dtype)
        expected = mask_shapes(self.config, B, T)
        checked = {}
        for name, m in masks.items():
            if name not in expected:
                raise ValueError(f"masks has an unknown entry {name!r}; known masks for this "
                                 f"config: {', '.join(map(repr, expected))}")
            arr = np.asarray(m, dtype=self.dtype)
            if arr.shape != expected[name]:
                raise ValueError(f"masks[{name!r}] has shape {arr.shape}, expected "
                                 f"{expected[name]} for a batch of shape {(B, T)}")
            checked[name] = arr.astype(np.float64).tolist()
        return checked

    def _out(self, x) -> np.ndarray:
        return np.array(x, dtype=self.dtype)

    # ------------------------------------------------------------------ public API
    def forward(self, tokens, *, train: bool = False, masks: Mapping | None = None,
                return_weights: bool = False):
        """Logits for every position.

        Parameters
        ----------
        tokens : (B, T) or (T,) int array
        train : bool
            Apply dropout (masks drawn from the model's seeded generator unless given).
        masks : mapping, optional
            Explicit dropout masks from :func:`~literate_tx.masks.make_masks`.
        return_weights : bool
            Also return the attention weights, a list of (B, H, T, T) arrays, one per layer.

        Returns
        -------
        logits : (B, T, V) ndarray, or (T, V) for 1-D input
        weights : list of ndarray, only with ``return_weights=True``

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = PythonModel(ltx.ModelConfig(10, 8, 2, 2, 16, 8), dtype="float64")
        >>> logits, weights = m.forward([1, 2, 3], return_weights=True)
        >>> logits.shape, len(weights), weights[0].shape
        ((3, 10), 2, (1, 2, 3, 3))
        """
        arr = as_tokens(tokens, self.config)
        tok = arr.tolist()
        masks = self._masks_for(tok, train, masks)
        record = {} if return_weights else None
        tracer = make_tracer(self.trace)
        logits, _ = self._forward(tok, masks, record, tracer=tracer)
        logits = self._out(logits)
        if np.ndim(tokens) == 1:
            logits = logits[0]
        if return_weights:
            return logits, [self._out(record[f"blocks.{i}.attn.weights"])
                            for i in range(self.config.n_layers)]
        return logits

    def loss_and_grads(self, tokens, targets, *, train: bool = False,
                       masks: Mapping | None = None, ignore_index: int = -100):
        """Mean cross-entropy and its gradient for every parameter.

        Parameters
        ----------
        tokens : (B, T) int array
        targets : (B, T) int array
            Next-token ids; ``ignore_index`` marks positions that do not count.
        train : bool
            Apply dropout.
        masks : mapping, optional
            Explicit dropout masks.
        ignore_index : int

        Returns
        -------
        loss : float
        grads : dict of str to ndarray
            Same keys, order and shapes as :meth:`parameters`.

        Examples
        --------
        >>> import numpy as np, literate_tx as ltx
        >>> m = PythonModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), dtype="float64")
        >>> loss, grads = m.loss_and_grads([[1, 2]], [[2, 3]])
        >>> round(loss, 1)  # about log(10) at initialisation
        2.3
        >>> grads["embed.tokens"].shape
        (10, 8)
        """
        arr = as_tokens(tokens, self.config)
        tgt = as_targets(targets, arr, self.config, ignore_index)
        tok = arr.tolist()
        masks = self._masks_for(tok, train, masks)
        tracer = make_tracer(self.trace)
        logits, caches = self._forward(tok, masks, tracer=tracer)
        loss, ce = cross_entropy_forward(logits, tgt.tolist(), ignore_index)
        if tracer:
            tracer.at("loss")("cross-entropy", loss)
            tracer = tracer.phase("backward")
        dlogits = cross_entropy_backward(ce)
        if tracer:
            tracer.at("loss")("d logits", dlogits, "B T V")
        grads = self._backward(dlogits, caches, tracer)
        return float(loss), {name: self._out(g) for name, g in grads.items()}

    def run_with_cache(self, tokens):
        """Logits plus every intermediate value, by hook name (evaluation mode).

        Hook names: ``embed.out``; per block ``blocks.{i}.resid_pre``, ``.attn.weights``,
        ``.attn.out``, ``.resid_mid``, ``.mlp.pre_act``, ``.mlp.out``, ``.resid_post``;
        ``final_norm.out``.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = PythonModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
        >>> logits, cache = m.run_with_cache([[1, 2, 3]])
        >>> cache["blocks.0.attn.weights"].shape
        (1, 2, 3, 3)
        """
        arr = as_tokens(tokens, self.config)
        record: dict[str, list] = {}
        logits, _ = self._forward(arr.tolist(), None, record, tracer=make_tracer(self.trace))
        return self._out(logits), {name: self._out(v) for name, v in record.items()}

    def decode(self, tokens, kv_cache=None):
        """Incremental forward pass: logits of new tokens given cached keys and values.

        Parameters
        ----------
        tokens : (B, T) int array
            The new tokens (a prompt the first time, then typically one token).
        kv_cache : list of KVCache, optional
            As returned by the previous call, one per layer; plain pairs of (B, H, T_past, D)
            arrays or nested lists are copied into new caches.

        Returns
        -------
        logits : (B, T, V) ndarray
        kv_cache : list of KVCache, one per layer

        Notes
        -----
        Each layer's cache holds ``max_seq_len`` positions, allocated by the first call and
        written in place by the later ones (eq. :eq:`attn-kv-cache`), so a step writes only its
        own keys and values, whatever the length of the past. Passing one cache to two calls
        (two continuations of one past) is allowed: the second copies the past rather than
        overwrite the first's new positions.

        Examples
        --------
        Feeding tokens one at a time gives the rows of the full forward pass:

        >>> import numpy as np, literate_tx as ltx
        >>> m = PythonModel(ltx.ModelConfig(10, 8, 2, 2, 16, 8, position="rope"), dtype="float64")
        >>> full = m.forward([[1, 2, 3]])
        >>> a, kv = m.decode([[1, 2]])
        >>> b, kv = m.decode([[3]], kv)
        >>> bool(np.allclose(b[0, 0], full[0, 2]))
        True
        """
        cfg = self.config
        if kv_cache is None:
            past = [KVCache.empty(cfg.max_seq_len) for _ in range(cfg.n_layers)]  # for the prompt
        else:
            if len(kv_cache) != cfg.n_layers:
                raise ValueError(
                    f"kv_cache has {len(kv_cache)} layers but the model has "
                    f"n_layers={cfg.n_layers}; pass the list returned by decode"
                )
            past = [c if isinstance(c, KVCache) else  # a (k, v) pair of arrays or lists: copy it
                    KVCache.from_pair(*(np.asarray(a, dtype=np.float64).tolist() for a in c),
                                      cfg.max_seq_len)  # as doubles, like all arithmetic here
                    for c in kv_cache]
        arr = as_tokens(tokens, cfg, max_len=cfg.max_seq_len - past[0].length)
        logits, (_, _, blocks, _, _) = self._forward(arr.tolist(), None, None, past,
                                                     tracer=make_tracer(self.trace))
        return self._out(logits), [c.attn.kv for c in blocks]

    def __repr__(self) -> str:
        cfg = self.config
        return (f"{type(self).__name__}({cfg.n_layers} layers, d_model={cfg.d_model}, "
                f"{self.num_parameters()} parameters, {self.dtype})")

r"""The whole decoder-only transformer in NumPy: forward, hand-derived backward, and the API.

Forward
-------
.. math::
   :label: model-forward

   \xi^{(0)} = \mathrm{drop}(\mathrm{embed}(\mathrm{tok})), \quad
   \xi^{(\ell)} = \mathrm{block}_\ell(\xi^{(\ell-1)}), \quad
   z = N_{final}(\xi^{(L)})\, W_{head},

with :math:`\xi^{(\ell)}` the hidden state (the residual stream) after block :math:`\ell`, and
:math:`W_{head} = E^\top` when the embeddings are tied. The loss is the cross-entropy of
eq. :eq:`ce-forward` in the chapter on the loss.

Backward
--------
Reverse-mode differentiation visits the same steps backwards, each module's backward pass
turning the gradient of its output into the gradients of its input and parameters. With tied
embeddings :math:`E` receives two contributions that add: :math:`\delta E = \delta E_{lookup} +
\delta z^\top N_{final}(\xi^{(L)})` (from the head :math:`z = N_{final}(\xi^{(L)})\, E^\top`).

Examples
--------
>>> import numpy as np
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(vocab_size=10, d_model=8, n_layers=2, n_heads=2, d_ff=16, max_seq_len=8)
>>> model = ltx.create_model(cfg, backend="numpy", seed=0, dtype="float64")
>>> tokens = np.array([[1, 2, 3, 4]])
>>> model.forward(tokens).shape
(1, 4, 10)
>>> loss, grads = model.loss_and_grads(tokens, np.array([[2, 3, 4, 5]]))
>>> sorted(grads) == sorted(model.parameters())
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..config import ModelConfig
from ..inputs import as_targets, as_tokens, check_dtype
from ..params import init_params, validate_params
from .attention import KVCache
from .block import block_backward, block_forward, subdict
from .dropout import dropout_backward, dropout_forward, make_masks, mask_shapes
from .embedding import embedding_backward, embedding_forward
from .linear import linear_backward, linear_forward
from .loss import cross_entropy_backward, cross_entropy_forward
from .norms import norm_backward, norm_forward
from .positions import sinusoidal_table

__all__ = ["NumpyModel"]


class NumpyModel:
    r"""The transformer of eq. :eq:`model-forward` with NumPy arrays and hand-written gradients.

    Use :func:`literate_tx.create_model` rather than calling this directly.

    Parameters
    ----------
    config : ModelConfig
    params : mapping of str to ndarray, optional
        Canonical parameters; default: :func:`~literate_tx.params.init_params` with ``seed``.
    seed : int
        Seeds the initial weights (when ``params`` is None) and the dropout generator.
    dtype : {"float32", "float64"}

    Attributes
    ----------
    params : dict of str to ndarray
        The weights themselves, by canonical name: the arrays the model computes with, not
        copies. The optimisers of :mod:`literate_tx.numpy_backend.optim` update them in place
        (``AdamW(model.params)``) and the next pass sees the change. :meth:`parameters` returns
        copies; :meth:`load_parameters` replaces the arrays (an optimiser built on the old ones
        then updates arrays the model no longer uses).

    Examples
    --------
    >>> import literate_tx as ltx
    >>> m = NumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), seed=0)
    >>> m.backend, m.dtype, m.num_parameters()
    ('numpy', 'float32', 840)

    One optimiser step on the live arrays changes what the model computes:

    >>> from literate_tx.numpy_backend.optim import SGD
    >>> before = m.forward([[1, 2]])
    >>> loss, grads = m.loss_and_grads([[1, 2]], [[2, 3]])
    >>> SGD(m.params, lr=0.1).step(grads)
    >>> bool((m.forward([[1, 2]]) != before).any())
    True
    """

    backend = "numpy"

    def __init__(self, config: ModelConfig, params: Mapping | None = None, *, seed: int = 0,
                 dtype: str = "float32"):
        if not isinstance(config, ModelConfig):
            raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
        self.config = config
        self.dtype = check_dtype(dtype)
        self.rng = np.random.default_rng(seed)
        if params is None:
            params = init_params(config, seed=seed, dtype=self.dtype)
        self.params = {}
        self.load_parameters(params)

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, by canonical name.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = NumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
        >>> list(m.parameters())[:2]
        ['embed.tokens', 'embed.positions']
        """
        return {name: value.copy() for name, value in self.params.items()}

    def load_parameters(self, params: Mapping) -> None:
        """Replace the parameters (checked against the config, cast to the model's dtype).

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = NumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
        >>> m.load_parameters({"embed.tokens": 0})
        Traceback (most recent call last):
        ...
        ValueError: missing parameter(s) 'embed.positions', ... required by the config
        """
        checked = validate_params(self.config, params)
        self.params = {name: np.array(v, dtype=self.dtype) for name, v in checked.items()}
        # Each block's parameters under their local names; the arrays are shared with
        # self.params, so in-place optimiser updates reach them.
        self._blocks = [subdict(self.params, f"blocks.{i}.") for i in range(self.config.n_layers)]

    def num_parameters(self) -> int:
        """Number of scalar parameters.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> NumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8, tie_embeddings=True)).num_parameters()
        760
        """
        return int(sum(v.size for v in self.params.values()))

    # ------------------------------------------------------------------ internals
    def _position_table(self, T: int, offset: int) -> np.ndarray | None:
        cfg = self.config
        if cfg.position == "learned":
            return self.params["embed.positions"]
        if cfg.position == "sinusoidal":
            return sinusoidal_table(offset + T, cfg.d_model, self.dtype)
        return None

    def _forward(self, tokens, masks=None, record=None, past=None):
        """Run eq. :eq:`model-forward`; return logits and everything the backward needs."""
        cfg, p = self.config, self.params
        masks = masks or {}
        offset = 0 if past is None else past[0].length
        h, emb = embedding_forward(tokens, p["embed.tokens"],
                                   self._position_table(tokens.shape[1], offset), offset)
        h = dropout_forward(h, masks.get("embed.dropout"))  # (B, T, C)
        if record is not None:
            record["embed.out"] = h
        blocks = []
        for i in range(cfg.n_layers):
            local = None if record is None else {}
            h, cache = block_forward(h, self._blocks[i], cfg,
                                     masks=subdict(masks, f"blocks.{i}."),
                                     past=None if past is None else past[i], record=local)
            blocks.append(cache)
            if record is not None:
                record.update({f"blocks.{i}.{k}": v for k, v in local.items()})
        final = None
        if cfg.has_final_norm:
            h, final = norm_forward(cfg.norm, h, p["final_norm.weight"], p.get("final_norm.bias"),
                                    cfg.norm_eps)  # (B, T, C)
        if record is not None:
            record["final_norm.out"] = h
        w_head = p["embed.tokens"].T if cfg.tie_embeddings else p["lm_head.w"]  # (C, V)
        logits, head = linear_forward(h, w_head)  # (B, T, V)
        return logits, (emb, masks.get("embed.dropout"), blocks, final, head)

    def _backward(self, dlogits, caches) -> dict[str, np.ndarray]:
        """Walk :meth:`_forward` backwards; return gradients by canonical name."""
        cfg = self.config
        emb, emb_mask, blocks, final, head = caches
        grads: dict[str, np.ndarray] = {}
        dh, dw_head, _ = linear_backward(dlogits, head)  # (B, T, C), (C, V)
        if final is not None:
            dh, grads["final_norm.weight"], db = norm_backward(dh, final)
            if db is not None:
                grads["final_norm.bias"] = db
        for i in reversed(range(cfg.n_layers)):
            dh, g = block_backward(dh, blocks[i])  # (B, T, C)
            grads.update({f"blocks.{i}.{k}": v for k, v in g.items()})
        dh = dropout_backward(dh, emb_mask)  # (B, T, C)
        dtable, dpos = embedding_backward(dh, emb)
        if cfg.tie_embeddings:
            dtable += dw_head.T  # the head's use of E adds to the lookup's, (V, C)
        else:
            grads["lm_head.w"] = dw_head
        grads["embed.tokens"] = dtable
        if cfg.position == "learned":
            grads["embed.positions"] = dpos
        return {name: grads[name] for name in self.params}  # canonical order

    def _masks_for(self, tokens, train, masks):
        if not train:
            return {}
        if masks is None:
            B, T = tokens.shape
            return make_masks(self.config, B, T, self.rng, self.dtype)
        expected = mask_shapes(self.config, *tokens.shape)
        for name, m in masks.items():
            if name not in expected:
                raise ValueError(f"unknown dropout mask {name!r}; expected names: "
                                 f"{', '.join(expected)}")
            if np.shape(m) != expected[name]:
                raise ValueError(f"dropout mask {name!r} has shape {np.shape(m)}, "
                                 f"but this batch needs {expected[name]}")
        return {name: np.asarray(m, dtype=self.dtype) for name, m in masks.items()}

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
        >>> m = NumpyModel(ltx.ModelConfig(10, 8, 2, 2, 16, 8), dtype="float64")
        >>> logits, weights = m.forward([1, 2, 3], return_weights=True)
        >>> logits.shape, len(weights), weights[0].shape
        ((3, 10), 2, (1, 2, 3, 3))
        """
        arr = as_tokens(tokens, self.config)
        record = {} if return_weights else None
        logits, _ = self._forward(arr, self._masks_for(arr, train, masks), record)
        if np.ndim(tokens) == 1:
            logits = logits[0]
        if return_weights:
            return logits, [record[f"blocks.{i}.attn.weights"] for i in range(self.config.n_layers)]
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
        >>> m = NumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), dtype="float64")
        >>> loss, grads = m.loss_and_grads([[1, 2]], [[2, 3]])
        >>> round(loss, 1)  # about log(10) at initialisation
        2.3
        >>> grads["embed.tokens"].shape
        (10, 8)
        """
        arr = as_tokens(tokens, self.config)
        tgt = as_targets(targets, arr, self.config, ignore_index)
        logits, caches = self._forward(arr, self._masks_for(arr, train, masks))
        loss, ce = cross_entropy_forward(logits, tgt, ignore_index)
        grads = self._backward(cross_entropy_backward(ce), caches)
        return loss, grads

    def run_with_cache(self, tokens):
        """Logits plus every intermediate value, by hook name (evaluation mode).

        Hook names: ``embed.out``; per block ``blocks.{i}.resid_pre``, ``.attn.weights``,
        ``.attn.out``, ``.resid_mid``, ``.mlp.pre_act``, ``.mlp.out``, ``.resid_post``;
        ``final_norm.out``.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = NumpyModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
        >>> logits, cache = m.run_with_cache([[1, 2, 3]])
        >>> cache["blocks.0.attn.weights"].shape
        (1, 2, 3, 3)
        """
        arr = as_tokens(tokens, self.config)
        record: dict[str, np.ndarray] = {}
        logits, _ = self._forward(arr, None, record)
        return logits, record

    def decode(self, tokens, kv_cache=None):
        """Incremental forward pass: logits of new tokens given cached keys and values.

        Parameters
        ----------
        tokens : (B, T) int array
            The new tokens (a prompt the first time, then typically one token).
        kv_cache : list of KVCache, optional
            As returned by the previous call, one per layer; plain pairs of (B, H, T_past, D)
            arrays are copied into new caches.

        Returns
        -------
        logits : (B, T, V) ndarray
        kv_cache : list of KVCache, one per layer

        Notes
        -----
        Each layer's cache holds ``max_seq_len`` positions, allocated by the first call and
        written in place by the later ones (eq. :eq:`attn-kv-cache` of the attention chapter),
        so a step copies only its own keys and values, whatever the length of the past.
        Passing one cache to two calls (two continuations of one past) is allowed: the second
        copies the past rather than overwrite the first's new positions.

        Examples
        --------
        Feeding tokens one at a time gives the rows of the full forward pass:

        >>> import numpy as np, literate_tx as ltx
        >>> m = NumpyModel(ltx.ModelConfig(10, 8, 2, 2, 16, 8, position="rope"), dtype="float64")
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
            past = [c if isinstance(c, KVCache) else  # a (k, v) pair of arrays: copy it
                    KVCache.from_pair(*(np.asarray(a, dtype=self.dtype) for a in c),
                                      cfg.max_seq_len)
                    for c in kv_cache]
        arr = as_tokens(tokens, cfg, max_len=cfg.max_seq_len - past[0].length)
        return self._decode(arr, past)

    def _decode(self, tokens: np.ndarray, past: list) -> tuple[np.ndarray, list]:
        """:meth:`decode` after its checks: (B, T) tokens, one :class:`KVCache` per layer."""
        logits, (_, _, blocks, _, _) = self._forward(tokens, None, None, past)
        return logits, [c.attn.kv for c in blocks]

    def __repr__(self) -> str:
        return (f"NumpyModel({self.config.n_layers} layers, d_model={self.config.d_model}, "
                f"{self.num_parameters()} parameters, {self.dtype})")

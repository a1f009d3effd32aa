r"""The whole decoder-only transformer in PyTorch: an ``nn.Module`` and the shared model API.

Derivation: :mod:`literate_tx.numpy_backend.model` (eq. :eq:`model-forward`); autograd walks it
backwards, including the two contributions to a tied embedding.

Two layers of API:

* :class:`Transformer` is a plain ``nn.Module``, tensor in, tensor out:
  ``module(tokens) -> logits``. Its ``named_parameters()`` are exactly the canonical names of
  :func:`literate_tx.params.param_shapes`, in the same order, with weights stored (in, out). Its
  forward pass has no NumPy in it and changes no Python-side state, so it works with optimisers,
  ``torch.autocast``, ``torch.compile`` and ``DistributedDataParallel`` as any module does.
* :class:`TorchModel` wraps it in the API every backend shares (NumPy arrays in and out;
  ``forward``, ``loss_and_grads``, ``parameters``, ``run_with_cache``, ``decode``); its
  ``module`` attribute is the :class:`Transformer`.

Examples
--------
>>> import numpy as np
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(vocab_size=10, d_model=8, n_layers=2, n_heads=2, d_ff=16, max_seq_len=8)
>>> model = ltx.create_model(cfg, backend="torch", seed=0, dtype="float64")
>>> reference = ltx.create_model(cfg, backend="numpy", seed=0, dtype="float64")
>>> tokens = np.array([[1, 2, 3, 4]])
>>> bool(np.allclose(model.forward(tokens), reference.forward(tokens), rtol=0, atol=1e-12))
True
>>> loss, grads = model.loss_and_grads(tokens, np.array([[2, 3, 4, 5]]))
>>> list(grads) == list(model.parameters())
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..config import ModelConfig
from ..inputs import as_targets, as_tokens, check_dtype
from ..params import init_params, validate_params
from .attention import ATTENTION_IMPLS, KVCache
from .block import Block, subdict
from .embedding import Embedding
from .linear import Linear, linear
from .loss import cross_entropy
from .norms import make_norm

__all__ = ["Transformer", "TorchModel"]

_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class Transformer(nn.Module):
    r"""The transformer of eq. :eq:`model-forward` as an ``nn.Module`` with canonical names.

    Parameters
    ----------
    cfg : ModelConfig
    params : mapping of str to array, optional
        Canonical parameters; default: :func:`~literate_tx.params.init_params` with ``seed``
        (the same initial weights as every other backend).
    seed : int
        Seed of the initial weights when ``params`` is None.
    attention : {"sdpa", "explicit"}
        Preferred attention path, see :mod:`~literate_tx.torch_backend.attention`.
    dtype : torch.dtype
    device : torch.device or str, optional

    Examples
    --------
    >>> import literate_tx as ltx
    >>> from literate_tx.params import param_shapes
    >>> cfg = ltx.ModelConfig(10, 8, 2, 2, 16, 8, residual="sandwich", tie_embeddings=True)
    >>> module = Transformer(cfg)
    >>> [n for n, _ in module.named_parameters()] == list(param_shapes(cfg))
    True
    >>> tuple(module(torch.tensor([[1, 2, 3]])).shape)
    (1, 3, 10)
    """

    def __init__(self, cfg: ModelConfig, params: Mapping | None = None, *, seed: int = 0,
                 attention: str = "sdpa", dtype=torch.float32, device=None):
        super().__init__()
        if not isinstance(cfg, ModelConfig):
            raise ValueError(f"cfg must be a ModelConfig, got {type(cfg).__name__}")
        self.config = cfg
        kw = dict(dtype=dtype, device=device)
        # registration order = canonical parameter order
        self.embed = Embedding(cfg, **kw)
        self.blocks = nn.ModuleList(Block(cfg, attention, **kw) for _ in range(cfg.n_layers))
        self.final_norm = make_norm(cfg, **kw) if cfg.has_final_norm else nn.Identity()
        self.lm_head = None if cfg.tie_embeddings else Linear(cfg.d_model, cfg.vocab_size,
                                                              bias=False, **kw)
        if params is None:
            params = init_params(cfg, seed=seed, dtype="float64")
        self.load_canonical(params)

    @torch.no_grad()
    def load_canonical(self, params: Mapping) -> None:
        """Copy canonical parameters (checked against the config) into the module, in place.

        Parameters
        ----------
        params : mapping of str to array-like
            NumPy arrays or tensors by canonical name; cast to each parameter's dtype and device.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
        >>> module = Transformer(cfg)
        >>> module.load_canonical(ltx.init_params(cfg, seed=1))
        >>> module.load_canonical({"embed.tokens": 0})
        Traceback (most recent call last):
        ...
        ValueError: missing parameter(s) 'embed.positions', ... required by the config
        """
        arrays = {n: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v)
                  for n, v in params.items()} if isinstance(params, Mapping) else params
        checked = validate_params(self.config, arrays)
        for name, p in self.named_parameters():
            p.copy_(torch.as_tensor(checked[name]).to(dtype=p.dtype, device=p.device))

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        masks: Mapping[str, torch.Tensor] | None = None,
        past: Sequence[KVCache | tuple[torch.Tensor, torch.Tensor]] | None = None,
        record: dict | None = None,
        return_kv: bool = False,
    ):
        r"""Logits for every position, eq. :eq:`model-forward`.

        Parameters
        ----------
        tokens : (B, T) int64 Tensor
            On the module's device; ``T_past + T <= max_seq_len``.
        masks : mapping of str to Tensor, optional
            Explicit dropout masks by canonical mask name (``embed.dropout``,
            ``blocks.{i}.attn.weights_dropout``, ...); they replace PyTorch's random dropout.
            Without them dropout follows ``self.training``.
        past : sequence of KVCache, optional
            One per layer, from an earlier call with ``return_kv=True``; a plain pair of
            (B, H, T_past, D) tensors is copied into a new :class:`KVCache`.
        record : dict, optional
            Filled with every hook value (``embed.out``, ``blocks.{i}.attn.weights``, ...,
            ``final_norm.out``); forces the explicit attention path.
        return_kv : bool
            Also return the keys and values for the next incremental call (in a cache with
            room for ``max_seq_len`` positions, when ``past`` is None).

        Returns
        -------
        logits : (B, T, V) Tensor
        kv : list of KVCache, only with ``return_kv=True``

        Examples
        --------
        >>> import literate_tx as ltx
        >>> module = Transformer(ltx.ModelConfig(10, 8, 2, 2, 16, 8, position="rope"),
        ...                      dtype=torch.float64)
        >>> full = module(torch.tensor([[1, 2, 3]]))
        >>> _, kv = module(torch.tensor([[1, 2]]), return_kv=True)
        >>> last = module(torch.tensor([[3]]), past=kv)
        >>> bool(torch.allclose(last[0, 0], full[0, 2]))
        True
        """
        T_max = self.config.max_seq_len
        if past is not None:
            past = [c if isinstance(c, KVCache) else KVCache.from_pair(*c, T_max) for c in past]
        elif return_kv:
            past = [KVCache.empty(T_max) for _ in self.blocks]  # the prompt fills them
        offset = 0 if past is None else past[0].length
        h = self.embed(tokens, subdict(masks, "embed."), offset)  # (B, T, C)
        if record is not None:
            record["embed.out"] = h
        kv = []
        for i, block in enumerate(self.blocks):
            local = None if record is None else {}
            h, layer_kv = block(h, masks=subdict(masks, f"blocks.{i}."),
                                past=None if past is None else past[i], record=local)  # (B, T, C)
            kv.append(layer_kv)
            if record is not None:
                record.update({f"blocks.{i}.{k}": v for k, v in local.items()})
        h = self.final_norm(h)  # (B, T, C)
        if record is not None:
            record["final_norm.out"] = h
        if self.lm_head is None:
            logits = linear(h, self.embed.tokens.T)  # (B, T, V), tied: W_head = E^T
        else:
            logits = self.lm_head(h)  # (B, T, V)
        return (logits, kv) if return_kv else logits


def _torch_device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use e.g. 'cpu', 'cuda' or 'cuda:1'"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} needs a CUDA GPU, but torch.cuda.is_available() is False; "
            "use device='cpu'"
        )
    return dev


class TorchModel:
    r"""The transformer in PyTorch behind the API every backend shares.

    Use :func:`literate_tx.create_model` with ``backend="torch"`` rather than calling this
    directly. Values in and out are NumPy arrays, except ``decode``'s key/value cache, which
    stays on the device. The ``module`` attribute is the underlying :class:`Transformer` for
    native PyTorch use (optimisers, ``torch.compile``, DDP, your own training loop).

    Parameters
    ----------
    config : ModelConfig
    params : mapping of str to array, optional
        Canonical parameters; default: :func:`~literate_tx.params.init_params` with ``seed``.
    seed : int
        Seeds the initial weights (when ``params`` is None) and the model's own generator for
        PyTorch's dropout (which leaves PyTorch's global generator untouched).
    dtype : {"float32", "float64"}
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    attention : {"sdpa", "explicit"}
        ``"sdpa"`` uses :func:`torch.nn.functional.scaled_dot_product_attention` whenever the
        weights are not requested and no explicit attention-dropout mask is given.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> m = TorchModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), seed=0)
    >>> m.backend, m.dtype, str(m.device), m.num_parameters()
    ('torch', 'float32', 'cpu', 840)
    >>> TorchModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), attention="flash")
    Traceback (most recent call last):
    ...
    ValueError: attention='flash' is not supported; allowed: 'sdpa', 'explicit'
    """

    backend = "torch"

    def __init__(self, config: ModelConfig, params: Mapping | None = None, *, seed: int = 0,
                 dtype: str = "float32", device="cpu", attention: str = "sdpa"):
        if not isinstance(config, ModelConfig):
            raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
        if attention not in ATTENTION_IMPLS:
            raise ValueError(
                f"attention={attention!r} is not supported; allowed: "
                f"{', '.join(map(repr, ATTENTION_IMPLS))}"
            )
        self.config = config
        self.dtype = check_dtype(dtype)
        self.device = _torch_device(device)
        self.attention = attention
        if params is None:
            params = init_params(config, seed=seed, dtype=self.dtype)
        self.module = Transformer(config, params, attention=attention,
                                  dtype=_TORCH_DTYPES[self.dtype], device=self.device)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        self._rng_state = generator.get_state()

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> dict[str, np.ndarray]:
        """Copies of the parameters as NumPy arrays, by canonical name.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = TorchModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
        >>> list(m.parameters())[:2]
        ['embed.tokens', 'embed.positions']
        """
        return {name: p.detach().cpu().numpy().copy() for name, p in self.module.named_parameters()}

    def load_parameters(self, params: Mapping) -> None:
        """Replace the parameters (checked against the config, cast to the model's dtype).

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = TorchModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
        >>> m.load_parameters({"embed.tokens": 0})
        Traceback (most recent call last):
        ...
        ValueError: missing parameter(s) 'embed.positions', ... required by the config
        """
        self.module.load_canonical(params)

    def num_parameters(self) -> int:
        """Number of scalar parameters.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> TorchModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8, tie_embeddings=True)).num_parameters()
        760
        """
        return int(sum(p.numel() for p in self.module.parameters()))

    # ------------------------------------------------------------------ internals
    def _tensor(self, array, dtype=None) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=dtype, device=self.device)

    def _masks_for(self, train: bool, masks: Mapping | None):
        """Explicit masks as tensors; None in training mode without masks (torch draws them)."""
        if not train:
            return {}
        if masks is None:
            return None
        dt = _TORCH_DTYPES[self.dtype]
        return {name: self._tensor(m, dt) for name, m in masks.items()}

    @contextlib.contextmanager
    def _mode(self, train: bool, masks):
        """When PyTorch draws the dropout masks (``masks is None``: training without explicit
        masks), set the module's train mode and swap in the model's own generator state; restore
        both afterwards.

        With explicit masks (``{}`` in evaluation: no dropout anywhere) every dropout site and
        SDPA's ``dropout_p`` ignore the module's mode, so it is left as it is: ``.train()`` walks
        every submodule, and switching to evaluation and back cost about 0.6 ms per call at two
        layers, more than one decoding step itself.
        """
        if masks is not None:
            yield
            return
        was_training = self.module.training
        if was_training != train:  # .train() walks every submodule: skip it when already set
            self.module.train(train)
        cuda = self.device.type == "cuda"
        try:
            if not (train and self.config.dropout > 0):
                yield
                return
            with torch.random.fork_rng(devices=[self.device] if cuda else []):
                if cuda:
                    torch.cuda.set_rng_state(self._rng_state, self.device)
                else:
                    torch.set_rng_state(self._rng_state)
                yield
                self._rng_state = (torch.cuda.get_rng_state(self.device) if cuda
                                   else torch.get_rng_state())
        finally:
            if self.module.training != was_training:
                self.module.train(was_training)

    @staticmethod
    def _numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    # ------------------------------------------------------------------ public API
    def forward(self, tokens, *, train: bool = False, masks: Mapping | None = None,
                return_weights: bool = False):
        """Logits for every position.

        Parameters
        ----------
        tokens : (B, T) or (T,) int array
        train : bool
            Apply dropout (drawn by PyTorch from the model's seeded generator unless ``masks``
            are given).
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
        >>> m = TorchModel(ltx.ModelConfig(10, 8, 2, 2, 16, 8), dtype="float64")
        >>> logits, weights = m.forward([1, 2, 3], return_weights=True)
        >>> logits.shape, len(weights), weights[0].shape
        ((3, 10), 2, (1, 2, 3, 3))
        """
        arr = as_tokens(tokens, self.config)
        tensor_masks = self._masks_for(train, masks)
        record = {} if return_weights else None
        with torch.inference_mode(), self._mode(train, tensor_masks):
            logits = self.module(self._tensor(arr), masks=tensor_masks, record=record)
        logits = self._numpy(logits)
        if np.ndim(tokens) == 1:
            logits = logits[0]
        if return_weights:
            return logits, [self._numpy(record[f"blocks.{i}.attn.weights"])
                            for i in range(self.config.n_layers)]
        return logits

    def loss_and_grads(self, tokens, targets, *, train: bool = False,
                       masks: Mapping | None = None, ignore_index: int = -100):
        """Mean cross-entropy and its gradient for every parameter (by autograd).

        The gradients are returned, not accumulated: the parameters' ``.grad`` are left alone.

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
        >>> import literate_tx as ltx
        >>> m = TorchModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), dtype="float64")
        >>> loss, grads = m.loss_and_grads([[1, 2]], [[2, 3]])
        >>> round(loss, 1)  # about log(10) at initialisation
        2.3
        >>> grads["embed.tokens"].shape
        (10, 8)
        """
        arr = as_tokens(tokens, self.config)
        tgt = as_targets(targets, arr, self.config, ignore_index)
        if not (tgt != ignore_index).any():
            raise ValueError(
                f"every target equals ignore_index={ignore_index}; at least one position must count"
            )
        tensor_masks = self._masks_for(train, masks)
        params = dict(self.module.named_parameters())
        with self._mode(train, tensor_masks):
            logits = self.module(self._tensor(arr), masks=tensor_masks)  # (B, T, V)
            loss = cross_entropy(logits, self._tensor(tgt), ignore_index)
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        return float(loss.detach()), {
            name: (self._numpy(g) if g is not None else np.zeros(p.shape, self.dtype))
            for (name, p), g in zip(params.items(), grads, strict=True)
        }

    def run_with_cache(self, tokens):
        """Logits plus every intermediate value, by hook name (evaluation mode).

        Hook names: ``embed.out``; per block ``blocks.{i}.resid_pre``, ``.attn.weights``,
        ``.attn.out``, ``.resid_mid``, ``.mlp.pre_act``, ``.mlp.out``, ``.resid_post``;
        ``final_norm.out``. Values are NumPy arrays.

        Examples
        --------
        >>> import literate_tx as ltx
        >>> m = TorchModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8))
        >>> logits, cache = m.run_with_cache([[1, 2, 3]])
        >>> cache["blocks.0.attn.weights"].shape
        (1, 2, 3, 3)
        """
        arr = as_tokens(tokens, self.config)
        record: dict[str, torch.Tensor] = {}
        with torch.inference_mode():  # no _mode: evaluation with no masks ignores train/eval
            logits = self.module(self._tensor(arr), masks={}, record=record)
        return self._numpy(logits), {name: self._numpy(v) for name, v in record.items()}

    def decode(self, tokens, kv_cache=None):
        """Incremental forward pass: logits of new tokens given cached keys and values.

        Parameters
        ----------
        tokens : (B, T) int array
            The new tokens (a prompt the first time, then typically one token).
        kv_cache : list of KVCache, optional
            As returned by the previous call, one per layer; plain pairs of (B, H, T_past, D)
            arrays or tensors are copied into new caches.

        Returns
        -------
        logits : (B, T, V) ndarray
        kv_cache : list of KVCache, one per layer (tensors on the model's device)

        Notes
        -----
        Each layer's cache holds ``max_seq_len`` positions, allocated by the first call and
        written in place by the later ones (eq. :eq:`attn-kv-cache`), so a step copies only its
        own keys and values, whatever the length of the past. Passing one cache to two calls
        (two continuations of one past) is allowed: the second copies the past rather than
        overwrite the first's new positions. The call runs under :func:`torch.inference_mode`
        (no autograd bookkeeping) and leaves the module's train/eval mode alone: evaluation
        without dropout masks does not depend on it.

        Examples
        --------
        Feeding tokens one at a time gives the rows of the full forward pass:

        >>> import numpy as np, literate_tx as ltx
        >>> m = TorchModel(ltx.ModelConfig(10, 8, 2, 2, 16, 8, position="rope"), dtype="float64")
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
            dt = _TORCH_DTYPES[self.dtype]
            past = [c if isinstance(c, KVCache) else  # a (k, v) pair of arrays: copy it
                    KVCache.from_pair(*(torch.as_tensor(a, dtype=dt, device=self.device)
                                        for a in c), cfg.max_seq_len)
                    for c in kv_cache]
        arr = as_tokens(tokens, cfg, max_len=cfg.max_seq_len - past[0].length)
        with torch.inference_mode():  # no _mode: evaluation with no masks ignores train/eval
            logits, kv = self._decode(self._tensor(arr), past)  # (B, T, V)
        return self._numpy(logits), kv

    def _decode(self, tokens: torch.Tensor, past: list[KVCache]):
        """The decoding step after the checks: the module with ``past`` (under inference mode).

        :class:`~literate_tx.torch_backend.fast.FastTorchModel` overrides it.
        """
        return self.module(tokens, masks={}, past=past, return_kv=True)  # (B, T, V), kv

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.config.n_layers} layers, "
                f"d_model={self.config.d_model}, "
                f"{self.num_parameters()} parameters, {self.dtype}, {self.device}, "
                f"{self.attention})")

r"""The three engines behind one loop: a gradient and an update per backend (hand-written for
NumPy and pure Python, autograd for PyTorch), and the check that stops on a NaN.

Examples
--------
>>> from literate_tx.training import NonFiniteError
>>> issubclass(NonFiniteError, FloatingPointError)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..data.digits import IGNORE_INDEX
from ..numpy_backend.dropout import make_masks
from ..optim import default_decay_filter
from .config import TrainConfig


class NonFiniteError(FloatingPointError):
    r"""Training produced a NaN or inf: the message names the step and the first bad tensor.

    Examples
    --------
    >>> issubclass(NonFiniteError, ArithmeticError)
    True
    """


# ============================================================================ engines
def _first_bad(grads: Mapping[str, Any]) -> str | None:
    for name, g in grads.items():
        if not np.isfinite(np.asarray(g)).all():
            return name
    return None


def _global_norm(grads: Mapping[str, np.ndarray]) -> float:
    # per-tensor norms, then the norm of the norms (as clip_grad_norm and torch do)
    norms = [math.sqrt(float(np.sum(np.square(g, dtype=np.float64)))) for g in grads.values()]
    return math.sqrt(sum(n * n for n in norms))


class _NumpyEngine:
    """Hand-written gradients and :class:`literate_tx.optim.AdamW` on the model's own arrays."""

    def __init__(self, model, cfg: TrainConfig):
        from ..numpy_backend.fast import FastAdamW, FastNumpyModel
        from ..optim import AdamW

        # the speed path's in-place AdamW gives bit-identical updates
        optimizer_class = FastAdamW if isinstance(model, FastNumpyModel) else AdamW
        self.model, self.cfg = model, cfg
        # NumpyModel computes with model.params: the optimiser updates those arrays in place
        self.params = model.params
        self.optimizer = optimizer_class(self.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                               eps=cfg.eps, weight_decay=cfg.weight_decay,
                               decay_filter=default_decay_filter)
        self.dropout_rng: np.random.Generator | None = None

    def masks(self, x: np.ndarray):
        return make_masks(self.model.config, x.shape[0], x.shape[1], self.dropout_rng,
                          self.model.dtype)

    def step(self, x, y, lr: float, step: int) -> tuple[float, float]:
        loss, grads = self.model.loss_and_grads(x, y, train=True, masks=self.masks(x))
        _check_finite(step, loss, grads)
        norm = self._clip(grads)
        self.optimizer.step(grads, lr=lr)
        return loss, norm

    def _clip(self, grads) -> float:
        from ..optim import clip_grad_norm

        if self.cfg.grad_clip:
            return float(clip_grad_norm(grads, self.cfg.grad_clip))
        return _global_norm(grads)

    def parameters(self) -> dict[str, np.ndarray]:
        return self.model.parameters()

    def state_dict(self) -> dict[str, np.ndarray]:
        sd = self.optimizer.state_dict()
        return {k: np.asarray(v) for k, v in sd.items() if k != "optimizer"}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.optimizer.load_state_dict({"optimizer": "AdamW", **state})

    def rng_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load_rng_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        pass


class _PythonEngine(_NumpyEngine):
    """Hand-written gradients and the pure-Python AdamW, stepping on nested lists.

    ``PythonModel`` computes with ``model.params``, a dict of nested lists of Python floats
    (float64 whatever the model's dtype); the optimiser updates those lists in place. The
    checkpoint stores them as float64 arrays and :meth:`restore` puts them back unrounded, so
    resuming is exact for either dtype.
    """

    def __init__(self, model, cfg: TrainConfig):
        from ..python_backend.optim import AdamW

        self.model, self.cfg = model, cfg
        self.dtype = np.dtype(model.dtype)
        self.params = model.params  # nested lists, shared with the model
        self.optimizer = AdamW(self.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                               eps=cfg.eps, weight_decay=cfg.weight_decay,
                               decay_filter=default_decay_filter)
        self.dropout_rng = None

    @classmethod
    def restore(cls, model, cfg: TrainConfig, params: Mapping[str, np.ndarray]):
        """An engine for ``model`` whose lists hold ``params`` exactly (no rounding to dtype)."""
        model.params = {n: np.asarray(params[n], dtype=np.float64).tolist()
                        for n in model.params}
        return cls(model, cfg)

    def step(self, x, y, lr: float, step: int) -> tuple[float, float]:
        from ..python_backend.optim import clip_grad_norm

        loss, grads = self.model.loss_and_grads(x, y, train=True, masks=self.masks(x))
        _check_finite(step, loss, grads)
        lists = {n: np.asarray(g, dtype=np.float64).tolist() for n, g in grads.items()}
        if self.cfg.grad_clip:
            norm = float(clip_grad_norm(lists, self.cfg.grad_clip))
        else:
            norm = _global_norm(grads)
        self.optimizer.step(lists, lr=lr)
        return loss, norm

    def masks(self, x: np.ndarray):
        return make_masks(self.model.config, x.shape[0], x.shape[1], self.dropout_rng,
                          self.dtype)

    def parameters(self) -> dict[str, np.ndarray]:
        # float64 whatever the dtype: the lists are Python floats
        return {n: np.asarray(v, dtype=np.float64) for n, v in self.params.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        sd = self.optimizer.state_dict()
        return {k: np.asarray(v) for k, v in sd.items() if k != "optimizer"}


class _TorchEngine:
    """Autograd on ``model.module``, :class:`torch.optim.AdamW` and ``clip_grad_norm_``."""

    _BUFFERS = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, model, cfg: TrainConfig, seed: int):
        import torch

        from ..torch_backend.loss import cross_entropy

        self.torch, self.cross_entropy = torch, cross_entropy
        self.model, self.cfg = model, cfg
        self.module = model.module
        self.named = list(self.module.named_parameters())
        decay = [p for n, p in self.named if default_decay_filter(n, p.ndim)]
        no_decay = [p for n, p in self.named if not default_decay_filter(n, p.ndim)]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                           eps=cfg.eps)
        self.device = model.device
        self.cuda = self.device.type == "cuda"
        # dropout draws from PyTorch's generator; keep our own copy of its state so that
        # the run neither disturbs nor depends on the global one
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        self.rng_state = gen.get_state()
        self.dropout_rng = None

    def _tensor(self, a):
        return self.torch.as_tensor(np.asarray(a), device=self.device)

    def step(self, x, y, lr: float, step: int) -> tuple[float, float]:
        torch = self.torch
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.module.train(True)
        use_rng = self.cfg.dropout > 0
        devices = [self.device] if self.cuda else []
        with torch.random.fork_rng(devices=devices, enabled=use_rng):
            if use_rng:
                self._set_rng(self.rng_state)
            logits = self.module(self._tensor(x))  # (B, T, V)
            loss = self.cross_entropy(logits, self._tensor(y), IGNORE_INDEX)
            if use_rng:
                self.rng_state = self._get_rng()
        loss.backward()
        self.module.train(False)
        loss_value = float(loss.detach())
        params = [p for _, p in self.named]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        # per-tensor norms, then the norm of the norms, eq. (1) of literate_tx.optim
        norms = torch.stack([torch.linalg.vector_norm(p.grad) for p in params])
        total = float(torch.linalg.vector_norm(norms))
        if not (math.isfinite(loss_value) and math.isfinite(total)):
            bad = None
            for (name, _), n in zip(self.named, norms.tolist(), strict=True):
                if not math.isfinite(n):
                    bad = name
                    break
            _raise_non_finite(step, loss_value, bad)
        if self.cfg.grad_clip:
            total = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip))
        self.optimizer.step()
        return loss_value, total

    def _set_rng(self, state) -> None:
        if self.cuda:
            self.torch.cuda.set_rng_state(state, self.device)
        else:
            self.torch.set_rng_state(state)

    def _get_rng(self):
        return (self.torch.cuda.get_rng_state(self.device) if self.cuda
                else self.torch.get_rng_state())

    def parameters(self) -> dict[str, np.ndarray]:
        return self.model.parameters()

    def state_dict(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        index = {id(p): n for n, p in self.named}
        for p, st in self.optimizer.state.items():
            name = index[id(p)]
            for key in self._BUFFERS:
                value = st[key]
                value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
                out[f"{key}.{name}"] = np.array(value)
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        torch = self.torch
        template = self.optimizer.state_dict()
        order = [n for group in (self.optimizer.param_groups) for n in
                 (next(m for m, q in self.named if q is p) for p in group["params"])]
        saved = {}
        for i, name in enumerate(order):
            if f"exp_avg.{name}" not in state:
                continue
            entry = {}
            for key in self._BUFFERS:
                value = np.asarray(state[f"{key}.{name}"])
                entry[key] = torch.from_numpy(value.copy())
            saved[i] = entry
        self.optimizer.load_state_dict({"state": saved, "param_groups": template["param_groups"]})

    def rng_arrays(self) -> dict[str, np.ndarray]:
        return {"torch_rng": self.rng_state.cpu().numpy().astype(np.uint8)}

    def load_rng_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        if "torch_rng" in arrays:
            self.rng_state = self.torch.from_numpy(np.asarray(arrays["torch_rng"],
                                                              dtype=np.uint8).copy())


def _raise_non_finite(step: int, loss: float, bad: str | None) -> None:
    if not math.isfinite(loss):
        raise NonFiniteError(f"step {step}: the loss is {loss}; training stopped")
    where = f"gradient of {bad!r}" if bad else "gradient norm (it overflowed)"
    raise NonFiniteError(f"step {step}: NaN or inf in the {where}; training stopped")


def _check_finite(step: int, loss: float, grads: Mapping[str, Any]) -> None:
    if not math.isfinite(loss):
        _raise_non_finite(step, loss, None)
    bad = _first_bad(grads)
    if bad is not None:
        _raise_non_finite(step, loss, bad)


def _model_options(backend: str, fast: bool, device: str) -> dict[str, Any]:
    """``create_model``'s options for the trainer's model: the device for PyTorch, and with
    ``fast`` the speed path, on one Python thread for NumPy (the batches here are small, and
    BLAS threads follow ``TrainConfig.threads``). :func:`load_trained` builds the same model."""
    options: dict[str, Any] = {"device": device} if backend == "torch" else {}
    if fast:
        options["fast"] = True
        if backend == "numpy":
            options["threads"] = 1
    return options



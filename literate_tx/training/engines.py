r"""The three engines behind one loop: a gradient and an update per backend (hand-written for
NumPy and pure Python, autograd for PyTorch), and the check that stops on a NaN.

Every engine accumulates ``grad_accum`` micro-batches into the gradient of the whole batch,
weighting each by its share of the counted targets (eq. (2) of
:mod:`literate_tx.training.distributed`); the PyTorch engine adds mixed precision
(:func:`torch.autocast`, a :class:`torch.amp.GradScaler` for float16), :func:`torch.compile`
and :class:`~torch.nn.parallel.DistributedDataParallel` under ``torchrun``.

Examples
--------
>>> from literate_tx.training import NonFiniteError
>>> issubclass(NonFiniteError, FloatingPointError)
True
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..data.digits import IGNORE_INDEX
from ..masks import make_masks
from ..optim_rules import default_decay_filter
from .config import TrainConfig
from .distributed import DistInfo, dropout_seed, micro_batches


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
    """Hand-written gradients; :class:`~literate_tx.numpy_backend.optim.AdamW` on its arrays."""

    def __init__(self, model, cfg: TrainConfig):
        from ..numpy_backend.fast import FastAdamW, FastNumpyModel
        from ..numpy_backend.optim import SGD, AdamW

        self.model, self.cfg = model, cfg
        # NumpyModel computes with model.params: the optimiser updates those arrays in place
        self.params = model.params
        if cfg.optimizer == "sgd":
            self.optimizer = SGD(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                 decay_filter=default_decay_filter)
        else:
            # the speed path's in-place AdamW gives bit-identical updates
            optimizer_class = FastAdamW if isinstance(model, FastNumpyModel) else AdamW
            self.optimizer = optimizer_class(self.params, lr=cfg.lr,
                                             betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                             weight_decay=cfg.weight_decay,
                                             decay_filter=default_decay_filter)
        self.dropout_rng: np.random.Generator | None = None
        self.notes: list[str] = []

    def masks(self, x: np.ndarray):
        return make_masks(self.model.config, x.shape[0], x.shape[1], self.dropout_rng,
                          self.model.dtype)

    def gradients(self, x, y, step: int = 1) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and gradient of the batch ``(x, y)``, accumulated over ``grad_accum``
        micro-batches, eq. (2) of :mod:`literate_tx.training.distributed`."""
        if self.cfg.grad_accum == 1:
            return self.model.loss_and_grads(x, y, train=True, masks=self.masks(x))
        parts, n = micro_batches(x, y, DistInfo(), self.cfg.grad_accum, IGNORE_INDEX)
        loss, total = 0.0, None
        for xm, ym in parts:
            n_m = int(np.count_nonzero(ym != IGNORE_INDEX))
            masks = self.masks(xm)  # drawn for every micro-batch, counted targets or not
            if n_m == 0:
                continue  # weight 0, eq. (2); its own mean would be 0 / 0
            w = n_m / n  # the micro-batch's share of the counted targets, eq. (2)
            loss_m, grads_m = self.model.loss_and_grads(xm, ym, train=True, masks=masks)
            loss += w * loss_m
            if total is None:
                total = {k: w * np.asarray(g) for k, g in grads_m.items()}
            else:
                for k, g in grads_m.items():
                    total[k] += w * np.asarray(g)
        if total is None:  # no target counts in the batch: the model says so
            return self.model.loss_and_grads(x, y, train=True, masks=self.masks(x))
        return loss, total

    def step(self, x, y, lr: float, step: int) -> tuple[float, float]:
        loss, grads = self.gradients(x, y, step)
        _check_finite(step, loss, grads)
        norm = self._clip(grads)
        self.optimizer.step(grads, lr=lr)
        return loss, norm

    def _clip(self, grads) -> float:
        from ..numpy_backend.optim import clip_grad_norm

        if self.cfg.grad_clip:
            return float(clip_grad_norm(grads, self.cfg.grad_clip))
        return _global_norm(grads)

    def parameters(self) -> dict[str, np.ndarray]:
        return self.model.parameters()

    def state_dict(self) -> dict[str, np.ndarray]:
        sd = self.optimizer.state_dict()
        return {k: np.asarray(v) for k, v in sd.items() if k != "optimizer"}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        name = self.optimizer.state_dict()["optimizer"]
        self.optimizer.load_state_dict({"optimizer": name, **state})

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
        from ..python_backend.optim import SGD, AdamW

        self.model, self.cfg = model, cfg
        self.dtype = np.dtype(model.dtype)
        self.params = model.params  # nested lists, shared with the model
        if cfg.optimizer == "sgd":
            self.optimizer = SGD(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                 decay_filter=default_decay_filter)
        else:
            self.optimizer = AdamW(self.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                   eps=cfg.eps, weight_decay=cfg.weight_decay,
                                   decay_filter=default_decay_filter)
        self.dropout_rng = None
        self.notes = []

    @classmethod
    def restore(cls, model, cfg: TrainConfig, params: Mapping[str, np.ndarray]):
        """An engine for ``model`` whose lists hold ``params`` exactly (no rounding to dtype)."""
        model.params = {n: np.asarray(params[n], dtype=np.float64).tolist()
                        for n in model.params}
        return cls(model, cfg)

    def step(self, x, y, lr: float, step: int) -> tuple[float, float]:
        from ..python_backend.optim import clip_grad_norm

        loss, grads = self.gradients(x, y, step)
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
    """Autograd on ``model.module``, :class:`torch.optim.AdamW` (or SGD) and
    ``clip_grad_norm_``; micro-batches, mixed precision, ``torch.compile`` and DDP.

    Under several processes (``info.world_size > 1``) the module is wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel`: each process back-propagates eq. (3)
    of :mod:`literate_tx.training.distributed` for its micro-batches, under ``no_sync`` but
    the last, and DDP's average of the processes' sums is the gradient of the whole batch.
    """

    _BUFFERS = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, model, cfg: TrainConfig, seed: int, info: DistInfo | None = None):
        import torch

        from ..torch_backend.loss import cross_entropy

        self.torch, self.cross_entropy = torch, cross_entropy
        self.model, self.cfg = model, cfg
        self.info = info if info is not None else DistInfo()
        self.module = model.module
        self.named = list(self.module.named_parameters())
        decay = [p for n, p in self.named if default_decay_filter(n, p.ndim)]
        no_decay = [p for n, p in self.named if not default_decay_filter(n, p.ndim)]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(groups, lr=cfg.lr)
        else:
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
        self.notes: list[str] = []
        # mixed precision: autocast lowers the matrix products; float16 also scales the loss
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        self.scaler = torch.amp.GradScaler(self.device.type) if cfg.amp == "fp16" else None
        if cfg.amp == "fp16" and self.device.type == "cpu":
            self.notes.append("amp: float16 on the CPU runs without float16 units (a step "
                              "measured 10x slower than float32); bf16 is the CPU's choice")
        self.ddp = None
        if self.info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device] if self.cuda else None
            self.ddp = DistributedDataParallel(self.module, device_ids=ids)
        self.forward = self.ddp if self.ddp is not None else self.module
        self.compiled = None
        self.compile_checked = False
        if cfg.compile:
            try:
                self.compiled = torch.compile(self.forward)
            except Exception as exc:  # whatever fails, the eager module works
                self._compile_failed(exc)

    def _compile_failed(self, exc: BaseException) -> None:
        self.compiled = None
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        self.notes.append(
            f"compile: torch.compile failed here ({type(exc).__name__}: {first}); "
            "training continues without it (the same model, eager PyTorch)"
        )

    def _tensor(self, a):
        return self.torch.as_tensor(np.asarray(a), device=self.device)

    def _logits(self, x):
        forward = self.compiled if self.compiled is not None else self.forward
        return forward(self._tensor(x))  # (B, T, V)

    def _accumulate(self, x, y, step: int) -> float:
        """Back-propagate eq. (3) of ``distributed`` for this process's micro-batches; the
        gradient of the whole batch ends in ``p.grad``. Returns the loss of the whole batch."""
        torch = self.torch
        parts, n = micro_batches(x, y, self.info, self.cfg.grad_accum, IGNORE_INDEX)
        W = self.info.world_size
        whole = len(parts) == 1 and W == 1  # one batch, one process: the mean, eq. (1)
        use_rng = self.cfg.dropout > 0
        devices = [self.device] if self.cuda else []
        autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype)
                    if self.amp_dtype is not None else contextlib.nullcontext())
        local = 0.0
        for m, (xm, ym) in enumerate(parts):
            last = m == len(parts) - 1
            # gradients stay in this process until the last micro-batch, which DDP averages
            sync = (self.ddp.no_sync() if self.ddp is not None and not last
                    else contextlib.nullcontext())
            with sync:
                with torch.random.fork_rng(devices=devices, enabled=use_rng):
                    if use_rng and self.info.distributed:
                        torch.manual_seed(dropout_seed(self.cfg.seed, step, self.info.rank, m))
                    elif use_rng:
                        self._set_rng(self.rng_state)
                    with autocast:
                        logits = self._logits(xm)  # (B_p, T, V)
                    if self.amp_dtype is not None:
                        logits = logits.float()  # the loss in float32
                    if use_rng and not self.info.distributed:
                        self.rng_state = self._get_rng()
                target = self._tensor(ym)  # (B_p, T)
                if whole:
                    loss = self.cross_entropy(logits, target, IGNORE_INDEX)  # (), eq. (1)
                    value = loss
                else:
                    V = logits.shape[-1]
                    total = torch.nn.functional.cross_entropy(
                        logits.reshape(-1, V), target.reshape(-1), ignore_index=IGNORE_INDEX,
                        reduction="sum")  # (), the sum of the part's losses
                    value = total / max(n, 1)  # its share of eq. (1), eq. (2)
                    loss = total * (W / max(n, 1))  # eq. (3)
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            local += float(value.detach())
        if W > 1:
            import torch.distributed as dist

            summed = torch.tensor([local], dtype=torch.float64,
                                  device=self.device if self.cuda else "cpu")
            dist.all_reduce(summed)  # the loss of the whole batch, eq. (2)
            local = float(summed[0])
        return local

    def _accumulate_or_fall_back(self, x, y, step: int) -> float:
        if self.compiled is None or self.compile_checked:
            return self._accumulate(x, y, step)
        # compilation happens on the first call (forward and backward): where it fails, the
        # step runs again without it, from the same state
        rng_state = self.rng_state
        try:
            loss = self._accumulate(x, y, step)
        except Exception as exc:  # an error of the model itself recurs eagerly
            self._compile_failed(exc)
            self.optimizer.zero_grad(set_to_none=True)
            self.rng_state = rng_state
            return self._accumulate(x, y, step)
        self.compile_checked = True
        return loss

    def gradients(self, x, y, step: int = 1) -> tuple[float, dict[str, np.ndarray]]:
        r"""The loss and gradient of the batch ``(x, y)`` (over micro-batches and processes),
        without an update; for tests."""
        self.optimizer.zero_grad(set_to_none=True)
        self.module.train(True)
        try:
            loss = self._accumulate_or_fall_back(x, y, step)
        finally:
            self.module.train(False)
        grads = {n: (p.grad if p.grad is not None else self.torch.zeros_like(p))
                 for n, p in self.named}
        if self.scaler is not None:
            scale = float(self.scaler.get_scale())
            grads = {n: g / scale for n, g in grads.items()}
        return loss, {n: g.detach().cpu().numpy().copy() for n, g in grads.items()}

    def step(self, x, y, lr: float, step: int) -> tuple[float, float]:
        torch = self.torch
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self.module.train(True)
        try:
            loss_value = self._accumulate_or_fall_back(x, y, step)
        finally:
            self.module.train(False)
        params = [p for _, p in self.named]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # the true gradient, for the norm and clip
        # per-tensor norms, then the norm of the norms, eq. (1) of literate_tx.optim
        norms = torch.stack([torch.linalg.vector_norm(p.grad) for p in params])
        total = float(torch.linalg.vector_norm(norms))
        if self.scaler is not None and math.isfinite(loss_value) and not math.isfinite(total):
            # float16 overflowed: the scaler skips this update and lowers its scale
            self.scaler.step(self.optimizer)
            self.scaler.update()
            return loss_value, total
        if not (math.isfinite(loss_value) and math.isfinite(total)):
            bad = None
            for (name, _), n in zip(self.named, norms.tolist(), strict=True):
                if not math.isfinite(n):
                    bad = name
                    break
            _raise_non_finite(step, loss_value, bad)
        if self.cfg.grad_clip:
            total = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
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
                if key not in st:
                    continue
                value = st[key]
                value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
                out[f"{key}.{name}"] = np.array(value)
        if self.scaler is not None:
            sd = self.scaler.state_dict()
            out["grad_scaler.scale"] = np.array(sd["scale"], dtype=np.float64)
            out["grad_scaler.growth_tracker"] = np.array(sd["_growth_tracker"], dtype=np.int64)
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
        if self.scaler is not None and "grad_scaler.scale" in state:
            sd = self.scaler.state_dict()
            sd["scale"] = float(np.asarray(state["grad_scaler.scale"]))
            sd["_growth_tracker"] = int(np.asarray(state["grad_scaler.growth_tracker"]))
            self.scaler.load_state_dict(sd)

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



r"""The :class:`Trainer`: the loop of eq. (1) of :mod:`literate_tx.training`, its checkpoints,
metrics and exact resume, and :func:`train`, its one-call form.

Examples
--------
>>> from literate_tx.training import Trainer, TrainConfig
>>> Trainer.__name__
'Trainer'
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..api import create_model
from ..checkpoint import (
    _write_error,
    atomic_write,
    prepare_output_folder,
    read_checkpoint,
    save_checkpoint,
)
from ..data.batching import (
    rng_from_state,
    rng_state,
)
from ..schedules import Schedule
from . import distributed
from .after import sample_text
from .config import TrainConfig
from .engines import NonFiniteError, _model_options, _NumpyEngine, _PythonEngine, _TorchEngine
from .progress import _fmt_time, _format_eval, _Progress
from .tasks import _codec_from_json, _make_data


# ============================================================================ the trainer
@dataclass(frozen=True)
class TrainResult:
    r"""What :func:`train` returns.

    Attributes
    ----------
    config : TrainConfig
    steps : int
        Updates done so far (``config.steps`` when the run finished).
    finished : bool
        False when stopped early (``stop_after``); resume with ``resume=True``.
    metrics : dict
        The final metrics, as in ``summary.json`` (empty when not finished).
    summary_path, last_checkpoint, best_checkpoint : pathlib.Path or None
    wall_time : float
        Seconds of training, across resumes.

    Examples
    --------
    >>> TrainResult(TrainConfig(), 0, False, {}, None, None, None, 0.0).finished
    False
    """

    config: TrainConfig
    steps: int
    finished: bool
    metrics: dict[str, Any]
    summary_path: Path | None
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    wall_time: float


@contextlib.contextmanager
def _thread_limit(threads: int | None, backend: str):
    """Limit BLAS (and torch) threads to ``threads`` inside the block; restore them after."""
    if threads is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl is optional
            pass
        else:
            stack.enter_context(threadpool_limits(limits=threads, user_api="blas"))
        if backend == "torch":
            import torch

            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            stack.callback(torch.set_num_threads, before)
        yield


@contextlib.contextmanager
def _deferred_interrupt():
    """Turn the first Ctrl-C into a flag checked between steps; a second one stops at once.

    An update interrupted half way (some tensors stepped, others not) could not be resumed
    exactly, so the loop finishes the step, saves, and then raises KeyboardInterrupt.
    """
    import signal
    import threading

    flag = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        flag["hit"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: flag["hit"]
    finally:
        signal.signal(signal.SIGINT, previous)


#: The files that make a folder a run: a new run refuses to start over them without overwrite.
RUN_FILES = ("last.npz", "best.npz", "summary.json", "metrics.jsonl")


def _check_out_folder(out: Path) -> None:
    """Refuse an ``out`` that is a file or lies under one; create it and check it is writable."""
    prepare_output_folder(out, field="out")


def _refuse_existing_run(out: Path) -> None:
    """A new run never deletes or truncates another run's files: say how to go on instead."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    if not found:
        return
    if (out / "last.npz").exists():
        how = ("continue it with resume=True (--resume), start over with overwrite=True "
               "(--overwrite), or give another out folder (--out)")
    else:  # killed before its first checkpoint: nothing to resume from
        how = ("it has no last.npz to resume from; start over with overwrite=True "
               "(--overwrite) or give another out folder (--out)")
    raise FileExistsError(f"{out} already holds a run ({', '.join(found)}); {how}")


def _meta_field(meta: Mapping[str, Any], name: str, path: Path, check, expected: str):
    """``meta[name]`` after ``check(value)`` (which may convert it), or a ValueError naming
    the file and the field."""
    if name not in meta:
        raise ValueError(f"{path}: damaged training state: metadata field {name!r} is missing "
                         f"(expected {expected}); resume from another checkpoint")
    value = meta[name]
    try:
        return check(value)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: damaged training state: metadata field {name!r}="
                         f"{value!r:.60} is not {expected} ({exc})") from None


def _step_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not an int >= 0")
    return value


def _horizon(value: Any) -> int:
    if _step_count(value) < 1:
        raise ValueError("not an int >= 1")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError("not a number >= 0")
    return float(value)


def _best_record(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not (isinstance(value, dict) and isinstance(value.get("score"), list)
            and isinstance(value.get("metrics"), dict)):
        raise ValueError("not a dict with 'step', 'score' (a list) and 'metrics' (a dict)")
    _step_count(value.get("step"))
    return value


def _rng_pair(value: Any) -> dict[str, np.random.Generator]:
    if not isinstance(value, dict):
        raise ValueError("not a dict")
    return {key: rng_from_state(value[key]) for key in ("data", "dropout")}


def _resume_state(ckpt, path: Path) -> dict[str, Any]:
    """Everything a resume reads from ``ckpt.metadata``, checked: a damaged field is named."""
    meta = ckpt.metadata
    if not isinstance(meta, dict) or meta.get("kind", "literate-tx-training") != (
            "literate-tx-training"):
        raise ValueError(f"{path} was not written by the trainer (its metadata has no "
                         "training state); resume only from a run's last.npz")
    saved = _meta_field(meta, "train_config", path, TrainConfig.from_dict,
                        "the run's TrainConfig as a dict")
    step = _meta_field(meta, "step", path, _step_count, "an int >= 0")
    state = {
        "train_config": saved, "step": step,
        "elapsed": _meta_field({"elapsed": meta.get("elapsed", 0.0)}, "elapsed", path,
                               _seconds, "a number of seconds >= 0"),
        "best": _meta_field({"best": meta.get("best")}, "best", path, _best_record,
                            "None or the best evaluation's record"),
        "rng": _meta_field(meta, "rng", path, _rng_pair,
                           "the states of the 'data' and 'dropout' generators"),
        "schedule_steps": _meta_field({"schedule_steps": meta.get("schedule_steps",
                                                                  saved.steps)},
                                      "schedule_steps", path, _horizon, "an int >= 1"),
    }
    if saved.task == "text":
        state["tokenizer"] = _meta_field(meta, "tokenizer", path, _codec_from_json,
                                         "the run's tokenizer as JSON")
    return state


class Trainer:
    r"""The training loop of eq. (1) for any backend, with metrics, checkpoints and resume.

    Parameters
    ----------
    config : TrainConfig
    resume : bool
        Continue the run saved in ``config.out/last.npz`` (its configuration must match
        ``config`` except for ``out``, ``steps``, ``eval_every``, ``eval_batches``,
        ``checkpoint_every``, ``device``, ``grad_accum`` and ``compile``, which change the
        arithmetic only by round-off; so does the number of ``torchrun`` processes).
        ``steps`` equal to the run's gives the same result, bit for bit, as a run never
        stopped (with the same ``grad_accum``, ``compile`` and processes); a larger
        ``steps`` keeps the run's learning-rate schedule and trains the extra steps at
        ``min_lr`` (see "Exact resume" in :mod:`literate_tx.training`); fewer steps than
        already done is an error.
    overwrite : bool
        Start a new run even where ``config.out`` holds one, deleting its ``last.npz``,
        ``best.npz``, ``summary.json`` and ``metrics.jsonl``. Without it (and without
        ``resume``) a folder holding any of those files is refused with
        :class:`FileExistsError`, so that no run is ever lost.
    quiet : bool
        Print nothing. Otherwise evaluation lines and the result are printed to ``stream``,
        with a ``\r`` progress bar when ``stream`` is a terminal.
    stream : text stream, optional
        Where to print (default ``sys.stderr`` for the bar and lines).

    Raises
    ------
    FileExistsError
        ``config.out`` holds a run and neither ``resume`` nor ``overwrite`` is given.
    NotADirectoryError, PermissionError, OSError
        ``config.out`` is a file, lies under a file, or cannot be written (the message names
        the path and the cause).
    FileNotFoundError
        ``resume`` without a ``last.npz`` in ``config.out``.
    ValueError
        ``resume`` with a changed configuration, fewer ``steps`` than done, a finished run
        and the same ``steps``, or a damaged checkpoint (naming the file and the field).

    Attributes
    ----------
    model
        The backend's model (``NumpyModel``, ``PythonModel`` or ``TorchModel``).
    step : int
        Updates done.
    schedule_steps : int
        The horizon of the learning-rate schedule: the ``steps`` the run started with.
    dist : DistInfo
        This process's rank among the processes of ``torchrun``
        (:class:`~literate_tx.training.distributed.DistInfo`; one process without it).
    is_main : bool
        True for process 0, which alone evaluates, prints and writes ``config.out``.
    device : str
        Where the model trains, ``config.device`` resolved (``"auto"``: CUDA, MPS or the CPU).

    Notes
    -----
    Started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the trainer joins the
    process group and trains one shared update per step on
    :class:`~torch.nn.parallel.DistributedDataParallel`
    (:mod:`literate_tx.training.distributed`); ``backend`` must then be ``"torch"``.

    Examples
    --------
    >>> import tempfile
    >>> cfg = TrainConfig(steps=2, batch_size=4, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> trainer = Trainer(cfg, quiet=True)
    >>> trainer.step, type(trainer.model).__name__
    (0, 'FastNumpyModel')
    >>> trainer.train().steps
    2
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                 quiet: bool = False, stream: TextIO | None = None):
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        for name, value in (("resume", resume), ("overwrite", overwrite)):
            if not isinstance(value, bool):
                raise ValueError(f"{name}={value!r} is not allowed; use True or False")
        if resume and overwrite:
            raise ValueError("resume=True and overwrite=True contradict each other: resume "
                             "continues the run in out, overwrite deletes it; give one")
        self.out = Path(config.out)
        # under torchrun: which process this is; process 0 alone writes files and prints
        self.dist = distributed.detect()
        if self.dist.distributed and config.backend != "torch":
            raise ValueError(
                f"backend={config.backend!r} is not allowed with {self.dist.world_size} "
                "processes (torchrun): training on several processes needs backend='torch' "
                "(allowed backends: 'torch')"
            )
        self.is_main = self.dist.is_main
        self.device, self.device_report = distributed.resolve_device(
            config.device, config.backend, self.dist)
        self.dist = distributed.init(self.dist, self.device)
        self.quiet = quiet or not self.is_main
        self.stream = stream if stream is not None else sys.stderr
        self.overwrite = overwrite
        if self.is_main:
            _check_out_folder(self.out)
        if not resume and not overwrite:
            _refuse_existing_run(self.out)
        ckpt = None
        state: dict[str, Any] = {}
        self.schedule_steps = config.steps
        if resume:
            path = self.out / "last.npz"
            if not path.is_file():
                raise FileNotFoundError(
                    f"no checkpoint to resume at {path}; run without resume to start a new run"
                )
            ckpt = read_checkpoint(path)
            state = _resume_state(ckpt, path)
            saved = state["train_config"]
            changed = [f.name for f in dataclasses.fields(TrainConfig)
                       if f.name not in ("out", "steps", "eval_every", "eval_batches",
                                         "checkpoint_every", "device", "grad_accum",
                                         "compile")
                       and getattr(saved, f.name) != getattr(config, f.name)]
            if changed:
                raise ValueError(
                    f"resume=True needs the configuration saved in {path} (its metadata "
                    "'train_config'), but "
                    + ", ".join(f"{n}={getattr(config, n)!r} (saved {getattr(saved, n)!r})"
                                for n in changed)
                    + " differ; drop those changes or start a new run in another folder"
                )
            if config.steps < state["step"]:
                raise ValueError(
                    f"steps={config.steps} is not allowed: {path} has already done "
                    f"{state['step']} steps; give steps >= {state['step']} (a run cannot be "
                    "shortened; start a new one in another folder)"
                )
            if config.steps == state["step"] and (self.out / "summary.json").is_file():
                raise ValueError(
                    f"the run in {self.out} is already finished ({state['step']} steps; see "
                    f"{self.out / 'summary.json'}); to train longer give steps > "
                    f"{state['step']} (the extra steps run at min_lr={saved.min_lr})"
                )
            self.schedule_steps = state["schedule_steps"]
        self.config = config
        tokenizer = state.get("tokenizer")
        self.data = _make_data(config, tokenizer)
        self.model_config = config.model_config(self.data.vocab_size, self.data.seq_len)
        fast = config.fast and config.backend in ("numpy", "python")  # PyTorch ignores it
        options = _model_options(config.backend, fast, self.device)
        self.model = create_model(self.model_config, config.backend, seed=config.seed,
                                  dtype=config.dtype,
                                  params=None if ckpt is None else ckpt.params, **options)
        if config.backend == "torch":
            self.engine = _TorchEngine(self.model, config, config.seed, self.dist)
        elif config.backend == "python":
            self.engine = (_PythonEngine(self.model, config) if ckpt is None
                           else _PythonEngine.restore(self.model, config, ckpt.params))
        else:
            self.engine = _NumpyEngine(self.model, config)
        # two generators: batches and dropout masks; an eval draws from neither
        self.data_rng = np.random.default_rng([config.seed, 1])
        self.engine.dropout_rng = np.random.default_rng([config.seed, 2])
        self.step = 0
        self.elapsed = 0.0
        self.best: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self._saved_step: int | None = None  # the step in last.npz
        self._val_steps: set[int] = set()  # steps with a validation row in metrics.jsonl
        if ckpt is not None:
            self.step = self._saved_step = state["step"]
            self.elapsed = state["elapsed"]
            self.best = state["best"]
            self.data_rng = state["rng"]["data"]
            self.engine.dropout_rng = state["rng"]["dropout"]
            try:
                self.engine.load_state_dict({k[len("optim/"):]: v
                                             for k, v in ckpt.state.items()
                                             if k.startswith("optim/")})
                self.engine.load_rng_arrays(ckpt.state)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise ValueError(f"{path}: damaged training state: the optimiser state "
                                 f"(state/optim/...) does not fit the model ({exc!s:.200})"
                                 ) from None
        self.schedule = self._schedule()

    # ------------------------------------------------------------------ pieces
    def _schedule(self) -> Schedule:
        # the horizon is the run's first ``steps``: a longer resume adds a tail at min_lr
        # (Schedule stays at min_lr from total_steps on), so the rate never jumps
        cfg = self.config
        warmup = min(cfg.warmup_steps, self.schedule_steps - 1)
        if cfg.schedule == "constant":
            return Schedule("constant", max_lr=cfg.lr, warmup_steps=warmup)
        return Schedule(cfg.schedule, max_lr=cfg.lr, warmup_steps=warmup,
                        total_steps=self.schedule_steps, min_lr=cfg.min_lr)

    def _metadata(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "kind": "literate-tx-training",
            "literate_tx_version": __version__,
            "step": self.step,
            "schedule_steps": self.schedule_steps,
            "elapsed": self.elapsed,
            "train_config": self.config.to_dict(),
            "task": self.config.task,
            "tokenizer": json.dumps(self.data.codec.to_dict()),
            "rng": {"data": rng_state(self.data_rng),
                    "dropout": rng_state(self.engine.dropout_rng)},
            "optimizer": ("torch.optim." if self.config.backend == "torch" else "")
                         + {"adamw": "AdamW", "sgd": "SGD"}[self.config.optimizer],
            "best": self.best,
        }

    def save(self, path: str | os.PathLike) -> None:
        r"""Write a checkpoint with everything needed to resume exactly (atomically).

        Examples
        --------
        >>> import tempfile, os
        >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2,
        ...                   d_ff=16, n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
        >>> trainer = Trainer(cfg, quiet=True)
        >>> trainer.save(os.path.join(cfg.out, "start.npz"))
        >>> sorted(os.listdir(cfg.out))
        ['start.npz']
        """
        if not self.is_main:  # under torchrun process 0 alone writes (all hold the same state)
            return
        state = {f"optim/{k}": v for k, v in self.engine.state_dict().items()}
        state.update(self.engine.rng_arrays())
        save_checkpoint(path, self.model_config, self.engine.parameters(), state=state,
                        metadata=self._metadata())
        if Path(path) == self.out / "last.npz":
            self._saved_step = self.step

    def evaluate(self, split: str = "val") -> dict[str, Any]:
        r"""Metrics of the current model on ``"val"`` or ``"test"`` (draws no random numbers).

        Digits: ``loss``, ``exact_match`` and ``per_operation``; text: ``loss``,
        ``perplexity`` and ``accuracy`` (text has no separate test split: ``"test"`` is the
        validation text).

        Examples
        --------
        >>> import tempfile
        >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2,
        ...                   d_ff=16, n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
        >>> sorted(Trainer(cfg, quiet=True).evaluate("test"))
        ['exact_match', 'loss', 'per_operation']
        """
        if split not in ("val", "test"):
            raise ValueError(f"split={split!r} is not allowed; allowed: 'val', 'test'")
        return self.data.evaluate(self.model, split, self.config.eval_batches)

    def _open_metrics(self):
        if not self.is_main:  # process 0 alone writes the metrics
            return open(os.devnull, "w", encoding="utf-8")
        path = self.out / "metrics.jsonl"
        # drop lines written after the checkpoint we resume from (a crash between the two),
        # so that every (step, split) appears once; the file is rewritten atomically
        kept: list[str] = []
        if self.step > 0 and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # half a line from a killed write
                    continue
                if isinstance(record, dict) and record.get("step", 0) <= self.step:
                    kept.append(line)
                    if record.get("split") == "val":
                        self._val_steps.add(record.get("step"))
        text = "".join(line + "\n" for line in kept).encode("utf-8")
        atomic_write(path, lambda fh: fh.write(text))
        try:
            return open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise _write_error(path, exc) from exc

    def _log(self, f, record: dict[str, Any]) -> None:
        self.history.append(record)
        try:
            f.write(json.dumps(record) + "\n")
            f.flush()
        except OSError as exc:
            raise _write_error(self.out / "metrics.jsonl", exc) from exc

    def _eval_and_checkpoint(self, f, progress: _Progress, *, final: bool) -> None:
        cfg = self.config
        if not self.is_main:  # process 0 alone evaluates and writes; the others go on
            return
        if (self.step % cfg.eval_every == 0 or final) and self.step not in self._val_steps:
            self._val_steps.add(self.step)
            metrics = self.evaluate("val")
            if metrics:
                self._log(f, {"step": self.step, "split": "val", **metrics,
                              "time": round(self.elapsed, 3)})
                progress.print(_format_eval(self.step, "val", metrics))
                score = list(self.data.score(metrics))
                if self.best is None or score > self.best["score"]:
                    self.best = {"step": self.step, "score": score, "metrics": metrics}
                    self.save(self.out / "best.npz")
        if self.step % cfg.checkpoint_every == 0 or final:
            self.save(self.out / "last.npz")

    # ------------------------------------------------------------------ the loop
    def train(self, stop_after: int | None = None) -> TrainResult:
        r"""Run eq. (1) until ``config.steps`` (or ``stop_after``) updates are done.

        Parameters
        ----------
        stop_after : int, optional
            Stop once this many updates are done, saving ``last.npz`` as an interruption
            would (for tests and for splitting a run); resume with ``resume=True``.

        Returns
        -------
        TrainResult

        Raises
        ------
        NonFiniteError
            When the loss or a gradient is NaN or inf (naming the step and the tensor).

        Examples
        --------
        >>> import tempfile
        >>> cfg = TrainConfig(steps=4, batch_size=2, d_model=8, n_layers=1, n_heads=2,
        ...                   d_ff=16, n_train=20, n_val=5, n_test=5, warmup_steps=1,
        ...                   out=tempfile.mkdtemp())
        >>> Trainer(cfg, quiet=True).train(stop_after=2).finished
        False
        >>> Trainer(cfg, resume=True, quiet=True).train().steps
        4
        """
        cfg = self.config
        end = cfg.steps if stop_after is None else min(int(stop_after), cfg.steps)
        if self.is_main:
            _check_out_folder(self.out)
        progress = _Progress(self.stream, cfg.steps, quiet=self.quiet)
        if self.step == 0 and self.is_main:
            if self.overwrite:  # asked for: the old run's files go before the new run starts
                for stale in RUN_FILES:
                    (self.out / stale).unlink(missing_ok=True)
            else:  # files that appeared since __init__ are never overwritten either
                _refuse_existing_run(self.out)
            try:
                cfg.save_yaml(self.out / "config.yaml")
            except ImportError:
                pass
            progress.print(
                f"training {cfg.task} on the {cfg.backend} backend: "
                f"{self.model.num_parameters():,} parameters, {cfg.steps} steps of "
                f"{cfg.batch_size} x {self.data.seq_len} tokens ({cfg.dtype}) -> {self.out}"
            )
        else:
            tail = (f"; steps after {self.schedule_steps} run at min_lr={cfg.min_lr}"
                    if cfg.steps > self.schedule_steps and cfg.schedule != "constant" else "")
            progress.print(f"resuming {self.out} at step {self.step}/{cfg.steps}{tail}")
        progress.print(self._setup_report())
        tokens_per_step = cfg.batch_size * self.data.seq_len
        with _thread_limit(cfg.threads, cfg.backend), _deferred_interrupt() as interrupted, \
                self._open_metrics() as f:
            started = self.step
            t_start = time.perf_counter()
            try:
                while self.step < end:
                    t0 = time.perf_counter()
                    lr = self.schedule(self.step)
                    x, y = self.data.batch(self.data_rng, cfg.batch_size)  # (B, T), (B, T)
                    loss, norm = self.engine.step(x, y, lr, self.step + 1)  # names the update
                    for note in self.engine.notes:  # e.g. torch.compile fell back
                        progress.print(note)
                    self.engine.notes.clear()
                    self.step += 1
                    dt = time.perf_counter() - t0
                    self.elapsed += dt
                    tps = tokens_per_step / dt if dt > 0 else float("inf")
                    self._log(f, {"step": self.step, "split": "train", "loss": loss, "lr": lr,
                                  "grad_norm": norm, "tokens_per_s": round(tps, 1),
                                  "time": round(self.elapsed, 3)})
                    rate = (time.perf_counter() - t_start) / (self.step - started)
                    progress.update(self.step, loss, lr, norm, tps, rate * (end - self.step))
                    if interrupted():
                        raise KeyboardInterrupt
                    if self.step < end:
                        self._eval_and_checkpoint(f, progress, final=False)
                finished = self.step >= cfg.steps
                self._eval_and_checkpoint(f, progress, final=True)
            except NonFiniteError as exc:
                # the update was refused before it touched the weights; last.npz and
                # best.npz still hold the last good state
                progress.close()
                kept = (f"the last good checkpoint, {self.out / 'last.npz'} (step "
                        f"{self._saved_step}), is kept" if self._saved_step is not None
                        else "no checkpoint had been written yet")
                raise NonFiniteError(f"{exc}; {kept}") from None
            except KeyboardInterrupt:
                # Ctrl-C is deferred to the end of a step (see _deferred_interrupt), so the
                # state saved here is a consistent one and resuming from it stays exact
                progress.close()
                self.save(self.out / "last.npz")
                progress.print(f"interrupted: saved step {self.step} to {self.out / 'last.npz'};"
                               " resume with --resume")
                raise
            finally:
                progress.close()
        if not finished:
            progress.print(f"stopped at step {self.step}; resume to continue")
            return TrainResult(cfg, self.step, False, {}, None, self.out / "last.npz",
                               self.out / "best.npz", self.elapsed)
        if not self.is_main:  # the summary is process 0's
            return TrainResult(cfg, self.step, True, {}, None, self.out / "last.npz",
                               self.out / "best.npz", self.elapsed)
        metrics = self._summary()
        path = self.out / "summary.json"
        text = json.dumps(metrics, indent=2).encode("utf-8")
        atomic_write(path, lambda fh: fh.write(text))
        progress.print(f"wrote {path}")
        return TrainResult(cfg, self.step, True, metrics, path, self.out / "last.npz",
                           self.out / "best.npz", self.elapsed)

    def _setup_report(self) -> str:
        """Where and how the run trains: the device (and how it was chosen), the processes,
        the micro-batches, mixed precision, the compiler."""
        cfg = self.config
        parts = [f"device {self.device_report}"]
        if self.dist.distributed:
            parts.append(f"{self.dist.world_size} processes ({self.dist.backend}), "
                         f"{cfg.batch_size} rows per update shared out, process 0 writes")
        if cfg.grad_accum > 1:
            parts.append(f"{cfg.grad_accum} micro-batches per update")
        if cfg.amp != "none":
            parts.append(f"mixed precision {cfg.amp}"
                         + (" with a GradScaler" if cfg.amp == "fp16" else ""))
        if cfg.compile:
            parts.append("torch.compile" if getattr(self.engine, "compiled", None) is not None
                         else "torch.compile unavailable, eager")
        notes = list(self.engine.notes)
        self.engine.notes.clear()
        return "; ".join(parts) + "".join("\n" + n for n in notes)

    def _summary(self) -> dict[str, Any]:
        cfg = self.config
        val = self.evaluate("val")
        out: dict[str, Any] = {
            "task": cfg.task, "backend": cfg.backend, "steps": self.step,
            "wall_time_s": round(self.elapsed, 2), "parameters": self.model.num_parameters(),
            "final_train_loss": next((r["loss"] for r in reversed(self.history)
                                      if r["split"] == "train"), None),
            "val": val,
            "best": None if self.best is None else {"step": self.best["step"],
                                                    "val": self.best["metrics"]},
            "checkpoints": {"last": str(self.out / "last.npz"),
                            "best": str(self.out / "best.npz")},
            "config": cfg.to_dict(),
        }
        if cfg.task == "digits":
            out["test"] = self.evaluate("test") if cfg.n_test else {}
        else:
            prompt = cfg.sample_prompt
            ids = self.data.codec.encode(prompt)
            sample = sample_text(self.model, ids, cfg.sample_tokens, temperature=0.8,
                                 seed=cfg.seed)
            out["sample"] = {"prompt": prompt, "temperature": 0.8,
                             "text": prompt + self.data.codec.decode(sample)}
        return out


def format_summary(m: Mapping[str, Any]) -> str:
    r"""The result of a run (the content of ``summary.json``) as a few lines of text.

    Examples
    --------
    >>> print(format_summary({"steps": 10, "wall_time_s": 61.2, "backend": "numpy",
    ...     "parameters": 1234, "test": {"exact_match": 0.995,
    ...     "per_operation": {"Max": 0.99, "Min": 1.0}}}))
    done: 10 steps in 0:01:01 (numpy backend, 1,234 parameters)
    test exact match 99.50%
      Max     99.00%
      Min    100.00%
    """
    lines = [f"done: {m['steps']} steps in {_fmt_time(m['wall_time_s'])} "
             f"({m['backend']} backend, {m['parameters']:,} parameters)"]
    if m.get("test"):
        t = m["test"]
        lines.append(f"test exact match {t['exact_match']:.2%}")
        lines += [f"  {op:<7}{acc:7.2%}" for op, acc in t["per_operation"].items()]
    if m.get("val") and "perplexity" in m["val"]:
        v = m["val"]
        lines.append(f"val loss {v['loss']:.4f}, perplexity {v['perplexity']:.2f}")
    if "sample" in m:
        lines.append("sample (temperature 0.8):")
        lines.append(m["sample"]["text"])
    return "\n".join(lines)


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          quiet: bool = False, stream: TextIO | None = None) -> TrainResult:
    r"""Train a model as ``config`` says; see :class:`Trainer`.

    Examples
    --------
    >>> import tempfile
    >>> cfg = TrainConfig(task="text", steps=2, batch_size=2, seq_len=16, d_model=8,
    ...                   n_layers=1, n_heads=2, d_ff=16, eval_batches=1, sample_tokens=5,
    ...                   out=tempfile.mkdtemp())
    >>> r = train(cfg, quiet=True)
    >>> sorted(r.metrics["val"]), r.metrics["sample"]["text"].startswith("Alice ")
    (['accuracy', 'loss', 'perplexity'], True)
    """
    return Trainer(config, resume=resume, overwrite=overwrite, quiet=quiet,
                   stream=stream).train()



r"""Training in the background: a :class:`TrainingJob` runs ``literate-tx train`` as a child.

Why a process and not a thread: the lab's web server must stay responsive while a model trains,
and a thread running the training loop would hold Python's global interpreter lock for most of
each step. A child process also gets the trainer's own Ctrl-C handling: :meth:`TrainingJob.stop`
sends it ``SIGINT``, the :class:`~literate_tx.training.Trainer` finishes the step it is in,
saves ``last.npz`` (weights, optimiser state, data position and random-generator states) and
exits, so that the run resumes exactly (:meth:`TrainingJob.start` with ``resume=True``, or
``literate-tx train --resume --out FOLDER``). The run folder is the one the command line writes,
because the child *is* the command line.

Streamlit runs the page script again on every click, so the jobs live in a module-level registry
keyed by run folder (:func:`start_training`, :func:`job_for`), which outlives the reruns.

Examples
--------
>>> import tempfile
>>> from literate_tx.training import TrainConfig
>>> cfg = TrainConfig(steps=3, batch_size=4, d_model=8, n_layers=1, n_heads=2, d_ff=16,
...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
>>> job = start_training(cfg)
>>> job.wait(120)
0
>>> job.status, job_for(cfg.out) is job
('finished', True)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ..training import TrainConfig

__all__ = ["RUN_FILES", "TrainingJob", "holds_run", "start_training", "job_for", "stop_all"]


class TrainingJob:
    r"""One ``literate-tx train`` child process and its log.

    Parameters
    ----------
    config : TrainConfig
        The run; its ``out`` folder receives the usual files.
    resume : bool
        Continue the run in ``config.out`` (its ``last.npz``) up to ``config.steps``.
    overwrite : bool
        Start a new run in ``config.out`` even if it holds one (its files are replaced).

    Attributes
    ----------
    config : TrainConfig
    resume : bool
    log_path : pathlib.Path
        The child's standard output and error (progress lines, the result, an error message).

    Examples
    --------
    >>> TrainingJob(TrainConfig()).status
    'not started'
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, overwrite: bool = False):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if resume and overwrite:
            raise ValueError("resume and overwrite contradict each other: resume continues the "
                             "run in the folder, overwrite replaces it; choose one")
        self.config = config
        self.resume = bool(resume)
        self.overwrite = bool(overwrite)
        self._dir = Path(tempfile.mkdtemp(prefix="literate-tx-lab-"))
        self.log_path = self._dir / "train.log"
        self._proc: subprocess.Popen | None = None
        self._stopping = False

    def command(self) -> list[str]:
        r"""The command line the child runs.

        Examples
        --------
        >>> cmd = TrainingJob(TrainConfig(out="runs/x", steps=9), resume=True).command()
        >>> cmd[1:]
        ['-m', 'literate_tx', 'train', '--resume', '--out', 'runs/x', '--steps', '9']
        """
        cmd = [sys.executable, "-m", "literate_tx", "train"]
        if self.resume:
            return cmd + ["--resume", "--out", self.config.out, "--steps", str(self.config.steps)]
        cmd += ["--config", str(self._dir / "config.yaml")]
        return cmd + (["--overwrite"] if self.overwrite else [])

    def start(self) -> TrainingJob:
        r"""Start the child process (once).

        Raises
        ------
        RuntimeError
            When this job was started already.

        Examples
        --------
        >>> import tempfile
        >>> job = TrainingJob(TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1,
        ...     n_heads=2, d_ff=16, n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp()))
        >>> job.start().wait(120)
        0
        """
        if self._proc is not None:
            raise RuntimeError("this training job was started already; make a new one")
        if not self.resume:
            _write_changes(self.config, self._dir / "config.yaml")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=env)
        return self

    @property
    def returncode(self) -> int | None:
        r"""The child's exit status, ``None`` while it runs (or before it starts).

        Examples
        --------
        >>> TrainingJob(TrainConfig()).returncode is None
        True
        """
        return None if self._proc is None else self._proc.poll()

    @property
    def running(self) -> bool:
        r"""True from :meth:`start` until the child exits.

        Examples
        --------
        >>> TrainingJob(TrainConfig()).running
        False
        """
        return self._proc is not None and self._proc.poll() is None

    @property
    def status(self) -> str:
        r"""``"not started"``, ``"running"``, ``"stopping"``, ``"finished"``, ``"stopped"``
        (by :meth:`stop`: ``last.npz`` saved, resumable) or ``"failed"`` (see :meth:`error`).

        Examples
        --------
        >>> TrainingJob(TrainConfig()).status
        'not started'
        """
        if self._proc is None:
            return "not started"
        code = self._proc.poll()
        if code is None:
            return "stopping" if self._stopping else "running"
        if code == 0:
            return "finished"
        if self._stopping and code in (130, -signal.SIGINT):
            return "stopped"
        return "failed"

    def stop(self, timeout: float = 60.0) -> int | None:
        r"""Ask the trainer to stop after its current step, as Ctrl-C does, and wait.

        The trainer saves ``last.npz`` before it exits, so the run can be resumed exactly.
        A child that does not exit within ``timeout`` seconds is killed (nothing is saved then).

        Returns
        -------
        int or None
            The exit status (130 after a clean stop), ``None`` if the job never started.

        Examples
        --------
        >>> TrainingJob(TrainConfig()).stop() is None
        True
        """
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._stopping = True
            if os.name == "posix":
                self._proc.send_signal(signal.SIGINT)
            else:  # pragma: no cover - no SIGINT for a child on Windows
                self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        r"""Wait for the child to exit; return its exit status (``None`` on timeout).

        Examples
        --------
        >>> TrainingJob(TrainConfig()).wait(0) is None
        True
        """
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self, tail: int = 4000) -> str:
        r"""The last ``tail`` characters of the child's output.

        Examples
        --------
        >>> TrainingJob(TrainConfig()).log()
        ''
        """
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-tail:].decode("utf-8", errors="replace")

    def error(self) -> str | None:
        r"""The trainer's one-line error message when the job failed, else ``None``.

        Examples
        --------
        >>> TrainingJob(TrainConfig()).error() is None
        True
        """
        if self.status != "failed":
            return None
        lines = [line for line in self.log().splitlines() if line.strip()]
        for line in reversed(lines):
            if "error:" in line or "failed:" in line:
                return line.strip()
        return lines[-1].strip() if lines else f"training exited with status {self.returncode}"


def _write_changes(config: TrainConfig, path: Path) -> None:
    """Write the fields that differ from the task's defaults (what ``--config`` reads).

    The command line then rebuilds the same configuration, and checks that concern a field
    only when it was given (``warmup_steps`` against ``steps``) see only what was changed.
    """
    import yaml

    from ..training import default_config

    base = default_config(config.task).to_dict()
    changed = {k: v for k, v in config.to_dict().items() if k == "task" or base.get(k) != v}
    path.write_text(yaml.safe_dump(changed, sort_keys=False), encoding="utf-8")


_JOBS: dict[str, TrainingJob] = {}
_LOCK = threading.Lock()


def _key(out: str | os.PathLike) -> str:
    return str(Path(out).resolve())


#: Files that make a folder a run (a new run there needs ``overwrite=True``).
RUN_FILES = ("metrics.jsonl", "last.npz", "best.npz", "summary.json")


def holds_run(out: str | os.PathLike) -> bool:
    r"""True when folder ``out`` holds a run (any of :data:`RUN_FILES`).

    Examples
    --------
    >>> holds_run("/nonexistent/run")
    False
    """
    return any((Path(out) / name).exists() for name in RUN_FILES)


def start_training(config: TrainConfig, *, resume: bool = False,
                   overwrite: bool = False) -> TrainingJob:
    r"""Start training ``config`` in the background and remember the job by its run folder.

    Parameters
    ----------
    config : TrainConfig
    resume : bool
        Continue the run in ``config.out``.
    overwrite : bool
        Replace the run in ``config.out``, if any.

    Raises
    ------
    ValueError
        When a job is already training into ``config.out``, or when the folder holds a run and
        neither ``resume`` nor ``overwrite`` is given.
    FileNotFoundError
        For ``resume=True`` without ``config.out/last.npz``.

    Examples
    --------
    >>> start_training(TrainConfig(out="/nonexistent/run"), resume=True)
    Traceback (most recent call last):
    ...
    FileNotFoundError: no checkpoint to resume at /nonexistent/run/last.npz; ...
    """
    if resume and not (Path(config.out) / "last.npz").is_file():
        raise FileNotFoundError(f"no checkpoint to resume at {Path(config.out) / 'last.npz'}; "
                                "start a new run instead")
    with _LOCK:
        key = _key(config.out)
        old = _JOBS.get(key)
        if old is not None and old.running:
            raise ValueError(f"a job is already training into {config.out}; stop it first or "
                             "choose another folder")
        if not resume and not overwrite and holds_run(config.out):
            raise ValueError(f"{config.out} holds a run already: resume it, replace it "
                             "(overwrite), or choose another run folder")
        job = TrainingJob(config, resume=resume, overwrite=overwrite).start()
        _JOBS[key] = job
    return job


def job_for(out: str | os.PathLike) -> TrainingJob | None:
    r"""The latest job started for run folder ``out``, or ``None``.

    Examples
    --------
    >>> job_for("/nonexistent/run") is None
    True
    """
    return _JOBS.get(_key(out))


def stop_all(timeout: float = 60.0) -> None:
    r"""Stop every running job (each saves ``last.npz``).

    Examples
    --------
    >>> stop_all()
    """
    for job in list(_JOBS.values()):
        if job.running:
            job.stop(timeout)

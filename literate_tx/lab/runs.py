r"""Run folders as the lab sees them: finding them, reading their metrics, comparing them.

A *run folder* is what ``literate-tx train`` (and :class:`~literate_tx.training.Trainer`) writes:
``metrics.jsonl`` (one JSON object per training step and per evaluation), ``config.yaml``,
``last.npz`` / ``best.npz`` and, once finished, ``summary.json``. Everything here only reads
those files, so the lab shows a run the command line trained exactly as one it trained itself,
and a run that is still training (the trainer flushes each line of ``metrics.jsonl``).

The compute axis of the comparison is the usual estimate of
:func:`literate_tx.flops.flops_per_token`, :math:`6N + 12LTC` per token, times the
:math:`B \cdot T` tokens of one step.

Examples
--------
>>> import json, os, tempfile
>>> folder = tempfile.mkdtemp()
>>> with open(os.path.join(folder, "metrics.jsonl"), "w") as f:
...     for s in (1, 2):
...         _ = f.write(json.dumps({"step": s, "split": "train", "loss": 3.0 / s}) + "\n")
>>> [p == folder for p in map(str, find_runs(folder))]
[True]
>>> series(read_metrics(folder), "train", "loss")
([1, 2], [3.0, 1.5])
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MAX_COMPARED", "RunSummary", "find_runs", "read_metrics", "series",
           "run_summary", "compare_runs", "config_table"]

#: The most runs the comparison page draws at once.
MAX_COMPARED = 4

# folders never searched for runs
_SKIP = {".git", ".nox", ".venv", "venv", "node_modules", "__pycache__", "_build"}


def find_runs(root: str | os.PathLike, *, max_depth: int = 3) -> list[Path]:
    r"""Run folders (those holding a ``metrics.jsonl``) under ``root``, newest first.

    Parameters
    ----------
    root : path
        Searched with its sub-folders down to ``max_depth`` levels (``root`` itself is level 0).
        A missing folder holds no runs.
    max_depth : int

    Returns
    -------
    list of pathlib.Path
        Ordered by the time ``metrics.jsonl`` was last written, the newest first.

    Examples
    --------
    >>> find_runs("/nonexistent/folder")
    []
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    base = len(root.parts)
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).parts) - base
        dirs[:] = sorted(d for d in dirs if d not in _SKIP and not d.startswith("."))
        if depth >= max_depth:
            dirs[:] = []
        if "metrics.jsonl" in files:
            found.append(Path(folder))
    return sorted(found, key=lambda p: (p / "metrics.jsonl").stat().st_mtime, reverse=True)


def read_metrics(folder: str | os.PathLike) -> list[dict[str, Any]]:
    r"""The records of ``folder/metrics.jsonl`` (a file path works too).

    Unlike :func:`literate_tx.plots.read_metrics` this is meant for a run that may still be
    training: a last line cut short by the writer is skipped instead of raising.

    Raises
    ------
    FileNotFoundError
        When there is no ``metrics.jsonl``.
    ValueError
        For a line other than the last that is not a JSON object (a damaged file).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "metrics.jsonl")
    >>> _ = open(path, "w").write('{"step": 1, "split": "train", "loss": 2.0}\n{"step": 2, "spl')
    >>> read_metrics(path)
    [{'step': 1, 'split': 'train', 'loss': 2.0}]
    """
    path = Path(folder)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file at {path}; pick a folder written by "
                                "`literate-tx train`")
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):  # being written right now
                break
            raise ValueError(f"{path}, line {n}: not JSON; the file is damaged") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {n}: a metrics line must be a JSON object, got "
                             f"{type(record).__name__}")
        records.append(record)
    return records


def series(records: Sequence[Mapping[str, Any]], split: str, key: str
           ) -> tuple[list[int], list[float]]:
    r"""``(steps, values)`` of one quantity of one split, in file order.

    For ``key="perplexity"`` a record without it (the digits task's validation) gives
    :math:`e^{\text{loss}}`.

    Examples
    --------
    >>> recs = [{"step": 5, "split": "val", "loss": 0.0}, {"step": 5, "split": "train",
    ...                                                  "loss": 1.0}]
    >>> series(recs, "val", "perplexity")
    ([5], [1.0])
    """
    steps, values = [], []
    for r in records:
        if r.get("split") != split or "step" not in r:
            continue
        value = r.get(key)
        if value is None and key == "perplexity" and isinstance(r.get("loss"), (int, float)):
            value = math.exp(min(r["loss"], 700.0))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            steps.append(int(r["step"]))
            values.append(float(value))
    return steps, values


@dataclass(frozen=True)
class RunSummary:
    r"""What the comparison table shows of one run.

    Attributes
    ----------
    folder : pathlib.Path
    label : str
        The folder's name.
    config : dict
        The training configuration (``config.yaml``, else the checkpoint's), ``{}`` if none.
    steps_done, steps_total : int or None
    finished : bool
        ``summary.json`` exists.
    parameters : int or None
    best_val_loss, final_train_loss : float or None
    flops_per_step : float or None
        :math:`(6N + 12LTC) \cdot B T`.
    wall_time_s : float or None
        Seconds of training (the last record's ``time``).

    Examples
    --------
    >>> RunSummary(Path("r"), "r", {}, 0, None, False, None, None, None, None, None).finished
    False
    """

    folder: Path
    label: str
    config: dict[str, Any]
    steps_done: int
    steps_total: int | None
    finished: bool
    parameters: int | None
    best_val_loss: float | None
    final_train_loss: float | None
    flops_per_step: float | None
    wall_time_s: float | None

    @property
    def total_flops(self) -> float | None:
        r"""Training FLOPs so far (``flops_per_step * steps_done``).

        Examples
        --------
        >>> RunSummary(Path("r"), "r", {}, 10, 10, True, 5, 1.0, 1.0, 2e6, 1.0).total_flops
        20000000.0
        """
        return None if self.flops_per_step is None else self.flops_per_step * self.steps_done

    def row(self) -> dict[str, Any]:
        r"""One row of the summary table.

        Examples
        --------
        >>> RunSummary(Path("r"), "r", {}, 3, 10, False, 5, None, 1.5, None, 0.25).row()["steps"]
        '3 / 10'
        """
        total = "?" if self.steps_total is None else self.steps_total
        return {"run": self.label, "task": self.config.get("task", "?"),
                "backend": self.config.get("backend", "?"),
                "parameters": self.parameters, "steps": f"{self.steps_done} / {total}",
                "best val loss": self.best_val_loss,
                "best val perplexity": (None if self.best_val_loss is None
                                        else math.exp(min(self.best_val_loss, 700.0))),
                "final train loss": self.final_train_loss,
                "FLOPs": self.total_flops, "time (s)": self.wall_time_s,
                "finished": self.finished}


# checkpoint facts are read once per file version: (path, mtime) -> (parameters, flops per step)
_CKPT_CACHE: dict[tuple[str, float], tuple[int, float | None, dict]] = {}


def _checkpoint_facts(folder: Path) -> tuple[int | None, float | None, dict]:
    from ..checkpoint import read_checkpoint
    from ..params import param_shapes
    from ..plots import flops_per_token

    for name in ("last.npz", "best.npz"):
        path = folder / name
        if not path.is_file():
            continue
        key = (str(path), path.stat().st_mtime)
        if key not in _CKPT_CACHE:
            try:
                ckpt = read_checkpoint(path)
            except (ValueError, OSError):
                continue
            shapes = param_shapes(ckpt.config)
            n = sum(math.prod(s) for s in shapes.values())
            tcfg = ckpt.metadata.get("train_config") or {}
            batch = tcfg.get("batch_size")
            T = min(int(tcfg.get("seq_len") or ckpt.config.max_seq_len), ckpt.config.max_seq_len)
            flops = flops_per_token(ckpt.config, T) * int(batch) * T if batch else None
            _CKPT_CACHE[key] = (n, flops, dict(tcfg))
        return _CKPT_CACHE[key]
    return None, None, {}


def run_summary(folder: str | os.PathLike) -> RunSummary:
    r"""Read one run folder into a :class:`RunSummary`.

    Raises
    ------
    FileNotFoundError
        When the folder has no ``metrics.jsonl``.

    Examples
    --------
    >>> import tempfile
    >>> from literate_tx.training import TrainConfig, train
    >>> cfg = TrainConfig(steps=2, batch_size=4, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> _ = train(cfg, quiet=True)
    >>> s = run_summary(cfg.out)
    >>> s.steps_done, s.steps_total, s.finished, s.parameters > 0, s.flops_per_step > 0
    (2, 2, True, True, True)
    """
    folder = Path(folder)
    records = read_metrics(folder)
    config: dict[str, Any] = {}
    if (folder / "config.yaml").is_file():
        try:
            import yaml

            loaded = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
            config = loaded if isinstance(loaded, dict) else {}
        except (ImportError, OSError, ValueError):  # yaml.YAMLError is a ValueError subclass
            config = {}
    parameters, flops, ckpt_config = _checkpoint_facts(folder)
    config = config or ckpt_config
    summary: dict[str, Any] = {}
    if (folder / "summary.json").is_file():
        try:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            summary = {}
    if parameters is None and isinstance(summary.get("parameters"), int):
        parameters = summary["parameters"]
    _, train_loss = series(records, "train", "loss")
    _, val_loss = series(records, "val", "loss")
    _, times = series(records, "train", "time")
    steps_done = max((int(r["step"]) for r in records if "step" in r), default=0)
    total = config.get("steps")
    return RunSummary(
        folder=folder, label=folder.name or str(folder), config=config,
        steps_done=steps_done, steps_total=int(total) if isinstance(total, int) else None,
        finished=bool(summary), parameters=parameters,
        best_val_loss=min(val_loss) if val_loss else None,
        final_train_loss=train_loss[-1] if train_loss else None,
        flops_per_step=flops, wall_time_s=times[-1] if times else None,
    )


def compare_runs(folders: Sequence[str | os.PathLike]) -> list[RunSummary]:
    r"""Summaries of up to :data:`MAX_COMPARED` run folders, labels made unique.

    Raises
    ------
    ValueError
        For no folder, more than :data:`MAX_COMPARED`, or the same folder twice.

    Examples
    --------
    >>> compare_runs(["a", "b", "c", "d", "e"])
    Traceback (most recent call last):
    ...
    ValueError: 5 runs chosen; the comparison shows at most 4 at once
    """
    folders = [Path(f) for f in folders]
    if not folders:
        raise ValueError("no run chosen; pick between 1 and 4 run folders")
    if len(folders) > MAX_COMPARED:
        raise ValueError(f"{len(folders)} runs chosen; the comparison shows at most "
                         f"{MAX_COMPARED} at once")
    resolved = [f.resolve() for f in folders]
    if len(set(resolved)) != len(resolved):
        raise ValueError("the same run folder is chosen twice; pick different runs")
    out = []
    seen: dict[str, int] = {}
    for folder in folders:
        s = run_summary(folder)
        n = seen.get(s.label, 0)
        seen[s.label] = n + 1
        if n:  # two folders of the same name in different places
            s = RunSummary(**{**s.__dict__, "label": f"{s.label} ({s.folder.parent.name})"})
        out.append(s)
    return out


def config_table(summaries: Sequence[RunSummary], *, only_different: bool = False
                 ) -> list[dict[str, Any]]:
    r"""The runs' configurations side by side: one row per field, one column per run.

    Parameters
    ----------
    summaries : sequence of RunSummary
    only_different : bool
        Keep only the fields whose values differ between the runs.

    Examples
    --------
    >>> a = RunSummary(Path("a"), "a", {"lr": 0.1, "steps": 5}, 0, 5, False, *[None] * 5)
    >>> b = RunSummary(Path("b"), "b", {"lr": 0.2, "steps": 5}, 0, 5, False, *[None] * 5)
    >>> config_table([a, b], only_different=True)
    [{'field': 'lr', 'a': '0.1', 'b': '0.2'}]
    """
    fields: list[str] = []
    for s in summaries:
        fields += [k for k in s.config if k not in fields]
    rows = []
    for name in fields:
        values = ["" if s.config.get(name) is None else str(s.config.get(name))
                  for s in summaries]
        if only_different and len(set(values)) == 1:
            continue
        rows.append({"field": name, **{s.label: v for s, v in zip(summaries, values,
                                                                      strict=True)}})
    return rows

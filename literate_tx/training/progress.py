r"""The progress bar and the one-line evaluation reports the trainer prints.

Examples
--------
>>> from literate_tx.training.progress import _fmt_time
>>> _fmt_time(3725)
'1:02:05'
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TextIO


# ============================================================================ progress
def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _Progress:
    """A one-line ``\\r`` progress bar on a terminal; eval lines and notes above it."""

    def __init__(self, stream: TextIO, total: int, *, quiet: bool):
        self.stream, self.total, self.quiet = stream, total, quiet
        isatty = getattr(stream, "isatty", None)
        self.bar = not quiet and bool(isatty and isatty())
        self.last_draw = 0.0
        self.width = 0

    def update(self, step: int, loss: float, lr: float, norm: float, tps: float,
               eta: float) -> None:
        now = time.perf_counter()
        if not self.bar or (now - self.last_draw < 0.1 and step < self.total):
            return
        self.last_draw = now
        frac = step / self.total
        filled = int(20 * frac)
        line = (f"step {step:>{len(str(self.total))}}/{self.total} "
                f"[{'#' * filled}{'.' * (20 - filled)}] {100 * frac:3.0f}%  loss {loss:.4f}  "
                f"lr {lr:.2e}  |g| {norm:.3f}  {tps / 1000:.1f}k tok/s  eta {_fmt_time(eta)}")
        pad = max(self.width - len(line), 0)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self.width = len(line)

    def print(self, message: str) -> None:
        if self.quiet:
            return
        if self.bar and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
        self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def _format_eval(step: int, split: str, metrics: Mapping[str, Any]) -> str:
    parts = [f"step {step}: {split} loss {metrics['loss']:.4f}"]
    if "exact_match" in metrics:
        parts.append(f"exact match {metrics['exact_match']:.2%}")
        parts.append(" ".join(f"{op} {acc:.0%}" for op, acc in metrics["per_operation"].items()))
    if "perplexity" in metrics:
        parts.append(f"perplexity {metrics['perplexity']:.2f}")
        parts.append(f"accuracy {metrics['accuracy']:.2%}")
    return ", ".join(parts)



r"""Keeping memory between training steps: the speed path's :class:`Workspace`, and an opt-in
glibc setting for the whole process.

Why it matters. A training step allocates the same arrays every time: the activations that the
backward pass needs, and its own temporaries, some of them 16 MiB (the ``tiny`` recipe's
(8 192, 512) MLP activations). Freed, such blocks go back to the operating system (glibc
unmaps blocks above its mmap threshold, and trims the top of the heap above its trim
threshold), and the next step takes them back page by page: every first write to a 4 KiB page
is a page fault, and the kernel zero-fills the page before the write. Counted with
``resource.getrusage``, a ``tiny`` step of the speed path took 16 951 page faults and 55 ms of
system time out of 420 ms (one thread, AMD EPYC, 2026-12).

Two ways to keep the memory:

:class:`Workspace`
    The speed path's own arrays, by name: the first step allocates them, every later step
    writes into the same ones (``out=``). This is what a caching allocator does (PyTorch's on
    CUDA, for one), done here for the arrays whose lifetime the model knows. It changes
    nothing outside the model, so :class:`~literate_tx.numpy_backend.fast.FastNumpyModel`
    uses it by default (``reuse_buffers=True``).
:func:`keep_freed_memory`
    A process-wide setting of glibc's allocator that keeps every freed block, the model's and
    everybody else's (PyTorch's CPU tensors too). Opt-in.

Examples
--------
>>> import numpy as np
>>> from literate_tx.numpy_backend.fast import Workspace, keep_freed_memory
>>> ws = Workspace()
>>> a = ws("u", (2, 3), np.float32)
>>> ws("u", (2, 3), np.float32) is a, ws.nbytes
(True, 24)
>>> callable(keep_freed_memory)
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import numpy as np

#: An allocator of scratch arrays: ``new(name, shape, dtype)`` returns an array of that shape
#: and dtype whose contents are undefined (the kernels write every element).
Allocator = Callable[[str, tuple, np.dtype], np.ndarray]


def fresh(name: str, shape: tuple, dtype) -> np.ndarray:
    """The allocator that keeps nothing: a new ``np.empty`` array every call (``name`` unused).

    Examples
    --------
    >>> fresh("u", (2,), np.float32).shape
    (2,)
    """
    return np.empty(shape, dtype=dtype)


class Workspace:
    r"""Arrays kept by name, handed out again to the next call with the same name.

    ``ws(name, shape, dtype)`` returns the array stored under ``name`` when its shape and dtype
    match, and otherwise allocates (and stores) a new one. ``ws.scope(prefix)`` is the same
    allocator with ``prefix`` put in front of every name, so that one kernel can be run for
    several layers without their arrays colliding.

    The contract that makes reuse safe is the caller's: an array handed out under a name is
    overwritten by the next request for that name, so a name may only be asked for again once
    nothing reads the old contents. :class:`~literate_tx.numpy_backend.fast.FastNumpyModel`
    keeps it by giving every array of a step its own name (one scope per layer for the
    forward pass; for the backward pass, two scopes that alternate from layer to layer), and
    by never returning a workspace array to its caller: the gradients and logits it returns
    are fresh.

    Examples
    --------
    >>> ws = Workspace()
    >>> layer = ws.scope("blocks.0.")
    >>> u = layer("u", (4, 8), np.float32)
    >>> sorted(ws.names()), u is ws("blocks.0.u", (4, 8), np.float32)
    (['blocks.0.u'], True)
    >>> ws("blocks.0.u", (2, 8), np.float32).shape  # another shape replaces the array
    (2, 8)
    >>> ws.clear(); ws.nbytes
    0
    """

    def __init__(self):
        self._arrays: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple, dtype) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.shape != tuple(shape) or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype=dtype)
        return array

    def scope(self, prefix: str) -> Allocator:
        """This workspace as an allocator that puts ``prefix`` in front of every name."""
        def new(name: str, shape: tuple, dtype) -> np.ndarray:
            return self(prefix + name, shape, dtype)
        return new

    def names(self) -> list[str]:
        """The names of the arrays held."""
        return list(self._arrays)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(a.nbytes for a in self._arrays.values())

    def clear(self) -> None:
        """Drop every array (the memory goes back to the allocator)."""
        self._arrays.clear()

    def __repr__(self) -> str:
        return f"Workspace({len(self._arrays)} arrays, {self.nbytes / 2**20:.1f} MiB)"


def within(new: Allocator, prefix: str) -> Allocator:
    """``new`` with ``prefix`` put in front of every name (``fresh`` stays ``fresh``).

    Examples
    --------
    >>> ws = Workspace()
    >>> _ = within(ws, "a.")("x", (1,), np.float32)
    >>> ws.names(), within(fresh, "a.") is fresh
    (['a.x'], True)
    """
    if new is fresh:
        return fresh
    if isinstance(new, Workspace):
        return new.scope(prefix)

    def scoped(name: str, shape: tuple, dtype) -> np.ndarray:
        return new(prefix + name, shape, dtype)
    return scoped


# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_memory_kept = False


def keep_freed_memory(mmap_threshold: int = 32 * 2**20, trim_threshold: int = 2**30) -> bool:
    r"""Ask glibc to keep freed blocks for reuse instead of returning them to the OS.

    Above ``M_MMAP_THRESHOLD`` (128 KiB by default) glibc serves each allocation with its own
    ``mmap`` and unmaps it on ``free``; every large temporary of the next step then faults its
    pages back in. Raising that threshold (32 MiB is glibc's maximum on 64-bit) and the trim
    threshold keeps the memory in the heap. This changes the whole process's allocator, so
    nothing calls it unless asked: ``FastNumpyModel(..., keep_memory=True)`` (default False)
    or a direct call, as the benchmark makes for ``numpy-fast``. Once set, it stays set for the
    life of the process.

    Parameters
    ----------
    mmap_threshold, trim_threshold : int
        Bytes.

    Returns
    -------
    bool
        True if glibc accepted both settings (False on other C libraries: nothing changes).

    Examples
    --------
    >>> keep_freed_memory() in (True, False)
    True
    """
    global _memory_kept
    if _memory_kept:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:  # pragma: no cover - depends on the platform
        libc = None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # pragma: no cover - not glibc
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1 and ok
    _memory_kept = ok
    return ok


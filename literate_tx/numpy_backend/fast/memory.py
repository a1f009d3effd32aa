r"""Keeping freed memory: an opt-in glibc setting that spares the speed path's page faults.

Examples
--------
>>> from literate_tx.numpy_backend.fast import keep_freed_memory
>>> callable(keep_freed_memory)
True
"""

from __future__ import annotations

import ctypes
import ctypes.util

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


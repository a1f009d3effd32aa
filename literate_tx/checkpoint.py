r"""Checkpoints: one ``.npz`` file holding the config, the weights and optional training state.

Format
------
A checkpoint is an uncompressed NumPy ``.npz`` archive (a zip file of ``.npy`` arrays) with

* ``meta.json`` — a ``uint8`` array holding UTF-8 JSON: ``{"format": "literate-tx-checkpoint",
  "version": 1, "config": {...}, "metadata": {...}}``;
* ``params/<name>`` — one array per canonical parameter (see :mod:`literate_tx.params`);
* ``state/<name>`` — optional extra arrays (optimiser moments, RNG state, data position...).

Everything is numbers: the archive is read with ``allow_pickle=False``, so loading a checkpoint can
never execute code. Writes are atomic — the archive is written to a temporary file in the same
directory, flushed to disk, then renamed over the destination — so a crash mid-write leaves the
previous checkpoint intact. Each array's CRC-32 is checked by the zip reader; a truncated or
corrupted file, a missing tensor or a shape that does not match the config raises ``ValueError``
naming the file and the tensor or field at fault.

Examples
--------
>>> import tempfile, os
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4)
>>> params = ltx.init_params(cfg, seed=0)
>>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> ltx.save_checkpoint(path, cfg, params)
>>> cfg2, params2 = ltx.load_checkpoint(path)
>>> cfg2 == cfg, all((params2[k] == v).all() for k, v in params.items())
(True, True)
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .config import ModelConfig
from .params import validate_params

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint", "Checkpoint", "atomic_write",
           "prepare_output_folder", "shared_file_mode"]

FORMAT = "literate-tx-checkpoint"
VERSION = 1


class Checkpoint(NamedTuple):
    """Everything stored in a checkpoint file.

    Attributes
    ----------
    config : ModelConfig
    params : dict of str to ndarray
        Canonical parameters.
    state : dict of str to ndarray
        Extra arrays (optimiser state and the like); empty if none were saved.
    metadata : dict
        JSON metadata given at save time.
    """

    config: ModelConfig
    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    metadata: dict[str, Any]


def _write_error(path: Path, exc: OSError) -> OSError:
    r"""An error of ``exc``'s class whose message names ``path`` and the cause in words.

    Examples
    --------
    >>> import errno
    >>> err = _write_error(Path("run/last.npz"), OSError(errno.ENOSPC, "No space left on device"))
    >>> print(err)
    cannot write run/last.npz: no space left on the device (free some or choose another folder)
    """
    import errno

    code = exc.errno
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", None):
        reason = "no space left on the device (free some or choose another folder)"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = f"the folder {path.parent} is read-only ({exc.strerror or exc})"
    elif code in (errno.EEXIST, errno.ENOTDIR):
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
        reason = (f"{blocker} is a file, not a folder" if blocker is not None
                  else (exc.strerror or str(exc)))
    elif code == errno.EISDIR:
        reason = "it is a folder; give a file name"
    else:
        reason = exc.strerror or str(exc)
    return type(exc)(f"cannot write {path}: {reason}")


def _remove_stale_temps(directory: Path, name: str) -> None:
    """Remove ``.<name>.*.tmp`` files left in ``directory`` by a write that was killed."""
    for stale in directory.glob(f".{glob.escape(name)}.*.tmp"):
        with contextlib.suppress(OSError):  # gone already, or not ours to remove
            if stale.is_file():
                stale.unlink()


def shared_file_mode() -> int:
    """The permission bits a plain ``open(path, "w")`` would give a new file: ``0o666`` less
    the process's umask (``0o644`` under the usual umask 022).

    ``tempfile.mkstemp`` creates its file readable by its owner only (``0o600``), which is
    right for a secret and wrong for a checkpoint or a token file that a colleague, a web
    server or a container's other user should read; writers that rename a temporary file
    into place set this mode on it first. The umask is read from ``/proc/self/status`` where
    Linux provides it (reading it with ``os.umask`` means setting it, which is not safe while
    other threads create files), else with ``os.umask``.

    Examples
    --------
    >>> oct(shared_file_mode() & 0o600)
    '0o600'
    """
    umask = None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
                    break
    if umask is None:  # pragma: no cover - not Linux
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def prepare_output_folder(folder: str | os.PathLike, *, field: str = "out") -> Path:
    """Create ``folder`` if missing and check that files can be written in it, before any work
    is done; return it as a :class:`~pathlib.Path`.

    Raises
    ------
    NotADirectoryError
        ``folder`` is a file or lies under one (the message names the file).
    OSError
        Of the class the system raised, when the folder cannot be created or written: the
        message names ``field``, the folder and the cause.

    Examples
    --------
    >>> import os, tempfile
    >>> base = tempfile.mkdtemp()
    >>> prepare_output_folder(os.path.join(base, "a", "b")).is_dir()
    True
    >>> open(os.path.join(base, "f"), "w").close()
    >>> prepare_output_folder(os.path.join(base, "f", "x"), field="out_dir")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    NotADirectoryError: out_dir='.../f/x' is not allowed: .../f is a file, not a folder; ...
    """
    out = Path(folder)
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise NotADirectoryError(f"{field}={str(out)!r} is not allowed: {blocker} is a file, "
                                 "not a folder; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):  # what the files written later will need
            pass
    except OSError as exc:
        raise type(exc)(f"{field}={str(out)!r} is not allowed: the folder cannot be created or "
                        f"written ({exc.strerror or exc})") from exc
    return out


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(fileobj)`` on a temporary file, then rename it to ``path``.

    The temporary file lives in the destination directory (a rename is only atomic within one
    file system) and is removed if ``write`` raises, so ``path`` is either the old file or the
    complete new one, never a partial write. The file gets the permissions of a plainly
    written one (:func:`shared_file_mode`), not the temporary file's private ``0o600``.
    Temporary files of ``path`` that a killed process left behind (``.<name>.*.tmp``) are
    removed first. The folder is created if missing.

    Raises
    ------
    OSError
        Of the class the system raised (``PermissionError``, ``IsADirectoryError``...), with a
        message naming ``path`` and the cause: a read-only folder, a parent that is a file,
        ``path`` itself a folder, a full disk.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "hello.txt")
    >>> atomic_write(p, lambda f: f.write(b"hi"))
    >>> open(p).read()
    'hi'
    >>> atomic_write(os.path.dirname(p), lambda f: f.write(b"hi"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    IsADirectoryError: cannot write ...: it is a folder; give a file name
    """
    import errno

    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise _write_error(path, IsADirectoryError(errno.EISDIR, "Is a directory"))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(directory, path.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        os.fchmod(fd, shared_file_mode())  # mkstemp's file is private; the result is not
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise


def save_checkpoint(
    path: str | os.PathLike,
    config: ModelConfig,
    params: Mapping[str, np.ndarray],
    *,
    state: Mapping[str, np.ndarray] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write config, parameters and optional state to ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination file (``.npz`` by convention).
    config : ModelConfig
    params : mapping of str to array
        Canonical parameters; checked against ``config`` before anything is written.
    state : mapping of str to array, optional
        Extra numeric arrays to store (no object arrays).
    metadata : mapping, optional
        JSON-serialisable metadata (step counts, metrics...).

    Examples
    --------
    >>> import tempfile, os
    >>> import literate_tx as ltx
    >>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4)
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> ltx.save_checkpoint(path, cfg, ltx.init_params(cfg), metadata={"step": 7})
    >>> ltx.read_checkpoint(path).metadata
    {'step': 7}
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for name, value in validate_params(config, params).items():
        arrays[f"params/{name}"] = np.ascontiguousarray(value)
    for name, value in (state or {}).items():
        value = np.asarray(value)
        if value.dtype == object:
            raise ValueError(
                f"state array {name!r} has dtype object; only numeric arrays are stored"
            )
        arrays[f"state/{name}"] = value
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "metadata": dict(metadata or {}),
    }
    try:
        meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    except TypeError as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from exc
    arrays["meta.json"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read everything in a checkpoint, validating it; never unpickles.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a checkpoint, is truncated or corrupt (naming the tensor whose bytes are
        bad), holds a pickled object (refused, never loaded), or its tensors do not match its
        config.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "broken.npz")
    >>> _ = open(p, "wb").write(b"not a zip file")
    >>> read_checkpoint(p)
    Traceback (most recent call last):
    ...
    ValueError: ...broken.npz is not a literate-tx checkpoint (not a .npz archive; it starts ...)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a checkpoint file; give a .npz file in it, "
                         f"e.g. {path / 'last.npz'}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80":  # a pickle protocol 2+ stream, maybe with code to run
        raise ValueError(f"{path} refused: contains a pickled object (not loaded); a "
                         "literate-tx checkpoint is an .npz archive of plain numbers")
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip file, what np.savez writes
        raise ValueError(f"{path} is not a literate-tx checkpoint (not a .npz archive; it "
                         f"starts with {head!r})")
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(
            f"{path} is not a literate-tx checkpoint (not a readable .npz archive: {exc})"
        ) from exc
    with archive:
        keys = list(archive.files)

        def get(key: str) -> np.ndarray:
            try:
                return archive[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc):  # an object array: numpy would need pickle
                    raise ValueError(
                        f"{path}: tensor {key!r} refused: contains a pickled object (not "
                        "loaded); a literate-tx checkpoint holds plain numbers only"
                    ) from None
                raise ValueError(
                    f"{path}: tensor {key!r} is corrupt or truncated ({exc}); "
                    "the file was damaged after it was written"
                ) from exc
            except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
                raise ValueError(
                    f"{path}: tensor {key!r} is corrupt or truncated ({exc}); "
                    "the file was damaged after it was written"
                ) from exc

        if "meta.json" not in keys:
            raise ValueError(f"{path} is not a literate-tx checkpoint: it has no 'meta.json' entry")
        try:
            meta = json.loads(get("meta.json").tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: 'meta.json' is not valid JSON ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{path}: 'meta.json' does not describe a {FORMAT} file")
        if meta.get("version") != VERSION:
            raise ValueError(
                f"{path}: checkpoint format version {meta.get('version')!r} is not supported "
                f"(this literate_tx reads version {VERSION})"
            )
        try:
            config = ModelConfig.from_dict(meta.get("config"))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: stored config is invalid: {exc}") from exc
        params = {k[len("params/"):]: get(k) for k in keys if k.startswith("params/")}
        state = {k[len("state/"):]: get(k) for k in keys if k.startswith("state/")}
    try:
        params = validate_params(config, params)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return Checkpoint(config, params, state, meta.get("metadata", {}))


def load_checkpoint(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """Load ``(config, params)`` from a checkpoint written by :func:`save_checkpoint`.

    Examples
    --------
    >>> import tempfile, os
    >>> import literate_tx as ltx
    >>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
    >>> ltx.save_checkpoint(path, cfg, ltx.init_params(cfg))
    >>> cfg2, params = ltx.load_checkpoint(path)
    >>> params["embed.tokens"].shape
    (10, 8)
    """
    ckpt = read_checkpoint(path)
    return ckpt.config, ckpt.params

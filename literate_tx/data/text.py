r"""Text corpora for language modelling.

Three ways to get text, from the always-available to the largest:

:func:`default_corpus`
    *Alice's Adventures in Wonderland* by Lewis Carroll (1865), shipped inside
    the package as ``literate_tx/data/alice.txt`` (chapters I-IX of XII,
    110,732 bytes of real prose, ASCII). It works offline, in tests and in the
    documentation build.
:func:`load_text`
    any UTF-8 text file of yours.
:func:`tiny_shakespeare`
    Karpathy's Tiny Shakespeare (1,115,394 characters), downloaded once from
    :data:`TINY_SHAKESPEARE_URL` into a cache folder and checked against its
    SHA-256 digest :data:`TINY_SHAKESPEARE_SHA256` before every use.

Then :func:`encode_corpus` turns text into the 1-D id array that
:mod:`literate_tx.data.batching` cuts into training windows.

The embedded corpus
-------------------
The text is Project Gutenberg eBook #11, *Alice's Adventures in Wonderland*
by Lewis Carroll, first published in 1865 and in the public domain. The copy
was taken from ``data/alice.txt`` of the public GitHub repository
``learntextvis/textkit`` (commit ``f9ee8774``), where the Project Gutenberg
header and licence footer had already been removed. The first nine of the
twelve chapters were copied unchanged (the file ends with chapter IX), keeping
the package small. Project Gutenberg's licence asks only that its name and
trademark be removed from redistributed copies, so the file holds the book's
text alone. :data:`DEFAULT_CORPUS_INFO`
records this in code, and ``literate_tx/data/CORPUS.md`` says the same.

The Tiny Shakespeare digest
---------------------------
``86c4e6aa...65ed`` is the SHA-256 of the 1,115,394-byte ``input.txt`` in
``karpathy/char-rnn``; it is published by several independent projects that
pin this file (for example in their dataset manifests), all agreeing on digest
and size.

Cache folder
------------
``$LITERATE_TX_CACHE`` when set, else ``~/.cache/literate_tx``
(:func:`cache_dir`). A download is written to a temporary file, verified, then
renamed into place, so the cache never holds a partial or corrupt file.

Examples
--------
>>> text = default_corpus()
>>> text[:36]
'CHAPTER I. Down the Rabbit-Hole\n\nAli'
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_CORPUS_INFO",
    "TINY_SHAKESPEARE_SHA256",
    "TINY_SHAKESPEARE_SIZE",
    "TINY_SHAKESPEARE_URL",
    "DownloadError",
    "cache_dir",
    "default_corpus",
    "encode_corpus",
    "load_text",
    "sha256_file",
    "tiny_shakespeare",
    "verify_sha256",
]

#: Where :func:`tiny_shakespeare` downloads from.
TINY_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
#: SHA-256 of the expected file (hex).
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
#: Its size in bytes.
TINY_SHAKESPEARE_SIZE = 1_115_394

#: Source and licence of the embedded corpus returned by :func:`default_corpus`.
DEFAULT_CORPUS_INFO: dict[str, str] = {
    "file": "alice.txt",
    "title": "Alice's Adventures in Wonderland",
    "author": "Lewis Carroll",
    "published": "1865",
    "extent": "chapters I-IX of XII",
    "sha256": "d86c4ba474dca7dcffbe7c88857dda1f085950fc5d9eb3925b70303bbe828345",
    "source": "Project Gutenberg eBook #11, via github.com/learntextvis/textkit data/alice.txt",
    "licence": "public domain (Project Gutenberg header and footer removed)",
}


class DownloadError(OSError):
    r"""A corpus could not be downloaded (offline, or the server failed).

    Examples
    --------
    >>> issubclass(DownloadError, OSError)
    True
    """


def load_text(path: str | os.PathLike[str], encoding: str = "utf-8") -> str:
    r"""Read a text file.

    Parameters
    ----------
    path : str or path-like
    encoding : str

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message gives the absolute path).
    ValueError
        If the file is not valid text in ``encoding``.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "t.txt")
    ...     _ = open(p, "w", encoding="utf-8").write("to be")
    ...     load_text(p)
    'to be'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no text file at {path.resolve()}")
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not valid {encoding} text ({err})") from None


def default_corpus() -> str:
    r"""The embedded corpus: *Alice's Adventures in Wonderland*, chapters I-IX (110,732 chars).

    See :data:`DEFAULT_CORPUS_INFO` for its source and licence.

    Examples
    --------
    >>> text = default_corpus()
    >>> len(text) > 100_000, text.count("Alice") > 300
    (True, True)
    """
    ref = resources.files(__package__).joinpath(DEFAULT_CORPUS_INFO["file"])
    return ref.read_text(encoding="utf-8")


def cache_dir() -> Path:
    r"""Folder for downloaded corpora: ``$LITERATE_TX_CACHE`` or ``~/.cache/literate_tx``.

    Examples
    --------
    >>> import os
    >>> os.environ["LITERATE_TX_CACHE"] = "/tmp/ltx-cache"
    >>> str(cache_dir())
    '/tmp/ltx-cache'
    >>> del os.environ["LITERATE_TX_CACHE"]
    """
    env = os.environ.get("LITERATE_TX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "literate_tx"


def sha256_file(path: str | os.PathLike[str]) -> str:
    r"""Hex SHA-256 digest of a file's bytes, read in 1 MiB blocks.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "empty")
    ...     open(p, "wb").close()
    ...     sha256_file(p)[:16]
    'e3b0c44298fc1c14'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str) -> None:
    r"""Raise :class:`ValueError` unless the file's SHA-256 is ``expected``.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "f.txt")
    ...     _ = open(p, "w").write("not shakespeare")
    ...     verify_sha256(p, TINY_SHAKESPEARE_SHA256)
    Traceback (most recent call last):
    ...
    ValueError: .../f.txt has SHA-256 ... but 86c4e6aa... was expected; ...
    """
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ValueError(
            f"{path} has SHA-256 {actual} but {expected} was expected; the file is "
            "corrupt, truncated or a different text. Delete it and try again, or pass "
            "verify=False if you meant to use a different file"
        )


def _download(url: str, target: Path, expected_sha256: str) -> None:
    """Download ``url`` to ``target`` via a verified temporary file."""
    from ..checkpoint import shared_file_mode

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    while block := response.read(1 << 16):
                        out.write(block)
            except (urllib.error.URLError, OSError) as err:
                raise DownloadError(
                    f"could not download {url} ({err}). If this machine is offline, fetch "
                    f"that file on another machine and either pass it as "
                    f"tiny_shakespeare(path='/path/to/input.txt') or copy it to {target}"
                ) from err
        verify_sha256(tmp, expected_sha256)
        os.chmod(tmp, shared_file_mode())  # mkstemp makes it private; a data file is shared
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def tiny_shakespeare(
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    verify: bool = True,
) -> str:
    r"""Tiny Shakespeare: a local file, the cached copy, or a fresh download.

    Parameters
    ----------
    path : str or path-like, optional
        A local copy of ``input.txt``. When given, nothing is downloaded.
    download : bool
        Download into :func:`cache_dir` when no cached copy exists. With False a
        missing cache raises :class:`FileNotFoundError`.
    verify : bool
        Check the SHA-256 digest (always checked for downloads).

    Returns
    -------
    str
        1,115,394 characters of Shakespeare, starting ``"First Citizen:"``.

    Raises
    ------
    DownloadError
        When the download fails (e.g. offline); the message says how to pass a
        local file instead.
    ValueError
        When the file's digest is not :data:`TINY_SHAKESPEARE_SHA256`.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "mine.txt")
    ...     _ = open(p, "w").write("ROMEO:\nBut soft!\n")
    ...     tiny_shakespeare(p, verify=False)
    'ROMEO:\nBut soft!\n'
    """
    if path is not None:
        if verify:
            verify_sha256(path, TINY_SHAKESPEARE_SHA256)
        return load_text(path)
    cached = cache_dir() / "tinyshakespeare" / "input.txt"
    if not cached.is_file():
        if not download:
            raise FileNotFoundError(
                f"Tiny Shakespeare is not cached at {cached} and download=False; pass "
                "download=True, or path='/path/to/input.txt'"
            )
        _download(TINY_SHAKESPEARE_URL, cached, TINY_SHAKESPEARE_SHA256)
    elif verify:
        verify_sha256(cached, TINY_SHAKESPEARE_SHA256)
    return load_text(cached)


def encode_corpus(text: str, tokenizer: Any) -> np.ndarray:
    r"""Encode ``text`` with ``tokenizer`` into a 1-D int64 array (N,).

    ``tokenizer`` is anything with ``encode(text) -> list[int]``, e.g. a
    :class:`literate_tx.tokenizers.CharTokenizer`.

    Examples
    --------
    >>> from literate_tx.tokenizers import CharTokenizer
    >>> tok = CharTokenizer.train("abc", special_tokens=[])
    >>> encode_corpus("cab", tok)
    array([2, 0, 1])
    """
    if not hasattr(tokenizer, "encode"):
        raise TypeError(
            f"tokenizer is a {type(tokenizer).__name__} without an encode method; pass a "
            "tokenizer from literate_tx.tokenizers"
        )
    return np.asarray(tokenizer.encode(text), dtype=np.int64)  # (N,)

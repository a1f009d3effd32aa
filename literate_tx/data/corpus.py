r"""Corpora larger than one book: sources streamed once into a memory-mapped token file.

nanoGPT's ``prepare.py`` writes a corpus's token ids once into ``train.bin`` as raw
``uint16`` and every training run reads that file with :class:`numpy.memmap`, so the text is
tokenised once and a batch reads only the windows it needs. This module does the same for
three kinds of source:

``"folder"``
    every ``*.txt`` file under a folder (recursively, in sorted path order), one document per
    file;
``"jsonl"``
    a JSON Lines file, one document per line, the text in the field ``text_field``;
``"hf"``
    a Hugging Face ``datasets`` dataset, saved with ``Dataset.save_to_disk`` (give its folder)
    or in the local ``datasets`` cache (give its name), one document per row, the text in
    ``text_field`` (needs the optional extra: ``pip install 'literate-tx[data]'``).

What :func:`prepare_corpus` writes
----------------------------------
Into one folder:

``tokens.bin``
    every document's ids followed by ``<eos>`` (when the tokenizer has one), as raw
    little-endian ``uint16`` when :math:`V \le 2^{16}` (the largest id is :math:`V - 1`), else
    ``uint32``: no header and no pickle, read back with :class:`numpy.memmap`;
``tokenizer.json``
    the tokenizer (:meth:`literate_tx.tokenizers.Tokenizer.save`);
``manifest.json``
    what the file holds and where it came from: the request (tokenizer kind, ``vocab_size``,
    the SHA-256 of a tokenizer file, ``val_fraction``), the source's checksums (SHA-256 of
    every file read), the tokenizer's hash, the dtype, the number of tokens and of training
    tokens. It is written last, atomically (:func:`literate_tx.checkpoint.atomic_write`), so a
    folder with a manifest is complete.

The next run that asks for the same source and tokenizer recomputes the source's checksums
(one read, no tokenising), finds them equal to the manifest's and opens the existing file;
any change to a source file, to the request or to the tokenizer file prepares it again.

Streaming
---------
Nothing holds the whole text. A document is read in blocks of about ``block_chars``
characters, each cut where a non-space is followed by a space: neither the word pattern nor
GPT-2's pre-tokenizer ever joins those two characters into one piece (the only pattern
that contains whitespace, :math:`\mathtt{\backslash s+}`, starts at the space), so encoding
the blocks one by one gives the ids of the whole document. Three passes read the source:

1. count the characters :math:`N_c` and take the checksums; the validation text is about the
   last :math:`\mathrm{round}(N_c \cdot f)` characters (:math:`f` = ``val_fraction``): the
   training text is the first :math:`N_c^{\mathrm{train}}`, that is
   :math:`N_c - \mathrm{round}(N_c f)` moved forward to the next place where a cut changes
   no token (:func:`split_point`; for characters it does not move);
2. train the tokenizer on the training text only (:func:`literate_tx.tokenizers.train_tokenizer`
   holds counts, not text; a character tokenizer takes every character, so that the
   validation text has no ``<unk>``);
3. encode block by block, appending ids to ``tokens.bin``; the block that holds character
   :math:`N_c^{\mathrm{train}}` is encoded as two parts, and the number of ids written before
   the second is the manifest's ``n_train_tokens``: the training ids are
   ``tokens[:n_train_tokens]``, the validation ids the rest. Since no cut changes a token,
   the file holds exactly each document's ids followed by ``<eos>``.

A progress bar (characters done of :math:`N_c`) is drawn on a terminal.

Examples
--------
>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> for name, text in [("a.txt", "the cat sat. " * 20), ("b.txt", "the dog ran. " * 20)]:
...     _ = open(os.path.join(folder, name), "w", encoding="utf-8").write(text)
>>> corpus = prepare_corpus(CorpusSource("folder", folder), os.path.join(folder, "tok"),
...                         tokenizer="word", val_fraction=0.25)
>>> corpus.tokens.dtype, len(corpus.train) + len(corpus.val) == len(corpus.tokens)
(dtype('uint16'), True)
>>> corpus.tokenizer.decode(corpus.train[:6].tolist())
'the cat sat.'
>>> prepare_corpus(CorpusSource("folder", folder), os.path.join(folder, "tok"),
...                tokenizer="word", val_fraction=0.25).reused
True
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = [
    "MANIFEST_FORMAT",
    "SOURCE_KINDS",
    "CorpusSource",
    "TokenCorpus",
    "corpus_folder",
    "load_tokenizer",
    "prepare_corpus",
    "split_point",
    "tokenizer_hash",
]

#: The kinds of source :class:`CorpusSource` reads.
SOURCE_KINDS: tuple[str, ...] = ("folder", "jsonl", "hf")
#: ``manifest.json``'s ``format`` field; ``version`` 1 is described in the module docstring.
MANIFEST_FORMAT = "literate_tx.tokens"
_VERSION = 1
_BLOCK_CHARS = 1 << 20


# ============================================================================ sources
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cut(buf: str) -> int:
    """The last index ``i > 0`` with ``buf[i - 1]`` a non-space and ``buf[i]`` a space, or 0."""
    for i in range(len(buf) - 1, 0, -1):
        if buf[i].isspace() and not buf[i - 1].isspace():
            return i
    return 0


def split_point(text: str, start: int, kind: str) -> int:
    r"""Where to cut ``text`` at or after ``start`` so that encoding the two sides apart gives
    the ids of the whole: ``start`` itself for characters, else the first place where a
    non-space is followed by a space (or the end).

    Examples
    --------
    >>> split_point("one two", 1, "word"), split_point("one two", 1, "char")
    (3, 1)
    """
    if kind == "char" or start <= 0:
        return max(start, 0)
    for i in range(start, len(text)):
        if text[i].isspace() and not text[i - 1].isspace():
            return i
    return len(text)


def _blocks(pieces: Iterable[str], block_chars: int) -> Iterator[str]:
    """Re-cut a document given as pieces into blocks of about ``block_chars`` characters,
    each ending just before a space that follows a non-space (see the module docstring)."""
    buf = ""
    for piece in pieces:
        buf += piece
        while len(buf) >= block_chars:
            i = _cut(buf[: block_chars + 1]) or _cut(buf)
            if not i:  # no safe cut yet: wait for more text (a space-free document stays whole)
                break
            yield buf[:i]
            buf = buf[i:]
    if buf:
        yield buf


@dataclass(frozen=True)
class CorpusSource:
    r"""Where a corpus's documents come from.

    Parameters
    ----------
    kind : {"folder", "jsonl", "hf"}
        See the module docstring.
    path : str
        The folder, the ``.jsonl`` file, or the dataset's ``save_to_disk`` folder or cached name.
    text_field : str
        The field holding the text (``"jsonl"`` and ``"hf"``).

    Raises
    ------
    ValueError
        Naming the field, the value received and what is allowed.

    Examples
    --------
    >>> CorpusSource("jsonl", "data.jsonl").text_field
    'text'
    >>> CorpusSource("csv", "data.csv")
    Traceback (most recent call last):
    ...
    ValueError: kind='csv' is not allowed; allowed: 'folder', 'jsonl', 'hf'
    """

    kind: str
    path: str
    text_field: str = "text"

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"kind={self.kind!r} is not allowed; allowed: "
                             + ", ".join(map(repr, SOURCE_KINDS)))
        if not isinstance(self.path, (str, os.PathLike)) or not str(self.path):
            raise ValueError(f"path={self.path!r} is not allowed; give the corpus's path")
        object.__setattr__(self, "path", str(self.path))
        if not isinstance(self.text_field, str) or not self.text_field:
            raise ValueError(f"text_field={self.text_field!r} is not allowed; give a field name")

    # ------------------------------------------------------------------ reading
    def _files(self) -> list[Path]:
        root = Path(self.path)
        if self.kind == "folder":
            if not root.is_dir():
                raise FileNotFoundError(f"no folder of .txt files at {root.resolve()}")
            files = sorted(p for p in root.rglob("*.txt") if p.is_file())
            if not files:
                raise ValueError(f"{root} holds no .txt file; a 'folder' corpus reads *.txt")
            return files
        if not root.is_file():
            raise FileNotFoundError(f"no JSON Lines file at {root.resolve()}")
        return [root]

    def _hf(self):
        try:
            import datasets
        except ImportError as exc:
            raise ImportError(
                "a Hugging Face dataset needs the `datasets` package, which is not installed; "
                "install it with `pip install 'literate-tx[data]'`"
            ) from exc
        path = Path(self.path)
        if path.is_dir():
            ds = datasets.load_from_disk(str(path))
        else:
            try:
                ds = datasets.load_dataset(self.path)
            except Exception as exc:  # datasets raises its own kinds
                raise FileNotFoundError(
                    f"no dataset saved at {path.resolve()} and none named {self.path!r} in the "
                    f"local datasets cache ({type(exc).__name__}: {exc})"
                ) from None
        if isinstance(ds, datasets.DatasetDict):
            if "train" not in ds and len(ds) != 1:
                raise ValueError(f"{self.path} has the splits {sorted(ds)} and none is "
                                 "'train'; save the split to use with Dataset.save_to_disk")
            ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
        if self.text_field not in ds.column_names:
            raise ValueError(f"text_field={self.text_field!r} is not a column of {self.path}; "
                             f"its columns: {', '.join(ds.column_names)}")
        return ds

    def documents(self) -> Iterator[Iterator[str]]:
        r"""One iterator of text pieces per document, read lazily.

        Examples
        --------
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "d.jsonl")
        >>> _ = open(p, "w").write('{"text": "one"}\n\n{"text": "two"}\n')
        >>> ["".join(d) for d in CorpusSource("jsonl", p).documents()]
        ['one', 'two']
        """
        if self.kind == "folder":
            for path in self._files():
                yield _read_file(path)
        elif self.kind == "jsonl":
            path = self._files()[0]
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    yield iter([self._field(path, number, line)])
        else:
            ds = self._hf()
            for batch in ds.iter(batch_size=256):
                for text in batch[self.text_field]:
                    if not isinstance(text, str):
                        raise ValueError(f"{self.path}: column {self.text_field!r} holds "
                                         f"{type(text).__name__}, not text")
                    yield iter([text])

    def _field(self, path: Path, number: int, line: str) -> str:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number} is not valid JSON ({exc})") from None
        if not isinstance(record, dict) or self.text_field not in record:
            keys = ", ".join(record) if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"{path}:{number} has no field text_field={self.text_field!r} "
                             f"(found: {keys}); pass --text-field NAME")
        text = record[self.text_field]
        if not isinstance(text, str):
            raise ValueError(f"{path}:{number}: field {self.text_field!r} holds "
                             f"{type(text).__name__}, not text")
        return text

    def checksums(self) -> list[dict[str, Any]]:
        r"""SHA-256 and size of every file the source reads (the dataset's Arrow files for
        ``"hf"``), as the manifest stores them.

        Examples
        --------
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = open(os.path.join(d, "a.txt"), "w").write("")
        >>> CorpusSource("folder", d).checksums()[0]["sha256"][:12]
        'e3b0c44298fc'
        """
        root = Path(self.path)
        if self.kind == "hf":
            files = sorted({Path(f["filename"]) for f in self._hf().cache_files})
            base = None
        else:
            files = self._files()
            base = root if self.kind == "folder" else root.parent
        out = []
        for f in files:
            name = str(f.relative_to(base)) if base is not None else str(f)
            out.append({"file": name, "bytes": f.stat().st_size, "sha256": _sha256_file(f)})
        return out

    def to_dict(self) -> dict[str, str]:
        r"""The source as JSON-ready data (the path made absolute when it exists).

        Examples
        --------
        >>> sorted(CorpusSource("jsonl", "x.jsonl").to_dict())
        ['kind', 'path', 'text_field']
        """
        path = Path(self.path)
        return {"kind": self.kind, "path": str(path.resolve()) if path.exists() else self.path,
                "text_field": self.text_field}


def _read_file(path: Path) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8") as f:
            while block := f.read(_BLOCK_CHARS):
                yield block
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not valid UTF-8 text ({exc})") from None


# ============================================================================ the token file
def tokenizer_hash(tokenizer) -> str:
    r"""SHA-256 of a tokenizer's canonical JSON (sorted keys): equal hashes, equal tokenizers.

    Examples
    --------
    >>> from literate_tx.tokenizers import CharTokenizer
    >>> tokenizer_hash(CharTokenizer.train("ab")) == tokenizer_hash(CharTokenizer.train("ba"))
    True
    """
    text = json.dumps(tokenizer.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_tokenizer(path: str | os.PathLike, kind: str, vocab_size: int | None = None):
    r"""Load a tokenizer file and check it is of ``kind`` (and has ``vocab_size`` ids if given).

    Examples
    --------
    >>> import os, tempfile
    >>> from literate_tx.tokenizers import CharTokenizer
    >>> p = os.path.join(tempfile.mkdtemp(), "tok.json")
    >>> CharTokenizer.train("abc").save(p)
    >>> load_tokenizer(p, "char").vocab_size
    7
    >>> load_tokenizer(p, "bpe")
    Traceback (most recent call last):
    ...
    ValueError: tokenizer_file='...tok.json' holds a 'char' tokenizer but tokenizer='bpe'; ...
    """
    from ..tokenizers import Tokenizer

    tok = Tokenizer.load(path)
    if tok.kind != kind:
        raise ValueError(f"tokenizer_file={str(path)!r} holds a {tok.kind!r} tokenizer but "
                         f"tokenizer={kind!r}; pass --tokenizer {tok.kind}")
    if vocab_size is not None and tok.vocab_size != vocab_size:
        raise ValueError(f"vocab_size={vocab_size} but tokenizer_file={str(path)!r} has "
                         f"{tok.vocab_size} ids; leave vocab_size unset")
    return tok


def _dtype(vocab_size: int) -> np.dtype:
    # the largest id is V - 1, so 2**16 ids fit in uint16
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


class TokenCorpus:
    r"""A prepared token file: the ids as a read-only :class:`numpy.memmap`, split in two.

    Use :meth:`open` (or :func:`prepare_corpus`, which returns one).

    Attributes
    ----------
    folder : pathlib.Path
    manifest : dict
    tokenizer : literate_tx.tokenizers.Tokenizer
    tokens : (N,) numpy.memmap of uint16 or uint32
    train, val : (N_train,), (N - N_train,) views of ``tokens``
    reused : bool
        True when :func:`prepare_corpus` found the folder already prepared.

    Examples
    --------
    >>> TokenCorpus.open("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no prepared corpus at /nonexistent (manifest.json missing); ...
    """

    def __init__(self, folder: Path, manifest: dict[str, Any], tokenizer, reused: bool):
        self.folder, self.manifest, self.tokenizer = folder, manifest, tokenizer
        self.reused = reused
        dtype = np.dtype(manifest["dtype"])
        n = int(manifest["n_tokens"])
        path = folder / "tokens.bin"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing but {folder / 'manifest.json'} lists "
                                    f"{n} tokens; prepare the corpus again")
        if path.stat().st_size != n * dtype.itemsize:
            raise ValueError(f"{path} has {path.stat().st_size} bytes but the manifest says "
                             f"{n} tokens of {dtype.name}; prepare the corpus again")
        # np.memmap cannot map an empty file; an empty corpus is an empty array
        self.tokens = (np.memmap(path, dtype=dtype, mode="r", shape=(n,)) if n
                       else np.zeros(0, dtype=dtype))  # (N,)
        k = int(manifest["n_train_tokens"])
        self.train, self.val = self.tokens[:k], self.tokens[k:]  # (N_train,), (N - N_train,)

    @classmethod
    def open(cls, folder: str | os.PathLike) -> TokenCorpus:
        r"""Open a folder written by :func:`prepare_corpus` (``literate-tx prepare``).

        Checks the manifest's format, the tokenizer file against the manifest's hash and the
        token file's size.

        Raises
        ------
        FileNotFoundError
            Without ``manifest.json``.
        ValueError
            When a file does not match the manifest.
        """
        folder = Path(folder)
        path = folder / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"no prepared corpus at {folder} (manifest.json missing); "
                                    "write one with `literate-tx prepare`")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{path} is not a {MANIFEST_FORMAT} manifest")
        if manifest.get("version") != _VERSION:
            raise ValueError(f"{path} has version {manifest.get('version')!r}; this literate_tx "
                             f"reads version {_VERSION}: prepare the corpus again")
        from ..tokenizers import Tokenizer

        tokenizer = Tokenizer.load(folder / "tokenizer.json")
        if tokenizer_hash(tokenizer) != manifest["tokenizer"]["sha256"]:
            raise ValueError(f"{folder / 'tokenizer.json'} is not the tokenizer the tokens were "
                             "written with (its hash differs from the manifest's); prepare the "
                             "corpus again")
        return cls(folder, manifest, tokenizer, reused=True)

    def __repr__(self) -> str:
        return (f"TokenCorpus({str(self.folder)!r}, {len(self.tokens):,} tokens, "
                f"{len(self.train):,} for training, V={self.tokenizer.vocab_size})")


def _request(tokenizer: str, vocab_size: int | None, tokenizer_file: str | None,
             val_fraction: float) -> dict[str, Any]:
    return {"tokenizer": tokenizer, "vocab_size": vocab_size,
            "tokenizer_file_sha256": (_sha256_file(Path(tokenizer_file))
                                      if tokenizer_file else None),
            "val_fraction": val_fraction}


def corpus_folder(source: CorpusSource, tokenizer: str = "char", vocab_size: int | None = None,
                  tokenizer_file: str | None = None, val_fraction: float = 0.1) -> Path:
    r"""The cache folder of a source and a tokenizer request:
    ``cache_dir()/tokens/<name>-<kind>-<hash>`` (:func:`literate_tx.data.text.cache_dir`).

    Examples
    --------
    >>> corpus_folder(CorpusSource("jsonl", "/data/books.jsonl")).name[:17]
    'books.jsonl-char-'
    """
    from .text import cache_dir

    key = json.dumps({"source": source.to_dict(),
                      "request": _request(tokenizer, vocab_size, None, val_fraction),
                      "tokenizer_file": str(Path(tokenizer_file).resolve())
                      if tokenizer_file else None}, sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return cache_dir() / "tokens" / f"{Path(source.path).name}-{tokenizer}-{digest}"


class _Bar:
    """A ``\\r`` progress bar on a terminal; one line at the end otherwise."""

    def __init__(self, stream: TextIO | None, total: int, label: str):
        self.stream, self.total, self.label = stream, max(total, 1), label
        self.tty = stream is not None and hasattr(stream, "isatty") and stream.isatty()
        self.shown = -1

    def update(self, done: int) -> None:
        if not self.tty:
            return
        percent = min(100, 100 * done // self.total)
        if percent != self.shown:
            self.shown = percent
            bar = "#" * (percent // 4) + "." * (25 - percent // 4)
            self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% "
                              f"{done:,}/{self.total:,} chars")
            self.stream.flush()

    def close(self, message: str) -> None:
        if self.stream is None:
            return
        self.stream.write(("\r" if self.tty else "") + message + " " * 20 + "\n")
        self.stream.flush()


def prepare_corpus(
    source: CorpusSource,
    folder: str | os.PathLike | None = None,
    *,
    tokenizer: str = "char",
    vocab_size: int | None = None,
    tokenizer_file: str | None = None,
    given_tokenizer=None,
    val_fraction: float = 0.1,
    block_chars: int = _BLOCK_CHARS,
    force: bool = False,
    progress: TextIO | None = None,
) -> TokenCorpus:
    r"""Tokenise ``source`` once into ``folder`` (see the module docstring), or reuse it.

    Parameters
    ----------
    source : CorpusSource
    folder : str or path-like, optional
        Default: :func:`corpus_folder`, a folder of the cache.
    tokenizer : {"char", "word", "bpe", "gpt2"}
        Trained on the training text (all of it for ``"char"``); ``"gpt2"``
        (:class:`~literate_tx.tokenizers.GPT2Tokenizer`) is always loaded from
        ``tokenizer_file``.
    vocab_size : int, optional
        As in :func:`literate_tx.tokenizers.train_tokenizer` (``"bpe"``: required).
    tokenizer_file : str, optional
        Load the tokenizer from this JSON file instead of training one (its ``kind`` must be
        ``tokenizer``).
    given_tokenizer : Tokenizer, optional
        Use this tokenizer (e.g. a checkpoint's, on resume); an existing folder is reused only
        if it was written with an equal one.
    val_fraction : float
        Share of the characters, at the end, kept for validation, in ``[0, 1)``.
    block_chars : int
        Characters per block read (the memory used; the result does not depend on it).
    force : bool
        Prepare again even when the folder matches.
    progress : text stream, optional
        Where to draw the progress bar and the result line (None: silent).

    Returns
    -------
    TokenCorpus

    Raises
    ------
    ValueError, FileNotFoundError
        For a bad source, field or tokenizer, naming what was received.
    """
    from ..checkpoint import atomic_write, shared_file_mode
    from ..tokenizers import TOKENIZER_KINDS, train_tokenizer

    if not isinstance(source, CorpusSource):
        raise TypeError(f"source must be a CorpusSource, got {type(source).__name__}")
    kinds = (*TOKENIZER_KINDS, "gpt2")
    if tokenizer not in kinds:
        raise ValueError(f"tokenizer={tokenizer!r} is not allowed; allowed: "
                         + ", ".join(map(repr, kinds)))
    if tokenizer == "gpt2" and tokenizer_file is None and given_tokenizer is None:
        raise ValueError("tokenizer='gpt2' needs tokenizer_file (GPT-2's tokenizer is loaded, "
                         "never trained)")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) \
            or not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r} is not allowed; give a number in [0, 1)")
    if isinstance(block_chars, bool) or not isinstance(block_chars, int) or block_chars < 1:
        raise ValueError(f"block_chars={block_chars!r} is not allowed; give an int >= 1")
    folder = Path(folder) if folder is not None else corpus_folder(
        source, tokenizer, vocab_size, tokenizer_file, val_fraction)
    request = _request(tokenizer, vocab_size, tokenizer_file, val_fraction)
    label = f"tokenising {source.path}"

    checksums = source.checksums()
    if not force and (folder / "manifest.json").is_file():
        try:
            old = TokenCorpus.open(folder)
        except (ValueError, FileNotFoundError):
            old = None
        if (old is not None and old.manifest["request"] == request
                and old.manifest["source"]["checksums"] == checksums
                and (given_tokenizer is None
                     or tokenizer_hash(given_tokenizer) == old.manifest["tokenizer"]["sha256"])):
            if progress is not None:
                progress.write(f"reusing {folder} ({len(old.tokens):,} tokens; the manifest "
                               "matches the source and the tokenizer)\n")
            return old

    # pass 1: count the characters; the last round(N_c f) of them are the validation text
    n_chars = n_docs = 0
    for doc in source.documents():
        n_docs += 1
        for piece in doc:
            n_chars += len(piece)
    n_train_chars = n_chars - int(round(n_chars * val_fraction))

    # pass 2: the tokenizer
    if given_tokenizer is not None:
        tok = given_tokenizer
    elif tokenizer_file is not None:
        tok = load_tokenizer(tokenizer_file, tokenizer, vocab_size)
    else:
        found: dict[str, int] = {}
        blocks = (b for b, is_train in _split_blocks(source, n_train_chars, tokenizer,
                                                      block_chars, found)
                  if b is not None and (is_train or tokenizer == "char"))
        tok = train_tokenizer(tokenizer, blocks, vocab_size=vocab_size)
    if given_tokenizer is not None and tok.kind != tokenizer:
        raise ValueError(f"the given tokenizer is a {tok.kind!r} one but tokenizer="
                         f"{tokenizer!r}")

    # pass 3: encode block by block into tokens.bin
    dtype = _dtype(tok.vocab_size)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)  # the folder is incomplete from here
    bar = _Bar(progress, n_chars, label)
    n_tokens = 0
    n_train_tokens = None
    done = 0
    eos = tok.eos_id
    fd, tmp = tempfile.mkstemp(prefix=".tokens.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            def write(ids: list[int]) -> None:
                nonlocal n_tokens
                if ids:
                    out.write(np.asarray(ids, dtype=dtype).tobytes())
                    n_tokens += len(ids)

            found = {}
            for block, is_train in _split_blocks(source, n_train_chars, tok.kind, block_chars,
                                                 found):
                if not is_train and n_train_tokens is None:
                    n_train_tokens = n_tokens  # the ids before the validation text's first
                if block is None:
                    if eos is not None:
                        write([eos])
                    continue
                write(tok.encode(block))
                done += len(block)
                bar.update(done)
            if n_train_tokens is None:  # no validation text
                n_train_tokens = n_tokens
            n_train_chars = found["n_train_chars"]
        os.chmod(tmp, shared_file_mode())  # mkstemp makes it private; a data file is shared
        os.replace(tmp, folder / "tokens.bin")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    tok.save(folder / "tokenizer.json")
    manifest = {
        "format": MANIFEST_FORMAT, "version": _VERSION,
        "request": request,
        "source": {**source.to_dict(), "checksums": checksums},
        "tokenizer": {"kind": tok.kind, "vocab_size": tok.vocab_size,
                      "sha256": tokenizer_hash(tok)},
        "dtype": dtype.name, "byteorder": "little",
        "n_documents": n_docs, "n_chars": n_chars, "n_train_chars": n_train_chars,
        "n_tokens": n_tokens, "n_train_tokens": n_train_tokens,
        "eos_after_each_document": eos is not None,
    }
    text = (json.dumps(manifest, indent=1) + "\n").encode("utf-8")
    atomic_write(folder / "manifest.json", lambda f: f.write(text))
    bar.close(f"{label}: {n_tokens:,} tokens ({n_train_tokens:,} for training) of "
              f"{n_chars:,} characters in {n_docs:,} documents, {dtype.name}, V="
              f"{tok.vocab_size} -> {folder}")
    return TokenCorpus(folder, manifest, tok, reused=False)


def _split_blocks(source: CorpusSource, n_train_chars: int, kind: str, block_chars: int,
                  found: dict[str, int]) -> Iterator[tuple[str | None, bool]]:
    """``(block, is_training_text)`` for every block, and ``(None, ...)`` after each document;
    the block holding character ``n_train_chars`` is cut in two at :func:`split_point`, whose
    position is put in ``found["n_train_chars"]``."""
    done = 0
    train = n_train_chars > 0
    if not train:
        found["n_train_chars"] = 0
    for doc in source.documents():
        for block in _blocks(doc, block_chars):
            if train and done + len(block) >= n_train_chars:
                head = split_point(block, n_train_chars - done, kind)
                found["n_train_chars"] = done + head
                train = False
                yield block[:head], True
                yield block[head:], False
            else:
                yield block, train
            done += len(block)
        yield None, train
    found.setdefault("n_train_chars", done)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `literate-tx prepare`")

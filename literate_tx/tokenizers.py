r"""Tokenizers: text to integer ids and back.

A language model never sees text. It sees a sequence of integers
:math:`x_1, \dots, x_T` with :math:`0 \le x_t < V`, and it learns the
distribution of the next integer. A *tokenizer* is the pair of maps

.. math::

    \mathrm{encode}: \text{str} \to \{0, \dots, V-1\}^*, \qquad
    \mathrm{decode}: \{0, \dots, V-1\}^* \to \text{str},           \tag{1}

and the one property every tokenizer here promises is the round trip

.. math::

    \mathrm{decode}(\mathrm{encode}(s)) = s                           \tag{2}

for every text :math:`s` the tokenizer *covers*. Three tokenizers are built,
from the simplest to the one GPT-2 uses:

:class:`CharTokenizer`
    one id per character seen in the training text. Tiny vocabulary (about 65
    for Shakespeare), long sequences. Characters never seen map to ``<unk>``,
    so eq. (2) holds for texts written in the training alphabet.
:class:`WordTokenizer`
    one id per word, per punctuation mark and per run of whitespace. Short
    sequences, huge vocabulary, many ``<unk>`` on new text.
:class:`BPETokenizer`
    byte-level byte-pair encoding (Sennrich et al. 2016, GPT-2 2019), the
    compromise between the two, and eq. (2) holds for **every** text.

A fourth, :class:`GPT2Tokenizer`, is the same algorithm read from GPT-2's own
files, ``vocab.json`` and ``merges.txt``, with GPT-2's split pattern exactly
(:func:`gpt2_split_regex`), so that a published GPT-2 model gets the ids it
was trained on (see :mod:`literate_tx.hf`). :mod:`literate_tx.tokenizer_json` reads the
same tokenizer, and Llama's SentencePiece BPE, from Hugging Face's ``tokenizer.json``.

Byte-pair encoding
------------------
Write the text as UTF-8 bytes, so the starting vocabulary is the 256 possible
byte values and no text is ever out of vocabulary. Then repeat:

1. count every pair of adjacent tokens :math:`(a, b)` in the training text;
2. take the most frequent pair (ties: the smallest ids :math:`(a, b)`);
3. give it a new id :math:`n = 256 + k` (the :math:`k`-th merge) and replace
   every occurrence of :math:`a\,b` by :math:`n`, left to right.

Each merge is recorded with the count it had when it was chosen, so
``merges[0]`` is the most common pair of bytes in the text (``"e "`` or
``"th"`` in English) and later merges build whole words out of earlier ones.
Training stops when the vocabulary reaches the requested ``vocab_size``
exactly, or **earlier** when no adjacent pair is left to merge (every
pre-token has become a single token); ``vocab_size`` is therefore an upper
bound that a large enough text always meets.

Encoding a new text replays the merges in the order they were learned: among
the adjacent pairs present, the one with the lowest merge rank is merged
first, everywhere, until no learned pair remains. :meth:`BPETokenizer.explain`
prints this process one merge at a time.

As in GPT-2, the text is first cut into *pre-tokens* (a word with its leading
space, a number, a run of punctuation, a run of whitespace) by a regular
expression, and merges never cross a pre-token boundary: ``"dog."`` and
``"dog!"`` share the token for ``" dog"`` instead of learning ``"g."`` and
``"g!"``.

Special tokens
--------------
Every tokenizer reserves ids for special tokens, by default ``<pad>``
(padding), ``<unk>`` (unknown), ``<bos>`` and ``<eos>`` (beginning and end of
sequence). They are never produced from text: ``encode("<pad>")`` encodes the
five characters. They are added on request (``add_bos=True``) and
:meth:`Tokenizer.decode` writes them back as their name, or drops them with
``skip_special=True``. In :class:`CharTokenizer` and :class:`WordTokenizer`
the special tokens take the first ids (``<pad>`` is 0); in
:class:`BPETokenizer` the ids 0..255 are the bytes themselves, the merges
follow, and the special tokens come last (as GPT-2's ``<|endoftext|>`` is its
last id, 50256).

Files
-----
:meth:`Tokenizer.save` writes JSON (never pickle) atomically: a temporary file
in the same folder is renamed over the target with :func:`os.replace`, so a
crash never leaves half a file. :meth:`Tokenizer.load` checks every field and
raises :class:`ValueError` naming the file and what is wrong.

Examples
--------
>>> tok = CharTokenizer.train("hello world")
>>> tok.encode("hello")
[7, 6, 8, 8, 9]
>>> tok.decode(tok.encode("hello"))
'hello'
"""

from __future__ import annotations

import json
import operator
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from .checkpoint import atomic_write

__all__ = [
    "DEFAULT_SPECIAL_TOKENS",
    "GPT2_PATTERN",
    "GPT2_SPLIT_PATTERN",
    "BPETokenizer",
    "CharTokenizer",
    "GPT2Tokenizer",
    "MergesTokenizer",
    "TOKENIZER_KINDS",
    "Merge",
    "Tokenizer",
    "WordTokenizer",
    "bytes_to_unicode",
    "gpt2_split_regex",
    "replay_merges",
    "train_tokenizer",
]

#: Special tokens every tokenizer reserves unless told otherwise.
DEFAULT_SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<unk>", "<bos>", "<eos>")

#: GPT-2's pre-tokenization pattern written for Python's :mod:`re` (which has
#: no ``\p{L}``): English contractions, a word with an optional leading space,
#: a number with an optional leading space, a run of other symbols with an
#: optional leading space, whitespace not followed by a word, other whitespace.
#: ``[^\W\d_]`` is "a letter", ``(?:[^\s\w]|_)`` is "neither space, letter nor
#: digit". Together the alternatives cover every character.
GPT2_SPLIT_PATTERN = r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"

_FORMAT = "literate_tx.tokenizer"
_VERSION = 1
_N_BYTES = 256


def _check_special_tokens(special_tokens: Iterable[str]) -> tuple[str, ...]:
    r"""Validate a list of special tokens: distinct, non-empty strings.

    Examples
    --------
    >>> _check_special_tokens(["<pad>", "<eos>"])
    ('<pad>', '<eos>')
    """
    if isinstance(special_tokens, str):
        raise TypeError(
            f"special_tokens={special_tokens!r} is a single string; pass a list of "
            "strings such as ['<pad>', '<unk>']"
        )
    tokens = tuple(special_tokens)
    for token in tokens:
        if not isinstance(token, str) or not token:
            raise ValueError(
                f"special_tokens contains {token!r}; every special token must be a non-empty string"
            )
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"special_tokens={list(tokens)!r} has duplicates; list each once")
    return tokens


class Tokenizer:
    r"""Base class: special tokens, id checks, decoding and JSON files.

    Subclasses define how ordinary text becomes ids (``_encode_text``), how a
    run of ordinary ids becomes text (``_decode_run``), and their JSON fields.

    Parameters
    ----------
    special_tokens : sequence of str
        Names of the special tokens, each distinct.

    Examples
    --------
    >>> tok = CharTokenizer.train("abc", special_tokens=["<pad>", "<eos>"])
    >>> isinstance(tok, Tokenizer), tok.vocab_size
    (True, 5)
    """

    #: Name stored in the JSON file's ``"type"`` field.
    kind: ClassVar[str] = ""
    #: Whether the model's own pipeline starts every text with the beginning-of-text token
    #: (Llama's does: :class:`~literate_tx.tokenizer_json.SentencePieceBPETokenizer`);
    #: ``literate-tx generate`` then puts it before the prompt. ``encode`` adds it only when
    #: asked (``add_bos=True``).
    bos_by_default: bool = False
    _registry: ClassVar[dict[str, type[Tokenizer]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            Tokenizer._registry[cls.kind] = cls

    def __init__(self, special_tokens: Sequence[str]) -> None:
        self.special_tokens: tuple[str, ...] = _check_special_tokens(special_tokens)
        self._special_ids: dict[str, int] = {}
        self._special_names: dict[int, str] = {}

    def _set_special_ids(self, first_id: int) -> None:
        """Give the special tokens consecutive ids starting at ``first_id``."""
        self._special_ids = {t: first_id + i for i, t in enumerate(self.special_tokens)}
        self._special_names = {i: t for t, i in self._special_ids.items()}

    # ------------------------------------------------------------------ sizes
    @property
    def vocab_size(self) -> int:
        r"""Number of ids, :math:`V`; valid ids are ``0 .. V - 1``.

        Examples
        --------
        >>> CharTokenizer.train("aab", special_tokens=[]).vocab_size
        2
        """
        raise NotImplementedError

    # --------------------------------------------------------- special tokens
    def special_id(self, token: str) -> int:
        r"""Id of the special token ``token``.

        Raises
        ------
        ValueError
            If ``token`` is not one of this tokenizer's special tokens.

        Examples
        --------
        >>> CharTokenizer.train("ab").special_id("<eos>")
        3
        """
        if token not in self._special_ids:
            raise ValueError(
                f"token={token!r} is not a special token of this tokenizer; "
                f"its special tokens are {list(self.special_tokens)!r}"
            )
        return self._special_ids[token]

    def _optional_id(self, token: str) -> int | None:
        return self._special_ids.get(token)

    @property
    def pad_id(self) -> int | None:
        r"""Id of ``<pad>``, or None when the tokenizer has none.

        Examples
        --------
        >>> CharTokenizer.train("ab").pad_id
        0
        """
        return self._optional_id("<pad>")

    @property
    def unk_id(self) -> int | None:
        r"""Id of ``<unk>``, or None when the tokenizer has none.

        Examples
        --------
        >>> CharTokenizer.train("ab").unk_id
        1
        """
        return self._optional_id("<unk>")

    @property
    def bos_id(self) -> int | None:
        r"""Id of ``<bos>``, or None when the tokenizer has none.

        Examples
        --------
        >>> CharTokenizer.train("ab").bos_id
        2
        """
        return self._optional_id("<bos>")

    @property
    def eos_id(self) -> int | None:
        r"""Id of ``<eos>``, or None when the tokenizer has none.

        Examples
        --------
        >>> print(CharTokenizer.train("ab", special_tokens=["<pad>"]).eos_id)
        None
        """
        return self._optional_id("<eos>")

    # ------------------------------------------------------- encode / decode
    def _encode_text(self, text: str) -> list[int]:
        raise NotImplementedError

    def _decode_run(self, ids: list[int]) -> str:
        raise NotImplementedError

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        r"""Encode ``text`` to a list of ids, eq. (1).

        Parameters
        ----------
        text : str
            Ordinary text; special-token names inside it are plain text.
        add_bos, add_eos : bool
            Put the beginning-of-text token first / the end-of-text token last:
            :attr:`bos_id` and :attr:`eos_id`, which are ``<bos>`` and ``<eos>`` here, GPT-2's
            ``<|endoftext|>`` and Llama's ``<s>`` and ``</s>`` (the tokenizer must have them).

        Returns
        -------
        list of int

        Examples
        --------
        >>> tok = CharTokenizer.train("ab")
        >>> tok.encode("ba", add_bos=True, add_eos=True)
        [2, 5, 4, 3]
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids = self._encode_text(text)
        for flag, value, name in ((add_bos, self.bos_id, "add_bos"),
                                  (add_eos, self.eos_id, "add_eos")):
            if flag and value is None:
                raise ValueError(f"{name}=True, but this tokenizer has no "
                                 f"{'beginning' if name == 'add_bos' else 'end'}-of-text token; "
                                 f"its special tokens are {list(self.special_tokens)!r}")
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        r"""Decode ids back to text, eq. (1).

        Special tokens are written as their name (``"<eos>"``), or dropped when
        ``skip_special`` is true.

        Parameters
        ----------
        ids : iterable of int
            Ids in ``0 .. vocab_size - 1`` (NumPy integers are fine).
        skip_special : bool
            Leave special tokens out of the text.

        Returns
        -------
        str

        Examples
        --------
        >>> tok = CharTokenizer.train("ab")
        >>> tok.decode([2, 4, 5, 3])
        '<bos>ab<eos>'
        >>> tok.decode([2, 4, 5, 3], skip_special=True)
        'ab'
        """
        pieces: list[str] = []
        run: list[int] = []
        vocab_size = self.vocab_size
        for position, raw in enumerate(ids):
            try:
                i = operator.index(raw)
            except TypeError:
                raise TypeError(
                    f"ids[{position}]={raw!r} is a {type(raw).__name__}; ids must be integers"
                ) from None
            if not 0 <= i < vocab_size:
                raise ValueError(
                    f"ids[{position}]={i} is out of range; ids must lie in "
                    f"0..{vocab_size - 1} (vocab_size={vocab_size})"
                )
            if i in self._special_names:
                if run:
                    pieces.append(self._decode_run(run))
                    run = []
                if not skip_special:
                    pieces.append(self._special_names[i])
            else:
                run.append(i)
        if run:
            pieces.append(self._decode_run(run))
        return "".join(pieces)

    # ------------------------------------------------------------ JSON files
    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_fields(cls, data: dict[str, Any], where: str) -> Tokenizer:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        r"""Everything needed to rebuild the tokenizer, as JSON-ready data.

        Examples
        --------
        >>> CharTokenizer.train("ba", special_tokens=["<unk>"]).to_dict()
        {'format': 'literate_tx.tokenizer', 'version': 1, 'type': 'char',
         'special_tokens': ['<unk>'], 'vocab': ['a', 'b']}
        """
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "type": self.kind,
            "special_tokens": list(self.special_tokens),
            **self._fields(),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "data") -> Tokenizer:
        r"""Rebuild a tokenizer from :meth:`to_dict` output, checking every field.

        Called on :class:`Tokenizer` it builds whichever kind ``data["type"]``
        names; called on a subclass it insists on that kind.

        Parameters
        ----------
        data : dict
            As written by :meth:`to_dict`.
        source : str
            Where the data came from, for error messages.

        Raises
        ------
        ValueError
            Naming the first missing or malformed field.

        Examples
        --------
        >>> tok = Tokenizer.from_dict(WordTokenizer.train("a b").to_dict())
        >>> type(tok).__name__, tok.decode(tok.encode("b a"))
        ('WordTokenizer', 'b a')
        """
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise ValueError(
                f"{source}: field 'format' is {data.get('format')!r}; a tokenizer file "
                f"has format {_FORMAT!r}"
            )
        if data.get("version") != _VERSION:
            raise ValueError(
                f"{source}: field 'version' is {data.get('version')!r}; this version of "
                f"literate_tx reads version {_VERSION}"
            )
        kind = data.get("type")
        from . import tokenizer_json  # noqa: F401  registers the SentencePiece kind as well
        if kind not in cls._registry:
            raise ValueError(
                f"{source}: field 'type' is {kind!r}; allowed: {sorted(cls._registry)!r}"
            )
        target = cls._registry[kind]
        if cls is not Tokenizer and target is not cls:
            raise ValueError(
                f"{source}: holds a {kind!r} tokenizer, not a {cls.kind!r} one; "
                f"load it with {target.__name__}.load or Tokenizer.load"
            )
        special = data.get("special_tokens")
        if not isinstance(special, list) or not all(isinstance(t, str) for t in special):
            raise ValueError(f"{source}: field 'special_tokens' must be a list of strings")
        try:
            _check_special_tokens(special)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None
        return target._from_fields(data, source)

    def save(self, path: str | os.PathLike[str]) -> None:
        r"""Write the tokenizer to ``path`` as JSON, atomically.

        The JSON goes to a temporary file beside ``path`` which then replaces
        ``path`` in one step (:func:`os.replace`): readers see the old file or
        the new one, never half of one.

        Examples
        --------
        >>> import tempfile, os
        >>> tok = CharTokenizer.train("hi")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     tok.save(os.path.join(d, "tok.json"))
        ...     Tokenizer.load(os.path.join(d, "tok.json")).encode("ih")
        [5, 4]
        """
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        # the package's one atomic writer: a temporary file beside path, then os.replace
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Tokenizer:
        r"""Read a tokenizer written by :meth:`save`.

        ``Tokenizer.load`` returns whichever kind the file holds;
        ``BPETokenizer.load`` (etc.) also checks the kind.

        Raises
        ------
        ValueError
            If the file is not JSON or a field is missing or malformed; the
            message names the file and the field.

        Examples
        --------
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = os.path.join(d, "bad.json")
        ...     with open(p, "w") as f:
        ...         _ = f.write('{"format": "literate_tx.tokenizer", "version": 1}')
        ...     Tokenizer.load(p)
        Traceback (most recent call last):
        ...
        ValueError: ...bad.json: field 'type' is None; allowed: ['bpe', 'byte-level-bpe', ...]
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text ({err})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data, source=str(path))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _string_list(data: dict[str, Any], key: str, source: str) -> list[str]:
    """Fetch ``data[key]`` and check it is a list of distinct non-empty strings."""
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{source}: field {key!r} must be a list of non-empty strings")
    if len(set(value)) != len(value):
        raise ValueError(f"{source}: field {key!r} has duplicate entries")
    return value


class _TableTokenizer(Tokenizer):
    r"""A tokenizer with an explicit table of pieces: characters or words.

    Ids: special tokens first (``0 .. k-1``), then the pieces in table order.
    """

    def __init__(self, vocab: Sequence[str], special_tokens: Sequence[str]) -> None:
        super().__init__(special_tokens)
        self.vocab: tuple[str, ...] = tuple(vocab)
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("vocab has duplicate entries; list each piece once")
        self._set_special_ids(0)
        offset = len(self.special_tokens)
        self._piece_to_id = {p: offset + i for i, p in enumerate(self.vocab)}
        self._id_to_piece = {i: p for p, i in self._piece_to_id.items()}

    @property
    def vocab_size(self) -> int:
        r"""Number of ids: special tokens plus table entries.

        Examples
        --------
        >>> CharTokenizer.train("abc").vocab_size
        7
        """
        return len(self.special_tokens) + len(self.vocab)

    def _split(self, text: str) -> list[str]:
        raise NotImplementedError

    def _encode_text(self, text: str) -> list[int]:
        unk = self.unk_id
        ids = []
        for piece in self._split(text):
            i = self._piece_to_id.get(piece, unk)
            if i is None:
                raise ValueError(
                    f"{piece!r} is not in the vocabulary and this tokenizer has no "
                    "'<unk>' special token; train on text containing it or keep '<unk>'"
                )
            ids.append(i)
        return ids

    def _decode_run(self, ids: list[int]) -> str:
        return "".join(self._id_to_piece[i] for i in ids)

    def _fields(self) -> dict[str, Any]:
        return {"vocab": list(self.vocab)}

    @classmethod
    def _from_fields(cls, data: dict[str, Any], where: str) -> Tokenizer:
        vocab = _string_list(data, "vocab", where)
        return cls(vocab, special_tokens=data["special_tokens"])


class CharTokenizer(_TableTokenizer):
    r"""One id per character.

    Parameters
    ----------
    vocab : sequence of str
        The characters, each a single distinct character, in id order.
    special_tokens : sequence of str
        Reserved tokens; they take ids ``0 .. len(special_tokens) - 1``.

    Notes
    -----
    A character not in ``vocab`` encodes to ``<unk>``, and ``<unk>`` decodes to
    the five characters ``"<unk>"``, so eq. (2) holds exactly for the texts
    whose characters all appear in ``vocab``.

    Examples
    --------
    >>> tok = CharTokenizer.train("abba")
    >>> tok.vocab
    ('a', 'b')
    >>> tok.encode("abc")  # 'c' was never seen: <unk> is id 1
    [4, 5, 1]
    """

    kind = "char"

    def __init__(
        self, vocab: Sequence[str], special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS
    ) -> None:
        for piece in vocab:
            if not isinstance(piece, str) or len(piece) != 1:
                raise ValueError(
                    f"vocab entry {piece!r} is not a single character; a CharTokenizer's "
                    "vocab holds one-character strings"
                )
        super().__init__(vocab, special_tokens)

    @classmethod
    def train(
        cls, text: str, *, special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS
    ) -> CharTokenizer:
        r"""Build the vocabulary from the distinct characters of ``text``, sorted.

        Examples
        --------
        >>> CharTokenizer.train("hello", special_tokens=[]).vocab
        ('e', 'h', 'l', 'o')
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return cls(sorted(set(text)), special_tokens=special_tokens)

    def _split(self, text: str) -> list[str]:
        return list(text)

    @classmethod
    def _from_fields(cls, data: dict[str, Any], where: str) -> Tokenizer:
        vocab = _string_list(data, "vocab", where)
        if any(len(v) != 1 for v in vocab):
            raise ValueError(f"{where}: field 'vocab' must hold single characters")
        return cls(vocab, special_tokens=data["special_tokens"])


#: How :class:`WordTokenizer` cuts text: a run of word characters, a run of
#: whitespace, or one other character. Every character falls in one piece, so
#: joining the pieces gives the text back.
WORD_SPLIT_PATTERN = r"\w+|\s+|[^\w\s]"
_WORD_RE = re.compile(WORD_SPLIT_PATTERN)


class WordTokenizer(_TableTokenizer):
    r"""One id per word, per punctuation mark and per run of whitespace.

    Parameters
    ----------
    vocab : sequence of str
        The pieces, in id order (after the special tokens).
    special_tokens : sequence of str
        Reserved tokens; they take the first ids.

    Notes
    -----
    Text is cut by :data:`WORD_SPLIT_PATTERN`. Whitespace is kept as pieces
    (``" "``, ``"\n\n"``) so decoding restores the text exactly; a piece that
    is not in the vocabulary encodes to ``<unk>``.

    Examples
    --------
    >>> tok = WordTokenizer.train("the cat. the dog.", special_tokens=["<unk>"])
    >>> tok.vocab
    (' ', '.', 'the', 'cat', 'dog')
    >>> tok.decode(tok.encode("the bird."))
    'the <unk>.'
    """

    kind = "word"

    def __init__(
        self, vocab: Sequence[str], special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS
    ) -> None:
        super().__init__(vocab, special_tokens)

    @staticmethod
    def split(text: str) -> list[str]:
        r"""Cut ``text`` into pieces; ``"".join(split(text)) == text``.

        Examples
        --------
        >>> WordTokenizer.split("Hi,  you!")
        ['Hi', ',', '  ', 'you', '!']
        """
        return _WORD_RE.findall(text)

    def _split(self, text: str) -> list[str]:
        return self.split(text)

    @classmethod
    def train(
        cls,
        text: str,
        *,
        max_vocab: int | None = None,
        min_count: int = 1,
        special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    ) -> WordTokenizer:
        r"""Keep the pieces of ``text`` seen at least ``min_count`` times.

        Pieces are ordered by decreasing count, ties alphabetically, and at most
        ``max_vocab`` are kept (special tokens not counted).

        Examples
        --------
        >>> tok = WordTokenizer.train("a a a b b c", max_vocab=3, special_tokens=[])
        >>> tok.vocab  # ' ' (5 times), 'a' (3), 'b' (2); 'c' is cut
        (' ', 'a', 'b')
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if max_vocab is not None and (
            isinstance(max_vocab, bool) or not isinstance(max_vocab, int) or max_vocab < 1
        ):
            raise ValueError(f"max_vocab={max_vocab!r}; allowed: None or an int >= 1")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count={min_count!r}; allowed: an int >= 1")
        counts = Counter(cls.split(text))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        vocab = [piece for piece, n in ranked if n >= min_count]
        if max_vocab is not None:
            vocab = vocab[:max_vocab]
        return cls(vocab, special_tokens=special_tokens)


#: The tokenizers :func:`train_tokenizer` builds, by their ``kind``.
TOKENIZER_KINDS: tuple[str, ...] = ("char", "word", "bpe")


def train_tokenizer(
    kind: str,
    chunks: Iterable[str],
    *,
    vocab_size: int | None = None,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
) -> Tokenizer:
    r"""Train a tokenizer of ``kind`` on text given in pieces, holding only counts in memory.

    The counts are what each ``train`` method computes from one string (the distinct
    characters, the word pieces' counts, the BPE pre-tokens' counts), summed chunk by chunk,
    so a text larger than memory can be streamed. The result is the tokenizer that ``train``
    builds from ``"".join(chunks)`` provided that no chunk boundary falls inside a piece: cut
    the text between a non-space and a space (as :mod:`literate_tx.data.corpus` does), and
    neither :data:`WORD_SPLIT_PATTERN` nor :data:`GPT2_SPLIT_PATTERN` ever joins the two sides.

    Parameters
    ----------
    kind : {"char", "word", "bpe"}
    chunks : iterable of str
    vocab_size : int, optional
        Total ids, special tokens included. ``"char"``: must be None (the characters decide).
        ``"word"``: keep the ``vocab_size - len(special_tokens)`` most frequent pieces (None:
        all). ``"bpe"``: required, as in :meth:`BPETokenizer.train`.
    special_tokens : sequence of str

    Examples
    --------
    >>> tok = train_tokenizer("word", ["the cat", " the dog"], vocab_size=6)
    >>> tok.vocab  # 4 special tokens + the 2 most frequent pieces
    (' ', 'the')
    >>> train_tokenizer("bpe", ["ab ab", " ab"], vocab_size=262).encode(" ab")
    [257]
    >>> train_tokenizer("char", ["ab"], vocab_size=10)
    Traceback (most recent call last):
    ...
    ValueError: vocab_size=10 is not allowed for kind='char'; a character tokenizer's ...
    """
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"kind={kind!r} is not allowed; allowed: "
                         + ", ".join(map(repr, TOKENIZER_KINDS)))
    if isinstance(chunks, str):
        chunks = [chunks]
    specials = _check_special_tokens(special_tokens)
    if vocab_size is not None and (isinstance(vocab_size, bool)
                                   or not isinstance(vocab_size, int) or vocab_size < 1):
        raise ValueError(f"vocab_size={vocab_size!r} is not allowed; give an int >= 1 or None")
    if kind == "char":
        if vocab_size is not None:
            raise ValueError(
                f"vocab_size={vocab_size!r} is not allowed for kind='char'; a character "
                "tokenizer's vocabulary is the characters of the text: leave vocab_size unset"
            )
        seen: set[str] = set()
        for chunk in chunks:
            seen.update(chunk)
        return CharTokenizer(sorted(seen), special_tokens=specials)
    if kind == "word":
        if vocab_size is not None and vocab_size <= len(specials):
            raise ValueError(
                f"vocab_size={vocab_size} is too small for kind='word'; it counts the "
                f"{len(specials)} special tokens, so give at least {len(specials) + 1}"
            )
        counts: Counter[str] = Counter()
        for chunk in chunks:
            counts.update(WordTokenizer.split(chunk))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        pieces = [piece for piece, _ in ranked]
        if vocab_size is not None:
            pieces = pieces[: vocab_size - len(specials)]
        return WordTokenizer(pieces, special_tokens=specials)
    if vocab_size is None or vocab_size < _N_BYTES + len(specials):
        raise ValueError(
            f"vocab_size={vocab_size!r} is not allowed for kind='bpe'; give an int >= "
            f"{_N_BYTES + len(specials)} (256 bytes + {len(specials)} special tokens)"
        )
    splitter = BPETokenizer((), specials)
    pretokens: Counter[str] = Counter()
    for chunk in chunks:
        pretokens.update(splitter.pretokens(chunk))
    return BPETokenizer._train_counts(pretokens, vocab_size, specials, True)


class Merge(NamedTuple):
    r"""One learned BPE merge: ``left`` followed by ``right`` becomes ``new_id``.

    ``count`` is how often the pair stood side by side in the training text
    when it was chosen (overlapping occurrences, as in ``"aaa"``, count twice).

    Examples
    --------
    >>> Merge(left=104, right=105, new_id=256, count=3)
    Merge(left=104, right=105, new_id=256, count=3)
    """

    left: int
    right: int
    new_id: int
    count: int


def _merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    r"""Replace every occurrence of ``pair`` in ``ids`` by ``new_id``, left to right.

    Examples
    --------
    >>> _merge_pair([1, 2, 1, 2, 2], (1, 2), 9)
    [9, 9, 2]
    >>> _merge_pair([7, 7, 7], (7, 7), 9)  # non-overlapping, leftmost first
    [9, 7]
    """
    out: list[int] = []
    i = 0
    n = len(ids)
    while i < n:
        if i + 1 < n and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPETokenizer(Tokenizer):
    r"""Byte-level byte-pair encoding, as in GPT-2.

    Build one with :meth:`train`; the constructor takes already learned merges.

    Parameters
    ----------
    merges : sequence of Merge or (left, right, count) triples
        The merges in the order they were learned; merge ``k`` creates id
        ``256 + k``.
    special_tokens : sequence of str
        Reserved tokens; they take the last ids, after the merges.
    pretokenize : bool
        Cut text with :data:`GPT2_SPLIT_PATTERN` before merging (merges then
        never cross a word boundary). False treats the text as one sequence.

    Notes
    -----
    Ids ``0..255`` are the byte values, so every text encodes and
    ``decode(encode(text)) == text`` always holds (eq. 2). :meth:`decode` of
    an arbitrary id sequence may cut a multi-byte character; the broken bytes
    become U+FFFD, as ``bytes.decode(errors="replace")`` does.

    Examples
    --------
    >>> bpe = BPETokenizer.train("ab ab ab", vocab_size=258, special_tokens=[])
    >>> bpe.merges
    [Merge(left=97, right=98, new_id=256, count=3), Merge(left=32, right=256, new_id=257, count=2)]
    >>> bpe.encode("ab ab")
    [256, 257]
    """

    kind = "bpe"

    def __init__(
        self,
        merges: Sequence[Merge | Sequence[int]] = (),
        special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
        *,
        pretokenize: bool = True,
    ) -> None:
        super().__init__(special_tokens)
        checked: list[Merge] = []
        for k, m in enumerate(merges):
            left, right, count = (m.left, m.right, m.count) if isinstance(m, Merge) else m
            new_id = _N_BYTES + k
            for name, value in (("left", left), ("right", right)):
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < new_id:
                    raise ValueError(
                        f"merges[{k}].{name}={value!r}; it must be an id already defined "
                        f"before merge {k}, i.e. an int in 0..{new_id - 1}"
                    )
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"merges[{k}].count={count!r}; allowed: an int >= 0")
            checked.append(Merge(left, right, new_id, count))
        self.merges: list[Merge] = checked
        self.pretokenize = bool(pretokenize)
        self._ranks: dict[tuple[int, int], int] = {
            (m.left, m.right): k for k, m in enumerate(self.merges)
        }
        # The bytes each id stands for: a byte itself, or the two halves joined.
        self._bytes: list[bytes] = [bytes([b]) for b in range(_N_BYTES)]
        for m in self.merges:
            self._bytes.append(self._bytes[m.left] + self._bytes[m.right])
        self._set_special_ids(_N_BYTES + len(self.merges))
        self._split_re = re.compile(GPT2_SPLIT_PATTERN)
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        r"""256 bytes + one id per merge + the special tokens.

        Examples
        --------
        >>> BPETokenizer().vocab_size  # no merges, four special tokens
        260
        """
        return _N_BYTES + len(self.merges) + len(self.special_tokens)

    def token_bytes(self, token_id: int) -> bytes:
        r"""The bytes an ordinary (non-special) id stands for.

        Examples
        --------
        >>> bpe = BPETokenizer.train("hehehe", vocab_size=257, special_tokens=[])
        >>> bpe.token_bytes(256)
        b'he'
        """
        i = operator.index(token_id)
        if not 0 <= i < len(self._bytes):
            raise ValueError(
                f"token_id={i} is not an ordinary token; allowed: 0..{len(self._bytes) - 1}"
            )
        return self._bytes[i]

    def pretokens(self, text: str) -> list[str]:
        r"""Cut ``text`` into the pieces merges stay inside.

        Examples
        --------
        >>> BPETokenizer().pretokens("Hello, world!  It's 2024.")
        ['Hello', ',', ' world', '!', ' ', ' It', "'s", ' 2024', '.']
        """
        if not self.pretokenize:
            return [text] if text else []
        return self._split_re.findall(text)

    # -------------------------------------------------------------- training
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        *,
        special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
        pretokenize: bool = True,
    ) -> BPETokenizer:
        r"""Learn merges from ``text`` until ``vocab_size`` ids exist.

        Parameters
        ----------
        text : str
            Training text.
        vocab_size : int
            Requested size, counting the 256 bytes and the special tokens, so at
            least ``256 + len(special_tokens)``. Reached exactly unless the text
            runs out of adjacent pairs first; never exceeded.
        special_tokens : sequence of str
            Reserved tokens (ids after the merges).
        pretokenize : bool
            Keep merges inside GPT-2 pre-tokens (see :meth:`pretokens`).

        Returns
        -------
        BPETokenizer

        Notes
        -----
        Each step takes the most frequent adjacent pair (ties: smallest
        ``(left, right)``), records it with its count and rewrites the words
        that contain it. Pair counts are kept up to date incrementally: only
        the distinct pre-tokens containing the chosen pair are recounted, so a
        step costs time proportional to those words, not to the whole text.

        Examples
        --------
        Stopping early: ``"aaaa"`` needs two merges (``aa``, then ``aaaa``),
        after which no pair is left, so 300 ids are asked for and 258 result.

        >>> bpe = BPETokenizer.train("aaaa", vocab_size=300, special_tokens=[])
        >>> bpe.vocab_size, [m.count for m in bpe.merges]
        (258, [3, 1])
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        specials = _check_special_tokens(special_tokens)
        smallest = _N_BYTES + len(specials)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < smallest:
            raise ValueError(
                f"vocab_size={vocab_size!r} is too small; it must be an int >= "
                f"{smallest} (256 bytes + {len(specials)} special tokens)"
            )
        tok = cls((), specials, pretokenize=pretokenize)
        return cls._train_counts(Counter(tok.pretokens(text)), vocab_size, specials,
                                 pretokenize)

    @classmethod
    def _train_counts(cls, counts: Counter[str], vocab_size: int, specials: tuple[str, ...],
                      pretokenize: bool) -> BPETokenizer:
        """The merge loop of :meth:`train` on pre-token counts (so counts may be streamed)."""
        smallest = _N_BYTES + len(specials)
        # Distinct pre-tokens as byte-id lists, with how often each occurs.
        words: list[list[int]] = [list(w.encode("utf-8")) for w in counts]
        freqs: list[int] = list(counts.values())
        pair_counts: Counter[tuple[int, int]] = Counter()
        where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
        for w, (ids, f) in enumerate(zip(words, freqs, strict=True)):
            for pair in pairwise(ids):
                pair_counts[pair] += f
                where[pair].add(w)

        merges: list[Merge] = []
        n_merges = vocab_size - smallest
        while len(merges) < n_merges and pair_counts:
            # Step 2: most frequent pair; ties go to the smallest ids.
            best = max(pair_counts, key=lambda p: (pair_counts[p], -p[0], -p[1]))
            new_id = _N_BYTES + len(merges)
            merges.append(Merge(best[0], best[1], new_id, pair_counts[best]))
            # Step 3: rewrite only the words containing the pair, updating counts.
            for w in sorted(where.pop(best)):
                old, f = words[w], freqs[w]
                if len(old) < 2:
                    continue
                new = _merge_pair(old, best, new_id)
                if len(new) == len(old):
                    continue  # stale index: an earlier merge already consumed the pair
                for pair in pairwise(old):
                    pair_counts[pair] -= f
                    if pair_counts[pair] == 0:
                        del pair_counts[pair]
                for pair in pairwise(new):
                    pair_counts[pair] += f
                    where[pair].add(w)
                words[w] = new
            pair_counts.pop(best, None)
        return cls(merges, specials, pretokenize=pretokenize)

    # -------------------------------------------------------------- encoding
    def _merge_steps(self, ids: list[int]) -> tuple[int, int] | None:
        """The adjacent pair of ``ids`` with the lowest merge rank, or None."""
        best, best_rank = None, len(self._ranks)
        for pair in pairwise(ids):
            rank = self._ranks.get(pair, best_rank)
            if rank < best_rank:
                best, best_rank = pair, rank
        return best

    def _encode_chunk(self, chunk: str) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8"))
        while len(ids) >= 2:
            pair = self._merge_steps(ids)
            if pair is None:
                break
            ids = _merge_pair(ids, pair, _N_BYTES + self._ranks[pair])
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def _encode_text(self, text: str) -> list[int]:
        out: list[int] = []
        for chunk in self.pretokens(text):
            out.extend(self._encode_chunk(chunk))
        return out

    def _decode_run(self, ids: list[int]) -> str:
        return b"".join(self._bytes[i] for i in ids).decode("utf-8", errors="replace")

    def _show(self, ids: list[int]) -> str:
        """Tokens as ``[..]`` boxes, with newlines and tabs escaped."""
        out = []
        for i in ids:
            s = self._bytes[i].decode("utf-8", errors="backslashreplace")
            out.append("[" + s.replace("\n", "\\n").replace("\t", "\\t") + "]")
        return "".join(out)

    def explain(self, text: str) -> str:
        r"""Show, one merge per line, how ``text`` is encoded.

        The first line shows the UTF-8 bytes, one per box; each later line names
        the merge applied (its rank, the two tokens, the count it had in
        training) and the tokens after it. The last line's boxes are
        ``encode(text)``.

        Examples
        --------
        >>> bpe = BPETokenizer.train("low low lower", vocab_size=259, special_tokens=[])
        >>> print(bpe.explain(" lowest"))
        bytes             : [ ][l][o][w][e][s][t]
        merge 0 (count 3) : [l] + [o] -> [lo]      gives [ ][lo][w][e][s][t]
        merge 1 (count 3) : [lo] + [w] -> [low]    gives [ ][low][e][s][t]
        merge 2 (count 2) : [ ] + [low] -> [ low]  gives [ low][e][s][t]

        ``"est"`` never occurred in training, so those bytes stay apart.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        chunks = [list(c.encode("utf-8")) for c in self.pretokens(text)]
        first = "".join(self._show(c) for c in chunks)
        steps: list[tuple[str, str, str]] = []  # (label, merge, tokens after it)
        while True:
            # The lowest-ranked pair present anywhere; merges stay inside chunks.
            ranks = [self._ranks[p] for c in chunks for p in pairwise(c) if p in self._ranks]
            if not ranks:
                break
            m = self.merges[min(ranks)]
            chunks = [_merge_pair(c, (m.left, m.right), m.new_id) for c in chunks]
            what = f"{self._show([m.left])} + {self._show([m.right])} -> {self._show([m.new_id])}"
            result = "".join(self._show(c) for c in chunks)
            steps.append((f"merge {min(ranks)} (count {m.count})", what, result))
        head = max([len("bytes")] + [len(label) for label, _, _ in steps])
        width = max([len(what) for _, what, _ in steps], default=0)
        lines = [f"{'bytes':<{head}} : {first}"]
        for label, what, result in steps:
            lines.append(f"{label:<{head}} : {what:<{width}}  gives {result}")
        return "\n".join(lines)

    # ------------------------------------------------------------ JSON files
    def _fields(self) -> dict[str, Any]:
        return {
            "pretokenize": self.pretokenize,
            "merges": [[m.left, m.right, m.count] for m in self.merges],
        }

    @classmethod
    def _from_fields(cls, data: dict[str, Any], where: str) -> Tokenizer:
        pretokenize = data.get("pretokenize")
        if not isinstance(pretokenize, bool):
            raise ValueError(f"{where}: field 'pretokenize' must be true or false")
        merges = data.get("merges")
        if not isinstance(merges, list):
            raise ValueError(f"{where}: field 'merges' must be a list of [left, right, count]")
        for k, m in enumerate(merges):
            if not (isinstance(m, list) and len(m) == 3):
                raise ValueError(
                    f"{where}: merges[{k}]={m!r}; each merge must be [left, right, count]"
                )
        try:
            return cls(merges, data["special_tokens"], pretokenize=pretokenize)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None


# ============================================================================ GPT-2's own files
#: Unicode's White_Space property (PropList.txt): what ``\s`` means in GPT-2's pattern. Python's
#: ``str.isspace`` (and so ``re``'s ``\s``) also counts U+001C..U+001F, which GPT-2 does not.
_WHITE_SPACE: tuple[int, ...] = (*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680,
                                 *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)

#: GPT-2's pre-tokenization pattern as GPT-2 wrote it, for the ``regex`` package.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _class_of(codepoints: Iterable[int]) -> str:
    r"""A regex character class body (no brackets) matching exactly ``codepoints``.

    Examples
    --------
    >>> _class_of([65, 66, 67, 97])
    '\\u0041-\\u0043\\u0061'
    """
    def esc(c: int) -> str:
        return f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"

    parts: list[str] = []
    start = prev = None
    for c in codepoints:
        if prev is not None and c == prev + 1:
            prev = c
            continue
        if start is not None:
            parts.append(esc(start) if start == prev else f"{esc(start)}-{esc(prev)}")
        start = prev = c
    if start is not None:
        parts.append(esc(start) if start == prev else f"{esc(start)}-{esc(prev)}")
    return "".join(parts)


_GPT2_SPLIT: re.Pattern[str] | None = None


def gpt2_split_regex() -> re.Pattern[str]:
    r"""GPT-2's pre-tokenizer, :data:`GPT2_PATTERN`, exactly, written for Python's :mod:`re`.

    :mod:`re` has no ``\p{L}`` (letters) or ``\p{N}`` (numbers), and its ``\s`` is a little wider
    than Unicode's White_Space. So the classes are spelled out: every code point whose
    :func:`unicodedata.category` starts with ``L`` (resp. ``N``), and the 25 White_Space code
    points; ``(?!\S)`` becomes "not followed by a character outside White_Space". The result
    matches what the ``regex`` package does with GPT-2's pattern for every code point assigned
    in Python's Unicode database (tests/test_tokenizers_gpt2.py checks all of them); code points
    unassigned there count as symbols. Built once (about 0.2 s) and cached.

    Examples
    --------
    >>> gpt2_split_regex().findall("I'll pay 2½ €, ok?  Yes")
    ['I', "'ll", ' pay', ' 2½', ' €,', ' ok', '?', ' ', ' Yes']
    """
    global _GPT2_SPLIT
    if _GPT2_SPLIT is None:
        import unicodedata

        letters: list[int] = []
        numbers: list[int] = []
        for c in range(0x110000):
            kind = unicodedata.category(chr(c))[0]
            if kind == "L":
                letters.append(c)
            elif kind == "N":
                numbers.append(c)
        L, N, S = _class_of(letters), _class_of(numbers), _class_of(_WHITE_SPACE)
        _GPT2_SPLIT = re.compile(
            rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+")
    return _GPT2_SPLIT


def bytes_to_unicode() -> dict[int, str]:
    r"""GPT-2's table from the 256 byte values to 256 printable characters.

    ``vocab.json`` and ``merges.txt`` are text files, so GPT-2 writes each byte as a visible
    character: the 188 printable Latin-1 bytes stand for themselves and the other 68 (control
    characters, space, ...) take the characters from U+0100 on, in byte order. The space
    ``0x20`` becomes ``"Ġ"`` (U+0120), which is why GPT-2's tokens start with ``Ġ``.

    Examples
    --------
    >>> table = bytes_to_unicode()
    >>> table[ord("a")], table[ord(" ")], table[ord("\n")], len(set(table.values()))
    ('a', 'Ġ', 'Ċ', 256)
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return dict(sorted(table.items()))


def _token_table(vocab: Mapping[str, int]) -> list[str]:
    """The tokens of a ``token -> id`` vocabulary in id order, checking the ids are
    ``0 .. len(vocab) - 1``, each once (the shape of ``vocab.json`` and ``tokenizer.json``)."""
    if not isinstance(vocab, Mapping):
        raise TypeError(f"vocab must be a mapping of token to id, got {type(vocab).__name__}")
    tokens: list[str | None] = [None] * len(vocab)
    for token, i in vocab.items():
        if not isinstance(token, str) or not token:
            raise ValueError(f"vocab has the key {token!r}; tokens are non-empty strings")
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(vocab) \
                or tokens[i] is not None:
            raise ValueError(
                f"vocab[{token!r}]={i!r}; the ids must be 0..{len(vocab) - 1}, each once")
        tokens[i] = token
    return tokens  # type: ignore[return-value]


def _merge_list(merges: Iterable[Sequence[str]], vocab: Mapping[str, int]
                ) -> list[tuple[str, str]]:
    """Merges as ``(left, right)`` string pairs, each half and their join a token."""
    out: list[tuple[str, str]] = []
    for k, pair in enumerate(merges):
        if isinstance(pair, str) or len(pair) != 2 or not all(
                isinstance(p, str) and p for p in pair):
            raise ValueError(f"merges[{k}]={pair!r}; a merge is two non-empty tokens")
        left, right = pair
        for token in (left, right, left + right):
            if token not in vocab:
                raise ValueError(f"merges[{k}]={pair!r}: {token!r} is not in vocab")
        out.append((left, right))
    return out


def replay_merges(symbols: Sequence[str], ranks: Mapping[tuple[str, str], int]) -> list[str]:
    r"""Encode one piece with string merges: join the lowest-ranked adjacent pair everywhere,
    left to right, until no adjacent pair has a rank (GPT-2's ``bpe`` function).

    Parameters
    ----------
    symbols : sequence of str
        The piece's starting tokens (characters or byte characters).
    ranks : mapping of (str, str) to int
        Each merge's rank; lower merges first.

    Examples
    --------
    >>> replay_merges("aaab", {("a", "a"): 0, ("a", "b"): 1})
    ['aa', 'ab']
    """
    word = list(symbols)
    while len(word) > 1:
        best = min(pairwise(word), key=lambda p: ranks.get(p, len(ranks)))
        if best not in ranks:
            break
        merged: list[str] = []
        i = 0
        while i < len(word):
            if i + 1 < len(word) and word[i] == best[0] and word[i + 1] == best[1]:
                merged.append(best[0] + best[1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


class MergesTokenizer(Tokenizer):
    r"""Base of the tokenizers read from published files: a ``token -> id`` vocabulary and
    string merges (GPT-2's ``vocab.json`` and ``merges.txt``, Hugging Face's
    ``tokenizer.json``).

    It checks the two tables once for its subclasses (ids ``0 .. V-1`` each once; both halves
    of a merge and their join are tokens; the special tokens are tokens), ranks the merges,
    and gives :attr:`vocab_size`, :meth:`token` and the JSON fields.

    Parameters
    ----------
    vocab : mapping of str to int
    merges : sequence of (str, str)
        In rank order.
    special_tokens : sequence of str

    Examples
    --------
    >>> tok = GPT2Tokenizer.from_bpe(BPETokenizer.train("aaab", 262, special_tokens=[]))
    >>> isinstance(tok, MergesTokenizer), tok.merges[0]
    (True, ('a', 'a'))
    """

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[Sequence[str]],
                 special_tokens: Sequence[str]) -> None:
        self._tokens: list[str] = _token_table(vocab)
        super().__init__(special_tokens)
        self.vocab: dict[str, int] = dict(vocab)
        self.merges: list[tuple[str, str]] = _merge_list(merges, self.vocab)
        self._ranks = {pair: k for k, pair in enumerate(self.merges)}
        for token in self.special_tokens:
            if token not in self.vocab:
                raise ValueError(f"special token {token!r} is not in vocab")
        self._special_ids = {t: self.vocab[t] for t in self.special_tokens}
        self._special_names = {i: t for t, i in self._special_ids.items()}
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        r"""Number of ids (GPT-2: 50257, Llama 2: 32000).

        Examples
        --------
        >>> GPT2Tokenizer.from_bpe(BPETokenizer(special_tokens=[])).vocab_size
        256
        """
        return len(self._tokens)

    def token(self, token_id: int) -> str:
        r"""The token string of an id, as the vocabulary writes it.

        Examples
        --------
        >>> GPT2Tokenizer.from_bpe(BPETokenizer(special_tokens=[])).token(32)
        'Ġ'
        """
        i = operator.index(token_id)
        if not 0 <= i < len(self._tokens):
            raise ValueError(f"token_id={i} is out of range 0..{len(self._tokens) - 1}")
        return self._tokens[i]

    def _fields(self) -> dict[str, Any]:
        return {"vocab": self.vocab, "merges": [list(m) for m in self.merges]}

    #: Constructor keywords stored in the JSON file besides the vocabulary and the merges.
    _options: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _from_fields(cls, data: dict[str, Any], where: str) -> Tokenizer:
        vocab, merges = data.get("vocab"), data.get("merges")
        if not isinstance(vocab, dict) or not isinstance(merges, list):
            raise ValueError(f"{where}: fields 'vocab' (an object) and 'merges' (a list) are "
                             "required")
        options = {k: data[k] for k in cls._options if k in data}
        try:
            return cls(vocab, merges, data["special_tokens"], **options)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{where}: {err}") from None


class GPT2Tokenizer(MergesTokenizer):
    r"""GPT-2's byte-level BPE, read from its ``vocab.json`` and ``merges.txt``.

    The same algorithm as :class:`BPETokenizer`, stored the way GPT-2 stores it: tokens are
    strings of :func:`bytes_to_unicode` characters, ``vocab.json`` maps each token to its id,
    and ``merges.txt`` lists the merges, most important first, as two tokens per line. To
    encode, the text is cut with GPT-2's own pattern (:func:`gpt2_split_regex`); each piece's
    UTF-8 bytes become characters; then, as long as some adjacent pair is a merge, every
    occurrence of the pair of lowest rank is joined, left to right; the resulting tokens are
    looked up in ``vocab.json``.

    Parameters
    ----------
    vocab : mapping of str to int
        Token to id; the ids must be ``0 .. len(vocab) - 1``, each once, and every one of the
        256 byte characters must be a token.
    merges : sequence of (str, str)
        The merges in rank order; both halves and their concatenation must be tokens.
    special_tokens : sequence of str, optional
        Tokens of ``vocab`` that are not text (default: ``"<|endoftext|>"`` when the vocabulary
        has it). As in GPT-2's own encoder, their names inside a text are plain text.

    Notes
    -----
    GPT-2's ``<|endoftext|>`` is both its beginning and its end of text: :attr:`bos_id` and
    :attr:`eos_id` are its id. ``transformers``' GPT-2 tokenizer gives the same ids as this
    class (tests/test_tokenizers_gpt2.py), except that it turns the string ``"<|endoftext|>"``
    inside a text into the special token.

    Examples
    --------
    >>> bpe = BPETokenizer.train("the cat the hat the bat", vocab_size=265, special_tokens=[])
    >>> tok = GPT2Tokenizer.from_bpe(bpe)
    >>> [tok.token(i) for i in tok.encode("the hat")]
    ['the', 'Ġh', 'at']
    >>> tok.encode("the hat") == bpe.encode("the hat"), tok.decode(tok.encode("the hat!"))
    (True, 'the hat!')
    """

    kind = "gpt2"

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[Sequence[str]],
                 special_tokens: Sequence[str] | None = None) -> None:
        if special_tokens is None and isinstance(vocab, Mapping):
            special_tokens = ["<|endoftext|>"] if "<|endoftext|>" in vocab else []
        super().__init__(vocab, merges, special_tokens or [])
        self._byte_encoder = bytes_to_unicode()
        self._byte_decoder = {c: b for b, c in self._byte_encoder.items()}
        missing = [c for c in self._byte_encoder.values() if c not in self.vocab]
        if missing:
            raise ValueError(f"vocab lacks {len(missing)} of the 256 byte tokens, e.g. "
                             f"{missing[0]!r}; a byte-level vocabulary has all of them")

    # ------------------------------------------------------------ files
    @classmethod
    def from_files(cls, vocab_json: str | os.PathLike[str], merges_txt: str | os.PathLike[str],
                   *, special_tokens: Sequence[str] | None = None) -> GPT2Tokenizer:
        r"""Read GPT-2's ``vocab.json`` and ``merges.txt``.

        ``merges.txt`` may start with a ``#version`` line; every other non-empty line is two
        tokens separated by one space.

        Raises
        ------
        ValueError
            Naming the file and the entry at fault.

        Examples
        --------
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> GPT2Tokenizer.from_bpe(BPETokenizer.train("aaab aaab", 258, special_tokens=[])
        ...                        ).save_files(folder)
        >>> tok = GPT2Tokenizer.from_files(f"{folder}/vocab.json", f"{folder}/merges.txt")
        >>> tok.merges, tok.encode("aaaab")
        ([('a', 'a'), ('a', 'b')], [256, 256, 98])
        """
        vocab_json, merges_txt = Path(vocab_json), Path(merges_txt)
        try:
            vocab = json.loads(vocab_json.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{vocab_json}: not a JSON file ({err})") from None
        if not isinstance(vocab, dict):
            raise ValueError(f"{vocab_json}: expected a JSON object of token to id")
        merges = []
        for n, line in enumerate(merges_txt.read_text(encoding="utf-8").split("\n"), 1):
            if not line or (n == 1 and line.startswith("#version")):
                continue
            pair = line.split(" ")
            if len(pair) != 2:
                raise ValueError(f"{merges_txt}: line {n} is {line!r}; a merge line is two "
                                 "tokens separated by one space")
            merges.append(pair)
        try:
            return cls(vocab, merges, special_tokens)
        except ValueError as err:
            source = merges_txt if str(err).startswith("merges[") else vocab_json
            raise ValueError(f"{source}: {err}") from None

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> GPT2Tokenizer:
        r"""Read GPT-2's tokenizer from a Hugging Face model folder.

        ``vocab.json`` and ``merges.txt`` when the folder has them, else ``tokenizer.json``
        (``transformers`` 5 writes only that one;
        :func:`~literate_tx.tokenizer_json.gpt2_from_tokenizer_json`).

        Raises
        ------
        FileNotFoundError
            When the folder has neither.

        Examples
        --------
        >>> GPT2Tokenizer.from_folder("/nonexistent")
        Traceback (most recent call last):
        ...
        FileNotFoundError: /nonexistent has no vocab.json and merges.txt, nor tokenizer.json
        """
        folder = Path(folder)
        vocab, merges = folder / "vocab.json", folder / "merges.txt"
        if vocab.is_file() and merges.is_file():
            return cls.from_files(vocab, merges)
        if (folder / "tokenizer.json").is_file():
            from .tokenizer_json import gpt2_from_tokenizer_json

            return gpt2_from_tokenizer_json(folder / "tokenizer.json")
        raise FileNotFoundError(f"{folder} has no vocab.json and merges.txt, nor "
                                "tokenizer.json")

    def save_files(self, folder: str | os.PathLike[str]) -> None:
        r"""Write ``vocab.json`` and ``merges.txt`` into ``folder``, atomically.

        Examples
        --------
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> GPT2Tokenizer.from_bpe(BPETokenizer()).save_files(folder)
        >>> sorted(os.listdir(folder))
        ['merges.txt', 'vocab.json']
        """
        from .checkpoint import atomic_write

        folder = Path(folder)
        vocab = json.dumps(self.vocab, ensure_ascii=False, indent=None).encode("utf-8")
        merges = "".join(["#version: 0.2\n", *(f"{a} {b}\n" for a, b in self.merges)])
        atomic_write(folder / "vocab.json", lambda f: f.write(vocab))
        atomic_write(folder / "merges.txt", lambda f: f.write(merges.encode("utf-8")))

    @classmethod
    def from_bpe(cls, bpe: BPETokenizer) -> GPT2Tokenizer:
        r"""The same tokenizer in GPT-2's format: a :class:`BPETokenizer` keeps its ids.

        Ids 0..255 are the bytes, merge ``k`` is id ``256 + k``, the special tokens follow.

        Raises
        ------
        ValueError
            If ``bpe`` does not pre-tokenize (GPT-2 always does), or two of its merges spell
            the same bytes (``vocab.json`` can hold a string once).

        Examples
        --------
        >>> tok = GPT2Tokenizer.from_bpe(BPETokenizer.train("hi hi", 262))
        >>> tok.vocab_size, tok.token(257), tok.special_tokens[0], tok.special_id("<pad>")
        (262, 'Ġhi', '<pad>', 258)
        """
        if not isinstance(bpe, BPETokenizer):
            raise TypeError(f"bpe must be a BPETokenizer, got {type(bpe).__name__}")
        if not bpe.pretokenize:
            raise ValueError("bpe was trained with pretokenize=False; GPT-2's format always "
                             "splits the text first")
        table = bytes_to_unicode()

        def spell(i: int) -> str:
            return "".join(table[b] for b in bpe.token_bytes(i))

        vocab: dict[str, int] = {}
        for i in range(_N_BYTES + len(bpe.merges)):
            token = spell(i)
            if token in vocab:
                raise ValueError(f"merges {vocab[token] - _N_BYTES} and {i - _N_BYTES} both "
                                 f"spell {token!r}; GPT-2's vocab.json holds each token once")
            vocab[token] = i
        for name in bpe.special_tokens:
            vocab[name] = len(vocab)
        merges = [(spell(m.left), spell(m.right)) for m in bpe.merges]
        return cls(vocab, merges, bpe.special_tokens)

    # ------------------------------------------------------------ ids
    @property
    def bos_id(self) -> int | None:
        r"""Id of ``<|endoftext|>`` (GPT-2 begins and ends texts with it), else of ``<bos>``.

        Examples
        --------
        >>> GPT2Tokenizer.from_bpe(BPETokenizer(special_tokens=["<|endoftext|>"])).bos_id
        256
        """
        return self._special_ids.get("<|endoftext|>", self._optional_id("<bos>"))

    @property
    def eos_id(self) -> int | None:
        r"""Id of ``<|endoftext|>``, else of ``<eos>``.

        Examples
        --------
        >>> GPT2Tokenizer.from_bpe(BPETokenizer(special_tokens=["<|endoftext|>"])).eos_id
        256
        """
        return self._special_ids.get("<|endoftext|>", self._optional_id("<eos>"))

    def pretokens(self, text: str) -> list[str]:
        r"""Cut ``text`` with GPT-2's pattern.

        Examples
        --------
        >>> GPT2Tokenizer.from_bpe(BPETokenizer()).pretokens("It's  2024!")
        ['It', "'s", ' ', ' 2024', '!']
        """
        return gpt2_split_regex().findall(text)

    def _encode_text(self, text: str) -> list[int]:
        out: list[int] = []
        for piece in self.pretokens(text):
            ids = self._cache.get(piece)
            if ids is None:
                chars = "".join(self._byte_encoder[b] for b in piece.encode("utf-8"))
                ids = [self.vocab[t] for t in self._piece_tokens(chars)]
                if len(self._cache) < 100_000:
                    self._cache[piece] = ids
            out.extend(ids)
        return out

    def _piece_tokens(self, chars: str) -> list[str]:
        """The tokens of one pre-token, written in byte characters: the merges replayed."""
        return replay_merges(chars, self._ranks)

    def _decode_run(self, ids: list[int]) -> str:
        chars = "".join(self._tokens[i] for i in ids)
        return bytes(self._byte_decoder[c] for c in chars).decode("utf-8", errors="replace")


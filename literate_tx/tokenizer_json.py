r"""Hugging Face's ``tokenizer.json``, read in pure Python.

A folder that ``transformers`` 5 writes with ``save_pretrained`` holds its tokenizer as a
single file, ``tokenizer.json`` (with ``tokenizer_config.json`` beside it). GPT-2's
``vocab.json`` and ``merges.txt`` no longer appear, and Llama's folders never had them. The
file describes a pipeline of stages, each one a JSON object with a ``"type"``. Encoding
runs four of them,

.. math::

    \text{text} \xrightarrow{\text{normalizer}} \text{text}'
    \xrightarrow{\text{pre\_tokenizer}} \text{pieces}
    \xrightarrow{\text{model}} \text{ids}
    \xrightarrow{\text{post\_processor}} \text{ids}',                           \tag{1}

and the fifth stage, the *decoder*, turns ids back into text.

The two model families of :mod:`literate_tx.hf` use three such pipelines between them, and
this module reads all three. Any other pipeline is refused: the error names the field and the
value it found.

GPT-2: byte-level BPE
    There is no normalizer. The pre-tokenizer is ``ByteLevel``: GPT-2's split pattern,
    then each piece's UTF-8 bytes written as :func:`~literate_tx.tokenizers.bytes_to_unicode`
    characters. The model is ``BPE`` over those characters, and the decoder is ``ByteLevel``.
    This is exactly :class:`~literate_tx.tokenizers.GPT2Tokenizer`, so
    :func:`gpt2_from_tokenizer_json` returns one of those.

SentencePiece BPE: Llama 1 and 2, TinyLlama
    The text is never split. Instead, spaces become the visible mark ``▁`` (U+2581) and one
    mark is put in front:

    .. math::

        \text{"Hello world"} \;\mapsto\; \text{"▁Hello▁world"}.                  \tag{2}

    The model starts from the *characters* of that string, not its bytes. A character the
    vocabulary lacks becomes its UTF-8 bytes, each written as the token ``<0xXX>`` (*byte
    fallback*), so, as with byte-level BPE, no text is out of vocabulary:

    .. math::

        \text{"€"} \;\mapsto\; \langle\text{0xE2}\rangle\,\langle\text{0x82}\rangle\,
        \langle\text{0xAC}\rangle.                                               \tag{3}

    Then the merges are replayed as in every BPE: among the adjacent pairs, the one of
    lowest rank is joined everywhere, until no listed pair remains (eq. (3) of
    :mod:`literate_tx.tokenizers`, the same loop). The post-processor puts ``<s>`` first.
    Decoding runs eqs. (2) and (3) backwards:

    .. math::

        \text{decode}(x) = \text{utf8}^{-1}\Big(\textstyle\prod_t \text{bytes}(x_t)\Big)
        \text{ without its first space},                                        \tag{4}

    Here :math:`\text{bytes}(\langle\text{0xXX}\rangle)` is that one byte, and for any other
    token it is the token's UTF-8 with ``▁`` read as a space.
    :class:`SentencePieceBPETokenizer` implements eqs. (2)-(4).

Byte-level BPE with other splits: Llama 3, SmolLM
    GPT-2's algorithm, with the text cut differently before the bytes are written as
    characters. Llama 3 uses a ``Split`` with its own pattern, where a number is cut into
    groups of at most three digits, and takes a piece that is a whole token as that token
    before any merge (``ignore_merges``). SmolLM puts every digit apart (``Digits``) before
    GPT-2's pattern. The patterns use ``\p{L}`` and ``\p{N}``, which Python's :mod:`re`
    lacks, so :func:`python_regex` spells them out. :class:`ByteLevelBPETokenizer` runs the
    steps in order.

All three readers give the ids of Hugging Face's own ``tokenizers`` (``nox -s hf`` runs
``tests/test_tokenizer_json.py``), and the two splits cut text as ``tokenizers`` does on every
assigned code point. Like :class:`~literate_tx.tokenizers.GPT2Tokenizer`, they read a special
token's name that appears *inside* a text as plain text; only ``add_bos`` puts ``<s>`` in.

Examples
--------
>>> tok = SentencePieceBPETokenizer.from_bytes_and_merges(
...     ["▁", "h", "i", "hi", "▁hi"], [("h", "i"), ("▁", "hi")])
>>> [tok.token(i) for i in tok.encode("hi hi!")]
['▁hi', '▁hi', '<0x21>']
>>> tok.decode(tok.encode("hi hi!"))
'hi hi!'
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .tokenizers import (
    _WHITE_SPACE,
    GPT2Tokenizer,
    MergesTokenizer,
    Tokenizer,
    _class_of,
    gpt2_split_regex,
    replay_merges,
)

__all__ = [
    "SPACE_MARK",
    "ByteLevelBPETokenizer",
    "SentencePieceBPETokenizer",
    "gpt2_from_tokenizer_json",
    "load_hf_tokenizer",
    "python_regex",
    "read_tokenizer_json",
]

#: SentencePiece's visible space, U+2581 LOWER ONE EIGHTH BLOCK: eq. (2).
SPACE_MARK = "\u2581"

_BYTE_TOKEN = re.compile(r"<0x([0-9A-F]{2})>")


def _byte_token(b: int) -> str:
    return f"<0x{b:02X}>"


# ====================================================================== the file, checked
def _refuse(source: str, field: str, value: Any, allowed: str) -> ValueError:
    shown = json.dumps(value, ensure_ascii=False)
    if len(shown) > 160:
        shown = shown[:157] + "..."
    return ValueError(f"{source}: {field} is {shown}; supported: {allowed}")


def read_tokenizer_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    r"""Read a ``tokenizer.json`` and check the fields both readers rely on.

    The top level must be an object with a ``"model"`` object of ``"type": "BPE"``, a
    ``"vocab"`` object of token to id, and a ``"merges"`` list. The merges may be written as
    pairs (``["a", "b"]``, the current format) or as strings (``"a b"``, the older one); the
    result always holds pairs.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        The file's JSON, with ``model.merges`` as a list of ``[left, right]`` pairs.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        Naming the file and the field that is missing or not supported.

    Examples
    --------
    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tokenizer.json")
    >>> with open(path, "w", encoding="utf-8") as f:
    ...     json.dump({"model": {"type": "WordPiece", "vocab": {}}}, f)
    >>> read_tokenizer_json(path)
    Traceback (most recent call last):
    ...
    ValueError: .../tokenizer.json: model.type is "WordPiece"; supported: "BPE" (GPT-2, ...)
    """
    path = Path(path)
    source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{source}: not a JSON file ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ValueError(f"{source}: expected an object with a 'model' object (a Hugging Face "
                         "tokenizer.json)")
    model = data["model"]
    if model.get("type", "BPE") != "BPE":
        raise _refuse(source, "model.type", model.get("type"),
                      '"BPE" (GPT-2, Llama 1 and 2)')
    if not isinstance(model.get("vocab"), dict):
        raise ValueError(f"{source}: model.vocab must be an object of token to id")
    merges = model.get("merges")
    if not isinstance(merges, list):
        raise ValueError(f"{source}: model.merges must be a list")
    pairs = []
    for k, merge in enumerate(merges):
        pair = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(pair, list) or len(pair) != 2 or not all(
                isinstance(p, str) and p for p in pair):
            raise ValueError(f"{source}: model.merges[{k}] is {merge!r}; a merge is two "
                             "non-empty tokens")
        pairs.append(pair)
    model["merges"] = pairs
    for key, allowed in (("continuing_subword_prefix", (None, "")),
                         ("end_of_word_suffix", (None, "")), ("dropout", (None, 0, 0.0))):
        if model.get(key) not in allowed:
            raise _refuse(source, f"model.{key}", model.get(key), "null (no BPE dropout, no "
                          "word prefixes or suffixes)")
    added = data.get("added_tokens") or []
    if not isinstance(added, list) or not all(
            isinstance(a, dict) and isinstance(a.get("content"), str)
            and isinstance(a.get("id"), int) for a in added):
        raise ValueError(f"{source}: added_tokens must be a list of objects with 'id' and "
                         "'content'")
    return data


def _vocab_with_added(data: dict[str, Any], source: str) -> tuple[dict[str, int], list[str]]:
    """The model's vocabulary plus the added tokens, and the names of the special ones."""
    vocab = dict(data["model"]["vocab"])
    specials = []
    for entry in data.get("added_tokens") or []:
        token, i = entry["content"], entry["id"]
        if vocab.get(token, i) != i:
            raise ValueError(f"{source}: added token {token!r} has id {i} but model.vocab "
                             f"gives it {vocab[token]}")
        vocab[token] = i
        if entry.get("special", False):
            specials.append(token)
    return vocab, specials


def _special_options(data: dict[str, Any], config: Mapping[str, Any] | None,
                     vocab: Mapping[str, int], specials: list[str],
                     keys: Sequence[str]) -> dict[str, Any]:
    """The special-token keywords of a reader: ``bos_token`` and ``add_bos`` from the
    post-processor's first special token (``TemplateProcessing``, alone or in a ``Sequence``),
    then the names in ``keys`` and ``add_bos_token`` from ``tokenizer_config.json``, which
    win. A named token of the vocabulary joins ``specials`` (in place)."""
    options: dict[str, Any] = {"add_bos": False}
    post = [p for p in _types(data.get("post_processor")) if p.get("type") == "TemplateProcessing"]
    single = post[0].get("single") if post else None
    if single and isinstance(single[0], dict) and "SpecialToken" in single[0]:
        options.update(bos_token=single[0]["SpecialToken"]["id"], add_bos=True)
    config = config or {}
    for key in keys:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str) and value in vocab:
            options[key] = value
    if isinstance(config.get("add_bos_token"), bool):
        options["add_bos"] = config["add_bos_token"]
    for key in keys:
        if options.get(key) in vocab and options[key] not in specials:
            specials.append(options[key])
    return options


def _types(obj: Any) -> list[dict[str, Any]]:
    """A stage as a flat list of steps (a ``Sequence`` is unpacked)."""
    if obj is None:
        return []
    if obj.get("type") == "Sequence":
        steps = (obj.get("normalizers") or obj.get("pretokenizers") or obj.get("decoders")
                 or obj.get("processors") or [])
        return [s for step in steps for s in _types(step)]
    return [obj]


# ====================================================================== GPT-2
def gpt2_from_tokenizer_json(path: str | os.PathLike[str]) -> GPT2Tokenizer:
    r"""GPT-2's byte-level BPE from a ``tokenizer.json``.

    The pipeline must be GPT-2's: no normalizer, a ``ByteLevel`` pre-tokenizer that uses
    GPT-2's pattern and adds no prefix space, and a ``BPE`` model without byte fallback. The
    added tokens marked ``"special"`` become the tokenizer's special tokens.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    GPT2Tokenizer

    Raises
    ------
    ValueError
        Naming the file and the stage that differs from GPT-2's.

    Examples
    --------
    >>> import os, tempfile
    >>> from literate_tx.tokenizers import BPETokenizer
    >>> gpt2 = GPT2Tokenizer.from_bpe(BPETokenizer.train("the cat the hat", 262,
    ...                                                  special_tokens=["<|endoftext|>"]))
    >>> data = {"added_tokens": [{"id": 261, "content": "<|endoftext|>", "special": True}],
    ...         "normalizer": None, "decoder": {"type": "ByteLevel"},
    ...         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
    ...                           "use_regex": True},
    ...         "model": {"type": "BPE", "vocab": gpt2.vocab, "merges": gpt2.merges}}
    >>> path = os.path.join(tempfile.mkdtemp(), "tokenizer.json")
    >>> with open(path, "w", encoding="utf-8") as f:
    ...     json.dump(data, f)
    >>> tok = gpt2_from_tokenizer_json(path)
    >>> tok.encode("the hat") == gpt2.encode("the hat"), tok.special_tokens
    (True, ('<|endoftext|>',))
    """
    return _gpt2_from_data(read_tokenizer_json(path), str(path))


def _gpt2_from_data(data: dict[str, Any], source: str) -> GPT2Tokenizer:
    """:func:`gpt2_from_tokenizer_json` on a file already read."""
    model = data["model"]
    if data.get("normalizer") is not None:
        raise _refuse(source, "normalizer", data["normalizer"], "null (GPT-2 has none)")
    pre = _types(data.get("pre_tokenizer"))
    if [p.get("type") for p in pre] != ["ByteLevel"] or not pre[0].get("use_regex", True) \
            or pre[0].get("add_prefix_space", False):
        raise _refuse(source, "pre_tokenizer", data.get("pre_tokenizer"),
                      'GPT-2\'s {"type": "ByteLevel", "add_prefix_space": false, '
                      '"use_regex": true}')
    if model.get("byte_fallback", False):
        raise _refuse(source, "model.byte_fallback", True, "false for a byte-level BPE")
    if model.get("ignore_merges", False):
        raise _refuse(source, "model.ignore_merges", True, "false (GPT-2 replays every merge)")
    vocab, specials = _vocab_with_added(data, source)
    try:
        return GPT2Tokenizer(vocab, model["merges"], specials)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None


# ====================================================================== SentencePiece BPE
class SentencePieceBPETokenizer(MergesTokenizer):
    r"""SentencePiece's BPE with byte fallback, as Llama 1 and 2 store it: eqs. (2)-(4).

    Parameters
    ----------
    vocab : mapping of str to int
        Token to id; the ids must be ``0 .. len(vocab) - 1``, each once. The byte tokens
        ``<0x00>`` .. ``<0xFF>`` should all be there (eq. (3)); a character that is neither a
        token nor spelled by byte tokens becomes ``unk_token``.
    merges : sequence of (str, str)
        The merges in rank order; both halves and their concatenation must be tokens.
    special_tokens : sequence of str, optional
        Tokens of ``vocab`` that are not text. The default is those of ``unk_token``,
        ``bos_token`` and ``eos_token`` that are in ``vocab``.
    unk_token, bos_token, eos_token : str
        Llama's ``<unk>``, ``<s>`` and ``</s>``.
    add_bos : bool
        Whether the model's own pipeline puts ``bos_token`` first (Llama's post-processor
        does). :attr:`bos_by_default` reports it; :meth:`encode` adds it only when asked.
    prepend : bool
        Put one ``▁`` in front of a non-empty text (eq. (2)). Decoding then drops the first
        space (eq. (4)).
    split_words : bool
        Cut the text before each ``▁`` so that merges never cross a word boundary (the older
        ``Metaspace`` pre-tokenizer with ``split: true``). Llama's current files do not split.

    Examples
    --------
    >>> tok = SentencePieceBPETokenizer.from_bytes_and_merges(
    ...     ["▁", "a", "b", "ab", "▁ab"], [("a", "b"), ("▁", "ab")])
    >>> ids = tok.encode("ab ab", add_bos=True)
    >>> [tok.token(i) for i in ids], tok.decode(ids, skip_special=True)
    (['<s>', '▁ab', '▁ab'], 'ab ab')
    """

    kind = "sentencepiece-bpe"

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[Sequence[str]],
                 special_tokens: Sequence[str] | None = None, *, unk_token: str = "<unk>",
                 bos_token: str = "<s>", eos_token: str = "</s>", add_bos: bool = True,
                 prepend: bool = True, split_words: bool = False) -> None:
        if special_tokens is None and isinstance(vocab, Mapping):
            special_tokens = [t for t in (unk_token, bos_token, eos_token) if t in vocab]
        super().__init__(vocab, merges, special_tokens or [])
        self.unk_token, self.bos_token, self.eos_token = unk_token, bos_token, eos_token
        self.bos_by_default = bool(add_bos) and bos_token in self.vocab
        self.prepend, self.split_words = bool(prepend), bool(split_words)
        # id of each byte token, where the vocabulary has it: eq. (3)
        self._byte_ids = {b: self.vocab.get(_byte_token(b)) for b in range(256)}
        self._id_bytes = {i: bytes([b]) for b, i in self._byte_ids.items() if i is not None}

    @classmethod
    def from_bytes_and_merges(cls, tokens: Sequence[str], merges: Sequence[Sequence[str]],
                              **options: Any) -> SentencePieceBPETokenizer:
        r"""A small tokenizer for examples: ``<unk> <s> </s>``, the 256 byte tokens, ``tokens``.

        Parameters
        ----------
        tokens : sequence of str
            The text tokens, in id order after the byte tokens.
        merges : sequence of (str, str)
        **options
            Passed on to the constructor.

        Examples
        --------
        >>> tok = SentencePieceBPETokenizer.from_bytes_and_merges(["▁", "x"], [])
        >>> tok.vocab_size, tok.encode("x"), tok.token(3)
        (261, [259, 260], '<0x00>')
        """
        names = ["<unk>", "<s>", "</s>", *(_byte_token(b) for b in range(256)), *tokens]
        return cls({t: i for i, t in enumerate(names)}, merges, **options)

    @classmethod
    def from_tokenizer_json(cls, path: str | os.PathLike[str], *,
                            config: Mapping[str, Any] | None = None
                            ) -> SentencePieceBPETokenizer:
        r"""Read a Llama-style ``tokenizer.json``.

        Two spellings of eq. (2) are accepted. The current one is a normalizer
        ``Prepend("▁")`` + ``Replace(" ", "▁")`` with no pre-tokenizer. The older one is no
        normalizer and a ``Metaspace`` pre-tokenizer, whose ``split`` sets ``split_words``.
        The model must be ``BPE`` with ``byte_fallback``. A ``TemplateProcessing``
        post-processor that starts with a special token sets ``bos_token`` and ``add_bos``.
        In ``config`` (``tokenizer_config.json``), ``bos_token``, ``eos_token``,
        ``unk_token`` and ``add_bos_token`` override the file.

        Parameters
        ----------
        path : str or path-like
        config : mapping, optional
            The folder's ``tokenizer_config.json``.

        Raises
        ------
        ValueError
            Naming the file and the stage that differs (Llama 3's ``Split`` pre-tokenizer,
            for one).

        Examples
        --------
        >>> import json, os, tempfile
        >>> tok = SentencePieceBPETokenizer.from_bytes_and_merges(["▁", "o", "k", "ok", "▁ok"],
        ...                                                       [("o", "k"), ("▁", "ok")])
        >>> data = {"normalizer": {"type": "Sequence", "normalizers": [
        ...             {"type": "Prepend", "prepend": "▁"},
        ...             {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        ...         "pre_tokenizer": None,
        ...         "post_processor": {"type": "TemplateProcessing", "single": [
        ...             {"SpecialToken": {"id": "<s>", "type_id": 0}},
        ...             {"Sequence": {"id": "A", "type_id": 0}}]},
        ...         "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
        ...                   "vocab": tok.vocab, "merges": [" ".join(m) for m in tok.merges]}}
        >>> path = os.path.join(tempfile.mkdtemp(), "tokenizer.json")
        >>> with open(path, "w", encoding="utf-8") as f:
        ...     json.dump(data, f)
        >>> again = SentencePieceBPETokenizer.from_tokenizer_json(path)
        >>> again.encode("ok ok") == tok.encode("ok ok"), again.bos_by_default
        (True, True)
        """
        return cls._from_data(read_tokenizer_json(path), str(path), config)

    @classmethod
    def _from_data(cls, data: dict[str, Any], source: str,
                   config: Mapping[str, Any] | None) -> SentencePieceBPETokenizer:
        """:meth:`from_tokenizer_json` on a file already read."""
        model = data["model"]
        if not model.get("byte_fallback", False):
            raise _refuse(source, "model.byte_fallback", model.get("byte_fallback"),
                          "true (SentencePiece's byte fallback)")
        normal = [n.get("type") for n in _types(data.get("normalizer"))]
        pre = _types(data.get("pre_tokenizer"))
        options: dict[str, Any] = {}
        if sorted(normal) == ["Prepend", "Replace"] and not pre:
            steps = {n["type"]: n for n in _types(data["normalizer"])}
            if steps["Prepend"].get("prepend") != SPACE_MARK or steps["Replace"].get(
                    "pattern") != {"String": " "} or steps["Replace"].get("content") != SPACE_MARK:
                raise _refuse(source, "normalizer", data["normalizer"],
                              'Prepend("▁") and Replace(" " -> "▁")')
        elif not normal and [p.get("type") for p in pre] == ["Metaspace"]:
            meta = pre[0]
            if meta.get("replacement", SPACE_MARK) != SPACE_MARK:
                raise _refuse(source, "pre_tokenizer.replacement", meta.get("replacement"),
                              '"▁"')
            scheme = meta.get("prepend_scheme",
                              "always" if meta.get("add_prefix_space", True) else "never")
            if scheme not in ("always", "first", "never"):
                raise _refuse(source, "pre_tokenizer.prepend_scheme", scheme,
                              '"always", "first" or "never"')
            options.update(prepend=scheme != "never", split_words=bool(meta.get("split", True)))
        else:
            raise _refuse(source, "normalizer / pre_tokenizer",
                          {"normalizer": data.get("normalizer"),
                           "pre_tokenizer": data.get("pre_tokenizer")},
                          'SentencePiece\'s: normalizer Prepend("▁") + Replace(" " -> "▁") '
                          "with no pre_tokenizer, or a Metaspace pre_tokenizer")
        if model.get("ignore_merges", False):
            raise _refuse(source, "model.ignore_merges", True, "false")
        vocab, specials = _vocab_with_added(data, source)
        # the byte tokens are text (eq. 3), even where a file lists them as special
        specials = [t for t in specials if not _BYTE_TOKEN.fullmatch(t)]
        if model.get("unk_token"):
            options["unk_token"] = model["unk_token"]
        options.update(_special_options(data, config, vocab, specials,
                                        ("bos_token", "eos_token", "unk_token")))
        try:
            return cls(vocab, model["merges"], specials, **options)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None

    # ------------------------------------------------------------ ids
    @property
    def unk_id(self) -> int | None:
        r"""Id of ``unk_token`` (Llama: ``<unk>``, 0).

        Examples
        --------
        >>> SentencePieceBPETokenizer.from_bytes_and_merges([], []).unk_id
        0
        """
        return self._special_ids.get(self.unk_token)

    @property
    def bos_id(self) -> int | None:
        r"""Id of ``bos_token`` (Llama: ``<s>``, 1).

        Examples
        --------
        >>> SentencePieceBPETokenizer.from_bytes_and_merges([], []).bos_id
        1
        """
        return self._special_ids.get(self.bos_token)

    @property
    def eos_id(self) -> int | None:
        r"""Id of ``eos_token`` (Llama: ``</s>``, 2).

        Examples
        --------
        >>> SentencePieceBPETokenizer.from_bytes_and_merges([], []).eos_id
        2
        """
        return self._special_ids.get(self.eos_token)

    def pieces(self, text: str) -> list[str]:
        r"""Eq. (2): spaces as ``▁``, one in front, cut before each ``▁`` if ``split_words``.

        Examples
        --------
        >>> tok = SentencePieceBPETokenizer.from_bytes_and_merges([], [])
        >>> tok.pieces("Hello world")
        ['▁Hello▁world']
        >>> SentencePieceBPETokenizer.from_bytes_and_merges([], [], split_words=True
        ...                                                 ).pieces("Hello  world")
        ['▁Hello', '▁', '▁world']
        """
        if not text:
            return []
        marked = (SPACE_MARK if self.prepend else "") + text.replace(" ", SPACE_MARK)
        if not self.split_words:
            return [marked]
        return [p for p in re.split(f"(?={SPACE_MARK})", marked) if p]

    def _symbols(self, piece: str) -> list[str]:
        """Eq. (3): a piece's characters, a missing one as its byte tokens (or ``<unk>``)."""
        out: list[str] = []
        for ch in piece:
            if ch in self.vocab:
                out.append(ch)
                continue
            spelled = [_byte_token(b) for b in ch.encode("utf-8")]
            if all(self._byte_ids[b] is not None for b in ch.encode("utf-8")):
                out.extend(spelled)
            elif out and out[-1] == self.unk_token:  # consecutive unknowns fuse into one
                continue
            else:
                out.append(self.unk_token)
        return out

    def _encode_text(self, text: str) -> list[int]:
        out: list[int] = []
        for piece in self.pieces(text):
            ids = self._cache.get(piece)
            if ids is None:
                symbols = self._symbols(piece)
                if self.unk_token not in self.vocab and self.unk_token in symbols:
                    bad = next(c for c in piece if c not in self.vocab)
                    raise ValueError(f"{bad!r} is neither a token nor spelled by byte tokens, "
                                     f"and the vocabulary has no {self.unk_token!r}")
                ids = [self.vocab[t] for t in replay_merges(symbols, self._ranks)]
                if len(self._cache) < 100_000:
                    self._cache[piece] = ids
            out.extend(ids)
        return out

    def _decode_run(self, ids: list[int]) -> str:
        """Eq. (4) without its last step: bytes of each token, ``▁`` read as a space.

        A run of byte tokens that is not valid UTF-8 gives one ``�`` per token, as Hugging
        Face's ``ByteFallback`` decoder does."""
        out: list[str] = []
        run: list[bytes] = []
        for i in [*ids, None]:
            b = self._id_bytes.get(i) if i is not None else None
            if b is not None:
                run.append(b)
                continue
            if run:
                try:
                    out.append(b"".join(run).decode("utf-8"))
                except UnicodeDecodeError:
                    out.append("\ufffd" * len(run))
                run = []
            if i is not None:
                out.append(self._tokens[i].replace(SPACE_MARK, " "))
        return "".join(out)

    def decode(self, ids: Any, *, skip_special: bool = False) -> str:
        r"""Decode ids, eq. (4): the space that eq. (2) put in front is dropped.

        As in Hugging Face's decoder (``Strip``), only a space that opens the whole text is
        dropped; a special token written first keeps the space after it.

        Examples
        --------
        >>> tok = SentencePieceBPETokenizer.from_bytes_and_merges(["▁", "a"], [])
        >>> tok.decode(tok.encode(" a€"))
        ' a€'
        >>> tok.decode([1, *tok.encode("a")]), tok.decode([1, *tok.encode("a")], skip_special=True)
        ('<s> a', 'a')
        """
        text = super().decode(ids, skip_special=skip_special)
        return text[1:] if self.prepend and text.startswith(" ") else text

    # ------------------------------------------------------------ our JSON files
    _options = ("unk_token", "bos_token", "eos_token", "add_bos", "prepend", "split_words")

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "unk_token": self.unk_token, "bos_token": self.bos_token,
                "eos_token": self.eos_token, "add_bos": self.bos_by_default,
                "prepend": self.prepend, "split_words": self.split_words}


# ====================================================================== other byte-level BPEs
_CLASS_CACHE: dict[str, str] = {}


def _category_class(name: str) -> str:
    r"""The body of a character class for ``\p{name}``: every code point whose Unicode general
    category starts with ``name`` (``L`` letters, ``N`` numbers, ``Lu`` upper-case letters)."""
    if name not in _CLASS_CACHE:
        if not re.fullmatch(r"[LMNPSZC][a-z]?", name):
            raise ValueError(f"\\p{{{name}}} is not a Unicode general category this reader "
                             "knows (L, N, Lu, Nd, ...)")
        _CLASS_CACHE[name] = _class_of(
            c for c in range(0x110000) if unicodedata.category(chr(c)).startswith(name))
    return _CLASS_CACHE[name]


def python_regex(pattern: str) -> re.Pattern[str]:
    r"""A ``tokenizers`` (Oniguruma) split pattern, written for Python's :mod:`re`.

    :mod:`re` has no ``\p{..}``, and its ``\s`` is a little wider than Unicode's White_Space
    set, which Oniguruma uses. So, as in :func:`~literate_tx.tokenizers.gpt2_split_regex`, the
    classes are spelled out: ``\p{L}`` becomes every code point of a category starting with
    ``L``, ``\s`` the 25 White_Space code points, ``\S`` and ``\P{..}`` their complements.
    Everything else (``(?i:..)``, ``{1,3}``, ``\r``, lookahead) means the same in both engines
    and is kept. A complement inside a bracket (``[\S..]``) and nested brackets are refused.

    Parameters
    ----------
    pattern : str

    Returns
    -------
    re.Pattern

    Raises
    ------
    ValueError
        Naming what cannot be translated.

    Examples
    --------
    >>> llama3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    ...           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
    >>> python_regex(llama3).findall("I'LL pay 12345 ½!")
    ['I', "'LL", ' pay', ' ', '123', '45', ' ', '½', '!']
    """
    space = _class_of(_WHITE_SPACE)
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            e = pattern[i + 1]
            if e in "pP":
                m = re.match(r"\{(\^?)(\w+)\}", pattern[i + 2:])
                if not m:
                    raise ValueError(f"pattern {pattern!r}: \\{e} at {i} needs a {{Category}}")
                body = _category_class(m.group(2))
                negate = (e == "P") != (m.group(1) == "^")
                i += 2 + m.end()
            elif e in "sS":
                body, negate = space, e == "S"
                i += 2
            else:
                out.append(pattern[i:i + 2])
                i += 2
                continue
            if in_class and negate:
                raise ValueError(f"pattern {pattern!r}: a complement (\\S, \\P) inside [...] "
                                 "is not translated")
            out.append(body if in_class else (f"[^{body}]" if negate else f"[{body}]"))
            continue
        if c == "[":
            if in_class:
                raise ValueError(f"pattern {pattern!r}: nested [...] is not translated")
            in_class = True
            out.append(c)
            if pattern[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            i += 1
            continue
        if c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as err:
        raise ValueError(f"pattern {pattern!r} does not compile in Python ({err})") from None


def _split_isolated(regex: re.Pattern[str], piece: str) -> list[str]:
    """``Split(behavior="Isolated")``: the matches and the text between them, in order."""
    out: list[str] = []
    pos = 0
    for m in regex.finditer(piece):
        if m.end() == m.start():
            continue
        if m.start() > pos:
            out.append(piece[pos:m.start()])
        out.append(m.group())
        pos = m.end()
    if pos < len(piece):
        out.append(piece[pos:])
    return out


_DIGITS: dict[bool, re.Pattern[str]] = {}


def _split_digits(piece: str, individual: bool) -> list[str]:
    """``Digits``: numbers (category N, Rust's ``is_numeric``) apart from the rest, one by one
    or as runs."""
    if individual not in _DIGITS:
        n = _category_class("N")
        _DIGITS[individual] = re.compile(f"[{n}]{'' if individual else '+'}|[^{n}]+")
    return _DIGITS[individual].findall(piece)


class ByteLevelBPETokenizer(GPT2Tokenizer):
    r"""A byte-level BPE whose text is cut by other splits than GPT-2's (Llama 3, SmolLM).

    GPT-2's algorithm (:class:`~literate_tx.tokenizers.GPT2Tokenizer`): pieces, their UTF-8
    bytes as :func:`~literate_tx.tokenizers.bytes_to_unicode` characters, then the merges. Only
    the cutting differs. ``pre_tokenizers`` lists the steps of ``tokenizer.json``'s
    pre-tokenizer, applied one after another to every piece:

    ``{"type": "Split", "pattern": {"Regex": P}, "behavior": "Isolated"}``
        cut at each match of ``P``, keeping the matches and the gaps (translated by
        :func:`python_regex`);
    ``{"type": "Digits", "individual_digits": b}``
        put numbers apart, each digit alone if ``b``;
    ``{"type": "ByteLevel", "use_regex": b}``
        last: cut with GPT-2's pattern if ``b``, then write the bytes as characters.

    With ``ignore_merges`` (Llama 3), a piece that is a token as a whole is that token, before
    any merge is tried.

    Parameters
    ----------
    vocab, merges, special_tokens
        As for :class:`~literate_tx.tokenizers.GPT2Tokenizer`.
    pre_tokenizers : sequence of dict
    ignore_merges : bool
    bos_token, eos_token : str, optional
        Their names (Llama 3: ``<|begin_of_text|>``, ``<|end_of_text|>``).
    add_bos : bool
        Whether the model's own pipeline puts ``bos_token`` first (:attr:`bos_by_default`).

    Examples
    --------
    >>> from literate_tx.tokenizers import BPETokenizer
    >>> gpt2 = GPT2Tokenizer.from_bpe(BPETokenizer.train("a1 a22 a333", 262, special_tokens=[]))
    >>> tok = ByteLevelBPETokenizer(gpt2.vocab, gpt2.merges, pre_tokenizers=[
    ...     {"type": "Digits", "individual_digits": True},
    ...     {"type": "ByteLevel", "use_regex": True}])
    >>> tok.pretokens("a1 a333"), gpt2.pretokens("a1 a333")
    (['a', '1', ' a', '3', '3', '3'], ['a', '1', ' a', '333'])
    """

    kind = "byte-level-bpe"

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[Sequence[str]],
                 special_tokens: Sequence[str] | None = None, *,
                 pre_tokenizers: Sequence[Mapping[str, Any]] = (
                     {"type": "ByteLevel", "use_regex": True},),
                 ignore_merges: bool = False, bos_token: str | None = None,
                 eos_token: str | None = None, add_bos: bool = False) -> None:
        super().__init__(vocab, merges, special_tokens)
        steps = [dict(step) for step in pre_tokenizers]
        self._steps = [self._compile(k, step) for k, step in enumerate(steps)]
        if not steps or steps[-1].get("type") != "ByteLevel":
            raise ValueError(f"pre_tokenizers={steps!r}: the last step must be ByteLevel (the "
                             "bytes written as characters)")
        self.pre_tokenizers = steps
        self.ignore_merges = bool(ignore_merges)
        for name, token in (("bos_token", bos_token), ("eos_token", eos_token)):
            if token is not None and token not in self._special_ids:
                raise ValueError(f"{name}={token!r} is not among the special tokens "
                                 f"{list(self.special_tokens)!r}")
        self.bos_token, self.eos_token = bos_token, eos_token
        self.bos_by_default = bool(add_bos) and bos_token is not None

    @staticmethod
    def _compile(k: int, step: dict[str, Any]):
        kind = step.get("type")
        if kind == "Split":
            pattern = step.get("pattern") or {}
            if step.get("behavior", "Isolated") != "Isolated" or step.get("invert", False):
                raise ValueError(f"pre_tokenizers[{k}]: Split with behavior="
                                 f"{step.get('behavior')!r}, invert={step.get('invert')!r}; "
                                 "supported: behavior 'Isolated', invert false")
            if "Regex" in pattern:
                regex = python_regex(pattern["Regex"])
            elif "String" in pattern:
                regex = re.compile(re.escape(pattern["String"]))
            else:
                raise ValueError(f"pre_tokenizers[{k}]: Split needs a pattern with 'Regex' or "
                                 f"'String', got {pattern!r}")
            return lambda piece: _split_isolated(regex, piece)
        if kind == "Digits":
            individual = bool(step.get("individual_digits", False))
            return lambda piece: _split_digits(piece, individual)
        if kind == "ByteLevel":
            if step.get("add_prefix_space", False):
                raise ValueError(f"pre_tokenizers[{k}]: ByteLevel with add_prefix_space; "
                                 "supported: add_prefix_space false")
            if not step.get("use_regex", True):
                return lambda piece: [piece]
            return lambda piece: gpt2_split_regex().findall(piece)
        raise ValueError(f"pre_tokenizers[{k}] has type {kind!r}; supported: 'Split', "
                         "'Digits', 'ByteLevel'")

    @classmethod
    def from_tokenizer_json(cls, path: str | os.PathLike[str], *,
                            config: Mapping[str, Any] | None = None) -> ByteLevelBPETokenizer:
        r"""Read a byte-level ``tokenizer.json`` whose pre-tokenizer ends with ``ByteLevel``.

        The post-processor's first special token (``TemplateProcessing``, alone or in a
        ``Sequence``) sets ``bos_token`` and ``add_bos``; ``config`` (the folder's
        ``tokenizer_config.json``) may override ``bos_token``, ``eos_token`` and
        ``add_bos_token``.

        Raises
        ------
        ValueError
            Naming the file and the stage this reader does not implement.

        Examples
        --------
        >>> import json, os, tempfile
        >>> from literate_tx.tokenizers import BPETokenizer
        >>> gpt2 = GPT2Tokenizer.from_bpe(BPETokenizer.train("ab ab", 260, special_tokens=[]))
        >>> data = {"normalizer": None, "model": {"type": "BPE", "vocab": gpt2.vocab,
        ...                                       "merges": gpt2.merges},
        ...         "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        ...             {"type": "Whitespace"}, {"type": "ByteLevel"}]}}
        >>> path = os.path.join(tempfile.mkdtemp(), "tokenizer.json")
        >>> with open(path, "w", encoding="utf-8") as f:
        ...     json.dump(data, f)
        >>> ByteLevelBPETokenizer.from_tokenizer_json(path)
        Traceback (most recent call last):
        ...
        ValueError: .../tokenizer.json: pre_tokenizers[0] has type 'Whitespace'; supported: ...
        """
        return cls._from_data(read_tokenizer_json(path), str(path), config)

    @classmethod
    def _from_data(cls, data: dict[str, Any], source: str,
                   config: Mapping[str, Any] | None) -> ByteLevelBPETokenizer:
        """:meth:`from_tokenizer_json` on a file already read."""
        model = data["model"]
        if data.get("normalizer") is not None:
            raise _refuse(source, "normalizer", data["normalizer"], "null")
        if model.get("byte_fallback", False):
            raise _refuse(source, "model.byte_fallback", True, "false for a byte-level BPE")
        vocab, specials = _vocab_with_added(data, source)
        options = _special_options(data, config, vocab, specials, ("bos_token", "eos_token"))
        try:
            return cls(vocab, model["merges"], specials,
                       pre_tokenizers=_types(data.get("pre_tokenizer")),
                       ignore_merges=bool(model.get("ignore_merges", False)), **options)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None

    def pretokens(self, text: str) -> list[str]:
        r"""Cut ``text`` with every step of :attr:`pre_tokenizers` in turn.

        Examples
        --------
        >>> from literate_tx.tokenizers import BPETokenizer
        >>> gpt2 = GPT2Tokenizer.from_bpe(BPETokenizer(special_tokens=[]))
        >>> ByteLevelBPETokenizer(gpt2.vocab, gpt2.merges, pre_tokenizers=[
        ...     {"type": "Split", "pattern": {"Regex": r"\p{N}{1,3}"}, "behavior": "Isolated"},
        ...     {"type": "ByteLevel", "use_regex": False}]).pretokens("x12345y")
        ['x', '123', '45', 'y']
        """
        pieces = [text] if text else []
        for step in self._steps:
            pieces = [p for piece in pieces for p in step(piece)]
        return pieces

    def _piece_tokens(self, chars: str) -> list[str]:
        if self.ignore_merges and chars in self.vocab:
            return [chars]
        return super()._piece_tokens(chars)

    @property
    def bos_id(self) -> int | None:
        r"""Id of ``bos_token`` (Llama 3: ``<|begin_of_text|>``), else as GPT-2.

        Examples
        --------
        >>> from literate_tx.tokenizers import BPETokenizer
        >>> gpt2 = GPT2Tokenizer.from_bpe(BPETokenizer(special_tokens=["<|begin_of_text|>"]))
        >>> ByteLevelBPETokenizer(gpt2.vocab, gpt2.merges, ["<|begin_of_text|>"],
        ...                       bos_token="<|begin_of_text|>").bos_id
        256
        """
        return self._special_ids[self.bos_token] if self.bos_token else super().bos_id

    @property
    def eos_id(self) -> int | None:
        r"""Id of ``eos_token``, else as GPT-2.

        Examples
        --------
        >>> from literate_tx.tokenizers import BPETokenizer
        >>> gpt2 = GPT2Tokenizer.from_bpe(BPETokenizer(special_tokens=["</s>"]))
        >>> ByteLevelBPETokenizer(gpt2.vocab, gpt2.merges, ["</s>"], eos_token="</s>").eos_id
        256
        """
        return self._special_ids[self.eos_token] if self.eos_token else super().eos_id

    _options = ("pre_tokenizers", "ignore_merges", "bos_token", "eos_token", "add_bos")

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "pre_tokenizers": self.pre_tokenizers,
                "ignore_merges": self.ignore_merges, "bos_token": self.bos_token,
                "eos_token": self.eos_token, "add_bos": self.bos_by_default}


def _is_gpt2s(data: dict[str, Any]) -> bool:
    """Whether a byte-level file is GPT-2's pipeline exactly (no other split, no <bos>)."""
    pre = _types(data.get("pre_tokenizer"))
    post = [p for p in _types(data.get("post_processor")) if p.get("type") == "TemplateProcessing"]
    single = post[0].get("single") if post else None
    return ([p.get("type") for p in pre] == ["ByteLevel"] and pre[0].get("use_regex", True)
            and not data["model"].get("ignore_merges", False)
            and not (single and "SpecialToken" in single[0]))


# ====================================================================== a folder
def load_hf_tokenizer(folder: str | os.PathLike[str]) -> Tokenizer:
    r"""The tokenizer of a Hugging Face model folder: GPT-2's or SentencePiece's BPE.

    The readers are tried in this order:

    1. ``vocab.json`` and ``merges.txt`` (GPT-2's own files), giving
       :meth:`GPT2Tokenizer.from_files <literate_tx.tokenizers.GPT2Tokenizer.from_files>`;
    2. ``tokenizer.json`` with GPT-2's pipeline exactly (what ``transformers`` 5 writes for
       GPT-2), giving :func:`gpt2_from_tokenizer_json`;
    3. ``tokenizer.json`` with another byte-level pipeline (Llama 3, SmolLM), giving
       :meth:`ByteLevelBPETokenizer.from_tokenizer_json`;
    4. any other ``tokenizer.json`` (Llama 1 and 2, TinyLlama), giving
       :meth:`SentencePieceBPETokenizer.from_tokenizer_json`, with the folder's
       ``tokenizer_config.json`` if present.

    A folder with only SentencePiece's binary ``tokenizer.model`` is refused by name. Reading
    it needs the ``sentencepiece`` package; ``transformers`` converts it once, with
    ``AutoTokenizer.from_pretrained(folder).save_pretrained(folder)``.

    Parameters
    ----------
    folder : str or path-like

    Returns
    -------
    Tokenizer

    Raises
    ------
    FileNotFoundError
        When the folder has none of these files.
    ValueError
        When a file is damaged or its pipeline is neither GPT-2's nor SentencePiece's.

    Examples
    --------
    >>> import tempfile
    >>> from literate_tx.tokenizers import BPETokenizer
    >>> folder = tempfile.mkdtemp()
    >>> GPT2Tokenizer.from_bpe(BPETokenizer.train("aaab", 260)).save_files(folder)
    >>> type(load_hf_tokenizer(folder)).__name__
    'GPT2Tokenizer'
    >>> load_hf_tokenizer(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: ... has no tokenizer files: neither vocab.json with merges.txt ...
    """
    folder = Path(folder)
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return GPT2Tokenizer.from_files(folder / "vocab.json", folder / "merges.txt")
    path = folder / "tokenizer.json"
    if not path.is_file():
        if (folder / "tokenizer.model").is_file():
            raise FileNotFoundError(
                f"{folder} has only tokenizer.model (SentencePiece's binary format), which is "
                "read here only as tokenizer.json; convert it once with transformers: "
                "AutoTokenizer.from_pretrained(folder).save_pretrained(folder)")
        raise FileNotFoundError(f"{folder} has no tokenizer files: neither vocab.json with "
                                "merges.txt (GPT-2) nor tokenizer.json")
    data = read_tokenizer_json(path)
    config = None
    config_path = folder / "tokenizer_config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{config_path}: not a JSON file ({err})") from None
        if not isinstance(config, dict):
            raise ValueError(f"{config_path}: expected a JSON object")
    source = str(path)
    if any(p.get("type") == "ByteLevel" for p in _types(data.get("pre_tokenizer"))):
        if _is_gpt2s(data):
            return _gpt2_from_data(data, source)
        return ByteLevelBPETokenizer._from_data(data, source, config)
    return SentencePieceBPETokenizer._from_data(data, source, config)

"""GPT-2's tokenizer from its own files: the split pattern, the byte table, the merges.

Three references: the ``regex`` package running GPT-2's pattern as GPT-2 wrote it (for the
split, on every assigned code point), :class:`~literate_tx.tokenizers.BPETokenizer` (for the
merges, on ASCII text where the two splits agree), and ``transformers``' GPT-2 tokenizer over a
vocabulary trained by Hugging Face's ``tokenizers`` (for the ids, on a few hundred varied
strings). The last two need the ``hf`` extra and are skipped without it.
"""

from __future__ import annotations

import json
import random
import sys
import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from literate_tx.tokenizers import (
    GPT2_PATTERN,
    BPETokenizer,
    GPT2Tokenizer,
    Tokenizer,
    bytes_to_unicode,
    gpt2_split_regex,
)

ASSIGNED = st.characters(exclude_categories=("Cn", "Cs"))

#: strings meant to reach every branch of the pattern and every kind of character
CURATED = [
    "", " ", "  ", "\n", " \n ", "\t\tx", "Hello, world!", "  leading and trailing  ",
    "I'm, you're, he's, we've, they'll, I'd, can't", "'S 'LL 'Ve", "''s", "don't'", "a'b",
    "3.14159 is pi; 1,000,000 and 2024-12-04", "x2 y22 z222", "½ ¾ ² ³ Ⅻ ⅷ ٣٤ ४२",
    "naïve café déjà vu", "Straße größer", "Ελληνικά λέξεις", "Русский текст", "עברית",
    "العربية", "हिन्दी", "中文字符和标点。", "日本語のテキスト", "한국어", "emoji 😀🎉 👩‍👩‍👧",
    "e\u0301 combining", "non\u00a0breaking", "em\u2003space", "line\u2028sep",
    "tab\tsep", "\x00\x01\x7f control", "\x1c\x1d\x1e\x1f file separators",
    "a\u200bzero width", "__init__ and self._x", "#!/usr/bin/env python", "C++ & C#",
    "https://example.com/a?b=c&d=e", "   \n\n   \n", "!!!???...", "$100 €20 £5 ¥3",
    "mixed123abc456", "ALL CAPS SHOUTING", "\ufeffbom", "\U0001d400 math bold",
]


def _random_strings(n: int, seed: int = 0) -> list[str]:
    """Varied strings from pieces that stress the pattern: words, digits, spaces, marks."""
    rng = random.Random(seed)
    pieces = ["the", " cat", "'s", "'ll", "'d", " ", "  ", "\n", "\t", "123", " 45", "!",
              "?!", "...", "é", "ß", "中", "文", "😀", "\u00a0", "\u2003", "½", "٣", "\u0301",
              "Alice", " Rabbit", "-", "_", "\x1f", "'", "ıi", "ǅ", "ᾼ", "Ⅻ", "\r\n"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(n)]


# ======================================================================= the split pattern
def test_split_matches_gpt2s_pattern_on_every_assigned_code_point():
    regex = pytest.importorskip("regex")
    reference = regex.compile(GPT2_PATTERN)
    chars = [chr(c) for c in range(sys.maxunicode + 1)
             if unicodedata.category(chr(c)) not in ("Cn", "Cs")]
    ours = gpt2_split_regex()
    for joiner in ("", " 1\x1c"):
        text = joiner.join(chars)
        assert ours.findall(text) == reference.findall(text), repr(joiner)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.one_of(ASSIGNED, st.sampled_from(" \t\n'sltdvrem0\u00a0")),
               max_size=40))
def test_split_matches_gpt2s_pattern_on_any_text(text):
    regex = pytest.importorskip("regex")
    assert gpt2_split_regex().findall(text) == regex.findall(GPT2_PATTERN, text)


def test_split_covers_the_text():
    for text in CURATED + _random_strings(100):
        assert "".join(gpt2_split_regex().findall(text)) == text


# ======================================================================= bytes and merges
def test_bytes_to_unicode_is_gpt2s_table():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert (table[0], table[ord(" ")], table[ord("\n")], table[0x7F], table[0xAD]) == (
        "Ā", "Ġ", "Ċ", "ġ", "Ń")
    assert all(table[b] == chr(b) for b in range(ord("!"), ord("~") + 1))


@pytest.fixture(scope="module")
def alice_bpe():
    from importlib.resources import files

    text = (files("literate_tx.data") / "alice.txt").read_text(encoding="utf-8")[:20000]
    return BPETokenizer.train(text, vocab_size=420, special_tokens=["<|endoftext|>"])


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_gpt2_files_encode_like_the_bpe_they_came_from(alice_bpe, text):
    tok = GPT2Tokenizer.from_bpe(alice_bpe)
    assert tok.encode(text) == alice_bpe.encode(text)
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=ASSIGNED, max_size=40))
def test_round_trip_on_any_text(alice_bpe, text):
    tok = GPT2Tokenizer.from_bpe(alice_bpe)
    assert tok.decode(tok.encode(text)) == text


def test_files_and_json_round_trip(alice_bpe, tmp_path):
    tok = GPT2Tokenizer.from_bpe(alice_bpe)
    tok.save_files(tmp_path)
    again = GPT2Tokenizer.from_folder(tmp_path)
    assert (again.vocab, again.merges, again.special_tokens) == (
        tok.vocab, tok.merges, tok.special_tokens)
    tok.save(tmp_path / "tok.json")
    loaded = Tokenizer.load(tmp_path / "tok.json")
    assert isinstance(loaded, GPT2Tokenizer)
    text = "Alice's 3 rabbits\n"
    assert loaded.encode(text) == tok.encode(text)
    assert tok.eos_id == tok.bos_id == tok.vocab["<|endoftext|>"]
    assert tok.encode(text, add_bos=True, add_eos=True)[::len(tok.encode(text)) + 1] == [
        tok.eos_id, tok.eos_id]
    assert tok.decode([tok.eos_id]) == "<|endoftext|>"
    assert tok.decode([tok.eos_id], skip_special=True) == ""


def test_bad_files_are_named(alice_bpe, tmp_path):
    tok = GPT2Tokenizer.from_bpe(alice_bpe)
    tok.save_files(tmp_path)
    merges = (tmp_path / "merges.txt").read_text(encoding="utf-8")
    (tmp_path / "merges.txt").write_text(merges + "a b c\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges.txt: line \d+ is 'a b c'"):
        GPT2Tokenizer.from_folder(tmp_path)
    (tmp_path / "merges.txt").write_text(merges + "zz q\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges.txt: merges\[\d+\]=\['zz', 'q'\]: 'zz' is not"):
        GPT2Tokenizer.from_folder(tmp_path)
    without_space = {t: i for i, t in enumerate(t for t in tok.vocab if t != "Ġ")}
    with pytest.raises(ValueError, match="256 byte tokens, e.g. 'Ġ'"):
        GPT2Tokenizer(without_space, [])
    with pytest.raises(ValueError, match="each once"):
        GPT2Tokenizer({**tok.vocab, "extra": 0}, [])
    with pytest.raises(ValueError, match="special token '<x>' is not in vocab"):
        GPT2Tokenizer(tok.vocab, tok.merges, ["<x>"])
    with pytest.raises(ValueError, match="pretokenize=False"):
        GPT2Tokenizer.from_bpe(BPETokenizer(pretokenize=False))
    with pytest.raises(FileNotFoundError, match="vocab.json and merges.txt"):
        GPT2Tokenizer.from_folder(tmp_path / "nowhere")


# ======================================================================= against transformers
@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    """A byte-level BPE trained by Hugging Face ``tokenizers``, read by both sides."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from importlib.resources import files

    text = (files("literate_tx.data") / "alice.txt").read_text(encoding="utf-8")
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator([text, *CURATED], vocab_size=900, min_frequency=2,
                                special_tokens=["<|endoftext|>"], show_progress=False)
    folder = tmp_path_factory.mktemp("gpt2tok")
    trainer.save_model(str(folder))
    assert len(json.loads((folder / "vocab.json").read_text(encoding="utf-8"))) == 900
    return transformers.GPT2Tokenizer.from_pretrained(folder), GPT2Tokenizer.from_folder(folder)


STRINGS = CURATED + _random_strings(300, seed=1)


def test_same_ids_as_transformers(hf_pair):
    theirs, ours = hf_pair
    assert ours.vocab_size == len(theirs)
    for text in STRINGS:
        ids = ours.encode(text)
        assert ids == theirs.encode(text), repr(text)
        assert ours.decode(ids) == theirs.decode(ids, clean_up_tokenization_spaces=False)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.one_of(ASSIGNED, st.sampled_from(" \n'sl0")), max_size=30))
def test_same_ids_as_transformers_on_any_text(hf_pair, text):
    # transformers reads a special token's name inside a text as that token; we read it as text
    assume("<|endoftext|>" not in text)
    theirs, ours = hf_pair
    assert ours.encode(text) == theirs.encode(text)

"""Tests for literate_tx.tokenizers: round trips, vocabulary bounds, files, errors."""

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from literate_tx.tokenizers import (
    GPT2_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    Merge,
    Tokenizer,
    WordTokenizer,
)

TRAIN_TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom,\n"
    "it was the age of foolishness, it was the epoch of belief, it was the epoch of\n"
    "incredulity, it was the season of Light, it was the season of Darkness.\n"
)

any_text = st.text(max_size=60)


# ---------------------------------------------------------------- round trips
@given(st.text(alphabet=sorted(set(TRAIN_TEXT)), max_size=80))
def test_char_round_trip_on_training_alphabet(text):
    tok = CharTokenizer.train(TRAIN_TEXT)
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == text


WORDS = sorted({p for p in WordTokenizer.split(TRAIN_TEXT) if not p.isspace()})


@given(st.lists(st.sampled_from(WORDS), max_size=30))
def test_word_round_trip_on_training_pieces(pieces):
    tok = WordTokenizer.train(TRAIN_TEXT)
    text = " ".join(pieces)  # joined by a piece in the vocabulary
    ids = tok.encode(text)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == text


@given(any_text)
def test_word_split_covers_every_character(text):
    assert "".join(WordTokenizer.split(text)) == text


@given(any_text)
def test_gpt2_pattern_covers_every_character(text):
    assert "".join(re.findall(GPT2_SPLIT_PATTERN, text)) == text


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(TRAIN_TEXT * 3, vocab_size=330)


@given(any_text)
def test_bpe_round_trip_on_any_text(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@given(any_text)
def test_bpe_round_trip_without_pretokenization(text):
    tok = BPETokenizer.train(TRAIN_TEXT, vocab_size=300, pretokenize=False)
    assert tok.decode(tok.encode(text)) == text


def test_bpe_encoding_of_training_text_is_shorter(bpe):
    assert len(bpe.encode(TRAIN_TEXT)) < len(TRAIN_TEXT.encode("utf-8")) / 2


# ------------------------------------------------------------------ BPE sizes
@given(text=any_text, extra=st.integers(min_value=0, max_value=40))
def test_bpe_vocab_never_exceeds_request(text, extra):
    vocab_size = 256 + 4 + extra
    tok = BPETokenizer.train(text, vocab_size=vocab_size)
    assert tok.vocab_size <= vocab_size
    assert tok.decode(tok.encode(text)) == text


def test_bpe_reaches_request_exactly_when_pairs_remain():
    tok = BPETokenizer.train(TRAIN_TEXT, vocab_size=300)
    assert tok.vocab_size == 300
    assert len(tok.merges) == 300 - 256 - 4


def test_bpe_stops_early_when_no_pair_remains():
    tok = BPETokenizer.train("ab", vocab_size=400, special_tokens=[])
    assert tok.merges == [Merge(97, 98, 256, 1)]
    assert tok.encode("ab") == [256]


def test_bpe_merges_are_most_frequent_first():
    tok = BPETokenizer.train(TRAIN_TEXT * 2, vocab_size=290)
    counts = [m.count for m in tok.merges]
    # Counts of later merges never exceed the first (the most frequent pair).
    assert max(counts) == counts[0]
    assert all(m.new_id == 256 + k for k, m in enumerate(tok.merges))


def test_bpe_training_gives_the_merges_worked_out_by_hand():
    """The classic example "aaabdaaabac" (a=97, b=98, c=99, d=100), merged by hand.

    Step by step, counting adjacent pairs (overlapping ones too) and breaking ties towards the
    smallest ids, as the module docstring says:

    1. aa occurs 4 times (twice in each "aaa")    -> Z=256:  Z a b d Z a b a c
    2. Za and ab occur twice; ab has smaller ids   -> Y=257:  Z Y d Z Y a c
    3. ZY twice                                    -> X=258:  X d X a c
    4. all pairs once; ac=(97, 99) is the smallest -> W=259:  X d X W
    5. dX=(100, 258) is the smallest               -> V=260:  X V W
    6. XV=(258, 260)                               -> U=261:  U W
    7. UW=(261, 259)                               -> 262: one token, and no pair remains.
    """
    tok = BPETokenizer.train("aaabdaaabac", vocab_size=256 + 20, special_tokens=[])
    assert [tuple(m) for m in tok.merges] == [
        (97, 97, 256, 4),
        (97, 98, 257, 2),
        (256, 257, 258, 2),
        (97, 99, 259, 1),
        (100, 258, 260, 1),
        (258, 260, 261, 1),
        (261, 259, 262, 1),
    ]
    assert tok.encode("aaabdaaabac") == [262]


def test_bpe_pairs_never_cross_pretokens():
    """"ab ab" is cut into "ab" and " ab": ab twice, then " " + ab once; never "b ", which
    would join the two pieces."""
    tok = BPETokenizer.train("ab ab", vocab_size=256 + 20, special_tokens=[])
    assert [tuple(m) for m in tok.merges] == [(97, 98, 256, 2), (32, 256, 257, 1)]
    assert tok.encode("ab ab") == [256, 257]


def test_bpe_special_ids_come_last(bpe):
    assert bpe.special_id("<pad>") == 256 + len(bpe.merges)
    assert bpe.eos_id == bpe.vocab_size - 1


def test_bpe_explain_ends_with_encoding(bpe):
    text = "the worst of times"
    last = bpe.explain(text).splitlines()[-1]
    assert last.endswith(bpe._show(bpe.encode(text)))


def test_bpe_decode_of_split_character_is_replaced():
    tok = BPETokenizer(special_tokens=[])
    ids = tok.encode("é")
    assert len(ids) == 2
    assert tok.decode(ids[:1]) == "\ufffd"


# ------------------------------------------------------------ special tokens
def test_unknown_characters_map_to_unk():
    tok = CharTokenizer.train("abc")
    assert tok.encode("axb") == [4, tok.unk_id, 5]
    assert tok.decode(tok.encode("axb")) == "a<unk>b"


def test_unknown_without_unk_token_raises():
    tok = CharTokenizer.train("abc", special_tokens=["<pad>"])
    with pytest.raises(ValueError, match="'x' is not in the vocabulary"):
        tok.encode("x")


def test_add_bos_eos_and_skip_special():
    tok = WordTokenizer.train("hello world")
    ids = tok.encode("hello world", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id
    assert ids[-1] == tok.eos_id
    assert tok.decode(ids) == "<bos>hello world<eos>"
    assert tok.decode(ids, skip_special=True) == "hello world"


def test_custom_special_tokens():
    tok = CharTokenizer.train("ab", special_tokens=["<|endoftext|>"])
    assert tok.special_id("<|endoftext|>") == 0
    assert tok.pad_id is None
    assert tok.unk_id is None
    with pytest.raises(ValueError, match="add_bos=True, but this tokenizer has no beginning"):
        tok.encode("a", add_bos=True)
    with pytest.raises(ValueError, match="add_eos=True, but this tokenizer has no end"):
        tok.encode("a", add_eos=True)
    with pytest.raises(ValueError, match="not a special token"):
        tok.special_id("<bos>")


def test_special_token_text_is_plain_text():
    tok = CharTokenizer.train("<pad>")
    assert tok.encode("<pad>") != [tok.pad_id]


# -------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: BPETokenizer.train("abc", vocab_size=100), "vocab_size=100 is too small"),
        (lambda: CharTokenizer.train("a", special_tokens=["<a>", "<a>"]), "duplicates"),
        (lambda: CharTokenizer(["ab"]), "not a single character"),
        (lambda: WordTokenizer.train("a", max_vocab=0), "max_vocab=0"),
        (lambda: BPETokenizer([(300, 1, 1)]), r"merges\[0\].left=300"),
        (lambda: CharTokenizer.train("a").decode([99]), r"ids\[0\]=99 is out of range"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_type_errors():
    with pytest.raises(TypeError, match="text must be a str"):
        CharTokenizer.train("a").encode(b"a")
    with pytest.raises(TypeError, match="ids must be integers"):
        CharTokenizer.train("a").decode([1.5])
    with pytest.raises(TypeError, match="single string"):
        CharTokenizer.train("a", special_tokens="<pad>")


# ------------------------------------------------------------------ save/load
tokenizer_factories = {
    "char": lambda: CharTokenizer.train(TRAIN_TEXT),
    "word": lambda: WordTokenizer.train(TRAIN_TEXT, max_vocab=20),
    "bpe": lambda: BPETokenizer.train(TRAIN_TEXT, vocab_size=290, pretokenize=True),
}


@pytest.mark.parametrize("kind", sorted(tokenizer_factories))
def test_save_load_round_trip(tmp_path, kind):
    tok = tokenizer_factories[kind]()
    path = tmp_path / f"{kind}.json"
    tok.save(path)
    loaded = Tokenizer.load(path)
    assert type(loaded) is type(tok)
    assert loaded.to_dict() == tok.to_dict()
    assert loaded.encode(TRAIN_TEXT) == tok.encode(TRAIN_TEXT)
    assert type(tok).load(path).vocab_size == tok.vocab_size
    assert [p.name for p in tmp_path.iterdir()] == [f"{kind}.json"]  # no temp file left


@given(st.text(max_size=40), st.integers(min_value=0, max_value=20))
def test_bpe_save_load_round_trip_property(tmp_path_factory, text, extra):
    tok = BPETokenizer.train(text, vocab_size=260 + extra)
    path = tmp_path_factory.mktemp("bpe") / "tok.json"
    tok.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == tok.merges
    assert loaded.encode(text) == tok.encode(text)


def test_load_wrong_kind(tmp_path):
    path = tmp_path / "char.json"
    CharTokenizer.train("ab").save(path)
    with pytest.raises(ValueError, match="holds a 'char' tokenizer, not a 'bpe' one"):
        BPETokenizer.load(path)


def _valid(kind):
    return tokenizer_factories[kind]().to_dict()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({**_valid("char"), "format": "other"}), "field 'format'"),
        (json.dumps({**_valid("char"), "version": 99}), "field 'version' is 99"),
        (json.dumps({**_valid("char"), "type": "sentencepiece"}), "field 'type'"),
        (json.dumps({**_valid("char"), "vocab": ["ab"]}), "single characters"),
        (json.dumps({**_valid("word"), "vocab": "abc"}), "field 'vocab'"),
        (json.dumps({**_valid("word"), "special_tokens": [1]}), "field 'special_tokens'"),
        (json.dumps({**_valid("bpe"), "merges": [[1, 2]]}), r"merges\[0\]"),
        (json.dumps({**_valid("bpe"), "merges": [[1, 999, 3]]}), r"merges\[0\].right=999"),
        (json.dumps({**_valid("bpe"), "pretokenize": "yes"}), "field 'pretokenize'"),
    ],
)
def test_bad_file_raises_value_error(tmp_path, content, message):
    path = tmp_path / "tok.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        Tokenizer.load(path)
    assert "tok.json" in str(info.value)


@given(st.binary(max_size=40))
def test_random_bytes_give_value_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("junk") / "tok.json"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="tok.json"):
        Tokenizer.load(path)


# ---------------------------------------------------------------- train_tokenizer (issue 18)
def _cut_at_safe_places(text, cuts):
    """Pieces of ``text`` cut only where a non-space is followed by a space."""
    safe = [i for i in range(1, len(text)) if text[i].isspace() and not text[i - 1].isspace()]
    chosen = sorted({safe[c % len(safe)] for c in cuts}) if safe else []
    return [text[a:b] for a, b in zip([0, *chosen], [*chosen, len(text)], strict=True)]


@given(text=st.text(alphabet=st.sampled_from("ab c\n.,'xé"), min_size=1, max_size=80),
       cuts=st.lists(st.integers(0, 100), max_size=5), extra=st.integers(0, 20))
def test_train_tokenizer_on_chunks_equals_train_on_the_whole(text, cuts, extra):
    from literate_tx.tokenizers import train_tokenizer

    chunks = _cut_at_safe_places(text, cuts)
    assert "".join(chunks) == text
    assert train_tokenizer("char", chunks).to_dict() == CharTokenizer.train(text).to_dict()
    assert (train_tokenizer("word", chunks, vocab_size=4 + 1 + extra).to_dict()
            == WordTokenizer.train(text, max_vocab=1 + extra).to_dict())
    assert (train_tokenizer("bpe", chunks, vocab_size=260 + extra).to_dict()
            == BPETokenizer.train(text, vocab_size=260 + extra).to_dict())


@pytest.mark.parametrize(
    ("kind", "vocab_size", "message"),
    [
        ("char", 10, "vocab_size=10 is not allowed for kind='char'"),
        ("word", 4, "vocab_size=4 is too small for kind='word'"),
        ("bpe", None, "vocab_size=None is not allowed for kind='bpe'"),
        ("bpe", 259, "vocab_size=259 is not allowed for kind='bpe'; give an int >= 260"),
        ("sentencepiece", None, "kind='sentencepiece' is not allowed"),
        ("word", 0, "vocab_size=0 is not allowed"),
    ],
)
def test_train_tokenizer_errors(kind, vocab_size, message):
    from literate_tx.tokenizers import train_tokenizer

    with pytest.raises(ValueError, match=re.escape(message)):
        train_tokenizer(kind, ["some text"], vocab_size=vocab_size)

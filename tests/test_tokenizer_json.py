"""Hugging Face's ``tokenizer.json``: SentencePiece BPE (Llama) and GPT-2, read in pure Python.

The first half needs nothing but the package: ids worked out by hand, the byte fallback, the
round trip, the refusals and ``literate-tx generate --hf`` on a Llama folder. The second half
(``nox -s hf``) trains tokenizers with Hugging Face's ``tokenizers``, saves them with
``transformers`` and checks that the ids and texts are the same on a few hundred varied strings
and on hypothesis' text.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_tokenizers_gpt2 import CURATED, _random_strings

from literate_tx.tokenizer_json import (
    SPACE_MARK,
    ByteLevelBPETokenizer,
    SentencePieceBPETokenizer,
    _split_digits,
    gpt2_from_tokenizer_json,
    load_hf_tokenizer,
    python_regex,
    read_tokenizer_json,
)
from literate_tx.tokenizers import BPETokenizer, GPT2Tokenizer, Tokenizer

# every assigned code point but the space mark itself, which eq. (2) reads as a space
TEXT = st.characters(exclude_categories=("Cn", "Cs"), exclude_characters=SPACE_MARK)

LLAMA_NORMALIZER = {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": SPACE_MARK},
    {"type": "Replace", "pattern": {"String": " "}, "content": SPACE_MARK}]}
LLAMA_POST = {"type": "TemplateProcessing", "single": [
    {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]}


def _small() -> SentencePieceBPETokenizer:
    """``<unk> <s> </s>``, the 256 byte tokens (ids 3..258), then 259 ▁, 260 h, 261 i, 262 t,
    263 hi, 264 ▁hi, 265 ▁t."""
    return SentencePieceBPETokenizer.from_bytes_and_merges(
        [SPACE_MARK, "h", "i", "t", "hi", SPACE_MARK + "hi", SPACE_MARK + "t"],
        [("h", "i"), (SPACE_MARK, "hi"), (SPACE_MARK, "t")])


def _write(folder, data, config=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _llama_json(tok: SentencePieceBPETokenizer, **changes) -> dict:
    data = {"added_tokens": [{"id": tok.vocab[t], "content": t, "special": True}
                             for t in ("<unk>", "<s>", "</s>")],
            "normalizer": LLAMA_NORMALIZER, "pre_tokenizer": None,
            "post_processor": LLAMA_POST, "decoder": {"type": "Sequence", "decoders": []},
            "model": {"type": "BPE", "byte_fallback": True, "fuse_unk": True,
                      "unk_token": "<unk>", "vocab": tok.vocab,
                      "merges": [list(m) for m in tok.merges]}}
    data.update(changes)
    return data


# ======================================================================= by hand
def test_ids_worked_out_by_hand():
    tok = _small()
    # "hi thi" -> "▁hi▁thi" -> ▁ h i ▁ t h i -> (h,i): ▁ hi ▁ t hi -> (▁,hi): ▁hi ▁ t hi
    # -> (▁,t): ▁hi ▁t hi
    assert tok.encode("hi thi") == [264, 265, 263]
    # "h€" -> ▁ h <0xE2> <0x82> <0xAC>: € is not a token, so its three UTF-8 bytes (eq. 3)
    assert tok.encode("h€") == [259, 260, 3 + 0xE2, 3 + 0x82, 3 + 0xAC]
    assert tok.decode([264, 265, 263]) == "hi thi"
    assert tok.encode("") == []
    assert tok.decode([]) == ""
    assert tok.encode("hi", add_bos=True, add_eos=True) == [1, 264, 2]
    assert (tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2)


def test_decoding_drops_only_the_space_that_opens_the_text():
    tok = _small()
    assert tok.decode(tok.encode("  hi ")) == "  hi "
    assert tok.decode([264]) == "hi"  # alone, "▁hi" opens the text
    assert tok.decode([1, 264]) == "<s> hi"  # as Hugging Face's Strip: after <s> it stays
    assert tok.decode([1, 264], skip_special=True) == "hi"
    # an incomplete UTF-8 sequence: one replacement character per byte token
    assert tok.decode([3 + 0xE2, 3 + 0x82]) == "\ufffd\ufffd"


def test_split_words_keeps_merges_inside_words():
    vocab_tokens = [SPACE_MARK, "a", "b", "a" + SPACE_MARK, "a" + SPACE_MARK + "b"]
    merges = [("a", SPACE_MARK), ("a" + SPACE_MARK, "b")]
    joined = SentencePieceBPETokenizer.from_bytes_and_merges(vocab_tokens, merges)
    split = SentencePieceBPETokenizer.from_bytes_and_merges(vocab_tokens, merges,
                                                            split_words=True)
    assert [joined.token(i) for i in joined.encode("a b")] == [SPACE_MARK, "a▁b"]
    assert [split.token(i) for i in split.encode("a b")] == ["▁", "a", "▁", "b"]
    assert split.decode(split.encode("a b")) == "a b"


def test_no_byte_tokens_means_unknown_and_fused():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, SPACE_MARK: 3, "a": 4}
    tok = SentencePieceBPETokenizer(vocab, [])
    assert tok.encode("a€€a") == [3, 4, 0, 4]  # two unknown characters, one <unk>
    no_unk = SentencePieceBPETokenizer({SPACE_MARK: 0, "a": 1}, [])
    with pytest.raises(ValueError, match="'€' is neither a token nor spelled by byte tokens"):
        no_unk.encode("a€")


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.one_of(TEXT, st.sampled_from(" hit")), max_size=40))
def test_round_trip_on_any_text(text):
    tok = _small()
    assert tok.decode(tok.encode(text)) == text


def test_saved_and_loaded_like_every_tokenizer(tmp_path):
    tok = _small()
    tok.save(tmp_path / "tok.json")
    again = Tokenizer.load(tmp_path / "tok.json")
    assert type(again) is SentencePieceBPETokenizer
    assert again.to_dict() == tok.to_dict()
    assert again.encode("hi t€") == tok.encode("hi t€")
    assert again.bos_by_default


# ======================================================================= files
def test_tokenizer_json_with_the_current_and_the_older_spelling(tmp_path):
    tok = _small()
    current = SentencePieceBPETokenizer.from_tokenizer_json(
        _write(tmp_path / "a", _llama_json(tok)) / "tokenizer.json")
    assert current.encode("hi thi") == tok.encode("hi thi")
    assert current.bos_by_default
    # older files: merges as "a b" strings, Metaspace, no post-processor
    older = _llama_json(tok, normalizer=None, post_processor=None,
                        pre_tokenizer={"type": "Metaspace", "replacement": SPACE_MARK,
                                       "prepend_scheme": "first", "split": False})
    older["model"]["merges"] = [" ".join(m) for m in tok.merges]
    read = load_hf_tokenizer(_write(tmp_path / "b", older, {"add_bos_token": True}))
    assert isinstance(read, SentencePieceBPETokenizer)
    assert read.encode("hi thi") == tok.encode("hi thi")
    assert read.bos_by_default
    never = load_hf_tokenizer(_write(tmp_path / "c", older, {"add_bos_token": False,
                                                            "bos_token": {"content": "</s>"}}))
    assert not never.bos_by_default
    assert never.bos_id == 2


def test_byte_tokens_are_never_special_even_when_listed_so(tmp_path):
    tok = _small()
    data = _llama_json(tok)
    data["added_tokens"] += [{"id": 3 + b, "content": f"<0x{b:02X}>", "special": True}
                             for b in range(256)]
    read = load_hf_tokenizer(_write(tmp_path, data))
    assert read.special_tokens == ("<unk>", "<s>", "</s>")
    assert read.decode(read.encode("t€")) == "t€"


@pytest.mark.parametrize(("change", "message"), [
    ({"model": {"type": "WordPiece", "vocab": {}}}, 'model.type is "WordPiece"'),
    ({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Isolated"}]}},
     "normalizer / pre_tokenizer is"),
    ({"normalizer": {"type": "NFKC"}}, "normalizer / pre_tokenizer is"),
    ({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": False}},
     "model.byte_fallback is false"),
    ({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}},
     r"model.merges\[0\] is 'a'"),
    ({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": True,
                "dropout": 0.1}}, "model.dropout is 0.1"),
    ({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": [],
                "byte_fallback": True}}, r"vocab\['b'\]=0"),
])
def test_unsupported_files_are_named(tmp_path, change, message):
    data = _llama_json(_small(), **change)
    path = _write(tmp_path, data) / "tokenizer.json"
    with pytest.raises(ValueError, match=message) as err:
        load_hf_tokenizer(tmp_path)
    assert str(path) in str(err.value)


def test_damaged_and_missing_files(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="tokenizer.json: not a JSON file"):
        read_tokenizer_json(tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="neither vocab.json with merges.txt"):
        load_hf_tokenizer(tmp_path)
    (tmp_path / "tokenizer.model").write_bytes(b"\x00")
    with pytest.raises(FileNotFoundError, match="only tokenizer.model"):
        load_hf_tokenizer(tmp_path)


def test_gpt2_from_its_tokenizer_json_equals_its_own_files(tmp_path):
    from importlib.resources import files

    text = (files("literate_tx.data") / "alice.txt").read_text(encoding="utf-8")[:20000]
    gpt2 = GPT2Tokenizer.from_bpe(BPETokenizer.train(text, 400,
                                                     special_tokens=["<|endoftext|>"]))
    data = {"added_tokens": [{"id": gpt2.vocab["<|endoftext|>"], "content": "<|endoftext|>",
                              "special": True}],
            "normalizer": None, "decoder": {"type": "ByteLevel"},
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                              "use_regex": True},
            "model": {"type": "BPE", "vocab": gpt2.vocab, "merges": gpt2.merges}}
    _write(tmp_path, data)
    for read in (load_hf_tokenizer(tmp_path), GPT2Tokenizer.from_folder(tmp_path),
                 gpt2_from_tokenizer_json(tmp_path / "tokenizer.json")):
        assert isinstance(read, GPT2Tokenizer)
        assert read.special_tokens == ("<|endoftext|>",)
        for s in CURATED:
            assert read.encode(s) == gpt2.encode(s), repr(s)
    data["pre_tokenizer"]["add_prefix_space"] = True
    _write(tmp_path, data)
    with pytest.raises(ValueError, match="pre_tokenizer is .*supported: GPT-2's"):
        load_hf_tokenizer(tmp_path)


# ======================================================================= the command
def test_generate_hf_on_a_llama_folder(tmp_path):
    """``literate-tx generate --hf`` on a Llama folder with only ``tokenizer.json``: the
    prompt gets ``<s>`` first, and the continuation is the greedy one of the API."""
    import literate_tx as ltx
    from literate_tx.generation import generate
    from literate_tx.hf import save_hf

    tok = _small()
    cfg = ltx.llama_config(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2,
                           n_kv_heads=1, max_seq_len=32)
    params = ltx.init_params(cfg, seed=3)
    save_hf((cfg, params), tmp_path)
    _write(tmp_path, _llama_json(tok))
    out = subprocess.run(
        [sys.executable, "-m", "literate_tx", "generate", "--hf", str(tmp_path), "--prompt",
         "hi t", "--max-new-tokens", "6", "--temperature", "0", "--backend", "numpy"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    model = ltx.create_model(cfg, "numpy", params=params)
    prompt = [tok.bos_id, *tok.encode("hi t")]
    ids = generate(model, prompt, 6, temperature=0.0)
    expected = tok.decode(prompt + ids)[len(tok.decode(prompt)):]
    assert out.stdout == "hi t" + expected + "\n"


# ======================================================================= against Hugging Face
@pytest.fixture(scope="module")
def llama_pair(tmp_path_factory):
    """A Llama-style tokenizer trained by Hugging Face ``tokenizers`` (BPE with byte fallback,
    Llama's normalizer, decoder and post-processor), saved by ``transformers``."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from importlib.resources import files

    from tokenizers import decoders, models, normalizers, trainers

    text = (files("literate_tx.data") / "alice.txt").read_text(encoding="utf-8")
    specials = ["<unk>", "<s>", "</s>"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = tokenizers.Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE_MARK),
                                           normalizers.Replace(" ", SPACE_MARK)])
    tok.decoder = decoders.Sequence([decoders.Replace(SPACE_MARK, " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=2, show_progress=False,
                                  special_tokens=specials + byte_tokens)
    tok.train_from_iterator([text, *CURATED[:20]], trainer)
    # as in Llama's file, the byte tokens are in the vocabulary but are not added tokens
    data = json.loads(tok.to_str())
    data["added_tokens"] = [a for a in data["added_tokens"] if a["content"] in specials]
    data["post_processor"] = LLAMA_POST | {"pair": [], "special_tokens": {
        "<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    tok = tokenizers.Tokenizer.from_str(json.dumps(data))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>",
                                                eos_token="</s>", unk_token="<unk>")
    folder = tmp_path_factory.mktemp("llamatok")
    fast.save_pretrained(folder)
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    return theirs, load_hf_tokenizer(folder)


STRINGS = CURATED + _random_strings(300, seed=2)


def test_same_ids_as_transformers_llama(llama_pair):
    theirs, ours = llama_pair
    assert isinstance(ours, SentencePieceBPETokenizer)
    assert ours.bos_by_default
    assert ours.vocab_size == len(theirs)
    for text in STRINGS:
        ids = ours.encode(text, add_bos=True)
        assert ids == theirs(text)["input_ids"], repr(text)
        assert ours.decode(ids, skip_special=True) == theirs.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False), repr(text)
        assert ours.decode(ids) == theirs.decode(ids, clean_up_tokenization_spaces=False)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.one_of(TEXT, st.sampled_from(" \n'thea0€")), max_size=30))
def test_same_ids_as_transformers_llama_on_any_text(llama_pair, text):
    theirs, ours = llama_pair
    assume(not any(name in text for name in ours.special_tokens))  # names inside text: as text
    ids = ours.encode(text, add_bos=True)
    assert ids == theirs(text)["input_ids"]
    assert ours.decode(ids[1:]) == theirs.decode(ids[1:], clean_up_tokenization_spaces=False)


def test_gpt2_folder_written_by_transformers_5(tmp_path):
    """``transformers`` 5 saves GPT-2's tokenizer as ``tokenizer.json`` only."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from importlib.resources import files

    text = (files("literate_tx.data") / "alice.txt").read_text(encoding="utf-8")
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator([text], vocab_size=600, min_frequency=2,
                                special_tokens=["<|endoftext|>"], show_progress=False)
    trainer.save_model(str(tmp_path))
    saved = tmp_path / "saved"
    transformers.GPT2TokenizerFast.from_pretrained(tmp_path).save_pretrained(saved)
    assert not (saved / "vocab.json").exists()
    assert (saved / "tokenizer.json").exists()
    theirs, ours = transformers.AutoTokenizer.from_pretrained(saved), GPT2Tokenizer.from_folder(
        saved)
    assert ours.vocab_size == len(theirs)
    for s in STRINGS:
        assert ours.encode(s) == theirs.encode(s), repr(s)


# ======================================================================= other byte-level BPEs
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PRE = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
     "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
SMOL_PRE = {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}


def _byte_level(pre_tokenizer, merges=(), extra=(), **model):
    """A byte-level tokenizer.json: the 256 byte characters, then ``extra`` tokens."""
    from literate_tx.tokenizers import bytes_to_unicode

    tokens = [*bytes_to_unicode().values(), *extra, "<|begin_of_text|>", "<|end_of_text|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    bos = "<|begin_of_text|>"
    return {"added_tokens": [{"id": vocab[t], "content": t, "special": True, "single_word": False,
                              "lstrip": False, "rstrip": False, "normalized": False}
                             for t in (bos, "<|end_of_text|>")],
            "normalizer": None, "pre_tokenizer": pre_tokenizer, "decoder": {"type": "ByteLevel"},
            "post_processor": {"type": "Sequence", "processors": [
                {"type": "ByteLevel"},
                {"type": "TemplateProcessing", "single": [
                    {"SpecialToken": {"id": bos, "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}], "pair": [],
                 "special_tokens": {bos: {"id": bos, "ids": [vocab[bos]], "tokens": [bos]}}}]},
            "model": {"type": "BPE", "vocab": vocab, "merges": [list(m) for m in merges],
                      **model}}


def test_llama3_split_worked_out_by_hand():
    regex = python_regex(LLAMA3_PATTERN)
    assert regex.findall("I'll pay 12345") == ["I", "'ll", " pay", " ", "123", "45"]
    assert regex.findall("Hello  world\n\n x") == ["Hello", " ", " world", "\n\n", " x"]
    assert python_regex(r"\S+|\P{L}").findall("ab 1") == ["ab", " ", "1"]


@pytest.mark.parametrize(("pattern", "message"), [
    (r"[\S]", "complement"), (r"[a[b]]", "nested"), (r"\p{Xx}", "general category"),
    (r"\p", "needs a"), (r"(?<name", "does not compile")])
def test_untranslatable_patterns_are_named(pattern, message):
    with pytest.raises(ValueError, match=message):
        python_regex(pattern)


def test_digits_as_tokenizers_cuts_them():
    # the lists are what tokenizers' Digits pre-tokenizer gives for the same text
    assert _split_digits("ab12 ³½٣x", True) == ["ab", "1", "2", " ", "³", "½", "٣", "x"]
    assert _split_digits("ab12 ³½٣x", False) == ["ab", "12", " ", "³½٣", "x"]


def test_byte_level_tokenizer_json_read_and_used(tmp_path):
    from literate_tx.tokenizers import bytes_to_unicode

    g = bytes_to_unicode()
    a, b, c = g[ord("a")], g[ord("b")], g[ord("c")]
    # (b, c) first, then (a, b) and (ab, c): "abc" merges to [a, bc] and stops there, though
    # "abc" is a token; with ignore_merges the whole piece is taken (Llama 3)
    merges = [(b, c), (a, b), (a + b, c)]
    extra = [b + c, a + b, a + b + c]
    for ignore, expected in ((False, [a, b + c]), (True, [a + b + c])):
        _write(tmp_path, _byte_level(LLAMA3_PRE, merges, extra, ignore_merges=ignore))
        tok = load_hf_tokenizer(tmp_path)
        assert type(tok) is ByteLevelBPETokenizer
        assert [tok.token(i) for i in tok.encode("abc")] == expected
        assert tok.bos_by_default
        assert tok.bos_id == tok.vocab["<|begin_of_text|>"]
        assert tok.decode(tok.encode("abc 12345 é", add_bos=True)) == (
            "<|begin_of_text|>abc 12345 é")
        tok.save(tmp_path / "saved.json")
        again = Tokenizer.load(tmp_path / "saved.json")
        assert again.to_dict() == tok.to_dict()
        assert again.encode("abc 12345") == tok.encode("abc 12345")
    _write(tmp_path, _byte_level(SMOL_PRE))
    smol = load_hf_tokenizer(tmp_path)
    assert smol.pretokens("x 2024!") == ["x", " ", "2", "0", "2", "4", "!"]


@pytest.mark.parametrize(("pre", "message"), [
    ({"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "ByteLevel"}]},
     "pre_tokenizers\\[0\\] has type 'Whitespace'"),
    ({"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Digits"}]},
     "the last step must be ByteLevel"),
    ({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Removed"},
        {"type": "ByteLevel"}]}, "behavior 'Isolated'"),
])
def test_unsupported_byte_level_steps_are_named(tmp_path, pre, message):
    _write(tmp_path, _byte_level(pre))
    with pytest.raises(ValueError, match=message):
        load_hf_tokenizer(tmp_path)


def _every_code_point_text():
    import unicodedata

    return "".join(chr(c) for c in range(0x110000)
                   if unicodedata.category(chr(c)) not in ("Cn", "Cs"))


def _hf_pre_tokenizer(which: str):
    """Hugging Face's own pre-tokenizer for ``LLAMA3_PRE`` or ``SMOL_PRE``."""
    pytest.importorskip("tokenizers")
    from tokenizers import Regex, pre_tokenizers

    if which == "llama3":
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


PRES = {"llama3": LLAMA3_PRE, "smollm": SMOL_PRE}


def _ours(which: str) -> ByteLevelBPETokenizer:
    base = GPT2Tokenizer.from_bpe(BPETokenizer(special_tokens=[]))
    return ByteLevelBPETokenizer(base.vocab, [], pre_tokenizers=PRES[which]["pretokenizers"])


def _in_byte_chars(pieces: list[str]) -> list[str]:
    from literate_tx.tokenizers import bytes_to_unicode

    table = bytes_to_unicode()
    return ["".join(table[b] for b in p.encode("utf-8")) for p in pieces]


@pytest.mark.parametrize("which", ["llama3", "smollm"])
def test_cuts_like_tokenizers_on_every_code_point(which):
    hf, ours = _hf_pre_tokenizer(which), _ours(which)
    chars = _every_code_point_text()
    for joiner in ("", " 1\x1c", "'S\n"):
        text = joiner.join(chars)
        expected = [p for p, _ in hf.pre_tokenize_str(text)]
        assert _in_byte_chars(ours.pretokens(text)) == expected, repr(joiner)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.one_of(TEXT, st.sampled_from(" \t\r\n'sSlLdD0123")),
                    max_size=40))
def test_cuts_like_tokenizers_on_any_text(text):
    for which in ("llama3", "smollm"):
        expected = [p for p, _ in _hf_pre_tokenizer(which).pre_tokenize_str(text)]
        assert _in_byte_chars(_ours(which).pretokens(text)) == expected, which


@pytest.fixture(scope="module", params=["llama3", "smollm"])
def byte_level_pair(request, tmp_path_factory):
    """A byte-level BPE trained by Hugging Face ``tokenizers`` with Llama 3's split (and its
    ``ignore_merges``) or SmolLM's digits, saved by ``transformers``."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from importlib.resources import files

    from tokenizers import Regex, decoders, models, pre_tokenizers, processors, trainers

    text = (files("literate_tx.data") / "alice.txt").read_text(encoding="utf-8")
    llama3 = request.param == "llama3"
    tok = tokenizers.Tokenizer(models.BPE(ignore_merges=llama3))
    first = (pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated") if llama3
             else pre_tokenizers.Digits(individual_digits=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        first, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=not llama3)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, show_progress=False,
                                  special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text, *CURATED[:20]], trainer)
    if llama3:
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok,
                                                bos_token="<|begin_of_text|>",
                                                eos_token="<|end_of_text|>")
    folder = tmp_path_factory.mktemp(request.param)
    fast.save_pretrained(folder)
    return llama3, transformers.AutoTokenizer.from_pretrained(folder), load_hf_tokenizer(folder)


def test_same_ids_as_transformers_byte_level(byte_level_pair):
    llama3, theirs, ours = byte_level_pair
    assert type(ours) is ByteLevelBPETokenizer
    assert ours.ignore_merges == llama3
    assert ours.bos_by_default == llama3
    assert ours.vocab_size == len(theirs)
    for text in STRINGS:
        ids = ours.encode(text, add_bos=ours.bos_by_default)
        assert ids == theirs(text)["input_ids"], repr(text)
        assert ours.decode(ids) == theirs.decode(ids, clean_up_tokenization_spaces=False)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.one_of(TEXT, st.sampled_from(" \n'sS0123")), max_size=30))
def test_same_ids_as_transformers_byte_level_on_any_text(byte_level_pair, text):
    _, theirs, ours = byte_level_pair
    assume(not any(name in text for name in ours.special_tokens))  # names inside text: as text
    assert ours.encode(text, add_bos=ours.bos_by_default) == theirs(text)["input_ids"]


def test_generate_hf_equals_transformers_on_a_llama31_folder(tmp_path, capsys):
    """End to end, as a user runs it: a Llama 3.1-style folder (Llama 3's tokenizer, the
    ``llama3`` RoPE scaling, grouped-query attention) written by ``transformers``; greedy
    ``literate-tx generate --hf`` prints, in every backend, what ``transformers`` generates."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from importlib.resources import files

    from tokenizers import Regex, decoders, models, pre_tokenizers, processors, trainers

    import literate_tx as ltx
    from literate_tx.cli import main

    text = (files("literate_tx.data") / "alice.txt").read_text(encoding="utf-8")
    tok = tokenizers.Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    tok.train_from_iterator([text], trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[(specials[0], 0)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=specials[0],
                                                eos_token=specials[1])
    fast.save_pretrained(tmp_path)
    conf = transformers.LlamaConfig(
        vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        bos_token_id=0, eos_token_id=1, rope_parameters={
            "rope_type": "llama3", "rope_theta": 100.0, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8})  # every frequency blended or stretched
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(conf).to(torch.float64).eval()
    with torch.no_grad():  # O(1) weights, so that positions, and their scaling, matter
        for p in model.parameters():
            p.copy_(0.3 * torch.randn_like(p) + (1.0 if p.ndim == 1 else 0.0))
    model.save_pretrained(tmp_path)
    prompt = "Alice was"
    ids = fast(prompt)["input_ids"]
    out = model.generate(torch.tensor([ids]), max_new_tokens=16, min_new_tokens=16,
                         do_sample=False, pad_token_id=1)
    expected = fast.decode(out[0], skip_special_tokens=True)
    for backend in ltx.available_backends():
        assert main(["generate", "--hf", str(tmp_path), "--prompt", prompt, "--temperature",
                     "0", "--max-new-tokens", "16", "--backend", backend]) == 0
        assert capsys.readouterr().out == expected + "\n", backend


def test_bos_found_in_a_sequence_post_processor(tmp_path):
    """Both readers find <s> in the post-processor whether it stands alone or in a Sequence."""
    tok = _small()
    wrapped = {"type": "Sequence", "processors": [LLAMA_POST]}
    read = load_hf_tokenizer(_write(tmp_path, _llama_json(tok, post_processor=wrapped)))
    assert read.bos_by_default
    assert read.encode("hi", add_bos=True)[0] == tok.bos_id

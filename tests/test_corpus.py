"""Corpora: sources streamed once into a memory-mapped token file, a manifest, reuse, training."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from literate_tx.cli import main
from literate_tx.data.corpus import (
    CorpusSource,
    TokenCorpus,
    _blocks,
    corpus_folder,
    prepare_corpus,
    split_point,
    tokenizer_hash,
)
from literate_tx.tokenizers import train_tokenizer
from literate_tx.training import TrainConfig, Trainer, evaluate_checkpoint, load_trained

DOCS = [
    "The cat sat on the mat.\nIt was a fine mat,  said the cat.\n\n",
    "A dog ran by; the dog barked twice. Then the dog slept.\n",
    "Birds sang over the river, and the river ran on and on.\n",
]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LITERATE_TX_CACHE", str(tmp_path / "cache"))


def write_folder(root, docs=DOCS):
    root.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(docs):
        (root / f"doc{i:02d}.txt").write_text(text, encoding="utf-8")
    return root


def write_jsonl(path, docs=DOCS, field="text"):
    with open(path, "w", encoding="utf-8") as f:
        for i, text in enumerate(docs):
            f.write(json.dumps({"id": i, field: text}) + "\n")
    return path


def expected_stream(docs, tok):
    """What the token file must hold: each document's ids, then <eos>."""
    out = []
    for text in docs:
        out += tok.encode(text) + ([] if tok.eos_id is None else [tok.eos_id])
    return out


# ------------------------------------------------------------------------------ the token file
@pytest.mark.parametrize(("kind", "vocab_size"), [("char", None), ("word", None), ("bpe", 300)])
def test_folder_tokens_are_each_document_encoded_then_eos(tmp_path, kind, vocab_size):
    corpus = prepare_corpus(CorpusSource("folder", str(write_folder(tmp_path / "books"))),
                            tmp_path / "tok", tokenizer=kind, vocab_size=vocab_size,
                            val_fraction=0.2, block_chars=16)
    assert isinstance(corpus.tokens, np.memmap)
    assert corpus.tokens.dtype == np.uint16
    assert corpus.tokens.tolist() == expected_stream(DOCS, corpus.tokenizer)
    m = corpus.manifest
    assert m["n_tokens"] == len(corpus.tokens)
    assert len(corpus.train) == m["n_train_tokens"]
    assert (tmp_path / "tok" / "tokens.bin").stat().st_size == 2 * m["n_tokens"]
    assert m["n_chars"] == sum(map(len, DOCS))
    k = m["n_chars"] - round(m["n_chars"] * 0.2)  # moved to a cut that changes no token
    assert m["n_train_chars"] == (k if kind == "char" else split_point("".join(DOCS), k, kind))
    assert m["n_train_chars"] > k or kind == "char"  # (here the cut falls inside a word)


def test_split_is_at_the_character_boundary_and_the_tokenizer_never_saw_validation(tmp_path):
    docs = ["alpha beta gamma " * 5, "delta epsilon zeta " * 5]
    corpus = prepare_corpus(CorpusSource("folder", str(write_folder(tmp_path / "b", docs))),
                            tmp_path / "tok", tokenizer="word", val_fraction=0.5)
    tok = corpus.tokenizer
    text = "".join(docs)
    k = corpus.manifest["n_train_chars"]
    # the training ids decode to exactly the training characters (and the first <eos>)
    assert tok.decode(corpus.train.tolist(), skip_special=True) == text[:k]
    assert "zeta" not in tok.vocab
    assert "beta" in tok.vocab
    assert tok.unk_id in corpus.val.tolist()


@settings(max_examples=40, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab c\n.'é"), max_size=120),
       block=st.integers(1, 12))
def test_blocks_cut_where_no_pattern_joins_the_sides(text, block):
    blocks = list(_blocks(iter([text[:7], text[7:]]), block))
    assert "".join(blocks) == text
    word = train_tokenizer("word", [text or "x"])
    bpe = train_tokenizer("bpe", [text or "x"], vocab_size=270)
    for tok in (word, bpe):
        assert sum((tok.encode(b) for b in blocks), []) == tok.encode(text)


def test_block_size_does_not_change_the_file(tmp_path):
    src = CorpusSource("folder", str(write_folder(tmp_path / "books")))
    a = prepare_corpus(src, tmp_path / "a", tokenizer="bpe", vocab_size=290, block_chars=5)
    b = prepare_corpus(src, tmp_path / "b", tokenizer="bpe", vocab_size=290)
    assert tokenizer_hash(a.tokenizer) == tokenizer_hash(b.tokenizer)
    assert np.array_equal(a.tokens, b.tokens)


def test_more_than_65536_ids_are_stored_as_uint32(tmp_path):
    words = " ".join(f"w{i}" for i in range(70_000))
    corpus = prepare_corpus(CorpusSource("folder", str(write_folder(tmp_path / "b", [words]))),
                            tmp_path / "tok", tokenizer="word", val_fraction=0.01)
    assert corpus.tokenizer.vocab_size > 1 << 16
    assert corpus.tokens.dtype == np.uint32
    assert corpus.tokens.tolist() == expected_stream([words], corpus.tokenizer)


def test_jsonl_and_folder_give_the_same_tokens(tmp_path):
    a = prepare_corpus(CorpusSource("folder", str(write_folder(tmp_path / "books"))),
                       tmp_path / "a", tokenizer="word")
    b = prepare_corpus(CorpusSource("jsonl", str(write_jsonl(tmp_path / "d.jsonl", field="body")),
                                    text_field="body"), tmp_path / "b", tokenizer="word")
    assert np.array_equal(a.tokens, b.tokens)
    assert a.manifest["n_train_tokens"] == b.manifest["n_train_tokens"]


# ------------------------------------------------------------------------------ the manifest
def test_reused_while_the_manifest_matches_and_redone_when_a_source_changes(tmp_path):
    books = write_folder(tmp_path / "books")
    src = CorpusSource("folder", str(books))
    first = prepare_corpus(src, tokenizer="word")
    assert not first.reused
    assert first.folder == corpus_folder(src, "word")
    again = prepare_corpus(src, tokenizer="word")
    assert again.reused
    assert np.array_equal(first.tokens, again.tokens)
    (books / "doc01.txt").write_text("something else entirely\n", encoding="utf-8")
    changed = prepare_corpus(src, tokenizer="word")
    assert not changed.reused
    assert changed.manifest["source"]["checksums"] != first.manifest["source"]["checksums"]
    other = prepare_corpus(src, tokenizer="char")  # another request: another folder
    assert other.folder != first.folder


def test_a_tampered_folder_is_refused(tmp_path):
    corpus = prepare_corpus(CorpusSource("folder", str(write_folder(tmp_path / "b"))),
                            tmp_path / "tok", tokenizer="char")
    data = json.loads((corpus.folder / "tokenizer.json").read_text())
    data["vocab"] = data["vocab"][::-1]
    (corpus.folder / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not the tokenizer the tokens were written with"):
        TokenCorpus.open(corpus.folder)
    corpus = prepare_corpus(CorpusSource("folder", str(tmp_path / "b")), tmp_path / "tok2")
    with open(corpus.folder / "tokens.bin", "ab") as f:
        f.write(b"\0\0")
    with pytest.raises(ValueError, match="manifest says"):
        TokenCorpus.open(corpus.folder)
    (corpus.folder / "tokens.bin").unlink()
    with pytest.raises(FileNotFoundError, match="tokens.bin is missing"):
        TokenCorpus.open(corpus.folder)


def test_a_given_tokenizer_reuses_only_a_folder_written_with_it(tmp_path):
    src = CorpusSource("folder", str(write_folder(tmp_path / "books")))
    first = prepare_corpus(src, tmp_path / "tok", tokenizer="char")
    assert prepare_corpus(src, tmp_path / "tok", given_tokenizer=first.tokenizer).reused
    other = train_tokenizer("char", ["xyz "])
    redone = prepare_corpus(src, tmp_path / "tok", given_tokenizer=other)
    assert not redone.reused
    assert tokenizer_hash(redone.tokenizer) == tokenizer_hash(other)


def test_gpt2_tokenizer_from_a_file(tmp_path):
    from literate_tx.tokenizers import BPETokenizer, GPT2Tokenizer

    bpe = BPETokenizer.train("".join(DOCS), vocab_size=300, special_tokens=[])
    GPT2Tokenizer.from_bpe(bpe).save(tmp_path / "gpt2.json")
    books = write_folder(tmp_path / "books", DOCS * 4)
    corpus = prepare_corpus(CorpusSource("folder", str(books)), tmp_path / "tok",
                            tokenizer="gpt2", tokenizer_file=str(tmp_path / "gpt2.json"))
    assert corpus.tokenizer.kind == "gpt2"
    assert corpus.tokens.tolist() == expected_stream(DOCS * 4, corpus.tokenizer)
    (tmp_path / "all.txt").write_text("".join(DOCS * 4))
    cfg = text_config(tmp_path, "run", text_file=str(tmp_path / "all.txt"), tokenizer="gpt2",
                      tokenizer_file=str(tmp_path / "gpt2.json"), seq_len=4, steps=2)
    assert Trainer(cfg, quiet=True).train().finished
    _, tok, _, _ = load_trained(tmp_path / "run" / "last.npz")
    assert tok.kind == "gpt2"
    with pytest.raises(ValueError, match="tokenizer='gpt2' is not allowed without"):
        TrainConfig(task="text", tokenizer="gpt2")


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"text": "ok"}\n{"body": "no text"}\n', r"d.jsonl:2 has no field text_field='text'"),
        ('{"text": "ok"}\nnot json\n', r"d.jsonl:2 is not valid JSON"),
        ('{"text": 3}\n', r"d.jsonl:1: field 'text' holds int, not text"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path, lines, message):
    (tmp_path / "d.jsonl").write_text(lines)
    with pytest.raises(ValueError, match=message):
        prepare_corpus(CorpusSource("jsonl", str(tmp_path / "d.jsonl")), tmp_path / "tok")


def test_source_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .txt file"):
        prepare_corpus(CorpusSource("folder", str(tmp_path / "empty")))
    with pytest.raises(FileNotFoundError, match="no folder of .txt files"):
        prepare_corpus(CorpusSource("folder", str(tmp_path / "missing")))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.txt").write_bytes(b"ok \xff\xfe")
    with pytest.raises(ValueError, match=r"x.txt is not valid UTF-8"):
        prepare_corpus(CorpusSource("folder", str(tmp_path / "bad")))
    with pytest.raises(ValueError, match="kind='csv' is not allowed"):
        CorpusSource("csv", "x")


# ------------------------------------------------------------------------------ training
def text_config(tmp_path, name, **overrides):
    fields = dict(task="text", steps=6, batch_size=2, seq_len=8, d_model=16, n_layers=1,
                  n_heads=2, d_ff=32, eval_every=3, eval_batches=2, checkpoint_every=4,
                  warmup_steps=2, sample_tokens=5, sample_prompt="the ", dtype="float64",
                  out=str(tmp_path / name))
    fields.update(overrides)
    return TrainConfig(**fields)


def test_training_on_a_folder_reads_the_memory_map_and_resumes_exactly(tmp_path):
    books = write_folder(tmp_path / "books", DOCS * 4)
    base = dict(dataset="folder", data_path=str(books), tokenizer="word", val_fraction=0.25)
    whole = Trainer(text_config(tmp_path, "whole", **base), quiet=True)
    assert isinstance(whole.data.train_ids, np.memmap)
    whole.train()
    first = Trainer(text_config(tmp_path, "split", **base), quiet=True)
    first.train(stop_after=3)
    second = Trainer(text_config(tmp_path, "split", **base), quiet=True, resume=True)
    assert second.data.corpus.reused
    second.train()
    a, b = whole.engine.parameters(), second.engine.parameters()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    model, tok, tcfg, _ = load_trained(tmp_path / "split" / "last.npz")
    assert tok.kind == "word"
    assert tcfg.tokenizer == "word"
    metrics = evaluate_checkpoint(tmp_path / "split" / "last.npz")
    assert metrics["loss"] == pytest.approx(whole.evaluate("val")["loss"])


def test_training_on_a_prepared_folder(tmp_path):
    src = CorpusSource("jsonl", str(write_jsonl(tmp_path / "d.jsonl", DOCS * 4)))
    prepare_corpus(src, tmp_path / "tok", tokenizer="bpe", vocab_size=300)
    cfg = text_config(tmp_path, "run", dataset="tokens", data_path=str(tmp_path / "tok"),
                      tokenizer="bpe")
    result = Trainer(cfg, quiet=True).train()
    assert result.finished
    assert result.metrics["val"]["loss"] > 0
    with pytest.raises(ValueError, match="prepared with a 'bpe' tokenizer"):
        Trainer(cfg.replace(tokenizer="char", out=str(tmp_path / "run2")), quiet=True)
    with pytest.raises(ValueError, match="vocab_size=512 but .* was prepared with 300 ids"):
        Trainer(cfg.replace(vocab_size=512, out=str(tmp_path / "run3")), quiet=True)
    # a recipe's vocab_size is accepted when the prepared tokenizer has it
    assert Trainer(cfg.replace(vocab_size=300, out=str(tmp_path / "run4")), quiet=True)


# ------------------------------------------------------------------------------ command line
def test_cli_prepare_then_train(tmp_path, capsys):
    books = write_folder(tmp_path / "books", DOCS * 4)
    args = ["prepare", "--dataset", "folder", "--data-path", str(books), "--tokenizer", "word",
            "--out", str(tmp_path / "tok")]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "--dataset tokens --data-path" in out.out
    assert "tokens (" in out.err
    assert main(args) == 0
    assert "(reused)" in capsys.readouterr().out
    assert main(["train", "--task", "text", "--dataset", "tokens", "--data-path",
                 str(tmp_path / "tok"), "--tokenizer", "word", "--steps", "2",
                 "--batch-size", "2", "--seq-len", "8", "--d-model", "16", "--n-heads", "2",
                 "--d-ff", "32", "--n-layers", "1", "--eval-batches", "1", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "folder", "--data-path", "/nonexistent"], "no folder of .txt files"),
        (["--dataset", "csv", "--data-path", "x"], "invalid choice"),
        (["--dataset", "folder", "--data-path", "x", "--tokenizer", "char", "--vocab-size",
          "9"], "--vocab-size is not allowed with --tokenizer char"),
    ],
)
def test_cli_prepare_errors_exit_2(args, message, capsys):
    assert main(["prepare", *args]) == 2
    assert message in capsys.readouterr().err


def test_progress_bar_on_a_terminal(tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    prepare_corpus(CorpusSource("folder", str(write_folder(tmp_path / "books"))),
                   tmp_path / "tok", block_chars=8, progress=stream)
    text = stream.getvalue()
    assert "\r" in text
    assert "100%" in text
    assert "[#########################]" in text


# ------------------------------------------------------------------------------ datasets
def test_hugging_face_dataset_saved_on_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"body": DOCS * 4, "n": list(range(12))})
    ds.save_to_disk(str(tmp_path / "ds"))
    corpus = prepare_corpus(CorpusSource("hf", str(tmp_path / "ds"), text_field="body"),
                            tmp_path / "tok", tokenizer="word")
    assert corpus.tokens.tolist() == expected_stream(DOCS * 4, corpus.tokenizer)
    assert corpus.manifest["source"]["checksums"]  # the dataset's Arrow files
    assert prepare_corpus(CorpusSource("hf", str(tmp_path / "ds"), text_field="body"),
                          tmp_path / "tok", tokenizer="word").reused
    with pytest.raises(ValueError, match="text_field='text' is not a column"):
        prepare_corpus(CorpusSource("hf", str(tmp_path / "ds")), tmp_path / "tok2")
    cfg = text_config(tmp_path, "run", dataset="hf", data_path=str(tmp_path / "ds"),
                      text_field="body", tokenizer="word", steps=2)
    assert Trainer(cfg, quiet=True).train().finished

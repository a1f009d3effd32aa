"""Tests for literate_tx.data: digits task, text corpora (no network), batching."""

import hashlib
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from literate_tx.data import batching, digits, text
from literate_tx.data.digits import IGNORE_INDEX, OPERATIONS, DigitsExample, DigitsTask
from literate_tx.tokenizers import BPETokenizer, CharTokenizer


# ---------------------------------------------------------------- digits task
@given(st.sampled_from(OPERATIONS), st.lists(st.integers(0, 9), min_size=2, max_size=6))
def test_answer_matches_python(op, ds):
    expected = {"First": ds[0], "Second": ds[1], "Last": ds[-1], "Max": max(ds), "Min": min(ds)}
    assert digits.apply_operation(op, ds) == expected[op]
    assert DigitsExample(op, tuple(ds)).answer == str(expected[op])


@given(
    n_train=st.integers(0, 60),
    n_val=st.integers(0, 30),
    n_test=st.integers(0, 30),
    seed=st.integers(0, 2**32 - 1),
    n_digits=st.sampled_from([2, 3, (2, 4)]),
)
def test_splits_disjoint_balanced_and_seeded(n_train, n_val, n_test, seed, n_digits):
    task = DigitsTask(n_digits=n_digits)
    splits = task.make_splits(n_train, n_val, n_test, seed=seed)
    assert [len(s) for s in splits] == [n_train, n_val, n_test]
    all_examples = [ex for part in splits for ex in part]
    assert len(set(all_examples)) == len(all_examples)  # no overlap, no duplicates
    for part in splits:
        counts = digits.per_operation_counts(part)
        if part:
            assert max(counts.values()) - min(counts.get(op, 0) for op in OPERATIONS) <= 1
        for ex in part:
            assert task.min_digits <= len(ex.digits) <= task.max_digits
    assert task.make_splits(n_train, n_val, n_test, seed=seed) == splits


def test_different_seeds_differ():
    task = DigitsTask()
    assert task.make_splits(50, 0, 0, seed=0).train != task.make_splits(50, 0, 0, seed=1).train


def test_splits_can_use_every_example():
    task = DigitsTask(n_digits=2, operations=["Max"])
    splits = task.make_splits(60, 20, 20, seed=3)
    assert {ex.digits for part in splits for ex in part} == {
        (a, b) for a in range(10) for b in range(10)
    }


def test_too_many_examples_raises():
    task = DigitsTask(n_digits=2, operations=["Max"])
    with pytest.raises(ValueError, match="only 100 distinct ones exist"):
        task.make_splits(90, 10, 1)


@given(st.integers(0, 2**32 - 1))
def test_arrays_target_only_the_answer(seed):
    task = DigitsTask(n_digits=(2, 5))
    examples = task.make_splits(20, 0, 0, seed=seed).train
    tokens, targets = task.to_arrays(examples)
    assert tokens.shape == targets.shape == (20, task.seq_len)
    assert tokens.dtype == targets.dtype == np.int64
    pos = task.answer_positions(examples)
    for row, ex in enumerate(examples):
        assert task.vocab[tokens[row, pos[row]]] == "="
        assert task.vocab[targets[row, pos[row]]] == ex.answer
        assert (np.delete(targets[row], pos[row]) == IGNORE_INDEX).all()
        assert (tokens[row, pos[row] + 1 :] == task.pad_id).all()
        # The answer itself never appears among the inputs' last position.
        assert task.decode(tokens[row, : pos[row] + 1]) == "<bos> " + ex.prompt


def test_encode_decode_and_unknown_token():
    task = DigitsTask()
    ids = task.encode_example(DigitsExample("Second", (4, 0, 7)))
    assert task.decode(ids) == "<bos> Second ( 4 0 7 ) = 0"
    with pytest.raises(ValueError, match="token 'Sum'"):
        task.encode("Sum ( 1 2 ) = 3")


def test_evaluate_with_greedy_predictor():
    task = DigitsTask()
    test = task.make_splits(0, 0, 40, seed=0).test

    def oracle_logits(tokens):
        # A "model" that knows the answers: one-hot logits at each answer position.
        logits = np.zeros(tokens.shape + (task.vocab_size,))
        for row, ex in enumerate(test):
            logits[row, len(ex.digits) + 4, task.vocab.index(ex.answer)] = 5.0
        return logits

    result = task.evaluate(task.greedy_predictor(oracle_logits), test)
    assert result["exact_match"] == 1.0
    assert result["per_operation"] == dict.fromkeys(OPERATIONS, 1.0)


def test_accuracy_helpers():
    exs = [DigitsExample("First", (1, 2)), DigitsExample("Last", (1, 2))]
    assert digits.exact_match_accuracy([1, "1"], exs) == 0.5
    assert digits.per_operation_accuracy(["1", "1"], exs) == {"First": 1.0, "Last": 0.0}
    with pytest.raises(ValueError, match="got 1 predictions for 2 examples"):
        digits.exact_match_accuracy(["1"], exs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_digits": 0}, "digit counts must be ints >= 1"),
        ({"n_digits": (4, 2)}, "low must not exceed high"),
        ({"n_digits": 1}, "'Second' needs at least 2"),
        ({"operations": ["Sum"]}, "operations=\\['Sum'\\]"),
    ],
)
def test_task_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DigitsTask(**kwargs)


def test_example_validation():
    with pytest.raises(ValueError, match="every digit must be in 0..9"):
        DigitsExample("Max", (1, 12))
    with pytest.raises(ValueError, match="too short"):
        DigitsExample("Second", (1,))
    with pytest.raises(ValueError, match="has 5 digits"):
        DigitsTask(n_digits=3).to_arrays([DigitsExample("Max", (1, 2, 3, 4, 5))])


# ---------------------------------------------------------------------- text
def test_default_corpus_is_real_prose():
    corpus = text.default_corpus()
    assert len(corpus.encode("utf-8")) > 100_000
    assert corpus.startswith("CHAPTER I. Down the Rabbit-Hole")
    assert "Gutenberg" not in corpus
    tok = BPETokenizer.train(corpus[:20_000], vocab_size=300)
    assert tok.decode(tok.encode(corpus)) == corpus
    digest = hashlib.sha256(corpus.encode("utf-8")).hexdigest()
    assert digest == text.DEFAULT_CORPUS_INFO["sha256"]


def test_load_text_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no text file"):
        text.load_text(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(ValueError, match="not valid utf-8"):
        text.load_text(bad)


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LITERATE_TX_CACHE", str(tmp_path))
    assert text.cache_dir() == tmp_path
    monkeypatch.delenv("LITERATE_TX_CACHE")
    assert text.cache_dir().parts[-2:] == (".cache", "literate_tx")


def test_sha256_check(tmp_path):
    p = tmp_path / "f.txt"
    p.write_bytes(b"First Citizen:\n")
    digest = hashlib.sha256(b"First Citizen:\n").hexdigest()
    assert text.sha256_file(p) == digest
    text.verify_sha256(p, digest)  # no error
    with pytest.raises(ValueError, match="has SHA-256 .* but 86c4e6aa.* was expected"):
        text.verify_sha256(p, text.TINY_SHAKESPEARE_SHA256)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network: every urlopen raises, and the cache is an empty temp folder."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("LITERATE_TX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_offline_download_error_explains_local_file(offline):
    with pytest.raises(text.DownloadError, match=r"tiny_shakespeare\(path=") as info:
        text.tiny_shakespeare()
    assert "network is unreachable" in str(info.value)
    assert not list(offline.rglob("*.part"))  # no partial file left behind


def test_no_download_and_no_cache(offline):
    with pytest.raises(FileNotFoundError, match="download=False"):
        text.tiny_shakespeare(download=False)


class _FakeResponse:
    def __init__(self, data):
        self._data, self._pos = data, 0

    def read(self, n=-1):
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_with_wrong_digest_is_rejected_and_not_cached(offline, monkeypatch):
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url, timeout: _FakeResponse(b"an impostor")
    )
    with pytest.raises(ValueError, match="was expected"):
        text.tiny_shakespeare()
    assert not (offline / "tinyshakespeare" / "input.txt").exists()
    assert not list(offline.rglob("*.part"))


def test_download_with_right_digest_is_cached(offline, monkeypatch):
    payload = b"First Citizen:\nBefore we proceed any further, hear me speak.\n"
    monkeypatch.setattr(text, "TINY_SHAKESPEARE_SHA256", hashlib.sha256(payload).hexdigest())
    calls = []

    def fake_urlopen(url, timeout):
        calls.append(url)
        return _FakeResponse(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    assert text.tiny_shakespeare() == payload.decode()
    assert text.tiny_shakespeare() == payload.decode()  # second call: from the cache
    assert calls == [text.TINY_SHAKESPEARE_URL]


def test_local_file_is_verified(tmp_path):
    p = tmp_path / "input.txt"
    p.write_text("not the real thing")
    with pytest.raises(ValueError, match="was expected"):
        text.tiny_shakespeare(p)
    assert text.tiny_shakespeare(p, verify=False) == "not the real thing"


def test_encode_corpus():
    tok = CharTokenizer.train("abc")
    arr = text.encode_corpus("cab", tok)
    assert arr.dtype == np.int64
    assert tok.decode(arr.tolist()) == "cab"
    with pytest.raises(TypeError, match="without an encode method"):
        text.encode_corpus("abc", object())


# ------------------------------------------------------------------ batching
@given(
    n=st.integers(2, 200),
    batch_size=st.integers(1, 8),
    seq_len=st.integers(1, 16),
    seed=st.integers(0, 2**32 - 1),
)
def test_sample_batch_windows(n, batch_size, seq_len, seed):
    tokens = np.arange(n) * 3  # distinct values reveal positions
    if n < seq_len + 1:
        with pytest.raises(ValueError, match="needs at least"):
            batching.sample_batch(tokens, batch_size, seq_len, np.random.default_rng(seed))
        return
    x, y = batching.sample_batch(tokens, batch_size, seq_len, np.random.default_rng(seed))
    assert x.shape == y.shape == (batch_size, seq_len)
    assert x.dtype == np.int64
    starts = x[:, 0] // 3
    for b in range(batch_size):
        assert (x[b] == tokens[starts[b] : starts[b] + seq_len]).all()
        assert (y[b] == tokens[starts[b] + 1 : starts[b] + seq_len + 1]).all()


def test_every_start_is_reachable():
    tokens = np.arange(6)
    x, _ = batching.sample_batch(tokens, 500, 2, np.random.default_rng(0))
    assert sorted(set(x[:, 0].tolist())) == [0, 1, 2, 3]  # N - T = 4 starts


def test_resume_from_saved_rng_state_gives_same_batches():
    tokens = np.arange(1000)
    rng = np.random.default_rng(123)
    batching.sample_batch(tokens, 4, 8, rng)
    saved = json.loads(json.dumps(batching.rng_state(rng)))
    expected = [batching.sample_batch(tokens, 4, 8, rng) for _ in range(3)]
    resumed = batching.rng_from_state(saved)
    for x_exp, y_exp in expected:
        x, y = batching.sample_batch(tokens, 4, 8, resumed)
        assert (x == x_exp).all()
        assert (y == y_exp).all()


def test_rng_state_of_other_bit_generators():
    rng = np.random.Generator(np.random.Philox(5))
    again = batching.rng_from_state(json.loads(json.dumps(batching.rng_state(rng))))
    assert rng.integers(0, 100, 5).tolist() == again.integers(0, 100, 5).tolist()


def test_bad_rng_state():
    with pytest.raises(ValueError, match="bit_generator"):
        batching.rng_from_state({"nope": 1})
    with pytest.raises(ValueError, match="not a NumPy bit generator"):
        batching.rng_from_state({"bit_generator": "os"})


@given(n=st.integers(2, 100), batch_size=st.integers(1, 5), seq_len=st.integers(1, 10))
def test_iter_sequential_covers_stream_in_order(n, batch_size, seq_len):
    tokens = np.arange(n)
    if n - 1 < seq_len:
        with pytest.raises(ValueError, match="too few for one window"):
            list(batching.iter_sequential(tokens, batch_size, seq_len))
        return
    batches = list(batching.iter_sequential(tokens, batch_size, seq_len))
    assert all(len(x) <= batch_size for x, _ in batches)
    x = np.concatenate([x for x, _ in batches]).ravel()
    y = np.concatenate([y for _, y in batches]).ravel()
    n_used = (n - 1) // seq_len * seq_len
    assert x.tolist() == list(range(n_used))
    assert y.tolist() == list(range(1, n_used + 1))


@given(n=st.integers(0, 100), fraction=st.floats(0, 0.99))
def test_train_val_split_partitions(n, fraction):
    train, val = batching.train_val_split(np.arange(n), fraction)
    assert np.concatenate([train, val]).tolist() == list(range(n))
    assert len(val) == round(n * fraction)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: batching.sample_batch(np.zeros((2, 3), int), 1, 1, None), ValueError, "shape"),
        (lambda: batching.sample_batch(np.arange(9), 0, 2, None), ValueError, "batch_size=0"),
        (lambda: batching.sample_batch(np.arange(9), 1, 2, 42), TypeError, "Generator"),
        (lambda: batching.sample_batch(np.linspace(0, 1, 9), 1, 2, 42), TypeError, "integers"),
        (lambda: batching.train_val_split(np.arange(9), 1.0), ValueError, "val_fraction=1.0"),
    ],
)
def test_batching_argument_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()

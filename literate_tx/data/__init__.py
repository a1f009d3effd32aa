r"""Data for training and evaluating the transformer.

* :mod:`literate_tx.data.digits` -- the digit-operations task
  (``"Max ( 5 3 9 ) = 9"``): fixed vocabulary, disjoint seeded splits,
  answer-only targets, exact-match scoring.
* :mod:`literate_tx.data.text` -- text corpora: the embedded *Alice in
  Wonderland*, any local file, Tiny Shakespeare downloaded and SHA-256 checked.
* :mod:`literate_tx.data.corpus` -- larger corpora (a folder of ``.txt`` files, JSON Lines,
  a Hugging Face dataset) tokenised once into a memory-mapped token file with a manifest.
* :mod:`literate_tx.data.batching` -- (B, T) windows of a token stream with a
  caller-owned, resumable random generator.

Examples
--------
>>> from literate_tx.data import DigitsTask, sample_batch
>>> DigitsTask().vocab_size
20
"""

from .batching import iter_sequential, rng_from_state, rng_state, sample_batch, train_val_split
from .digits import (
    IGNORE_INDEX,
    OPERATIONS,
    VOCAB,
    DigitsExample,
    DigitsSplits,
    DigitsTask,
    apply_operation,
    exact_match_accuracy,
    per_operation_accuracy,
    per_operation_counts,
)
from .text import (
    DEFAULT_CORPUS_INFO,
    TINY_SHAKESPEARE_SHA256,
    TINY_SHAKESPEARE_SIZE,
    TINY_SHAKESPEARE_URL,
    DownloadError,
    cache_dir,
    default_corpus,
    encode_corpus,
    load_text,
    sha256_file,
    tiny_shakespeare,
    verify_sha256,
)

__all__ = [
    "DEFAULT_CORPUS_INFO",
    "IGNORE_INDEX",
    "OPERATIONS",
    "TINY_SHAKESPEARE_SHA256",
    "TINY_SHAKESPEARE_SIZE",
    "TINY_SHAKESPEARE_URL",
    "VOCAB",
    "DigitsExample",
    "DigitsSplits",
    "DigitsTask",
    "DownloadError",
    "apply_operation",
    "cache_dir",
    "default_corpus",
    "encode_corpus",
    "exact_match_accuracy",
    "iter_sequential",
    "load_text",
    "per_operation_accuracy",
    "per_operation_counts",
    "rng_from_state",
    "rng_state",
    "sample_batch",
    "sha256_file",
    "tiny_shakespeare",
    "train_val_split",
    "verify_sha256",
]

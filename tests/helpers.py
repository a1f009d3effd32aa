"""Assertions shared by the speed paths' tests, and the test run's summary (imported like
``strategies``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Sections of pytest's terminal summary, by heading: what property tests measured (the worst
#: error they accepted, the switch values they covered), which no assertion shows. A module
#: registers a function that returns the section's lines; ``tests/conftest.py`` prints every
#: section that has lines at the end of the run.
SUMMARY: dict[str, Callable[[], list[str]]] = {}


def summarise(heading: str, lines: Callable[[], list[str]]) -> None:
    """Register a section of the terminal summary (its lines are computed at the end)."""
    SUMMARY[heading] = lines


def assert_close(a, b, atol: float, what: str) -> None:
    """``|a - b| <= atol * max(1, |a|)`` everywhere, with the worst difference in the message."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} and {b.shape}"
    scale = max(1.0, float(np.abs(a).max(initial=0.0)))
    err = float(np.abs(a - b).max(initial=0.0))
    assert err <= atol * scale, f"{what}: max abs difference {err:.3g} (scale {scale:.3g})"


def check_decoding(ref, fast, tokens: np.ndarray, split: int, atol: float) -> None:
    """A speed path's ``decode`` against its reference's: the prompt ``tokens[:, :split]``, then
    one token at a time; the last step against both full forward passes; the caches' keys and
    values; a second continuation of the prompt's cache (which must not overwrite the first's
    positions), the first one again after it, and the whole continuation as one chunk."""
    vocab = ref.config.vocab_size
    a, kv_ref = ref.decode(tokens[:, :split])
    b, kv_fast = fast.decode(tokens[:, :split])
    assert_close(a, b, atol, "prompt logits")
    past_ref, past_fast = kv_ref, kv_fast
    for t in range(split, tokens.shape[1]):
        a, kv_ref = ref.decode(tokens[:, t:t + 1], kv_ref)
        b, kv_fast = fast.decode(tokens[:, t:t + 1], kv_fast)
        assert b.dtype == a.dtype
        assert b.shape == (tokens.shape[0], 1, vocab)
        assert_close(a, b, atol, f"step {t} logits")
    for model in (ref, fast):
        assert_close(model.forward(tokens)[:, -1], b[:, 0], atol,
                     f"last step against {type(model).__name__}'s full forward pass")
    for (k_r, v_r), (k_f, v_f) in zip(kv_ref, kv_fast, strict=True):
        assert_close(k_r, k_f, atol, "keys")
        assert_close(v_r, v_f, atol, "values")
    first = tokens[:, split:split + 1]
    other = (first + 1) % vocab  # another continuation of the prompt
    assert_close(ref.decode(other, past_ref)[0], fast.decode(other, past_fast)[0], atol,
                 "second continuation of the prompt")
    assert_close(ref.decode(first, past_ref)[0], fast.decode(first, past_fast)[0], atol,
                 "the first continuation, recomputed after the second")
    rest = tokens[:, split:]  # every later token in one call, after the prompt's cache
    assert_close(ref.decode(rest, past_ref)[0], fast.decode(rest, past_fast)[0], atol,
                 "the continuation as one chunk after the prompt")

r"""The digit-operations task: a tiny, exactly checkable sequence problem.

Each example applies one operation to a short list of digits and asks for one
digit back::

    First  ( 5 3 9 ) = 5        Max ( 5 3 9 ) = 9
    Second ( 5 3 9 ) = 3        Min ( 5 3 9 ) = 3
    Last   ( 5 3 9 ) = 9

A transformer solves it only by *attending*: ``First`` and ``Last`` need a
fixed position, ``Second`` needs position arithmetic relative to ``(``,
``Max`` and ``Min`` need to compare every digit. Because there is exactly one
right answer, accuracy is exact-match and can be broken down per operation;
attention maps of a trained model are easy to read.

Sequences and the loss
----------------------
With the fixed vocabulary :data:`VOCAB` (:math:`V = 20`) an example of
:math:`n` digits becomes the :math:`n + 6` ids ::

    <bos> Max ( 5 3 9 ) = 9

For next-token training the model reads all but the last id and is scored
on the next id at every position, but only the answer matters, so every
other target is ``ignore_index = -100``:

.. math::
    :nowrap:

    \[
    x = s_{0:L-1}, \qquad
    y_t = \begin{cases} s_{t+1} & t = L - 2 \text{ (the "=" position)} \\
                        -100    & \text{otherwise} \end{cases}          \tag{1}
    \]

Shorter examples (when the number of digits varies) are padded on the right
with ``<pad>`` inputs and ``-100`` targets up to :math:`T = n_{max} + 5`.

Splits
------
:meth:`DigitsTask.make_splits` draws train, validation and test examples
from one seeded :func:`numpy.random.default_rng`; no ``(operation, digits)``
pair appears twice anywhere, so the splits never overlap, and each split
holds the operations in equal numbers (to within one).

Examples
--------
>>> task = DigitsTask(n_digits=3)
>>> ex = DigitsExample("Max", (5, 3, 9))
>>> ex.text, ex.answer
('Max ( 5 3 9 ) = 9', '9')
>>> task.encode_example(ex)
[1, 5, 7, 15, 13, 19, 8, 9, 19]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = [
    "IGNORE_INDEX",
    "OPERATIONS",
    "VOCAB",
    "DigitsExample",
    "DigitsSplits",
    "DigitsTask",
    "apply_operation",
    "exact_match_accuracy",
    "per_operation_accuracy",
    "per_operation_counts",
]

#: The operations, in the order their counts are balanced.
OPERATIONS: tuple[str, ...] = ("First", "Second", "Last", "Max", "Min")

#: The fixed vocabulary; a token's id is its index.
VOCAB: tuple[str, ...] = (
    "<pad>",
    "<bos>",
    *OPERATIONS,
    "(",
    ")",
    "=",
    *(str(d) for d in range(10)),
)

#: Target value the loss skips (PyTorch's default ``ignore_index``).
IGNORE_INDEX = -100


def apply_operation(operation: str, digits: Sequence[int]) -> int:
    r"""The right answer: apply ``operation`` to ``digits``.

    Examples
    --------
    >>> [apply_operation(op, [5, 3, 9]) for op in OPERATIONS]
    [5, 3, 9, 9, 3]
    """
    if operation not in OPERATIONS:
        raise ValueError(f"operation={operation!r}; allowed: {list(OPERATIONS)!r}")
    if len(digits) < (2 if operation == "Second" else 1):
        raise ValueError(f"digits={list(digits)!r} is too short for operation {operation!r}")
    if operation == "First":
        return int(digits[0])
    if operation == "Second":
        return int(digits[1])
    if operation == "Last":
        return int(digits[-1])
    if operation == "Max":
        return int(max(digits))
    return int(min(digits))


@dataclass(frozen=True)
class DigitsExample:
    r"""One example: an operation and its digits.

    Examples
    --------
    >>> ex = DigitsExample("Second", (4, 0, 7))
    >>> ex.prompt, ex.answer
    ('Second ( 4 0 7 ) =', '0')
    """

    operation: str
    digits: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "digits", tuple(int(d) for d in self.digits))
        for d in self.digits:
            if not 0 <= d <= 9:
                raise ValueError(f"digits={self.digits!r}; every digit must be in 0..9")
        apply_operation(self.operation, self.digits)  # validates operation and length

    @property
    def answer(self) -> str:
        r"""The answer digit as a token string.

        Examples
        --------
        >>> DigitsExample("Min", (5, 3, 9)).answer
        '3'
        """
        return str(apply_operation(self.operation, self.digits))

    @property
    def prompt(self) -> str:
        r"""The question, ending with the ``=`` the model answers after.

        Examples
        --------
        >>> DigitsExample("Last", (1, 2)).prompt
        'Last ( 1 2 ) ='
        """
        return f"{self.operation} ( {' '.join(map(str, self.digits))} ) ="

    @property
    def text(self) -> str:
        r"""Prompt and answer, space-separated tokens.

        Examples
        --------
        >>> DigitsExample("First", (8, 1)).text
        'First ( 8 1 ) = 8'
        """
        return f"{self.prompt} {self.answer}"


class DigitsSplits(NamedTuple):
    r"""Train, validation and test examples; no example is in two of them.

    Examples
    --------
    >>> s = DigitsTask().make_splits(10, 5, 5, seed=0)
    >>> [len(part) for part in s]
    [10, 5, 5]
    """

    train: list[DigitsExample]
    val: list[DigitsExample]
    test: list[DigitsExample]


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}={value!r}; allowed: an int >= 0")
    return int(value)


@dataclass(frozen=True)
class DigitsTask:
    r"""The digit-operations task: vocabulary, encoding, data and scoring.

    Parameters
    ----------
    n_digits : int or (int, int)
        Digits per example, or an inclusive range ``(low, high)`` from which each
        example's length is drawn uniformly. At least 2 when ``"Second"`` is used.
    operations : sequence of str
        A subset of :data:`OPERATIONS`.

    Examples
    --------
    >>> task = DigitsTask(n_digits=(2, 4))
    >>> task.vocab_size, task.seq_len
    (20, 9)
    """

    n_digits: int | tuple[int, int] = 3
    operations: tuple[str, ...] = OPERATIONS
    vocab: tuple[str, ...] = field(default=VOCAB, init=False)

    def __post_init__(self) -> None:
        n = self.n_digits
        if isinstance(n, (list, tuple)):
            if len(n) != 2:
                raise ValueError(f"n_digits={n!r}; allowed: an int or a pair (low, high)")
            low, high = n
        else:
            low = high = n
        for v in (low, high):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"n_digits={n!r}; digit counts must be ints >= 1")
        if low > high:
            raise ValueError(f"n_digits={n!r}; low must not exceed high")
        object.__setattr__(self, "n_digits", int(low) if low == high else (int(low), int(high)))
        if isinstance(self.operations, str):
            raise TypeError(f"operations={self.operations!r}; pass a list such as ['Max']")
        ops = tuple(self.operations)
        if not ops or len(set(ops)) != len(ops) or any(op not in OPERATIONS for op in ops):
            raise ValueError(
                f"operations={list(ops)!r}; allowed: distinct names from {list(OPERATIONS)!r}"
            )
        if "Second" in ops and low < 2:
            raise ValueError(f"n_digits={n!r} allows 1 digit, but 'Second' needs at least 2")
        object.__setattr__(self, "operations", ops)

    # ------------------------------------------------------------ vocabulary
    @property
    def min_digits(self) -> int:
        r"""Fewest digits in an example.

        Examples
        --------
        >>> DigitsTask(n_digits=(2, 5)).min_digits
        2
        """
        return self.n_digits if isinstance(self.n_digits, int) else self.n_digits[0]

    @property
    def max_digits(self) -> int:
        r"""Most digits in an example.

        Examples
        --------
        >>> DigitsTask(n_digits=(2, 5)).max_digits
        5
        """
        return self.n_digits if isinstance(self.n_digits, int) else self.n_digits[1]

    @property
    def vocab_size(self) -> int:
        r"""V, the number of token ids (20).

        Examples
        --------
        >>> DigitsTask().vocab_size
        20
        """
        return len(self.vocab)

    @property
    def seq_len(self) -> int:
        r"""T, the length of model inputs: ``<bos> op ( d... ) =`` for the most digits.

        Examples
        --------
        >>> DigitsTask(n_digits=3).seq_len
        8
        """
        return self.max_digits + 5

    @property
    def pad_id(self) -> int:
        r"""Id of ``<pad>`` (0).

        Examples
        --------
        >>> DigitsTask().pad_id
        0
        """
        return self.vocab.index("<pad>")

    @property
    def bos_id(self) -> int:
        r"""Id of ``<bos>`` (1).

        Examples
        --------
        >>> DigitsTask().bos_id
        1
        """
        return self.vocab.index("<bos>")

    def encode(self, text: str) -> list[int]:
        r"""Ids of the space-separated tokens of ``text``.

        Raises
        ------
        ValueError
            For a token outside :data:`VOCAB`.

        Examples
        --------
        >>> DigitsTask().encode("Min ( 0 9 ) = 0")
        [6, 7, 10, 19, 8, 9, 10]
        """
        ids = []
        for token in text.split():
            try:
                ids.append(self.vocab.index(token))
            except ValueError:
                raise ValueError(
                    f"token {token!r} in text={text!r} is not in the vocabulary; "
                    f"allowed tokens: {' '.join(self.vocab)}"
                ) from None
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        r"""Tokens of ``ids`` joined by spaces.

        Examples
        --------
        >>> DigitsTask().decode([1, 5, 7, 15, 13, 19, 8, 9, 19])
        '<bos> Max ( 5 3 9 ) = 9'
        """
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is out of range; allowed: 0..{self.vocab_size - 1}")
            out.append(self.vocab[i])
        return " ".join(out)

    def encode_example(self, example: DigitsExample) -> list[int]:
        r"""The full id sequence ``<bos> op ( digits ) = answer`` of ``example``.

        Examples
        --------
        >>> DigitsTask().encode_example(DigitsExample("First", (2, 7, 7)))
        [1, 2, 7, 12, 17, 17, 8, 9, 12]
        """
        return [self.bos_id, *self.encode(example.text)]

    # ------------------------------------------------------------------ data
    def capacity(self, operation: str | None = None) -> int:
        r"""How many distinct examples exist (for one operation, or in total).

        Examples
        --------
        >>> DigitsTask(n_digits=(1, 2), operations=["Max", "Min"]).capacity("Max")
        110
        """
        per_op = sum(10**n for n in range(self.min_digits, self.max_digits + 1))
        return per_op if operation is not None else per_op * len(self.operations)

    def _draw_unique(self, operation: str, count: int, rng: np.random.Generator) -> list:
        """``count`` distinct digit tuples for ``operation`` (lengths uniform)."""
        seen: dict[tuple[int, ...], None] = {}
        low, high = self.min_digits, self.max_digits
        while len(seen) < count:
            need = count - len(seen)
            lengths = rng.integers(low, high + 1, size=2 * need + 8)
            for n in lengths:
                digits = tuple(int(d) for d in rng.integers(0, 10, size=int(n)))
                seen.setdefault(digits, None)
                if len(seen) == count:
                    break
        return list(seen)

    def make_splits(self, n_train: int, n_val: int, n_test: int, seed: int = 0) -> DigitsSplits:
        r"""Draw disjoint, operation-balanced train/val/test examples.

        Parameters
        ----------
        n_train, n_val, n_test : int
            Examples per split. Within a split the operations differ in count by
            at most one (the first operations take the remainder).
        seed : int
            Seed of :func:`numpy.random.default_rng`; same seed, same splits.

        Returns
        -------
        DigitsSplits

        Raises
        ------
        ValueError
            If more examples of one operation are asked for than exist.

        Examples
        --------
        >>> task = DigitsTask(n_digits=3)
        >>> splits = task.make_splits(100, 20, 20, seed=0)
        >>> seen = [set(part) for part in splits]
        >>> len(seen[0] & seen[1]), len(seen[0] & seen[2]), len(seen[1] & seen[2])
        (0, 0, 0)
        >>> sorted(per_operation_counts(splits.train).values())
        [20, 20, 20, 20, 20]
        """
        sizes = [
            _check_count(n, v)
            for n, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test))
        ]
        rng = np.random.default_rng(seed)
        k = len(self.operations)
        # per_split[s][j]: examples of operation j in split s.
        per_split = [[n // k + (1 if j < n % k else 0) for j in range(k)] for n in sizes]
        splits: list[list[DigitsExample]] = [[] for _ in sizes]
        for j, op in enumerate(self.operations):
            total = sum(counts[j] for counts in per_split)
            if total > self.capacity(op):
                raise ValueError(
                    f"n_train + n_val + n_test = {sum(sizes)} asks for {total} {op!r} examples, "
                    f"but only {self.capacity(op)} distinct ones exist with "
                    f"n_digits={self.n_digits!r}; ask for fewer or allow more digits"
                )
            tuples = self._draw_unique(op, total, rng)
            start = 0
            for s, counts in enumerate(per_split):
                chunk = tuples[start : start + counts[j]]
                splits[s].extend(DigitsExample(op, t) for t in chunk)
                start += counts[j]
        for part in splits:
            order = rng.permutation(len(part))
            part[:] = [part[i] for i in order]
        return DigitsSplits(*splits)

    def to_arrays(self, examples: Sequence[DigitsExample]) -> tuple[np.ndarray, np.ndarray]:
        r"""Model inputs and targets for next-token training, eq. (1).

        Parameters
        ----------
        examples : sequence of DigitsExample

        Returns
        -------
        tokens : (N, T) int64 ndarray
            ``<bos> op ( digits ) =`` then ``<pad>``; ``T = seq_len``.
        targets : (N, T) int64 ndarray
            The answer id at the ``=`` position, :data:`IGNORE_INDEX` elsewhere.

        Examples
        --------
        >>> task = DigitsTask(n_digits=(2, 3))
        >>> tokens, targets = task.to_arrays([DigitsExample("Max", (5, 3, 9)),
        ...                                   DigitsExample("Min", (4, 6))])
        >>> tokens.tolist()
        [[1, 5, 7, 15, 13, 19, 8, 9], [1, 6, 7, 14, 16, 8, 9, 0]]
        >>> targets.tolist()
        [[-100, -100, -100, -100, -100, -100, -100, 19],
         [-100, -100, -100, -100, -100, -100, 14, -100]]
        """
        n, t = len(examples), self.seq_len
        tokens = np.full((n, t), self.pad_id, dtype=np.int64)  # (N, T)
        targets = np.full((n, t), IGNORE_INDEX, dtype=np.int64)  # (N, T)
        for row, ex in enumerate(examples):
            self._check_example(ex)
            seq = self.encode_example(ex)
            tokens[row, : len(seq) - 1] = seq[:-1]
            targets[row, len(seq) - 2] = seq[-1]  # eq. (1): only the answer is scored
        return tokens, targets

    def answer_positions(self, examples: Sequence[DigitsExample]) -> np.ndarray:
        r"""Index of the ``=`` token in each row of :meth:`to_arrays` (N,).

        The logits at that position are the model's answer.

        Examples
        --------
        >>> DigitsTask(n_digits=(2, 3)).answer_positions(
        ...     [DigitsExample("Max", (5, 3, 9)), DigitsExample("Min", (4, 6))]).tolist()
        [7, 6]
        """
        return np.array([len(ex.digits) + 4 for ex in examples], dtype=np.int64)

    def _check_example(self, ex: DigitsExample) -> None:
        if not isinstance(ex, DigitsExample):
            raise TypeError(f"expected a DigitsExample, got {type(ex).__name__}")
        if not self.min_digits <= len(ex.digits) <= self.max_digits:
            raise ValueError(
                f"example {ex.text!r} has {len(ex.digits)} digits; this task allows "
                f"n_digits={self.n_digits!r}"
            )

    # --------------------------------------------------------------- scoring
    def greedy_predictor(
        self, logits_fn: Callable[[np.ndarray], np.ndarray]
    ) -> Callable[[Sequence[DigitsExample]], list[str]]:
        r"""Turn a model into a ``predict_fn`` for :meth:`evaluate`.

        Parameters
        ----------
        logits_fn : callable
            Maps tokens (N, T) to logits (N, T, V), e.g. ``model.forward``.

        Returns
        -------
        callable
            Examples -> the most likely digit at each answer position, as strings.
            Only digit tokens compete, so the answer is always a digit.

        Examples
        --------
        A fake model that always puts the largest logit on the token ``"7"``:

        >>> task = DigitsTask()
        >>> def logits_fn(tokens):
        ...     logits = np.zeros(tokens.shape + (task.vocab_size,))
        ...     logits[..., task.vocab.index("7")] = 1.0
        ...     return logits
        >>> task.greedy_predictor(logits_fn)([DigitsExample("Max", (7, 1, 2))])
        ['7']
        """
        digit_ids = np.array([self.vocab.index(str(d)) for d in range(10)])

        def predict(examples: Sequence[DigitsExample]) -> list[str]:
            tokens, _ = self.to_arrays(examples)  # (N, T)
            logits = np.asarray(logits_fn(tokens))  # (N, T, V)
            at = logits[np.arange(len(examples)), self.answer_positions(examples)]  # (N, V)
            best = np.argmax(at[:, digit_ids], axis=-1)  # (N,)
            return [str(int(d)) for d in best]

        return predict

    def evaluate(
        self,
        predict_fn: Callable[[Sequence[DigitsExample]], Sequence[str | int]],
        examples: Sequence[DigitsExample],
    ) -> dict[str, object]:
        r"""Score ``predict_fn`` on ``examples``.

        Parameters
        ----------
        predict_fn : callable
            Examples -> predicted answers (digit strings or ints), one per example;
            see :meth:`greedy_predictor`.
        examples : sequence of DigitsExample
            E.g. ``splits.test``.

        Returns
        -------
        dict
            ``{"exact_match": float, "per_operation": {op: float}}``.

        Examples
        --------
        An oracle scores 1; always answering the first digit is right only for
        ``First`` (and for the others by coincidence):

        >>> task = DigitsTask()
        >>> test = task.make_splits(0, 0, 50, seed=1).test
        >>> task.evaluate(lambda exs: [ex.answer for ex in exs], test)["exact_match"]
        1.0
        >>> task.evaluate(lambda exs: [ex.digits[0] for ex in exs], test)["per_operation"]["First"]
        1.0
        """
        predictions = list(predict_fn(examples))
        return {
            "exact_match": exact_match_accuracy(predictions, examples),
            "per_operation": per_operation_accuracy(predictions, examples),
        }


def _check_lengths(predictions: Sequence[object], examples: Sequence[DigitsExample]) -> None:
    if len(predictions) != len(examples):
        raise ValueError(
            f"got {len(predictions)} predictions for {len(examples)} examples; "
            "give exactly one prediction per example"
        )
    if not examples:
        raise ValueError("examples is empty; accuracy of zero examples is undefined")


def exact_match_accuracy(
    predictions: Sequence[str | int], examples: Sequence[DigitsExample]
) -> float:
    r"""Fraction of predictions equal to the answer (``"9"`` and ``9`` both match).

    Examples
    --------
    >>> exs = [DigitsExample("Max", (5, 3, 9)), DigitsExample("Min", (5, 3, 9))]
    >>> exact_match_accuracy(["9", 5], exs)
    0.5
    """
    _check_lengths(predictions, examples)
    right = sum(str(p).strip() == ex.answer for p, ex in zip(predictions, examples, strict=True))
    return right / len(examples)


def per_operation_accuracy(
    predictions: Sequence[str | int], examples: Sequence[DigitsExample]
) -> dict[str, float]:
    r"""Exact-match accuracy for each operation present, in :data:`OPERATIONS` order.

    Examples
    --------
    >>> exs = [DigitsExample("Max", (5, 3, 9)), DigitsExample("Max", (1, 2, 0)),
    ...        DigitsExample("Min", (5, 3, 9))]
    >>> per_operation_accuracy(["9", "0", "3"], exs)
    {'Max': 0.5, 'Min': 1.0}
    """
    _check_lengths(predictions, examples)
    right: dict[str, int] = {}
    total: dict[str, int] = {}
    for p, ex in zip(predictions, examples, strict=True):
        total[ex.operation] = total.get(ex.operation, 0) + 1
        right[ex.operation] = right.get(ex.operation, 0) + (str(p).strip() == ex.answer)
    return {op: right[op] / total[op] for op in OPERATIONS if op in total}


def per_operation_counts(examples: Sequence[DigitsExample]) -> dict[str, int]:
    r"""How many examples of each operation, in :data:`OPERATIONS` order.

    Examples
    --------
    >>> per_operation_counts([DigitsExample("Min", (1, 2)), DigitsExample("Min", (3, 4))])
    {'Min': 2}
    """
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.operation] = counts.get(ex.operation, 0) + 1
    return {op: counts[op] for op in OPERATIONS if op in counts}

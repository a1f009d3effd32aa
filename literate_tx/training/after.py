r"""After training: sample text from a trained model, load a run's checkpoint into any backend
and recompute its metrics.

Examples
--------
>>> from literate_tx.training import load_trained, sample_text
>>> callable(load_trained) and callable(sample_text)
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..api import create_model
from ..checkpoint import read_checkpoint
from .config import TrainConfig
from .engines import _model_options
from .tasks import _codec_from_json, _make_data


# ============================================================================ after training
def sample_text(model, prompt_ids: Sequence[int], max_new_tokens: int, *,
                temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                seed: int | None = None, stop_token: int | None = None) -> list[int]:
    r"""Continue ``prompt_ids`` by ``max_new_tokens`` tokens, even past ``max_seq_len``.

    Uses :func:`literate_tx.generation.generate` on a sliding window of the last
    ``max_seq_len`` tokens (half a window is generated per call), or, where that module is
    missing, a plain loop over ``model.forward``.

    Returns
    -------
    list of int
        The new ids only.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> model = ltx.create_model(ltx.ModelConfig(10, 8, 1, 2, 16, 4), seed=0)
    >>> len(sample_text(model, [1, 2], 9, temperature=0))
    9
    """
    window = model.config.max_seq_len
    ids = [int(i) for i in prompt_ids][-(window - 1):] if window > 1 else []
    if not ids:
        raise ValueError("prompt_ids is empty; give at least one token")
    try:
        from ..generation import generate
    except ImportError:  # pragma: no cover - generation.py is part of the package
        generate = None
    rng = np.random.default_rng(seed)
    new: list[int] = []
    while len(new) < max_new_tokens:
        context = (ids + new)[-max(window // 2, 1):] if new else ids
        room = window - len(context)
        count = min(room, max_new_tokens - len(new))
        chunk_seed = int(rng.integers(2**63))
        if generate is not None:
            chunk = generate(model, context, count, temperature=temperature, top_k=top_k,
                             top_p=top_p, seed=chunk_seed, stop_token=stop_token)
        else:  # pragma: no cover
            chunk = _forward_loop(model, context, count, temperature, chunk_seed, stop_token)
        new += chunk
        if len(chunk) < count:  # stop token drawn
            break
    return new


def _forward_loop(model, context: list[int], count: int, temperature: float, seed: int,
                  stop_token: int | None) -> list[int]:  # pragma: no cover - fallback
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for _ in range(count):
        z = np.asarray(model.forward(np.array([context + out])))[0, -1].astype(np.float64)
        if temperature == 0:
            token = int(np.argmax(z))
        else:
            p = np.exp((z - z.max()) / temperature)
            token = int(rng.choice(len(p), p=p / p.sum()))
        if token == stop_token:
            break
        out.append(token)
    return out


def load_trained(path: str | os.PathLike, *, backend: str = "numpy", device: str = "cpu",
                 dtype: str | None = None, fast: bool | None = None
                 ) -> tuple[Any, Any, TrainConfig | None, dict]:
    r"""Load a checkpoint written by the trainer: ``(model, tokenizer, train_config, metadata)``.

    Parameters
    ----------
    path : str or PathLike
    backend : {"numpy", "python", "torch"}
        Backend of the returned model (any backend loads any checkpoint).
    device : str
        For the torch backend.
    dtype : {"float32", "float64"}, optional
        Default: the dtype of the stored weights.
    fast : bool, optional
        Build the backend's speed path (``create_model(..., fast=True)``; the same function,
        proven equal to the reference by the tests): NumPy and pure Python compute faster,
        PyTorch decodes one token at a time without its modules. Default: as the checkpoint
        was trained, that is the training configuration's ``fast`` for the NumPy and
        pure-Python backends (the model its metrics were measured with) and the plain model
        otherwise.

    Returns
    -------
    model
    tokenizer : object with ``encode`` and ``decode``, or None if the checkpoint has none
    train_config : TrainConfig or None
    metadata : dict

    Examples
    --------
    >>> import tempfile, os
    >>> from literate_tx.training import train
    >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> _ = train(cfg, quiet=True)
    >>> model, tok, tcfg, meta = load_trained(os.path.join(cfg.out, "last.npz"))
    >>> tok.decode(tok.encode("Max ( 1 2 3 ) =")), tcfg.steps
    ('<bos> Max ( 1 2 3 ) =', 1)
    >>> type(model).__name__, type(load_trained(cfg.out + "/last.npz", fast=False)[0]).__name__
    ('FastNumpyModel', 'NumpyModel')
    """
    if fast is not None and not isinstance(fast, bool):
        raise ValueError(f"fast={fast!r} is not allowed; fast must be True, False or None (as "
                         "the checkpoint was trained)")
    ckpt = read_checkpoint(path)
    meta = ckpt.metadata
    if dtype is None:
        dtype = str(next(iter(ckpt.params.values())).dtype)
        dtype = dtype if dtype in ("float32", "float64") else "float32"
    tokenizer = tcfg = None
    try:
        field = "tokenizer"
        if field in meta:
            tokenizer = _codec_from_json(meta[field])
        field = "train_config"
        if field in meta:
            tcfg = TrainConfig.from_dict(meta[field])
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path}: damaged metadata: field {field!r}={meta[field]!r:.60} "
                         f"cannot be read ({exc!s:.200})") from None
    size = getattr(tokenizer, "vocab_size", None) or getattr(
        getattr(tokenizer, "task", None), "vocab_size", None)
    if size is not None and size != ckpt.config.vocab_size:
        raise ValueError(f"{path}: the tokenizer in its metadata has {size} tokens but the "
                         f"model's vocab_size is {ckpt.config.vocab_size}; the file mixes two "
                         "runs: use the checkpoint a run wrote")
    if fast is None:
        fast = tcfg is not None and tcfg.fast and backend in ("numpy", "python")
    model = create_model(ckpt.config, backend, params=ckpt.params, dtype=dtype,
                         **_model_options(backend, fast, device))
    return model, tokenizer, tcfg, meta


def evaluate_checkpoint(path: str | os.PathLike, *, backend: str = "numpy",
                        split: str = "test", fast: bool | None = None) -> dict[str, Any]:
    r"""Recompute a trained checkpoint's metrics (digits: a split; text: the validation text).

    ``backend`` and ``fast`` choose the model as in :func:`load_trained`; by default the
    model is the one the trainer measured with, so that the metrics are the trainer's.

    Examples
    --------
    >>> import tempfile, os
    >>> from literate_tx.training import train
    >>> cfg = TrainConfig(steps=1, batch_size=2, d_model=8, n_layers=1, n_heads=2, d_ff=16,
    ...                   n_train=20, n_val=5, n_test=5, out=tempfile.mkdtemp())
    >>> r = train(cfg, quiet=True)
    >>> evaluate_checkpoint(r.last_checkpoint)["exact_match"] == r.metrics["test"]["exact_match"]
    True
    """
    model, tokenizer, tcfg, _ = load_trained(path, backend=backend, fast=fast)
    if tcfg is None:
        raise ValueError(f"{path} has no training configuration; it was not written by the "
                         "trainer, so there is no task to evaluate on")
    data = _make_data(tcfg, tokenizer if tcfg.task == "text" else None)
    if split not in ("val", "test"):
        raise ValueError(f"split={split!r} is not allowed; allowed: 'val', 'test'")
    return data.evaluate(model, split, tcfg.eval_batches)


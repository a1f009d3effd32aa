"""literate_tx: a GPT-style transformer written three times — pure Python, NumPy, PyTorch — and
proven to be the same function.

The names below are imported on first use (a module ``__getattr__``, :pep:`562`), so that
``import literate_tx.config`` loads the configuration alone: no backend, no trainer.

Examples
--------
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(vocab_size=50, d_model=64, n_layers=2, n_heads=4, d_ff=128,
...                       max_seq_len=32, norm="rmsnorm", activation="swiglu", position="rope")
>>> model = ltx.create_model(cfg, backend="numpy", seed=0, dtype="float64")
>>> model.forward([[1, 2, 3]]).shape
(1, 3, 50)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from .api import BACKENDS, available_backends, create_model
    from .checkpoint import Checkpoint, load_checkpoint, read_checkpoint, save_checkpoint
    from .config import ModelConfig, gpt2_config, llama_config
    from .generation import generate
    from .params import init_params, num_parameters, param_shapes
    from .training import TrainConfig, Trainer, train

__version__ = "0.1.0"

#: Each public name and the submodule it comes from, imported when the name is first used.
_LAZY = {
    "BACKENDS": "api",
    "available_backends": "api",
    "create_model": "api",
    "Checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "ModelConfig": "config",
    "gpt2_config": "config",
    "llama_config": "config",
    "generate": "generation",
    "init_params": "params",
    "num_parameters": "params",
    "param_shapes": "params",
    "TrainConfig": "training",
    "Trainer": "training",
    "train": "training",
}

__all__ = [
    "BACKENDS",
    "Checkpoint",
    "ModelConfig",
    "TrainConfig",
    "Trainer",
    "available_backends",
    "create_model",
    "generate",
    "gpt2_config",
    "init_params",
    "llama_config",
    "load_checkpoint",
    "num_parameters",
    "param_shapes",
    "read_checkpoint",
    "save_checkpoint",
    "train",
    "__version__",
]


def __getattr__(name: str):
    r"""Import a public name from its submodule on first use, and keep it.

    Examples
    --------
    >>> import literate_tx
    >>> literate_tx.gpt2_config.__module__
    'literate_tx.config'
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    r"""The module's attributes and the public names not yet imported.

    Examples
    --------
    >>> import literate_tx
    >>> "create_model" in dir(literate_tx)
    True
    """
    return sorted(set(globals()) | set(_LAZY))

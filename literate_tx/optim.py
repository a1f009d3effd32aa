r"""The optimisers' public names, for NumPy parameters: SGD, Adam, AdamW and gradient clipping.

The NumPy optimisers live with their backend, in :mod:`literate_tx.numpy_backend.optim` (where
the equations are derived), as the pure-Python ones live in
:mod:`literate_tx.python_backend.optim`; what both share is :mod:`literate_tx.optim_rules`. This
module keeps the short import working — ``from literate_tx.optim import AdamW`` — and loads the
NumPy backend only when one of its names is first used, so importing it imports no backend.

* ``SGD``, ``Adam``, ``AdamW``, ``Optimizer``, ``clip_grad_norm``: defined in
  :mod:`literate_tx.numpy_backend.optim`;
* ``default_decay_filter``: defined in :mod:`literate_tx.optim_rules`.

Examples
--------
>>> import numpy as np
>>> from literate_tx.optim import AdamW
>>> AdamW.__module__
'literate_tx.numpy_backend.optim'
>>> w = {"w": np.zeros(2)}
>>> AdamW(w, lr=0.1, eps=0.0).step({"w": np.array([1.0, -1.0])}); w["w"].tolist()
[-0.1, 0.1]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .optim_rules import default_decay_filter

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from .numpy_backend.optim import SGD, Adam, AdamW, Optimizer, clip_grad_norm

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm", "default_decay_filter"]

_NUMPY = ("SGD", "Adam", "AdamW", "Optimizer", "clip_grad_norm")


def __getattr__(name: str):
    r"""Import a NumPy optimiser's name from :mod:`literate_tx.numpy_backend.optim` on first use.

    Examples
    --------
    >>> import literate_tx.optim
    >>> literate_tx.optim.clip_grad_norm.__module__
    'literate_tx.numpy_backend.optim'
    """
    if name not in _NUMPY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(".numpy_backend.optim", __package__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    r"""The module's attributes and the names not yet imported.

    Examples
    --------
    >>> import literate_tx.optim
    >>> "AdamW" in dir(literate_tx.optim)
    True
    """
    return sorted(set(globals()) | set(_NUMPY))

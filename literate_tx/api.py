"""One entry point for every backend: :func:`create_model`.

The same user code runs on any backend, and weights move between them because every backend
imports and exports the canonical parameter dict of :mod:`literate_tx.params`::

    numpy_model = create_model(cfg, backend="numpy", seed=0)
    python_model = create_model(cfg, backend="python", params=numpy_model.parameters())

Examples
--------
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
>>> ltx.create_model(cfg, backend="numpy", seed=0)
NumpyModel(1 layers, d_model=8, 840 parameters, float32)
>>> ltx.create_model(cfg, backend="jax")
Traceback (most recent call last):
...
ValueError: backend='jax' is not available; choose one of 'numpy', 'python', 'torch'
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from .config import ModelConfig
from .inputs import check_dtype

__all__ = ["BACKENDS", "create_model", "available_backends"]

BACKENDS = ("numpy", "python", "torch")

#: backend -> ((module, class) of the plain model, (module, class) of its speed path, the
#: ``fast=True`` model); imported on demand, so that NumPy users never import PyTorch
_MODEL_CLASSES = {
    "numpy": ((".numpy_backend", "NumpyModel"), (".numpy_backend.fast", "FastNumpyModel")),
    "python": ((".python_backend", "PythonModel"), (".python_backend.fast", "FastPythonModel")),
    "torch": ((".torch_backend", "TorchModel"), (".torch_backend.fast", "FastTorchModel")),
}


def available_backends() -> list[str]:
    """Backends importable in this environment (``torch`` needs PyTorch installed).

    Examples
    --------
    >>> "numpy" in available_backends()
    True
    """
    names = ["numpy", "python"]
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        names.append("torch")
    return names


def create_model(
    config: ModelConfig,
    backend: str = "numpy",
    *,
    params: Mapping | None = None,
    seed: int = 0,
    dtype: str = "float32",
    **backend_options,
):
    """Build a model of ``config`` in ``backend``.

    Parameters
    ----------
    config : ModelConfig
    backend : {"numpy", "python", "torch"}
    params : mapping of str to array, optional
        Canonical parameters (e.g. another model's ``parameters()``); default: seeded
        initialisation.
    seed : int
        Seed for the initial weights and the dropout generator.
    dtype : {"float32", "float64"}
    **backend_options
        Passed to the backend: ``device="cuda"`` or ``attention="explicit"`` for torch;
        ``fast=True`` (with ``threads=``) for the NumPy backend's speed path,
        :class:`~literate_tx.numpy_backend.fast.FastNumpyModel`, proven equal to the reference;
        ``fast=True`` for the pure-Python backend's,
        :class:`~literate_tx.python_backend.fast.FastPythonModel`; ``fast=True`` for
        PyTorch's, :class:`~literate_tx.torch_backend.fast.FastTorchModel` (its one-token
        decoding steps).

    Returns
    -------
    model
        With ``forward``, ``loss_and_grads``, ``parameters``, ``load_parameters``,
        ``run_with_cache`` and ``decode``.

    Examples
    --------
    >>> import numpy as np, literate_tx as ltx
    >>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 8)
    >>> a = ltx.create_model(cfg, seed=3, dtype="float64")
    >>> b = ltx.create_model(cfg, params=a.parameters(), dtype="float64")
    >>> bool(np.array_equal(a.forward([[1, 2]]), b.forward([[1, 2]])))
    True
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
    dtype = check_dtype(dtype)
    if not isinstance(backend, str) or backend not in _MODEL_CLASSES:
        raise ValueError(
            f"backend={backend!r} is not available; choose one of "
            f"{', '.join(map(repr, BACKENDS))}"
        )
    if backend == "torch":
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "backend='torch' needs PyTorch, which is not installed; install it with "
                "`pip install 'literate-tx[torch]'` (or `pip install torch`)"
            ) from exc
    fast = bool(backend_options.pop("fast", False))
    module, name = _MODEL_CLASSES[backend][fast]
    cls = getattr(importlib.import_module(module, __package__), name)
    return cls(config, params, seed=seed, dtype=dtype, **backend_options)

r"""The PyTorch backend: ``nn.Module``\ s with autograd, and the shared model API.

Every module mirrors the NumPy module of the same name (same statement order, same comments),
with the forward pass only: autograd computes the gradients whose derivations live in the NumPy
reference's docstrings, and the tests prove both equal. There is no ``softmax.py``:
:func:`torch.softmax` and :func:`torch.nn.functional.scaled_dot_product_attention` take its place
(the derivation is in :mod:`literate_tx.numpy_backend.softmax`).

Modules, in the order a forward pass uses them: :mod:`~.positions`, :mod:`~.embedding`,
:mod:`~.norms`, :mod:`~.linear`, :mod:`~.attention`, :mod:`~.activations`, :mod:`~.feedforward`,
:mod:`~.dropout`, :mod:`~.block`, :mod:`~.loss`, :mod:`~.model`.

Examples
--------
>>> import literate_tx as ltx
>>> m = ltx.create_model(ltx.ModelConfig(10, 8, 1, 2, 16, 8), backend="torch")
>>> m
TorchModel(1 layers, d_model=8, 840 parameters, float32, cpu, sdpa)
>>> type(m.module).__name__
'Transformer'
"""

from .model import TorchModel, Transformer

__all__ = ["TorchModel", "Transformer"]

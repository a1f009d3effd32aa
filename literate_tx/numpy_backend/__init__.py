r"""The NumPy backend: the reference implementation whose docstrings hold the derivations.

Every module pairs a forward function with its hand-derived backward function and a small
``NamedTuple`` cache carrying exactly what the backward pass needs. All functions are vectorised
over the batch and the heads; the only Python loop is over the layers of the model.

Modules, in the order a forward pass uses them: :mod:`~.positions`, :mod:`~.embedding`,
:mod:`~.norms`, :mod:`~.linear`, :mod:`~.softmax`, :mod:`~.attention`, :mod:`~.activations`,
:mod:`~.feedforward`, :mod:`~.dropout`, :mod:`~.block`, :mod:`~.loss`, :mod:`~.model`.
"""

from .model import NumpyModel

__all__ = ["NumpyModel"]

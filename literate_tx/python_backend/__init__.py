r"""The pure-Python backend: the same transformer with lists of floats and the :mod:`math` module.

Module for module the mirror of :mod:`literate_tx.numpy_backend` — same file names, same function
names, same statement order and comments — but every matrix product is a list of dot products and
every head is a Python loop, so each line can be read (and stepped through in a debugger) as the
arithmetic it is. The derivations live in the NumPy modules' docstrings; the modules here link to
them and cite the same equation labels.

Modules, in the order a forward pass uses them: :mod:`~.positions`, :mod:`~.embedding`,
:mod:`~.norms`, :mod:`~.linear`, :mod:`~.softmax`, :mod:`~.attention`, :mod:`~.activations`,
:mod:`~.feedforward`, :mod:`~.dropout`, :mod:`~.block`, :mod:`~.loss`, :mod:`~.model`, plus
:mod:`~.trace`, which reports every step of a pass with its shape and statistics, and the speed
path :mod:`~.fast` (the same model with faster dot products, proven equal).

Examples
--------
>>> import literate_tx as ltx
>>> from literate_tx.python_backend import PythonModel, Trace
>>> trace = Trace()
>>> model = PythonModel(ltx.ModelConfig(10, 8, 1, 2, 16, 8), trace=trace)
>>> model.forward([[1, 2, 3]]).shape
(1, 3, 10)
>>> [r.step for r in trace.records if r.step.startswith("attention w")]
['attention weights']
"""

from .model import PythonModel
from .trace import Trace, TraceRecord

__all__ = ["PythonModel", "Trace", "TraceRecord"]

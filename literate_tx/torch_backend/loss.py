r"""Cross-entropy of next-token prediction, averaged over the targets that count.

Derivation: :mod:`literate_tx.numpy_backend.loss` (eqs. :eq:`ce-forward`, :eq:`ce-backward`).
:func:`torch.nn.functional.cross_entropy` with ``ignore_index`` and the default ``"mean"``
reduction computes exactly eq. :eq:`ce-forward`: the mean over the positions whose target is not
ignored. Autograd gives eq. :eq:`ce-backward`.

Examples
--------
Uniform logits over :math:`V` classes cost :math:`\log V`:

>>> import math, torch
>>> loss = cross_entropy(torch.zeros(1, 2, 4), torch.tensor([[1, 3]]))
>>> round(float(loss), 6) == round(math.log(4), 6)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cross_entropy"]


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                  ignore_index: int = -100) -> torch.Tensor:
    r"""Mean cross-entropy over non-ignored positions, eq. :eq:`ce-forward`.

    Unlike the NumPy reference it does not check that some target counts (that check would
    synchronise with the device); with every target ignored the result is NaN.
    :class:`~literate_tx.torch_backend.model.TorchModel` checks before calling it.

    Parameters
    ----------
    logits : (B, T, V) Tensor
    targets : (B, T) int Tensor
    ignore_index : int

    Returns
    -------
    loss : () Tensor

    Examples
    --------
    Ignored positions contribute nothing:

    >>> z = torch.tensor([[[0.0, 50.0], [0.0, 0.0]]])  # the first position would cost 50
    >>> round(float(cross_entropy(z, torch.tensor([[-100, 0]]))), 4)  # log 2, from the second
    0.6931
    """
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                           ignore_index=ignore_index)  # (), eq. (ce-forward)

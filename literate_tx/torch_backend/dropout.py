r"""Inverted dropout, with explicit masks or with PyTorch's own random ones.

Definition: :mod:`literate_tx.numpy_backend.dropout` (eq. :eq:`dropout`). A :class:`Dropout`
module is told, at each call, either

* a dict of explicit masks (``masks`` is not None): it multiplies by ``masks[name]`` — the masks
  of :func:`literate_tx.masks.make_masks`, so the very same mask as in every other
  backend — and applies no dropout where the dict has no entry of that name; or
* no masks (``masks=None``): it calls :func:`torch.nn.functional.dropout` in training mode
  (``module.train()``), drawing from PyTorch's generator, and is the identity in evaluation mode.

The module's name in the model tree is the mask's name: ``embed.dropout`` is the dropout module
of the embedding and reads the mask ``embed.dropout``.

Examples
--------
>>> import torch
>>> drop = Dropout(0.5)
>>> drop(torch.ones(3), {"dropout": torch.tensor([0.0, 2.0, 2.0])}, "dropout").tolist()
[0.0, 2.0, 2.0]
>>> drop.eval()(torch.ones(3), None, "dropout").tolist()
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Dropout"]


class Dropout(nn.Module):
    r"""Inverted dropout with drop rate ``p`` (:math:`\rho`), eq. :eq:`dropout`.

    Parameters
    ----------
    p : float
        Probability of zeroing an activation, in ``[0, 1)``.

    Examples
    --------
    In training mode with no masks, kept entries are scaled by :math:`1/(1-\rho)`:

    >>> _ = torch.manual_seed(0)
    >>> y = Dropout(0.5).train()(torch.ones(1000), None, "dropout")
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor, masks: Mapping[str, torch.Tensor] | None,
                name: str) -> torch.Tensor:
        r"""Apply ``masks[name]``, or torch's random dropout when ``masks`` is None.

        Parameters
        ----------
        x : Tensor
        masks : mapping of str to Tensor, or None
            Explicit masks with local names; a missing ``name`` means no dropout here.
        name : str
            This site's mask name (``"dropout"``, ``"resid_dropout"``, ...).

        Returns
        -------
        Tensor, same shape as ``x``

        Examples
        --------
        Given masks replace random dropout, even in training mode:

        >>> Dropout(0.5).train()(torch.ones(2), {}, "dropout").tolist()
        [1.0, 1.0]
        """
        if masks is None:
            return F.dropout(x, self.p, self.training)  # torch's own mask, eq. (dropout)
        mask = masks.get(name)
        return x if mask is None else x * mask  # the given mask, eq. (dropout)

    def extra_repr(self) -> str:
        """The probability, shown in the module's repr.

        Examples
        --------
        >>> Dropout(0.1)
        Dropout(p=0.1)
        """
        return f"p={self.p}"

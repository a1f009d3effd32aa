r"""Training compute: how many floating-point operations a token costs.

The estimate (Kaplan et al. 2020, with the attention term of Chowdhery et al. 2022, "PaLM",
appendix B) counts the floating-point operations of the matrix products, forward and backward:

.. math::
   :label: flops-per-token

   \mathrm{FLOPs\ per\ token} \approx 6 N + 12\, L\, T\, C ,

where :math:`N` is the number of weights used in a matrix product (every parameter except the
embedding lookups, plus the :math:`C \times V` output head even when it is tied to the token
table), :math:`T` the sequence length, :math:`L` the layers and :math:`C` the width. A product of a
:math:`(1 \times n)` row with an :math:`(n \times m)` matrix costs :math:`2nm` FLOPs; the backward
pass costs twice the forward (one product for the input gradient, one for the weight gradient),
hence :math:`2 + 4 = 6` per weight. The second term is the attention scores :math:`qk^\top` and the
weighted sum :math:`av` (:math:`2 \cdot 2TC` per token and layer forward, times three), counted
for the full :math:`T \times T` matrix as implementations compute it. Norms, softmax and
activations are ignored (a few percent at these sizes).

The benchmark (:func:`literate_tx.bench.step_flops`) turns it into FLOPs per call, and
:func:`literate_tx.plots.plot_runs` into an axis of training compute.

Examples
--------
>>> import literate_tx as ltx
>>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4)
>>> flops_per_token(cfg) / flops_per_token(cfg, seq_len=2) > 1  # longer rows, more attention
True
"""

from __future__ import annotations

import math

from .params import param_shapes

__all__ = ["flops_per_token"]


def flops_per_token(config, seq_len: int | None = None) -> float:
    r"""Training FLOPs per token, eq. :eq:`flops-per-token`: :math:`6N + 12 L T C`.

    Parameters
    ----------
    config : ModelConfig
    seq_len : int, optional
        :math:`T` (default ``config.max_seq_len``).

    Returns
    -------
    float
        Forward and backward FLOPs of the matrix products for one token.

    Examples
    --------
    >>> import literate_tx as ltx
    >>> cfg = ltx.ModelConfig(10, 8, 1, 2, 16, 4, bias=False, norm="none", position="rope")
    >>> # N = 4 C^2 + 2 C F + C V = 256 + 256 + 80 = 592 weights in products
    >>> flops_per_token(cfg), 6 * 592 + 12 * 1 * 4 * 8
    (3936.0, 3936)
    """
    shapes = param_shapes(config)
    N = sum(math.prod(s) for name, s in shapes.items()
            if name not in ("embed.tokens", "embed.positions"))
    if config.tie_embeddings:
        N += config.d_model * config.vocab_size  # the head reuses E but still multiplies by it
    T = config.max_seq_len if seq_len is None else int(seq_len)
    return float(6 * N + 12 * config.n_layers * T * config.d_model)

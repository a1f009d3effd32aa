r"""Where is a token? Sinusoidal tables, rotary embeddings (RoPE) and ALiBi biases, in PyTorch.

The derivations (eqs. :eq:`sinusoidal`, :eq:`rope`, :eq:`alibi`) live in
:mod:`literate_tx.numpy_backend.positions`. The functions here compute the same tables with
torch operations, in float64 and then cast, as the NumPy reference does, so that both backends
see the same numbers. They are computed on the fly, on the device of the model: no buffers, so
nothing to keep in step when a module moves between dtypes or devices. RoPE needs no backward
of its own here: autograd differentiates :func:`apply_rope`.

Examples
--------
>>> alibi_slopes(4).tolist()
[0.25, 0.0625, 0.015625, 0.00390625]
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "sinusoidal_table",
    "rope_tables",
    "rotate_half",
    "apply_rope",
    "alibi_slopes",
    "alibi_bias",
]


def sinusoidal_table(T: int, C: int, dtype=torch.float64, offset: int = 0,
                     device=None) -> torch.Tensor:
    r"""The fixed sinusoidal table of eq. :eq:`sinusoidal` for positions ``offset .. offset+T-1``.

    Parameters
    ----------
    T : int
        Number of positions.
    C : int
        Model width (odd widths drop the last cosine).
    dtype : torch.dtype
    offset : int
        First position (for incremental decoding).
    device : torch.device, optional

    Returns
    -------
    P : (T, C) Tensor

    Examples
    --------
    Position 0 is ``sin 0 = 0`` on even and ``cos 0 = 1`` on odd coordinates:

    >>> sinusoidal_table(2, 4)[0].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    f64 = dict(dtype=torch.float64, device=device)
    t = torch.arange(offset, offset + T, **f64)[:, None]  # (T, 1)
    omega = 10000.0 ** (-torch.arange(0, C, 2, **f64) / C)  # (ceil(C/2),)
    P = torch.zeros(T, C, **f64)  # (T, C)
    P[:, 0::2] = torch.sin(t * omega)  # eq. (sinusoidal)
    P[:, 1::2] = torch.cos(t * omega)[:, : C // 2]
    return P.to(dtype)


def rope_tables(T: int, D: int, theta: float, dtype=torch.float64, offset: int = 0,
                device=None, scaling=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Cosines and sines of eq. :eq:`rope` for positions ``offset .. offset+T-1``.

    Parameters
    ----------
    T : int
    D : int
        Head width (even).
    theta : float
        Base :math:`\Theta`.
    dtype : torch.dtype
    offset : int
    device : torch.device, optional
    scaling : RopeScaling, optional
        Llama 3.1's frequency scaling, eq. :eq:`rope-scaling` (``cfg.rope_scaling``).

    Returns
    -------
    cos, sin : (T, D) Tensor
        Each of the ``D/2`` angles appears twice: at ``i`` and at ``i + D/2``.

    Examples
    --------
    >>> cos, sin = rope_tables(3, 4, 10000.0)
    >>> [round(s, 4) for s in sin[1].tolist()]  # position 1: angles 1 and 1/100
    [0.8415, 0.01, 0.8415, 0.01]
    """
    f64 = dict(dtype=torch.float64, device=device)
    inv_freq = theta ** (-torch.arange(0, D, 2, **f64) / D)  # (D/2,)
    if scaling is not None:  # eq. (rope-scaling)
        inv_freq = torch.tensor(scaling.scale(inv_freq.tolist()), **f64)  # (D/2,)
    angles = torch.arange(offset, offset + T, **f64)[:, None] * inv_freq  # (T, D/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, D), pair i with i + D/2
    return torch.cos(angles).to(dtype), torch.sin(angles).to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    r"""The map :math:`\mathrm{rh}(x) = (-x_{D/2:}, x_{:D/2})` of eq. :eq:`rope`.

    Examples
    --------
    >>> rotate_half(torch.tensor([1.0, 2.0, 3.0, 4.0])).tolist()
    [-3.0, -4.0, 1.0, 2.0]
    """
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)  # (..., D)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    r"""Rotate queries or keys by their positions, eq. :eq:`rope`.

    Parameters
    ----------
    x : (B, H, T, D) Tensor
    cos, sin : (T, D) Tensor
        From :func:`rope_tables`.

    Returns
    -------
    (B, H, T, D) Tensor

    Examples
    --------
    A rotation keeps the length of every pair:

    >>> x = torch.tensor([[[[3.0, 0.0, 4.0, 1.0]]]], dtype=torch.float64)
    >>> cos, sin = rope_tables(1, 4, 10000.0, offset=5)
    >>> y = apply_rope(x, cos, sin)
    >>> round(float(torch.hypot(y[..., 0], y[..., 2])), 12)
    5.0
    """
    return x * cos + rotate_half(x) * sin  # (B, H, T, D), eq. (rope)


def alibi_slopes(H: int) -> torch.Tensor:
    r"""Per-head ALiBi slopes :math:`\kappa_h` of eq. :eq:`alibi` (float64).

    Examples
    --------
    Three heads take the two slopes of :math:`n = 2` and the first odd slope of :math:`2n = 4`:

    >>> alibi_slopes(3).tolist()
    [0.0625, 0.00390625, 0.25]
    """

    def power_of_two_slopes(n: int) -> list[float]:
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    n = 2 ** int(math.floor(math.log2(H)))
    slopes = power_of_two_slopes(n)
    if n < H:
        slopes += power_of_two_slopes(2 * n)[0::2][: H - n]
    return torch.tensor(slopes, dtype=torch.float64)


def alibi_bias(H: int, T_q: int, T_k: int | None = None, dtype=torch.float64, offset: int = 0,
               device=None) -> torch.Tensor:
    r"""The additive score bias :math:`-\kappa_h (i - j)` of eq. :eq:`alibi`.

    Parameters
    ----------
    H : int
        Heads.
    T_q : int
        Number of queries, at positions ``offset .. offset + T_q - 1``.
    T_k : int, optional
        Number of keys, at positions ``0 .. T_k - 1`` (default ``offset + T_q``).
    dtype : torch.dtype
    offset : int
    device : torch.device, optional

    Returns
    -------
    (H, T_q, T_k) Tensor
        Future keys (``j > i``) get a positive bias here; the causal mask removes them.

    Examples
    --------
    In units of the head's slope, the bias is minus the distance ``i - j``:

    >>> (alibi_bias(1, 3)[0] / alibi_slopes(1)[0] + 0.0).tolist()
    [[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]]
    """
    if T_k is None:
        T_k = offset + T_q
    f64 = dict(dtype=torch.float64, device=device)
    i = torch.arange(offset, offset + T_q, **f64)[:, None]  # (T_q, 1)
    j = torch.arange(T_k, **f64)[None, :]  # (1, T_k)
    slopes = alibi_slopes(H).to(device)  # (H,)
    return (-slopes[:, None, None] * (i - j)).to(dtype)  # (H, T_q, T_k)

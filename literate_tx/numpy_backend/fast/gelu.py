r"""Both GELUs of eq. :eq:`activations`, forward and backward, fused in L2-sized chunks (item 2 of
:mod:`literate_tx.numpy_backend.fast`).

Each GELU is :math:`u` times a gate :math:`c(u) \in (0, 1)`:

.. math::

   \mathrm{gelu}(u) = u\,\Phi(u), \qquad
   \mathrm{gelu_{tanh}}(u) = u\,\tfrac12(1 + \tanh k) = u\,\sigma(2k), \quad
   2k = \alpha u + \beta u^3,\ \alpha = 2\sqrt{2/\pi},\ \beta = 0.044715\,\alpha,

using :math:`\tfrac12(1 + \tanh k) = 1/(1 + e^{-2k}) = \sigma(2k)`. The forward pass keeps the
gate :math:`c` for the backward pass, whose slope is written with it:

.. math::

   \mathrm{gelu}'(u) = \Phi(u) + u\,\varphi(u), \qquad
   \mathrm{gelu_{tanh}}'(u) = c + u\,c\,(1 - c)\,(\alpha + 3\beta u^2),

since :math:`\sigma' = \sigma(1 - \sigma)` and :math:`d(2k)/du = \alpha + 3\beta u^2`. The
second is the same function as the reference's :math:`\tfrac12(1 + \tanh k) + \tfrac12 u (1 -
\tanh^2 k)\,k'` (with :math:`t = \tanh k = 2c - 1`, :math:`1 - t^2 = 4c(1 - c)`), without a
``tanh``: one ``exp`` and a division give :math:`c`. Written with ``tanh`` instead (the same
number of passes), the forward pass below took 11.5 ms against 7.2 ms on the array measured
next; on an AVX2 machine NumPy's float32 ``exp`` cost half its ``tanh`` (see
:mod:`~literate_tx.numpy_backend.fast.erf`).

Why fuse, and why chunks. The reference's formulas make one temporary per operator, each a
full pass over the (B T, F) array: for the ``tiny`` recipe that is 8 192 x 512 float32, 16 MiB,
and one pass (``u * u``) takes 0.74 ms whether or not it is cut in chunks, since it streams
from memory either way. A formula of ten passes is another matter: on a chunk of ``_CHUNK``
elements (256 KiB of float32) its intermediate stays in the L2 cache from one pass to the
next, and the ``out=`` passes make no temporaries. Measured on that array (one thread, AMD
EPYC Zen 4, 2026-12, median of 30): the tanh GELU took 19.8 ms forward and 36.9 ms backward
with the reference's formulas, and takes 7.0 and 6.5 ms here; the exact GELU 10.4 and 7.1 ms.

Examples
--------
>>> import numpy as np
>>> from literate_tx.numpy_backend.activations import activation_backward, activation_forward
>>> u = np.linspace(-6, 6, 1001)
>>> a, gate = gelu_forward("gelu_tanh", u)
>>> bool(np.allclose(a, activation_forward("gelu_tanh", u), rtol=0, atol=1e-15))
True
>>> da = np.cos(u)
>>> ref = activation_backward("gelu_tanh", da, u)
>>> bool(np.allclose(gelu_backward("gelu_tanh", da.copy(), u, gate), ref, rtol=0, atol=1e-14))
True
"""

from __future__ import annotations

import math

import numpy as np

from .erf import _INV_SQRT_2PI, _gelu_cdf, _logistic_of_exponent, _odd_poly_into

__all__ = ["gelu_backward", "gelu_forward"]

_ALPHA = 2.0 * math.sqrt(2.0 / math.pi)  # 2k = ALPHA u + BETA u^3
_BETA = 0.044715 * _ALPHA
# the exponent -2k = u (-BETA u^2 - ALPHA) of sigma(2k) = 1 / (1 + exp(-2k)), highest power first
_TANH_GATE_Q = (-_BETA, -_ALPHA)
_CHUNK = 65536  # elements per chunk: 256 KiB of float32, four arrays of it fit in a 1 MiB L2


def _chunks(n: int):
    """Slices of ``range(n)`` of at most ``_CHUNK`` elements."""
    return (slice(start, min(n, start + _CHUNK)) for start in range(0, n, _CHUNK))


def gelu_forward(kind: str, u: np.ndarray, *,
                 out: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    r"""The activation :math:`a = u\,c(u)` and its gate :math:`c` (kept for the backward pass).

    Parameters
    ----------
    kind : {"gelu", "gelu_tanh"}
    u : ndarray
        Pre-activations, any shape; float32 or float64 (the result has the same dtype).
    out : (ndarray, ndarray), optional
        Arrays to write ``a`` and ``gate`` into (contiguous, shaped like ``u``).

    Returns
    -------
    a, gate : ndarray
        Same shape as ``u``. ``gate`` is :math:`\Phi(u)` for ``"gelu"`` (the float32 erf of
        :func:`~literate_tx.numpy_backend.fast.fast_erf`, SciPy's in float64) and
        :math:`\sigma(2k)` for ``"gelu_tanh"``.

    Examples
    --------
    >>> import numpy as np
    >>> a, gate = gelu_forward("gelu_tanh", np.float32([-1.0, 0.0, 2.0]))
    >>> np.round(a, 4), gate.dtype
    (array([-0.1588,  0.    ,  1.9546], dtype=float32), dtype('float32'))
    >>> gelu_forward("relu", np.zeros(2))
    Traceback (most recent call last):
    ...
    ValueError: kind='relu' is not allowed; the fused kernels are for 'gelu' and 'gelu_tanh'
    """
    _check_kind(kind)
    a, gate = out if out is not None else (np.empty_like(u), np.empty_like(u))
    if kind == "gelu":
        _gelu_cdf(u, out=gate)  # Phi(u), chunked inside
    else:
        _odd_poly_into(u.reshape(-1), gate.reshape(-1), _TANH_GATE_Q, _logistic_of_exponent)
    np.multiply(u, gate, out=a)  # u c(u)
    return a, gate


def gelu_backward(kind: str, da: np.ndarray, u: np.ndarray, gate: np.ndarray) -> np.ndarray:
    r"""The gradient :math:`\delta u = f'(u)\,\delta a`, written over ``da`` (returned).

    Parameters
    ----------
    kind : {"gelu", "gelu_tanh"}
    da : ndarray
        The upstream gradient; overwritten with :math:`\delta u`.
    u, gate : ndarray
        The pre-activations and the gate that :func:`gelu_forward` returned for them.

    Examples
    --------
    The slope of both GELUs at 0 is 1/2:

    >>> import numpy as np
    >>> u = np.zeros(3)
    >>> [gelu_backward(k, np.ones(3), u, gelu_forward(k, u)[1])[0] for k in ("gelu", "gelu_tanh")]
    [np.float64(0.5), np.float64(0.5)]
    """
    _check_kind(kind)
    da = np.ascontiguousarray(da)  # itself when contiguous (a fresh product always is)
    u_flat, g_flat, d_flat = u.reshape(-1), gate.reshape(-1), da.reshape(-1)
    n = min(_CHUNK, u_flat.size)
    t = np.empty(n, dtype=u.dtype)  # (n,), the slope of a chunk
    w = np.empty(n, dtype=u.dtype)  # (n,), 1 - c for the tanh form
    for part in _chunks(u_flat.size):
        m = part.stop - part.start
        uc, gc, tc, wc = u_flat[part], g_flat[part], t[:m], w[:m]
        np.multiply(uc, uc, out=tc)  # u^2
        if kind == "gelu":  # Phi(u) + u phi(u), phi(u) = exp(-u^2 / 2) / sqrt(2 pi)
            tc *= -0.5
            np.exp(tc, out=tc)
            tc *= _INV_SQRT_2PI
        else:  # c + u c (1 - c) (alpha + 3 beta u^2)
            tc *= 3.0 * _BETA
            tc += _ALPHA
            tc *= gc
            np.subtract(1.0, gc, out=wc)
            tc *= wc
        tc *= uc
        tc += gc
        d_flat[part] *= tc
    return da


def _check_kind(kind: str) -> None:
    if kind not in ("gelu", "gelu_tanh"):
        raise ValueError(f"kind={kind!r} is not allowed; the fused kernels are for 'gelu' and "
                         "'gelu_tanh'")

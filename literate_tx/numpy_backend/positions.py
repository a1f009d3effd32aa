r"""Where is a token? Sinusoidal tables, rotary embeddings (RoPE) and ALiBi biases.

Attention by itself is blind to order: permuting the keys permutes nothing in a query's weighted
sum. Four schemes put position back in (a fifth, ``"none"``, relies on the causal mask alone).

Sinusoidal (added to the embedding)
-----------------------------------
.. math::
   :label: sinusoidal

   P_{t, 2i} = \sin\!\big(t\, \omega_i\big), \qquad P_{t, 2i+1} = \cos\!\big(t\, \omega_i\big),
   \qquad \omega_i = 10000^{-2i/C} .

No parameters, so no gradient; the table is added to the token embedding.

Learned (added to the embedding)
--------------------------------
A trainable table :math:`P \in \mathbb{R}^{T_{max} \times C}`; row :math:`t` is added at position
:math:`t` (see :mod:`~literate_tx.numpy_backend.embedding`).

Rotary position embedding, RoPE (applied to queries and keys)
-------------------------------------------------------------
RoPE rotates each pair of coordinates of a query or key by an angle proportional to its position.
We use the *rotate-half* pairing of GPT-NeoX and Llama: coordinate :math:`i` of a head of width
:math:`D` is paired with coordinate :math:`i + D/2`. With
:math:`\theta_i = \Theta^{-2i/D}` (:math:`\Theta` = ``rope_theta``) and position :math:`t`,

.. math::
   :label: rope

   \mathrm{rope}(x, t) = x \odot \cos(t\theta) + \mathrm{rh}(x) \odot \sin(t\theta),
   \qquad \mathrm{rh}(x) = (-x_{D/2:},\; x_{:D/2}),

where :math:`\cos(t\theta)` repeats the :math:`D/2` angles twice to length :math:`D`. Because a
rotation by :math:`a` followed by the transpose of a rotation by :math:`b` is a rotation by
:math:`a - b`, the score :math:`\mathrm{rope}(q, s)^\top \mathrm{rope}(k, t)` depends on
:math:`s - t` only: RoPE makes attention *relative*.

Backward: ``rh`` is the linear map :math:`\begin{psmallmatrix}0 & -I\\ I & 0\end{psmallmatrix}`,
whose transpose is :math:`-\mathrm{rh}`; so

.. math::
   :label: rope-backward

   \delta x = \delta y \odot \cos(t\theta) - \mathrm{rh}\big(\delta y \odot \sin(t\theta)\big),

which is the rotation by :math:`-t\theta`: the inverse (= transpose) of the forward rotation.

Llama 3.1 and later stretch the slow frequencies for longer contexts
(:class:`~literate_tx.config.RopeScaling`, ``cfg.rope_scaling``): with :math:`T_0` the context
the model was first trained on, :math:`\Lambda_i = 2\pi/\theta_i` a frequency's wavelength and
:math:`f` the stretch,

.. math::
   :label: rope-scaling

   \theta_i \leftarrow \begin{cases}
       \theta_i & \Lambda_i < T_0 / f_{hi}, \\
       \theta_i / f & \Lambda_i > T_0 / f_{lo}, \\
       (1 - \varpi_i)\, \theta_i / f + \varpi_i \theta_i, \quad
       \varpi_i = \frac{T_0/\Lambda_i - f_{lo}}{f_{hi} - f_{lo}} & \text{otherwise},
   \end{cases}

before eq. :eq:`rope`; the angles are fixed numbers, so eq. :eq:`rope-backward` is unchanged.

ALiBi (added to the attention scores)
-------------------------------------
ALiBi adds a penalty proportional to the distance between query :math:`i` and key :math:`j`,
with one slope :math:`\kappa_h` per head (the ALiBi paper writes :math:`m`, which is the dropout
mask here):

.. math::
   :label: alibi

   s_{hij} \mathrel{+}= -\kappa_h\,(i - j), \qquad \kappa_h = 2^{-8h/H}, \quad h = 1, \dots, H

for :math:`H` a power of two. For other :math:`H` the ALiBi paper takes the slopes of the nearest
lower power of two :math:`n` and adds every other slope of :math:`2n`. The bias is a constant:
it has no gradient.

Examples
--------
>>> import numpy as np
>>> np.round(alibi_slopes(4), 4)
array([0.25  , 0.0625, 0.0156, 0.0039])
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "sinusoidal_table",
    "rope_tables",
    "rotate_half",
    "apply_rope",
    "rope_backward",
    "alibi_slopes",
    "alibi_bias",
]


def sinusoidal_table(T: int, C: int, dtype=np.float64, offset: int = 0) -> np.ndarray:
    r"""The fixed sinusoidal table of eq. :eq:`sinusoidal` for positions ``offset .. offset+T-1``.

    Parameters
    ----------
    T : int
        Number of positions.
    C : int
        Model width (odd widths drop the last cosine).
    dtype : numpy dtype
    offset : int
        First position (for incremental decoding).

    Returns
    -------
    P : (T, C) ndarray

    Examples
    --------
    Position 0 is ``sin 0 = 0`` on even and ``cos 0 = 1`` on odd coordinates:

    >>> sinusoidal_table(2, 4)[0]
    array([0., 1., 0., 1.])
    """
    t = np.arange(offset, offset + T, dtype=np.float64)[:, None]  # (T, 1)
    omega = 10000.0 ** (-np.arange(0, C, 2, dtype=np.float64) / C)  # (ceil(C/2),)
    P = np.zeros((T, C))  # (T, C)
    P[:, 0::2] = np.sin(t * omega)  # eq. (sinusoidal)
    P[:, 1::2] = np.cos(t * omega)[:, : C // 2]
    return P.astype(dtype)


def rope_tables(
    T: int, D: int, theta: float, dtype=np.float64, offset: int = 0, scaling=None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Cosines and sines of eq. :eq:`rope` for positions ``offset .. offset+T-1``.

    Parameters
    ----------
    T : int
    D : int
        Head width (even).
    theta : float
        Base :math:`\Theta`.
    dtype : numpy dtype
    offset : int
    scaling : RopeScaling, optional
        Llama 3.1's frequency scaling, eq. :eq:`rope-scaling` (``cfg.rope_scaling``).

    Returns
    -------
    cos, sin : (T, D) ndarray
        Each of the ``D/2`` angles appears twice: at ``i`` and at ``i + D/2``.

    Examples
    --------
    >>> cos, sin = rope_tables(3, 4, 10000.0)
    >>> np.round(sin[1], 4)  # position 1: angles 1 and 1/100
    array([0.8415, 0.01  , 0.8415, 0.01  ])
    """
    inv_freq = theta ** (-np.arange(0, D, 2, dtype=np.float64) / D)  # (D/2,)
    if scaling is not None:  # eq. (rope-scaling)
        inv_freq = np.array(scaling.scale(inv_freq), dtype=np.float64)  # (D/2,)
    angles = np.arange(offset, offset + T, dtype=np.float64)[:, None] * inv_freq  # (T, D/2)
    angles = np.concatenate([angles, angles], axis=-1)  # (T, D), pair i with i + D/2
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)


def rotate_half(x: np.ndarray) -> np.ndarray:
    r"""The map :math:`\mathrm{rh}(x) = (-x_{D/2:}, x_{:D/2})` of eq. :eq:`rope`.

    Examples
    --------
    >>> rotate_half(np.array([1.0, 2.0, 3.0, 4.0]))
    array([-3., -4.,  1.,  2.])
    """
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)  # (..., D)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    r"""Rotate queries or keys by their positions, eq. :eq:`rope`.

    Parameters
    ----------
    x : (B, H, T, D) ndarray
    cos, sin : (T, D) ndarray
        From :func:`rope_tables`.

    Returns
    -------
    (B, H, T, D) ndarray

    Examples
    --------
    A rotation keeps the length of every pair:

    >>> x = np.array([[[[3.0, 0.0, 4.0, 1.0]]]])
    >>> cos, sin = rope_tables(1, 4, 10000.0, offset=5)
    >>> y = apply_rope(x, cos, sin)
    >>> float(np.hypot(y[..., 0], y[..., 2])[0, 0, 0])
    5.0
    """
    return x * cos + rotate_half(x) * sin  # (B, H, T, D), eq. (rope)


def rope_backward(dy: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    r"""Gradient through :func:`apply_rope`, eq. :eq:`rope-backward` (the inverse rotation).

    Examples
    --------
    >>> x = np.arange(8.0).reshape(1, 1, 2, 4)
    >>> cos, sin = rope_tables(2, 4, 10000.0)
    >>> bool(np.allclose(rope_backward(apply_rope(x, cos, sin), cos, sin), x))
    True
    """
    return dy * cos - rotate_half(dy * sin)  # (B, H, T, D), eq. (rope-backward)


def alibi_slopes(H: int) -> np.ndarray:
    r"""Per-head ALiBi slopes :math:`\kappa_h` of eq. :eq:`alibi`.

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
    return np.array(slopes)


def alibi_bias(H: int, T_q: int, T_k: int | None = None, dtype=np.float64,
               offset: int = 0) -> np.ndarray:
    r"""The additive score bias :math:`-\kappa_h (i - j)` of eq. :eq:`alibi`.

    Parameters
    ----------
    H : int
        Heads.
    T_q : int
        Number of queries, at positions ``offset .. offset + T_q - 1``.
    T_k : int, optional
        Number of keys, at positions ``0 .. T_k - 1`` (default ``offset + T_q``).
    dtype : numpy dtype
    offset : int

    Returns
    -------
    (H, T_q, T_k) ndarray
        Future keys (``j > i``) get a positive bias here; the causal mask removes them.

    Examples
    --------
    In units of the head's slope, the bias is minus the distance ``i - j``:

    >>> alibi_bias(1, 3)[0] / alibi_slopes(1)[0] + 0.0
    array([[ 0.,  1.,  2.],
           [-1.,  0.,  1.],
           [-2., -1.,  0.]])
    """
    if T_k is None:
        T_k = offset + T_q
    i = np.arange(offset, offset + T_q)[:, None]  # (T_q, 1)
    j = np.arange(T_k)[None, :]  # (1, T_k)
    return (-alibi_slopes(H)[:, None, None] * (i - j)).astype(dtype)  # (H, T_q, T_k)

r"""Learning-rate schedules: linear warmup, then constant, cosine or linear decay.

A schedule is a pure function of the step number; it holds no state, so
resuming a run needs only the step (which the optimiser's ``state_dict`` keeps).
Feed it to an optimiser one step at a time:
``optimizer.step(grads, lr=warmup_cosine(step, max_lr=..., warmup_steps=..., total_steps=...))``.
The same functions work for every backend (they return Python floats).

Step convention
---------------
``step`` counts the updates already made: the first update uses ``step=0``,
the :math:`(\tau+1)`-th uses ``step=`` :math:`\tau`. Write :math:`S_w` for ``warmup_steps``,
:math:`S` for ``total_steps``, :math:`\eta_{\max}` and :math:`\eta_{\min}` for
``max_lr`` and ``min_lr``.

Warmup rises linearly **from zero**: step 0 gets learning rate 0 (that first
update then leaves the weights unchanged, although Adam's moment estimates
already see its gradient), step :math:`\tau < S_w` gets

.. math:: \eta(\tau) = \eta_{\max}\, \frac{\tau}{S_w} \qquad (0 \le \tau < S_w) \tag{1}

and step :math:`S_w` is the peak, :math:`\eta(S_w) = \eta_{\max}` exactly. With
:math:`S_w = 0` there is no warmup and step 0 is the peak. (If you prefer the
first update to move, pass ``step + 1``.)

After the warmup the rate decays over :math:`S - S_w` steps. The fraction of the
decay done at step :math:`\tau` is

.. math:: \chi(\tau) = \frac{\tau - S_w}{S - S_w} \in [0, 1] \qquad (S_w \le \tau \le S) \tag{2}

and the rate is a weighted mean of the two end points, with weight

.. math:: \psi(\chi) = \tfrac12\bigl(1 + \cos \pi \chi\bigr) \ \text{(cosine)} \qquad
          \text{or} \qquad \psi(\chi) = 1 - \chi \ \text{(linear)} \tag{3}

.. math:: \eta(\tau) = (1 - \psi)\,\eta_{\min} + \psi\,\eta_{\max} \tag{4}

Written as a weighted mean, (4) gives :math:`\eta_{\max}` exactly at :math:`\chi = 0`
and :math:`\eta_{\min}` exactly at :math:`\chi = 1` (:math:`\cos\pi` rounds to
:math:`-1` exactly), with no rounding left over from :math:`\eta_{\min} +
(\eta_{\max} - \eta_{\min})`; the result is also clamped to
:math:`[\eta_{\min}, \eta_{\max}]`, where rounding of the two products could
otherwise overshoot by one ulp. Cosine decay lingers near the peak and near the
floor and falls fastest half way; linear decay falls at a constant rate.
From step :math:`S` on, the rate stays at :math:`\eta_{\min}`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Schedule", "constant", "warmup_cosine", "warmup_linear"]


def _check_int(name: str, value: object, *, low: int) -> int:
    r"""Return ``value`` as an int if it is an integer ``>= low``, else raise ValueError.

    Examples
    --------
    >>> _check_int("step", 3, low=0)
    3
    >>> _check_int("step", -1, low=0)
    Traceback (most recent call last):
    ...
    ValueError: step=-1 is not allowed; step must be an integer >= 0
    """
    try:
        as_int = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        as_int = None
    if as_int is None or as_int < low:
        raise ValueError(f"{name}={value!r} is not allowed; {name} must be an integer >= {low}")
    return as_int


def _check_rates(max_lr: object, min_lr: object) -> tuple[float, float]:
    r"""Return ``(max_lr, min_lr)`` as floats if ``0 <= min_lr <= max_lr``, both finite.

    Examples
    --------
    >>> _check_rates(1.0, 2.0)
    Traceback (most recent call last):
    ...
    ValueError: min_lr=2.0 is not allowed; min_lr must be <= max_lr=1.0 (and >= 0)
    """
    for name, value in (("max_lr", max_lr), ("min_lr", min_lr)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (ok and math.isfinite(value) and value >= 0):
            raise ValueError(
                f"{name}={value!r} is not allowed; {name} must be a finite number >= 0"
            )
    if min_lr > max_lr:
        raise ValueError(
            f"min_lr={min_lr!r} is not allowed; min_lr must be <= max_lr={max_lr!r} (and >= 0)"
        )
    return float(max_lr), float(min_lr)


def _check_steps(warmup_steps: object, total_steps: object) -> tuple[int, int]:
    r"""Return ``(warmup_steps, total_steps)`` if ``0 <= warmup_steps < total_steps``.

    Examples
    --------
    >>> _check_steps(10, 10)
    Traceback (most recent call last):
    ...
    ValueError: total_steps=10 is not allowed; total_steps must be greater than warmup_steps=10
    """
    warmup_steps = _check_int("warmup_steps", warmup_steps, low=0)
    total_steps = _check_int("total_steps", total_steps, low=1)
    if total_steps <= warmup_steps:
        raise ValueError(
            f"total_steps={total_steps} is not allowed; total_steps must be greater than "
            f"warmup_steps={warmup_steps}"
        )
    return warmup_steps, total_steps


def _warmup(step: int, max_lr: float, warmup_steps: int) -> float:
    r"""Linear warmup from 0, eq. (1); valid for ``step < warmup_steps``.

    Examples
    --------
    >>> _warmup(1, 1.0, 4)
    0.25
    """
    return max_lr * step / warmup_steps  # eq. (1)


def _decay(
    step: int,
    weight: Callable[[float], float],
    max_lr: float,
    warmup_steps: int,
    total_steps: int,
    min_lr: float,
) -> float:
    r"""The decay phase, eqs. (2)-(4), with ``weight`` the :math:`\psi(\chi)` of eq. (3).

    Examples
    --------
    >>> _decay(3, lambda p: 1 - p, 1.0, 2, 6, 0.0)
    0.75
    """
    if step >= total_steps:
        return min_lr  # flat after the end
    p = (step - warmup_steps) / (total_steps - warmup_steps)  # eq. (2)
    c = weight(p)  # eq. (3)
    lr = (1 - c) * min_lr + c * max_lr  # eq. (4)
    # the two rounded products can overshoot an end point by an ulp; never leave the range
    return min(max(lr, min_lr), max_lr)


def _cosine_weight(p: float) -> float:
    r"""Cosine weight :math:`\psi(\chi) = (1 + \cos \pi \chi) / 2`, eq. (3).

    Examples
    --------
    >>> _cosine_weight(0.0), _cosine_weight(1.0)
    (1.0, 0.0)
    """
    return 0.5 * (1 + math.cos(math.pi * p))


def _linear_weight(p: float) -> float:
    r"""Linear weight :math:`\psi(\chi) = 1 - \chi`, eq. (3).

    Examples
    --------
    >>> _linear_weight(0.25)
    0.75
    """
    return 1 - p


def constant(step: int, *, max_lr: float, warmup_steps: int = 0) -> float:
    r"""Linear warmup from 0 over ``warmup_steps`` (eq. (1)), then ``max_lr`` for ever.

    Parameters
    ----------
    step : int
        Number of updates already made (>= 0).
    max_lr : float
        The constant rate reached at ``step == warmup_steps``.
    warmup_steps : int, default 0
        Length of the warmup; 0 means ``max_lr`` from step 0.

    Returns
    -------
    float
        The learning rate for update number ``step``.

    Examples
    --------
    >>> [constant(s, max_lr=0.5) for s in range(3)]
    [0.5, 0.5, 0.5]
    >>> [constant(s, max_lr=0.5, warmup_steps=2) for s in range(4)]
    [0.0, 0.25, 0.5, 0.5]
    """
    step = _check_int("step", step, low=0)
    warmup_steps = _check_int("warmup_steps", warmup_steps, low=0)
    max_lr, _ = _check_rates(max_lr, 0.0)
    if step < warmup_steps:
        return _warmup(step, max_lr, warmup_steps)
    return max_lr


def warmup_cosine(
    step: int, *, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0
) -> float:
    r"""Warm up linearly from 0 to ``max_lr``, decay along a cosine to ``min_lr``, then stay flat.

    Parameters
    ----------
    step : int
        Number of updates already made (>= 0).
    max_lr : float
        Peak rate, reached exactly at ``step == warmup_steps``.
    warmup_steps : int
        Length of the linear warmup (>= 0), eq. (1).
    total_steps : int
        Step at which the decay ends (> ``warmup_steps``), eq. (2).
    min_lr : float, default 0
        Final rate, ``0 <= min_lr <= max_lr``; reached exactly at ``total_steps``.

    Returns
    -------
    float
        The learning rate for update number ``step``, eqs. (1)-(4).

    Examples
    --------
    >>> [round(warmup_cosine(s, max_lr=1.0, warmup_steps=2, total_steps=6), 4) for s in range(8)]
    [0.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    >>> warmup_cosine(6, max_lr=1.0, warmup_steps=2, total_steps=6, min_lr=0.1)
    0.1
    """
    step = _check_int("step", step, low=0)
    warmup_steps, total_steps = _check_steps(warmup_steps, total_steps)
    max_lr, min_lr = _check_rates(max_lr, min_lr)
    if step < warmup_steps:
        return _warmup(step, max_lr, warmup_steps)
    return _decay(step, _cosine_weight, max_lr, warmup_steps, total_steps, min_lr)


def warmup_linear(
    step: int, *, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0
) -> float:
    r"""Warm up linearly from 0 to ``max_lr``, decay linearly to ``min_lr``, then stay flat.

    Parameters
    ----------
    step : int
        Number of updates already made (>= 0).
    max_lr : float
        Peak rate, reached exactly at ``step == warmup_steps``.
    warmup_steps : int
        Length of the linear warmup (>= 0), eq. (1).
    total_steps : int
        Step at which the decay ends (> ``warmup_steps``), eq. (2).
    min_lr : float, default 0
        Final rate, ``0 <= min_lr <= max_lr``; reached exactly at ``total_steps``.

    Returns
    -------
    float
        The learning rate for update number ``step``, eqs. (1)-(4).

    Examples
    --------
    >>> [warmup_linear(s, max_lr=1.0, warmup_steps=2, total_steps=6) for s in range(8)]
    [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    step = _check_int("step", step, low=0)
    warmup_steps, total_steps = _check_steps(warmup_steps, total_steps)
    max_lr, min_lr = _check_rates(max_lr, min_lr)
    if step < warmup_steps:
        return _warmup(step, max_lr, warmup_steps)
    return _decay(step, _linear_weight, max_lr, warmup_steps, total_steps, min_lr)


@dataclass(frozen=True)
class Schedule:
    r"""A validated, callable learning-rate schedule: ``Schedule(...)(step) -> lr``.

    Parameters
    ----------
    kind : {"constant", "cosine", "linear"}
        :func:`constant`, :func:`warmup_cosine` or :func:`warmup_linear`.
    max_lr : float
        Peak rate.
    warmup_steps : int, default 0
        Length of the linear warmup from 0.
    total_steps : int, optional
        End of the decay; required for ``"cosine"`` and ``"linear"``, must be
        left out for ``"constant"``.
    min_lr : float, default 0
        Final rate of the decay; must stay 0 for ``"constant"``.

    Examples
    --------
    >>> sched = Schedule("linear", max_lr=1.0, warmup_steps=2, total_steps=6, min_lr=0.2)
    >>> [round(sched(s), 4) for s in range(8)]
    [0.0, 0.5, 1.0, 0.8, 0.6, 0.4, 0.2, 0.2]
    >>> Schedule("cosine", max_lr=1.0)
    Traceback (most recent call last):
    ...
    ValueError: total_steps=None is not allowed for kind='cosine'; give an integer > warmup_steps=0
    """

    kind: Literal["constant", "cosine", "linear"]
    max_lr: float
    warmup_steps: int = 0
    total_steps: int | None = None
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "cosine", "linear"):
            raise ValueError(
                f"kind={self.kind!r} is not allowed; kind must be 'constant', 'cosine' or 'linear'"
            )
        if self.kind == "constant":
            if self.total_steps is not None or self.min_lr != 0:
                raise ValueError(
                    f"total_steps={self.total_steps!r} and min_lr={self.min_lr!r} are not allowed "
                    "for kind='constant'; leave them at None and 0.0 (a constant schedule never "
                    "decays)"
                )
            # validates, and evaluates the warmup formula once
            constant(0, max_lr=self.max_lr, warmup_steps=self.warmup_steps)
            return
        if self.total_steps is None:
            raise ValueError(
                f"total_steps=None is not allowed for kind={self.kind!r}; give an integer > "
                f"warmup_steps={self.warmup_steps!r}"
            )
        _check_steps(self.warmup_steps, self.total_steps)
        _check_rates(self.max_lr, self.min_lr)

    def __call__(self, step: int) -> float:
        r"""The learning rate for update number ``step``.

        Parameters
        ----------
        step : int
            Number of updates already made (>= 0).

        Returns
        -------
        float

        Examples
        --------
        >>> Schedule("constant", max_lr=0.1, warmup_steps=4)(1)
        0.025
        """
        if self.kind == "constant":
            return constant(step, max_lr=self.max_lr, warmup_steps=self.warmup_steps)
        schedule = warmup_cosine if self.kind == "cosine" else warmup_linear
        return schedule(
            step,
            max_lr=self.max_lr,
            warmup_steps=self.warmup_steps,
            total_steps=self.total_steps,
            min_lr=self.min_lr,
        )

"""Scalar pieces of the selection, compiled once for the CPU and reused by the CUDA kernels.

These are the scalar forms of :mod:`dba_ref.metrics` and of the greedy
decision rule of :mod:`dba_ref.search`, written with exactly the same
floating-point operations in the same order, so that a compiled search and
the NumPy reference round alike:

- :func:`metric` — ``variance`` ``T/k − Q/k²``, ``normalized_variance``
  ``kT/Q − 1``, ``mean_variance`` ``T/Q − 1/k``; the last two are ``+inf``
  when ``Q <= Q_EPS·k·T`` (see :mod:`dba_ref.metrics`). The metric is chosen
  by its position in :data:`dba_ref.metrics.METRIC_NAMES`.
- :func:`acceptance_threshold` — a greedy removal is accepted when its value
  is strictly below ``(1 − tol)·current`` (``current`` itself when ≤ 0).
- :func:`value_scale` — the rounding scale of a metric value
  (:func:`dba_ref.metrics.value_scale`).
- :func:`decision_margin` — ``min(|best − second| / s_best, |best − threshold|
  / max(s_best, s_current))``, 0 for equal values, 1 when exactly one is
  infinite: the margin the reference records for every step
  (:func:`dba_ref.search.decision_margin`).

Every function is an ``@njit`` dispatcher for the CPU kernels; the CUDA
backend compiles the same Python source (``.py_func``) as device functions,
which is why they call no other function of this module and use conditional
expressions instead of ``min``/``max`` (Numba's CUDA target does not compile
the two-argument builtins). They take and return float64: the statistics T,
Q and r are always accumulated in float64 (spec §4).

Note for developers: Numba's disk cache does not notice edits to a function
called from another module; after changing this file, delete the
``__pycache__`` folder of :mod:`dba_ref.backends`.
"""
from __future__ import annotations

import math

from numba import njit

from ..metrics import METRIC_NAMES, Q_EPS

VARIANCE = METRIC_NAMES.index("variance")
NORMALIZED_VARIANCE = METRIC_NAMES.index("normalized_variance")
MEAN_VARIANCE = METRIC_NAMES.index("mean_variance")


@njit(cache=True, error_model="numpy")
def metric(metric_id, T, Q, k):
    """Metric number ``metric_id`` of a subset with statistics ``(T, Q, k)`` (k a float)."""
    if metric_id == VARIANCE:
        return T / k - Q / (k * k)
    if not Q > Q_EPS * k * T:
        return math.inf
    if metric_id == NORMALIZED_VARIANCE:
        return k * T / Q - 1.0
    return T / Q - 1.0 / k


@njit(cache=True)
def acceptance_threshold(current, tol):
    """A candidate removal is accepted when its value is strictly below this."""
    if current <= 0:
        return current
    return (1.0 - tol) * current


@njit(cache=True, error_model="numpy")
def value_scale(metric_id, T, Q, k):
    """Rounding scale of the metric value of ``(T, Q, k)``: ``T/k``, ``(kT/Q)²`` or ``(kT/Q)(T/Q)``."""
    if metric_id == VARIANCE:
        return T / k
    if not Q > 0:                    # the value is +inf then; its scale is never used
        return math.inf
    condition = k * T / Q
    if metric_id == NORMALIZED_VARIANCE:
        return condition * condition
    return condition * (T / Q)


@njit(cache=True, error_model="numpy")
def decision_margin(best, second, threshold, scale_best, scale_current):
    """How close a greedy step was: the gap of ``best`` to ``second`` (over ``scale_best``) and to
    ``threshold`` (over the larger of the two scales), whichever is smaller.

    A gap is 0 when the values are equal (both inf included), 1 when exactly
    one is inf, and inf when its scale is not positive, as
    :func:`dba_ref.search.scaled_gap`.
    """
    margin = math.inf
    for which in range(2):
        other = second if which == 0 else threshold
        scale = scale_best if which == 0 or scale_best > scale_current else scale_current
        if best == other:
            gap = 0.0
        elif math.isinf(best) or math.isinf(other):
            gap = 1.0
        elif scale > 0:
            gap = abs(best - other) / scale
        else:
            gap = math.inf
        margin = gap if gap < margin else margin
    return margin

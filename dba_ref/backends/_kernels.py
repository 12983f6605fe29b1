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

Every function is an ``@njit`` dispatcher for the CPU kernels; the CUDA
backend compiles the same Python source (``.py_func``) as device functions,
which is why they call no other function of this module. They take and
return float64: the statistics T, Q and r are always accumulated in float64
(spec §4).

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

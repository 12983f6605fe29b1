"""Subset metrics from Gram statistics (spec §4). All are minimised.

For a subset S of ``k = |S| >= 1`` samples with per-sample gradients g_i::

    T = Σ_{i∈S} K[i,i]                 sum of squared norms
    Q = Σ_{i,j∈S} K[i,j] = ‖s‖²        s = Σ_{i∈S} g_i
    ‖ḡ‖² = Q / k²                      ḡ = s / k, the update direction

==========================  =======================  ======================================
name                        formula                  meaning
==========================  =======================  ======================================
``variance``                V = T/k − Q/k²           trace of the (biased) covariance
``normalized_variance``     V / ‖ḡ‖² = kT/Q − 1      noise-to-signal of one sample
``mean_variance``           (V/k)/‖ḡ‖² = T/Q − 1/k   noise-to-signal of the mean (norm test)
==========================  =======================  ======================================

A metric with ``Q`` in its denominator is ``+inf`` when ``Q <= Q_EPS · k · T``
(Cauchy–Schwarz gives ``Q <= k T``, so this is a scale-free "the selected
gradients cancel out" test; it also covers ``T = Q = 0``). Inputs are float64:
``T/k − Q/k²`` cancels badly when the gradients nearly agree.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_indices

#: Relative threshold under which ``Q`` counts as zero: ``Q <= Q_EPS * k * T``.
Q_EPS = 1e-12


def _guard(value, T, Q, k):
    return np.where(Q > Q_EPS * k * T, value, np.inf)[()]    # [()] turns a 0-d result into a scalar


def variance(T, Q, k):
    """``V = T/k − Q/k²``: mean squared distance of the selected gradients to their mean."""
    T, Q, k = np.asarray(T, np.float64), np.asarray(Q, np.float64), np.asarray(k, np.float64)
    return (T / k - Q / (k * k))[()]


def normalized_variance(T, Q, k):
    """``V / ‖ḡ‖² = kT/Q − 1`` (``+inf`` when Q is zero to rounding)."""
    T, Q, k = np.asarray(T, np.float64), np.asarray(Q, np.float64), np.asarray(k, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _guard(k * T / Q - 1.0, T, Q, k)


def mean_variance(T, Q, k):
    """``(V/k) / ‖ḡ‖² = T/Q − 1/k`` (``+inf`` when Q is zero to rounding)."""
    T, Q, k = np.asarray(T, np.float64), np.asarray(Q, np.float64), np.asarray(k, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _guard(T / Q - 1.0 / k, T, Q, k)


#: The metrics by name, in a fixed order.
METRICS = {"variance": variance, "normalized_variance": normalized_variance, "mean_variance": mean_variance}
#: Their names in that order, read off :data:`METRICS`; a metric's position is its integer id in the compiled kernels.
METRIC_NAMES = tuple(METRICS)


def metric_value(name: str, T, Q, k):
    """Evaluate metric ``name`` on statistics ``(T, Q, k)`` (scalars or arrays)."""
    return METRICS[name](T, Q, k)


def subset_stats(K: np.ndarray, indices) -> tuple[float, float, int]:
    """``(T, Q, k)`` of the subset ``indices`` of a Gram matrix ``K`` ``(B, B)``.

    ``indices``: distinct integer indices in ``[0, B)`` (summed in the order
    given) or a boolean mask of length B; the empty set has ``(0, 0, 0)``. A
    repeated index, which would count a sample twice, is refused
    (:func:`dba_ref._validation.check_indices`).
    """
    K = np.asarray(K, np.float64)
    indices = check_indices(indices, K.shape[0], allow_empty=True)
    sub = K[np.ix_(indices, indices)]
    return float(np.trace(sub)), float(sub.sum()), len(indices)

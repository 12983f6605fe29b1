"""The rule's long-path form: first-order bounds on the rounding error of metric values (spec §7.1).

A metric value is a difference that can cancel (``T/k − Q/k²``, ``kT/Q − 1``,
``T/Q − 1/k``), and greedy computes the value after t removals from running
sums (``r_i``, ``T``, ``Q``) updated t times, so its rounding error grows with
the path: after 1,098 removals of a batch of 1,100, two correct
implementations differ by 5.8e-11 relative, far more than the error of a
value computed afresh. :func:`path_error_bounds` follows the reference path
and bounds, to first order in the unit roundoff u, the error of every value
for *any* summation order::

    initial sums    |δr_i| ≤ γ_B Σ_j |K_ij|      |δT| ≤ γ_B T      |δQ| ≤ γ_B Σ_i |r_i| + Σ_i |δr_i|
    removing j      δT += u|T'|                   δQ += 2|δr_j| + u(|2r_j − K_jj| + |Q'|)
                    δr_i += u|r_i'|  for every i
    the value       |δv| ≤ |∂v/∂T| δT + |∂v/∂Q| δQ + 3u (|terms of v|)

with ``γ_n = n·u`` and primes for the updated quantities. Each entry of K may
carry an error of its own, ``gram_rtol · √(K_ii K_jj)``, when the two
implementations computed K themselves
(:func:`~dba_ref.agreement.rounding.gram_entry_rtol`); those do not
accumulate along the path (an entry subtracted is the entry that was added),
so they add ``gram_rtol · T_S`` to ``δT`` and ``gram_rtol · (Σ_{i∈S} ‖g_i‖)²``
to ``δQ``, for the current subset S only. A value computed
directly from its subset, the other way an implementation may compute it, has
the bound of :func:`subset_error_bound`. Two values agree by the rule,
:func:`~dba_ref.agreement.rounding.agreement_tolerance`: twice the sum of the
two sides' bounds.
"""
from __future__ import annotations

import numpy as np

from ..metrics import metric_value
from ..search import running_sums
from .rounding import UNIT_ROUNDOFF, agreement_tolerance


def _value_error(metric: str, T, Q, k, e_T, e_Q):
    """First-order bound on a metric value's error from errors ``e_T``, ``e_Q`` of its statistics."""
    u = UNIT_ROUNDOFF
    T, Q, k = np.asarray(T, np.float64), np.asarray(Q, np.float64), np.asarray(k, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if metric == "variance":
            bound = e_T / k + e_Q / (k * k) + 3 * u * (np.abs(T) / k + np.abs(Q) / (k * k))
        elif metric == "normalized_variance":
            ratio = k * np.abs(T) / np.abs(Q)
            bound = ratio * (e_T / np.abs(T) + e_Q / np.abs(Q)) + 3 * u * (ratio + 1)
        else:
            ratio = np.abs(T) / np.abs(Q)
            bound = e_T / np.abs(Q) + ratio * e_Q / np.abs(Q) + 3 * u * (ratio + 1 / k)
        return np.where(np.isfinite(metric_value(metric, T, Q, k)), bound, 0.0)[()]


def _direct_errors(K: np.ndarray, indices, gram_rtol: float) -> tuple:
    """``(T, Q, k, e_T, e_Q)`` of a subset summed directly from ``K[S, S]`` in any order, with bounds on the
    errors of T and Q: ``γ_k T`` and ``γ_{k²} Σ|K_ij|``, plus the K entries' own errors."""
    u, k = UNIT_ROUNDOFF, len(indices)
    sub = np.asarray(K, np.float64)[np.ix_(indices, indices)]
    norms = np.sqrt(np.maximum(np.diag(sub), 0.0))
    T, Q = float(np.trace(sub)), float(sub.sum())
    e_T = k * u * T + gram_rtol * T
    e_Q = k * k * u * float(np.abs(sub).sum()) + gram_rtol * float(norms.sum()) ** 2
    return T, Q, k, e_T, e_Q


def subset_error_bound(K: np.ndarray, metric: str, indices, gram_rtol: float = 0.0) -> float:
    """Bound on the error of a subset's metric value computed directly from ``K[S, S]``, in any order."""
    return float(_value_error(metric, *_direct_errors(K, indices, gram_rtol)))


def path_error_bounds(K: np.ndarray, metric: str, removed, gram_rtol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the error of ``values[t]`` of a greedy path, t = 0..len(removed)−1, for any summation order.

    Returns ``(running, direct)``: the bound when the value comes from running
    sums updated along the path (see the module docstring for the
    recurrences), and when it is computed afresh from its subset, as
    :func:`subset_error_bound` (kept up to date here in O(B) per step).
    ``gram_rtol`` is the error of each K entry relative to ``√(K_ii K_jj)``
    (0 when both sides use the same K); it does not accumulate along the path:
    whatever the path, ``r_i``, ``T`` and ``Q`` are sums over S of one side's
    K, so its entries' errors enter only as those of S, as in the direct bound.
    """
    u = UNIT_ROUNDOFF
    K = np.asarray(K, np.float64)
    B = K.shape[0]
    absK = np.abs(K)
    norms = np.sqrt(np.maximum(np.diag(K), 0.0))
    diag, r, T, Q = running_sums(K)                 # r_i = Σ_{j∈S} K_ij
    abs_r = absK.sum(axis=1)                        # Σ_{j∈S} |K_ij|
    e_r = B * u * abs_r                             # rounding only: K's own errors are added per subset below
    k = B
    abs_Q, norm_sum = abs_r.sum(), norms.sum()
    e_T = B * u * T
    e_Q = B * u * np.abs(r).sum() + e_r.sum()
    running, direct = [], []
    for j in removed:
        T -= diag[j]
        e_T += u * abs(T)
        step = 2.0 * r[j] - diag[j]
        Q -= step
        e_Q += 2.0 * e_r[j] + u * (abs(step) + abs(Q))
        r -= K[:, j]
        e_r += u * np.abs(r)
        abs_Q -= 2.0 * abs_r[j] - absK[j, j]
        abs_r -= absK[:, j]
        norm_sum -= norms[j]
        k -= 1
        gram_T, gram_Q = gram_rtol * T, gram_rtol * norm_sum ** 2    # Σ_S of K's entry errors
        running.append(_value_error(metric, T, Q, k, e_T + gram_T, e_Q + gram_Q))
        direct.append(_value_error(metric, T, Q, k, k * u * T + gram_T, k * k * u * abs_Q + gram_Q))
    return np.array(running, np.float64), np.array(direct, np.float64)


def path_value_tolerances(K: np.ndarray, metric: str, removed, gram_rtol: float = 0.0) -> np.ndarray:
    """How far two correct implementations' ``values[t]`` along the path ``removed`` may differ.

    The rule (:func:`~dba_ref.agreement.rounding.agreement_tolerance`) with
    the running-sum bound for the reference and, for the other side, the
    running-sum bound plus the bound of the value computed directly from its
    subset (an implementation may recompute it): ``2 (2 e_running + e_direct)``.
    """
    running, direct = path_error_bounds(K, metric, removed, gram_rtol)
    return agreement_tolerance(running, running + direct)


def selection_tolerances(K: np.ndarray, metric: str, strategy: str, removed, indices,
                         gram_rtol: float = 0.0) -> tuple[float, np.ndarray]:
    """How far two correct implementations' selected ``value`` and trace ``values`` may lie apart (spec §7.1).

    Greedy values come from running sums (:func:`path_value_tolerances`);
    prefix and exhaustive values from each subset's own sums, in any order
    (the rule with :func:`subset_error_bound` on both sides: four times it).
    Returns ``(value tolerance, values tolerances)``, in the units of the values.
    """
    K = np.asarray(K, np.float64)
    removed = np.asarray(removed, np.int64)
    if strategy == "greedy":
        values = path_value_tolerances(K, metric, removed, gram_rtol)
        if len(values):
            return float(values[-1]), values
        indices = np.arange(K.shape[0])
    else:
        direct = path_error_bounds(K, metric, removed, gram_rtol)[1]
        values = agreement_tolerance(direct, direct)
    bound = subset_error_bound(K, metric, np.asarray(indices, np.int64), gram_rtol)
    return float(agreement_tolerance(bound, bound)), values


def full_stat_tolerance(K: np.ndarray, name: str, gram_rtol: float = 0.0) -> float:
    """How far two correct implementations' whole-batch statistic ``name`` (``"T"``, ``"Q"`` or a metric) may lie
    apart: the rule with both sides summing the batch directly, in any order (its scale is
    :func:`~dba_ref.agreement.rounding.full_stat_scale`)."""
    T, Q, k, e_T, e_Q = _direct_errors(K, np.arange(np.shape(K)[0]), gram_rtol)
    error = {"T": e_T, "Q": e_Q}[name] if name in ("T", "Q") else _value_error(name, T, Q, k, e_T, e_Q)
    return float(agreement_tolerance(error, error))

"""Exercise 4: the metric ``mean_variance(T, Q, k) = T/Q − 1/k``, +inf where ``Q <= Q_EPS·k·T`` (spec §4).

The reference is :func:`dba_ref.metrics.mean_variance`. Mistakes named: the
unbiased variance, ``normalized_variance`` or the variance itself, the
missing ``− 1/k``, a missing or wrong guard.
"""
from __future__ import annotations

import numpy as np

from ..metrics import Q_EPS, mean_variance, subset_stats, variance
from .definitions import Case, Exercise
from .differences import as_float_array, fmt, how_many_wrong, likely_cause, mismatch, with_cause
from .tolerances import metric_tolerance


def _stats_of_subsets(rng, B, P, n):
    """``(T, Q, k)`` arrays of ``n`` random subsets of a random batch of B gradients in R^P."""
    G = rng.normal(size=(B, P)) + rng.normal(size=P)
    K = G @ G.T
    stats = [subset_stats(K, np.sort(rng.choice(B, size=int(rng.integers(1, B + 1)), replace=False)))
             for _ in range(n)]
    T, Q, k = (np.array(column) for column in zip(*stats))
    return T, Q, k.astype(np.int64)


def metric_edge_cases(rng) -> list:
    T, Q, k = _stats_of_subsets(rng, 8, 3, 30)
    T1, Q1, _ = _stats_of_subsets(rng, 6, 4, 10)
    return [Case("one sample (k = 1, so T = Q), Python scalars", (2.5, 2.5, 1)),
            Case("identical gradients (T/Q = 1/k), Python scalars", (10.0, 40.0, 4)),
            Case("two opposite gradients cancel (Q = 0), Python scalars", (2.0, 0.0, 2)),
            Case("all gradients zero (T = Q = 0), Python scalars", (0.0, 0.0, 3)),
            Case("gradients that nearly cancel (Q = 1e-14·k·T, under the guard)", (3.0, 3.0 * 5 * 1e-14, 5)),
            Case("30 random subsets, arrays (as the searches call it)", (T, Q, k)),
            Case("arrays T and Q with one Python int k (as the greedy step calls it)", (T1, Q1, 4)),
            Case("arrays mixing k = 1, cancelling and ordinary subsets",
                 (np.array([1.5, 2.0, 0.0, 6.0]), np.array([1.5, 0.0, 0.0, 9.0]), np.array([1, 2, 3, 3])))]


def metric_random_case(rng) -> Case:
    B = int(rng.integers(2, 12))
    return Case(f"12 random subsets of a batch of {B}", _stats_of_subsets(rng, B, int(rng.integers(1, 6)), 12))


_UNBIASED_AT_ONE = ("at k = 1 you divided by k − 1 = 0: that is the unbiased variance. The spec's variance is "
                    "the biased one, V = T/k − Q/k² (divide by k)")


def _grade_mean_variance(got, expected, case) -> str | None:
    T, Q, k = (np.asarray(a, np.float64) for a in case.args)
    arr, problem = as_float_array(got, "your result")
    if problem:
        return problem
    expected = np.asarray(expected, np.float64)
    if arr.shape != expected.shape:
        return (f"your result has shape {arr.shape}, expected {expected.shape}: one value per entry of "
                "T, Q and k (broadcast together), a 0-d array or a float for scalars")
    tolerance = metric_tolerance("mean_variance", T, Q, k)
    bad = mismatch(arr, expected, tolerance)
    if not bad.any():
        return None
    Tb, Qb, kb = np.broadcast_arrays(T, Q, k)
    i = int(np.flatnonzero(bad.ravel())[0])
    stats = f"T = {fmt(Tb.flat[i])}, Q = {fmt(Qb.flat[i])}, k = {int(kb.flat[i])}"
    if arr.ndim:
        message = (f"entry {i} ({stats}) is {fmt(arr.flat[i])}, expected {fmt(expected.flat[i])}; "
                   + how_many_wrong(int(bad.sum()), arr.size, "values"))
    else:
        message = f"for {stats} you returned {fmt(arr)}, expected {fmt(expected)}"
    guarded = ~np.isfinite(expected)
    if (guarded & bad).any():
        return with_cause(message, f"the guard is missing or wrong: when Q <= {Q_EPS:g}·k·T the selected "
                                    "gradients cancel (their mean is zero to rounding) and the metric must be "
                                    f"+inf, e.g. np.where(Q > {Q_EPS:g} * k * T, T / Q - 1 / k, np.inf)")
    if (bad & (kb == 1) & ~np.isfinite(arr)).any():
        return with_cause(message, _UNBIASED_AT_ONE)
    with np.errstate(all="ignore"):
        # Each alternative is compared where it is defined; elsewhere it is taken to agree.
        wrong = [(np.where(~guarded & (kb > 1), expected * kb / (kb - 1), expected),
                  "you used the unbiased variance (divided by k − 1); the spec's variance is the biased one, "
                  "V = T/k − Q/k², so mean_variance = (V/k) / ‖ḡ‖² = T/Q − 1/k"),
                 (np.where(~guarded, kb * expected, expected),
                  "that is normalized_variance, V/‖ḡ‖² = kT/Q − 1: divide V by k as well, (V/k)/‖ḡ‖²"),
                 (np.where(~guarded, variance(T, Q, k), expected),
                  "that is the variance V = T/k − Q/k² itself; mean_variance divides V/k by ‖ḡ‖² = Q/k²"),
                 (np.where(~guarded, Tb / Qb, expected), "the − 1/k term is missing: mean_variance = T/Q − 1/k")]
    return with_cause(message, likely_cause(arr, wrong, tolerance))


def _explain_metric_error(error, case) -> str | None:
    if error.kind != "ZeroDivisionError":
        return None
    T, Q, k = (np.asarray(a, np.float64) for a in case.args)
    if np.any(k == 1):
        return _UNBIASED_AT_ONE
    if np.any(Q <= Q_EPS * k * T):
        return (f"Q = 0 here (the gradients cancel): test the guard Q <= {Q_EPS:g}·k·T first and return +inf "
                "without dividing")
    return None


EXERCISE = Exercise(4, "mean_variance", "a metric from T, Q and k", (("mean_variance", ("T", "Q", "k")),),
                    mean_variance, metric_edge_cases, metric_random_case, _grade_mean_variance, _explain_metric_error,
                    reads_first="03_metrics_and_search.ipynb", minutes=20, builds_on=(3,))

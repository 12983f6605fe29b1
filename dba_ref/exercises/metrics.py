"""Exercise 5: all three metrics of a subset from its statistics ``(T, Q, k)`` (spec §4).

The student writes ``metrics(T, Q, k) -> (variance, normalized_variance,
mean_variance)``; the references are :mod:`dba_ref.metrics`. Mistakes named:
the guard applied to the variance (which needs none), the unbiased variance,
``kT/Q`` without its ``− 1``, the two ratio metrics swapped, the three values
in another order.
"""
from __future__ import annotations

import numpy as np

from ..metrics import METRIC_NAMES, METRICS, Q_EPS
from .definitions import Exercise
from .differences import as_float_array, fmt, how_many_wrong, likely_cause, mismatch, with_cause
from .mean_variance import metric_edge_cases, metric_random_case
from .tolerances import metric_tolerance


def reference_metrics(T, Q, k) -> tuple:
    """``(variance, normalized_variance, mean_variance)`` of ``(T, Q, k)``, elementwise."""
    return tuple(METRICS[name](T, Q, k) for name in METRIC_NAMES)


def _grade_metrics(got, expected, case) -> str | None:
    T, Q, k = (np.asarray(a, np.float64) for a in case.args)
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return ("return the three metrics as a tuple (variance, normalized_variance, mean_variance); you returned "
                + (f"{len(got)} values" if isinstance(got, (tuple, list)) else type(got).__name__))
    answers = []
    for name, value, want in zip(METRIC_NAMES, got, expected):
        arr, problem = as_float_array(value, name)
        if problem:
            return problem
        if arr.shape != np.shape(want):
            return (f"{name} has shape {arr.shape}, expected {np.shape(want)}: one value per entry of T, Q and k "
                    "(broadcast together)")
        answers.append(arr)
    Tb, Qb, kb = np.broadcast_arrays(T, Q, k)
    guarded = ~(Qb > Q_EPS * kb * Tb)
    for name, arr, want in zip(METRIC_NAMES, answers, expected):
        want = np.asarray(want, np.float64)
        tolerance = metric_tolerance(name, T, Q, k)
        bad = mismatch(arr, want, tolerance)
        if not bad.any():
            continue
        i = int(np.flatnonzero(bad.ravel())[0])
        stats = f"T = {fmt(Tb.flat[i])}, Q = {fmt(Qb.flat[i])}, k = {int(kb.flat[i])}"
        message = f"{name}: for {stats} you returned {fmt(arr.flat[i])}, expected {fmt(want.flat[i])}"
        if arr.ndim:
            message += "; " + how_many_wrong(int(bad.sum()), arr.size, "values")
        others = {n: np.asarray(e, np.float64) for n, e in zip(METRIC_NAMES, expected) if n != name}
        if name == "variance" and (bad & guarded & ~np.isfinite(arr)).any():
            return with_cause(message, "the variance needs no guard: V = T/k − Q/k² is finite when the gradients "
                                       "cancel (Q = 0 gives V = T/k); only the two ratios divide by Q")
        if name != "variance" and (bad & guarded).any():
            return with_cause(message, f"the guard is missing or wrong: where Q <= {Q_EPS:g}·k·T the ratio "
                                       "metrics are +inf")
        with np.errstate(all="ignore"):
            unbiased = np.where(kb > 1, (Tb - Qb / kb) / (kb - 1), want)
            wrong = [(np.where(guarded, want, kb * Tb / Qb), "normalized_variance = kT/Q − 1: the − 1 is missing"),
                     (unbiased if name == "variance" else None,
                      "you divided by k − 1 (the unbiased variance); the spec's V = T/k − Q/k² divides by k")]
            wrong += [(other, f"that is {other_name}: the three values must come in the order (variance, "
                              "normalized_variance, mean_variance)") for other_name, other in others.items()]
        return with_cause(message, likely_cause(arr, wrong, tolerance))
    return None


def _explain(error, case) -> str | None:
    if error.kind == "ZeroDivisionError":
        return ("a division by zero with Python numbers: convert T, Q and k with np.asarray(..., dtype=np.float64) "
                "and guard the ratios with np.where(Q > 1e-12 * k * T, ..., np.inf)")
    return None


EXERCISE = Exercise(5, "metrics", "all three metrics from T, Q and k", (("metrics", ("T", "Q", "k")),),
                    reference_metrics, metric_edge_cases, metric_random_case, _grade_metrics, _explain,
                    reads_first="03_metrics_and_search.ipynb", minutes=25, builds_on=(4,))

"""When two implementations of DBA agree: the one rule used by the tests, the conformance checker and the exercises.

A metric value is a difference that can cancel (``T/k − Q/k²``, ``kT/Q − 1``,
``T/Q − 1/k``): every singleton's ``variance`` is 0 up to rounding, and two
values of ±1e-17 are a tie, not a relative gap of 200%. Values are therefore
compared in units of what rounding can do to them, never relative to
themselves. This module holds, computed only when a caller asks:

**Rounding scales and decision margins (spec §5, §8).** :func:`value_scale`
is the scale of a metric value's rounding error. A search's decisions are
replayed on request (:func:`decision_margins`) to measure how close each
was: the gap between the best and the second-best choice, and between the
best and the acceptance threshold, over the rounding scale. A decision whose
margin is at most :data:`AMBIGUITY` is a near-tie that another correct
implementation may take the other way.

**Rounding-error bounds along a path (spec §7).** Greedy computes the value
after t removals from running sums (``r_i``, ``T``, ``Q``) updated t times,
so its rounding error grows with the path: after 1,098 removals of a batch
of 1,100, two correct implementations differ by 5.8e-11 relative, far more
than the error of a value computed afresh. :func:`path_error_bounds` follows
the reference path and bounds, to first order in the unit roundoff u, the
error of every value for *any* summation order::

    initial sums    |δr_i| ≤ γ_B Σ_j |K_ij|      |δT| ≤ γ_B T      |δQ| ≤ γ_B Σ_i |r_i| + Σ_i |δr_i|
    removing j      δT += u|T'|                   δQ += 2|δr_j| + u(|2r_j − K_jj| + |Q'|)
                    δr_i += u|r_i'|  for every i
    the value       |δv| ≤ |∂v/∂T| δT + |∂v/∂Q| δQ + 3u (|terms of v|)

with ``γ_n = n·u`` and primes for the updated quantities; each entry of K
may carry an error of its own, ``gram_rtol · √(K_ii K_jj)``, when the two
implementations computed K themselves (:func:`gram_entry_rtol`). Two values agree
when they differ by at most the sum of both bounds plus the bound of a value
computed directly from its subset (:func:`subset_error_bound`), the other
way an implementation may compute it.

**The comparator and the judge.** :func:`max_rel_error` is the one way arrays
are compared; :func:`compare_selection` and :func:`check_selection` judge
another implementation's selection against the reference's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._text import plural
from .metrics import metric_value, subset_stats
from .search import (acceptance_threshold, alignment_order, alignment_scores, candidate_values, greedy_steps,
                     prefix_path, remove_sample, subset_values)

#: Unit roundoff of float64, in which every statistic is accumulated (spec §4).
UNIT_ROUNDOFF = float(np.finfo(np.float64).eps) / 2

#: Decision margin at or under which a decision is a near-tie (spec §5): 1e-9 for float64;
#: 1e-5 for a float32 model (float32 Gram entries carry relative errors near 1e-7 that a metric can amplify).
AMBIGUITY = {"float64": 1e-9, "float32": 1e-5}


# --------------------------------------------------------------------------
# Rounding scales and decision margins
# --------------------------------------------------------------------------
def value_scale(name: str, T, Q, k):
    """The rounding scale of a metric value: its rounding error is about the unit roundoff times this.

    ``T/k`` for ``variance`` (the term it is a difference of); for the ratio
    metrics their leading term (``kT/Q``, ``T/Q``) times ``kT/Q >= 1``, the
    condition number of ``Q`` (Q's rounding error is about ε·kT, by
    Cauchy–Schwarz). ``+inf`` where ``Q <= 0`` (the value is +inf then).
    """
    T, Q, k = np.asarray(T, np.float64), np.asarray(Q, np.float64), np.asarray(k, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "variance":
            return (T / k)[()]
        condition = k * T / Q
        scale = condition * (condition if name == "normalized_variance" else T / Q)
        return np.where(Q > 0, scale, np.inf)[()]


def scaled_gap(a: float, b: float, scale: float) -> float:
    """``|a − b| / scale``; 0 for equal values (both inf included), 1 if exactly one is inf."""
    if a == b:
        return 0.0
    if np.isinf(a) or np.isinf(b):
        return 1.0
    return abs(a - b) / scale if scale > 0 else np.inf


def decision_margin(metric: str, best: float, second: float, threshold: float, best_stats, current_stats) -> float:
    """How close one greedy decision was: ``min(|best − second| / s_best, |best − threshold| / max(s_best, s_current))``.

    ``best_stats`` and ``current_stats`` are the ``(T, Q, k)`` of the best
    candidate and of the current subset, ``s`` their rounding scales.
    """
    s_best = float(value_scale(metric, *best_stats))
    s_current = float(value_scale(metric, *current_stats))
    return min(scaled_gap(best, second, s_best), scaled_gap(best, threshold, max(s_best, s_current)))


def greedy_margins(K: np.ndarray, metric: str, removed, min_size: int, tol: float) -> np.ndarray:
    """The decision margin of every step greedy evaluated on ``K``, by replaying its path ``removed``.

    One margin per accepted removal, and one more for the rejected step when
    the path stopped above ``min_size``. The running sums are updated exactly
    as :func:`dba_ref.search.greedy_path` updates them, so the values replayed
    are the values greedy compared.
    """
    B = K.shape[0]
    diag = np.diag(K).copy()
    r = K.sum(axis=1)
    T, Q, k = diag.sum(), r.sum(), B
    current = float(metric_value(metric, T, Q, k))
    active = np.ones(B, dtype=bool)
    margins = []
    for t in range(greedy_steps(B, len(removed), min_size)):
        cand = np.where(active, candidate_values(metric, T, Q, r, diag, k), np.inf)
        best = int(np.argmin(cand))
        second = float(np.min(np.delete(cand, best))) if k > 1 else np.inf
        margins.append(decision_margin(metric, float(cand[best]), second, acceptance_threshold(current, tol),
                                       (T - diag[best], Q - 2.0 * r[best] + diag[best], k - 1), (T, Q, k)))
        if t == len(removed):
            break
        j = removed[t]
        T, Q = remove_sample(K, diag, r, T, Q, j)
        active[j] = False
        k -= 1
        current = float(cand[j])
    return np.array(margins, np.float64)


def _choice_gap(values: np.ndarray, scales: np.ndarray) -> list:
    """The gap between the lowest and the second-lowest value, scaled by the larger of their scales."""
    if len(values) < 2:
        return []
    low, second = np.argsort(values, kind="stable")[:2]
    return [scaled_gap(float(values[low]), float(values[second]), float(max(scales[low], scales[second])))]


def prefix_margins(K: np.ndarray, metric: str, min_size: int) -> np.ndarray:
    """How close the decisions of the prefix search are.

    First the gaps between neighbours of the alignment ranking at positions
    ``min_size − 1 ..`` (a swap above them changes nothing), scaled by
    ``Σ_j ‖g_j‖`` (which bounds every c_i); then the gap between the best and
    the second-best prefix value.
    """
    norms = np.sqrt(np.maximum(np.diag(K), 0.0))
    c = alignment_scores(K)[alignment_order(K)]
    rank = [scaled_gap(a, b, norms.sum()) for a, b in zip(c[min_size - 1:-1], c[min_size:])]
    order, path = prefix_path(K, metric, min_size)
    P = K[np.ix_(order, order)]
    k = np.arange(1, K.shape[0] + 1)
    scales = value_scale(metric, np.cumsum(np.diag(P)), P.cumsum(0).cumsum(1).diagonal(), k)
    return np.array(rank + _choice_gap(path[min_size - 1:], scales[min_size - 1:]), np.float64)


def exhaustive_margins(K: np.ndarray, metric: str, min_size: int) -> np.ndarray:
    """The gap between the best and the second-best subset value over every subset (B ≤ 20)."""
    diag = np.diag(K)
    values, scales = [], []
    for masks, sizes, vals in subset_values(K, metric, min_size):
        M = ((masks[:, None] >> np.arange(K.shape[0])) & 1).astype(np.float64)
        values.append(vals)
        scales.append(value_scale(metric, M @ diag, ((M @ K) * M).sum(axis=1), sizes))
    return np.array(_choice_gap(np.concatenate(values), np.concatenate(scales)), np.float64)


def decision_margins(K: np.ndarray, selection) -> np.ndarray:
    """The decision margins of a reference ``selection`` made on ``K`` (empty for ``all``, which decides nothing)."""
    K = np.asarray(K, np.float64)
    tr = selection.trace
    if tr.strategy == "greedy":
        return greedy_margins(K, tr.metric, tr.removed, tr.min_size, tr.tol)
    if tr.strategy == "prefix":
        return prefix_margins(K, tr.metric, tr.min_size)
    if tr.strategy == "exhaustive":
        return exhaustive_margins(K, tr.metric, tr.min_size)
    return np.zeros(0)


def decisive_steps(margins: np.ndarray, threshold: float = AMBIGUITY["float64"]) -> int:
    """How many leading decisions are clear (margin above ``threshold``): the steps that must agree."""
    close = np.flatnonzero(np.asarray(margins) <= threshold)
    return int(close[0]) if close.size else len(margins)


# --------------------------------------------------------------------------
# Rounding-error bounds
# --------------------------------------------------------------------------
#: The safety factor of :func:`rounding_tolerance` (why 8: docs/testing.md).
SAFETY = 8


def rounding_tolerance(scale, n_ops, dtype=np.float64):
    """``SAFETY · n_ops · ε · (scale + tiny)``: how far two computations of a quantity may differ by rounding alone.

    ``scale`` is the size of the terms that fed the quantity, ``n_ops`` how many
    roundings fed it, ``ε = np.finfo(dtype).eps`` and ``tiny`` the smallest normal
    number of ``dtype`` (below it numbers lose relative precision).
    """
    return SAFETY * n_ops * float(np.finfo(dtype).eps) * (np.asarray(scale, np.float64) + float(np.finfo(dtype).tiny))


def gram_entry_rtol(n_terms: int, dtype=np.float64) -> float:
    """Error bound of a Gram entry relative to ``√(K_ii K_jj)`` when K is computed from the signals.

    ``K_ij`` is a product of two inner products of ``n_terms`` terms at most
    (``in + 1`` and ``out`` for the Gram identity, ``P = out·(in + 1)`` for
    an explicit ``G Gᵀ``), each rounding by ``γ_n`` of the sum of
    absolute values, which Cauchy–Schwarz bounds by the norms: ``2·γ_n``.
    ``dtype`` is the dtype in which the products are accumulated.
    """
    return 2.0 * n_terms * float(np.finfo(dtype).eps) / 2


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


def subset_error_bound(K: np.ndarray, metric: str, indices, gram_rtol: float = 0.0) -> float:
    """Bound on the error of a subset's metric value computed directly from ``K[S, S]``, in any order."""
    u, k = UNIT_ROUNDOFF, len(indices)
    sub = np.asarray(K, np.float64)[np.ix_(indices, indices)]
    norms = np.sqrt(np.maximum(np.diag(sub), 0.0))
    T, Q = float(np.trace(sub)), float(sub.sum())
    e_T = k * u * T + gram_rtol * T
    e_Q = k * k * u * float(np.abs(sub).sum()) + gram_rtol * float(norms.sum()) ** 2
    return float(_value_error(metric, T, Q, k, e_T, e_Q))


def path_error_bounds(K: np.ndarray, metric: str, removed, gram_rtol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the error of ``values[t]`` of a greedy path, t = 0..len(removed)−1, for any summation order.

    Returns ``(running, direct)``: the bound when the value comes from running
    sums updated along the path (see the module docstring for the
    recurrences), and when it is computed afresh from its subset, as
    :func:`subset_error_bound` (kept up to date here in O(B) per step).
    ``gram_rtol`` is the error of each K entry relative to ``√(K_ii K_jj)``
    (0 when both sides use the same K).
    """
    u = UNIT_ROUNDOFF
    K = np.asarray(K, np.float64)
    B = K.shape[0]
    absK = np.abs(K)
    norms = np.sqrt(np.maximum(np.diag(K), 0.0))
    dK = gram_rtol * norms                          # entry error bound: dK[i] * norms[j]
    diag = np.diag(K).copy()
    r, abs_r = K.sum(axis=1), absK.sum(axis=1)      # Σ_{j∈S} K_ij and Σ_{j∈S} |K_ij|
    e_r = B * u * abs_r + dK * norms.sum()
    T, Q, k = diag.sum(), r.sum(), B
    abs_Q, norm_sum = abs_r.sum(), norms.sum()
    e_T = B * u * T + gram_rtol * T
    e_Q = B * u * np.abs(r).sum() + e_r.sum()
    running, direct = [], []
    for j in removed:
        T -= diag[j]
        e_T += u * abs(T) + dK[j] * norms[j]
        step = 2.0 * r[j] - diag[j]
        Q -= step
        e_Q += 2.0 * e_r[j] + dK[j] * norms[j] + u * (abs(step) + abs(Q))
        r -= K[:, j]
        e_r += u * np.abs(r) + dK * norms[j]
        abs_Q -= 2.0 * abs_r[j] - absK[j, j]
        abs_r -= absK[:, j]
        norm_sum -= norms[j]
        k -= 1
        running.append(_value_error(metric, T, Q, k, e_T, e_Q))
        direct.append(_value_error(metric, T, Q, k, k * u * T + gram_rtol * T,
                                   k * k * u * abs_Q + gram_rtol * norm_sum ** 2))
    return np.array(running, np.float64), np.array(direct, np.float64)


def path_value_tolerances(K: np.ndarray, metric: str, removed, gram_rtol: float = 0.0) -> np.ndarray:
    """How far two correct implementations' ``values[t]`` along the path ``removed`` may differ.

    Twice the running-sum bound (one per implementation) plus the bound of
    the value computed directly from the subset (an implementation may
    recompute it), with a factor 2 for the second-order terms the bounds leave out.
    """
    running, direct = path_error_bounds(K, metric, removed, gram_rtol)
    return 2.0 * (2.0 * running + direct)


def selection_tolerances(K: np.ndarray, metric: str, strategy: str, removed, indices,
                         gram_rtol: float = 0.0) -> tuple[float, np.ndarray]:
    """How far two correct implementations' selected ``value`` and trace ``values`` may lie apart (spec §7.1).

    Greedy values come from running sums (:func:`path_value_tolerances`);
    prefix and exhaustive values from each subset's own sums, in any order
    (four times :func:`subset_error_bound`: one per side, and the factor 2 for
    the second order). Returns ``(value tolerance, values tolerances)``, in the
    units of the values.
    """
    K = np.asarray(K, np.float64)
    removed = np.asarray(removed, np.int64)
    if strategy == "greedy":
        values = path_value_tolerances(K, metric, removed, gram_rtol)
        if len(values):
            return float(values[-1]), values
        return 4.0 * subset_error_bound(K, metric, np.arange(K.shape[0]), gram_rtol), values
    values = 4.0 * path_error_bounds(K, metric, removed, gram_rtol)[1]
    return 4.0 * subset_error_bound(K, metric, np.asarray(indices, np.int64), gram_rtol), values


# --------------------------------------------------------------------------
# The comparator
# --------------------------------------------------------------------------
def entry_errors(actual, reference, scale=None) -> np.ndarray:
    """``|a − r| / scale`` entry by entry, by default ``scale = max|r|`` (over the finite entries).

    ``scale`` may be a number or an array (one scale per entry, see
    :func:`value_scales`); a zero scale gives the absolute error. Where the
    reference is ±inf or NaN the entry must be equal (error 0, else inf); a
    NaN or inf in ``a`` against a finite reference is an error of inf.
    ``a`` and ``r`` must have the same shape.
    """
    a, r = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    finite = np.isfinite(r)
    if scale is None:
        scale = np.max(np.abs(r[finite]), initial=0.0)
    scale = np.broadcast_to(np.asarray(scale, np.float64), r.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.array(np.abs(a - r), dtype=np.float64)
        err = np.divide(err, scale, out=err, where=scale > 0)
    same_special = (a == r) | (np.isnan(a) & np.isnan(r))
    return np.where(finite, np.where(np.isfinite(a), err, np.inf), np.where(same_special, 0.0, np.inf))


def max_rel_error(actual, reference, scale=None) -> float:
    """The largest of :func:`entry_errors` (0 for empty arrays, inf for arrays of different shapes): the
    error relative to the array's magnitude, or to ``scale``."""
    if np.shape(actual) != np.shape(reference):
        return float("inf")
    return float(np.max(entry_errors(actual, reference, scale), initial=0.0))


def value_scales(K: np.ndarray, metric: str, subsets) -> np.ndarray:
    """The rounding scale (:func:`value_scale`) of each subset's metric value."""
    stats = np.array([subset_stats(K, list(s)) for s in subsets], np.float64).reshape(-1, 3)
    return value_scale(metric, *stats.T)


def path_stats(K: np.ndarray, removed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(T, Q, k)`` of the subset after each removal of ``removed``, three arrays, in O(B) per step."""
    K = np.asarray(K, np.float64)
    diag, r = np.diag(K).copy(), K.sum(axis=1)
    T, Q, k = diag.sum(), r.sum(), K.shape[0]
    stats = []
    for j in removed:
        T, Q = remove_sample(K, diag, r, T, Q, j)
        k -= 1
        stats.append((T, Q, k))
    return tuple(np.array(stats, np.float64).reshape(-1, 3).T)


def path_value_scales(K: np.ndarray, metric: str, removed) -> np.ndarray:
    """The rounding scale of the value after each removal of ``removed``: :func:`value_scale` of :func:`path_stats`."""
    return np.asarray(value_scale(metric, *path_stats(K, removed)), np.float64)


def full_stat_scale(K: np.ndarray, name: str) -> float:
    """Scale of a full-batch statistic: T itself; ``B·T`` for Q (its Cauchy–Schwarz bound, as Q can
    cancel); :func:`value_scale` for a metric value."""
    B, T = K.shape[0], float(np.trace(K))
    if name == "T":
        return T
    if name == "Q":
        return B * T
    return float(value_scale(name, T, K.sum(), B))


# --------------------------------------------------------------------------
# The judge
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class SelectionVerdict:
    """How another implementation's selection compares with the reference's.

    ``status`` is ``"agree"``, ``"ambiguous"`` (they part at a near-tie) or
    ``"differ"``; ``agreed_steps`` is how many leading entries of the removal
    order agree (so how many path values can be compared).
    """

    status: str
    agreed_steps: int
    detail: str = ""


def _first_difference(a: np.ndarray, b: np.ndarray) -> int | None:
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    if diff.size:
        return int(diff[0])
    return None if len(a) == len(b) else n


def _at(seq, t):
    return int(seq[t]) if t < len(seq) else "nothing (stops)"


def compare_selection(strategy: str, ref_indices, ref_removed, ref_margins, indices=None, removed=None,
                      threshold: float = AMBIGUITY["float64"]) -> SelectionVerdict:
    """Compare one selection (its set ``indices`` and/or its ``removed`` order) with the reference.

    Close calls are ambiguous, not failures (spec §5). Greedy: the step where
    the removal orders first part is ambiguous if the reference's margin there
    is ≤ ``threshold``; if the reference stopped there because of ``min_size``
    there was no decision to make, and they differ. Otherwise (prefix,
    exhaustive, or greedy given without its removal order) a difference is
    ambiguous if any decision margin of the reference is ≤ ``threshold``.
    """
    ref_indices, ref_removed = np.asarray(ref_indices, np.int64), np.asarray(ref_removed, np.int64)
    ref_margins = np.asarray(ref_margins, np.float64)
    same_set = indices is None or (np.shape(indices) == ref_indices.shape and bool(np.all(indices == ref_indices)))
    t = None if removed is None else _first_difference(ref_removed, np.asarray(removed))
    agreed = len(ref_removed) if t is None else t
    if t is None and same_set:
        return SelectionVerdict("agree", agreed)
    if strategy == "greedy" and t is not None:
        if t < len(ref_margins) and ref_margins[t] <= threshold:
            return SelectionVerdict("ambiguous", agreed, f"removal step {t + 1}: reference margin {ref_margins[t]:.2g}")
        return SelectionVerdict("differ", agreed, f"removal step {t + 1}: reference removes "
                                f"{_at(ref_removed, t)}, got {_at(removed, t)}")
    if ref_margins.size and ref_margins.min() <= threshold:
        return SelectionVerdict("ambiguous", agreed, f"reference margin {ref_margins.min():.2g}")
    if not same_set:
        return SelectionVerdict("differ", agreed, f"reference keeps {ref_indices.tolist()}, "
                                f"got {np.asarray(indices).tolist()}")
    return SelectionVerdict("differ", agreed, f"removal order: reference {ref_removed.tolist()}, "
                            f"got {np.asarray(removed).tolist()}")


@dataclass(frozen=True)
class SelectionCheck:
    """What comparing one selection found.

    ``verdict`` is ``None`` when neither the set nor the path was given.
    ``value_error`` and ``values_error`` are the errors relative to the
    rounding scale (:func:`value_scale`); ``value_allowed`` and
    ``values_allowed`` the largest such error allowed: ``rtol``, or more where
    the rounding bound of a long path (:func:`path_value_tolerances`) is
    larger. Errors are ``None`` where the verdict allows no comparison
    (values after the two paths part belong to different subsets);
    ``values_problem`` says why a path could not be compared at all.
    ``full_stats_error`` and ``full_stats_allowed`` are the same for the whole
    batch's statistics (:func:`check_against`).
    """

    verdict: SelectionVerdict | None
    value_error: float | None = None
    value_allowed: float | None = None
    values_error: float | None = None
    values_allowed: float | None = None
    values_problem: str = ""
    full_stats_error: float | None = None
    full_stats_allowed: float | None = None

    @property
    def passed(self) -> bool:
        """No difference, no value beyond what it is allowed (ambiguous decisions pass)."""
        return ((self.verdict is None or self.verdict.status != "differ") and not self.values_problem
                and (self.value_error is None or self.value_error <= self.value_allowed)
                and (self.values_error is None or self.values_error <= self.values_allowed)
                and (self.full_stats_error is None or self.full_stats_error <= self.full_stats_allowed))

    def problems(self) -> list[str]:
        """What did not pass, in words (empty when :attr:`passed`)."""
        found = []
        if self.verdict is not None and self.verdict.status == "differ":
            found.append(f"selection differs: {self.verdict.detail}")
        if self.values_problem:
            found.append(f"path values: {self.values_problem}")
        for name in ("value", "values", "full_stats"):
            error, allowed = getattr(self, f"{name}_error"), getattr(self, f"{name}_allowed")
            if error is not None and not error <= allowed:
                found.append(f"{name}: error {error:.3g} of the rounding scale > {allowed:.3g} allowed")
        return found


def _allowed(rtol: float, tolerances: np.ndarray, scales: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(rtol, np.where(scales > 0, tolerances / scales, 0.0))


def check_selection(K: np.ndarray, metric: str, strategy: str, ref: dict, indices=None, removed=None, value=None,
                    values=None, threshold: float = AMBIGUITY["float64"], rtol: float = 0.0,
                    gram_rtol: float = 0.0) -> SelectionCheck:
    """Compare one selection (any of its four outputs) with the reference's ``ref``.

    ``ref`` holds the reference's ``indices``, ``removed``, ``value``,
    ``values`` and ``margins``; ``K`` (float64) is the layer's reference Gram
    matrix. The set and the path are judged by :func:`compare_selection`; the
    selected value is compared only if they agree, the path values only as
    far as the paths agree, each within ``max(rtol, bound / scale)`` of its
    rounding scale.
    """
    K = np.asarray(K, np.float64)
    verdict = None
    if indices is not None or removed is not None:
        verdict = compare_selection(strategy, ref["indices"], ref["removed"], ref["margins"], indices, removed,
                                    threshold)
    status = None if verdict is None else verdict.status
    result = {}
    ref_removed = np.asarray(ref["removed"], np.int64)
    value_tolerance, values_tolerances = selection_tolerances(K, metric, strategy, ref_removed, ref["indices"],
                                                              gram_rtol)
    if value is not None and status in (None, "agree"):
        scale = value_scales(K, metric, [np.asarray(ref["indices"], np.int64)])
        result["value_error"] = max_rel_error(value, ref["value"], scale[0])
        result["value_allowed"] = float(_allowed(rtol, np.array([value_tolerance]), scale)[0])
    if values is not None and status != "differ":
        ref_values, values = np.asarray(ref["values"]), np.asarray(values)
        n = len(ref_values) if status in (None, "agree") else verdict.agreed_steps
        if (status in (None, "agree") and len(values) != len(ref_values)) or len(values) < n:
            result["values_problem"] = f"{plural(len(values), 'entry', 'entries')}, expected {len(ref_values)}"
        else:
            scales = path_value_scales(K, metric, ref_removed[:n])
            allowed = _allowed(rtol, values_tolerances[:n], scales)
            errors = entry_errors(values[:n], ref_values[:n], scales)
            result["values_error"] = float(errors.max()) if n else 0.0
            result["values_allowed"] = float(allowed[np.argmax(errors)]) if n else rtol
            if n and np.any(errors > allowed):                 # report the worst excess, measured against its own allowance
                worst = int(np.argmax(errors / allowed))
                result["values_error"], result["values_allowed"] = float(errors[worst]), float(allowed[worst])
    return SelectionCheck(verdict, **result)


def selection_outputs(selection) -> dict:
    """What a conformance check reads of a selection: ``indices``, ``removed``, ``value``, ``values`` and the
    whole batch's ``full_T``, ``full_Q``, ``full_value``, from a :class:`~dba_ref.Selection` or any object
    with those attributes (arrays, tensors or numbers)."""
    if hasattr(selection, "trace"):
        tr = selection.trace
        return {"indices": selection.indices, "removed": tr.removed, "value": selection.value, "values": tr.values,
                "full_T": tr.full_T, "full_Q": tr.full_Q, "full_value": tr.full_value}
    return {f: getattr(selection, f) for f in ("indices", "removed", "value", "values", "full_T", "full_Q",
                                               "full_value")}


def full_stats_allowed(K: np.ndarray, metric: str, rtol: float = 0.0, gram_rtol: float = 0.0) -> float:
    """The largest error of the whole batch's ``T``, ``Q`` and metric value, relative to their scales
    (:func:`full_stat_scale`), that two correct implementations may show: ``rtol``, or twice the rounding bound
    of sums over the batch in any order (and of K's own entries when each side computed K) where that is larger."""
    u, B = UNIT_ROUNDOFF, K.shape[0]
    norms = np.sqrt(np.maximum(np.diag(K), 0.0))
    T, Q = float(np.trace(K)), float(K.sum())
    e_T = B * u * T + gram_rtol * T
    e_Q = B * B * u * float(np.abs(K).sum()) + gram_rtol * float(norms.sum()) ** 2
    e_v = float(_value_error(metric, T, Q, B, e_T, e_Q))
    ratios = [e / full_stat_scale(K, name) if full_stat_scale(K, name) > 0 else 0.0
              for e, name in ((e_T, "T"), (e_Q, "Q"), (e_v, metric))]
    return max(rtol, 2.0 * max(ratios))


def check_against(reference, K: np.ndarray, other, threshold: float = AMBIGUITY["float64"], rtol: float = 0.0,
                  gram_rtol: float = 0.0, margins=None) -> SelectionCheck:
    """Compare another implementation's selection with a reference :class:`~dba_ref.Selection` made on ``K``.

    ``other`` is another :class:`~dba_ref.Selection`, or any object with the
    attributes of :func:`selection_outputs`. The result adds the full-batch
    statistics' max relative error (and what is allowed, :func:`full_stats_allowed`)
    to :func:`check_selection`'s. ``rtol`` is a floor on every relative error
    allowed; ``gram_rtol`` the error of ``other``'s K entries when it computed K
    itself (:func:`gram_entry_rtol`). ``margins`` are the reference's :func:`decision_margins`
    on ``K`` when the caller has them; else they are replayed, and only where they are read:
    when the two selections differ.
    """
    K = np.asarray(K, np.float64)
    tr = reference.trace
    out = selection_outputs(other)
    got = {f: np.asarray(out[f]) for f in ("indices", "removed", "value", "values")}
    if margins is None:
        same = np.array_equal(got["indices"], reference.indices) and np.array_equal(got["removed"], tr.removed)
        margins = np.zeros(0) if same else decision_margins(K, reference)
    ref = {"indices": reference.indices, "value": reference.value, "removed": tr.removed, "values": tr.values,
           "margins": margins}
    result = check_selection(K, tr.metric, tr.strategy, ref, **got, threshold=threshold, rtol=rtol,
                             gram_rtol=gram_rtol)
    full = max(max_rel_error(np.asarray(out["full_T"]), tr.full_T, full_stat_scale(K, "T")),
               max_rel_error(np.asarray(out["full_Q"]), tr.full_Q, full_stat_scale(K, "Q")),
               max_rel_error(np.asarray(out["full_value"]), tr.full_value, full_stat_scale(K, tr.metric)))
    return SelectionCheck(**{**result.__dict__, "full_stats_error": full,
                             "full_stats_allowed": full_stats_allowed(K, tr.metric, rtol, gram_rtol)})

"""Exercise 6: the greedy search, ``greedy_removals(K, min_size)`` (spec §5).

The reference is :func:`dba_ref.search.greedy_path` with ``mean_variance``
and ``tol = 0``. Mistakes named: an off-by-one in the stop (either way), a
removal that does not lower the metric strictly (``<=`` for the spec's
``<``), ties broken towards the wrong index, the kept samples returned
instead of the removed ones, the wrong metric.
"""
from __future__ import annotations

import numpy as np

from .._text import plural
from ..agreement import AMBIGUITY, decisive_steps, greedy_margins, scaled_gap, value_scale
from ..metrics import metric_value, subset_stats
from ..search import greedy_path
from .definitions import Exercise
from .differences import fmt, with_cause
from .subset_answers import METRIC, batch_case, clear_random_batch


def reference_greedy_removals(K, min_size) -> list:
    """The samples greedy backward elimination removes from the batch, in order (mean_variance, tol = 0)."""
    return [int(i) for i in greedy_path(np.asarray(K, np.float64), METRIC, int(min_size), 0.0)[0]]


def _value_without(K, removed) -> float:
    keep = np.setdiff1d(np.arange(K.shape[0]), removed)
    return float(metric_value(METRIC, *subset_stats(K, keep)))


def near_tie(K, removed_a, removed_b) -> bool:
    """Whether the subsets left after ``removed_a`` and after ``removed_b`` score the same up to rounding: a gap of
    at most :data:`~dba_ref.agreement.AMBIGUITY` in units of their rounding scale (the agreement rule's near-tie)."""
    stats = [subset_stats(K, np.setdiff1d(np.arange(K.shape[0]), r)) for r in (removed_a, removed_b)]
    values = [float(metric_value(METRIC, *s)) for s in stats]
    scale = max(float(value_scale(METRIC, *s)) for s in stats)
    return scaled_gap(values[0], values[1], scale) <= AMBIGUITY["float64"]


def clear_decisions(K, min_size) -> bool:
    """Whether every decision greedy makes on ``K`` is clear (margin above :data:`~dba_ref.agreement.AMBIGUITY`),
    so that any correct order of arithmetic takes the same path."""
    margins = greedy_margins(K, METRIC, min_size, 0.0)
    return decisive_steps(margins) == len(margins)


def _greedy_edges(rng) -> list:
    cluster = np.array([1.0, 0.5, -0.2]) + 0.1 * rng.normal(size=(5, 3))
    outlier = np.vstack([cluster, [[-1.0, -0.3, 0.4]]])
    twins = [[1, 0.05, 0], [-0.5, 1, 0.2], [1, -0.05, 0.02], [0.95, 0, -0.03], [-0.5, 1, 0.2], [1.05, 0.02, 0]]
    zero = np.vstack([cluster[:3], np.zeros((1, 3)), cluster[3:]])
    return [batch_case("one gradient points against the others (sample 5)", outlier, 2),
            batch_case("min_size = B: nothing may be removed", cluster, 5),
            batch_case("a single sample", cluster[:1], 1),
            batch_case("samples 1 and 4 are identical (a tie: the lowest index goes first)", twins, 2),
            batch_case("sample 3 has a zero gradient", zero, 2),
            batch_case("two pairs of opposite gradients (Q = 0: the full batch's metric is +inf)",
                       [[1, 0], [-1, 0], [0, 2], [0, -2]], 2),
            batch_case("two balanced clusters (no removal helps: keep everything)",
                       [[1, -0.1], [1, -0.1], [1, 0.1], [1, 0.1]], 2),
            batch_case("identical gradients (every subset scores exactly 0: no removal lowers the metric, "
                       "keep everything)", [[0.5, -1.0, 2.0]] * 5, 2),
            batch_case("two agreeing samples among noisy ones (the search reaches min_size)",
                       [[1, 0], [0.3, 1], [1, 0.01], [-0.2, -1], [0.5, -1.2], [0.1, 1.3]], 2),
            batch_case("three agreeing samples among noisy ones (min_size = 3 stops the search)",
                       [[1, 0], [0.3, 1], [1, 0.01], [-0.2, -1], [1, -0.02], [0.1, 1.3]], 3)]


def _greedy_random(rng):
    """A random batch whose every greedy decision is clear (:func:`clear_decisions`)."""
    return clear_random_batch(rng, lambda K, metric, m: greedy_margins(K, metric, m, 0.0), 12, 2)


def _grade_greedy(got, expected, case) -> str | None:
    K, m = case.args
    B = K.shape[0]
    if got is None:
        return "your function returned None; did you forget the `return`?"
    try:
        arr = np.asarray(got)
    except Exception:  # noqa: BLE001
        arr = np.asarray([None])
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        return (f"return the removed sample indices, in the order removed, as a list of ints; "
                f"you returned {type(got).__name__}" + (f" of dtype {arr.dtype}" if arr.dtype != object else ""))
    order = [int(i) for i in arr]
    if order == expected:
        return None
    message = f"you removed {order}; the greedy search removes {expected}"
    if any(not 0 <= i < B for i in order):
        return f"{message}.\nIndices must lie in 0..{B - 1} (B = {B})"
    if len(set(order)) != len(order):
        return f"{message}.\nA sample can be removed only once"
    kept = sorted(set(range(B)) - set(expected))
    if order == kept and kept != sorted(expected):
        return with_cause(message, "you returned the samples kept; return the ones removed, in the order removed")
    n, n_ref, at_min = len(order), len(expected), B - len(expected) == m
    if n > n_ref and order[:n_ref] == expected:              # went on after the search stops
        extra = order[n_ref]
        current, after = _value_without(K, expected), _value_without(K, order[:n_ref + 1])
        if at_min:
            cause = (f"you went on to keep {plural(B - n, 'sample')}, below min_size = {m}"
                     + (" (an off-by-one in the stop)" if n == n_ref + 1 else "")
                     + ". Remove a sample only while |S| > min_size")
        elif near_tie(K, expected, order[:n_ref + 1]):
            cause = (f"removing sample {extra} leaves the metric unchanged ({fmt(current)}), yet you removed it: "
                     "a tie is not an improvement. Remove the best candidate only if its value is strictly "
                     "lower, best < current (not best <= current), and stop otherwise")
        else:
            cause = (f"you removed sample {extra} although it does not lower the metric "
                     f"({fmt(current)} -> {fmt(after)}): remove the best candidate only if its value is strictly "
                     "lower, best < current, and stop otherwise")
        return with_cause(message, cause)
    if n < n_ref and expected[:n] == order:                  # stopped too soon
        if at_min and n == n_ref - 1:
            cause = (f"an off-by-one in the stop: you stopped with {plural(B - n, 'sample')}, but one more removal is "
                     f"allowed while |S| > min_size = {m}")
        else:
            cause = (f"you stopped too early: removing sample {expected[n]} still lowers the metric "
                     f"({fmt(_value_without(K, order))} -> {fmt(_value_without(K, expected[:n + 1]))})")
        return with_cause(message, cause)
    step = next(t for t, (a, b) in enumerate(zip(order, expected)) if a != b)
    mine, theirs = _value_without(K, order[:step + 1]), _value_without(K, expected[:step + 1])
    if near_tie(K, order[:step + 1], expected[:step + 1]):
        cause = (f"at step {step + 1} (|S| = {B - step}) removing sample {order[step]} or {expected[step]} gives "
                 f"the same metric {fmt(mine)}: a tie, and ties go to the lowest original index")
    else:
        cause = (f"at step {step + 1} (|S| = {B - step}) you removed sample {order[step]}, giving {METRIC} = "
                 f"{fmt(mine)}; removing sample {expected[step]} gives the lower {fmt(theirs)}. "
                 "Each step removes the sample whose removal gives the lowest metric")
    return with_cause(message, cause)


EXERCISE = Exercise(6, "greedy_search", "the greedy search", (("greedy_removals", ("K", "min_size")),),
                    reference_greedy_removals, _greedy_edges, _greedy_random, _grade_greedy,
                    reads_first="03_metrics_and_search.ipynb", minutes=45, builds_on=(4,))

"""Exercise 9: a batch on which greedy is not optimal, ``greedy_not_optimal(B, min_size) -> G`` (spec §5).

The student returns per-sample gradients ``G`` (B, P) on which the greedy
search keeps a subset whose metric is clearly above the best subset's; the
grader builds ``K = G Gᵀ`` and runs the reference's greedy and exhaustive
searches (:func:`dba_ref.search.search`). "Clearly": the gap between the two
values, and every decision greedy takes on the way, exceed the agreement
rule's near-tie threshold (:data:`dba_ref.agreement.AMBIGUITY`), so any
correct implementation sees the same. Mistakes named: a batch where greedy
is optimal, one where it is beaten only by a subset smaller than
``min_size``, or only under another metric; a gap or a greedy decision
within rounding; a wrong shape or non-finite entries.
"""
from __future__ import annotations

import numpy as np

from ..agreement import AMBIGUITY, decisive_steps, greedy_margins, scaled_gap, value_scale
from ..metrics import METRIC_NAMES, subset_stats
from ..search import greedy_path, search
from .definitions import Case, Exercise
from .differences import as_float_array, fmt, with_cause
from .subset_answers import METRIC

#: Batch sizes of the cases; with ``min_size = B − 1`` greedy is always optimal, so ``min_size <= B − 2``.
B_RANGE = (4, 8)


def _case(name, B, m) -> Case:
    return Case(f"{name} (B = {B}, min_size = {m})", (B, m))


def _edges(rng) -> list:
    return [_case("the smallest batch", 4, 2), _case("min_size = 1", 5, 1), _case("min_size = B − 2", 6, 4),
            _case("a larger batch", 8, 3)]


def _random(rng) -> Case:
    B = int(rng.integers(B_RANGE[0], B_RANGE[1] + 1))
    return _case("random size", B, int(rng.integers(1, B - 1)))


def _gap(K, metric, m) -> tuple:
    """``(greedy's selection, the best selection, scaled gap)`` of ``K`` for ``metric``."""
    greedy, best = (search(K, metric, s, m, 0.0) for s in ("greedy", "exhaustive"))
    scale = max(float(value_scale(metric, *subset_stats(K, list(sel.indices)))) for sel in (greedy, best))
    gap = scaled_gap(greedy.value, best.value, scale) if greedy.value > best.value else 0.0
    return greedy, best, gap


def _grade(got, expected, case) -> str | None:
    B, m = case.args
    G, problem = as_float_array(got, "G")
    if problem:
        return problem
    if G.ndim != 2 or G.shape[0] != B or G.shape[1] < 1:
        return f"G has shape {G.shape}: return one gradient per sample, an array of shape (B, P) = ({B}, P), P >= 1"
    if not np.isfinite(G).all():
        return "G has entries that are inf or NaN: return finite gradients"
    K = G @ G.T
    greedy, best, gap = _gap(K, METRIC, m)
    if gap > AMBIGUITY["float64"]:
        margins = greedy_margins(K, METRIC, m, 0.0)
        clear = decisive_steps(margins)
        if clear == len(margins):
            return None
        return (f"greedy keeps {greedy.indices.tolist()} ({METRIC} {fmt(greedy.value)}) and the best subset is "
                f"{best.indices.tolist()} ({fmt(best.value)}), but greedy's step {clear + 1} is a near-tie (its "
                "best and second-best choices, or the choice and the stop, score the same up to rounding): "
                "another correct greedy could go the other way there. Return a batch whose greedy decisions are "
                "clear")
    message = (f"greedy keeps {greedy.indices.tolist()} with {METRIC} {fmt(greedy.value)}, and no subset of at "
               f"least min_size = {m} samples does better" if gap == 0.0 else
               f"greedy's subset scores {fmt(greedy.value)} and the best {fmt(best.value)}: the difference is "
               "within rounding, not a clear counterexample")
    cause = None
    smaller = search(K, METRIC, "exhaustive", 1, 0.0)
    if m > 1 and smaller.value < greedy.value and smaller.size < m:
        cause = (f"a better subset exists, {smaller.indices.tolist()} ({fmt(smaller.value)}), but it has fewer than "
                 f"min_size = {m} samples: the search may not keep it. Did your exhaustive search forget min_size?")
    else:
        other = next((name for name in METRIC_NAMES if name != METRIC and _gap(K, name, m)[2] > AMBIGUITY["float64"]),
                     None)
        if other:
            cause = (f"with {other} greedy is not optimal on this batch, but with {METRIC} (the metric of the "
                     "task) it is: search with mean_variance")
        elif greedy_path(K, METRIC, m, 0.0)[0].size == 0:
            cause = ("greedy removes nothing here: its first step finds no removal that lowers the metric. "
                     "A counterexample needs a batch where an early removal, best at the time, rules out the best "
                     "subset later")
    return with_cause(message, cause)


def reference_greedy_not_optimal(B, min_size) -> np.ndarray:
    """One answer among many: gradients (B, 3) found by a seeded random search, checked by the grader itself.

    The grade does not compare with it: it runs the reference's greedy and
    exhaustive searches on the student's batch.
    """
    rng = np.random.default_rng(1000 * B + min_size)
    case = _case("", B, min_size)
    while True:
        G = rng.normal(size=3) * rng.uniform(0, 2) + rng.normal(size=(B, 3))
        if _grade(G, None, case) is None:
            return G


EXERCISE = Exercise(9, "greedy_not_optimal", "a batch on which greedy is not optimal",
                    (("greedy_not_optimal", ("B", "min_size")),), reference_greedy_not_optimal, _edges, _random,
                    _grade,
                    reads_first="03_metrics_and_search.ipynb", minutes=40, builds_on=(6, 8), n_random=6)

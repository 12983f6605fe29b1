"""Exercise 8: the exhaustive search, ``exhaustive_search(K, min_size)`` (spec §5).

Every subset of at least ``min_size`` samples, the one with the lowest
metric kept; among equal values the largest subset, then the
lexicographically smallest sorted index list. The reference is
:func:`dba_ref.search.exhaustive_search`. Mistakes named: subsets smaller
than ``min_size``, only subsets of exactly ``min_size``, a tie given to the
smallest subset, the samples removed instead of kept.
"""
from __future__ import annotations

from ..agreement import exhaustive_margins
from ..search import mask_indices, subset_values
from .definitions import Exercise
from .subset_answers import METRIC, batch_case, clear_random_batch, grade_subset, kept_by, shared_edges


def reference_exhaustive_search(K, min_size) -> list:
    """The samples the exhaustive search keeps (:func:`dba_ref.search.exhaustive_search`, mean_variance), sorted."""
    return kept_by("exhaustive", K, min_size)


#: Largest batch of the cases (2^10 subsets: quick even for a loop in Python).
MAX_B = 10


def exhaustive_variant(K, min_size, sizes=None, largest=True) -> list:
    """The exhaustive search with a student's variation: only subsets of the given ``sizes``, or a tie given
    to the smallest subset. The exact reference is :func:`reference_exhaustive_search`."""
    best = None
    for masks, k, values in subset_values(K, METRIC, min_size):
        for mask, size, value in zip(masks, k, values):
            if sizes is not None and int(size) not in sizes:
                continue
            key = (value, -size if largest else size, mask_indices(int(mask), K.shape[0]))
            if best is None or key < best:
                best = key
    return list(best[2]) if best is not None else []


def _edges(rng) -> list:
    _, shared = shared_edges(rng)
    return [*shared,
            batch_case("identical gradients (every subset scores 0: the largest, all of them, is kept)",
                       [[0.5, -1.0, 2.0]] * 5, 2),
            batch_case("two pairs of opposite gradients (Q = 0 for some subsets: their metric is +inf)",
                       [[1, 0], [-1, 0], [0, 2], [0, -2]], 2),
            batch_case("min_size = 1 (a single sample scores 0, the lowest possible)",
                       [[1, 0.2], [0.8, -0.1], [-0.3, 1.0], [1.1, 0.0]], 1),
            batch_case("the best subset is larger than min_size", [[1, 0], [1.1, 0.1], [0.9, -0.1], [1, 0.05],
                                                                   [-0.4, 1.2], [0.2, -1.5]], 2)]


def _random(rng):
    """A random batch whose best subset is clear (the gap to the second best above the agreement rule's AMBIGUITY)."""
    return clear_random_batch(rng, exhaustive_margins, MAX_B, 2)


def _grade(got, expected, case) -> str | None:
    K, m = case.args
    wrong = [(lambda: exhaustive_variant(K, 1), f"your search includes subsets smaller than min_size = {m}"),
             (lambda: exhaustive_variant(K, m, largest=False),
              "on a tie, keep the largest subset (a removal must strictly improve the metric), then the "
              "lexicographically smallest"),
             (lambda: exhaustive_variant(K, m, sizes={m}),
              f"you searched only the subsets of exactly min_size = {m} samples: every size from min_size to B "
              "counts")]
    return grade_subset(got, expected, K, m, wrong)


EXERCISE = Exercise(8, "exhaustive_search", "the exhaustive search", (("exhaustive_search", ("K", "min_size")),),
                    reference_exhaustive_search, _edges, _random, _grade, reads_first="03_metrics_and_search.ipynb",
                    minutes=30, builds_on=(4,))

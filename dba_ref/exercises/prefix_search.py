"""Exercise 7: the prefix search, ``prefix_search(K, min_size)`` (spec §5).

Rank the samples by their alignment with the batch's summed gradient,
``c_i = ⟨g_i, s⟩ / ‖g_i‖ = r_i / √K[i,i]`` (0 for a zero gradient; descending,
ties to the lower index), evaluate every prefix of the ranking of at least
``min_size`` samples and keep the best (a tie to the longest). The reference
is :func:`dba_ref.search.prefix_path` through :func:`dba_ref.search.search`.
Mistakes named: the ranking in ascending order, the raw ``r_i`` without the
division by ``‖g_i‖``, a tie given to the shortest prefix, prefixes shorter
than ``min_size``, the samples removed instead of kept.
"""
from __future__ import annotations

import numpy as np

from ..agreement import prefix_margins
from ..metrics import metric_value
from ..search import alignment_scores
from .definitions import Exercise
from .subset_answers import METRIC, batch_case, clear_random_batch, grade_subset, kept_by, shared_edges


def reference_prefix_search(K, min_size) -> list:
    """The samples the prefix search keeps (:func:`dba_ref.search.prefix_path`, mean_variance), sorted."""
    return kept_by("prefix", K, min_size)


def prefix_variant(K, min_size, scores=None, longest=True) -> list:
    """The prefix search with a student's variation: another ranking score (``scores``, higher first) or a tie
    given to the shortest prefix. The exact reference is :func:`reference_prefix_search`."""
    B = K.shape[0]
    scores = alignment_scores(K) if scores is None else scores
    order = np.argsort(-scores, kind="stable")
    P = K[np.ix_(order, order)]
    k = np.arange(1, B + 1)
    values = metric_value(METRIC, np.cumsum(np.diag(P)), P.cumsum(0).cumsum(1).diagonal(), k)
    sizes = np.arange(B, min_size - 1, -1) if longest else np.arange(min_size, B + 1)
    best = int(sizes[np.argmin(values[sizes - 1])])
    return sorted(int(i) for i in order[:best])


def _edges(rng) -> list:
    cluster, shared = shared_edges(rng)
    return [*shared,
            batch_case("sample 2 has a zero gradient (its score is 0)", np.vstack([cluster[:2], [[0, 0, 0]],
                                                                                    cluster[2:]]), 2),
            batch_case("identical gradients (every prefix scores 0: the longest is kept)", [[0.5, -1.0, 2.0]] * 5, 2),
            batch_case("a long gradient and short ones (the raw r_i would rank by length)",
                       [[4.0, 3.0], [0.2, 0.05], [0.3, -0.05], [-0.5, 1.0], [0.25, 0.0]], 2),
            batch_case("two pairs of opposite gradients (the full batch's metric is +inf)",
                       [[1, 0], [-1, 0], [0, 2], [0, -2]], 2)]


def _random(rng):
    """A random batch whose every prefix-search decision is clear (margins above the agreement rule's AMBIGUITY)."""
    return clear_random_batch(rng, prefix_margins, 12, 1)


def _grade(got, expected, case) -> str | None:
    K, m = case.args
    norms = np.sqrt(np.maximum(np.diag(K), 0.0))
    wrong = [(lambda: prefix_variant(K, m, scores=-alignment_scores(K)),
              "the ranking is upside down: sort by c_i in descending order (the best-aligned sample first)"),
             (lambda: prefix_variant(K, m, scores=K.sum(axis=1)),
              "you ranked by r_i = ⟨g_i, s⟩ alone: divide by ‖g_i‖ = √K[i,i], c_i = r_i / ‖g_i‖, "
              "so that a long gradient does not win by its length"),
             (lambda: prefix_variant(K, m, longest=False),
              "on a tie between prefixes, keep the longest (a removal must strictly improve the metric)"),
             (lambda: prefix_variant(K, 1), f"a prefix must keep at least min_size = {m} samples")]
    if (norms == 0).any():
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = K.sum(axis=1) / norms
        wrong.append((lambda: prefix_variant(K, m, scores=np.nan_to_num(raw, nan=-np.inf)),
                      "a zero gradient's score is 0 (0/0 is not a number): c_i = 0 where ‖g_i‖ = 0"))
    return grade_subset(got, expected, K, m, wrong)


EXERCISE = Exercise(7, "prefix_search", "the prefix search", (("prefix_search", ("K", "min_size")),),
                    reference_prefix_search, _edges, _random, _grade, reads_first="03_metrics_and_search.ipynb",
                    minutes=40, builds_on=(4, 6))

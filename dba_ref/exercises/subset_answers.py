"""What the search exercises share: batches of gradients as cases, and a returned subset read and described.

A search exercise's answer is the set of samples it keeps, returned as a
list of ints (any order). :func:`read_subset` checks the form,
:func:`subset_value` scores a subset, and :func:`subset_message` states a
wrong one with both values, so that each exercise only adds its likely cause.
"""
from __future__ import annotations

import numpy as np

from ..agreement import decisive_steps
from ..metrics import metric_value, subset_stats
from ..search import search
from .definitions import Case
from .differences import fmt, with_cause

METRIC = "mean_variance"


def batch_case(name, G, min_size, function=None) -> Case:
    """A case ``(K, min_size)`` from the gradients ``G`` (B, P): ``K = G Gᵀ``."""
    G = np.asarray(G, np.float64)
    return Case(f"{name} (B = {G.shape[0]}, min_size = {min_size})", (G @ G.T, int(min_size)), function)


def shared_edges(rng) -> tuple:
    """``(cluster, cases)``: five gradients around one direction (drawn from ``rng``) and the edge cases the
    subset searches share on it: an outlier, ``min_size = B`` and a single sample."""
    cluster = np.array([1.0, 0.5, -0.2]) + 0.1 * rng.normal(size=(5, 3))
    return cluster, [batch_case("one gradient points against the others (sample 5)",
                                np.vstack([cluster, [[-1.0, -0.3, 0.4]]]), 2),
                     batch_case("min_size = B: every sample is kept", cluster, 5),
                     batch_case("a single sample", cluster[:1], 1)]


def clear_random_batch(rng, margins_of, max_B: int, smallest_min_size: int) -> Case:
    """A random batch (3 to ``max_B`` samples of 2 to 5 features sharing a direction) whose every decision is clear:
    ``margins_of(K, METRIC, min_size)`` above the agreement rule's AMBIGUITY, so every correct search agrees."""
    while True:
        B, P = int(rng.integers(3, max_B + 1)), int(rng.integers(2, 6))
        G = rng.normal(size=P) + rng.uniform(0.2, 2.0) * rng.normal(size=(B, P))
        min_size = int(rng.integers(smallest_min_size, min(B, 4) + 1))
        margins = margins_of(G @ G.T, METRIC, min_size)
        if decisive_steps(margins) == len(margins):
            return batch_case("random batch", G, min_size)


def kept_by(strategy: str, K, min_size) -> list:
    """The sorted indices of the samples the reference's ``strategy`` keeps on ``K`` (mean_variance)."""
    return [int(i) for i in search(np.asarray(K, np.float64), METRIC, strategy, int(min_size), 0.0).indices]


def read_subset(got, B: int):
    """``(sorted indices, None)``, or ``(None, message)`` when ``got`` is not a list of distinct sample indices."""
    if got is None:
        return None, "your function returned None; did you forget the `return`?"
    try:
        arr = np.asarray(got)
    except Exception:  # noqa: BLE001 — ragged lists and the like
        arr = np.asarray([None], dtype=object)
    if arr.dtype == bool and arr.shape == (B,):
        return None, ("you returned a boolean mask; return the indices of the samples kept, e.g. "
                      "np.flatnonzero(mask).tolist()")
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        return None, (f"return the indices of the samples kept as a list of ints; you returned {type(got).__name__}"
                      + (f" of dtype {arr.dtype}" if arr.dtype != object else ""))
    indices = [int(i) for i in arr]
    if any(not 0 <= i < B for i in indices):
        return None, f"you returned {indices}: indices must lie in 0..{B - 1} (B = {B})"
    if len(set(indices)) != len(indices):
        return None, f"you returned {indices}: each sample at most once"
    return sorted(indices), None


def subset_value(K, indices) -> float:
    """The metric of the subset ``indices`` of ``K``."""
    return float(metric_value(METRIC, *subset_stats(K, list(indices)))) if len(indices) else np.inf


def subset_message(K, got, expected) -> str:
    """``you kept [...] (mean_variance v); the search keeps [...] (v')``."""
    return (f"you kept {got} ({METRIC} {fmt(subset_value(K, got))}); the search keeps {expected} "
            f"({METRIC} {fmt(subset_value(K, expected))})")


def grade_subset(got, expected: list, K, min_size: int, mistakes) -> str | None:
    """The grade of a subset answer: None when ``got`` is the ``expected`` sorted indices, else what is wrong.

    ``mistakes`` are ``(candidate, why)`` pairs, ``candidate()`` the subset a
    typical mistake would return: the first one that matches ``got`` (and is not
    the right answer) names the likely cause. The samples removed, returned
    instead of those kept, are tried before them; keeping fewer than
    ``min_size`` samples is named otherwise.
    """
    B = K.shape[0]
    kept, problem = read_subset(got, B)
    if problem:
        return problem
    if kept == expected:
        return None
    removed = (lambda: sorted(set(range(B)) - set(expected)), "you returned the samples removed; return the ones kept")
    mistakes = [removed, *mistakes]
    cause = next((why for candidate, why in mistakes if (answer := candidate()) == kept and answer != expected), None)
    if cause is None and len(kept) < min_size:
        cause = f"you kept {len(kept)} samples, fewer than min_size = {min_size}"
    return with_cause(subset_message(K, kept, expected), cause)

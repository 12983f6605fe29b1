"""Decision margins: how close each decision of a search was (spec §5, §10.1).

A search's decisions are measured on request, never by the search itself: the
gap between the best and the second-best choice, and for greedy between the
best and the acceptance threshold, over the rounding scale of the values
(:func:`~dba_ref.agreement.rounding.value_scale`). A decision whose margin
is at most :data:`~dba_ref.agreement.rounding.AMBIGUITY` is a near-tie that
another correct implementation may take the other way. Greedy's margins are
read from the one greedy path, :func:`dba_ref.search.greedy_walk`, step by
step: the values measured are the values greedy compared.
"""
from __future__ import annotations

import numpy as np

from ..search import alignment_order, alignment_scores, greedy_walk, prefix_path, subset_values
from .rounding import AMBIGUITY, value_scale


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


def greedy_margins(K: np.ndarray, metric: str, min_size: int, tol: float) -> np.ndarray:
    """The decision margin of every step greedy evaluates on ``K``: one per accepted removal, and one more for
    the rejected step when the path stops above ``min_size`` (the steps of :func:`dba_ref.search.greedy_walk`)."""
    margins = []
    for step in greedy_walk(np.asarray(K, np.float64), metric, min_size, tol):
        best = float(step.candidates[step.best])
        second = float(np.min(np.delete(step.candidates, step.best), initial=np.inf))
        margins.append(decision_margin(metric, best, second, step.threshold, step.best_stats, step.stats))
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
        return greedy_margins(K, tr.metric, tr.min_size, tr.tol)
    if tr.strategy == "prefix":
        return prefix_margins(K, tr.metric, tr.min_size)
    if tr.strategy == "exhaustive":
        return exhaustive_margins(K, tr.metric, tr.min_size)
    return np.zeros(0)


def decisive_steps(margins: np.ndarray, threshold: float = AMBIGUITY["float64"]) -> int:
    """How many leading decisions are clear (margin above ``threshold``): the steps that must agree."""
    close = np.flatnonzero(np.asarray(margins) <= threshold)
    return int(close[0]) if close.size else len(margins)

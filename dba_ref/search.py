"""Searching for the subset of a batch that minimises a metric (spec §5, §8).

There are 2^B subsets, so the search is a strategy:

``greedy`` (default)
    Backward elimination. Start from all B samples; at each step find the
    sample whose removal gives the lowest metric and remove it if
    ``|S| > min_size`` and the new value is below ``(1 − tol) ×`` the current
    value (strictly below when the current value is ≤ 0); otherwise stop.
    Ties go to the lowest original index. With ``r_i = Σ_{j∈S} K[i, j]``
    kept up to date, removing i gives ``T − K[i,i]`` and
    ``Q − 2 r_i + K[i,i]``: O(B) per step, O(B²) for the whole path.
``prefix``
    Rank samples by alignment with the full-batch sum s,
    ``c_i = ⟨g_i, s⟩ / ‖g_i‖`` (0 where g_i = 0; descending, ties by index),
    evaluate every prefix of size ≥ ``min_size`` in one O(B²) pass and keep
    the best (on a tie, the longest prefix). ``tol`` does not apply.
``exhaustive``
    Every subset of size ≥ ``min_size``; exact; B ≤ 20 only. Exact ties go to
    the lexicographically smallest sorted index list.
``all``
    No selection: every sample is kept.

This module holds the NumPy kernels (the readable reference) and the front
door :func:`select`, which validates, resolves ``min_size``, dispatches to a
backend's kernels and packages the result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_choice, check_gram, check_tol, resolve_min_size
from .metrics import METRICS, Q_EPS, metric_value, value_scale

STRATEGIES = ("greedy", "prefix", "exhaustive", "all")
#: Largest batch the exhaustive search accepts (2^20 ≈ 10^6 subsets).
EXHAUSTIVE_MAX_B = 20


@dataclass(frozen=True)
class SelectionTrace:
    """What a search did (spec §8).

    Attributes
    ----------
    metric, strategy : str
    batch_size, min_size : int
        B and the resolved minimum subset size.
    full_T, full_Q, full_value : float
        Statistics and metric value of the whole batch.
    removed : int array
        Original indices in the order the path removed them. Greedy: the
        accepted removals. Prefix: the ranking read from its tail, down to
        ``min_size``. Empty for exhaustive and all.
    values : float array
        ``values[t]`` is the metric after ``t + 1`` removals of ``removed``.
    margins : float array
        Greedy only: for every step evaluated (the last may be the rejected
        one), how close the decision was: ``min(|best − second best| / s_best,
        |best − threshold| / max(s_best, s_current))`` with ``s`` the rounding
        scale of a value (:func:`dba_ref.metrics.value_scale`); 0 for equal
        values, 1 when exactly one is infinite. Two implementations must agree
        on a step whose margin exceeds 1e-9.
    n_evaluated : int
        Number of subsets whose metric was computed.
    """

    metric: str
    strategy: str
    batch_size: int
    min_size: int
    full_T: float
    full_Q: float
    full_value: float
    removed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    margins: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_evaluated: int = 1


@dataclass(frozen=True)
class Selection:
    """The chosen subset: ``indices`` (sorted, int64), its metric ``value`` and the ``trace``."""

    indices: np.ndarray
    value: float
    trace: SelectionTrace

    @property
    def size(self) -> int:
        return int(self.indices.shape[0])


# --------------------------------------------------------------------------
# NumPy kernels. Every backend provides these three with the same signature.
# --------------------------------------------------------------------------
def scaled_gap(a: float, b: float, scale: float) -> float:
    """``|a − b| / scale``; 0 for equal values (both inf included), 1 if exactly one is inf."""
    if a == b:
        return 0.0
    if np.isinf(a) or np.isinf(b):
        return 1.0
    return abs(a - b) / scale if scale > 0 else np.inf


def decision_margin(metric: str, best: float, second: float, threshold: float, best_stats, current_stats) -> float:
    """How close one greedy decision was (see :class:`SelectionTrace`).

    ``best_stats`` and ``current_stats`` are the ``(T, Q, k)`` of the best
    candidate and of the current subset; the gaps are measured against their
    rounding scales, so values that cancel to about 0 count as ties.
    """
    s_best = float(value_scale(metric, *best_stats))
    s_current = float(value_scale(metric, *current_stats))
    s_either = s_best if s_best > s_current else s_current        # (NaN-safe as the compiled kernels)
    return min(scaled_gap(best, second, s_best), scaled_gap(best, threshold, s_either))


def acceptance_threshold(current: float, tol: float) -> float:
    """A candidate is accepted when its value is strictly below this."""
    return current if current <= 0 else (1.0 - tol) * current


def greedy_path(K: np.ndarray, metric: str, min_size: int, tol: float):
    """Backward elimination on a float64 Gram matrix.

    Returns ``(removed, values, margins)``: removal order (int64), metric after
    each removal, and the decision margin of every evaluated step.
    """
    B = K.shape[0]
    diag = np.diag(K).copy()
    r = K.sum(axis=1)                      # r_i = ⟨g_i, s⟩ for the current S
    T, Q, k = diag.sum(), r.sum(), B
    current = float(metric_value(metric, T, Q, k))
    active = np.ones(B, dtype=bool)
    removed, values, margins = [], [], []
    while k > min_size:
        cand = metric_value(metric, T - diag, Q - 2.0 * r + diag, k - 1)
        cand = np.where(active, cand, np.inf)
        best = int(np.argmin(cand))            # first occurrence: the lowest index wins ties
        best_value = float(cand[best])
        threshold = acceptance_threshold(current, tol)
        second = float(np.min(np.delete(cand, best))) if k > 1 else np.inf
        best_stats = (T - diag[best], Q - 2.0 * r[best] + diag[best], k - 1)
        margins.append(decision_margin(metric, best_value, second, threshold, best_stats, (T, Q, k)))
        if not best_value < threshold:
            break
        T -= diag[best]
        Q -= 2.0 * r[best] - diag[best]
        r -= K[:, best]
        active[best] = False
        k -= 1
        current = best_value
        removed.append(best)
        values.append(best_value)
    return np.array(removed, np.int64), np.array(values, np.float64), np.array(margins, np.float64)


def alignment_order(K: np.ndarray) -> np.ndarray:
    """Samples by descending ``c_i = ⟨g_i, s⟩ / ‖g_i‖`` (0 where ‖g_i‖ = 0), ties by index."""
    diag = np.diag(K)
    r = K.sum(axis=1)
    norms = np.sqrt(np.maximum(diag, 0.0))
    c = np.divide(r, norms, out=np.zeros_like(r), where=norms > 0)
    return np.argsort(-c, kind="stable")


def prefix_path(K: np.ndarray, metric: str, min_size: int):
    """Metric of every prefix of the alignment ranking.

    Returns ``(order, values)`` with ``values[k − 1]`` the metric of the first
    k ranked samples, for k = 1..B.
    """
    order = alignment_order(K)
    P = K[np.ix_(order, order)]
    diag = np.diag(P)
    T = np.cumsum(diag)
    # Q_k = Q_{k-1} + 2 Σ_{a<k} P[k, a] + P[k, k]
    Q = np.cumsum(2.0 * np.tril(P, -1).sum(axis=1) + diag)
    k = np.arange(1, K.shape[0] + 1)
    return order.astype(np.int64), metric_value(metric, T, Q, k).astype(np.float64)


def exhaustive_search(K: np.ndarray, metric: str, min_size: int, chunk: int = 1 << 15):
    """Every subset of size ≥ ``min_size``; returns ``(indices, value, n_evaluated)``.

    Subset m (an integer) contains sample i when bit i of m is set. Among
    subsets of equal value the largest wins (a removal must strictly improve,
    as in greedy and prefix), then the lexicographically smallest sorted index
    list; so when every value is +inf the whole batch is kept.
    """
    B = K.shape[0]
    bits = np.arange(B)
    diag = np.diag(K)
    best_value, best_key, n_evaluated = np.inf, None, 0
    for start in range(1, 1 << B, chunk):
        masks = np.arange(start, min(start + chunk, 1 << B))
        M = ((masks[:, None] >> bits) & 1).astype(np.float64)
        k = M.sum(axis=1)
        keep = k >= min_size
        M, k, masks = M[keep], k[keep], masks[keep]
        if masks.size == 0:
            continue
        n_evaluated += masks.size
        vals = metric_value(metric, M @ diag, ((M @ K) * M).sum(axis=1), k)
        low = vals.min()
        if low > best_value:
            continue
        tied = masks[vals == low]
        sizes = k[vals == low]
        largest = tied[sizes == sizes.max()]
        key = min((-int(sizes.max()), tuple(int(i) for i in bits if (m >> i) & 1)) for m in largest)
        if best_key is None or low < best_value or key < best_key:
            best_value, best_key = low, key
    return np.array(best_key[1], np.int64), float(best_value), n_evaluated


# --------------------------------------------------------------------------
# Front door
# --------------------------------------------------------------------------
def select(K, metric: str = "mean_variance", strategy: str = "greedy", min_size=2, tol: float = 0.0,
           backend: str = "numpy") -> Selection:
    """Choose the subset of a batch that minimises ``metric``, from its Gram matrix.

    Parameters
    ----------
    K : array ``(B, B)``
        Gram matrix of one layer's per-sample gradients (see :func:`dba_ref.layer_grams`).
        Statistics are accumulated in float64 whatever its dtype.
    metric : {"mean_variance", "variance", "normalized_variance"}
    strategy : {"greedy", "prefix", "exhaustive", "all"}
    min_size : int or float
        Smallest subset allowed: a count ≥ 1, or a fraction of B in (0, 1].
        A count larger than B is an error here (the trainer instead uses a
        too-small batch whole).
    tol : float in [0, 1)
        Greedy only: a removal must lower the metric by more than this fraction.
    backend : {"numpy", "numba", "cuda"}
        Who runs the search kernels; all give the same answer.

    Returns
    -------
    Selection with ``indices`` (sorted), ``value`` and ``trace``.

    Examples
    --------
    >>> import numpy as np
    >>> from dba_ref import select
    >>> G = np.array([[1.0, 0.0], [1.1, 0.1], [0.9, -0.1], [-1.0, 2.0]])   # one outlier
    >>> select(G @ G.T, min_size=3).indices
    array([0, 1, 2])
    """
    from .backends import get_backend

    K, Q = check_gram(K)
    metric = check_choice(metric, METRICS, "metric")
    strategy = check_choice(strategy, STRATEGIES, "strategy")
    tol = check_tol(tol)
    B = K.shape[0]
    m = resolve_min_size(min_size, B)
    if m > B:
        raise ValueError(f"min_size={m} is larger than the batch (B={B}); use min_size <= {B}")
    check_exhaustive_size(strategy, B)
    be = get_backend(backend)
    if strategy == "all":
        result = None
    elif strategy == "greedy":
        result = be.greedy_path(K, metric, m, tol)
    elif strategy == "prefix":
        result = be.prefix_path(K, metric, m)
    else:
        result = be.exhaustive_search(K, metric, m)
    return package_selection(metric, strategy, B, m, float(np.trace(K)), Q, result)


def check_exhaustive_size(strategy: str, batch_size: int) -> None:
    """``exhaustive`` is allowed only for B <= EXHAUSTIVE_MAX_B."""
    if strategy == "exhaustive" and batch_size > EXHAUSTIVE_MAX_B:
        raise ValueError(
            f"strategy='exhaustive' evaluates 2^B subsets and is allowed only for B <= {EXHAUSTIVE_MAX_B}, "
            f"got B={batch_size}; use 'greedy' or 'prefix'"
        )


def package_selection(metric: str, strategy: str, batch_size: int, min_size: int, T: float, Q: float,
                      result) -> Selection:
    """The :class:`Selection` for a backend's raw search ``result`` (None for ``"all"``).

    ``T`` and ``Q`` are the full batch's statistics. Shared by :func:`select`
    and by backends that search on a device (:class:`dba_ref.backends.cuda.DeviceStep`).
    """
    B, m = batch_size, min_size
    full = float(metric_value(metric, T, Q, B))
    base = dict(metric=metric, strategy=strategy, batch_size=B, min_size=m, full_T=T, full_Q=Q, full_value=full)
    if strategy == "all":
        return Selection(np.arange(B, dtype=np.int64), full, SelectionTrace(**base))
    if strategy == "greedy":
        removed, values, margins = result
        keep = np.ones(B, dtype=bool)
        keep[removed] = False
        value = float(values[-1]) if len(values) else full
        trace = SelectionTrace(**base, removed=removed, values=values, margins=margins,
                               n_evaluated=1 + sum(B - t for t in range(len(margins))))
        return Selection(np.flatnonzero(keep).astype(np.int64), value, trace)
    if strategy == "prefix":
        order, values = result
        sizes = np.arange(B, m - 1, -1)                    # B, B-1, ..., m
        path = values[sizes - 1]
        k_best = int(sizes[np.argmin(path)])               # first minimum = the longest prefix
        trace = SelectionTrace(**base, removed=order[::-1][: B - m].copy(), values=path[1:].copy(),
                               n_evaluated=B - m + 1)
        return Selection(np.sort(order[:k_best]), float(values[k_best - 1]), trace)
    indices, value, n_evaluated = result
    return Selection(np.sort(indices), value, SelectionTrace(**base, n_evaluated=n_evaluated))


__all__ = ["select", "package_selection", "check_exhaustive_size", "Selection", "SelectionTrace", "greedy_path",
           "prefix_path", "exhaustive_search", "alignment_order", "decision_margin", "scaled_gap", "STRATEGIES",
           "EXHAUSTIVE_MAX_B", "Q_EPS"]

"""Searching for the subset of a batch that minimises a metric (spec §5).

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
    Every subset of size ≥ ``min_size``; exact; B ≤ 20 only. Among subsets of
    equal value the largest wins, then the lexicographically smallest sorted
    index list.
``all``
    No selection: every sample is kept.

The three searching functions are the NumPy kernels, the readable
reference; :data:`NUMPY_SEARCH` gathers them. :func:`search` runs one
strategy with given kernels and packages the :class:`Selection`, unchecked;
:func:`select` is the public front door, which checks its inputs once and
calls :func:`search`. Other backends (:mod:`dba_ref.backends`) pass their own
kernels with the same signatures. How close each decision was, which tells
whether two implementations must agree on it, is measured apart from the
search, on request: :mod:`dba_ref.agreement`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from ._validation import check_choice, check_gram, check_min_size, check_tol
from .metrics import METRICS, metric_value

STRATEGIES = ("greedy", "prefix", "exhaustive", "all")
#: The selection's defaults, the paper's algorithm: used by :func:`select`, :func:`dba_ref.dba`,
#: :func:`dba_ref.dba_step` and :class:`dba_ref.DBAClassifier` (``dba-ref train`` differs on purpose; its --help says why).
DBA_DEFAULTS = {"metric": "mean_variance", "strategy": "greedy", "min_size": 2, "tol": 0.0}
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
    tol : float
        Greedy's relative improvement threshold (0 for the other strategies).
    full_T, full_Q, full_value : float
        Statistics and metric value of the whole batch.
    removed : int array
        Original indices in the order the path removed them. Greedy: the
        accepted removals. Prefix: the ranking read from its tail, down to
        ``min_size``. Empty for exhaustive and all.
    values : float array
        ``values[t]`` is the metric after ``t + 1`` removals of ``removed``.
    n_evaluated : int
        Number of subsets whose metric was computed.
    """

    metric: str
    strategy: str
    batch_size: int
    min_size: int
    tol: float
    full_T: float
    full_Q: float
    full_value: float
    removed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
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


def min_size_count(min_size, batch_size: int) -> int:
    """``min_size`` (already checked) as a sample count for a batch of ``batch_size``.

    An ``int`` is an absolute count; a ``float`` in (0, 1] is a fraction of the
    batch, rounded up: ``ceil(min_size · B)``, at least 1.
    """
    if isinstance(min_size, (int, np.integer)):
        return int(min_size)
    return max(1, math.ceil(min_size * batch_size - 1e-12))


# --------------------------------------------------------------------------
# greedy
# --------------------------------------------------------------------------
def candidate_values(metric: str, T: float, Q: float, r: np.ndarray, diag: np.ndarray, k: int) -> np.ndarray:
    """The metric of ``S ∖ {i}`` for every i: ``metric(T − K[i,i], Q − 2 r_i + K[i,i], k − 1)``, shape ``(B,)``."""
    return metric_value(metric, T - diag, Q - 2.0 * r + diag, k - 1)


def acceptance_threshold(current: float, tol: float) -> float:
    """A removal is accepted when its value is strictly below this: ``(1 − tol)·current``, or ``current`` if ≤ 0."""
    return current if current <= 0 else (1.0 - tol) * current


def remove_sample(K: np.ndarray, diag: np.ndarray, r: np.ndarray, T: float, Q: float, j: int) -> tuple[float, float]:
    """Take sample j out of the running statistics: returns ``(T − K[j,j], Q − (2 r_j − K[j,j]))`` and
    updates ``r_i ← r_i − K[i, j]`` in place."""
    T -= diag[j]
    Q -= 2.0 * r[j] - diag[j]
    r -= K[:, j]
    return T, Q


def greedy_path(K: np.ndarray, metric: str, min_size: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Backward elimination on a float64 Gram matrix ``K`` (B, B).

    Returns ``(removed, values)``: the removal order (int64) and the metric
    after each removal (float64), both of the same length.
    """
    B = K.shape[0]
    diag = np.diag(K).copy()
    r = K.sum(axis=1)                      # r_i = ⟨g_i, s⟩ for the current S
    T, Q, k = diag.sum(), r.sum(), B
    current = float(metric_value(metric, T, Q, k))
    active = np.ones(B, dtype=bool)
    removed, values = [], []
    while k > min_size:
        cand = np.where(active, candidate_values(metric, T, Q, r, diag, k), np.inf)
        best = int(np.argmin(cand))        # first occurrence: the lowest index wins ties
        if not cand[best] < acceptance_threshold(current, tol):
            break
        T, Q = remove_sample(K, diag, r, T, Q, best)
        active[best] = False
        k -= 1
        current = float(cand[best])
        removed.append(best)
        values.append(current)
    return np.array(removed, np.int64), np.array(values, np.float64)


# --------------------------------------------------------------------------
# prefix
# --------------------------------------------------------------------------
def alignment_scores(K: np.ndarray) -> np.ndarray:
    """``c_i = ⟨g_i, s⟩ / ‖g_i‖ = r_i / √K[i,i]`` (0 where ‖g_i‖ = 0), shape ``(B,)``."""
    norms = np.sqrt(np.maximum(np.diag(K), 0.0))
    r = K.sum(axis=1)
    return np.divide(r, norms, out=np.zeros_like(r), where=norms > 0)


def alignment_order(K: np.ndarray) -> np.ndarray:
    """Samples by descending alignment score ``c_i``, ties by index."""
    return np.argsort(-alignment_scores(K), kind="stable")


def prefix_path(K: np.ndarray, metric: str, min_size: int) -> tuple[np.ndarray, np.ndarray]:
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


# --------------------------------------------------------------------------
# exhaustive
# --------------------------------------------------------------------------
def subset_values(K: np.ndarray, metric: str, min_size: int, chunk: int = 1 << 15):
    """Every subset of size ≥ ``min_size`` with its metric, in chunks.

    Subset m (an integer) holds sample i when bit i of m is set. Yields
    ``(masks, sizes, values)``, three arrays of one chunk; subsets come in
    increasing m.
    """
    B = K.shape[0]
    bits = np.arange(B)
    diag = np.diag(K)
    for start in range(1, 1 << B, chunk):
        masks = np.arange(start, min(start + chunk, 1 << B))
        M = ((masks[:, None] >> bits) & 1).astype(np.float64)
        k = M.sum(axis=1)
        keep = k >= min_size
        M, k, masks = M[keep], k[keep], masks[keep]
        if masks.size:
            yield masks, k, metric_value(metric, M @ diag, ((M @ K) * M).sum(axis=1), k)


def mask_indices(mask: int, batch_size: int) -> tuple:
    """The sorted sample indices of subset ``mask``."""
    return tuple(i for i in range(batch_size) if (mask >> i) & 1)


def exhaustive_search(K: np.ndarray, metric: str, min_size: int) -> tuple[np.ndarray, float, int]:
    """Every subset of size ≥ ``min_size``; returns ``(indices, value, n_evaluated)``.

    Among subsets of equal value the largest wins (a removal must strictly
    improve, as in greedy and prefix), then the lexicographically smallest
    sorted index list; so when every value is +inf the whole batch is kept.
    """
    B = K.shape[0]
    best_value, best_key, n_evaluated = np.inf, None, 0
    for masks, sizes, values in subset_values(K, metric, min_size):
        n_evaluated += masks.size
        low = values.min()
        if low > best_value:
            continue
        tied, tied_sizes = masks[values == low], sizes[values == low]
        key = min((-int(tied_sizes.max()), mask_indices(int(m), B)) for m in tied[tied_sizes == tied_sizes.max()])
        if best_key is None or low < best_value or key < best_key:
            best_value, best_key = low, key
    return np.array(best_key[1], np.int64), float(best_value), n_evaluated


# --------------------------------------------------------------------------
# One search, packaged
# --------------------------------------------------------------------------
class SearchKernels(NamedTuple):
    """The three searching functions of a backend, with the signatures of the NumPy ones here."""

    greedy_path: Callable
    prefix_path: Callable
    exhaustive_search: Callable


#: The reference kernels: this module's functions.
NUMPY_SEARCH = SearchKernels(greedy_path, prefix_path, exhaustive_search)


def greedy_steps(batch_size: int, n_removed: int, min_size: int) -> int:
    """How many steps greedy evaluated on a path of ``n_removed`` accepted removals: one per removal, and one
    more, rejected, when the path stopped above ``min_size``."""
    return n_removed + (batch_size - n_removed > min_size)


def make_selection(metric: str, strategy: str, batch_size: int, min_size: int, tol: float, T: float, Q: float,
                   result) -> Selection:
    """The :class:`Selection` for a kernel's raw ``result`` (``None`` for ``"all"``).

    ``T`` and ``Q`` are the full batch's statistics. Used by :func:`search` and
    by backends that search on a device.
    """
    B, m = batch_size, min_size
    full = float(metric_value(metric, T, Q, B))
    base = dict(metric=metric, strategy=strategy, batch_size=B, min_size=m, tol=tol if strategy == "greedy" else 0.0,
                full_T=T, full_Q=Q, full_value=full)
    if strategy == "all":
        return Selection(np.arange(B, dtype=np.int64), full, SelectionTrace(**base))
    if strategy == "greedy":
        removed, values = result
        keep = np.ones(B, dtype=bool)
        keep[removed] = False
        value = float(values[-1]) if len(values) else full
        n_steps = greedy_steps(B, len(removed), m)                 # step t evaluates B - t candidates
        trace = SelectionTrace(**base, removed=removed, values=values,
                               n_evaluated=1 + n_steps * B - n_steps * (n_steps - 1) // 2)
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


def search(K: np.ndarray, metric: str, strategy: str, min_size: int, tol: float,
           kernels: SearchKernels = NUMPY_SEARCH) -> Selection:
    """Run one strategy on a float64 Gram matrix with ``kernels``; no checks (see :func:`select`).

    ``min_size`` is a count, 1 ≤ ``min_size`` ≤ B.
    """
    B = K.shape[0]
    if strategy == "greedy":
        result = kernels.greedy_path(K, metric, min_size, tol)
    elif strategy == "prefix":
        result = kernels.prefix_path(K, metric, min_size)
    elif strategy == "exhaustive":
        result = kernels.exhaustive_search(K, metric, min_size)
    else:
        result = None
    T, Q = np.diag(K).sum(), K.sum(axis=1).sum()       # summed as the kernels sum them: greedy starts from these
    return make_selection(metric, strategy, B, min_size, tol, float(T), float(Q), result)


def select(K, metric: str = DBA_DEFAULTS["metric"], strategy: str = DBA_DEFAULTS["strategy"],
           min_size=DBA_DEFAULTS["min_size"], tol: float = DBA_DEFAULTS["tol"],
           kernels: SearchKernels = NUMPY_SEARCH) -> Selection:
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
        A count larger than B is an error here (DBA instead uses a too-small
        batch whole).
    tol : float in [0, 1)
        Greedy only: a removal must lower the metric by more than this fraction.
    kernels : SearchKernels
        Who runs the search; NumPy's by default. Another backend's are
        ``dba_ref.backends.get_backend(name).kernels.search``; all give the same answer.

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
    if not isinstance(kernels, SearchKernels):
        raise TypeError(f"kernels must be a dba_ref.search.SearchKernels (another backend's are "
                        f"dba_ref.backends.get_backend(name).kernels.search), got {type(kernels).__name__}")
    K = check_gram(K)
    metric = check_choice(metric, METRICS, "metric")
    strategy = check_choice(strategy, STRATEGIES, "strategy")
    tol = check_tol(tol)
    B = K.shape[0]
    m = min_size_count(check_min_size(min_size), B)
    if m > B:
        raise ValueError(f"min_size={m} is larger than the batch (B={B}); use min_size <= {B}")
    check_exhaustive_size(strategy, B)
    return search(K, metric, strategy, m, tol, kernels)


def check_exhaustive_size(strategy: str, batch_size: int) -> None:
    """``exhaustive`` is allowed only for B <= EXHAUSTIVE_MAX_B."""
    if strategy == "exhaustive" and batch_size > EXHAUSTIVE_MAX_B:
        raise ValueError(
            f"strategy='exhaustive' evaluates 2^B subsets and is allowed only for B <= {EXHAUSTIVE_MAX_B}, "
            f"got B={batch_size}; use 'greedy' or 'prefix'"
        )


__all__ = ["select", "search", "make_selection", "Selection", "SelectionTrace", "SearchKernels", "NUMPY_SEARCH",
           "greedy_path", "greedy_steps", "candidate_values", "acceptance_threshold", "remove_sample", "prefix_path",
           "alignment_order", "alignment_scores", "exhaustive_search", "subset_values", "min_size_count",
           "check_exhaustive_size", "STRATEGIES", "EXHAUSTIVE_MAX_B", "DBA_DEFAULTS"]

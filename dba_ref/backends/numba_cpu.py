"""The Numba CPU backend (``backend="numba"``): the NumPy reference, step by step, compiled.

Each function has the signature and the semantics of its NumPy twin (see
:mod:`dba_ref.backends`); the tests check that both give the same selections
and values. What is compiled, and what is not:

- **Gram** ``K = (Δ Δᵀ) ⊙ (A Aᵀ + 1)``: the two products ``A Aᵀ`` and ``Δ Δᵀ``
  are dense matrix products and go to BLAS through NumPy, exactly as in the
  reference (NumPy computes ``X @ X.T`` with the symmetric rank-k update
  ``syrk``, half the work of a general product; no hand-written loop comes
  near BLAS on a CPU). The combination ``DD ⊙ (AA + 1)`` is an ``@njit``
  kernel working in place, in the input dtype, with no temporary matrix.
- **greedy**: the whole backward elimination is one ``@njit`` kernel, no
  Python loop over steps or samples. K is symmetric (every Gram matrix is),
  so the kernel reads row i where the reference subtracts column i. The
  full-batch statistics ``r``, ``T`` and ``Q`` are the reference's own
  :func:`dba_ref.search.running_sums`, so both start from identical numbers
  (the paths then agree bit for bit in practice); each step then updates
  r, evaluates every remaining candidate and keeps the best in one pass
  over a row of K. The remaining samples are kept packed
  (in index order, so ties still go to the lowest index), so a step costs
  ``O(|S|)`` and the path O(B²) with half the constant.
- **prefix**: the ranking is :func:`dba_ref.search.alignment_order` itself;
  the O(B²) part, ``Σ_{a<k} K[o_k, o_a]`` for every k, is one kernel.
- **exhaustive**: one kernel over all 2^B subsets (B ≤ 20), building every
  subset's ``(T, Q)`` from the subset without its highest sample (O(B) per
  subset instead of O(B²)).
- **mean gradient** ``(1/|S|) Δ_Sᵀ [A_S, 1]``: the reference's own function.
  Its cost is the product ``Δ_Sᵀ A_S`` (BLAS); gathering the k selected rows
  first is ~1% of it, and a compiled gather was measured no faster than
  NumPy's fancy indexing (``benchmarks/kernel_choices.py``), so nothing here
  is compiled.

Every kernel is compiled serial. ``parallel=True`` was measured for the
combination and the prefix sums (``benchmarks/kernel_choices.py``) and did
not pay on the 2-core development machine: a parallel region costs ~8 ms
there whenever the other core is busy, more than the whole serial kernel
below B ≈ 2000, and it lost at every size measured (``docs/performance.md``).
The greedy path cannot use it anyway: each step depends on the previous
one and is a few microseconds of work.

Every kernel is compiled on first use and cached on disk (``cache=True``,
in ``__pycache__`` next to this file, or ``NUMBA_CACHE_DIR``);
``docs/performance.md`` gives the cost of the first call with and without
the cache. Inputs may be float32 or float64; ``T``, ``Q`` and ``r`` are
float64 in either case (spec §4).
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
from numba import njit, prange

from ..backprop import backprop
from ..backprop import subset_mean_grad as reference_mean_grad
from ..metrics import METRIC_NAMES, metric_value
from ..search import SearchKernels, alignment_order, running_sums
from ..update import Kernels
from ..update import dba_gradients as reference_dba_gradients
from ._kernels import acceptance_threshold, metric

__all__ = ["KERNELS", "signals", "dba_gradients", "gram", "greedy_path", "prefix_path",
           "exhaustive_search", "mean_grad"]


# --------------------------------------------------------------------------
# Gram matrix
# --------------------------------------------------------------------------
@njit(cache=True)
def _combine_gram(DD, AA, one):
    """``DD ← DD ⊙ (AA + one)`` in place (``one`` is 1 in the dtype of the matrices).

    Compiled serial (``prange`` runs as ``range``); ``benchmarks/kernel_choices.py``
    compiles it with ``parallel=True`` too, to show that does not pay.
    """
    n, m = DD.shape
    for i in prange(n):
        for j in range(m):
            DD[i, j] = DD[i, j] * (AA[i, j] + one)


def gram(A: np.ndarray, D: np.ndarray) -> np.ndarray:
    """``K = (D Dᵀ) ⊙ (A Aᵀ + 1)``, shape ``(B, B)``, float64 whatever the inputs' dtype (see :mod:`dba_ref.gram`)."""
    A, D = np.asarray(A, np.float64), np.asarray(D, np.float64)
    K = D @ D.T
    _combine_gram(K, A @ A.T, K.dtype.type(1))
    return K


# --------------------------------------------------------------------------
# Greedy backward elimination
# --------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _greedy_kernel(K, diag, r, T, Q, metric_id, min_size, tol, removed, values):
    """The greedy path on precomputed full-batch statistics ``diag``, ``r``, ``T``, ``Q``.

    K is symmetric, so row i serves as column i (contiguous reads). Writes
    the removal order and the values into the given arrays (length B) and
    returns how many samples were removed. ``r`` and ``diag`` are overwritten.
    """
    B = diag.shape[0]
    idx = np.arange(B)               # remaining samples, packed, in index order
    r_p = r                          # r and diag of the remaining samples, packed alike
    d_p = diag
    k = B
    current = metric(metric_id, T, Q, float(k))
    n_removed = 0
    column = K[0]
    while k > min_size:
        k_new = float(k - 1)
        best, best_value = -1, np.inf
        for p in range(k):
            if n_removed > 0:                      # r_i -= K[i, last removed] = K[last removed, i]
                r_p[p] -= column[idx[p]]
            d = d_p[p]
            v = metric(metric_id, T - d, Q - 2.0 * r_p[p] + d, k_new)
            if v < best_value:                     # strict: the lowest index wins ties
                best_value = v
                best = p
        if not best_value < acceptance_threshold(current, tol):
            break
        i = idx[best]
        T -= d_p[best]
        Q -= 2.0 * r_p[best] - d_p[best]
        column = K[i]
        for p in range(best, k - 1):               # unpack sample i, keep the order
            idx[p] = idx[p + 1]
            r_p[p] = r_p[p + 1]
            d_p[p] = d_p[p + 1]
        k -= 1
        current = best_value
        removed[n_removed] = i
        values[n_removed] = best_value
        n_removed += 1
    return n_removed


def greedy_path(K: np.ndarray, metric: str, min_size: int, tol: float):
    """Backward elimination on a float64 Gram matrix; same result as :func:`dba_ref.search.greedy_path`."""
    B = K.shape[0]
    diag, r, T, Q = running_sums(K)
    removed = np.empty(B, np.int64)
    values = np.empty(B, np.float64)
    n = _greedy_kernel(np.ascontiguousarray(K), diag, r, float(T), float(Q), METRIC_NAMES.index(metric), min_size,
                       tol, removed, values)
    return removed[:n].copy(), values[:n].copy()


# --------------------------------------------------------------------------
# Prefix of the alignment ranking
# --------------------------------------------------------------------------
@njit(cache=True)
def _prefix_stats(K, order):
    """``(T_k, Q_k)`` of the first k ranked samples, k = 1..B (float64).

    Compiled serial (``prange`` runs as ``range``); ``benchmarks/kernel_choices.py``
    compiles it with ``parallel=True`` too, to show that does not pay here.
    """
    B = order.shape[0]
    step = np.empty(B, np.float64)           # Q_k − Q_{k−1} = 2 Σ_{a<k} K[o_k, o_a] + K[o_k, o_k]
    diag = np.empty(B, np.float64)
    for k in prange(B):
        row = K[order[k]]
        s = 0.0
        for a in range(k):
            s += row[order[a]]
        diag[k] = row[order[k]]
        step[k] = 2.0 * s + diag[k]
    return np.cumsum(diag), np.cumsum(step)


def prefix_path(K: np.ndarray, metric: str, min_size: int):
    """Metric of every prefix of the alignment ranking; same result as :func:`dba_ref.search.prefix_path`."""
    order = alignment_order(K)
    T, Q = _prefix_stats(K, order)
    k = np.arange(1, K.shape[0] + 1)
    return order.astype(np.int64), metric_value(metric, T, Q, k).astype(np.float64)


# --------------------------------------------------------------------------
# Exhaustive search
# --------------------------------------------------------------------------
@njit(cache=True)
def _lexicographically_smaller(a, b):
    """Is the sorted index list of subset ``a`` lexicographically smaller than that of ``b``?

    Both lists agree below the lowest sample j where the subsets differ; the
    one holding j is smaller unless the other ends there (is a prefix).
    """
    diff = a ^ b
    low = diff & -diff                       # the lowest differing sample, as a bit
    above = ~((low << 1) - 1)                # bits of the samples after it
    if a & low:
        return (b & above) != 0
    return (a & above) == 0


@njit(cache=True, error_model="numpy")
def _exhaustive_kernel(K, metric_id, min_size):
    """Best subset (as a bit mask), its value, and the number of subsets evaluated."""
    B = K.shape[0]
    n = 1 << B
    T = np.zeros(n, np.float64)
    Q = np.zeros(n, np.float64)
    for high in range(B):                    # subsets whose highest sample is `high`
        start = 1 << high
        for m in range(start, 2 * start):
            rest = m - start
            s = 0.0
            for i in range(high):
                if rest >> i & 1:
                    s += K[high, i] + K[i, high]
            T[m] = T[rest] + K[high, high]
            Q[m] = Q[rest] + s + K[high, high]
    best_mask, best_value, best_size, n_evaluated = -1, np.inf, 0, 0
    for m in range(1, n):
        size = 0
        x = m
        while x:
            x &= x - 1
            size += 1
        if size < min_size:
            continue
        n_evaluated += 1
        v = metric(metric_id, T[m], Q[m], float(size))
        # ties: the larger subset, then the lexicographically smaller index list (as the reference)
        if v < best_value or (v == best_value and (best_mask < 0 or size > best_size or (
                size == best_size and _lexicographically_smaller(m, best_mask)))):
            best_mask, best_value, best_size = m, v, size
    return best_mask, best_value, n_evaluated


def exhaustive_search(K: np.ndarray, metric: str, min_size: int):
    """Every subset of size ≥ ``min_size``; same result as :func:`dba_ref.search.exhaustive_search`."""
    mask, value, n_evaluated = _exhaustive_kernel(K, METRIC_NAMES.index(metric), min_size)
    indices = np.flatnonzero((mask >> np.arange(K.shape[0])) & 1)
    return indices.astype(np.int64), float(value), int(n_evaluated)


# --------------------------------------------------------------------------
# Mean gradient over the selection
# --------------------------------------------------------------------------
#: ``(1/|S|) Δ_Sᵀ [A_S, 1]``: the reference itself (row gather + BLAS); see the module docstring.
mean_grad = reference_mean_grad

#: The backend's kernels, and the DBA step with them; the forward and backward passes are NumPy's.
KERNELS = Kernels(gram, SearchKernels(greedy_path, prefix_path, exhaustive_search), mean_grad)
dba_gradients = functools.partial(reference_dba_gradients, kernels=KERNELS)


def signals(model, X, y):
    """The forward and backward passes of a validated batch: NumPy's (:func:`dba_ref.backprop.backprop`),
    named as this backend's so that DBA's update computes with its kernels."""
    return dataclasses.replace(backprop(model, X, y, check_input=False), backend="numba")

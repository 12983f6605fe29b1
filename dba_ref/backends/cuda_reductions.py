"""The reduction kernels of the CUDA backend: K's statistics, the greedy search, the masked bias mean.

Device code only (the launches are :mod:`dba_ref.backends.cuda_launch`); K is
``(L, B, B)``, the Gram matrices of a batch's L layers stacked:

:func:`column_sums`
    ``r[l, j] = Σ_i K[l, i, j]`` (read column-wise: coalesced, and equal to
    the row sum as K is symmetric) and ``diag[l, j] = K[l, j, j]``, in float64.
:func:`totals`
    ``T = Σ diag`` and ``Q = Σ r`` of every layer, a tree reduction in shared memory.
:func:`greedy`
    The backward elimination (spec §5), **one block per layer** (all layers in
    one launch). Every step, each thread updates the running ``r_i`` of its
    share of the samples and evaluates their candidate removals; a tree
    reduction in shared memory finds the best value and its index (ties: the
    lowest index, as in NumPy); thread 0 applies the acceptance rule of the
    reference and updates ``T``, ``Q``, ``k``. The scalar formulas are those
    of :mod:`dba_ref.backends._kernels`, compiled as device functions.
:func:`masked_bias`
    ``(1/|S|) Σ_{i∈S} Δ_i``, one thread per output (the weight part of the
    masked mean is the tiled ``masked_sum`` of :mod:`dba_ref.backends.cuda_products`).

``r``, ``T``, ``Q`` and the metric are float64 whatever K's inputs were (spec §4).
"""
from __future__ import annotations

import math

from numba import cuda, float64, int64

from . import _kernels
from .cuda_environment import SIMULATOR

# Threads of the one-block-per-layer kernels (a power of two); fewer in the simulator, which
# runs a Python thread per CUDA thread, so that the tests cover several samples per thread.
REDUCE = 32 if SIMULATOR else 256

_metric = cuda.jit(device=True)(_kernels.metric.py_func)
_acceptance_threshold = cuda.jit(device=True)(_kernels.acceptance_threshold.py_func)


@cuda.jit
def masked_bias(D, rows, k, g):
    """``g[o] = (1/k) Σ_p D[rows[p], o]`` (summed in float64), one thread per output."""
    o = cuda.grid(1)
    if o < D.shape[1]:
        s = 0.0
        for p in range(rows.shape[0]):
            s += D[rows[p], o]
        g[o] = s / k


@cuda.jit
def column_sums(K, r, diag):
    """``r[l, j] = Σ_i K[l, i, j]`` (float64) and ``diag[l, j] = K[l, j, j]``; grid (columns, layers)."""
    l = cuda.blockIdx.y
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    B = K.shape[1]
    if j < B:
        s = 0.0
        for i in range(B):
            s += K[l, i, j]
        r[l, j] = s
        diag[l, j] = K[l, j, j]


@cuda.jit
def totals(r, diag, out):
    """``out[l] = (T, Q) = (Σ diag[l], Σ r[l])`` in float64; one block of REDUCE threads per layer."""
    l = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    s_T = cuda.shared.array(REDUCE, float64)
    s_Q = cuda.shared.array(REDUCE, float64)
    T = 0.0
    Q = 0.0
    for i in range(tid, r.shape[1], REDUCE):
        T += diag[l, i]
        Q += r[l, i]
    s_T[tid] = T
    s_Q[tid] = Q
    cuda.syncthreads()
    stride = REDUCE // 2
    while stride > 0:
        if tid < stride:
            s_T[tid] += s_T[tid + stride]
            s_Q[tid] += s_Q[tid + stride]
        cuda.syncthreads()
        stride //= 2
    if tid == 0:
        out[l, 0] = s_T[0]
        out[l, 1] = s_Q[0]


@cuda.jit
def greedy(K, r_full, diag, totals, metric_id, min_size, tol, r, active, removed, values, counts):
    """The greedy path of layer ``l = blockIdx.x``; one block of REDUCE threads per layer.

    ``r`` is the working copy of the running sums; ``active[l, i]`` ends as
    the selection mask; ``counts[l]`` is the number of samples removed.
    """
    l = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    B = K.shape[1]
    s_value = cuda.shared.array(REDUCE, float64)
    s_index = cuda.shared.array(REDUCE, int64)
    s_stats = cuda.shared.array(3, float64)      # T, Q, current value
    s_state = cuda.shared.array(3, int64)        # k, last removed (-1: none), stop flag
    for i in range(tid, B, REDUCE):
        r[l, i] = r_full[l, i]
        active[l, i] = 1
    if tid == 0:
        s_stats[0] = totals[l, 0]
        s_stats[1] = totals[l, 1]
        s_stats[2] = _metric(metric_id, totals[l, 0], totals[l, 1], float(B))
        s_state[0] = B
        s_state[1] = -1
        s_state[2] = 0
        counts[l] = 0
    cuda.syncthreads()
    while s_state[0] > min_size:
        k_new = float(s_state[0] - 1)
        T = s_stats[0]
        Q = s_stats[1]
        last = s_state[1]
        best_value = math.inf
        best = B                                  # B: no finite candidate
        for i in range(tid, B, REDUCE):           # indices rise: strict < keeps the lowest on ties
            ri = r[l, i]
            if last >= 0:
                ri -= K[l, last, i]               # r_i -= K[i, last] (K symmetric: a coalesced row)
                r[l, i] = ri
            if active[l, i]:
                d = diag[l, i]
                v = _metric(metric_id, T - d, Q - 2.0 * ri + d, k_new)
                if v < best_value:
                    best_value = v
                    best = i
        s_value[tid] = best_value
        s_index[tid] = best
        cuda.syncthreads()
        stride = REDUCE // 2
        while stride > 0:
            if tid < stride:
                a_value = s_value[tid]
                b_value = s_value[tid + stride]
                if b_value < a_value or (b_value == a_value and s_index[tid + stride] < s_index[tid]):
                    s_value[tid] = b_value
                    s_index[tid] = s_index[tid + stride]
            cuda.syncthreads()
            stride //= 2
        if tid == 0:
            best_value = s_value[0]
            best = s_index[0]
            if best_value < _acceptance_threshold(s_stats[2], tol):
                d = diag[l, best]
                s_stats[0] = s_stats[0] - d
                s_stats[1] = s_stats[1] - (2.0 * r[l, best] - d)
                s_stats[2] = best_value
                s_state[0] -= 1
                s_state[1] = best
                active[l, best] = 0
                removed[l, counts[l]] = best
                values[l, counts[l]] = best_value
                counts[l] += 1
            else:
                s_state[0] = 0                    # stop
        cuda.syncthreads()

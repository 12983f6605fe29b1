"""The reduction kernels of the CUDA backend: K's statistics, the greedy search, the masked bias mean, and the
softmax cross-entropy of the last layer (a reduction over each sample's logits).

Device code only (the launches are :mod:`dba_ref.backends.cuda_launch`); K is
``(L, B, B)``, the Gram matrices of a batch's L layers stacked:

:func:`column_sums`
    ``r[l, j] = Σ_i K[l, i, j]`` (read column-wise: coalesced, and equal to
    the row sum as K is symmetric) and ``diag[l, j] = K[l, j, j]``, in float64.
:func:`totals`
    ``T = Σ diag`` and ``Q = Σ r`` of every layer, a tree reduction in shared memory.
:func:`greedy_kernel`
    The backward elimination (spec §5) of every layer in one launch, each
    layer's samples shared by teams of TEAM threads: one block per layer,
    or, for large batches, a cooperative launch whose blocks synchronise
    grid-wide at every step (the layouts: :class:`dba_ref.backends.cuda_launch.GreedyPlan`).
    Every step, each thread updates the running ``r_i`` of its samples and
    evaluates their candidate removals; each team reduces them to its best
    value and index (ties: the lowest index, as in NumPy); every thread then
    takes the best of its layer's teams and applies the acceptance rule of
    the reference. The scalar formulas are those of
    :mod:`dba_ref.backends._kernels`, compiled as device functions.
:func:`masked_bias`
    ``(1/|S|) Σ_{i∈S} Δ_i``, one thread per output (the weight part of the
    masked mean is the tiled ``masked_sum`` of :mod:`dba_ref.backends.cuda_products`).

``r``, ``T``, ``Q`` and the metric are float64 whatever K's inputs were (spec §4).
"""
from __future__ import annotations

import functools
import math

from numba import cuda, float64, int8, int64

from . import _kernels
from .cuda_environment import SIMULATOR

# Threads of the one-block-per-layer kernels (a power of two); fewer in the simulator, which
# runs a Python thread per CUDA thread, so that the tests cover several samples per thread.
REDUCE = 32 if SIMULATOR else 256
#: Threads of a team of the greedy search (a power of two), and the most threads in one of its blocks: on a
#: GPU one team (the kernel needs over 128 registers a thread, so 256 threads is as wide as a block can be);
#: in the simulator up to 8 teams, so that one block can stand for a cooperative grid of several.
TEAM = 8 if SIMULATOR else 256
MAX_BLOCK = 8 * TEAM if SIMULATOR else TEAM
MAX_TEAMS = MAX_BLOCK // TEAM
#: Samples a thread of the greedy search loads at once (one batch of independent loads).
SAMPLES = 4

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


@functools.cache
def greedy_kernel(cooperative: bool):
    """The greedy search (spec §5) of every layer in one launch, its samples shared by teams of TEAM threads.

    Layer ``l``'s samples are dealt to ``parts`` teams (team ``part`` holds
    ``i = part·TEAM + tid + j·parts·TEAM``, thread ``tid`` of the team).
    Every step of the backward elimination:

    1. each thread updates the running ``r_i`` of its active samples
       (``r_i −= K[last, i]``: a coalesced row of the symmetric K), and
       evaluates their candidate removals, loading SAMPLES samples at a time
       before using any (their loads are in flight together);
    2. the team reduces its candidates to the best value and its index (ties:
       the lowest index, as in NumPy) and its first thread publishes them in
       the table of the step (two tables, used by alternate steps, so that a
       team already publishing step s + 1 never overwrites what a slower one
       still reads of step s);
    3. a barrier: ``cuda.syncthreads()`` when a layer's teams are one block
       (``cooperative=False``: one block per layer, ``parts`` teams in it, the
       table in shared memory), or the grid-wide ``cuda.cg.this_grid().sync()``
       when they are blocks of their own (``cooperative=True``: a cooperative
       launch, the table in global memory);
    4. every thread reads the layer's entries, takes the best, and applies the
       acceptance rule of the reference itself, updating its own copy of
       ``T``, ``Q``, ``k`` and the current value (every thread computes the
       same numbers from the same entries, so none waits for another).

    The loop ends when no layer that shares the barrier goes on (a layer's
    entry index is −1 once its search has stopped): for a cooperative launch,
    when every layer has stopped. The arithmetic and the order of every
    update are those of the one-block search, so that all plans give the same
    path, bit for bit.

    Arguments: ``K`` (L, B, B); ``r_full``, ``diag`` (L, B) and ``totals``
    (L, 2) from :func:`column_sums` and :func:`totals`; ``parts``, teams per
    layer; work arrays ``r`` (L, B) float64, ``active`` (L, B) int8, and the
    tables ``table_value`` (2, L, parts) float64, ``table_index`` (2, L,
    parts) int64 (read only by a cooperative launch); outputs ``removed``,
    ``values`` (L, B) and ``counts`` (L,), the number removed.
    """
    @cuda.jit(device=True, inline=True)
    def barrier():
        if cooperative:
            cuda.cg.this_grid().sync()
        else:
            cuda.syncthreads()

    @cuda.jit
    def greedy(K, r_full, diag, totals, metric_id, min_size, tol, parts, r, active, table_value, table_index,
               removed, values, counts):
        n_layers = K.shape[0]
        B = K.shape[1]
        thread = cuda.threadIdx.x
        tid = thread % TEAM
        team = cuda.blockIdx.x * (cuda.blockDim.x // TEAM) + thread // TEAM
        l = team // parts
        part = team % parts
        s_value = cuda.shared.array(MAX_BLOCK, float64)
        s_index = cuda.shared.array(MAX_BLOCK, int64)
        s_table_value = cuda.shared.array((2, MAX_TEAMS), float64)
        s_table_index = cuda.shared.array((2, MAX_TEAMS), int64)
        loaded = cuda.local.array(SAMPLES, int8)
        r_loaded = cuda.local.array(SAMPLES, float64)
        d_loaded = cuda.local.array(SAMPLES, float64)
        k_loaded = cuda.local.array(SAMPLES, float64)
        stride = parts * TEAM
        for i in range(part * TEAM + tid, B, stride):
            r[l, i] = r_full[l, i]
            active[l, i] = 1
        T = totals[l, 0]
        Q = totals[l, 1]
        value = _metric(metric_id, T, Q, float(B))
        k = B
        last = -1
        going = k > min_size
        step = 0
        while True:
            p = step & 1
            best_value = math.inf
            best = B                                        # B: no finite candidate
            if going:
                k_new = float(k - 1)
                for start in range(part * TEAM + tid, B, stride * SAMPLES):
                    for g in range(SAMPLES):                # loads first: independent, in flight together
                        i = start + g * stride
                        if i < B:
                            loaded[g] = active[l, i]
                            r_loaded[g] = r[l, i]
                            d_loaded[g] = diag[l, i]
                            k_loaded[g] = K[l, last, i] if last >= 0 else 0.0
                    for g in range(SAMPLES):                # indices rise: strict < keeps the lowest on ties
                        i = start + g * stride
                        if i < B and loaded[g]:
                            if i == last:                   # removed last step; its r_i is read no more
                                active[l, i] = 0
                            else:
                                ri = r_loaded[g]
                                if last >= 0:
                                    ri -= k_loaded[g]       # r_i -= K[i, last]
                                    r[l, i] = ri
                                d = d_loaded[g]
                                v = _metric(metric_id, T - d, Q - 2.0 * ri + d, k_new)
                                if v < best_value:
                                    best_value = v
                                    best = i
            s_value[thread] = best_value
            s_index[thread] = best
            cuda.syncthreads()
            half = TEAM // 2
            while half > 0:
                if tid < half:
                    a_value = s_value[thread]
                    b_value = s_value[thread + half]
                    if b_value < a_value or (b_value == a_value and s_index[thread + half] < s_index[thread]):
                        s_value[thread] = b_value
                        s_index[thread] = s_index[thread + half]
                cuda.syncthreads()
                half //= 2
            if tid == 0:                                    # the team's entry; index −1: the layer has stopped
                entry_index = s_index[thread] if going else -1
                if cooperative:
                    table_value[p, l, part] = s_value[thread]
                    table_index[p, l, part] = entry_index
                else:
                    s_table_value[p, part] = s_value[thread]
                    s_table_index[p, part] = entry_index
            barrier()
            if cooperative:
                others = False
                for m in range(n_layers):
                    others = others or table_index[p, m, 0] >= 0
                if not others:
                    break
            elif not going:
                break
            if going:
                best_value = math.inf
                best = B
                for q in range(parts):
                    if cooperative:
                        v = table_value[p, l, q]
                        j = table_index[p, l, q]
                    else:
                        v = s_table_value[p, q]
                        j = s_table_index[p, q]
                    if v < best_value or (v == best_value and j < best):
                        best_value = v
                        best = j
                if best_value < _acceptance_threshold(value, tol):
                    d = diag[l, best]
                    T = T - d
                    Q = Q - (2.0 * r[l, best] - d)
                    value = best_value
                    if part == 0 and tid == 0:
                        removed[l, B - k] = best
                        values[l, B - k] = best_value
                    k -= 1
                    last = best
                    going = k > min_size
                else:
                    going = False
            step += 1
        if part == 0 and tid == 0:
            counts[l] = B - k

    return greedy


@cuda.jit
def softmax_cross_entropy(Z, y, D, losses):
    """``D[i] = softmax(Z[i]) − onehot(y[i])`` and ``losses[i] = −log softmax(Z[i])[y[i]]``; one thread per sample.

    As :func:`dba_ref.model.log_softmax`: ``Z[i] − max`` first, then
    ``log_softmax = shifted − log Σ exp(shifted)`` and ``softmax = exp(log_softmax)``.
    """
    i = cuda.grid(1)
    if i >= Z.shape[0]:
        return
    C = Z.shape[1]
    top = Z[i, 0]
    for c in range(1, C):
        if Z[i, c] > top:
            top = Z[i, c]
    total = Z[i, 0] - Z[i, 0]                    # zero of Z's float type
    for c in range(C):
        total += math.exp(Z[i, c] - top)
    log_total = math.log(total)
    for c in range(C):
        log_p = (Z[i, c] - top) - log_total
        D[i, c] = math.exp(log_p)
        if c == y[i]:
            D[i, c] -= 1
            losses[i] = -log_p

"""The CUDA backend (``backend="cuda"``): Numba CUDA kernels for the Gram matrix, the greedy search and the update.

The kernels mirror the NumPy reference step by step:

``gram_kernel``
    ``K = (Δ Δᵀ) ⊙ (A Aᵀ + 1)`` in one pass, tiled in shared memory. A block
    of ``THREADS × THREADS`` threads computes a ``TILE × TILE`` tile of K, each
    thread ``WORK × WORK`` entries held in registers; the inner products over
    the features of A and of Δ are read ``CHUNK`` features at a time into
    shared memory. K is symmetric: only the tiles on and above the diagonal
    are computed, and each is written to both halves (exactly symmetric).
``_column_sums``, ``_totals``
    ``r_i = Σ_j K[i, j]`` (read column-wise: coalesced, and equal to the row
    sum as K is symmetric), ``diag``, ``T = Σ diag`` and ``Q = Σ r``, in float64.
``_greedy``
    The backward elimination, **one block per layer** (all layers in one
    launch). Every step, each thread updates the running ``r_i`` of its share
    of the samples and evaluates their candidate removals; a tree reduction in
    shared memory finds the best value, its index (ties: the lowest index, as
    in NumPy); thread 0 applies the acceptance rule of the reference and
    updates ``T``, ``Q``, ``k``. The
    scalar formulas are those of :mod:`dba_ref.backends._kernels`, compiled
    as device functions.
``masked_sum_kernel``, ``_masked_bias``
    ``(1/|S|) Δ_Sᵀ [A_S, 1]``: the same shared-memory tiling as the Gram,
    contracting over the selected samples only (their rows are gathered as
    the tiles are loaded).

:class:`DeviceStep` is the host code for a whole DBA step: it uploads the
layers' ``(A, Δ)`` once, keeps A, Δ, K, r on the device, runs the searches and
the masked updates there, and copies back only what the caller needs
(the statistics, the removal paths, the mean gradients). The backend
functions (``gram``, ``greedy_path``, ``mean_grad``) take and return host
arrays, one call at a time, like every backend. ``prefix_path`` and
``exhaustive_search`` are the Numba CPU kernels on the host: the issue asks
for the GPU to run the Gram, greedy and update kernels; the exhaustive
search is for B ≤ 20, where K has at most 400 entries.

Float32 and float64: as in the reference (:mod:`dba_ref.gram`), K is computed
in float64 whatever the inputs' dtype, so A and Δ are uploaded as float64;
``r``, ``T``, ``Q`` and the metric are float64 too (spec §4). Mean gradients
are computed in float64 on the device and returned in the inputs' dtype. The
kernels themselves are generic in the float type.

Without a GPU the kernels run in Numba's CUDA simulator when
``NUMBA_ENABLE_CUDASIM=1`` is set before Numba is imported (slow: a Python
thread per CUDA thread; tests keep sizes small). The tile sizes were not
tuned on a device (see ``docs/performance.md``).
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import config, cuda, float64, from_dtype, int64

from ..metrics import METRIC_NAMES
from .._validation import min_size_count
from ..backprop import mean_grad as reference_mean_grad
from ..search import SearchKernels, make_selection
from ..update import Kernels
from . import _kernels, numba_cpu

__all__ = ["KERNELS", "dba_gradients", "gram", "greedy_path", "prefix_path", "exhaustive_search", "mean_grad",
           "DeviceStep", "require_device"]

# Block shapes. The simulator runs a Python thread per CUDA thread, so there the
# same kernels run with smaller blocks: the tests then cover several tiles and
# several samples per thread at sizes the simulator can afford.
_SIMULATOR = bool(config.ENABLE_CUDASIM)
TILE = 16 if _SIMULATOR else 64      # K (and the mean gradient) is computed in TILE × TILE tiles, one per block
THREADS = 4 if _SIMULATOR else 16    # a block is THREADS × THREADS threads ...
WORK = TILE // THREADS               # ... each computing WORK × WORK entries of the tile
CHUNK = 8 if _SIMULATOR else 16      # features (or samples) read into shared memory per step
SHARED_COLUMNS = CHUNK + 1           # one column of padding: a tile's columns fall into different memory banks
REDUCE = 32 if _SIMULATOR else 256   # threads of the one-block-per-layer kernels (a power of two)

_metric = cuda.jit(device=True)(_kernels.metric.py_func)
_acceptance_threshold = cuda.jit(device=True)(_kernels.acceptance_threshold.py_func)


def require_device() -> None:
    """Raise ``OSError`` unless Numba sees a CUDA GPU (or runs its CUDA simulator)."""
    if not cuda.is_available():
        raise OSError(
            "backend 'cuda' needs an NVIDIA GPU with a working CUDA driver, and Numba finds none; "
            "use backend='numba' (CPU), or set NUMBA_ENABLE_CUDASIM=1 before starting Python to run "
            "the CUDA kernels in Numba's simulator (slow, for testing)"
        )


# --------------------------------------------------------------------------
# Shared-memory tiles
# --------------------------------------------------------------------------
@cuda.jit(device=True)
def _tile_products(left, right, acc):
    """``acc[u, v] += Σ_c left[ty + THREADS·u, c] · right[tx + THREADS·v, c]`` for this thread's entries."""
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    for c in range(CHUNK):
        for u in range(WORK):
            a = left[ty + THREADS * u, c]
            for v in range(WORK):
                acc[u, v] += a * right[tx + THREADS * v, c]


@cuda.jit(device=True)
def _gram_accumulate(X, i0, j0, left, right, acc):
    """``acc`` += this thread's entries of the tile ``X[i0:i0+TILE] X[j0:j0+TILE]ᵀ``."""
    n, F = X.shape
    tid = cuda.threadIdx.y * THREADS + cuda.threadIdx.x
    for f0 in range(0, F, CHUNK):
        for e in range(tid, TILE * CHUNK, THREADS * THREADS):
            row = e // CHUNK           # consecutive threads read consecutive features of a row
            f = f0 + e % CHUNK
            left[row, e % CHUNK] = X[i0 + row, f] if i0 + row < n and f < F else 0
            right[row, e % CHUNK] = X[j0 + row, f] if j0 + row < n and f < F else 0
        cuda.syncthreads()
        _tile_products(left, right, acc)
        cuda.syncthreads()


@functools.cache
def _dense_kernels(dtype: np.dtype):
    """The Gram and masked-sum kernels for one float dtype (shared memory is typed)."""
    t = from_dtype(dtype)

    @cuda.jit
    def gram_kernel(A, D, K, one):
        """Tile (blockIdx.y, blockIdx.x) of ``K = (D Dᵀ) ⊙ (A Aᵀ + 1)``; tiles below the diagonal are mirrored."""
        bi = cuda.blockIdx.y
        bj = cuda.blockIdx.x
        if bj < bi:
            return
        left = cuda.shared.array((TILE, SHARED_COLUMNS), t)
        right = cuda.shared.array((TILE, SHARED_COLUMNS), t)
        aa = cuda.local.array((WORK, WORK), t)
        dd = cuda.local.array((WORK, WORK), t)
        for u in range(WORK):
            for v in range(WORK):
                aa[u, v] = 0
                dd[u, v] = 0
        i0 = bi * TILE
        j0 = bj * TILE
        _gram_accumulate(A, i0, j0, left, right, aa)
        _gram_accumulate(D, i0, j0, left, right, dd)
        n = K.shape[0]
        for u in range(WORK):
            i = i0 + cuda.threadIdx.y + THREADS * u
            for v in range(WORK):
                j = j0 + cuda.threadIdx.x + THREADS * v
                if i < n and j < n:
                    value = dd[u, v] * (aa[u, v] + one)
                    K[i, j] = value
                    K[j, i] = value

    @cuda.jit
    def masked_sum_kernel(A, D, rows, k, G):
        """Tile (blockIdx.y, blockIdx.x) of ``G = (1/k) Σ_p D[rows[p]] ⊗ A[rows[p]]``, shape (out, in)."""
        n_out = D.shape[1]
        n_in = A.shape[1]
        o0 = cuda.blockIdx.y * TILE
        f0 = cuda.blockIdx.x * TILE
        tid = cuda.threadIdx.y * THREADS + cuda.threadIdx.x
        left = cuda.shared.array((TILE, SHARED_COLUMNS), t)
        right = cuda.shared.array((TILE, SHARED_COLUMNS), t)
        acc = cuda.local.array((WORK, WORK), t)
        for u in range(WORK):
            for v in range(WORK):
                acc[u, v] = 0
        n = rows.shape[0]
        for p0 in range(0, n, CHUNK):
            for e in range(tid, TILE * CHUNK, THREADS * THREADS):
                x = e % TILE               # consecutive threads read consecutive columns of a row
                c = e // TILE
                inside = p0 + c < n
                row = rows[p0 + c] if inside else 0
                left[x, c] = D[row, o0 + x] if inside and o0 + x < n_out else 0
                right[x, c] = A[row, f0 + x] if inside and f0 + x < n_in else 0
            cuda.syncthreads()
            _tile_products(left, right, acc)
            cuda.syncthreads()
        for u in range(WORK):
            o = o0 + cuda.threadIdx.y + THREADS * u
            for v in range(WORK):
                f = f0 + cuda.threadIdx.x + THREADS * v
                if o < n_out and f < n_in:
                    G[o, f] = acc[u, v] / k

    return gram_kernel, masked_sum_kernel


@cuda.jit
def _masked_bias(D, rows, k, g):
    """``g[o] = (1/k) Σ_p D[rows[p], o]``, one thread per output."""
    o = cuda.grid(1)
    if o < D.shape[1]:
        s = D[rows[0], o]
        for p in range(1, rows.shape[0]):
            s += D[rows[p], o]
        g[o] = s / k


# --------------------------------------------------------------------------
# Statistics and the greedy search
# --------------------------------------------------------------------------
@cuda.jit
def _column_sums(K, r, diag):
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
def _totals(r, diag, totals):
    """``totals[l] = (T, Q) = (Σ diag[l], Σ r[l])`` in float64; one block of REDUCE threads per layer."""
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
        totals[l, 0] = s_T[0]
        totals[l, 1] = s_Q[0]


@cuda.jit
def _greedy(K, r_full, diag, totals, metric_id, min_size, tol, r, active, removed, values, counts):
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


# --------------------------------------------------------------------------
# Host code
# --------------------------------------------------------------------------
def _blocks(n: int, size: int) -> int:
    return (n + size - 1) // size


def _float_dtype(*arrays) -> np.dtype:
    dtype = np.result_type(*arrays)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _launch_gram(dA, dD, dK) -> None:
    """``dK ← (dD dDᵀ) ⊙ (dA dAᵀ + 1)`` on the device."""
    n = dK.shape[0]
    gram_kernel, _ = _dense_kernels(np.dtype(dK.dtype))
    nb = _blocks(n, TILE)
    gram_kernel[(nb, nb), (THREADS, THREADS)](dA, dD, dK, dK.dtype.type(1))


def _launch_stats(dK):
    """``(r, diag, totals)`` on the device for the stacked Gram matrices ``dK`` (L, B, B)."""
    L, B = dK.shape[0], dK.shape[1]
    r = cuda.device_array((L, B), np.float64)
    diag = cuda.device_array((L, B), np.float64)
    totals = cuda.device_array((L, 2), np.float64)
    _column_sums[(_blocks(B, REDUCE), L), REDUCE](dK, r, diag)
    _totals[L, REDUCE](r, diag, totals)
    return r, diag, totals


def _launch_greedy(dK, r, diag, totals, metric: str, min_size: int, tol: float) -> list:
    """The greedy path of every layer in one launch, copied to the host: ``[(removed, values)]``."""
    L, B = dK.shape[0], dK.shape[1]
    work = cuda.device_array((L, B), np.float64)
    active = cuda.device_array((L, B), np.int8)
    removed = cuda.device_array((L, B), np.int64)
    values = cuda.device_array((L, B), np.float64)
    counts = cuda.device_array(L, np.int64)
    _greedy[L, REDUCE](dK, r, diag, totals, METRIC_NAMES.index(metric), min_size, tol, work, active,
                       removed, values, counts)
    counts, removed, values = (x.copy_to_host() for x in (counts, removed, values))
    return [(removed[l, :n].copy(), values[l, :n].copy()) for l, n in enumerate(counts)]


def _launch_mean(dA, dD, indices, B: int):
    """``(1/|S|) Δ_Sᵀ [A_S, 1]`` for the rows ``indices`` (None: all), copied to the host as ``(gW, gb)``."""
    rows = np.arange(B, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    d_rows = cuda.to_device(rows)
    dtype = np.dtype(dA.dtype)
    k = dtype.type(rows.shape[0])
    n_out, n_in = dD.shape[1], dA.shape[1]
    _, masked_sum_kernel = _dense_kernels(dtype)
    gW = cuda.device_array((n_out, n_in), dtype)
    gb = cuda.device_array(n_out, dtype)
    masked_sum_kernel[(_blocks(n_in, TILE), _blocks(n_out, TILE)), (THREADS, THREADS)](dA, dD, d_rows, k, gW)
    _masked_bias[_blocks(n_out, REDUCE), REDUCE](dD, d_rows, k, gb)
    return gW.copy_to_host(), gb.copy_to_host()


class DeviceStep:
    """One batch's arrays on the GPU for a whole DBA step.

    Uploads every layer's ``(A_{l-1}, Δ_l)`` once, computes the Gram matrices
    ``K_l`` and their statistics on the device, and keeps them there; the
    methods copy back only their results. All layers share the batch size B.

    Use, for one batch's :class:`~dba_ref.backprop.Signals`::

        step = DeviceStep(signals.layers)
        stats = step.totals()                                # (L, 2): T and Q of the whole batch
        paths = step.search("mean_variance", "greedy", 2, 0.0)   # [(removed, values)]
        grads = step.mean_grads(kept_indices_per_layer)      # [(gW, gb)]
    """

    def __init__(self, layers):
        layers = [(np.asarray(A), np.asarray(D)) for A, D in layers]
        if not layers:
            raise ValueError("DeviceStep needs at least one layer (A, D)")
        self.batch_size = B = layers[0][0].shape[0]
        if any(A.shape[0] != B or D.shape[0] != B for A, D in layers):
            raise ValueError("every layer's A and D must have the same number of rows (the batch size)")
        self._dtype = _float_dtype(*(x for pair in layers for x in pair))     # of the returned gradients
        self._A = [cuda.to_device(np.ascontiguousarray(A, np.float64)) for A, _ in layers]
        self._D = [cuda.to_device(np.ascontiguousarray(D, np.float64)) for _, D in layers]
        self._K = cuda.device_array((len(layers), B, B), np.float64)
        for l in range(len(layers)):
            _launch_gram(self._A[l], self._D[l], self._K[l])
        self._r, self._diag, self._totals = _launch_stats(self._K)

    @property
    def n_layers(self) -> int:
        return len(self._A)

    def gram(self, layer: int) -> np.ndarray:
        """A host copy of ``K`` of one layer."""
        return self._K[layer].copy_to_host()

    def totals(self) -> np.ndarray:
        """``(T, Q)`` of the whole batch for every layer, shape ``(L, 2)``, float64."""
        return self._totals.copy_to_host()

    def search(self, metric: str, strategy: str, min_size: int, tol: float) -> list:
        """Every layer's raw search result, as the backend functions return it (None for ``"all"``).

        ``greedy`` runs on the device (one block per layer); ``prefix`` and
        ``exhaustive`` run the Numba CPU kernels on host copies of K.
        """
        if strategy == "all":
            return [None] * self.n_layers
        if strategy == "greedy":
            return _launch_greedy(self._K, self._r, self._diag, self._totals, metric, min_size, tol)
        search = {"prefix": prefix_path, "exhaustive": exhaustive_search}[strategy]
        return [search(self.gram(l), metric, min_size) for l in range(self.n_layers)]

    def mean_grad(self, layer: int, indices=None) -> tuple:
        """``(gW, gb)`` of one layer, the mean over the rows ``indices`` (None: all rows)."""
        return tuple(g.astype(self._dtype, copy=False)
                     for g in _launch_mean(self._A[layer], self._D[layer], indices, self.batch_size))

    def mean_grads(self, indices) -> list:
        """``(gW, gb)`` of every layer, the mean over the rows ``indices[l]`` (None: all rows)."""
        return [self.mean_grad(l, rows) for l, rows in enumerate(indices)]


# --------------------------------------------------------------------------
# The backend interface (host arrays in, host arrays out)
# --------------------------------------------------------------------------
def gram(A: np.ndarray, D: np.ndarray) -> np.ndarray:
    """``K = (D Dᵀ) ⊙ (A Aᵀ + 1)``, shape ``(B, B)``, float64 whatever the inputs' dtype."""
    dK = cuda.device_array((A.shape[0], A.shape[0]), np.float64)
    _launch_gram(cuda.to_device(np.ascontiguousarray(A, np.float64)),
                 cuda.to_device(np.ascontiguousarray(D, np.float64)), dK)
    return dK.copy_to_host()


def greedy_path(K: np.ndarray, metric: str, min_size: int, tol: float):
    """Backward elimination on the device; same result as :func:`dba_ref.search.greedy_path`."""
    dK = cuda.to_device(np.ascontiguousarray(K, np.float64)[None])
    r, diag, totals = _launch_stats(dK)
    return _launch_greedy(dK, r, diag, totals, metric, min_size, tol)[0]


def mean_grad(A: np.ndarray, D: np.ndarray, indices=None):
    """``(1/|S|) Δ_Sᵀ [A_S, 1]`` as ``(gW, gb)`` on the device; same result as :func:`dba_ref.backprop.mean_grad`."""
    dA = cuda.to_device(np.ascontiguousarray(A, np.float64))
    dD = cuda.to_device(np.ascontiguousarray(D, np.float64))
    if indices is not None and len(indices) == A.shape[0]:
        indices = None
    return tuple(g.astype(_float_dtype(A, D), copy=False) for g in _launch_mean(dA, dD, indices, A.shape[0]))


prefix_path = numba_cpu.prefix_path
exhaustive_search = numba_cpu.exhaustive_search

#: The backend's kernels, one call at a time on host arrays.
KERNELS = Kernels(gram, SearchKernels(greedy_path, prefix_path, exhaustive_search), mean_grad)


def dba_gradients(signals, metric: str, strategy: str, min_size, tol: float) -> tuple[list, list]:
    """The DBA step of :func:`dba_ref.update.dba_gradients` with the batch kept on the device.

    Every layer's ``(A, Δ)`` is uploaded once (:class:`DeviceStep`); K, its
    statistics, the greedy searches and the masked means stay there. A layer
    whose selection keeps the whole batch gets the host reference mean gradient
    (a device sums in another order), so ``strategy="all"`` is bit for bit the
    base optimizer on this backend too.
    """
    B = signals.batch_size
    m = min_size_count(min_size, B)
    if m > B:
        strategy, m = "all", B
    step = DeviceStep(signals.layers)
    results = step.search(metric, strategy, m, tol)
    selections = [make_selection(metric, strategy, B, m, tol, float(T), float(Q), result)
                  for (T, Q), result in zip(step.totals(), results)]
    grads = [reference_mean_grad(A, D) if sel.size == B else step.mean_grad(l, sel.indices)
             for l, ((A, D), sel) in enumerate(zip(signals.layers, selections))]
    return grads, selections

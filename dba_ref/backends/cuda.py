"""The CUDA backend (``backend="cuda"``): Numba CUDA kernels for a whole DBA step on the GPU.

The kernels mirror the NumPy reference step by step:

:mod:`dba_ref.backends.cuda_backprop`
    The forward and backward passes (spec §2): every layer's ``A_{l-1}`` and
    ``Δ_l`` and the per-sample losses, computed on the device from the
    parameters and the batch.
:mod:`dba_ref.backends.cuda_tiles`
    The register-tiled products: ``K = (Δ Δᵀ) ⊙ (A Aᵀ + 1)`` (only the tiles
    on and above the diagonal, mirrored), the layers' ``A Wᵀ + b`` and
    ``Δ' W``, and the masked mean ``(1/|S|) Δ_Sᵀ A_S``.
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
``_masked_bias``
    ``(1/|S|) Σ_{i∈S} Δ_i``, one thread per output.

:class:`DeviceStep` is the host code for a whole DBA step: it holds the
layers' ``(A, Δ)`` on the device (uploaded from host arrays, or computed
there by :meth:`DeviceStep.from_batch`), computes K and its statistics there,
runs the searches and the masked updates there, and copies back only what
the caller needs (the statistics, the removal paths, the mean gradients).
The backend functions (``gram``, ``greedy_path``, ``mean_grad``) take and
return host arrays, one call at a time, like every backend. ``prefix_path``
and ``exhaustive_search`` are the Numba CPU kernels on the host: the
exhaustive search is for B ≤ 20, where K has at most 400 entries.

Float32 and float64: as in the reference (:mod:`dba_ref.gram`), K is computed
in float64 whatever the signals' dtype (float32 values are widened as they
are staged in shared memory); ``r``, ``T``, ``Q`` and the metric are float64
too (spec §4). Mean gradients are accumulated in float64 on the device and
returned in the signals' dtype. The forward and backward passes run in the
model's dtype, as :func:`dba_ref.backprop.backprop` does.

Without a GPU the kernels run in Numba's CUDA simulator when
``NUMBA_ENABLE_CUDASIM=1`` is set before Numba is imported (slow: a Python
thread per CUDA thread; tests keep sizes small). Installing: ``pip install
'dba-ref[cuda]'`` (numba-cuda, and a NumPy it can run with; see
:func:`require_device`). Speed: ``benchmarks/gpu.py`` and
``docs/performance.md``.
"""
from __future__ import annotations

import math
from importlib import import_module

import numpy as np
from numba import cuda, float64, int64

from .._validation import check_choice, check_dtype, check_features, check_labels
from ..backprop import mean_grad as reference_mean_grad
from ..metrics import METRIC_NAMES
from ..search import SearchKernels, make_selection
from ..update import Kernels, search_plan
from . import _kernels, cuda_tiles, numba_cpu
from .cuda_backprop import device_backprop
from .cuda_tiles import blocks

__all__ = ["KERNELS", "signals", "dba_gradients", "DeviceSignals", "gram", "greedy_path", "prefix_path", "exhaustive_search", "mean_grad",
           "DeviceStep", "require_device"]

# Threads of the one-block-per-layer kernels (a power of two); fewer in the simulator, which
# runs a Python thread per CUDA thread, so that the tests cover several samples per thread.
REDUCE = 32 if cuda_tiles.SIMULATOR else 256

_metric = cuda.jit(device=True)(_kernels.metric.py_func)
_acceptance_threshold = cuda.jit(device=True)(_kernels.acceptance_threshold.py_func)


def require_device() -> None:
    """Raise ``OSError`` unless Numba can run the kernels: a CUDA GPU (or the simulator) and a usable NumPy."""
    if not cuda.is_available():
        raise OSError(
            "backend 'cuda' needs an NVIDIA GPU with a working CUDA driver, and Numba finds none; "
            "use backend='numba' (CPU), or set NUMBA_ENABLE_CUDASIM=1 before starting Python to run "
            "the CUDA kernels in Numba's simulator (slow, for testing)"
        )
    conflict = numpy_conflict()
    if conflict:
        raise OSError(conflict)


def numpy_conflict() -> str | None:
    """Why the installed numba-cuda cannot launch a kernel with the installed NumPy, or None.

    numba-cuda (NVIDIA's CUDA target for Numba; every release up to 0.30.4,
    and it is in maintenance mode) registers ``np.row_stack`` when it loads
    its typing, and NumPy 2.5 removed ``np.row_stack``: the first kernel
    launch would fail deep inside numba_cuda with an ``AttributeError``. The
    module that does it is imported here to find out (Python keeps it once loaded).
    """
    if getattr(cuda, "implementation", "Built-in") != "NVIDIA" or hasattr(np, "row_stack"):
        return None
    try:
        import_module("numba.cuda.np.arrayobj")
    except AttributeError as error:
        if "row_stack" not in str(error):
            raise
        return (f"backend 'cuda': the installed numba-cuda cannot run with NumPy {np.__version__}, which removed "
                f"np.row_stack; install a NumPy it supports: pip install 'numpy<2.5' (or pip install 'dba-ref[cuda]')")
    return None


@cuda.jit
def _masked_bias(D, rows, k, g):
    """``g[o] = (1/k) Σ_p D[rows[p], o]`` (summed in float64), one thread per output."""
    o = cuda.grid(1)
    if o < D.shape[1]:
        s = 0.0
        for p in range(rows.shape[0]):
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
def _float_dtype(*arrays) -> np.dtype:
    dtype = np.result_type(*arrays)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _upload(x: np.ndarray, dtype: np.dtype):
    return cuda.to_device(np.ascontiguousarray(x, dtype))


def _launch_stats(dK):
    """``(r, diag, totals)`` on the device for the stacked Gram matrices ``dK`` (L, B, B)."""
    L, B = dK.shape[0], dK.shape[1]
    r = cuda.device_array((L, B), np.float64)
    diag = cuda.device_array((L, B), np.float64)
    totals = cuda.device_array((L, 2), np.float64)
    _column_sums[(blocks(B, REDUCE), L), REDUCE](dK, r, diag)
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
    """``(1/|S|) Δ_Sᵀ [A_S, 1]`` in float64 over the rows ``indices`` (None: all), as host ``(gW, gb)``."""
    rows = np.arange(B, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    d_rows = cuda.to_device(rows)
    gW = cuda.device_array((dD.shape[1], dA.shape[1]), np.float64)
    gb = cuda.device_array(dD.shape[1], np.float64)
    cuda_tiles.launch_masked_sum(dA, dD, d_rows, gW)
    _masked_bias[blocks(dD.shape[1], REDUCE), REDUCE](dD, d_rows, np.float64(rows.shape[0]), gb)
    return gW.copy_to_host(), gb.copy_to_host()


class DeviceStep:
    """One batch's arrays on the GPU for a whole DBA step.

    Holds every layer's ``(A_{l-1}, Δ_l)`` on the device, computes the Gram
    matrices ``K_l`` (float64) and their statistics there and keeps them;
    the methods copy back only their results. All layers share the batch size B.

    From a batch, with the forward and backward passes on the device too
    (copies in: the parameters and the batch)::

        step = DeviceStep.from_batch(model.params, model.activation, X, y)
        losses = step.losses()                               # (B,), the model's dtype

    or from one batch's host :class:`~dba_ref.backprop.Signals`::

        step = DeviceStep(signals.layers)

    then::

        stats = step.totals()                                # (L, 2): T and Q of the whole batch
        paths = step.search("mean_variance", "greedy", 2, 0.0)   # [(removed, values)]
        grads = step.mean_grads(kept_indices_per_layer)      # [(gW, gb)]
    """

    def __init__(self, layers):
        layers = [(np.asarray(A), np.asarray(D)) for A, D in layers]
        if not layers:
            raise ValueError("DeviceStep needs at least one layer (A, D)")
        B = layers[0][0].shape[0]
        if any(A.shape[0] != B or D.shape[0] != B for A, D in layers):
            raise ValueError("every layer's A and D must have the same number of rows (the batch size)")
        dtype = _float_dtype(*(x for pair in layers for x in pair))
        self._attach([_upload(A, dtype) for A, _ in layers], [_upload(D, dtype) for _, D in layers], None)

    @classmethod
    def from_batch(cls, params, activation: str, X, y) -> "DeviceStep":
        """The step of the batch ``(X, y)``, its forward and backward passes computed on the device.

        ``params`` is ``[(W_l, b_l)]`` (e.g. :attr:`dba_ref.MLP.params`), one
        float dtype; ``X`` ``(B, in)`` is converted to it; ``y`` ``(B,)`` holds
        class indices. The signals are those of :func:`dba_ref.backprop.backprop`
        to rounding. Checked here, once: the parameters' shapes, the activation,
        X (finite, ``in`` features) and y (labels of the output layer).
        """
        params = [(np.asarray(W), np.asarray(b)) for W, b in params]
        if not params:
            raise ValueError("params must list at least one layer (W, b)")
        dtype = check_dtype(params[0][0].dtype)
        n_in = params[0][0].shape[-1]
        for l, (W, b) in enumerate(params):
            if W.ndim != 2 or W.shape[1] != n_in or b.shape != (W.shape[0],) or {W.dtype, b.dtype} != {dtype}:
                raise ValueError(f"params[{l}] must be (W, b) of shapes (out, {n_in}) and (out,), dtype {dtype}; "
                                 f"got {W.shape} {W.dtype} and {b.shape} {b.dtype}")
            n_in = W.shape[0]
        check_choice(activation, cuda_tiles.ACTIVATION_IDS, "activation")
        X = check_features(X, params[0][0].shape[1], dtype)
        y = check_labels(y, X.shape[0], params[-1][0].shape[0])
        return cls.from_device(*device_backprop(params, activation, X, y))

    @classmethod
    def from_device(cls, inputs, deltas, losses=None) -> "DeviceStep":
        """The step of signals already on the device: ``A_{l-1}`` and ``Δ_l`` device arrays per layer
        (as :func:`dba_ref.backends.cuda_backprop.device_backprop` returns them), and optionally the losses."""
        step = cls.__new__(cls)
        step._attach(inputs, deltas, losses)
        return step

    def _attach(self, inputs, deltas, losses) -> None:
        """Keep the device arrays of the layers; their Gram matrices are computed when first needed."""
        self.batch_size = inputs[0].shape[0]
        self._A, self._D, self._losses = list(inputs), list(deltas), losses
        self._dtype = np.dtype(inputs[0].dtype)                       # of the returned gradients
        self._K = None

    def _grams(self):
        """The Gram matrices ``K_l`` (L, B, B) and their statistics ``r``, ``diag``, ``(T, Q)``, on the device."""
        if self._K is None:
            B = self.batch_size
            self._K = cuda.device_array((self.n_layers, B, B), np.float64)
            for l in range(self.n_layers):
                cuda_tiles.launch_gram(self._A[l], self._D[l], self._K[l])
            self._r, self._diag, self._totals = _launch_stats(self._K)
        return self._K, self._r, self._diag, self._totals

    @property
    def n_layers(self) -> int:
        return len(self._A)

    def layers(self) -> list:
        """Host copies of every layer's ``(A_{l-1}, Δ_l)``."""
        return [(A.copy_to_host(), D.copy_to_host()) for A, D in zip(self._A, self._D)]

    def losses(self) -> np.ndarray:
        """Host copy of the per-sample losses ``(B,)`` (a step made :meth:`from_batch` only)."""
        if self._losses is None:
            raise ValueError("this DeviceStep was made from host signals, which carry no losses; "
                             "use DeviceStep.from_batch(params, activation, X, y)")
        return self._losses.copy_to_host()

    def gram(self, layer: int) -> np.ndarray:
        """A host copy of ``K`` of one layer."""
        return self._grams()[0][layer].copy_to_host()

    def totals(self) -> np.ndarray:
        """``(T, Q)`` of the whole batch for every layer, shape ``(L, 2)``, float64."""
        return self._grams()[3].copy_to_host()

    def search(self, metric: str, strategy: str, min_size: int, tol: float) -> list:
        """Every layer's raw search result, as the backend functions return it (None for ``"all"``).

        ``greedy`` runs on the device (one block per layer); ``prefix`` and
        ``exhaustive`` run the Numba CPU kernels on host copies of K.
        """
        if strategy == "all":
            return [None] * self.n_layers
        if strategy == "greedy":
            return _launch_greedy(*self._grams(), metric, min_size, tol)
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
    dtype = _float_dtype(A, D)
    dK = cuda.device_array((A.shape[0], A.shape[0]), np.float64)
    cuda_tiles.launch_gram(_upload(A, dtype), _upload(D, dtype), dK)
    return dK.copy_to_host()


def greedy_path(K: np.ndarray, metric: str, min_size: int, tol: float):
    """Backward elimination on the device; same result as :func:`dba_ref.search.greedy_path`."""
    dK = cuda.to_device(np.ascontiguousarray(K, np.float64)[None])
    r, diag, totals = _launch_stats(dK)
    return _launch_greedy(dK, r, diag, totals, metric, min_size, tol)[0]


def mean_grad(A: np.ndarray, D: np.ndarray, indices=None):
    """``(1/|S|) Δ_Sᵀ [A_S, 1]`` as ``(gW, gb)`` on the device; same result as :func:`dba_ref.backprop.mean_grad`."""
    dtype = _float_dtype(A, D)
    if indices is not None and len(indices) == A.shape[0]:
        indices = None
    return tuple(g.astype(dtype, copy=False) for g in _launch_mean(_upload(A, dtype), _upload(D, dtype), indices,
                                                                   A.shape[0]))


prefix_path = numba_cpu.prefix_path
exhaustive_search = numba_cpu.exhaustive_search

#: The backend's kernels, one call at a time on host arrays.
KERNELS = Kernels(gram, SearchKernels(greedy_path, prefix_path, exhaustive_search), mean_grad)


class DeviceSignals:
    """A batch's signals left on the device by its forward and backward passes there.

    What the training loop hands the optimizer with ``backend="cuda"``; it
    reads like :class:`~dba_ref.backprop.Signals`: ``batch_size``, the host
    ``losses`` ``(B,)`` and ``layers``, host copies of every ``(A_{l-1}, Δ_l)``
    made on first use (only an optimizer that is not on the device needs
    them). ``step`` is the :class:`DeviceStep` that holds the arrays.
    """

    #: The backend that computed them: DBA's update computes with the same one.
    backend = "cuda"

    def __init__(self, step: DeviceStep):
        self.step = step
        self.losses = step.losses()
        self._layers = None

    def mean_grads(self) -> list:
        """The batch-mean gradient of every layer, computed on the device."""
        return self.step.mean_grads([None] * self.step.n_layers)

    @property
    def batch_size(self) -> int:
        return self.step.batch_size

    @property
    def layers(self) -> list:
        if self._layers is None:
            self._layers = self.step.layers()
        return self._layers


def signals(model, X, y) -> DeviceSignals:
    """The forward and backward passes of a validated batch on the device (:func:`dba_ref.backprop.backprop`'s
    signals, to rounding): copies in the parameters and the batch, out the losses."""
    return DeviceSignals(DeviceStep.from_device(*device_backprop(model.params, model.activation, X, y)))


def dba_gradients(signals, metric: str, strategy: str, min_size, tol: float) -> tuple[list, list]:
    """The DBA step of :func:`dba_ref.update.dba_gradients` with the batch kept on the device.

    Host signals are uploaded once (:class:`DeviceStep`); :class:`DeviceSignals`
    are there already. K, its statistics, the greedy searches and the masked
    means stay on the device. A layer whose selection keeps the whole batch
    gets exactly the plain mean gradient of the backend (:meth:`DeviceSignals.mean_grads`:
    the host reference for host signals, which a device would sum in another
    order), so ``strategy="all"`` is bit for bit the base optimizer on this
    backend too.
    """
    B = signals.batch_size
    strategy, m = search_plan(strategy, min_size, B)
    on_device = isinstance(signals, DeviceSignals)
    layers = None if on_device else list(signals.layers)
    step = signals.step if on_device else DeviceStep(layers)
    results = step.search(metric, strategy, m, tol)
    selections = [make_selection(metric, strategy, B, m, tol, float(T), float(Q), result)
                  for (T, Q), result in zip(step.totals(), results)]
    grads = []
    for l, sel in enumerate(selections):
        if sel.size < B:
            grads.append(step.mean_grad(l, sel.indices))
        elif on_device:
            grads.append(step.mean_grad(l, None))
        else:
            grads.append(reference_mean_grad(*layers[l]))
    return grads, selections

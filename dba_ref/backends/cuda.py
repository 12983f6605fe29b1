"""The CUDA backend (``backend="cuda"``): Numba CUDA kernels for a whole DBA step on the GPU.

This module is the backend's interface (:class:`dba_ref.backends.Backend`):
host arrays in, host arrays out. The kernels mirror the NumPy reference step
by step; one module per concern:

==========================================  ==================================================================
:mod:`~dba_ref.backends.cuda_environment`   can it run here: a GPU or the simulator, a NumPy numba-cuda runs with
:mod:`~dba_ref.backends.cuda_tiles`         the register-tiled product engine and its block shapes
:mod:`~dba_ref.backends.cuda_products`      the four tiled kernels: ``K = (Δ Δᵀ) ⊙ (A Aᵀ + 1)``, ``A Wᵀ + b``,
                                            ``Δ' W``, the masked mean ``(1/|S|) Δ_Sᵀ A_S``
:mod:`~dba_ref.backends.cuda_reductions`    the reduction kernels: K's statistics, the greedy search (teams of
                                            threads; one block per layer, or a cooperative grid), the masked bias mean
:mod:`~dba_ref.backends.cuda_launch`        launching them: uploads, grids and block shapes, copies back
:mod:`~dba_ref.backends.cuda_backprop`      the forward and backward passes on the device (spec §2)
:mod:`~dba_ref.backends.cuda_step`          :class:`DeviceStep`, one batch's whole DBA step kept on the device
==========================================  ==================================================================

Here: ``gram``, ``greedy_path`` and ``mean_grad`` run on the device one call
at a time, like every backend's kernels; ``prefix_path`` and
``exhaustive_search`` are the Numba CPU kernels on the host. ``signals`` and
``dba_gradients`` are the training step, the batch kept on the device from the
forward pass to the mean gradients (:meth:`DeviceSignals.mean_grads` gives a
plain optimizer its batch-mean gradients from there).

Without a GPU the kernels run in Numba's CUDA simulator when
``NUMBA_ENABLE_CUDASIM=1`` is set before Numba is imported (slow: a Python
thread per CUDA thread; tests keep sizes small). Installing: ``pip install
'dba-ref[cuda]'`` (numba-cuda, and a NumPy it can run with; see
:func:`require_device`). Speed: ``benchmarks/gpu.py`` and
``docs/performance.md``.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ..backprop import subset_mean_grad as reference_mean_grad
from ..search import SearchKernels, make_selection
from ..update import Kernels, search_plan
from . import cuda_launch, numba_cpu
from .cuda_backprop import device_backprop
from .cuda_environment import require_device
from .cuda_step import DeviceSignals, DeviceStep

__all__ = ["KERNELS", "signals", "dba_gradients", "require_device", "gram", "greedy_path",
           "prefix_path", "exhaustive_search", "mean_grad", "DeviceStep", "DeviceSignals"]


# --------------------------------------------------------------------------
# The kernels, one call at a time on host arrays
# --------------------------------------------------------------------------
def gram(A: np.ndarray, D: np.ndarray) -> np.ndarray:
    """``K = (D Dᵀ) ⊙ (A Aᵀ + 1)``, shape ``(B, B)``, float64 whatever the inputs' dtype."""
    dtype = cuda_launch.float_dtype(A, D)
    dK = cuda.device_array((A.shape[0], A.shape[0]), np.float64)
    cuda_launch.launch_gram(cuda_launch.upload(A, dtype), cuda_launch.upload(D, dtype), dK)
    return dK.copy_to_host()


def greedy_path(K: np.ndarray, metric: str, min_size: int, tol: float):
    """Backward elimination on the device; same result as :func:`dba_ref.search.greedy_path`."""
    dK = cuda.to_device(np.ascontiguousarray(K, np.float64)[None])
    r, diag, totals = cuda_launch.launch_stats(dK)
    return cuda_launch.launch_greedy(dK, r, diag, totals, metric, min_size, tol)[0]


def mean_grad(A: np.ndarray, D: np.ndarray, rows=None):
    """``(1/|S|) Δ_Sᵀ [A_S, 1]`` as ``(gW, gb)`` on the device; same result as
    :func:`dba_ref.backprop.subset_mean_grad`, ``rows`` read as NumPy indexing reads them."""
    dtype = cuda_launch.float_dtype(A, D)
    grads = cuda_launch.launch_mean(cuda_launch.upload(A, dtype), cuda_launch.upload(D, dtype),
                                    cuda_launch.batch_rows(A.shape[0], rows))
    return tuple(g.astype(dtype, copy=False) for g in grads)


prefix_path = numba_cpu.prefix_path
exhaustive_search = numba_cpu.exhaustive_search

#: The backend's kernels, one call at a time on host arrays.
KERNELS = Kernels(gram, SearchKernels(greedy_path, prefix_path, exhaustive_search), mean_grad)


# --------------------------------------------------------------------------
# The training step, the batch kept on the device
# --------------------------------------------------------------------------
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
            grads.append(step.subset_mean_grad(l, sel.indices))
        elif on_device:
            grads.append(step.subset_mean_grad(l))
        else:
            grads.append(reference_mean_grad(*layers[l]))
    return grads, selections

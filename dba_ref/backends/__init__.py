"""Backends: who computes the Gram matrices, the searches and the masked mean update.

A backend is chosen once, where the user chooses it (``dba(..., backend=)``,
``dba-ref train --backend``), and is a :class:`Backend`: its
:class:`~dba_ref.update.Kernels` (``gram``, the three searches, ``mean_grad``),
with exactly the semantics of the NumPy reference (:mod:`dba_ref.gram`,
:mod:`dba_ref.search`, :func:`dba_ref.backprop.mean_grad`), and the whole DBA
step (``dba_gradients``), which is :func:`dba_ref.update.dba_gradients` with
those kernels, or a device version that keeps a batch on the GPU. Host
arrays go in and come out; K is symmetric, as every Gram matrix is.

============  ==========================================  ===============================
name          module                                      needs
============  ==========================================  ===============================
``numpy``     :mod:`dba_ref.backends.numpy_backend`       nothing: the reference itself
``numba``     :mod:`dba_ref.backends.numba_cpu`           Numba (``@njit``, cached on disk)
``cuda``      :mod:`dba_ref.backends.cuda`                an NVIDIA GPU, or Numba's CUDA
                                                          simulator (``NUMBA_ENABLE_CUDASIM=1``)
============  ==========================================  ===============================

Each module defines ``KERNELS``, ``signals``, ``mean_grads`` and
``dba_gradients``; the specification modules never import this package.
"""
from __future__ import annotations

import importlib
from typing import Callable, NamedTuple

from .._validation import check_choice
from ..backprop import backprop
from ..search import select
from ..update import Kernels

#: backend name -> module implementing it
_MODULES = {
    "numpy": "dba_ref.backends.numpy_backend",
    "numba": "dba_ref.backends.numba_cpu",
    "cuda": "dba_ref.backends.cuda",
}
BACKENDS = tuple(_MODULES)


class Backend(NamedTuple):
    """One backend: its ``kernels``, and the three parts of a training step it runs.

    ``signals(model, X, y)``: the forward and backward passes of a validated
    batch (:func:`dba_ref.backprop.backprop`; the CUDA backend leaves them on
    the device). ``mean_grads(signals)``: the batch-mean gradient of every
    layer, what a plain optimizer receives. ``dba_gradients(signals, metric,
    strategy, min_size, tol) -> (grads, selections)``: the DBA update of
    :func:`dba_ref.update.dba_gradients`.
    """

    name: str
    kernels: Kernels
    signals: Callable
    mean_grads: Callable
    dba_gradients: Callable

    def select(self, K, metric: str = "mean_variance", strategy: str = "greedy", min_size=2, tol: float = 0.0):
        """:func:`dba_ref.select` with this backend's search kernels."""
        return select(K, metric, strategy, min_size, tol, self.kernels.search)

    def layer_grams(self, model, X, y) -> list:
        """:func:`dba_ref.layer_grams` with this backend's Gram kernel."""
        return [self.kernels.gram(A, D) for A, D in backprop(model, X, y).layers]


def get_backend(name: str) -> Backend:
    """The backend ``name`` (its module imported on first use).

    Raises ``OSError`` for ``"cuda"`` when no GPU (and no simulator) is available.
    """
    module = importlib.import_module(_MODULES[check_choice(name, _MODULES, "backend")])
    if name == "cuda":
        module.require_device()
    return Backend(name, module.KERNELS, module.signals, module.mean_grads, module.dba_gradients)

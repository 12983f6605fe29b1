"""Backends: who computes the forward and backward passes, the Gram matrices, the searches and the means.

A backend is chosen in one place, where a batch's signals are computed:
``train(..., backend=)``, ``dba_step(..., backend=)``, ``DBAClassifier(backend=)``,
``dba-ref train --backend``. The :class:`~dba_ref.backprop.Signals` it returns
name it (``signals.backend``), and DBA's update computes with the same one. A
backend is a :class:`Backend`: its :class:`~dba_ref.update.Kernels` (``gram``,
the three searches, ``mean_grad``), with exactly the semantics of the NumPy
reference (:mod:`dba_ref.gram`, :mod:`dba_ref.search`,
:func:`dba_ref.backprop.mean_grad`), and the two parts of a training step it
runs. Host arrays go in and come out; K is symmetric, as every Gram matrix is.

============  ==========================================  ===============================
name          module                                      needs
============  ==========================================  ===============================
``numpy``     the reference modules themselves            nothing
``numba``     :mod:`dba_ref.backends.numba_cpu`           Numba (``@njit``, cached on disk)
``cuda``      :mod:`dba_ref.backends.cuda`                an NVIDIA GPU, or Numba's CUDA
                                                          simulator (``NUMBA_ENABLE_CUDASIM=1``)
============  ==========================================  ===============================

The NumPy backend is the specification's own functions; the others are
modules defining ``KERNELS``, ``signals`` and ``dba_gradients``, imported on
first use. The specification modules never import this package.
"""
from __future__ import annotations

import functools
import importlib
from typing import Callable, NamedTuple

from .._validation import check_choice
from ..backprop import backprop
from ..search import DBA_DEFAULTS, select
from ..update import NUMPY_KERNELS, Kernels, dba_gradients

#: backend name -> module implementing it (None: the reference modules themselves)
_MODULES = {
    "numpy": None,
    "numba": "dba_ref.backends.numba_cpu",
    "cuda": "dba_ref.backends.cuda",
}
BACKENDS = tuple(_MODULES)


class Backend(NamedTuple):
    """One backend: its ``kernels``, and the two parts of a training step it runs.

    ``signals(model, X, y)``: the forward and backward passes of a validated
    batch (:func:`dba_ref.backprop.backprop`; the CUDA backend leaves them on
    the device), as :class:`~dba_ref.backprop.Signals` naming this backend.
    ``dba_gradients(signals, metric, strategy, min_size, tol) -> (grads, selections)``:
    the DBA update of :func:`dba_ref.update.dba_gradients`.
    """

    name: str
    kernels: Kernels
    signals: Callable
    dba_gradients: Callable

    def select(self, K, metric: str = DBA_DEFAULTS["metric"], strategy: str = DBA_DEFAULTS["strategy"],
               min_size=DBA_DEFAULTS["min_size"], tol: float = DBA_DEFAULTS["tol"]):
        """:func:`dba_ref.select` with this backend's search kernels."""
        return select(K, metric, strategy, min_size, tol, self.kernels.search)

    def layer_grams(self, model, X, y) -> list:
        """:func:`dba_ref.layer_grams` with this backend's Gram kernel."""
        return [self.kernels.gram(A, D) for A, D in backprop(model, X, y).layers]


def numpy_signals(model, X, y):
    """:func:`dba_ref.backprop.backprop` of a batch already validated."""
    return backprop(model, X, y, check_input=False)


#: The reference: the specification's own functions.
NUMPY_BACKEND = Backend("numpy", NUMPY_KERNELS, numpy_signals, dba_gradients)


def get_backend(name: str) -> Backend:
    """The backend ``name`` (its module imported on first use).

    Raises ``OSError`` for ``"cuda"`` when no GPU (and no simulator) is available.
    """
    module_name = _MODULES[check_choice(name, _MODULES, "backend")]
    if name == "cuda":
        importlib.import_module(module_name).require_device()
    return _loaded(name)


def backend_of(signals) -> Backend:
    """The backend that computed ``signals`` (``signals.backend``, checked then): what DBA's update computes with,
    looked up without checking again at every step."""
    return _loaded(check_choice(signals.backend, _MODULES, "backend"))


@functools.cache
def _loaded(name: str) -> Backend:
    module_name = _MODULES[name]
    if module_name is None:
        return NUMPY_BACKEND
    module = importlib.import_module(module_name)
    return Backend(name, module.KERNELS, module.signals, module.dba_gradients)

"""Backends: who computes the Gram matrices, the searches and the masked mean update.

This is the one dispatch point. A backend is a module providing

- ``gram(A, D) -> K``                              (spec §3)
- ``greedy_path(K, metric, min_size, tol) -> (removed, values, margins)``
- ``prefix_path(K, metric, min_size) -> (order, values)``
- ``exhaustive_search(K, metric, min_size) -> (indices, value, n_evaluated)``
- ``mean_grad(A, D, indices) -> (gW, gb)``        (spec §6)

with exactly the semantics of the NumPy reference (:mod:`dba_ref.gram`,
:mod:`dba_ref.search`, :func:`dba_ref.backprop.mean_grad`). Validation and
packaging of results stay in the front doors (:func:`dba_ref.select`, ...),
so every backend answers the same questions in the same format. Host arrays
go in and come out; K is symmetric, as every Gram matrix is.

============  ==========================================  ===============================
name          module                                      needs
============  ==========================================  ===============================
``numpy``     :mod:`dba_ref.backends.numpy_backend`       nothing: the reference itself
``numba``     :mod:`dba_ref.backends.numba_cpu`           Numba (``@njit``, cached on disk)
``cuda``      :mod:`dba_ref.backends.cuda`                an NVIDIA GPU, or Numba's CUDA
                                                          simulator (``NUMBA_ENABLE_CUDASIM=1``)
============  ==========================================  ===============================

The ``cuda`` module also offers :class:`~dba_ref.backends.cuda.DeviceStep`,
which keeps one batch's arrays on the GPU for a whole DBA step.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .._validation import check_choice

#: backend name -> module implementing it
_MODULES = {
    "numpy": "dba_ref.backends.numpy_backend",
    "numba": "dba_ref.backends.numba_cpu",
    "cuda": "dba_ref.backends.cuda",
}
BACKENDS = tuple(_MODULES)


def get_backend(name: str) -> ModuleType:
    """The module implementing backend ``name`` (imported on first use).

    Raises ``OSError`` for ``"cuda"`` when no GPU (and no simulator) is available.
    """
    check_choice(name, _MODULES, "backend")
    module = importlib.import_module(_MODULES[name])
    if name == "cuda":
        module.require_device()
    return module

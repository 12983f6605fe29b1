"""Can the CUDA backend run here: a GPU (or Numba's simulator) and a NumPy that numba-cuda can run with.

Without a GPU the kernels run in Numba's CUDA simulator when
``NUMBA_ENABLE_CUDASIM=1`` is set before Numba is imported (:data:`SIMULATOR`;
slow: a Python thread per CUDA thread, so tests keep sizes small).
Installing: ``pip install 'dba-ref[cuda]'`` (numba-cuda, and a NumPy it can
run with; see :func:`numpy_conflict`).
"""
from __future__ import annotations

from importlib import import_module

import numpy as np
from numba import config, cuda

#: The kernels run in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``): smaller blocks and tiles.
SIMULATOR = bool(config.ENABLE_CUDASIM)


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

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
so every backend answers the same questions in the same format.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .._validation import check_choice

#: backend name -> module implementing it
_MODULES = {
    "numpy": "dba_ref.backends.numpy_backend",
}
BACKENDS = tuple(_MODULES)


def get_backend(name: str) -> ModuleType:
    """The module implementing backend ``name`` (imported on first use)."""
    check_choice(name, _MODULES, "backend")
    return importlib.import_module(_MODULES[name])

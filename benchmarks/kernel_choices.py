"""The measurements behind the Numba CPU backend's choices: where ``parallel=True`` and compiling pay.

For each piece, the same Python source compiled serial and ``parallel=True``
(``prange`` is ``range`` when serial), against the NumPy expression:

- ``combine``: ``DD ⊙ (AA + 1)`` (the Gram combination; the package compiles it serial, in place);
- ``prefix``: the O(B²) prefix sums of the prefix search (the package compiles it parallel);
- ``gather``: copying the B/2 selected rows of a (B, 784) matrix (the package uses NumPy's fancy indexing).

The cores are shared: the load average is printed with every row, and a
parallel region suffers most when the load exceeds the core count.

    python benchmarks/kernel_choices.py
"""
from __future__ import annotations

import sys

import numpy as np
from _common import header, load, median_time
from numba import njit, prange

from dba_ref.backends import numba_cpu
from dba_ref.search import alignment_order


def gather_rows(X, indices):
    """``X[indices]``, one row per iteration (an alternative to NumPy's fancy indexing)."""
    out = np.empty((indices.shape[0], X.shape[1]), X.dtype)
    for p in prange(indices.shape[0]):
        out[p] = X[indices[p]]
    return out


def both(py_func):
    """The function compiled serial and parallel."""
    return njit(py_func), njit(parallel=True)(py_func)


def main(argv=None) -> int:
    header("Numba CPU: serial vs parallel=True vs NumPy", "python benchmarks/kernel_choices.py")
    combine = both(numba_cpu._combine_gram.py_func)
    prefix = both(numba_cpu._prefix_stats.py_func)
    gather = both(gather_rows)
    rng = np.random.default_rng(0)
    print("| B | piece | NumPy (ms) | Numba serial (ms) | Numba parallel (ms) | load |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for B in (600, 2048, 4096):
        DD, AA = rng.random((B, B)), rng.random((B, B))
        G = rng.normal(size=(B, 40))
        K = G @ G.T
        order = alignment_order(K)
        X = rng.random((B, 784))
        rows = np.sort(rng.choice(B, B // 2, replace=False))
        cases = [
            ("combine", lambda: DD * (AA + 1), [lambda f=f: f(DD, AA, 1.0) for f in combine]),
            ("prefix", None, [lambda f=f: f(K, order) for f in prefix]),
            ("gather", lambda: X[rows], [lambda f=f: f(X, rows) for f in gather]),
        ]
        for name, numpy_fn, (serial, parallel) in cases:
            before = load()
            ref = f"{1e3 * median_time(numpy_fn, 9):.2f}" if numpy_fn else "–"
            print(f"| {B} | {name} | {ref} | {1e3 * median_time(serial, 9):.2f} | {1e3 * median_time(parallel, 9):.2f} "
                  f"| {before} → {load()} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

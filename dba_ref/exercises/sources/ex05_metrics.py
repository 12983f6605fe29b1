"""Exercise 5 — all three metrics from T, Q and k.

Task
----
DBA can minimise any of three metrics of a subset S of k = |S| samples,
each computed from the subset's statistics (exercise 4)::

    T = Σ_{i∈S} ‖g_i‖²        Q = ‖Σ_{i∈S} g_i‖²        ‖ḡ‖² = Q/k²

    variance             V = T/k − Q/k²           the (biased) variance of the g_i
    normalized_variance  V / ‖ḡ‖² = kT/Q − 1      noise-to-signal of one sample
    mean_variance        (V/k) / ‖ḡ‖² = T/Q − 1/k noise-to-signal of the mean

The two ratios divide by Q: where the selected gradients cancel they are
+inf, tested as ``Q <= 1e-12 * k * T`` (the same guard as exercise 4). The
variance divides only by k and needs no guard.

Write ``metrics(T, Q, k)`` returning the tuple ``(variance,
normalized_variance, mean_variance)``, elementwise over NumPy arrays (T, Q
and k broadcast together, k often a plain int) as well as on Python scalars,
as float64. Use NumPy only; do not call dba_ref.

Hints
-----
1. Check the ratios against their definitions: (V/k) / (Q/k²) = T/Q − 1/k and
   V / (Q/k²) = kT/Q − 1.
2. A single sample (k = 1) has V = 0 and both ratios 0 (T = Q then).
3. Two opposite gradients (Q = 0) have V = T/k > 0, a finite number: only the
   ratios are +inf.
4. ``np.asarray(x, dtype=np.float64)`` for every input, ``np.where(guard, value,
   np.inf)`` for the ratios, inside ``with np.errstate(divide="ignore",
   invalid="ignore"):``.
"""
import numpy as np


def metrics(T, Q, k):
    """``(variance, normalized_variance, mean_variance)`` of the statistics (T, Q, k), elementwise."""
    # BEGIN SOLUTION
    T, Q, k = (np.asarray(a, dtype=np.float64) for a in (T, Q, k))
    variance = T / k - Q / (k * k)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = Q > 1e-12 * k * T
        return variance, np.where(ok, k * T / Q - 1, np.inf), np.where(ok, T / Q - 1 / k, np.inf)
    # END SOLUTION

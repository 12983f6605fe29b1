"""Exercise 4 — a selection metric from the statistics T, Q and k.

Task
----
A subset S of a batch, with k = |S| samples and per-sample gradients g_i,
is summarised by two numbers that the Gram matrix K gives directly::

    T = Σ_{i∈S} K[i, i] = Σ_{i∈S} ‖g_i‖²          (sum of squared norms)
    Q = Σ_{i,j∈S} K[i, j] = ‖s‖²,  s = Σ_{i∈S} g_i

Write ``mean_variance(T, Q, k)``, the metric DBA minimises by default::

    mean_variance = (V / k) / ‖ḡ‖²  =  T/Q − 1/k

where ḡ = s/k is the mean gradient (so ‖ḡ‖² = Q/k²) and V = T/k − Q/k² is
the variance of the selected gradients around their mean — the *biased*
variance, the mean of ‖g_i − ḡ‖² over the k samples. It is the
noise-to-signal ratio of the update: the variance of a mean of k samples,
V/k, over the squared norm of that mean.

When the selected gradients cancel, ‖ḡ‖² is zero (or zero to rounding) and the
ratio is meaningless: return ``+inf`` wherever ``Q <= 1e-12 * k * T``.

The function must work elementwise on NumPy arrays (the searches evaluate
many candidate subsets at once, often with T and Q arrays and k a plain int)
as well as on Python scalars, and return float64 values.

Hints
-----
1. Check the two forms against each other: (V/k) / (Q/k²) = (T/k − Q/k²) k / Q = T/Q − 1/k.
2. For a single sample (k = 1) T = Q, so the metric is 0. A formula that
   divides by k − 1 is the unbiased variance, which is not this metric.
3. ``np.asarray(T, dtype=np.float64)`` turns scalars and arrays alike into
   arrays; ``np.where(condition, value, np.inf)`` applies the guard; wrap the
   division in ``with np.errstate(divide="ignore", invalid="ignore"):`` so
   that 0/0 in the entries the guard replaces does not warn.
"""
import numpy as np


def mean_variance(T, Q, k):
    """``T/Q − 1/k``, or ``+inf`` where ``Q <= 1e-12 k T``; elementwise over arrays."""
    # BEGIN SOLUTION
    T, Q, k = (np.asarray(a, dtype=np.float64) for a in (T, Q, k))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(Q > 1e-12 * k * T, T / Q - 1 / k, np.inf)
    # END SOLUTION


"""Exercise 12 — AdAdaGrad's norm test: is this batch large enough?

Task
----
AdAdaGrad (Lau, Liu & Kolar, 2024) trains with AdaGrad and grows the batch
whenever the batch's mean gradient is too noisy to trust. The test (Byrd et
al., 2012), for per-sample gradients g_1..g_B of a batch (B >= 2) and a
constant η > 0::

    ḡ  = (1/B) Σ_i g_i
    σ² = (1/(B − 1)) Σ_i ‖g_i − ḡ‖²          (the unbiased sample variance)
    statistic = σ² / (B ‖ḡ‖²)                the variance of the mean over its squared norm

The test passes when ``statistic <= η²``: the next batch keeps its size B.
Otherwise the next batch size is the smallest that would pass,
``⌈σ² / (η² ‖ḡ‖²)⌉``. When ḡ = 0 (the gradients cancel) the statistic is
+inf and so is the next batch size.

Write ``norm_test(G, eta)`` for ``G`` of shape (B, P), one gradient per row,
returning the pair ``(statistic, next_batch_size)``: a float, and an int (or
``math.inf``). Use NumPy only; do not call dba_ref.

Hints
-----
1. ``G.mean(axis=0)`` is ḡ; ``((G - g_bar) ** 2).sum()`` is Σ_i ‖g_i − ḡ‖².
2. Divide by B − 1 for σ², then by B once more for the variance of the mean.
3. The threshold is η², not η.
4. ``math.ceil`` rounds up; the batch never shrinks: a passing test keeps B.
5. Compare with exercise 4: statistic = B/(B − 1) · mean_variance(T, Q, B),
   with T = Σ_i ‖g_i‖² and Q = ‖Σ_i g_i‖². DBA and AdAdaGrad read the same
   number and act in opposite directions.
"""
import math

import numpy as np


def norm_test(G, eta):
    """``(statistic, next_batch_size)`` of the norm test on per-sample gradients G (B, P)."""
    # BEGIN SOLUTION
    G = np.asarray(G, dtype=np.float64)
    B = G.shape[0]
    g_bar = G.mean(axis=0)
    variance = ((G - g_bar) ** 2).sum() / (B - 1)
    signal = float(g_bar @ g_bar)
    if signal == 0.0:
        return math.inf, math.inf
    statistic = float(variance / (B * signal))
    if statistic <= eta ** 2:
        return statistic, B
    return statistic, max(B, math.ceil(variance / (eta ** 2 * signal)))
    # END SOLUTION

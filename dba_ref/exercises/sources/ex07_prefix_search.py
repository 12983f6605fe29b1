"""Exercise 7 — the prefix search.

Task
----
Write ``prefix_search(K, min_size)``: the subset the prefix search keeps,
from the (B, B) Gram matrix ``K`` of one layer's per-sample gradients and an
int ``min_size`` >= 1, with the metric mean_variance = T/Q − 1/k (+inf where
Q <= 1e-12·k·T; exercise 4). Instead of trying removals one at a time like
greedy (exercise 6), it ranks the samples once and tries every prefix:

1. Score each sample by how well its gradient aligns with the batch's summed
   gradient s = Σ_j g_j::

       c_i = ⟨g_i, s⟩ / ‖g_i‖ = r_i / √K[i, i]      with r_i = Σ_j K[i, j]

   and c_i = 0 for a zero gradient (K[i, i] = 0).
2. Rank the samples by c_i, highest first; on a tie, the lower index first.
3. For every k from min_size to B, the prefix P_k = the first k ranked samples
   has T_k = Σ_{i∈P_k} K[i, i] and Q_k = Σ_{i,j∈P_k} K[i, j].
4. Keep the prefix with the lowest metric; on a tie, the longest.

Return the indices of the samples kept as a list of ints (in any order).
Use NumPy only; do not call dba_ref.

Hints
-----
1. ``np.argsort(-c, kind="stable")`` ranks highest first and keeps the lower
   index first on ties.
2. ``P = K[np.ix_(order, order)]`` reorders K; then T_k is the cumulative sum
   of its diagonal, and Q_k the sum of its leading k × k block:
   ``P.cumsum(axis=0).cumsum(axis=1).diagonal()``. One pass, O(B²).
3. Dividing r_i by ‖g_i‖ matters: without it a long gradient pointing a little
   off the batch's direction can outrank a short one that points along it.
4. With the prefix values v_k for k = min_size..B, the longest of the lowest
   is the last position of the minimum: scan from k = B down to min_size and
   take the first minimum.
"""
import numpy as np


def prefix_search(K, min_size):
    """The samples the prefix search keeps (mean_variance, ties to the longest prefix), as a list of ints."""
    # BEGIN SOLUTION
    K = np.asarray(K, dtype=np.float64)
    B = K.shape[0]
    norms = np.sqrt(np.maximum(np.diag(K), 0.0))
    r = K.sum(axis=1)
    c = np.divide(r, norms, out=np.zeros(B), where=norms > 0)
    order = np.argsort(-c, kind="stable")
    P = K[np.ix_(order, order)]
    T = np.cumsum(np.diag(P))
    Q = P.cumsum(axis=0).cumsum(axis=1).diagonal()
    k = np.arange(1, B + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(Q > 1e-12 * k * T, T / Q - 1 / k, np.inf)
    sizes = np.arange(B, min_size - 1, -1)
    best = int(sizes[np.argmin(values[sizes - 1])])
    return [int(i) for i in order[:best]]
    # END SOLUTION

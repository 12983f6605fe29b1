"""Exercise 6 — the greedy search for the subset to keep.

Task
----
Write ``greedy_removals(K, min_size)``. ``K`` is the (B, B) Gram matrix of one
layer's per-sample gradients, K[i, j] = ⟨g_i, g_j⟩, and ``min_size`` an int
>= 1. Greedy backward elimination, with the metric mean_variance = T/Q − 1/k
(+inf where Q <= 1e-12·k·T; exercise 4):

1. Start with S = all B samples and ``current`` = the metric of S.
2. While |S| > min_size:
   a. for every i in S, compute the metric of S without i;
   b. take the i with the lowest value (on a tie, the lowest index i);
   c. if that value is strictly below ``current``, remove i from S and set
      ``current`` to that value; otherwise stop.

Return the removed indices, in the order they were removed (a list of
ints; an empty list when nothing is removed). Use NumPy only: the grader
runs your file without dba_ref, so copy your ``mean_variance`` from
exercise 4 into this file if you want to reuse it.

Hints
-----
1. The statistics of S without i come from those of S: with
   r_i = Σ_{j∈S} K[i, j],  T' = T − K[i, i]  and  Q' = Q − 2 r_i + K[i, i].
   Keep T, Q and r up to date and every step costs O(B). (Recomputing T and
   Q from scratch for every candidate is slower but also correct.)
2. ``np.argmin`` returns the first minimum: the lowest index wins ties, as
   required — as long as the samples no longer in S cannot win (give them +inf).
3. Check the stop rule on the smallest cases: with min_size = B nothing may be
   removed; the search never leaves fewer than min_size samples.
4. Only a removal that lowers the metric is made; otherwise the search ends.
   A removal that leaves it unchanged (a tie with ``current``) is not made:
   compare with ``<``, not ``<=``.
"""
import numpy as np


def greedy_removals(K, min_size):
    """The samples greedy backward elimination removes (mean_variance, ties to the lowest index), in order."""
    # BEGIN SOLUTION
    K = np.asarray(K, dtype=np.float64)
    B = K.shape[0]
    diag = np.diag(K).copy()
    r = K.sum(axis=1)
    T, Q, k = diag.sum(), r.sum(), B

    def metric(T, Q, k):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(Q > 1e-12 * k * T, T / Q - 1 / k, np.inf)

    current = metric(T, Q, k)
    active = np.ones(B, dtype=bool)
    removed = []
    while k > min_size:
        values = np.where(active, metric(T - diag, Q - 2 * r + diag, k - 1), np.inf)
        best = int(np.argmin(values))
        if not values[best] < current:
            break
        T, Q = T - diag[best], Q - 2 * r[best] + diag[best]
        r = r - K[:, best]
        active[best] = False
        k -= 1
        current = values[best]
        removed.append(best)
    return removed
    # END SOLUTION


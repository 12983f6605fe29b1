"""Exercise 8 — the exhaustive search.

Task
----
Write ``exhaustive_search(K, min_size)``: the best subset of a batch, from
the (B, B) Gram matrix ``K`` of one layer's per-sample gradients (B <= 10 in
the graded cases) and an int ``min_size`` >= 1. Try every subset S with
|S| >= min_size, score it with mean_variance = T/Q − 1/k (+inf where
Q <= 1e-12·k·T; exercise 4), with T = Σ_{i∈S} K[i, i] and
Q = Σ_{i,j∈S} K[i, j], and keep the lowest. On a tie, keep the largest
subset (a removal must strictly improve the metric, as in greedy), and among
those the lexicographically smallest sorted index list.

Return the indices of the samples kept as a list of ints (in any order).
Use NumPy only; do not call dba_ref.

Hints
-----
1. There are 2^B subsets: the integers m = 1 .. 2^B − 1, sample i being in S
   when bit i of m is set, ``(m >> i) & 1``. Or ``itertools.combinations``
   for every size from min_size to B.
2. For a subset as a list of indices, ``sub = K[np.ix_(S, S)]`` gives
   T = ``np.trace(sub)`` and Q = ``sub.sum()``.
3. Compare candidates by a key: (value, −size, sorted indices); Python
   compares tuples entry by entry, so ``min`` over such keys applies all
   three rules at once.
4. When every subset scores +inf (gradients that cancel), the rules still
   decide: the largest subset, the whole batch, is kept.
"""
import numpy as np


def exhaustive_search(K, min_size):
    """The best subset of at least min_size samples (mean_variance; ties: largest, then smallest indices)."""
    # BEGIN SOLUTION
    K = np.asarray(K, dtype=np.float64)
    B = K.shape[0]
    best = None
    for m in range(1, 2 ** B):
        S = [i for i in range(B) if (m >> i) & 1]
        if len(S) < min_size:
            continue
        sub = K[np.ix_(S, S)]
        T, Q, k = np.trace(sub), sub.sum(), len(S)
        value = T / Q - 1 / k if Q > 1e-12 * k * T else np.inf
        key = (value, -k, S)
        if best is None or key < best:
            best = key
    return best[2]
    # END SOLUTION

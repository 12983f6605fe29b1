"""Exercise 9 — a batch on which greedy is not optimal.

Task
----
The greedy search (exercise 6) removes one sample at a time, the best at
that moment, and stops when no removal lowers the metric. The exhaustive
search (exercise 8) tries every subset. Greedy is fast, but it can end with
a subset whose metric is higher than the best one.

Write ``greedy_not_optimal(B, min_size)``: return per-sample gradients ``G``,
an array of shape (B, P) for any P >= 1 you like, such that, on the Gram
matrix K = G Gᵀ, with the metric mean_variance and that ``min_size``, the
subset greedy keeps has a clearly higher metric than the best subset of at
least ``min_size`` samples. The graded cases ask for 4 <= B <= 8 and
1 <= min_size <= B − 2.

"Clearly": the grader runs the reference's greedy and exhaustive searches on
your batch; the gap between the two values, and every decision greedy takes
on the way, must be larger than rounding could explain (a near-tie that
another correct implementation might break the other way does not count).

Use NumPy only; do not call dba_ref (copy your own greedy and exhaustive
searches into this file if you want to use them).

Hints
-----
1. Greedy goes wrong when its first removal, the best single step, rules out
   the best subset: think of two groups of gradients, a large group that
   roughly agrees and a small one that agrees perfectly, plus a sample that
   the large group needs.
2. Or search: draw random gradients (a common mean plus noise) with a seeded
   ``np.random.default_rng``, run your greedy and your exhaustive search on
   them, and return the first batch where greedy's value exceeds the best
   one by a margin (say a relative 1e-6). Small batches need few tries.
3. With min_size = B − 1 greedy is always optimal (its one step tries every
   subset of B − 1): that is why min_size <= B − 2.
4. Compare greedy with the best subset of at least min_size samples: a better
   subset of fewer samples is not allowed to the search.
"""
import numpy as np


def greedy_not_optimal(B, min_size):
    """Gradients G of shape (B, P) on which the greedy search keeps a clearly worse subset than the best one."""
    # BEGIN SOLUTION
    def value(K, S):
        sub = K[np.ix_(S, S)]
        T, Q, k = np.trace(sub), sub.sum(), len(S)
        return T / Q - 1 / k if Q > 1e-12 * k * T else np.inf

    def greedy(K):
        S = list(range(B))
        current = value(K, S)
        while len(S) > min_size:
            best_value, best = min((value(K, [j for j in S if j != i]), i) for i in S)
            if not best_value < current:
                break
            S.remove(best)
            current = best_value
        return current

    def best(K):
        subsets = ([i for i in range(B) if (m >> i) & 1] for m in range(1, 2 ** B))
        return min(value(K, S) for S in subsets if len(S) >= min_size)

    rng = np.random.default_rng(0)
    while True:
        G = rng.normal(size=3) * rng.uniform(0, 2) + rng.normal(size=(B, 3))
        K = G @ G.T
        if greedy(K) > best(K) * (1 + 1e-6) + 1e-9:
            return G
    # END SOLUTION

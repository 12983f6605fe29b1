"""Exercise 4 — the greedy search for the subset to keep.

Read first: notebook 03_metrics_and_search.ipynb.

Task
----
Write ``greedy_removals(K, min_size)``. ``K`` is the (B, B) Gram matrix of one
layer's per-sample gradients, K[i, j] = ⟨g_i, g_j⟩, and ``min_size`` an int
>= 1. Greedy backward elimination, with the metric mean_variance = T/Q − 1/k
(+inf where Q <= 1e-12·k·T; see exercise 3):

1. Start with S = all B samples and ``current`` = the metric of S.
2. While |S| > min_size:
   a. for every i in S, compute the metric of S without i;
   b. take the i with the lowest value (on a tie, the lowest index i);
   c. if that value is strictly below ``current``, remove i from S and set
      ``current`` to that value; otherwise stop.

Return the removed indices, in the order they were removed (a list of
ints; an empty list when nothing is removed). Use NumPy only; you may reuse
your ``mean_variance`` from exercise 3 (or ``dba_ref.metrics.mean_variance``),
but not ``dba_ref.select`` or ``dba_ref.search``.

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

Check your answer
-----------------
Run this file: ``python ex4_greedy.py`` grades ``greedy_removals`` on edge
cases and fresh random cases, says what is wrong, and exits with status 0 only
when every case passes. Or, from a shell::

    dba-ref exercises check 4 ex4_greedy.py

or, in a notebook, after defining the function::

    from dba_ref.exercises import check
    check(4, greedy_removals)
"""
import numpy as np


def greedy_removals(K, min_size):
    """The samples greedy backward elimination removes (mean_variance, ties to the lowest index), in order."""
    # Your code here.
    raise NotImplementedError("write greedy_removals")


if __name__ == "__main__":      # grade greedy_removals; exit status 0 only if every case passes
    import sys

    from dba_ref.exercises import check

    report = check(4, greedy_removals)
    print(report)
    sys.exit(report.exit_status)

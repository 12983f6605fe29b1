"""Exercise 10 — the DBA update of one layer.

Task
----
After the search (exercises 6 to 8) has chosen, for one layer, the subset S
of the batch to keep, DBA updates that layer with the mean gradient over S
alone. With the layer's input ``A`` = A_{l-1}, shape (B, in), its error
signals ``D`` = Δ_l, shape (B, out), and ``keep`` a boolean array of shape
(B,) that is True for the samples in S, the per-sample gradients are
∇W(i) = D[i] ⊗ A[i] and ∇b(i) = D[i], so::

    gW = (1/|S|) Σ_{i∈S} D[i] ⊗ A[i] = D_Sᵀ A_S / |S|        shape (out, in)
    gb = (1/|S|) Σ_{i∈S} D[i]                                shape (out,)

where A_S and D_S are the rows of the kept samples. Write
``dba_update(A, D, keep)`` returning the pair ``(gW, gb)``, without forming
any per-sample gradient. Use NumPy only; do not call dba_ref.

Hints
-----
1. ``A[keep]`` picks the kept rows with a boolean mask; ``keep.sum()`` counts
   them.
2. The mean is over the |S| kept samples, not over the B samples of the batch:
   the removed samples are not zeros in the average, they are left out.
3. ``D_S.T @ A_S`` is (out, in), like W; ``A_S.T @ D_S`` is its transpose.
4. With every sample kept this is the ordinary batch-mean gradient, the one
   SGD would use: DBA with ``strategy="all"`` is SGD.
"""
import numpy as np


def dba_update(A, D, keep):
    """``(gW, gb)``: the mean gradient of one layer over the samples where ``keep`` is True."""
    # BEGIN SOLUTION
    A_S, D_S = A[keep], D[keep]
    k = A_S.shape[0]
    return D_S.T @ A_S / k, D_S.sum(axis=0) / k
    # END SOLUTION

"""Exercise 3 — the Gram identity.

Task
----
Write ``gram(A, D)``. For one layer, ``A`` is the layer's input A_{l-1}, shape
(B, in), and ``D`` its error signal Δ_l, shape (B, out). Sample i's gradient
of the layer's weights and bias, flattened into one vector, is::

    g_i = [ vec(D[i] ⊗ A[i]),  D[i] ]        (length out·in + out)

Return the (B, B) matrix of inner products K[i, j] = ⟨g_i, g_j⟩ *without*
building any g_i: use the identity::

    K = (D Dᵀ) ⊙ (A Aᵀ + 1)

where ⊙ is the elementwise product. Use NumPy only; do not call dba_ref.

Hints
-----
1. ⟨u ⊗ a, v ⊗ c⟩ = Σ_o Σ_j u_o a_j v_o c_j = (u · v)(a · c): the inner product
   of two outer products is the product of two inner products.
2. The bias gradient D[i] is the weight gradient for an input that is always 1;
   that constant input is where the ``+ 1`` comes from.
3. Which product pairs samples with samples: ``D @ D.T`` (B, B) or
   ``D.T @ D`` (out, out)?
4. In NumPy, ``*`` is elementwise and ``@`` is the matrix product.
5. If in doubt, build the g_i explicitly for a tiny case
   (``np.einsum("bo,bi->boi", D, A)``, then reshape and append D) and compare
   ``G @ G.T`` with your K.
"""
import numpy as np


def gram(A, D):
    """``K[i, j] = ⟨g_i, g_j⟩`` for the per-sample gradients of one layer, shape (B, B)."""
    # BEGIN SOLUTION
    return (D @ D.T) * (A @ A.T + 1)
    # END SOLUTION


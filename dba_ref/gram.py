"""The Gram identity (spec §3): inner products of per-sample gradients without the gradients.

For one layer with inputs ``A = A_{l-1}`` (B, in) and error signals
``Δ = Δ_l`` (B, out), per-sample gradient ``g_i = [vec(Δ[i] ⊗ A[i]), Δ[i]]``::

    K[i, j] = ⟨g_i, g_j⟩ = (Δ[i]·Δ[j]) (A[i]·A[j] + 1)
    K       = (Δ Δᵀ) ⊙ (A Aᵀ + 1)

because ⟨u ⊗ a, v ⊗ c⟩ = (u·v)(a·c); the ``+ 1`` is the bias, a constant
input. Cost: O(B²(in + out)) time and O(B²) memory, instead of O(B·in·out)
memory for the explicit gradients. :func:`identity_gram` is the identity
itself, unchecked (the NumPy backend's kernel); :func:`gram` is it behind a
check of its inputs. :func:`explicit_gram` is the slow path that materialises
the gradients; the two agree to rounding.

K is always computed in float64, float32 inputs included. The metrics cancel
(``V = T/k − Q/k²``) when gradients nearly agree, and float32 rounding of K's
own entries (about 1e-7 relative) would be amplified by that cancellation:
at pairwise cosines of 0.9999 a float32 K puts the variance off by about 1e-3
relative, a float64 K from the same float32 signals by about 1e-12
(``tests/test_float32_stability.py``). Accumulating T and Q in float64 alone
cannot repair entries that are already rounded.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_layer_signals
from .backprop import backprop, flatten_layer_grads, per_sample_grads


def identity_gram(A: np.ndarray, D: np.ndarray) -> np.ndarray:
    """``K = (D Dᵀ) ⊙ (A Aᵀ + 1)``, shape ``(B, B)``, float64 whatever the inputs' dtype; unchecked: ``A``
    ``(B, in)`` and ``D`` ``(B, out)`` must be one batch's (:func:`gram` checks them)."""
    A, D = np.asarray(A, np.float64), np.asarray(D, np.float64)
    return (D @ D.T) * (A @ A.T + 1)


def gram(A, D) -> np.ndarray:
    """``K = (D Dᵀ) ⊙ (A Aᵀ + 1)`` of one layer's inputs ``A`` ``(B, in)`` and error signals ``D`` ``(B, out)``,
    shape ``(B, B)``, float64 whatever the inputs' dtype.

    Both must be finite 2-D arrays with one row per sample of the batch; anything
    else is a ``ValueError`` or ``TypeError`` saying what to pass.

    >>> import numpy as np
    >>> gram(np.array([[1.0, 2.0]]), np.array([[3.0]]))   # ‖[3·1, 3·2, 3]‖² = 54
    array([[54.]])
    """
    return identity_gram(*check_layer_signals(A, D))


def explicit_gram(gW: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """``G Gᵀ`` from materialised per-sample gradients (shapes ``(B, out, in)``, ``(B, out)``)."""
    G = flatten_layer_grads(gW, gb)
    return G @ G.T


def layer_grams(model, X, y) -> list[np.ndarray]:
    """One ``(B, B)`` Gram matrix per layer of ``model`` for the batch ``(X, y)``, per-sample gradients never formed.

    (Another backend's Gram matrices: ``dba_ref.backends.get_backend(name).layer_grams``.)
    """
    return [identity_gram(A, D) for A, D in backprop(model, X, y).layers]


def explicit_layer_grams(model, X, y) -> list[np.ndarray]:
    """The same matrices as :func:`layer_grams`, by the explicit path ``G Gᵀ``."""
    return [explicit_gram(gW, gb) for gW, gb in per_sample_grads(model, X, y)]

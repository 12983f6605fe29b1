"""How far a right answer may lie from the reference: each graded quantity's rounding tolerance.

A student's correct answer is computed in another order than the reference
(an explicit ``G Gᵀ`` for the Gram identity, ``(V/k)/(Q/k²)`` for
``T/Q − 1/k``, a loop for a matrix product), so it differs by rounding, and
rounding is relative to the *terms* a quantity is made of, not to the
quantity. Every comparison is therefore the package's one rule,
:func:`dba_ref.agreement.rounding_tolerance` ``(scale, n_ops)``, with the
scale of the quantity's terms and the number of roundings that fed it
worked out here, per quantity, for *any* correct way of computing it.
"""
from __future__ import annotations

import numpy as np

from ..agreement import gram_scale, rounding_tolerance, value_scale

#: Roundings in a metric value computed from given T, Q and k (a few divisions and a subtraction).
METRIC_OPS = 4


def abs_forward(weights, biases, X) -> list:
    """``[S_1, ..., S_L]``: the scale of the terms of every pre-activation ``Z_l`` of a ReLU network, (B, out_l).

    ``S_l = |A_{l-1}| |W_l|ᵀ + |b_l|`` with the inputs' own scale carried
    through: ``S_1`` from ``|X|``, then ``S_l`` from ``S_{l-1}`` (a ReLU is at
    most its input), so an error made in one layer is counted in the next.
    """
    scale, scales = np.abs(np.asarray(X, np.float64)), []
    for W, b in zip(weights, biases):
        scale = scale @ np.abs(np.asarray(W, np.float64)).T + np.abs(np.asarray(b, np.float64))
        scales.append(scale)
    return scales


def forward_ops(weights) -> int:
    """Roundings that feed the logits: ``Σ_l (in_l + 1)``, the inner dimensions of the forward pass."""
    return sum(int(np.shape(W)[1]) + 1 for W in weights)


def logits_tolerance(weights, biases, X) -> np.ndarray:
    """The rounding tolerance of each logit ``Z_L[i, c]``."""
    return rounding_tolerance(abs_forward(weights, biases, X)[-1], forward_ops(weights))


def softmax_scale(Z) -> np.ndarray:
    """``1 + 2·max_c |Z[i, c]|`` per row, (B, 1): the scale of a softmax's (or a log-sum-exp's) rounding, whose
    exponent ``Z_c − max Z`` rounds relative to that."""
    return 1.0 + 2.0 * np.abs(np.asarray(Z, np.float64)).max(axis=1, keepdims=True)


def error_signal_tolerances(weights, biases, X) -> list:
    """The rounding tolerance of each error signal ``Δ_l`` (one number per layer).

    ``Δ_L = softmax(Z_L) − onehot`` rounds like the softmax of the logits, whose
    own error (:func:`abs_forward`) reaches it through a Jacobian of norm at most
    1; ``Δ_l = (Δ_{l+1} W_{l+1}) ⊙ φ'`` then multiplies the scale by the largest
    column sum of ``|W_{l+1}|``. ``n_ops`` counts one forward and one backward pass.
    """
    logits = abs_forward(weights, biases, X)[-1]
    scale = float(np.max(1.0 + 2.0 * logits, initial=1.0))
    scales = [scale]
    for W in weights[:0:-1]:
        scale *= float(np.abs(np.asarray(W, np.float64)).sum(axis=0).max(initial=0.0))
        scales.append(scale)
    n_ops = forward_ops(weights) + sum(int(np.shape(W)[0]) for W in weights)
    return [float(rounding_tolerance(s, n_ops)) for s in scales[::-1]]


def gram_tolerance(A, D) -> np.ndarray:
    """The rounding tolerance of each entry ``K_ij`` of a layer's Gram matrix, (B, B).

    Scale: :func:`dba_ref.agreement.gram_scale`, ``‖g_i‖ ‖g_j‖``, which bounds
    (Cauchy–Schwarz) the terms of the identity ``(D_i·D_j)(A_i·A_j + 1)`` and of
    the explicit ``Σ_p g_ip g_jp`` alike; roundings: the explicit path's
    ``P = out·(in + 1)``, the larger count, plus the identity's ``in + out + 1``.
    """
    n_in, n_out = np.shape(A)[1], np.shape(D)[1]
    return rounding_tolerance(gram_scale(A, D), n_out * (n_in + 1) + n_in + n_out + 1)


def metric_tolerance(name: str, T, Q, k) -> np.ndarray:
    """The rounding tolerance of a metric value computed from given ``(T, Q, k)``: its rounding scale
    (:func:`dba_ref.agreement.value_scale`, which carries the cancellation of ``T/Q − 1/k``) times
    :data:`METRIC_OPS` roundings."""
    return rounding_tolerance(value_scale(name, T, Q, k), METRIC_OPS)


def mean_gradient_tolerance(A, D, indices) -> tuple:
    """The rounding tolerance of each entry of a layer's mean gradient over the samples ``indices``:
    ``(|D_S|ᵀ|A_S| / k, Σ|D_S| / k)`` as scales, ``k + 1`` roundings (a sum of k terms, the division)."""
    A, D = np.asarray(A, np.float64)[indices], np.asarray(D, np.float64)[indices]
    k = max(len(indices), 1)
    return (rounding_tolerance(np.abs(D).T @ np.abs(A) / k, k + 1),
            rounding_tolerance(np.abs(D).sum(axis=0) / k, k + 1))

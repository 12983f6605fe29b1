"""Adam (Kingma & Ba, 2015)::

    m ← β1 m + (1 − β1) g          v ← β2 v + (1 − β2) g²
    m̂ = m / (1 − β1^t)             v̂ = v / (1 − β2^t)
    Δθ = −η m̂ / (√v̂ + ε)

Where ε goes is a choice that implementations make differently, and it is
exposed here as ``eps_placement``, shared by every Adam-type optimizer of the
package (Adam, diffGrad, AdamP):

``"corrected"`` (default)
    ε is added to √v̂, as in the paper's Algorithm 1 and ``torch.optim.Adam``:
    ``m̂ / (√v̂ + ε)``.
``"raw"``
    The "more efficient" order of the paper's Section 2: the bias corrections
    are folded into the step size and ε is added to √v, not √v̂:
    ``(√(1 − β2^t) / (1 − β1^t)) · m / (√v + ε)``. This is the first form
    with ε replaced by ε/√(1 − β2^t) (equivalently, the first form with ε is
    this one with ε√(1 − β2^t)), so the two differ only through ε.
    TensorFlow/Keras and the ``pytorch_optimizer`` versions of diffGrad and
    AdamP use it.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_choice, check_positive
from .base import Optimizer, bias_correction, check_decay, gradient_optimizer, tree_map, tree_zeros_like, update_moment

#: Where ε enters the denominator of an Adam-type step (see the module docstring).
EPS_PLACEMENTS = ("corrected", "raw")


class AdamState(NamedTuple):
    """``count``: the number of updates t; ``m``, ``v``: the first and second moments, pytrees like the parameters."""

    count: int
    m: list
    v: list


def adam_direction(m: np.ndarray, v: np.ndarray, t: int, beta1: float, beta2: float, eps: float,
                   eps_placement: str) -> np.ndarray:
    """The bias-corrected Adam direction ``m̂ / (√v̂ + ε)`` (or its ``"raw"`` form); the step is ``−η ×`` it."""
    if eps_placement == "corrected":
        return bias_correction(m, beta1, t) / (np.sqrt(bias_correction(v, beta2, t)) + eps)
    c1, c2 = 1.0 - beta1 ** t, 1.0 - beta2 ** t
    return (np.sqrt(c2) / c1) * m / (np.sqrt(v) + eps)


def check_eps_placement(eps_placement) -> str:
    """``eps_placement`` must be one of :data:`EPS_PLACEMENTS`."""
    return check_choice(eps_placement, EPS_PLACEMENTS, "eps_placement")


def adam(learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
         eps_placement: str = "corrected") -> Optimizer:
    """Adam with bias correction; state :class:`AdamState`."""
    lr = check_positive(learning_rate, "learning_rate")
    beta1, beta2 = check_decay(beta1, "beta1"), check_decay(beta2, "beta2")
    eps = check_positive(eps, "eps")
    eps_placement = check_eps_placement(eps_placement)

    def init(params):
        return AdamState(0, tree_zeros_like(params), tree_zeros_like(params))

    def update(grads, state, params=None):
        t = state.count + 1
        m = update_moment(grads, state.m, beta1, 1)
        v = update_moment(grads, state.v, beta2, 2)
        updates = tree_map(lambda m_, v_: -lr * adam_direction(m_, v_, t, beta1, beta2, eps, eps_placement), m, v)
        return updates, AdamState(t, m, v)

    return gradient_optimizer(init, update, "adam", {"learning_rate": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                                            "eps_placement": eps_placement})

"""diffGrad (Dubey, Chakraborty, Roy, Mukherjee, Singh & Chaudhuri, IEEE TNNLS 2020; arXiv:1909.11015).

Adam whose step is damped coordinate by coordinate where the gradient hardly
changes between steps (near a minimum), through the "friction coefficient"
ξ = AbsSig(g_{t−1} − g_t)::

    m ← β1 m + (1 − β1) g          v ← β2 v + (1 − β2) g²
    ξ = 1 / (1 + exp(−|g_{t−1} − g_t|))            ∈ [1/2, 1),   g_0 = 0
    Δθ = −η ξ ⊙ m̂ / (√v̂ + ε)

ξ is 1/2 where the gradient did not change and tends to 1 where it changed a
lot, so diffGrad moves at most as far as Adam. ``eps_placement`` is Adam's
(see :mod:`dba_ref.optimizers.adam`): the paper adds ε to √v̂
(``"corrected"``, the default); the authors' code and ``pytorch_optimizer``
add it to √v and fold the bias corrections into the step (``"raw"``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_positive
from .adam import adam_direction, check_eps_placement
from .base import Optimizer, check_decay, gradient_optimizer, tree_map, tree_zeros_like, update_moment


def abs_sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(−|x|))``: the friction coefficient ξ, in [1/2, 1)."""
    return 1.0 / (1.0 + np.exp(-np.abs(x)))


class DiffGradState(NamedTuple):
    """``count``: the number of updates t; ``m``, ``v``: Adam's moments; ``g_prev``: the last gradient (0 at first)."""

    count: int
    m: list
    v: list
    g_prev: list


def diffgrad(learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
             eps_placement: str = "corrected") -> Optimizer:
    """diffGrad; state :class:`DiffGradState`."""
    lr = check_positive(learning_rate, "learning_rate")
    beta1, beta2 = check_decay(beta1, "beta1"), check_decay(beta2, "beta2")
    eps = check_positive(eps, "eps")
    eps_placement = check_eps_placement(eps_placement)

    def init(params):
        zeros = tree_zeros_like(params)
        return DiffGradState(0, zeros, zeros, zeros)

    def update(grads, state, params=None):
        t = state.count + 1
        m = update_moment(grads, state.m, beta1, 1)
        v = update_moment(grads, state.v, beta2, 2)
        updates = tree_map(
            lambda m_, v_, g, gp: -lr * adam_direction(abs_sigmoid(gp - g) * m_, v_, t, beta1, beta2, eps, eps_placement),
            m, v, grads, state.g_prev)
        return updates, DiffGradState(t, m, v, grads)

    return gradient_optimizer(init, update, "diffgrad", {"learning_rate": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                                                "eps_placement": eps_placement})

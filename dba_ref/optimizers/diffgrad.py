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
from .adam import adam_direction, check_eps_placement, first_moment, second_moment
from .base import Optimizer, check_decay, gradient_optimizer
from .tree import tree_zeros_like
from .elementwise import element_function, element_rule


@element_function
def abs_sigmoid(x):
    """``1 / (1 + exp(−|x|))``: the friction coefficient ξ, in [1/2, 1)."""
    return 1.0 / (1.0 + np.exp(-np.abs(x)))


class DiffGradState(NamedTuple):
    """``count``: the number of updates t; ``m``, ``v``: Adam's moments; ``g_prev``: the last gradient (0 at first)."""

    count: int
    m: list
    v: list
    g_prev: list


@element_rule(n_out=3, exact=False)        # exp: NumPy's and the compiled one may differ in the last bit
def diffgrad_step(g, g_prev, m, v, lr, beta1, beta2, c1, c2, eps, raw):
    """One coordinate of diffGrad's step: ``Δθ`` and the new moments ``m``, ``v``."""
    m = first_moment(m, g, beta1)
    v = second_moment(v, g, beta2)
    return -lr * adam_direction(abs_sigmoid(g_prev - g) * m, v, c1, c2, eps, raw), m, v


def diffgrad(learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
             eps_placement: str = "corrected") -> Optimizer:
    """diffGrad; state :class:`DiffGradState`."""
    lr = check_positive(learning_rate, "learning_rate")
    beta1, beta2 = check_decay(beta1, "beta1"), check_decay(beta2, "beta2")
    eps = check_positive(eps, "eps")
    eps_placement = check_eps_placement(eps_placement)
    raw = eps_placement == "raw"

    def init(params):
        zeros = tree_zeros_like(params)
        return DiffGradState(0, zeros, zeros, zeros)

    def update(grads, state, params, elementwise):
        t = state.count + 1
        updates, m, v = elementwise(diffgrad_step, (grads, state.g_prev, state.m, state.v),
                                    (lr, beta1, beta2, 1 - beta1 ** t, 1 - beta2 ** t, eps, raw))
        return updates, DiffGradState(t, m, v, grads)

    return gradient_optimizer(init, update, "diffgrad", {"learning_rate": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                                                "eps_placement": eps_placement})

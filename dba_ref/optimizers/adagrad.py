"""AdaGrad (Duchi, Hazan & Singer, 2011) and AdaGrad-Norm (Ward, Wu & Bottou, 2019).

AdaGrad, the diagonal version: every coordinate j keeps the sum of its squared
gradients and gets its own step size::

    s_j ← s_j + g_j²                  s_j(0) = initial_accumulator_value
    Δθ_j = −η g_j / (√s_j + ε)

(Duchi et al. write ε as δ; ``torch.optim.Adagrad`` names the two constants
``eps`` and ``initial_accumulator_value`` and places them exactly like this.)

AdaGrad-Norm, the scalar version: one accumulator for the whole parameter
vector, fed with the squared norm of the *whole* gradient (all layers)::

    b² ← b² + ‖g‖²                    b(0) = b0 > 0
    Δθ = −η g / b

so every coordinate moves with the same step size η / b. Its convergence
analysis (Ward et al.; Lau et al. 2024 for AdAdaGrad-Norm) needs b0 > 0, which
replaces ε.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_positive
from .base import Optimizer, gradient_optimizer
from .tree import tree_leaves, tree_map
from .elementwise import element_rule
from .sgd import sgd_step


class AdaGradState(NamedTuple):
    """``sums``: every coordinate's sum of squared gradients s, a pytree like the parameters."""

    sums: list


class AdaGradNormState(NamedTuple):
    """``b2``: the accumulated squared gradient norm b², one float."""

    b2: float


@element_rule(n_out=2)
def adagrad_step(g, s, lr, eps):
    """One coordinate of AdaGrad's step: ``Δθ`` and the new sum of squares ``s``."""
    s = s + g * g
    return -lr * g / (np.sqrt(s) + eps), s


def adagrad(learning_rate: float = 1e-2, eps: float = 1e-10, initial_accumulator_value: float = 0.0) -> Optimizer:
    """Diagonal AdaGrad; state :class:`AdaGradState`.

    The defaults are those of ``torch.optim.Adagrad`` (the paper fixes none).
    """
    lr = check_positive(learning_rate, "learning_rate")
    eps = check_positive(eps, "eps", allow_zero=True)
    s0 = check_positive(initial_accumulator_value, "initial_accumulator_value", allow_zero=True)
    if eps == 0 and s0 == 0:
        raise ValueError("eps and initial_accumulator_value cannot both be 0 (the first step would divide by "
                         "|g|, and 0/0 where g = 0); make one of them positive")

    def init(params):
        return AdaGradState(tree_map(lambda p: np.full_like(p, s0), params))

    def update(grads, state, params, elementwise):
        updates, sums = elementwise(adagrad_step, (grads, state.sums), (lr, eps))
        return updates, AdaGradState(sums)

    return gradient_optimizer(init, update, "adagrad",
                     {"learning_rate": lr, "eps": eps, "initial_accumulator_value": s0})


def adagrad_norm(learning_rate: float = 1.0, b0: float = 0.1) -> Optimizer:
    """AdaGrad-Norm: one scalar step size ``η / b`` for all parameters; state :class:`AdaGradNormState`.

    Defaults η = 1 and b0 = 0.1 (``b0² = 1e-2``) are those of the AdAdaGrad
    authors' code (``Adagradnorm(lr=1.0, initial_accumulator_value=1e-2)``).
    """
    lr = check_positive(learning_rate, "learning_rate")
    b0 = check_positive(b0, "b0")

    def init(params):
        return AdaGradNormState(b0 * b0)

    def update(grads, state, params, elementwise):
        b2 = state.b2 + sum(float(np.sum(np.square(leaf, dtype=np.float64))) for leaf in tree_leaves(grads))
        return elementwise(sgd_step, (grads,), (lr / math.sqrt(b2),)), AdaGradNormState(b2)

    return gradient_optimizer(init, update, "adagrad_norm", {"learning_rate": lr, "b0": b0})

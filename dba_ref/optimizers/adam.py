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
from .base import Optimizer, check_decay, gradient_optimizer
from .tree import tree_zeros_like
from .elementwise import element_function, element_rule

#: Where ε enters the denominator of an Adam-type step (see the module docstring).
EPS_PLACEMENTS = ("corrected", "raw")


class AdamState(NamedTuple):
    """``count``: the number of updates t; ``m``, ``v``: the first and second moments, pytrees like the parameters."""

    count: int
    m: list
    v: list


@element_function
def first_moment(m, g, decay):
    """``β m + (1 − β) g``: the exponential moving average of the gradient, one step."""
    return decay * m + (1 - decay) * g


@element_function
def second_moment(v, g, decay):
    """``β v + (1 − β) g²``: the exponential moving average of the squared gradient, one step."""
    return decay * v + (1 - decay) * g * g


@element_function
def adam_direction(m, v, c1, c2, eps, raw):
    """The bias-corrected Adam direction ``m̂ / (√v̂ + ε) = (m / c1) / (√(v / c2) + ε)``; the step is ``−η ×`` it.

    ``c1 = 1 − β1^t`` and ``c2 = 1 − β2^t`` remove the bias of moments that started at 0,
    after t updates. ``raw``: the ``"raw"`` placement of ε, ``(√c2 / c1) m / (√v + ε)``.
    """
    if raw:
        return (np.sqrt(c2) / c1) * m / (np.sqrt(v) + eps)
    return (m / c1) / (np.sqrt(v / c2) + eps)


@element_rule(n_out=3)
def adam_step(g, m, v, lr, beta1, beta2, c1, c2, eps, raw):
    """One coordinate of Adam's step: ``Δθ`` and the new moments ``m``, ``v``."""
    m = first_moment(m, g, beta1)
    v = second_moment(v, g, beta2)
    return -lr * adam_direction(m, v, c1, c2, eps, raw), m, v


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
    raw = eps_placement == "raw"

    def init(params):
        return AdamState(0, tree_zeros_like(params), tree_zeros_like(params))

    def update(grads, state, params, elementwise):
        t = state.count + 1
        updates, m, v = elementwise(adam_step, (grads, state.m, state.v),
                                    (lr, beta1, beta2, 1 - beta1 ** t, 1 - beta2 ** t, eps, raw))
        return updates, AdamState(t, m, v)

    return gradient_optimizer(init, update, "adam", {"learning_rate": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                                            "eps_placement": eps_placement})

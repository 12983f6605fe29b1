"""AdaBelief (Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan, NeurIPS 2020).

Adam with the second moment of the gradient replaced by the second moment of
its *surprise* g − m, the "belief" in the current gradient (Algorithm 2)::

    m ← β1 m + (1 − β1) g
    s ← β2 s + (1 − β2)(g − m)² + ε          (m already updated; ε inside, every step)
    m̂ = m / (1 − β1^t)        ŝ = s / (1 − β2^t)
    Δθ = −η m̂ / (√ŝ + ε)                     (Adam's direction with v replaced by s)

A large step where the gradient is close to its running mean (a confident
direction), a small one where it keeps surprising. ε enters twice, as in the
paper. Because ε is added to s itself, ε² here plays roughly the role of ε in
Adam; the default 1e-16 is that of the authors' ``adabelief-pytorch`` (from
0.1.0) and of ``pytorch_optimizer``. The paper's algorithm box omits the bias
correction for brevity; the authors' code applies it, as here.
"""
from __future__ import annotations

from typing import NamedTuple

from .._validation import check_positive
from .adam import adam_direction, first_moment, second_moment
from .base import Optimizer, check_decay, gradient_optimizer
from .tree import tree_zeros_like
from .elementwise import element_rule


class AdaBeliefState(NamedTuple):
    """``count``: the number of updates t; ``m``: the first moment; ``s``: the second moment of ``g − m``."""

    count: int
    m: list
    s: list


@element_rule(n_out=3)
def adabelief_step(g, m, s, lr, beta1, beta2, c1, c2, eps):
    """One coordinate of AdaBelief's step: ``Δθ`` and the new ``m``, ``s`` (``c1 = 1 − β1^t``, ``c2 = 1 − β2^t``)."""
    m = first_moment(m, g, beta1)
    s = second_moment(s, g - m, beta2) + eps
    return -lr * adam_direction(m, s, c1, c2, eps, False), m, s


def adabelief(learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-16) -> Optimizer:
    """AdaBelief; state :class:`AdaBeliefState`."""
    lr = check_positive(learning_rate, "learning_rate")
    beta1, beta2 = check_decay(beta1, "beta1"), check_decay(beta2, "beta2")
    eps = check_positive(eps, "eps")

    def init(params):
        return AdaBeliefState(0, tree_zeros_like(params), tree_zeros_like(params))

    def update(grads, state, params, elementwise):
        t = state.count + 1
        updates, m, s = elementwise(adabelief_step, (grads, state.m, state.s),
                                    (lr, beta1, beta2, 1 - beta1 ** t, 1 - beta2 ** t, eps))
        return updates, AdaBeliefState(t, m, s)

    return gradient_optimizer(init, update, "adabelief", {"learning_rate": lr, "beta1": beta1, "beta2": beta2, "eps": eps})

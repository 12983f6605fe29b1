"""Adan, the ADAptive Nesterov momentum algorithm (Xie, Zhou, Li, Lin & Yan, arXiv:2208.06677, TPAMI 2024).

Nesterov momentum without the gradient at the extrapolated point: the
"Nesterov momentum estimation" uses the gradient *difference* d = g_k − g_{k−1}
instead (Algorithm 1 of the paper, in its notation, where β weighs the *new*
term)::

    d = g_k − g_{k−1}
    m ← (1 − β1) m + β1 g_k                         first moment of g
    v ← (1 − β2) v + β2 d                           first moment of the difference
    n ← (1 − β3) n + β3 [g_k + (1 − β2) d]²          second moment of the Nesterov gradient
    θ ← (1 + λη)⁻¹ [θ − η (m + (1 − β2) v) / (√n + ε)]

The paper's defaults are β1 = 0.02, β2 = 0.08, β3 = 0.01, and it starts the
moments from the first gradient: m0 = g0, v0 = 0, n0 = g0² (so the first step
is ``η g / (|g| + ε)``, and there is no bias correction). λ is a *proximal* weight
decay: the step is taken, then θ is divided by 1 + λη.

``bias_correction=True`` gives the authors' released code (github.com/sail-sg/Adan)
and ``pytorch_optimizer.Adan`` instead: moments start at zero, g_0 := g_1 (the
first difference is 0), and each moment is divided by its bias correction::

    Δ = −η (m / (1 − (1−β1)^t) + (1 − β2) v / (1 − (1−β2)^t)) / (√(n / (1 − (1−β3)^t)) + ε)

Both give the same first step. **Convention warning:** the code's ``betas``
are the paper's 1 − β: ``betas=(0.98, 0.92, 0.99)`` there is
``beta1=0.02, beta2=0.08, beta3=0.01`` here.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import check_positive
from .base import Optimizer, check_flag, gradient_optimizer
from .tree import tree_map, tree_zeros_like
from .elementwise import element_function, element_rule


class AdanState(NamedTuple):
    """Per-layer moments ``m, v, n``, the previous gradient ``g_prev`` (None before step 1) and the step count ``t``."""

    t: int
    m: list
    v: list
    n: list
    g_prev: list | None


def _check_weight(value, name: str) -> float:
    value = check_positive(value, name)
    if value > 1:
        raise ValueError(f"{name} must lie in (0, 1] (Adan's β weighs the new term), got {value}")
    return value


@element_function
def adan_direction(g, g_prev, m, v, n, beta1, beta2, beta3, c1, c2, c3, eps):
    """One coordinate of Adan: the direction ``(m/c1 + (1 − β2) v/c2) / (√(n/c3) + ε)`` and the new ``m, v, n``.

    ``c1, c2, c3`` are the bias corrections ``1 − (1 − β)^t`` (all 1 without bias correction).
    """
    d = g - g_prev
    m = (1 - beta1) * m + beta1 * g
    v = (1 - beta2) * v + beta2 * d
    nesterov_grad = g + (1 - beta2) * d
    n = (1 - beta3) * n + beta3 * (nesterov_grad * nesterov_grad)
    return (m / c1 + (1 - beta2) * v / c2) / (np.sqrt(n / c3) + eps), m, v, n


@element_rule(n_out=4)
def adan_step(g, g_prev, m, v, n, lr, beta1, beta2, beta3, c1, c2, c3, eps):
    """One coordinate of Adan's step without weight decay: ``Δθ = −η · direction``, and the new ``m, v, n``."""
    direction, m, v, n = adan_direction(g, g_prev, m, v, n, beta1, beta2, beta3, c1, c2, c3, eps)
    return -lr * direction, m, v, n


@element_rule(n_out=4)
def adan_decayed_step(g, g_prev, m, v, n, p, lr, beta1, beta2, beta3, c1, c2, c3, eps, wd):
    """One coordinate of Adan's step with weight decay, ``θ_new = (θ − η·direction) / (1 + λη)`` as an increment."""
    direction, m, v, n = adan_direction(g, g_prev, m, v, n, beta1, beta2, beta3, c1, c2, c3, eps)
    return -(lr * direction + lr * wd * p) / (1 + lr * wd), m, v, n


def adan(learning_rate: float = 1e-3, beta1: float = 0.02, beta2: float = 0.08, beta3: float = 0.01,
         eps: float = 1e-8, weight_decay: float = 0.0, bias_correction: bool = False) -> Optimizer:
    """Adan in the paper's notation (β weighs the new term); state :class:`AdanState`."""
    lr = check_positive(learning_rate, "learning_rate")
    beta1, beta2, beta3 = (_check_weight(b, n) for b, n in ((beta1, "beta1"), (beta2, "beta2"), (beta3, "beta3")))
    eps = check_positive(eps, "eps")
    wd = check_positive(weight_decay, "weight_decay", allow_zero=True)
    bias_correction = check_flag(bias_correction, "bias_correction")

    def init(params):
        zeros = tree_zeros_like(params)
        return AdanState(0, zeros, zeros, zeros, None)

    def update(grads, state, params, elementwise):
        if wd and params is None:
            raise ValueError("adan with weight_decay > 0 needs params: call update(grads, state, params)")
        t, m, v, n, g_prev = state
        t += 1
        if g_prev is None:                       # first step: g_0 := g_1, so the first difference is 0
            g_prev = grads
            if not bias_correction:              # the paper's start: m0 = g0, n0 = g0²
                m, n = grads, tree_map(lambda g: g * g, grads)
        if bias_correction:
            c1, c2, c3 = (1 - (1 - b) ** t for b in (beta1, beta2, beta3))
        else:
            c1 = c2 = c3 = 1.0
        scalars = (lr, beta1, beta2, beta3, c1, c2, c3, eps)
        if wd:
            updates, m, v, n = elementwise(adan_decayed_step, (grads, g_prev, m, v, n, params), (*scalars, wd))
        else:
            updates, m, v, n = elementwise(adan_step, (grads, g_prev, m, v, n), scalars)
        return updates, AdanState(t, m, v, n, grads)

    return gradient_optimizer(init, update, "adan", {"learning_rate": lr, "beta1": beta1, "beta2": beta2, "beta3": beta3,
                                            "eps": eps, "weight_decay": wd, "bias_correction": bias_correction})

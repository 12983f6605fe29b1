"""Adam (Kingma & Ba, 2015)::

    m ← β1 m + (1 − β1) g          v ← β2 v + (1 − β2) g²
    m̂ = m / (1 − β1^t)             v̂ = v / (1 − β2^t)
    Δθ = −η m̂ / (√v̂ + ε)

ε is added after the square root, as in the paper and ``torch.optim.Adam``.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_positive
from .base import Optimizer, tree_map


def adam(learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam with bias correction; state per layer ``(t, m, v)``."""
    lr = check_positive(learning_rate, "learning_rate")
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not (0.0 <= check_positive(beta, name, allow_zero=True) < 1.0):
            raise ValueError(f"{name} must lie in [0, 1), got {beta}")
    eps = check_positive(eps, "eps")

    def init(params):
        return (0, tree_map(np.zeros_like, params), tree_map(np.zeros_like, params))

    def update(grads, state, params=None):
        t, m, v = state
        t += 1
        m = tree_map(lambda m_, g: beta1 * m_ + (1 - beta1) * g, m, grads)
        v = tree_map(lambda v_, g: beta2 * v_ + (1 - beta2) * g * g, v, grads)
        c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
        updates = tree_map(lambda m_, v_: -lr * (m_ / c1) / (np.sqrt(v_ / c2) + eps), m, v)
        return updates, (t, m, v)

    return Optimizer(init, update, "adam", {"learning_rate": lr, "beta1": beta1, "beta2": beta2, "eps": eps})

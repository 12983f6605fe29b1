"""Stochastic gradient descent, with heavy-ball or Nesterov momentum.

Plain SGD::                 Δθ = −η g

Momentum (PyTorch convention, buffer starts at 0)::

    v ← μ v + g
    heavy ball:   Δθ = −η v
    Nesterov:     Δθ = −η (g + μ v)
"""
from __future__ import annotations

from typing import NamedTuple

from .._validation import check_positive
from .base import EmptyState, Optimizer, check_decay, gradient_optimizer
from .tree import tree_zeros_like
from .elementwise import element_function, element_rule


class MomentumState(NamedTuple):
    """``velocity``: the momentum buffer v, a pytree like the parameters (0 at first)."""

    velocity: list


@element_rule(n_out=1)
def sgd_step(g, lr):
    """One coordinate of SGD's step: ``Δθ = −η g``."""
    return -lr * g


def sgd(learning_rate: float = 0.1) -> Optimizer:
    """Plain SGD, ``Δθ = −η g``.

    >>> import numpy as np
    >>> opt = sgd(0.5)
    >>> updates, _ = opt.update([(np.ones((1, 1)), np.ones(1))], opt.init(None), None)
    >>> updates[0][0]
    array([[-0.5]])
    """
    lr = check_positive(learning_rate, "learning_rate")

    def init(params):
        return EmptyState()

    def update(grads, state, params, elementwise):
        return elementwise(sgd_step, (grads,), (lr,)), state

    return gradient_optimizer(init, update, "sgd", {"learning_rate": lr})


def momentum(learning_rate: float = 0.05, momentum: float = 0.9) -> Optimizer:
    """SGD with heavy-ball momentum ``μ``: ``v ← μ v + g``, ``Δθ = −η v``; state :class:`MomentumState`."""
    return _momentum_sgd(learning_rate, momentum, nesterov=False)


def nesterov(learning_rate: float = 0.05, momentum: float = 0.9) -> Optimizer:
    """SGD with Nesterov momentum ``μ``: ``v ← μ v + g``, ``Δθ = −η (g + μ v)``; state :class:`MomentumState`."""
    return _momentum_sgd(learning_rate, momentum, nesterov=True)


@element_function
def momentum_direction(g, v, mu, nesterov):
    """One coordinate of a momentum step: returns ``(direction, new v)``.

    ``v ← μ v + g``; the direction is ``v`` (heavy ball) or ``g + μ v`` (Nesterov);
    the update is ``−η ×`` the direction. Shared by SGD, SGDP and EnhancedSGD.
    """
    v = mu * v + g
    return (g + mu * v if nesterov else v), v


@element_rule(n_out=2)
def momentum_step(g, v, lr, mu, nesterov):
    """One coordinate of momentum SGD's step: ``Δθ`` and the new velocity."""
    direction, v = momentum_direction(g, v, mu, nesterov)
    return -lr * direction, v


def _momentum_sgd(learning_rate: float, mu: float, nesterov: bool) -> Optimizer:
    lr = check_positive(learning_rate, "learning_rate")
    mu = check_decay(mu, "momentum")

    def init(params):
        return MomentumState(tree_zeros_like(params))

    def update(grads, state, params, elementwise):
        updates, velocity = elementwise(momentum_step, (grads, state.velocity), (lr, mu, nesterov))
        return updates, MomentumState(velocity)

    return gradient_optimizer(init, update, "nesterov" if nesterov else "momentum", {"learning_rate": lr, "momentum": mu})

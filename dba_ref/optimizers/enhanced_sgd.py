"""EnhancedSGD, as described by the GradRetentionNet project — a heuristic without a convergence analysis.

Source: the README of github.com/waefrebeorn/GradRetentionNet ("Dynamic Gradient
Retention and Optimization Framework") and its ``EnhancedSGD.py``. No paper
describes it, nothing is proved about it, and the project's code does not
implement its own description faithfully (see ``docs/optimizers/enhanced_sgd.md``
for the list of differences). This module is one precise, documented reading of
the components the project describes; use it as a baseline to compare
against, not as a method with guarantees.

One step, with g the gradient (all layers) and t the step count::

    1. gradient-variance EMA      v_t = Var(all entries of g)   (unbiased, N − 1)
                                  σ²_t = ρ v_t + (1 − ρ) σ²_{t−1},      σ²_0 = 0
    2. learning-rate scale from   r_t = (σ²_t − σ²_{t−1}) / σ²_{t−1}    (0 while σ²_{t−1} = 0)
       the change in variance     s_t = clip(1 − r_t, lo, hi)           (README: lr·(1 ± Δσ²/σ²))
    3. Q-learning controller      state  x_t = (sign r_t, ⌊log10 σ²_t⌋)
       (ε-greedy, tabular)        reward of the previous action: −|r_t|
                                  Q(x_{t−1}, a_{t−1}) += α [−|r_t| + γ max_a Q(x_t, a) − Q(x_{t−1}, a_{t−1})]
                                  a_t = uniform random action with probability ε, else argmax_a Q(x_t, a)
                                  (c_η, c_μ) ← clip((c_η, c_μ) + δ a_t, lo, hi),   c(0) = 1
    4. per parameter array        g ← g − mean(g)                         gradient centring
                                  g ← clip(g, −κ σ_t, κ σ_t)              adaptive clipping
                                  g ← g + N(0, noise_scale²)              noise injection
    5. momentum                   η_t = η c_η s_t,   μ_t = min(μ c_μ, 0.99)
                                  u ← μ_t u + g,     Δθ = −η_t u

The nine actions are the steps of (c_η, c_μ) in {−δ, 0, +δ}², "no change"
first (argmax ties go to the lowest index, so an unseen state keeps the
scales). All randomness — the ε-greedy draws and the noise — comes from a NumPy
generator seeded with ``seed`` whose state is part of the optimizer state, so
``update`` is a pure function and runs repeat exactly.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from .._validation import check_positive
from .base import Optimizer, check_decay, check_flag, gradient_optimizer
from .tree import tree_leaves, tree_unflatten, tree_zeros_like
from .elementwise import element_rule
from .sgd import momentum_direction

#: The controller's actions: steps of (c_η, c_μ) in units of ``action_step``, "no change" first.
ACTIONS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))
#: Upper limit of the effective momentum μ_t.
MAX_MOMENTUM = 0.99


class EnhancedSGDState(NamedTuple):
    """Everything EnhancedSGD carries between steps.

    ``velocity``: per-layer momentum buffers; ``variance``: σ²_t; ``lr_scale``,
    ``momentum_scale``: the controller's c_η, c_μ; ``q_table``: controller state
    → tuple of one value per action; ``last``: (controller state, action index)
    of the previous step; ``rng_state``: the generator's state;
    ``learning_rate``, ``momentum``: η_t and μ_t used by the last step.
    """

    velocity: object
    variance: float
    lr_scale: float
    momentum_scale: float
    q_table: dict
    last: tuple | None
    rng_state: dict
    learning_rate: float = math.nan
    momentum: float = math.nan


@element_rule(n_out=2)
def enhanced_sgd_step(g, v, mean, bound, mu, eta):
    """One coordinate of steps 4-5 without noise: ``g ← clip(g − mean, −bound, bound)``, ``v ← μ v + g``,
    ``Δθ = −η v``; returns ``Δθ`` and the new v."""
    g = np.minimum(np.maximum(g - mean, -bound), bound)
    direction, v = momentum_direction(g, v, mu, False)
    return -eta * direction, v


@element_rule(n_out=2)
def enhanced_sgd_noisy_step(g, noise, v, mean, bound, mu, eta):
    """:func:`enhanced_sgd_step` with the noise added after the clipping: ``g ← clip(g − mean, ...) + noise``."""
    g = np.minimum(np.maximum(g - mean, -bound), bound) + noise
    direction, v = momentum_direction(g, v, mu, False)
    return -eta * direction, v


def _generator(state: dict) -> np.random.Generator:
    rng = np.random.Generator(np.random.PCG64(0))
    rng.bit_generator.state = state
    return rng


def _controller_state(r: float, variance: float) -> tuple:
    return (int(np.sign(r)), math.floor(math.log10(variance)) if variance > 0 else None)


def enhanced_sgd(learning_rate: float = 1e-2, momentum: float = 0.9, smoothing_factor: float = 0.1,
                 gradient_centering: bool = True, clip_factor: float = 2.0, noise_scale: float = 1e-4,
                 q_learning_rate: float = 0.1, discount: float = 0.9, epsilon: float = 0.5,
                 action_step: float = 0.01, scale_bounds: tuple = (0.5, 1.5), seed: int = 0) -> Optimizer:
    """EnhancedSGD (GradRetentionNet): a heuristic; see the module docstring for the exact step.

    Defaults are the project's (lr 0.01, momentum 0.9, smoothing 0.1, clipping at
    2σ, noise 1e-4, Q-learning α = 0.1, γ = 0.9, ε = 0.5, action step 0.01,
    scale clipping to [0.5, 1.5]). ``clip_factor=0`` or ``noise_scale=0``
    switch those components off.
    """
    lr = check_positive(learning_rate, "learning_rate")
    mu = check_decay(momentum, "momentum")
    rho = check_positive(smoothing_factor, "smoothing_factor")
    if rho > 1:
        raise ValueError(f"smoothing_factor must lie in (0, 1], got {rho}")
    centring = check_flag(gradient_centering, "gradient_centering")
    kappa = check_positive(clip_factor, "clip_factor", allow_zero=True)
    noise = check_positive(noise_scale, "noise_scale", allow_zero=True)
    alpha = check_positive(q_learning_rate, "q_learning_rate")
    if alpha > 1:
        raise ValueError(f"q_learning_rate must lie in (0, 1], got {alpha}")
    gamma = check_decay(discount, "discount")
    eps = check_positive(epsilon, "epsilon", allow_zero=True)
    if eps > 1:
        raise ValueError(f"epsilon (the exploration probability) must lie in [0, 1], got {eps}")
    delta = check_positive(action_step, "action_step")
    try:
        lo, hi = (check_positive(b, "scale_bounds") for b in scale_bounds)
    except TypeError as exc:
        raise TypeError(f"scale_bounds must be a pair (low, high) of positive numbers, got {scale_bounds!r}") from exc
    if not lo <= 1.0 <= hi:
        raise ValueError(f"scale_bounds must satisfy low <= 1 <= high, got {scale_bounds!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}")

    def init(params):
        rng_state = np.random.default_rng(int(seed)).bit_generator.state
        return EnhancedSGDState(tree_zeros_like(params), 0.0, 1.0, 1.0, {}, None, rng_state)

    def update(grads, state, params, elementwise):
        rng = _generator(state.rng_state)
        # 1-2. variance EMA and the learning-rate scale from its relative change
        flat = np.concatenate([np.ravel(leaf).astype(np.float64) for leaf in tree_leaves(grads)])
        v = float(np.var(flat, ddof=1)) if flat.size > 1 else 0.0
        variance = rho * v + (1 - rho) * state.variance
        r = (variance - state.variance) / state.variance if state.variance > 0 else 0.0
        var_scale = min(max(1.0 - r, lo), hi)
        # 3. Q-learning: reward the previous action, then choose this step's ε-greedily
        here = _controller_state(r, variance)
        q_table = dict(state.q_table)
        row = q_table.get(here, (0.0,) * len(ACTIONS))
        if state.last is not None:
            prev, action = state.last
            prev_row = list(q_table.get(prev, (0.0,) * len(ACTIONS)))
            prev_row[action] += alpha * (-abs(r) + gamma * max(row) - prev_row[action])
            q_table[prev] = tuple(prev_row)
            row = q_table.get(here, row)
        if rng.random() < eps:
            action = int(rng.integers(len(ACTIONS)))
        else:
            action = int(np.argmax(row))
        lr_scale = min(max(state.lr_scale + delta * ACTIONS[action][0], lo), hi)
        momentum_scale = min(max(state.momentum_scale + delta * ACTIONS[action][1], lo), hi)
        # 4-5. gradient processing and the momentum step, array by array: the mean and the noise drawn here,
        # the rest coordinate by coordinate (with no clipping, the bound is ∞: clip(x, −∞, ∞) = x)
        bound = kappa * math.sqrt(variance)
        bound = bound if bound > 0 else math.inf
        eta_t, mu_t = lr * lr_scale * var_scale, min(mu * momentum_scale, MAX_MOMENTUM)
        steps = []
        for g, v in zip(tree_leaves(grads), tree_leaves(state.velocity)):
            mean = g.mean() if centring else 0.0
            if noise > 0:
                z = rng.normal(0.0, noise, size=g.shape).astype(g.dtype)
                steps.append(elementwise.leaf(enhanced_sgd_noisy_step, (g, z, v), (mean, bound, mu_t, eta_t)))
            else:
                steps.append(elementwise.leaf(enhanced_sgd_step, (g, v), (mean, bound, mu_t, eta_t)))
        updates = tree_unflatten(grads, [u for u, _ in steps])
        velocity = tree_unflatten(grads, [v for _, v in steps])
        return updates, state._replace(velocity=velocity, variance=variance, lr_scale=lr_scale,
                                momentum_scale=momentum_scale, q_table=q_table, last=(here, action),
                                rng_state=rng.bit_generator.state, learning_rate=eta_t, momentum=mu_t)

    return gradient_optimizer(init, update, "enhanced_sgd", {
        "learning_rate": lr, "momentum": mu, "smoothing_factor": rho, "gradient_centering": centring,
        "clip_factor": kappa, "noise_scale": noise, "q_learning_rate": alpha, "discount": gamma, "epsilon": eps,
        "action_step": delta, "scale_bounds": (lo, hi), "seed": int(seed)})

"""How much ``pytorch_optimizer``'s extra 1e-15 under the square root moves diffGrad's update.

``pytorch_optimizer.DiffGrad`` computes the "raw" form (see docs/optimizers/adam.md)
with ``√(v + δ) + ε``, δ = 1e-15, where the package has ``√v + ε``. For one
coordinate the step changes by the factor (√v + ε)/(√(v + δ) + ε), i.e. by::

    r(v) = (√(v + δ) − √v) / (√(v + δ) + ε)  ≈  δ / (2 √v (√v + ε))  ≈  δ / (2v)   for √v ≫ ε

relative. This script prints the v below which r(v) exceeds 1e-10 and 1e-12
(solved by bisection), then runs diffGrad's defaults (β1 = 0.9, β2 = 0.999,
ε = 1e-8, η = 1e-2) on 150 steps of a random gradient stream on the three
layers of tests/test_optimizers_torch.py (N(0, σ²) gradients and N(0, 1)
initial parameters, seed 0; the shapes and scales of that check, not its
draws) with and without δ, and prints for each σ:

- the smallest v of the run;
- the largest change of the update over the steps, relative to the update's
  largest coordinate;
- the largest difference of the parameters, relative to their largest
  (the measure of tests/test_optimizers_torch.py, which runs at σ = 10).

Without δ the update is the package's ``diffgrad(eps_placement="raw")``,
checked bit for bit here. Run from the repository root:
python docs/scripts/diffgrad_sqrt_offset.py (cited in docs/optimizers/diffgrad.md).
"""
import math

import numpy as np

from dba_ref.agreement import max_rel_error
from dba_ref.optimizers import apply_updates, diffgrad
from dba_ref.optimizers.tree import tree_leaves
from dba_ref.optimizers.adam import adam_direction
from dba_ref.optimizers.diffgrad import abs_sigmoid

DELTA, BETA1, BETA2, EPS, LR = 1e-15, 0.9, 0.999, 1e-8, 1e-2
STEPS = 150
SHAPES = [((5, 3), (5,)), ((2, 5), (2,)), ((4, 1), (4,))]     # (W, b) of the three layers of the torch check
SCALES = (10.0, 1.0, 1e-2, 1e-4)


def step_change(v: float) -> float:
    """r(v): relative change of a coordinate's step when δ is added under the square root."""
    root = math.sqrt(v + DELTA)
    return (root - math.sqrt(v)) / (root + EPS)


def threshold(level: float) -> float:
    """The v at which r(v) = level (r decreases in v), by bisection on log v."""
    lo, hi = -40.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if step_change(10.0 ** mid) > level else (lo, mid)
    return 10.0 ** hi


def flat(tree) -> np.ndarray:
    return np.concatenate([leaf.ravel() for leaf in tree_leaves(tree)])


def run(scale: float) -> tuple[float, float, float]:
    """(smallest v, largest relative change of the update, largest relative difference of the parameters)."""
    rng = np.random.default_rng(0)
    params = [(rng.normal(size=w), rng.normal(size=b)) for w, b in SHAPES]
    package = diffgrad(LR, BETA1, BETA2, EPS, eps_placement="raw")
    state = package.init(params)
    with_delta = flat(params)
    m = v = g_prev = np.zeros_like(with_delta)
    v_min, update_change, param_change = math.inf, 0.0, 0.0
    for t in range(1, STEPS + 1):
        grads = [(scale * rng.normal(size=w), scale * rng.normal(size=b)) for w, b in SHAPES]
        g = flat(grads)
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        xi_m = abs_sigmoid(g_prev - g) * m
        without = -LR * adam_direction(xi_m, v, t, BETA1, BETA2, EPS, "raw")
        with_ = -LR * adam_direction(xi_m, v + DELTA, t, BETA1, BETA2, EPS, "raw")
        updates, state = package.update(grads, state, params)
        assert np.array_equal(flat(updates), without), "the script's update is not the package's"
        params = apply_updates(params, updates)
        with_delta = with_delta + with_
        g_prev = g
        v_min = min(v_min, float(v.min()))
        update_change = max(update_change, max_rel_error(with_, without))
        param_change = max(param_change, max_rel_error(with_delta, flat(params)))
    return v_min, update_change, param_change


if __name__ == "__main__":
    print(f"δ = {DELTA:g}, ε = {EPS:g}: r(v) > 1e-10 for v < {threshold(1e-10):.2g}; "
          f"r(v) > 1e-12 for v < {threshold(1e-12):.2g}")
    print(f"diffGrad raw form, β1 {BETA1}, β2 {BETA2}, η {LR:g}, {STEPS} steps on the torch check's layers, seed 0")
    print("| gradient std σ | smallest v | update change (relative) | parameter difference (relative) |")
    print("|---|---|---|---|")
    for scale in SCALES:
        v_min, update_change, param_change = run(scale)
        print(f"| {scale:g} | {v_min:.1e} | {update_change:.1e} | {param_change:.1e} |")

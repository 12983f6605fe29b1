"""Adam's two ε placements: which ε is rescaled to turn one into the other, and how far apart the wrong reading is.

With c1 = 1 − β1^t and c2 = 1 − β2^t, the package's two forms of Adam's direction are::

    corrected(ε) = (m / c1) / (√(v / c2) + ε)
    raw(ε)       = (√c2 / c1) · m / (√v + ε)

Multiplying numerator and denominator of ``corrected`` by √c2 gives::

    corrected(ε) = raw(ε·√c2)          equivalently   raw(ε) = corrected(ε / √c2)

so the corrected form is the raw one with *its* ε replaced by ε·√(1 − β2^t). Read
the other way round, raw(ε) = corrected(ε·√c2), it is false. This script runs
Adam's defaults (β1 = 0.9, β2 = 0.999, ε = 1e-8) on 150 steps of a random
gradient stream (N(0, σ²), 1,000 coordinates, seed 0) through the package's
own ``adam_direction`` and prints, for each σ, the largest difference between
the two sides over the steps, relative to the largest coordinate of the
direction (max |a − b| / max |b|, as in tests/test_optimizers_torch.py):

- the identity as stated:           corrected(ε)  vs  raw(ε·√c2)
- the identity read the other way:  raw(ε)        vs  corrected(ε·√c2)

Run from the repository root: python docs/scripts/eps_placement.py
(cited in docs/optimizers/adam.md and docs/optimizers/diffgrad.md).
"""
import numpy as np

from dba_ref.agreement import max_rel_error
from dba_ref.optimizers.adam import adam_direction

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
STEPS, SIZE = 150, 1000
SCALES = (1.0, 1e-2, 1e-4, 1e-6, 1e-8)


def worst_differences(scale: float) -> tuple[float, float]:
    """Largest relative difference over the steps: (identity as stated, identity read the other way)."""
    rng = np.random.default_rng(0)
    m, v = np.zeros(SIZE), np.zeros(SIZE)
    stated = other_way = 0.0
    for t in range(1, STEPS + 1):
        g = scale * rng.normal(size=SIZE)
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        rescaled = EPS * np.sqrt(1 - BETA2 ** t)
        corrected = adam_direction(m, v, t, BETA1, BETA2, EPS, "corrected")
        raw = adam_direction(m, v, t, BETA1, BETA2, EPS, "raw")
        stated = max(stated, max_rel_error(adam_direction(m, v, t, BETA1, BETA2, rescaled, "raw"), corrected))
        other_way = max(other_way, max_rel_error(adam_direction(m, v, t, BETA1, BETA2, rescaled, "corrected"), raw))
    return stated, other_way


if __name__ == "__main__":
    print(f"Adam defaults (β1 {BETA1}, β2 {BETA2}, ε {EPS:g}), {STEPS} steps, {SIZE} coordinates, seed 0")
    print("| gradient std σ | corrected(ε) vs raw(ε·√c2) | raw(ε) vs corrected(ε·√c2) |")
    print("|---|---|---|")
    for scale in SCALES:
        stated, other_way = worst_differences(scale)
        print(f"| {scale:g} | {stated:.1e} | {other_way:.1e} |")

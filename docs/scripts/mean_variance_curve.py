"""Expected metric value of a *random* subset of k i.i.d. gradients, by simulation and in closed form.

Gradients g_i = μ + ε_i, ε_i ~ N(0, σ²/P · I_P). For a random subset of size k:

    E[V] = σ² (k − 1)/k,    E‖ḡ‖² = ‖μ‖² + σ²/k
    mean_variance ≈ σ² (k − 1)/k² / (‖μ‖² + σ²/k)

which is 0 at k = 1, rises, and falls again like σ²/(k‖μ‖²): an interior
*maximum*, not a minimum. Run: python docs/scripts/mean_variance_curve.py
"""
import numpy as np

from dba_ref.metrics import mean_variance
from dba_ref.metrics import subset_stats

P, B, mu_norm2, sigma2, trials = 50, 64, 1.0, 16.0, 400
rng = np.random.default_rng(0)
mu = rng.normal(size=P)
mu *= np.sqrt(mu_norm2) / np.linalg.norm(mu)
print(f"{'k':>4} {'simulated':>10} {'closed form':>12}")
for k in (1, 2, 4, 8, 16, 32, 64):
    vals = []
    for _ in range(trials):
        G = mu + rng.normal(scale=np.sqrt(sigma2 / P), size=(B, P))
        vals.append(mean_variance(*subset_stats(G @ G.T, rng.choice(B, k, replace=False))))
    closed = sigma2 * (k - 1) / k**2 / (mu_norm2 + sigma2 / k)
    print(f"{k:>4} {np.mean(vals):>10.4f} {closed:>12.4f}")

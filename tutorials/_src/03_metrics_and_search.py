# %% [markdown]
# # 3 · The metrics and the search
#
# Notebook 2 gave the Gram matrix $K$ of one layer's per-sample gradients. This notebook turns $K$
# into a decision: **which samples of the batch this layer's update should use**. Two ingredients:
# a *metric* that scores a subset (lower is better), and a *search* that looks for a good subset
# among the $2^B$ possible ones. (Spec §4–§5; the library's versions are `dba_ref/metrics.py` and
# `dba_ref/search.py`.)

# %%
import matplotlib.pyplot as plt
import numpy as np

from dba_ref import MLP, layer_grams, select, sgd
from dba_ref.data import load_dataset, make_split
from dba_ref.metrics import METRIC_NAMES, metric_value, subset_stats
from dba_ref.training import train

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Three numbers summarise a subset
#
# For a subset $S$ of $k = |S|$ samples with gradients $g_i$, everything the metrics need is
#
# $$T = \sum_{i \in S} K[i,i] = \sum_{i\in S} \|g_i\|^2, \qquad
#   Q = \sum_{i, j \in S} K[i,j] = \Big\|\sum_{i\in S} g_i\Big\|^2, \qquad k.$$
#
# The mean gradient of the subset is $\bar g = \frac1k \sum_{i\in S} g_i$, so $\|\bar g\|^2 = Q/k^2$,
# and the (biased) variance of the selected gradients around it is
#
# $$V = \frac1k \sum_{i\in S} \|g_i - \bar g\|^2 = \frac{T}{k} - \|\bar g\|^2 = \frac{T}{k} - \frac{Q}{k^2}.$$
#
# | metric | formula | what it measures |
# | --- | --- | --- |
# | `variance` | $V = T/k - Q/k^2$ | spread of the selected gradients |
# | `normalized_variance` | $V / \|\bar g\|^2 = kT/Q - 1$ | noise-to-signal of *one* sample's gradient |
# | `mean_variance` | $(V/k) / \|\bar g\|^2 = T/Q - 1/k$ | noise-to-signal of the *update*, the mean of $k$ samples |
#
# All three are minimised. A metric with $Q$ in the denominator is $+\infty$ when the selected
# gradients cancel ($Q \le 10^{-12}\, kT$). For a single sample all three are 0, so a search allowed
# down to one sample tends to end there: `min_size`, the smallest subset allowed, defaults to 2.
#
# ## What each metric prefers
#
# A made-up batch in $\mathbb{R}^{40}$ (so that noise is high-dimensional, as it is for real
# gradients): 16 *typical* samples, the signal $\mu = e_1$ plus noise of norm about 1; 5 *noisy*
# samples, the same signal with three times the noise; 3 *opposing* samples, $-\mu$ plus noise.
# A Gram matrix is all `select` needs, so we can hand it $G G^\top$ directly.

# %%
rng = np.random.default_rng(0)
P = 40
mu = np.zeros(P)
mu[0] = 1.0
G = np.vstack([mu + rng.normal(size=(16, P)) / np.sqrt(P),        # typical
               mu + 3 * rng.normal(size=(5, P)) / np.sqrt(P),     # noisy
               -mu + rng.normal(size=(3, P)) / np.sqrt(P)])       # opposing
group = np.array(["typical"] * 16 + ["noisy"] * 5 + ["opposing"] * 3)
K = G @ G.T

T, Q, k = subset_stats(K, np.arange(len(G)))
s = G.sum(axis=0)
print(f"T = {T:.4f} (from G: {np.sum(G ** 2):.4f}),  Q = {Q:.4f} (from G: {s @ s:.4f}),  k = {k}")

selections = {m: select(K, metric=m, strategy="greedy", min_size=2) for m in METRIC_NAMES}
for m, sel in selections.items():
    names, counts = np.unique(group[sel.indices], return_counts=True)
    kept = ", ".join(f"{c} {n}" for n, c in zip(names, counts))
    print(f"{m:>20}: keeps {sel.size:2d} samples ({kept}); metric {sel.trace.full_value:.4f} -> {sel.value:.4f}")

# %% [markdown]
# To draw 40-dimensional gradients, we place each sample by two numbers: its component along the
# batch's mean gradient (the signal) and the length of the rest (the noise).

# %%
direction = s / np.linalg.norm(s)
along = G @ direction
across = np.linalg.norm(G - np.outer(along, direction), axis=1)
markers = {"typical": "o", "noisy": "s", "opposing": "^"}

fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
for ax, (m, sel) in zip(axes, selections.items()):
    kept = np.isin(np.arange(len(G)), sel.indices)
    for name, marker in markers.items():
        mine = group == name
        ax.scatter(along[mine & kept], across[mine & kept], marker=marker, color="C3", label=f"{name}, kept")
        ax.scatter(along[mine & ~kept], across[mine & ~kept], marker=marker, facecolor="none",
                   edgecolor="0.5", label=f"{name}, left out")
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_title(f"{m}: keeps {sel.size}", fontsize=10)
    ax.set_xlabel("component along the mean gradient")
axes[0].set_ylabel("norm of the rest")
axes[2].legend(fontsize=7, loc="upper left")

ax = axes[3]
for m, sel in selections.items():
    sizes = len(G) - np.arange(len(sel.trace.values) + 1)
    path = np.concatenate([[sel.trace.full_value], sel.trace.values]) / sel.trace.full_value
    ax.semilogy(sizes, path, ".-", label=m)
ax.invert_xaxis()
ax.set_xlabel("|S| along the greedy path")
ax.set_ylabel("metric / metric of the full batch")
ax.set_title("the greedy path of each metric", fontsize=10)
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# The printout and the figure show the difference. `variance` and `normalized_variance` only
# measure the spread, and a smaller subset can always be found with a smaller spread: the greedy path
# keeps going down until `min_size` stops it, and what is left is the closest pair. With these
# metrics the update size is set by `min_size` (a count, or a fraction of $B$) and `tol`.
# `mean_variance` divides the spread by $k$ — averaging $k$ samples shrinks the noise of the update
# $k$-fold — so leaving out a typical sample costs more than it gains: here it drops the noisy and
# the opposing samples and keeps the 16 typical ones. It chooses the size by itself, which is why
# it is the default.
#
# ## The greedy search, step by step
#
# With $r_i = \sum_{j\in S} K[i,j] = \langle g_i, s \rangle$, removing sample $i$ from $S$ gives
#
# $$T' = T - K[i,i], \qquad Q' = Q - 2 r_i + K[i,i], \qquad k' = k - 1,$$
#
# so every candidate costs $O(1)$ and a step $O(B)$. Greedy backward elimination starts from the whole
# batch; at each step it finds the removal with the lowest metric (ties: the lowest index), makes it if
# the value is strictly below the current one (`tol = 0`) and $|S| >$ `min_size`, and stops otherwise.
#
# First the update formulas, checked on the first step of the made-up batch:

# %%
r = K.sum(axis=1)
i = 17                                    # any sample
rest = np.delete(np.arange(len(G)), i)
T_rest, Q_rest, _ = subset_stats(K, rest)
print(f"T' = {T - K[i, i]:.10f}   by definition {T_rest:.10f}")
print(f"Q' = {Q - 2 * r[i] + K[i, i]:.10f}   by definition {Q_rest:.10f}")

# %% [markdown]
# Now a small batch to follow by eye: 10 samples of the made-up batch (7 typical, 2 noisy, 1 opposing),
# metric `mean_variance`. `select` returns a trace: the samples removed in order and the metric after
# each removal. Next to it we evaluate, at every step, *every* candidate by definition.

# %%
small = np.r_[0:7, 16:18, 21]
K_small = K[np.ix_(small, small)]
sel = select(K_small, metric="mean_variance", min_size=2)
print("removed, in order:", sel.trace.removed, "  kept:", sel.indices, "  groups kept:", group[small][sel.indices])


def candidates(K, S):
    """Metric of S without i, for every i in S (by definition, from the sub-matrix)."""
    return {i: float(metric_value("mean_variance", *subset_stats(K, [j for j in S if j != i]))) for i in S}


S = list(range(len(small)))
current = sel.trace.full_value
history = []
print(f"\n step |S|  current   best removal (value)    runner-up (value)   decision")
for step in range(len(small) - 2):
    values = candidates(K_small, S)
    order = sorted(values, key=lambda j: (values[j], j))
    best, second = order[0], order[1]
    accept = values[best] < current
    history.append((len(S), current, values, best if accept else None))
    print(f"{step + 1:5d} {len(S):3d} {current:9.5f}   sample {best} ({values[best]:.5f})      "
          f"sample {second} ({values[second]:.5f})   {'remove' if accept else 'stop: no removal lowers it'}")
    if not accept:
        break
    S.remove(best)
    current = values[best]
print("same path as select():", [h[3] for h in history if h[3] is not None] == list(sel.trace.removed))

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for size, current, values, removed in history:
    best = min(values, key=lambda j: (values[j], j))
    others = [v for j, v in values.items() if j != best]
    ax.scatter([size] * len(others), others, color="0.6", s=18, zorder=2)
    ax.scatter([size], [values[best]], s=45, zorder=3, color="C3" if removed is not None else "none",
               edgecolor="C3")
    ax.annotate(f"sample {best}", (size, values[best]), xytext=(0, -13), textcoords="offset points", fontsize=8,
                ha="center")
    ax.hlines(current, size - 0.4, size + 0.4, color="k", lw=2, zorder=1)
ax.invert_xaxis()
ax.set_yscale("log")
ax.margins(y=0.12)
ax.set_xlabel("|S| before the step")
ax.set_ylabel("mean_variance of S without sample i")
ax.set_title("greedy trace: grey = every candidate, red = best (filled: removed, hollow: rejected),\n"
             "black bar = current value", fontsize=9)
ax.grid(alpha=0.3, which="both")
fig.tight_layout()

# %% [markdown]
# A removal is made when the best candidate lies below the black bar. Here the opposing sample goes
# first, then the two noisy ones, then one typical sample by a small margin; at $|S| = 6$ the best
# candidate lies above the bar and the search stops (it would also stop at `min_size`).
#
# ## How good is greedy? Greedy vs prefix vs exhaustive
#
# Greedy is a heuristic; two others help to judge it:
#
# - **prefix** ranks the samples once by their alignment with the batch sum,
#   $c_i = \langle g_i, s\rangle / \|g_i\|$, and keeps the best prefix of that ranking: $B$ subsets
#   evaluated in one $O(B^2)$ pass.
# - **exhaustive** tries every subset of size $\ge$ `min_size`: exact, and possible only for small
#   batches ($2^B$ subsets; `dba_ref` allows $B \le 20$).
#
# On real gradients: the $784 \to 64 \to 10$ network of notebook 2 (three epochs of SGD on 600
# MNIST-5k digits), 50 batches of $B = 14$ held-out digits, both layers: 100 Gram matrices. For each
# metric and strategy we record the metric of the chosen subset; the **optimality gap** of a heuristic
# is its value divided by the exhaustive optimum (1 = optimal).

# %%
split = make_split(load_dataset("mnist5k"), per_class=60, seed=0)
model = MLP([784, 64, 10], seed=0)
train(model, sgd(0.1), split.X_train, split.y_train, epochs=3, batch_size=32, progress=False)

rng = np.random.default_rng(0)
gram_matrices = []
for _ in range(50):
    idx = rng.choice(len(split.y_test), size=14, replace=False)
    gram_matrices += layer_grams(model, split.X_test[idx], split.y_test[idx])

strategies = ("greedy", "prefix", "exhaustive")
results = {m: {s: [select(K, metric=m, strategy=s, min_size=2) for K in gram_matrices] for s in strategies}
           for m in METRIC_NAMES}

print(f"{'metric':>20} {'strategy':>10} | optimal | median gap | worst gap | mean size | subsets evaluated")
for m in METRIC_NAMES:
    best = np.array([sel.value for sel in results[m]["exhaustive"]])
    for s in strategies:
        sels = results[m][s]
        ratio = np.array([sel.value for sel in sels]) / best
        optimal = np.mean(ratio <= 1 + 1e-9)
        print(f"{m:>20} {s:>10} | {optimal:7.0%} | {np.median(ratio):10.3g} | {ratio.max():9.3g} |"
              f" {np.mean([sel.size for sel in sels]):9.2f} | {np.mean([sel.trace.n_evaluated for sel in sels]):9.0f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
for ax, m in zip(axes, METRIC_NAMES):
    best = np.array([sel.value for sel in results[m]["exhaustive"]])
    for s, color in (("greedy", "C0"), ("prefix", "C1")):
        ratio = np.sort(np.array([sel.value for sel in results[m][s]]) / best)
        ax.step(ratio, np.arange(1, ratio.size + 1) / ratio.size, where="post", color=color, label=s)
    full = np.sort([sel.trace.full_value for sel in results[m]["exhaustive"]] / best)
    ax.step(full, np.arange(1, full.size + 1) / full.size, where="post", color="0.6", ls="--",
            label="no selection (full batch)")
    ax.set_xscale("log")
    ax.set_title(m, fontsize=10)
    ax.set_xlabel("metric / exhaustive optimum")
    ax.grid(alpha=0.3, which="both")
axes[0].set_ylabel("fraction of the 100 Gram matrices")
axes[0].legend(fontsize=8)
fig.suptitle("Optimality gap on real gradients (B = 14): further left is better, 1 is optimal", fontsize=10)
fig.tight_layout()

# %% [markdown]
# How to read these: a curve that reaches 1.0 at the left edge is optimal on every batch. The table
# gives the exact numbers: the share of batches where each heuristic found the optimum, the median
# and worst ratio to the optimum, the mean subset size, and the cost in subsets evaluated (greedy
# about $B^2/2$, prefix $B - \text{min\_size} + 1$, exhaustive $2^B$ minus the subsets below
# `min_size`). The dashed curve, the full batch with no selection, puts the gaps in proportion.
#
# For every metric greedy finds the optimum more often than prefix and stays closer to it; prefix,
# which ranks the samples once by their alignment with the batch sum, fits `variance` worst. Greedy
# evaluates about a hundred subsets here, exhaustive over sixteen thousand.
#
# On these small batches of real gradients the optimal subsets are small even for `mean_variance`
# (the "mean size" column): for $k = 2$ its value is small as soon as two samples' gradients nearly
# agree, and among 14 digits such a pair is often there. The training run of notebook 4, with
# batches of 64, shows the sizes greedy keeps there.
#
# ## Your turn: exercises 3 and 4
#
# - `dba-ref exercises start 3` writes `ex3_mean_variance.py`: the metric `mean_variance(T, Q, k)`,
#   with its guard.
# - `dba-ref exercises start 4` writes `ex4_greedy.py`: the greedy search, `greedy_removals(K, min_size)`.
#
# Check them by running them (`python ex3_mean_variance.py`, `python ex4_greedy.py`) or with
# `dba-ref exercises check 3 …` and `dba-ref exercises check 4 …`. The autograder knows the classic
# slips: the unbiased variance ($k - 1$) instead of the biased one, a missing guard, an off-by-one in
# the stop of the greedy loop, a removal on a tie (`<=` where the rule is `<`), a tie broken towards
# the wrong index.

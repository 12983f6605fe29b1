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
# The printout and the figure show the difference. `variance` and `normalized_variance` measure the
# spread of the kept gradients, and on this batch each removal along the greedy path finds a subset
# with a smaller spread: both paths go down until `min_size` stops them, at
# {{selections['variance'].size}} and {{selections['normalized_variance'].size}} samples. With these
# metrics the update size is in practice set by `min_size` (a count, or a fraction of $B$) and by `tol`
# (defined below). `mean_variance` divides the spread by $k$ — averaging $k$ samples shrinks the noise
# of the update $k$-fold — so here leaving out a typical sample costs more than it gains: it drops the
# noisy and the opposing samples and stops at {{selections['mean_variance'].size}} samples, all typical.
#
# So with `mean_variance` the search *can* stop before `min_size`. It does not follow that the metric
# picks "the right size" by itself: where the greedy path stops depends on the batch and on the search,
# and the exact optimum can be much smaller. The next two sections show both: a small batch on which
# greedy stops at a local minimum, and real gradients whose best `mean_variance` subsets are close to
# `min_size` (spec §10.2 corrects the specification's claim that `mean_variance` "has an interior
# optimum"). `mean_variance` is the default for another reason: it scores what the update is made of,
# the mean of the $k$ kept gradients, and it was the best metric on validation in the reproduction
# (`docs/reproduction.md`).
#
# ## The greedy search, step by step
#
# Keep, for every sample $i$ of the batch, $r_i = \sum_{j\in S} K[i,j] = \langle g_i, s \rangle$, its inner
# product with the sum $s$ of the current subset. Removing sample $j$ from $S$ then gives
#
# $$T' = T - K[j,j], \qquad Q' = Q - 2 r_j + K[j,j], \qquad k' = k - 1, \qquad
#   r_i' = r_i - K[i,j] \;\text{ for every } i,$$
#
# the last because sample $j$'s term leaves every sum $r_i$. So the value of every candidate removal
# costs $O(1)$, and a step, the candidates and then the update of all $r_i$ by one column of $K$, $O(B)$.
#
# **Greedy** backward elimination starts from the whole batch. At each step it evaluates every candidate
# removal, takes the one with the lowest metric (ties: the lowest index), and makes it if
# $|S| >$ `min_size` and the new value is below $(1 - \texttt{tol})$ times the current one; otherwise it
# stops. `tol` is the smallest relative improvement worth a removal: with the default `tol = 0` any strict
# decrease is accepted, with `tol = 0.05` a removal must lower the metric by more than 5%, so the search
# stops earlier and keeps more samples.
#
# First the update formulas, checked on the first removal of the made-up batch:

# %%
r = K.sum(axis=1)                         # r_i for S = the whole batch
j = 17                                    # remove any sample
rest = np.delete(np.arange(len(G)), j)
T_rest, Q_rest, _ = subset_stats(K, rest)
print(f"T' = {T - K[j, j]:.10f}   by definition {T_rest:.10f}")
print(f"Q' = {Q - 2 * r[j] + K[j, j]:.10f}   by definition {Q_rest:.10f}")
r_rest = r - K[:, j]                      # r_i' = r_i - K[i, j]
print("r' =", np.allclose(r_rest, K[:, rest].sum(axis=1), rtol=1e-14, atol=0), "(every r_i' against its definition)")

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
# first, then the two noisy ones, then one typical sample by a small margin; at $|S| = {{sel.size}}$ the
# best candidate lies above the bar and the search stops (it would also stop at `min_size`).
#
# Is that stop the best subset? On 10 samples there are only $2^{10}$ subsets: we can score every one,
# and compare the best of each size $k$ with the greedy path.

# %%
from itertools import combinations

best_of_size = {}
for k in range(2, len(small) + 1):
    value, subset = min((float(metric_value("mean_variance", *subset_stats(K_small, list(c)))), c)
                        for c in combinations(range(len(small)), k))
    best_of_size[k] = (value, subset)
greedy_value = dict(zip(len(small) - np.arange(len(sel.trace.values) + 1),
                        np.concatenate([[sel.trace.full_value], sel.trace.values])))
print(f"{'k':>3} | best of size k (subset)              | greedy path at size k")
for k, (value, subset) in best_of_size.items():
    on_path = f"{greedy_value[k]:.5f}" if k in greedy_value else "(not reached)"
    print(f"{k:3d} | {value:.5f} {str(subset):28s} | {on_path}")
exhaustive = select(K_small, metric="mean_variance", strategy="exhaustive", min_size=2)
print(f"\ngreedy keeps {sel.size} samples, mean_variance {sel.value:.5f}; "
      f"exhaustive keeps {exhaustive.indices.tolist()}, mean_variance {exhaustive.value:.5f}")

# %% [markdown]
# Greedy stopped at a **local minimum**: from its {{sel.size}} samples no single removal lowers the value,
# yet the best subset of all, {{exhaustive.indices.tolist()}}, has {{exhaustive.value:.5f}}, below the
# {{sel.value:.5f}} where greedy stopped. To get there greedy would have had to accept removals that
# raise the value: the best subsets of 5, 4 and 3 samples have {{best_of_size[5][0]:.5f}},
# {{best_of_size[4][0]:.5f}} and {{best_of_size[3][0]:.5f}}, all above its stop. The value of the best
# subset of each size is not a smooth function of $k$ with one minimum in the middle: it dips where two
# or three samples happen to agree closely. `strategy="exhaustive"` finds the true optimum, and is
# possible only for small batches.
#
# ## How good is greedy? Greedy vs prefix vs exhaustive
#
# Greedy is a heuristic; three other strategies help to judge it:
#
# - **all** keeps every sample: no selection at all. DBA with `all` is exactly its base optimizer (spec §6;
#   notebook 4 uses it as the control).
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

gaps = {}                                 # (metric, strategy) -> a summary of its 100 selections
print(f"{'metric':>20} {'strategy':>10} | optimal | median gap | worst gap | mean size | subsets evaluated")
for m in METRIC_NAMES:
    best = np.array([sel.value for sel in results[m]["exhaustive"]])
    for s in strategies:
        sels = results[m][s]
        ratio = np.array([sel.value for sel in sels]) / best
        gaps[m, s] = row = {"optimal": np.mean(ratio <= 1 + 1e-9), "median": np.median(ratio), "worst": ratio.max(),
                            "size": np.mean([sel.size for sel in sels]),
                            "evaluated": np.mean([sel.trace.n_evaluated for sel in sels])}
        print(f"{m:>20} {s:>10} | {row['optimal']:7.0%} | {row['median']:10.3g} | {row['worst']:9.3g} |"
              f" {row['size']:9.2f} | {row['evaluated']:9.0f}")

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
# For every metric greedy finds the optimum more often than prefix (for `variance` in
# {{gaps['variance', 'greedy']['optimal']:.0%}} of the batches against
# {{gaps['variance', 'prefix']['optimal']:.0%}}, for `normalized_variance`
# {{gaps['normalized_variance', 'greedy']['optimal']:.0%}} against
# {{gaps['normalized_variance', 'prefix']['optimal']:.0%}}, for `mean_variance`
# {{gaps['mean_variance', 'greedy']['optimal']:.0%}} against {{gaps['mean_variance', 'prefix']['optimal']:.0%}})
# and stays closer to it; prefix, which ranks the samples once by their alignment with the batch sum,
# fits `variance` worst. Greedy evaluates {{gaps['mean_variance', 'greedy']['evaluated']:.0f}} subsets here
# on average, exhaustive {{gaps['mean_variance', 'exhaustive']['evaluated']:,.0f}}.
#
# On these small batches of real gradients the optimal subsets are small even for `mean_variance`: its
# exhaustive optimum keeps {{gaps['mean_variance', 'exhaustive']['size']:.2f}} samples on average, with
# `min_size = 2` (the "mean size" column). For $k = 2$ its value $T/Q - 1/2$ is small as soon as two
# samples' gradients nearly agree, and among 14 digits such a pair is often there. The training run of
# notebook 4, with batches of 64, shows the sizes greedy and prefix keep there.
#
# ## Practise it
#
# In the order of this notebook:
#
# - `dba-ref exercises start mean_variance`: the metric `mean_variance(T, Q, k)`, with its guard;
# - `dba-ref exercises start metrics`: the three metrics, and what each keeps;
# - `dba-ref exercises start greedy_search`: the greedy search with its running $T$, $Q$, $r_i$;
# - `dba-ref exercises start prefix_search` and `dba-ref exercises start exhaustive_search`: the other
#   two strategies;
# - `dba-ref exercises start greedy_not_optimal`: a batch on which greedy stops short of the optimum, as
#   above.
#
# The autograder knows the classic slips: the unbiased variance ($k - 1$) instead of the biased one, a
# missing guard, an off-by-one in the stop of the greedy loop, a removal on a tie (`<=` where the rule is
# `<`), a tie broken towards the wrong index.

# %% [markdown]
# # 6 · DBA and adaptive batch sizes
#
# DBA is not the only method that lets the data decide how many samples go into an update.
# **Adaptive-sampling** methods grow the batch during training: AdAdaGrad and AdAdaGrad-Norm (Lau,
# Liu & Kolar, arXiv:2402.11215, 2024) run AdaGrad (or AdaGrad-Norm) and, after every step, apply the
# **norm test** of Byrd, Chin, Nocedal & Wu (2012) to the batch just used; when its mean gradient is too
# noisy to trust, the next batch is made larger.
#
# The one idea of this notebook: **the norm test and DBA read the same number** — DBA's
# `mean_variance` metric of a whole batch is the norm-test statistic up to the factor $B/(B-1)$ — **and act
# on it in opposite directions**: AdAdaGrad grows the next batch until the statistic is small, DBA keeps
# of the current batch, layer by layer, a subset on which it is lower (where its search stops).
# (`dba_ref.optimizers.adaptive_batch`; `docs/optimizers/adadagrad.md` and `adadagrad_norm.md`.)

# %%
import matplotlib.pyplot as plt
import numpy as np

from dba_ref import (MLP, adadagrad_norm, adagrad_norm, backprop, dba, layer_grams, mean_variance, per_sample_grads,
                     select, sgd)
from dba_ref.backprop import flatten_layer_grads
from dba_ref.data import load_dataset, make_split
from dba_ref.optimizers.adaptive_batch import norm_test
from dba_ref.plots import plot_batch_sizes
from dba_ref.training import train

# %% [markdown]
# ## The norm test
#
# For a batch of $B$ samples with per-sample gradients $g_1, \dots, g_B$ and mean $\bar g$, the norm test
# estimates the variance of a single sample's gradient by the sample covariance (divided by $B - 1$) and
# asks whether the mean of $B$ such gradients is accurate to a fraction $\vartheta$ of its norm:
#
# $$\sigma^2 = \frac{1}{B-1} \sum_{i=1}^B \|g_i - \bar g\|^2, \qquad
#   \text{passes when } \frac{\sigma^2}{B} \le \vartheta^2 \|\bar g\|^2, \qquad
#   \text{else } B_{\text{next}} = \left\lceil \frac{\sigma^2}{\vartheta^2 \|\bar g\|^2} \right\rceil .$$
#
# The norm test reads $g_i$ over **all** the network's parameters at once (every layer's $g_i$ of notebook 2,
# one after the other); DBA reads it one layer at a time. The formulas below hold for any set of
# parameters. The accuracy $\vartheta$ is called `eta` in the code, after the paper; here it is $\vartheta$,
# since $\eta$ is the learning rate throughout this series (notation: `docs/notation.md`).
#
# $\sigma^2 / B$ estimates the variance of the mean $\bar g$, so the **statistic**
# $\sigma^2 / (B\,\|\bar g\|^2)$ is the noise-to-signal ratio of the update; the test passes when it is at
# most $\vartheta^2$, and otherwise asks for the batch size at which it would be. (The batch never shrinks.)
#
# ## The same number as `mean_variance`
#
# DBA's metrics are built from $T = \sum_i \|g_i\|^2$ and $Q = \|\sum_i g_i\|^2 = B^2 \|\bar g\|^2$
# (spec §4). Since $\sum_i \|g_i - \bar g\|^2 = T - B\|\bar g\|^2 = T - Q/B$,
#
# $$\frac{\sigma^2}{B\,\|\bar g\|^2} = \frac{T - Q/B}{(B-1)\, B\, Q / B^2}
#   = \frac{B}{B-1}\left(\frac{T}{Q} - \frac{1}{B}\right) = \frac{B}{B-1}\; \texttt{mean\_variance}(T, Q, B).$$
#
# The factor $B/(B-1)$ is the whole difference: the norm test uses the unbiased (sample) covariance,
# DBA's metrics the biased one (the mean over the selected samples, spec §4). $T$ is the trace of the
# Gram matrix and $Q$ the sum of its entries, so with the Gram identity the test needs no per-sample
# gradient either; over the whole network, $T$ and $Q$ are the sums of the layers' $T_l$ and $Q_l$.
#
# Three ways to compute the statistic, on a batch of 32 MNIST-5k digits and a $784 \to 128 \to 10$
# network trained for two epochs with SGD:
#
# 1. **explicitly**: every per-sample gradient of the network materialised as one row of $G$
#    ($32 \times 101{,}770$), then `np.var(G, axis=0, ddof=1)` summed over the parameters;
# 2. `dba_ref.optimizers.adaptive_batch.norm_test`, what AdAdaGrad runs (diagonal of the Gram identity
#    and the mean gradient);
# 3. from the layers' Gram matrices: $\frac{B}{B-1}\,$`mean_variance`$(\sum_l T_l, \sum_l Q_l, B)$.

# %%
split = make_split(load_dataset("mnist5k"), per_class=60, seed=0)
model = MLP([784, 128, 10], seed=0)
train(model, sgd(0.1), split.X_train, split.y_train, epochs=2, batch_size=32, progress=False)
rng = np.random.default_rng(0)
batch = rng.choice(len(split.y_test), size=32, replace=False)
X, y = split.X_test[batch], split.y_test[batch]
B = len(y)

G = np.hstack([flatten_layer_grads(gW, gb) for gW, gb in per_sample_grads(model, X, y)])   # (B, P)
explicit = np.var(G, axis=0, ddof=1).sum() / (B * np.sum(G.mean(axis=0) ** 2))
library = norm_test(backprop(model, X, y), eta=1.0).statistic
grams = layer_grams(model, X, y)
T, Q = sum(np.trace(K) for K in grams), sum(K.sum() for K in grams)
from_gram = B / (B - 1) * mean_variance(T, Q, B)

print(f"G is {G.shape}")
print(f"norm-test statistic, explicit         {explicit:.15f}")
print(f"norm-test statistic, norm_test()      {library:.15f}   relative difference {abs(library / explicit - 1):.1e}")
print(f"B/(B-1) x mean_variance(T, Q, B)      {from_gram:.15f}   relative difference {abs(from_gram / explicit - 1):.1e}")
print(f"mean_variance(T, Q, B) alone          {mean_variance(T, Q, B):.15f}   ratio {explicit / mean_variance(T, Q, B):.6f}"
      f" = B/(B-1) = {B / (B - 1):.6f}")

# %% [markdown]
# The three agree to rounding, and `mean_variance` alone is smaller by exactly $(B-1)/B$. DBA works
# **layer by layer**: its metric for layer $l$ and a subset of $k$ samples is `mean_variance`$(T_l, Q_l, k)$,
# from that layer's Gram matrix. For the whole batch ($k = B$) it is the norm statistic of that layer's
# parameters alone, divided by $B/(B-1)$. The metric DBA computes for each layer's whole batch before
# removing anything (`select(K_l).trace.full_value`), times $B/(B-1)$, against the norm test on that layer's
# parameters:

# %%
print(f"{'layer':>5} | {'norm statistic, explicit':>24} | {'B/(B-1) x DBA full-batch mean_variance':>38} | rel. diff.")
for l, ((gW, gb), K) in enumerate(zip(per_sample_grads(model, X, y), grams), 1):
    G_l = flatten_layer_grads(gW, gb)
    stat_l = np.var(G_l, axis=0, ddof=1).sum() / (B * np.sum(G_l.mean(axis=0) ** 2))
    dba_l = B / (B - 1) * select(K).trace.full_value        # DBA's metric of the whole batch, layer l
    print(f"{l:5d} | {stat_l:24.12f} | {dba_l:38.12f} | {abs(dba_l / stat_l - 1):.1e}")

# %% [markdown]
# The factor $B/(B-1)$ matters for small batches and vanishes for large ones. Over many batches of
# every size from 2 to 64, the ratio of the norm statistic (explicit, whole network) to
# `mean_variance` lies exactly on the curve $B/(B-1)$:

# %%
ratios = []
for size in [2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64]:
    for _ in range(4):
        idx = rng.choice(len(split.y_test), size=size, replace=False)
        G = np.hstack([flatten_layer_grads(gW, gb) for gW, gb in per_sample_grads(model, split.X_test[idx],
                                                                                  split.y_test[idx])])
        statistic = np.var(G, axis=0, ddof=1).sum() / (size * np.sum(G.mean(axis=0) ** 2))
        batch_grams = layer_grams(model, split.X_test[idx], split.y_test[idx])
        mv = mean_variance(sum(np.trace(K) for K in batch_grams), sum(K.sum() for K in batch_grams), size)
        ratios.append((size, statistic / mv))
ratios = np.array(ratios)
deviation = np.abs(ratios[:, 1] / (ratios[:, 0] / (ratios[:, 0] - 1)) - 1)
print(f"{len(ratios)} batches; largest relative deviation of statistic / mean_variance from B/(B-1): "
      f"{deviation.max():.1e}")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
grid = np.arange(2, 65)
ax.plot(grid, grid / (grid - 1), color="0.5", lw=1, label="B / (B − 1)")
ax.plot(ratios[:, 0], ratios[:, 1], "o", ms=6, mfc="none", color="C3",
        label="norm statistic / mean_variance, one batch")
ax.set_xscale("log", base=2)
ax.set_xticks([2, 4, 8, 16, 32, 64], ["2", "4", "8", "16", "32", "64"])
ax.set_xlabel("batch size B")
ax.set_ylabel("ratio")
ax.set_title("The norm-test statistic is B/(B − 1) times DBA's mean_variance", fontsize=10)
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## Side by side on MNIST-5k
#
# Same data as notebook 4 (60 training digits per class, the other 4,400 for testing), the same
# $784 \to 128 \to 10$ network, 20 epochs, and the same base update for all: **AdaGrad-Norm**, one
# scalar step size $\eta/\rho_t$ for all parameters, with $\rho_t^2$ the running sum of the squared norms
# of the gradients it has received, at its default learning rate $\eta = 1$. Four runs:
#
# - **AdaGrad-Norm**, batches of 64 throughout (the baseline);
# - **AdAdaGrad-Norm**, starting from batches of 8 and growing them with the norm test, with
#   $\vartheta = 0.5$ and with $\vartheta = 1$ (smaller is stricter);
# - **DBA(AdaGrad-Norm)**, batches of 64, each layer updated with the mean over its selected subset
#   (defaults: `mean_variance`, greedy, `min_size = 2`).
#
# An epoch is one pass over the 600 training digits whatever the batch size, so the runs with larger
# batches take fewer steps.

# %%
runs = {
    "AdaGrad-Norm, B = 64": (adagrad_norm(), 64),
    "AdAdaGrad-Norm, ϑ = 0.5": (adadagrad_norm(eta=0.5), 8),
    "AdAdaGrad-Norm, ϑ = 1": (adadagrad_norm(eta=1.0), 8),
    "DBA(AdaGrad-Norm), B = 64": (dba(adagrad_norm()), 64),
}
histories = {}
for name, (optimizer, batch_size) in runs.items():
    histories[name] = train(MLP([784, 128, 10], seed=0), optimizer, split.X_train, split.y_train, split.X_test,
                            split.y_test, epochs=20, batch_size=batch_size, seed=0, progress=False)

print(f"{'run':>26} | steps | first batch | largest batch | test accuracy")
n_steps, largest, accuracy = {}, {}, {}
for name, h in histories.items():
    sizes = h.steps["batch_size"]
    n_steps[name], largest[name], accuracy[name] = len(sizes), max(sizes), h.final["test_acc"]
    print(f"{name:>26} | {len(sizes):5d} | {sizes[0]:11d} | {max(sizes):13d} | {h.final['test_acc']:.2%}")

# %%
fig, (ax_ada, ax_dba) = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for name, color in (("AdAdaGrad-Norm, ϑ = 0.5", "C0"), ("AdAdaGrad-Norm, ϑ = 1", "C1")):
    plot_batch_sizes(ax_ada, histories[name], x="epoch", label=name, color=color)
ax_ada.axhline(len(split.y_train), color="0.5", ls=":", lw=1, label="the whole training set (600)")
ax_ada.set_title("AdAdaGrad-Norm: the size of each batch (the norm test grows it)", fontsize=10)
ax_ada.legend(fontsize=8, loc="lower right")

h = histories["DBA(AdaGrad-Norm), B = 64"]
batch_sizes = np.array(h.steps["batch_size"])
epoch_position = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]]) / len(split.y_train)
ax_dba.step(epoch_position, batch_sizes, where="post", color="0.5", lw=1, label="batch size (64; 24 at each epoch's end)")
for layer, sizes in enumerate(h.steps["selected"]):
    ax_dba.plot(epoch_position, sizes, ".", ms=3, color=f"C{layer + 2}", alpha=0.6)
    smooth = np.convolve(sizes, np.ones(15) / 15, mode="valid")
    ax_dba.plot(epoch_position[7:-7], smooth, color=f"C{layer + 2}", lw=2, label=f"layer {layer + 1}: samples kept (15-step mean)")
ax_dba.set_yscale("log")
ax_dba.set_xlabel("epoch (samples seen / training-set size)")
ax_dba.set_title("DBA(AdaGrad-Norm): samples each layer keeps of each batch", fontsize=10)
ax_dba.grid(alpha=0.3, which="both")
ax_dba.legend(fontsize=8, loc="lower right")
fig.tight_layout()

full = batch_sizes == 64
first, last = epoch_position < 2, epoch_position >= 18
kept_first = [np.mean(np.array(sizes)[full & first]) for sizes in h.steps["selected"]]
kept_last = [np.mean(np.array(sizes)[full & last]) for sizes in h.steps["selected"]]
print("DBA(AdaGrad-Norm): mean samples kept of a batch of 64, first 2 epochs → last 2 epochs:",
      ", ".join(f"layer {layer + 1} {a:.1f} → {b:.1f}" for layer, (a, b) in enumerate(zip(kept_first, kept_last))))

# %% [markdown]
# The two schemes move the number of samples behind an update in opposite directions:
#
# - **AdAdaGrad-Norm** starts at 8 and the norm test fails again and again. With $\vartheta = 0.5$ the
#   batch grows to {{largest['AdAdaGrad-Norm, ϑ = 0.5']}} samples (the whole training set has 600), and the
#   run makes only {{n_steps['AdAdaGrad-Norm, ϑ = 0.5']}} steps in 20 epochs; with $\vartheta = 1$, a looser
#   test, the batch grows more slowly, to {{largest['AdAdaGrad-Norm, ϑ = 1']}} at most, in
#   {{n_steps['AdAdaGrad-Norm, ϑ = 1']}} steps. The batch never shrinks. (The dots are the truncated last
#   batches of epochs.)
# - **DBA** keeps the batch at 64 and shrinks what each layer uses: on average
#   {{min(kept_first):.1f}} to {{max(kept_first):.1f}} samples in the first two epochs and
#   {{min(kept_last):.1f}} to {{max(kept_last):.1f}} in the last two (the line above the figure), each layer
#   deciding for itself at every step.
#
# The accuracies are those of one untuned run (default learning rate, one seed, 20 epochs): AdaGrad-Norm
# with fixed batches reaches {{accuracy['AdaGrad-Norm, B = 64']:.1%}}, AdAdaGrad-Norm
# {{accuracy['AdAdaGrad-Norm, ϑ = 0.5']:.1%}} and {{accuracy['AdAdaGrad-Norm, ϑ = 1']:.1%}}, DBA(AdaGrad-Norm)
# {{accuracy['DBA(AdaGrad-Norm), B = 64']:.1%}}. This is not a benchmark: notebook 5 shows how much the
# learning rate and the budget decide such a comparison; for tuned learning rates over three seeds see
# `docs/optimizers/comparison.md`.
#
# ## Same statistic, two decisions
#
# Along the DBA run, the history records for every step and layer the `mean_variance` of the full batch
# and of the selected subset. Multiplied by $B/(B-1)$ (and $k/(k-1)$ for a subset of $k$), these are
# the norm-test statistics of that layer: what the norm test would have said about each batch, and about
# what DBA kept of it.

# %%
steps = h.steps
fig, ax = plt.subplots(figsize=(9, 4))
print(f"DBA(AdaGrad-Norm), {len(batch_sizes)} steps; the norm test on one layer's parameters:")
print(f"{'layer':>5} | {'':>15} | passes at ϑ = 0.5 | at ϑ = 1 | median statistic | median σ²/(ϑ² ‖ḡ‖²), the size"
      f" it asks for: ϑ = 0.5 | ϑ = 1")
test = {}                                     # (layer, "full batch" | "selected subset") -> what the table prints
for layer in range(2):
    k = np.array(steps["selected"][layer])
    full_statistic = batch_sizes / (batch_sizes - 1) * np.array(steps["full_metric"][layer])
    kept_statistic = k / (k - 1) * np.array(steps["selected_metric"][layer])
    for label, statistic, n, style in (("full batch", full_statistic, batch_sizes, "--"),
                                       ("selected subset", kept_statistic, k, "-")):
        asks = n * statistic                                  # σ²/‖ḡ‖²: the size that makes the statistic 1
        test[layer + 1, label] = row = {"pass_half": np.mean(statistic <= 0.25), "pass_one": np.mean(statistic <= 1),
                                        "median": np.median(statistic), "asks_half": np.median(asks / 0.25),
                                        "asks_one": np.median(asks)}
        print(f"{layer + 1:5d} | {label:>15} | {row['pass_half']:16.0%} | {row['pass_one']:8.0%} |"
              f" {row['median']:16.3f} | {row['asks_half']:53.0f} | {row['asks_one']:5.0f}")
        ax.semilogy(epoch_position, statistic, style, color=f"C{layer + 2}", lw=0.6, alpha=0.35)
        ax.semilogy(epoch_position[7:-7], np.convolve(statistic, np.ones(15) / 15, mode="valid"), style,
                    color=f"C{layer + 2}", lw=2, label=f"layer {layer + 1}, {label} (15-step mean)")
for accuracy_bound in (0.5, 1.0):
    ax.axhline(accuracy_bound ** 2, color="k", lw=1, ls=":")
    ax.annotate(f"ϑ² for ϑ = {accuracy_bound:g}", (0, accuracy_bound ** 2), xytext=(2, 3), textcoords="offset points", fontsize=8,
                backgroundcolor="w")
ax.set_xlabel("epoch")
ax.set_ylabel("norm-test statistic  σ² / (B ‖ḡ‖²)")
ax.set_title("DBA(AdaGrad-Norm): each layer's norm statistic, of the full batch and of the subset DBA keeps",
             fontsize=10)
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8, ncol=2, loc="lower right")
fig.tight_layout()

# %% [markdown]
# Read the figure with the table:
#
# - **The full batch.** Each layer's statistic mostly lies between $\vartheta^2 = 0.25$ and 1: a batch of 64
#   passes the test with $\vartheta = 1$ at {{test[1, 'full batch']['pass_one']:.0%}} (layer 1) and
#   {{test[2, 'full batch']['pass_one']:.0%}} (layer 2) of the steps, and with $\vartheta = 0.5$ at
#   {{test[1, 'full batch']['pass_half']:.0%}} and {{test[2, 'full batch']['pass_half']:.0%}}; there it asks
#   for a median of {{test[1, 'full batch']['asks_half']:.0f}} and {{test[2, 'full batch']['asks_half']:.0f}}
#   samples. This is the sampling noise that AdAdaGrad-Norm answers by growing the batch, in line with its
#   runs above (a different trajectory, the same kind of numbers): at $\vartheta = 0.5$ its batch grew much
#   faster than at $\vartheta = 1$.
# - **The selected subset.** DBA's greedy search removes samples as long as `mean_variance` falls, so
#   what it keeps has a much smaller statistic — medians {{test[1, 'selected subset']['median']:.3f}} and
#   {{test[2, 'selected subset']['median']:.3f}} against {{test[1, 'full batch']['median']:.3f}} and
#   {{test[2, 'full batch']['median']:.3f}} for the full batch — and would pass the $\vartheta = 0.5$ test at
#   {{test[1, 'selected subset']['pass_half']:.0%}} and {{test[2, 'selected subset']['pass_half']:.0%}} of
#   the steps, although it holds fewer samples than the full batch.
#
# That last point is where the two methods differ in kind. The norm test assumes that the $B$ samples
# were drawn at random: then $\sigma^2 / B$ estimates the variance of their mean around the gradient of
# the loss over the data, and a small statistic means the update can be trusted. A subset *chosen* to
# make the statistic small is not a random sample: its statistic measures how well its samples agree
# with each other, not how close their mean is to the full gradient. Run on DBA's selection, the norm
# test would look good by construction and say nothing — one reason `dba(adadagrad_norm())` is refused
# (`docs/optimizers/adadagrad.md`). The same number answers two different questions: AdAdaGrad asks how
# many random samples make the mean gradient reliable; DBA asks which of the samples at hand agree well
# enough to be averaged.
#
# To explore: change $\vartheta$ of AdAdaGrad-Norm (`eta=`), its initial batch size, or DBA's `min_size` and metric
# (`dba(adagrad_norm(), metric="variance", min_size=0.25)`), and watch both figures. From the shell,
# `dba-ref train --optimizer adadagrad_norm --batch-size 8 --hparam eta=0.5` trains the same way and plots
# the batch size over training.
#
# ## Practise it
#
# `dba-ref exercises start norm_test`: the norm test's statistic and the batch size it asks for, from the
# per-sample signals — and, with the identity of this notebook, from `mean_variance`.

# %% [markdown]
# # 4 · Training with DBA on MNIST-5k
#
# Notebooks 1–3 built the pieces: per-sample error signals, the Gram matrix of each layer, a metric
# and a search. Put together, they are an optimizer: for every layer separately, DBA keeps the
# selected samples $S_l$ of the batch and hands their mean gradient to a base optimizer,
#
# $$\bar g_l = \frac{1}{|S_l|} \sum_{i \in S_l} g_i = \frac{1}{|S_l|}\, \Delta_{S_l}^\top [A_{S_l}, 1],$$
#
# a masked matrix product: no per-sample gradient is needed for the update either. "DBA(SGD)" is SGD
# fed with $\bar g_l$ in place of the batch mean: its step is $\theta_l \leftarrow \theta_l - \eta\, \bar g_l$,
# with $\eta$ the learning rate and $\theta_l = (W_l, b_l)$. "DBA(Adam)" is Adam fed with $\bar g_l$. In
# general the base optimizer returns an update $u_l$ and $\theta_l \leftarrow \theta_l + u_l$. This notebook
# takes one DBA step apart, then trains a one-hidden-layer network on a small slice of MNIST with SGD,
# Adam, DBA(SGD) and DBA(Adam) and follows **how many samples each layer keeps** over training. (Spec §6;
# the library's version is `dba_ref/optimizers/dba.py`, the loop `dba_ref/training/`.)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from dba_ref import MLP, adam, batch_grads, dba, dba_step, sgd
from dba_ref.data import load_dataset, make_split
from dba_ref.reproduction.protocol import PAPER       # the numbers of the paper's abstract
from dba_ref.training import train

# %% [markdown]
# ## One step, taken apart
#
# `dba_step(model, X, y, base)` does one DBA step on one batch and returns every intermediate: each
# layer's selection, the mean gradients $\bar g_l$, the base optimizer's updates $u_l$ and the new
# parameters (the model itself is not changed). On a batch of 64 digits, for an untrained
# $784 \to 128 \to 10$ network:

# %%
data = load_dataset("mnist5k")
split = make_split(data, per_class=60, seed=0)
batch = np.random.default_rng(0).permutation(len(split.y_train))[:64]
X, y = split.X_train[batch], split.y_train[batch]
model = MLP([784, 128, 10], seed=0)

step = dba_step(model, X, y, sgd(0.1))
for l, sel in enumerate(step.selections, start=1):
    print(f"layer {l} keeps {sel.size:2d} of {len(y)}: {sel.indices.tolist()}")
both = np.intersect1d(*[sel.indices for sel in step.selections])
print(f"kept by both layers: {both.size} samples")
gW, gb = step.grads[0]
W_new = step.params[0][0]
print("layer 1 after the step is W1 - 0.1 * mean gradient over its kept samples:",
      np.array_equal(W_new, model.params[0][0] - 0.1 * gW))

plain = dba_step(model, X, y, sgd(0.1), strategy="all")      # no selection: every layer keeps the batch
print("with strategy='all', DBA(SGD) is SGD: the same mean gradient as the batch's, bit for bit:",
      all(np.array_equal(a, b) for mean, ref in zip(plain.grads, batch_grads(model, X, y)) for a, b in zip(mean, ref)))

# %% [markdown]
# Each layer runs its own search on its own Gram matrix, so the two layers keep different subsets
# ({{step.selections[0].size}} and {{step.selections[1].size}} samples here, {{both.size}} of them in
# both): the network's update is not the gradient of any single subset of the batch. With
# `strategy="all"` (notebook 3) nothing is removed and DBA is exactly its base optimizer; that is the
# control a comparison needs.

# %% [markdown]
# ## The setting
#
# - **Data**: MNIST-5k, 5,000 real MNIST digits bundled with the package. The training set is a
#   stratified draw of 60 digits per class (600 images, the size of the paper's "1% of MNIST"
#   regime); the other 4,400 are the test set.
# - **Model**: $784 \to 128 \to 10$, ReLU, the same initialisation for every optimizer.
# - **Optimizers**: SGD ($\eta = 0.1$), Adam ($\eta = 10^{-3}$), and DBA around each with the
#   defaults: metric `mean_variance`, greedy search, `min_size = 2`.
# - **Budget**: 20 epochs of batches of 64 (the last batch of an epoch has 24 images), the same batch
#   order for every optimizer; 3 seeds (the seed sets the training draw, the initialisation and the
#   order).
#
# The learning rates are the usual defaults, not tuned for any of the four.

# %%
optimizers = {
    "SGD": lambda: sgd(0.1),
    "Adam": lambda: adam(1e-3),
    "DBA(SGD)": lambda: dba(sgd(0.1)),
    "DBA(Adam)": lambda: dba(adam(1e-3)),
}
seeds = [0, 1, 2]
histories = {}
started = time.perf_counter()
for seed in seeds:
    split = make_split(data, per_class=60, seed=seed)
    for name, make in optimizers.items():
        model = MLP([784, 128, 10], seed=seed)
        histories[name, seed] = train(model, make(), split.X_train, split.y_train, split.X_test, split.y_test,
                                      epochs=20, batch_size=64, seed=seed, progress=False)
print(f"{len(split.y_train)} training and {len(split.y_test)} test images; "
      f"{len(histories)} runs in {time.perf_counter() - started:.0f} s")

print(f"\n{'optimizer':>10} | final test accuracy | final train loss | seconds per run")
final = {}                                # optimizer -> mean test accuracy and training loss over the seeds
for name in optimizers:
    acc = np.array([histories[name, s].final["test_acc"] for s in seeds])
    loss = np.array([histories[name, s].final["train_loss"] for s in seeds])
    secs = np.mean([histories[name, s].final["seconds"] for s in seeds])
    final[name] = {"acc": acc.mean(), "loss": loss.mean()}
    print(f"{name:>10} | {acc.mean():.2%} ± {acc.std(ddof=1):.2%}      | {loss.mean():.3f} ± {loss.std(ddof=1):.3f}"
          f"    | {secs:.1f}")

# %% [markdown]
# (mean ± standard deviation over the 3 seeds)
#
# ## Learning curves

# %%
def curve(name, key):
    """Mean, lowest and highest value over the seeds, per epoch."""
    values = np.array([[row[key] for row in histories[name, s].epochs] for s in seeds])
    return values.mean(axis=0), values.min(axis=0), values.max(axis=0)


epochs = [row["epoch"] for row in histories["SGD", 0].epochs]
colors = {"SGD": "C0", "Adam": "C1", "DBA(SGD)": "C2", "DBA(Adam)": "C3"}
fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 3.8))
for name, color in colors.items():
    for ax, key in ((ax_acc, "test_acc"), (ax_loss, "train_loss")):
        mean, low, high = curve(name, key)
        ax.plot(epochs, mean, color=color, label=name, ls="--" if name.startswith("DBA") else "-")
        ax.fill_between(epochs, low, high, color=color, alpha=0.15)
ax_acc.set_ylabel("test accuracy (4,400 images)")
ax_acc.set_ylim(0.5, 1.0)
ax_loss.set_ylabel("training loss (mean cross-entropy)")
ax_loss.set_yscale("log")
for ax in (ax_acc, ax_loss):
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
fig.suptitle("MNIST-5k, 60 training digits per class, 784→128→10 (line: mean of 3 seeds; band: their range)",
             fontsize=10)
fig.tight_layout()

# %% [markdown]
# ## How many samples does each layer keep?
#
# The training history records, for every step and every layer, the size of the selected subset and
# the metric of the full batch and of the selection. Seed 0:

# %%
def smooth(x, width=15):
    return np.convolve(x, np.ones(width) / width, mode="valid")


fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for ax, name in zip(axes[:2], ("DBA(SGD)", "DBA(Adam)")):
    steps = histories[name, 0].steps
    ax.axhline(64, color="0.6", lw=1, ls=":", label="batch size (last of each epoch: 24)")
    for layer, sizes in enumerate(steps["selected"]):
        ax.plot(sizes, color=f"C{layer}", lw=0.5, alpha=0.35)
        ax.plot(np.arange(len(smooth(sizes))) + 7, smooth(sizes), color=f"C{layer}", lw=2,
                label=f"layer {layer + 1} (15-step mean)")
    ax.set_ylim(0, 70)
    ax.set_xlabel("step")
    ax.set_ylabel("samples kept")
    ax.set_title(f"{name}: selected batch size per layer", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")

ax = axes[2]
steps = histories["DBA(SGD)", 0].steps
for layer in range(2):
    ax.semilogy(smooth(steps["full_metric"][layer]), color=f"C{layer}", ls="--", label=f"layer {layer + 1}, full batch")
    ax.semilogy(smooth(steps["selected_metric"][layer]), color=f"C{layer}", label=f"layer {layer + 1}, selected")
ax.set_xlabel("step")
ax.set_ylabel("mean_variance (15-step mean)")
ax.set_title("DBA(SGD): the metric before and after selection", fontsize=10)
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
fig.tight_layout()

print("mean samples kept per step, over 3 seeds (full batches of 64 only):")
print(f"{'optimizer':>10} | {'layer':>5} | first 2 epochs | last 2 epochs | all steps")
kept = {}                                 # (optimizer, layer) -> mean samples kept: first 2 epochs, last 2, all
for name in ("DBA(SGD)", "DBA(Adam)"):
    for layer in range(2):
        runs = [np.array(histories[name, seed].steps["selected"][layer]) for seed in seeds]
        full = [np.array(histories[name, seed].steps["batch_size"]) == 64 for seed in seeds]
        first = np.mean([r[:20][f[:20]].mean() for r, f in zip(runs, full)])
        last = np.mean([r[-20:][f[-20:]].mean() for r, f in zip(runs, full)])
        overall = np.mean([r[f].mean() for r, f in zip(runs, full)])
        kept[name, layer + 1] = (first, last, overall)
        print(f"{name:>10} | {layer + 1:5d} | {first:14.1f} | {last:13.1f} | {overall:9.1f}")
first_two = [kept[key][0] for key in kept]
last_two = [kept[key][1] for key in kept]
full_metric = np.array(histories["DBA(SGD)", 0].steps["full_metric"])        # (layers, steps), the third panel
selected_metric = np.array(histories["DBA(SGD)", 0].steps["selected_metric"])
print(f"DBA(SGD), seed 0, mean_variance averaged over layers and 20 steps: full batch "
      f"{full_metric[:, :20].mean():.2f} (first steps) -> {full_metric[:, -20:].mean():.2f} (last steps); "
      f"selected {selected_metric[:, :20].mean():.2f} -> {selected_metric[:, -20:].mean():.2f}")

# %% [markdown]
# ## What this run shows, and what it does not
#
# Every number below is read off the tables and figures above.
#
# - **Selected batch size.** Each layer decides for itself, every step: the sizes of layer 1 and
#   layer 2 differ from each other and from step to step. No size is set in advance — `min_size = 2` is
#   only a floor — and none is chosen by the metric alone: each layer keeps what is left where its greedy
#   path stops (which notebook 3 showed can be a local minimum). In this run the layers keep
#   {{min(first_two):.1f}} to {{max(first_two):.1f}} of the 64 samples on average in the first two epochs and
#   {{min(last_two):.1f}} to {{max(last_two):.1f}} in the last two (the table): the selection gets stricter
#   as training goes on.
# - **The metric before and after selection.** The third panel shows the `mean_variance` of the whole
#   batch (dashed; {{full_metric[:, :20].mean():.2f}} on average over the first 20 steps,
#   {{full_metric[:, -20:].mean():.2f}} over the last 20) and that of the kept samples (solid). That the
#   selected curve lies below is no finding: greedy only accepts removals that lower the metric, so it lies
#   below by construction. It says how far the search could lower the metric, not that the updates are
#   better; whether they are is a question for the accuracy curves.
# - **Accuracy.** In this run DBA trails its base optimizers: DBA(SGD) reaches
#   {{final['DBA(SGD)']['acc']:.1%}} against SGD's {{final['SGD']['acc']:.1%}}, DBA(Adam)
#   {{final['DBA(Adam)']['acc']:.1%}} against Adam's {{final['Adam']['acc']:.1%}}, and both fit the training
#   set more slowly (higher training loss); DBA(SGD) also varies most from seed to seed (the widest band).
#
# Two choices of this run favour the base optimizers. DBA ran at its base optimizer's learning rate,
# while the rate that suits DBA is not its base's (an update averaged over a handful of samples is not an
# update averaged over 64); and 20 epochs are short. Notebook 5 takes both apart: why DBA should help at
# all, what the selection does to each update, a regime in which DBA is ahead of its base optimizer and by
# how much, where it is not, and what a step costs. (The paper reports {{PAPER[60]['dba']}}% test accuracy on 1% of
# MNIST for DBA; this notebook is not that experiment, and notebook 5 gives the reproduction's numbers.)
#
# To explore, change one thing at a time in the cells above: the learning rate of DBA(SGD), the metric
# (`dba(sgd(0.1), metric="variance", min_size=0.25)`), the batch size, the number of epochs. The command
# line runs DBA training outside a notebook and writes the history and a figure (without `--no-compare`
# it also trains the base optimizer alone on the same batches, for comparison):
#
# ```
# dba-ref train --optimizer dba --base sgd --lr 0.1 --epochs 20 --per-class 60 --hidden 128 --strategy greedy --no-compare
# ```
#
# ## Practise it
#
# `dba-ref exercises start dba_update`: the DBA update of every layer — its Gram matrix, its search, the
# mean over the samples it keeps — from a batch's per-sample signals; with `strategy="all"` it must give
# the batch-mean gradient.

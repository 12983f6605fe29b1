"""The home page's figure: one DBA step on one batch of MNIST-5k, layer by layer.

    python docs/scripts/dba_step_figure.py          # writes docs/_static/dba_step.png

A 784-256-10 ReLU network is trained for 2 epochs with SGD (60 digits per class,
seed 0), then DBA's default selection (``mean_variance``, greedy, ``min_size=2``)
is run on the Gram matrix of each layer for one shuffled batch of 64 digits.
Left: the per-sample gradients of the output layer, projected on their two
principal directions, the samples the search keeps in colour, and the two
candidate update directions (the batch mean and the mean over the kept samples).
Right: the metric along each layer's greedy path as samples are removed, and
where each search stops.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dba_ref import MLP, layer_grams, per_sample_grads, select, sgd  # noqa: E402
from dba_ref.backprop import flatten_layer_grads  # noqa: E402
from dba_ref.data import load_dataset, make_split  # noqa: E402
from dba_ref.training import train  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "_static" / "dba_step.png"
BATCH, SEED = 64, 0


def main() -> None:
    split = make_split(load_dataset("mnist5k"), per_class=60, seed=SEED)
    model = MLP([784, 256, 10], activation="relu", seed=SEED)
    train(model, sgd(0.1), split.X_train, split.y_train, epochs=2, batch_size=BATCH, seed=SEED, progress=False)
    batch = np.random.default_rng(SEED).permutation(len(split.y_train))[:BATCH]
    X, y = split.X_train[batch], split.y_train[batch]

    selections = [select(K, metric="mean_variance", strategy="greedy", min_size=2) for K in layer_grams(model, X, y)]

    G = flatten_layer_grads(*per_sample_grads(model, X, y)[-1])          # (B, P) of the output layer
    kept = np.zeros(BATCH, bool)
    kept[selections[-1].indices] = True
    centred = G - G.mean(axis=0)
    _, _, Vt = np.linalg.svd(centred, full_matrices=False)
    P = G @ Vt[:2].T                                                   # (B, 2) coordinates

    fig, (ax_g, ax_m) = plt.subplots(1, 2, figsize=(11, 4.8), constrained_layout=True)
    ax_g.scatter(*P[~kept].T, s=18, color="0.7", label=f"removed ({(~kept).sum()})")
    ax_g.scatter(*P[kept].T, s=30, color="C3", label=f"kept ({kept.sum()})")
    for mean, colour, label in ((P.mean(axis=0), "0.2", "batch mean"),
                                (P[kept].mean(axis=0), "C3", "mean over the kept samples (DBA's update)")):
        ax_g.annotate("", xy=mean, xytext=(0, 0), arrowprops=dict(arrowstyle="->", lw=2, color=colour))
        ax_g.plot([], [], color=colour, lw=2, label=label)
    ax_g.axhline(0, color="0.9", lw=0.8, zorder=0)
    ax_g.axvline(0, color="0.9", lw=0.8, zorder=0)
    ax_g.set(title="Output layer: one gradient per sample", xlabel="first principal direction",
             ylabel="second principal direction")
    ax_g.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)

    for layer, sel in enumerate(selections, start=1):
        sizes = BATCH - np.arange(len(sel.trace.values) + 1)
        values = np.concatenate([[sel.trace.full_value], sel.trace.values])
        line, = ax_m.plot(sizes, values, lw=1.5, label=f"layer {layer}: keeps {len(sel.indices)} of {BATCH}")
        ax_m.plot(len(sel.indices), values[BATCH - len(sel.indices)], "o", color=line.get_color())
    ax_m.set(title="Greedy search, each layer on its own", xlabel="samples kept (k)",
             ylabel="mean_variance = T/Q − 1/k", xlim=(BATCH + 1, 0))
    ax_m.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

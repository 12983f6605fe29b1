"""Figures of a training run (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._validation import check_choice


def plot_batch_sizes(ax, history, x: str = "step", label: str | None = None, color=None):
    """Batch size per step of a run on ``ax`` (log scale): the figure of an adaptive-batch run (AdAdaGrad).

    For an adaptive run the line is the batch size in force at every step (the
    initial size, then what the optimizer requested after the previous step),
    and dots mark the steps whose batch was smaller because it was the truncated
    end of an epoch. For any other run the line is the size of every batch.
    ``x="step"`` plots against the step number; ``x="epoch"`` against the
    samples processed before the step divided by the training-set size, so runs
    whose batches grow at different rates share one axis. Returns the line drawn.
    """
    sizes = np.asarray(history.steps["batch_size"])
    if check_choice(x, ("step", "epoch"), "x") == "step":
        where, xlabel = np.arange(1, sizes.size + 1), "step"
    else:
        where = np.concatenate([[0], np.cumsum(sizes)[:-1]]) / history.config["n_train"]
        xlabel = "epoch (samples seen / training-set size)"
    if "requested_batch_size" in history.steps:
        in_force = np.concatenate([[history.config["batch_size"]], history.steps["requested_batch_size"][:-1]])
        (line,) = ax.step(where, in_force, where="post", lw=1.2, color=color, label=label)
        short = sizes < in_force
        ax.plot(where[short], sizes[short], ".", ms=4, color=line.get_color())
    else:
        (line,) = ax.step(where, sizes, where="post", lw=1.2, color=color, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("batch size")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    return line


def plot_history(history, path=None, title: str | None = None):
    """Loss and accuracy per epoch; for DBA also the selected batch size per layer over steps,
    for an adaptive-batch run (AdAdaGrad) the batch size over training.

    Returns the matplotlib ``Figure``; writes it to ``path`` when given.
    """
    import matplotlib.pyplot as plt  # headless machines fall back to the Agg backend by themselves

    has_dba = "selected" in history.steps
    has_adaptive = bool(history.config.get("adaptive_batch"))
    n_panels = 2 + has_dba + has_adaptive
    fig, axes = plt.subplots(1, n_panels, figsize=(4.75 * n_panels, 3.6))
    epochs = [row["epoch"] for row in history.epochs]
    for ax, what in zip(axes, ("loss", "acc")):
        for part, style in (("train", "-"), ("test", "--")):
            key = f"{part}_{what}"
            if key in history.epochs[0]:
                ax.plot(epochs, [row[key] for row in history.epochs], style, marker="o", ms=3, label=part)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean cross-entropy" if what == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    if has_dba:
        ax = axes[2]
        batch = np.asarray(history.steps["batch_size"])
        ax.plot(batch, color="0.6", lw=1, label="batch")
        for layer, sizes in enumerate(history.steps["selected"]):
            ax.plot(sizes, lw=1, label=f"layer {layer + 1}")
        ax.set_xlabel("step")
        ax.set_ylabel("samples in the update")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title("DBA: selected batch size")
    if has_adaptive:
        ax = axes[-1]
        plot_batch_sizes(ax, history)
        ax.set_title("adaptive batch size")
    fig.suptitle(title or history.config.get("optimizer", {}).get("name", ""))
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig

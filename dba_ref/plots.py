"""Figures of a training run (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_history(history, path=None, title: str | None = None):
    """Loss and accuracy per epoch; for DBA also the selected batch size per layer over steps.

    Returns the matplotlib ``Figure``; writes it to ``path`` when given.
    """
    import matplotlib.pyplot as plt  # headless machines fall back to the Agg backend by themselves

    has_dba = "selected" in history.steps
    fig, axes = plt.subplots(1, 3 if has_dba else 2, figsize=(14 if has_dba else 9.5, 3.6))
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
    fig.suptitle(title or history.config.get("optimizer", {}).get("name", ""))
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig

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


def _epoch_ticks(ax) -> None:
    """Integer epoch ticks on the x axis (1, 2, 5 or 10 times a power of ten apart)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def plot_selected(ax, history, colors=None) -> None:
    """Samples DBA kept per layer at every step of ``history`` on ``ax``, with the batch they were kept from.

    The x axis is the epoch: a step spans the samples processed before it to those processed
    after it, divided by the training-set size, so each epoch ends on an integer. Per layer, a thin
    line is every step and a thick one the mean over each epoch. The grey line is the batch size;
    it dips at every epoch's last batch when the training set is not a multiple of the batch size
    (that batch holds what is left of the epoch). The y axis is logarithmic, base 2. ``colors``
    gives the layers' colours (default: the colour cycle).
    """
    from matplotlib.ticker import ScalarFormatter

    batch = np.asarray(history.steps["batch_size"])
    n = history.config["n_train"]
    edges = np.concatenate([[0], np.cumsum(batch)]) / n
    epoch = np.ceil(edges[1:] - 1e-9).astype(int)              # the epoch (from 1) each step belongs to
    epochs = np.arange(1, epoch[-1] + 1)
    full = int(batch.max())
    last = n % full
    ax.stairs(batch, edges, color="0.6", lw=0.8, label="batch size" + (
        f" (dips to {last} at each epoch's last batch: {n} = {n // full}×{full} + {last})" if last else ""))
    for layer, sizes in enumerate(history.steps["selected"]):
        color = f"C{layer}" if colors is None else colors[layer % len(colors)]
        sizes = np.asarray(sizes, dtype=float)
        ax.stairs(sizes, edges, lw=0.5, alpha=0.35, color=color)
        means = np.bincount(epoch, weights=sizes)[1:] / np.bincount(epoch)[1:]
        ax.stairs(means, np.concatenate([[0], epochs]), lw=2, color=color,
                  label=f"kept in layer {layer + 1} (thin: each step; thick: mean over the epoch)")
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(ScalarFormatter())
    _epoch_ticks(ax)
    ax.set_xlim(0, edges[-1])
    ax.set_xlabel("epoch")
    ax.set_ylabel("samples in the update")
    ax.grid(alpha=0.3, which="both")


def plot_runs(runs: dict, path=None, title: str | None = None):
    """Runs side by side: loss and accuracy per epoch (train solid, test dashed, one colour per run);
    for a DBA run also the samples it kept per layer, for an adaptive-batch run (AdAdaGrad) its batch size.
    A run that evaluated its test set every few epochs (``config["test_every"]``) has its test curve
    drawn through those epochs, marked, and says so in the legend.

    ``runs`` maps a label to a :class:`~dba_ref.training.History`; every run shares the two first
    panels. One legend under the panels names every line. Returns the matplotlib ``Figure``; writes it to ``path``
    when given.
    """
    import matplotlib.pyplot as plt  # headless machines fall back to the Agg backend by themselves

    dba_runs = [(label, h) for label, h in runs.items() if "selected" in h.steps]
    adaptive_runs = [(label, h) for label, h in runs.items() if h.config.get("adaptive_batch")]
    n_panels = 2 + len(dba_runs) + len(adaptive_runs)
    fig, axes = plt.subplots(1, n_panels, figsize=(4.9 * n_panels, 4.4), layout="constrained", squeeze=False)
    axes = axes[0]
    named = len(runs) > 1
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, what in zip(axes, ("loss", "acc")):
        for (label, history), color in zip(runs.items(), palette):
            for part, style in (("train", "-"), ("test", "--")):
                key = f"{part}_{what}"
                rows = [row for row in history.epochs if key in row]
                every = history.config.get("test_every", 1) if part == "test" else 1
                if rows:
                    name = part if every == 1 else f"{part} (every {every} epochs)"
                    ax.plot([row["epoch"] for row in rows], [row[key] for row in rows], style, color=color,
                            marker="o" if len(rows) <= 30 else None, ms=3, lw=1.2,
                            label=f"{label}: {name}" if named else name)
        _epoch_ticks(ax)
        ax.set_xlim(0, max(row["epoch"] for h in runs.values() for row in h.epochs))
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean cross-entropy" if what == "loss" else "accuracy")
        ax.grid(alpha=0.3)
    for ax, (label, history) in zip(axes[2:], dba_runs):
        plot_selected(ax, history, colors=palette[len(runs):])  # colours no run uses
        ax.set_title(f"{label}: samples kept" if named else "DBA: samples kept", fontsize="medium")
    for ax, (label, history) in zip(axes[2 + len(dba_runs):], adaptive_runs):
        plot_batch_sizes(ax, history, label=None)
        ax.set_title(f"{label}: adaptive batch size" if named else "adaptive batch size", fontsize="medium")
    handles = {}                                    # one legend for every line of every panel, under them
    for ax in axes:
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=min(len(handles), 4),
               frameon=False, fontsize="small")
    fig.suptitle(title or ", ".join(runs))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def plot_history(history, path=None, title: str | None = None):
    """The figure of one run: :func:`plot_runs` with that run alone (titled with its optimizer)."""
    name = history.config.get("optimizer", {}).get("name", "")
    return plot_runs({name: history}, path, title=title or name)

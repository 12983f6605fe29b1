"""The report's figures per cell: test accuracy per method, the batch DBA kept over training, and the curves of
the convergence claim.

All are written as PNG (Agg backend, 110 dpi) and return their path, or
None when the cell has nothing to draw yet.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .collect import CellResult
from .convergence import pairings, seconds_at, targets
from .protocol import PAPER
from .tables import cell_title


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def accuracy_axis_start(c: CellResult) -> float:
    """Left end of the accuracy axis, in %: 2 points below the worst method, or 25 below the best if higher.

    So failures far below the best are drawn off scale, but never a method the
    report compares: SGD, Adam, the best baseline and the best DBA (of each base).
    """
    done = [m.mean for m in c.methods if m.finals]
    compared = [m.mean for m in (c.get("sgd"), c.get("adam"), c.best_baseline(), c.best_dba(), c.best_dba("sgd"),
                                 c.best_dba("adam")) if m is not None]
    return max(0.0, min(max(done) - 25, min(compared) - 2), min(done) - 2)


def plot_accuracy(c: CellResult, path: Path) -> Path | None:
    """Test accuracy per method (mean ± std over seeds), DBA in orange, the paper's numbers as lines."""
    done = [m for m in c.methods if m.finals]
    if not done:
        return None
    plt = _pyplot()
    done.sort(key=lambda m: m.mean)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(done) + 1.6))
    y = np.arange(len(done))
    ax.barh(y, [m.mean for m in done], xerr=[0 if math.isnan(m.std) else m.std for m in done],
            color=["tab:orange" if m.method.dba else "tab:blue" for m in done], alpha=0.8)
    ax.set_yticks(y, [m.method.label for m in done], fontsize=7)
    paper = PAPER.get(c.cell.setting.per_class) if c.cell.setting.dataset == "mnist5k" else None
    if paper:
        ax.axvline(paper["dba"], color="tab:red", ls="--", label=f"paper DBA {paper['dba']}%")
        ax.axvline(paper["baseline"], color="0.3", ls=":", label=f"paper baselines ≈{paper['baseline']:.1f}%")
        ax.legend(fontsize=7, loc="lower right")
    left = accuracy_axis_start(c)
    for yi, m in zip(y, done):
        if m.mean < left:
            ax.text(left + 0.3, yi, f"{m.mean:.1f}% (off scale)", va="center", fontsize=7)
    ax.set_xlim(left, 100)
    ax.set_xlabel("test accuracy % (mean ± std over seeds)")
    ax.set_title(cell_title(c), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_selected(c: CellResult, path: Path) -> Path | None:
    """DBA's selected batch size per layer over training: best DBA(SGD) and best DBA(Adam) of the cell.

    Thin lines: every step of the first final seed; thick lines: the mean per
    epoch over all final seeds; grey: the batch handed to DBA.
    """
    chosen = [m for m in (c.best_dba("sgd"), c.best_dba("adam")) if m is not None
              and any("selected_per_step" in r for r in m.finals)]
    if not chosen:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(chosen), figsize=(6.5 * len(chosen), 3.4), squeeze=False)
    for ax, m in zip(axes[0], chosen):
        runs = [r for r in m.finals if "selected_per_step" in r]
        first = runs[0]
        steps = first["budget"]["steps"]
        per_epoch = steps // first["budget"]["epochs"]
        batch = first["budget"]["batch_size"]
        note = "; the last of an epoch may be smaller" if per_epoch > 1 else ""
        ax.axhline(batch, color="0.6", lw=1, label=f"batch handed to DBA, B = {batch}{note}")
        for layer, colour in zip(range(len(first["selected_per_step"])), ("tab:blue", "tab:orange", "tab:green")):
            ax.plot(np.arange(1, steps + 1), first["selected_per_step"][layer], color=colour, lw=0.4, alpha=0.5)
            mean = np.mean([r["curves"]["selected_mean"][layer] for r in runs], axis=0)
            centres = (np.arange(len(mean)) + 0.5) * per_epoch
            ax.plot(centres, mean, color=colour, lw=2, label=f"layer {layer + 1}: mean per epoch, {len(runs)} seeds")
        ax.set_xlabel("step")
        ax.set_ylabel("samples in the update")
        ax.set_ylim(0, batch * 1.05)
        ax.set_title(f"{m.method.label}, lr {m.lr:g}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(cell_title(c), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def seed_band(runs, curve: str, x=None, log: bool = False):
    """Mean, lower and upper edge over seeds of ``curves[curve]`` at each epoch, or at the wall seconds ``x`` (each
    seed's curve interpolated to them). The edges are mean ± std, of log10 of the values when ``log``."""
    if x is None:
        values = np.array([r["curves"][curve] for r in runs], dtype=float)
    else:
        values = np.array([np.interp(x, run_seconds(r), r["curves"][curve]) for r in runs])
    if log:
        values = np.log10(values)
    mean = values.mean(axis=0)
    std = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
    edges = (mean, mean - std, mean + std)
    return tuple(10 ** e for e in edges) if log else edges


def run_seconds(record: dict) -> np.ndarray:
    """Wall seconds at each evaluation: recorded, or the run's total spread evenly over its epochs."""
    return np.array([seconds_at(record, i) for i in range(len(record["curves"]["epoch"]))], dtype=float)


def plot_convergence(c: CellResult, path: Path) -> Path | None:
    """The compared methods' validation accuracy per epoch and per wall second, and training loss per epoch.

    Lines: the mean over final seeds; bands: ± one standard deviation (of
    log10 of the loss: a geometric mean and spread); dashed: the cell's
    convergence targets. DBA methods are drawn dashed-dotted.
    """
    goals = {t.curve: t for t in targets(c)}
    by_key = {m.method.key: m for _, d, b in pairings(c) for m in (b, d)}
    methods = [m for m in by_key.values() if all("val_acc" in r.get("curves", {}) for r in m.finals)]
    if not goals or not methods:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    horizon = min(run_seconds(r)[-1] for m in methods for r in m.finals)
    seconds = np.linspace(0, horizon, 200)
    for colour, m in zip(colours, methods):
        epochs = np.asarray(m.finals[0]["curves"]["epoch"])
        style = dict(color=colour, ls="-." if m.method.dba else "-", lw=1.5, label=f"{m.method.label} (lr {m.lr:g})")
        for ax, curve, x, grid in ((axes[0], "val_acc", epochs, None), (axes[1], "train_loss", epochs, None),
                                   (axes[2], "val_acc", seconds, seconds)):
            mean, low, high = seed_band(m.finals, curve, grid, log=curve == "train_loss")
            scale = 100 if curve == "val_acc" else 1
            ax.plot(x, scale * mean, **style)
            ax.fill_between(x, scale * low, scale * high, color=colour, alpha=0.15, lw=0)
    for ax, curve, xlabel in ((axes[0], "val_acc", "epoch"), (axes[1], "train_loss", "epoch"),
                              (axes[2], "val_acc", "wall seconds (to the shortest run's end)")):
        target = goals.get(curve)
        if target is not None:
            scale = 100 if curve == "val_acc" else 1
            ax.axhline(scale * target.level, color="0.3", ls="--", lw=1, label=f"target: {target.describe()}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation accuracy %" if curve == "val_acc" else "training loss (geometric mean)")
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    low = min(100 * seed_band(m.finals, "val_acc")[0][-1] for m in methods)
    for ax in (axes[0], axes[2]):
        ax.set_ylim(max(0.0, low - 15), 100)
    axes[0].legend(fontsize=7, loc="lower right")
    axes[1].legend(handles=axes[1].get_legend_handles_labels()[0][-1:], fontsize=7)
    fig.suptitle(f"{cell_title(c)}: mean ± std over final seeds", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)

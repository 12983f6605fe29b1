"""The collected numbers as text: one table per cell, the headline table, and ``summary.json``.

A cell table has one row per method (baselines first, then DBA, each by
test accuracy): the learning rate its tuning chose on validation, the
validation accuracy, the test accuracy of the final runs (mean ± std over
seeds), the RER of a DBA method against the cell's best baseline, steps,
samples processed, the samples DBA kept per update, and wall time. The
headline table puts the paper's numbers (spec §1) beside the main cells'.
"""
from __future__ import annotations

import math

import numpy as np

from .collect import CellResult, MethodResult
from .protocol import PAPER, Protocol
from .statistics import rer

CELL_HEADER = ["method", "lr (chosen on val)", "val acc %", "test acc, mean ± std over seeds", "RER vs best baseline",
               "steps", "samples processed", "samples per update (DBA: kept, layer 1 / 2)", "wall s / run"]
HEADLINE_HEADER = ["data", "regime", "paper DBA %", "paper baselines %", "paper RER", "SGD %", "Adam %",
                   "best baseline % (val-chosen)", "best DBA % (val-chosen)", "RER here"]


def format_accuracy(m: MethodResult | None) -> str:
    """``97.12 ± 0.30% (n=5)``, or ``not run``."""
    if m is None or not m.finals:
        return "not run"
    n = m.test_acc.size
    std = f" ± {m.std:.2f}" if n > 1 else ""
    return f"{m.mean:.2f}{std}% (n={n})"


def format_value(x: float, spec: str = ".2f", suffix: str = "") -> str:
    """``x`` formatted with ``spec``, or ``—`` when it is None or nan."""
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:{spec}}{suffix}"


def flagged_label(m: MethodResult) -> str:
    """The method's name, flagged when its selected learning rate is at the end of the grid."""
    return m.method.label + (f" [lr {m.lr:g} at the grid's edge]" if m.at_edge else "")


def cell_title(c: CellResult) -> str:
    return f"{c.cell.reading} — {c.cell.setting.describe()}"


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def method_row(m: MethodResult, best_base: MethodResult | None, budget: int) -> list[str]:
    """One row of a cell table (``CELL_HEADER``); ``budget`` is the tuning runs per method."""
    if m.lr is None:
        return [m.method.label, f"tuning {m.tuned}/{budget}"] + ["not run"] + [""] * 7
    lr = f"{m.lr:g}" + (" (edge)" if m.at_edge else "")
    seconds = m.final_values("train_seconds")

    def budget_mean(key):
        values = {r["budget"][key] for r in m.finals}
        return "" if not values else str(values.pop()) if len(values) == 1 else f"{np.mean(list(values)):.0f} (mean)"

    per_update = ""
    if m.method.dba and m.finals:
        kept = np.mean([r["result"].get("mean_selected", [math.nan]) for r in m.finals], axis=0)
        per_update = " / ".join(f"{v:.1f}" for v in kept)
    elif m.finals:
        per_update = f"{np.mean([r['budget']['samples_processed'] / r['budget']['steps'] for r in m.finals]):.1f}"
    red = rer(m.mean, best_base.mean) if (m.method.dba and best_base is not None and m.finals) else math.nan
    div = f" ({m.n_diverged} diverged)" if m.n_diverged else ""
    return [m.method.label, lr, f"{100 * m.val_acc:.1f}", format_accuracy(m) + div, format_value(red, ".1f", "%"),
            budget_mean("steps"), budget_mean("samples_processed"), per_update,
            format_value(float(seconds.mean()) if seconds.size else math.nan, ".1f")]


def cell_table(c: CellResult, budget: int) -> str:
    """The table of one cell; a ``peek`` cell adds the best epoch on test beside the last."""
    best = c.best_baseline()
    order = sorted(c.methods, key=lambda m: (m.method.dba, -(m.mean if m.finals else -1)))
    text = markdown_table(CELL_HEADER, [method_row(m, best, budget) for m in order])
    if c.cell.reading == "peek":
        peek_rows = []
        for m in c.methods:
            if m.finals:
                peak = m.peak_test()
                spread = peak.std(ddof=1) if peak.size > 1 else 0
                peek_rows.append([m.method.label, format_accuracy(m), f"{peak.mean():.2f} ± {spread:.2f}",
                                  f"{peak.mean() - m.mean:+.2f}"])
        if peek_rows:
            text += "\n\nBest epoch on test (test-peeking, not the protocol's number):\n\n" + markdown_table(
                ["method", "last epoch", "best epoch on test", "difference"], peek_rows)
    return text


def headline_table(cells) -> str:
    """One row per main cell: the paper's numbers (MNIST-5k only) beside SGD, Adam, best baseline, best DBA."""
    rows = []
    for c in cells:
        if c.cell.reading != "main":
            continue
        s = c.cell.setting
        paper = PAPER.get(s.per_class) if s.dataset == "mnist5k" else None
        best_dba, best_base = c.best_dba(), c.best_baseline()
        ours_rer = rer(best_dba.mean, best_base.mean) if best_dba and best_base else math.nan
        rows.append([s.dataset, f"{s.per_class}/class",
                     f"{paper['dba']}" if paper else "—", f"≈{paper['baseline']:.1f}" if paper else "—",
                     f"{paper['rer']}%" if paper else "—",
                     format_accuracy(c.get("sgd")), format_accuracy(c.get("adam")),
                     f"{flagged_label(best_base)}: {format_accuracy(best_base)}" if best_base else "not run",
                     f"{flagged_label(best_dba)}: {format_accuracy(best_dba)}" if best_dba else "not run",
                     format_value(ours_rer, ".1f", "%")])
    return markdown_table(HEADLINE_HEADER, rows)


def summary(protocol: Protocol, cells) -> dict:
    """Machine-readable aggregate of every cell (``summary.json``)."""
    doc = {"protocol": protocol.name, "lr_multipliers": list(protocol.lr_multipliers),
           "tune_seeds": list(protocol.tune_seeds), "final_seeds": list(protocol.final_seeds), "cells": []}
    for c in cells:
        entry = {"reading": c.cell.reading, "setting": c.cell.setting.key, "planned_runs": c.planned,
                 "finished_runs": c.finished, "methods": []}
        for m in c.methods:
            entry["methods"].append({
                "method": m.method.to_dict(), "tuning_runs": m.tuned,
                "scores": {f"{k:g}": v[0] for k, v in m.scores.items()},
                "learning_rate": m.lr, "test_acc": m.test_acc.tolist(), "mean": m.mean, "std": m.std,
                "diverged": m.n_diverged})
        doc["cells"].append(entry)
    return doc

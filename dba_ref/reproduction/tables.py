"""The collected numbers as text: one table per cell, the headline table, and ``summary.json``.

A cell table has one row per method (baselines first, then DBA, each by
test accuracy): the learning rate its tuning chose on validation, the
validation accuracy, the test accuracy of the final runs (mean ± std over
seeds), the RER of a DBA method against the cell's best baseline, steps,
samples processed, the samples DBA kept per update, and wall time. The
headline table puts the paper's numbers (spec §1) beside the main cells'.
The convergence tables give each method's time to the cell's targets, and
the paired comparisons (:mod:`~dba_ref.reproduction.convergence`).
"""
from __future__ import annotations

import math

import numpy as np

from .collect import CellResult, MethodResult
from .convergence import UNITS, Speed, compare, pairings, targets
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
        goals = targets(c)
        if goals:
            entry["convergence_targets"] = {t.name: {"curve": t.curve, "level": t.level} for t in goals}
        for m in c.methods:
            entry["methods"].append({
                "method": m.method.to_dict(), "tuning_runs": m.tuned,
                "scores": {f"{k:g}": v[0] for k, v in m.scores.items()},
                "learning_rate": m.lr, "test_acc": m.test_acc.tolist(), "mean": m.mean, "std": m.std,
                "diverged": m.n_diverged})
            if goals and m.finals:
                entry["methods"][-1]["time_to_target"] = {t.name: time_record(Speed.of(m, t)) for t in goals}
        doc["cells"].append(entry)
    return doc


def time_record(speed: Speed) -> dict:
    """Per final seed: whether it reached the target, and when in epochs, steps and per-sample gradients (censored
    seeds: their budget's end; steps None where unknown). Wall seconds are left to the run files: they differ
    between two trainings of the same run, and nothing else in ``summary.json`` does."""
    return {"seed": [h.seed for h in speed.hits], "reached": [h.reached for h in speed.hits],
            **{u: [None if math.isnan(h.time[u]) else h.time[u] for h in speed.hits] for u in UNITS if u != "seconds"}}


#: How a time to target is printed, per unit.
TIME_FORMATS = {"epochs": ".1f", "steps": ",.0f", "gradients": ",.0f", "seconds": ".1f"}
UNIT_HEADERS = {"epochs": "epochs", "steps": "steps", "gradients": "per-sample gradients", "seconds": "wall s"}


def format_time(speed: Speed, unit: str) -> str:
    """``45.4 ± 31.8`` (mean ± std over seeds), ``≥`` in front when a seed is censored, ``—`` when unknown."""
    mean, std = speed.mean_std(unit)
    if math.isnan(mean):
        return "—"
    spec = TIME_FORMATS[unit]
    censored = "≥ " if speed.reached < len(speed.hits) else ""
    return censored + f"{mean:{spec}}" + ("" if math.isnan(std) else f" ± {std:{spec}}")


def convergence_table(c: CellResult) -> str:
    """Each method's time to each target of the cell (mean ± std over final seeds), and how many seeds reached it."""
    goals = targets(c)
    if not goals:
        return ""
    header = ["method"] + [f"{t.name}: {UNIT_HEADERS[u]}" for t in goals for u in UNITS] + ["reached"]
    order = sorted((m for m in c.methods if m.finals), key=lambda m: (m.method.dba, -m.mean))
    rows = []
    for m in order:
        row = [m.method.label]
        speeds = [Speed.of(m, t) for t in goals]
        for speed in speeds:
            row += [format_time(speed, u) for u in UNITS]
        rows.append(row + [" / ".join(f"{s.reached}/{len(s.hits)}" for s in speeds)])
    lines = [f"Time to the convergence targets ({'; '.join(f'*{t.name}*: {t.describe()}' for t in goals)}), "
             "mean ± std over final seeds; `≥`: some seeds never reached it (counted at the end of their budget):"]
    return "\n\n".join(lines + [markdown_table(header, rows)])


def format_comparison(dba: Speed, base: Speed, unit: str) -> str:
    """``**sooner** 67.4 vs 97.8 (p = 0.00018, 5 seeds)``: DBA's mean time against the baseline's, over the
    seeds that decide (:func:`~dba_ref.reproduction.convergence.informative_seeds`)."""
    cmp = compare(dba, base, unit)
    if cmp.n == 0:
        return "untested (no seed decides)"
    spec = TIME_FORMATS[unit]
    verdict = {"sooner": "**sooner**", "later": "**later**", "no significant difference": "n.s.",
               "untested": "untested"}[cmp.verdict]
    p = "" if math.isnan(cmp.p) else f"p = {cmp.p:.2g}, "
    return f"{verdict} {cmp.dba:{spec}} vs {cmp.base:{spec}} ({p}{cmp.n} seeds)"


def comparison_table(cells) -> str:
    """One row per cell, target and pairing: DBA against the baseline in each unit, and the seeds that reached."""
    header = ["cell", "target", "comparison"] + [UNIT_HEADERS[u] for u in UNITS] + ["reached (DBA / baseline)"]
    rows = []
    for c in cells:
        for t in targets(c):
            for label, d, b in pairings(c):
                dba, base = Speed.of(d, t), Speed.of(b, t)
                rows.append([c.cell.name, t.describe(), f"{label}: {d.method.label} vs {b.method.label}"]
                            + [format_comparison(dba, base, u) for u in UNITS]
                            + [f"{dba.reached}/{len(dba.hits)} / {base.reached}/{len(base.hits)}"])
    return markdown_table(header, rows) if rows else ""

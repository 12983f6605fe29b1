"""The convergence-speed claim: how soon each method reaches fixed targets, read from its final runs' curves.

The abstract claims: "We present results showing DBA significantly improves
the speed of model convergence". It is measured on the cells of
``CONVERGENCE_READINGS`` against the ``CONVERGENCE_TARGETS`` of
:mod:`~dba_ref.reproduction.protocol`, fixed before any curve was looked at.
In a cell, from its best baseline (chosen on validation, :mod:`~dba_ref.reproduction.collect`)
over its final seeds::

    accuracy target:  val_acc    ≥ mean_s(final val_acc of the best baseline) − 1 point
    loss target:      train_loss ≤ mean_s(final train_loss of the best baseline)

A run reaches a target at its first evaluation (after an epoch; epoch 0 is
before training) whose value meets it. Its time to the target, in four units:

``epochs``
    that evaluation's epoch ``e``.
``steps``
    optimizer steps taken by then: the curve's ``step``; in records without
    it (written before it was recorded), ``e · ⌈n/B⌉`` for a fixed batch, and
    unknown for an adaptive batch.
``gradients``
    per-sample gradients computed by then, ``e · n``: every method
    backpropagates each of the ``n`` training images once an epoch. A DBA step
    forms the ``B`` per-sample gradients of its batch and averages those it
    selects; a plain step forms their mean in the same backward pass, which
    counts ``B`` as well. What DBA adds per step (the Gram matrix, the search)
    shows in seconds only.
``seconds``
    wall seconds since training started, the per-epoch evaluations included:
    the curve's ``seconds``; in records without it, ``train_seconds · e / E``.

**Censoring.** A run that never meets a target is censored at the end of its
budget (``E`` epochs). It is not dropped: means, standard deviations and the
paired test take the end of its budget as its time, a lower bound, so a
censored method looks faster than it is, never slower; every number says how
many seeds reached the target. Two methods are compared over the final seeds
both finished (a seed fixes the slices and the initialisation) with a
two-sided paired t-test (:func:`~dba_ref.reproduction.statistics.paired_t`),
leaving out the seeds that cannot say which is sooner
(:func:`informative_seeds`): neither reached the target, or one reached it
after the other's budget had ended.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .collect import CellResult, MethodResult
from .protocol import CONVERGENCE_READINGS, CONVERGENCE_TARGETS
from .statistics import paired_t

#: The units of a time to target, and how the report names them.
UNITS = {"epochs": "epochs", "steps": "optimizer steps", "gradients": "per-sample gradients",
         "seconds": "wall seconds"}


@dataclass(frozen=True)
class Target:
    """Reach ``curve ≥ level`` (``direction`` +1) or ``curve ≤ level`` (−1)."""

    name: str
    curve: str
    direction: int
    level: float

    def first(self, values) -> int | None:
        """Index of the first of ``values`` that meets the target, or None (NaN never does)."""
        met = self.direction * (np.asarray(values, dtype=float) - self.level) >= 0
        return int(np.argmax(met)) if met.any() else None

    def describe(self) -> str:
        """``validation accuracy ≥ 76.94%`` or ``training loss ≤ 0.00456``."""
        if self.curve == "val_acc":
            return f"validation accuracy ≥ {100 * self.level:.2f}%"
        return f"training loss ≤ {self.level:.3g}"


def targets(c: CellResult) -> list[Target]:
    """The ``CONVERGENCE_TARGETS`` of a cell, from its best baseline's final runs that kept their curves (none
    before it has one)."""
    base = c.best_baseline()
    if c.cell.reading not in CONVERGENCE_READINGS or base is None:
        return []
    out = []
    for name, (curve, direction, offset) in CONVERGENCE_TARGETS.items():
        finals = [r["curves"][curve][-1] for r in base.finals if curve in r.get("curves", {})]
        if finals:
            out.append(Target(name, curve, direction, float(np.mean(finals)) + offset))
    return out


@dataclass(frozen=True)
class Hit:
    """One run's time to a target in each unit (nan: unknown); when not ``reached``, the end of its budget."""

    seed: int
    reached: bool
    time: dict


def seconds_at(record: dict, i: int) -> float:
    """Wall seconds since training started at evaluation ``i`` of ``record``'s curves: recorded, else the run's
    ``train_seconds`` spread evenly over its budget's epochs, ``train_seconds · e / E``."""
    curves = record["curves"]
    if "seconds" in curves:
        return curves["seconds"][i]
    return record["result"]["train_seconds"] * curves["epoch"][i] / record["budget"]["epochs"]


def time_to_target(record: dict, target: Target) -> Hit:
    """When the run of ``record`` first met ``target`` (its budget's end, censored, if it never did, or if it
    diverged and kept no curve)."""
    curves, budget = record.get("curves", {}), record["budget"]
    epochs, n = budget["epochs"], record["n_train"]
    i = target.first(curves[target.curve]) if target.curve in curves else None
    reached = i is not None
    e = curves["epoch"][i] if reached else epochs
    if "step" in curves:
        steps = curves["step"][i] if reached else budget["steps"]
    elif budget["steps"] == epochs * math.ceil(n / budget["batch_size"]):       # a fixed batch
        steps = e * budget["steps"] // epochs
    else:
        steps = math.nan
    if reached:
        seconds = seconds_at(record, i)
    elif "seconds" in curves:
        seconds = curves["seconds"][-1]
    else:
        seconds = record["result"]["train_seconds"]
    return Hit(record["seed"], reached, {"epochs": e, "steps": steps, "gradients": e * n, "seconds": seconds})


@dataclass
class Speed:
    """How soon one method's final runs reach one target."""

    method: MethodResult
    target: Target
    hits: list

    @classmethod
    def of(cls, m: MethodResult, target: Target) -> "Speed":
        """The times of every final run of ``m`` (a diverged one, which keeps no curve, is censored)."""
        return cls(m, target, [time_to_target(r, target) for r in m.finals])

    @property
    def reached(self) -> int:
        return sum(h.reached for h in self.hits)

    def by_seed(self, unit: str) -> dict:
        """Time to the target of each seed where it is known (censored runs: the end of their budget)."""
        return {h.seed: h.time[unit] for h in self.hits if not math.isnan(h.time[unit])}

    def mean_std(self, unit: str) -> tuple[float, float]:
        values = np.array(list(self.by_seed(unit).values()), dtype=float)
        if not values.size:
            return math.nan, math.nan
        return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else math.nan


@dataclass(frozen=True)
class Comparison:
    """DBA against a baseline on one target, in one unit: mean times over the informative seeds, the paired test."""

    unit: str
    dba: float
    base: float
    p: float
    n: int

    @property
    def verdict(self) -> str:
        """``sooner`` or ``later`` (DBA; significant at 5%, or the same difference at every seed),
        ``no significant difference``, or ``untested`` (fewer than 2 paired seeds)."""
        if self.n < 2:
            return "untested"
        if self.dba == self.base or self.p >= 0.05:
            return "no significant difference"
        return "sooner" if self.dba < self.base else "later"         # p < 0.05, or nan: every difference equal


def informative_seeds(dba: Speed, base: Speed, unit: str) -> list[int]:
    """The seeds whose two runs say which method reached the target sooner in ``unit``.

    Left out: a seed where neither run reached it, and one where a run reached
    it only after the other, censored, had ended its budget (possible in wall
    seconds and steps, whose budgets differ between methods).
    """
    a, b = {h.seed: h for h in dba.hits}, {h.seed: h for h in base.hits}
    seeds = []
    for seed in sorted(set(a) & set(b)):
        ha, hb = a[seed], b[seed]
        ta, tb = ha.time[unit], hb.time[unit]
        if math.isnan(ta) or math.isnan(tb) or not (ha.reached or hb.reached):
            continue
        if ha.reached != hb.reached and (ta > tb if ha.reached else tb > ta):
            continue
        seeds.append(seed)
    return seeds


def compare(dba: Speed, base: Speed, unit: str) -> Comparison:
    """Paired comparison of two methods' times to the same target in ``unit``, over :func:`informative_seeds`."""
    seeds = informative_seeds(dba, base, unit)
    a, b = ({s: t for s, t in speed.by_seed(unit).items() if s in seeds} for speed in (dba, base))
    p, n = paired_t(a, b)
    mean = (lambda d: float(np.mean(list(d.values()))) if d else math.nan)
    return Comparison(unit, mean(a), mean(b), p, n)


def convergence_cells(cells) -> list[CellResult]:
    """The cells the convergence claim is measured on (``CONVERGENCE_READINGS``), in report order."""
    return [c for c in cells if c.cell.reading in CONVERGENCE_READINGS]


def measured_cells(cells) -> list[CellResult]:
    """The convergence cells with something to compare: targets (a best baseline) and a pairing with final runs."""
    return [c for c in convergence_cells(cells) if targets(c) and pairings(c)]


#: The comparisons of a cell: ``(label, DBA base, baseline)``; the DBA method is the best (on validation) around
#: that base (None: any), the baseline that registry name (None: the best baseline, chosen on validation).
PAIRINGS = (("best DBA vs best baseline", None, None), ("best DBA(SGD) vs SGD", "sgd", "sgd"),
            ("best DBA(Adam) vs Adam", "adam", "adam"))


def pairings(c: CellResult) -> list[tuple[str, MethodResult, MethodResult]]:
    """The ``PAIRINGS`` of a cell as ``(label, DBA, baseline)``, those whose two methods have final runs."""
    out = []
    for label, base, key in PAIRINGS:
        d, b = c.best_dba(base), (c.best_baseline() if key is None else c.get(key))
        if d is not None and b is not None:
            out.append((label, d, b))
    return out


def describe_target(curve: str, direction: int, offset: float) -> str:
    """A rule of ``CONVERGENCE_TARGETS`` in words, e.g. the validation accuracy one minus 1 point."""
    accuracy = curve.endswith("acc")
    name = {"val_acc": "validation accuracy", "train_loss": "training loss"}.get(curve, curve)
    shift = ""
    if offset:
        size = abs(100 * offset if accuracy else offset)
        shift = f" {'plus' if offset > 0 else 'minus'} {size:g}" + (f" point{'s' if size != 1 else ''}" if accuracy else "")
    return (f"{name} {'at least' if direction > 0 else 'at most'} the best baseline's final one (mean over its "
            f"final seeds){shift}")


def rules() -> list[str]:
    """How the claim is measured, in sentences built from the protocol's constants (the report's list)."""
    named = "; ".join(f"*{name}*: {describe_target(*rule)}" for name, rule in CONVERGENCE_TARGETS.items())
    return [
        f"Targets, fixed in the protocol before any curve was looked at, per cell: {named}. The best baseline "
        "is the one chosen on validation, as in the accuracy claims.",
        "A run reaches a target at its first evaluation (one after every epoch; epoch 0 is before training) that "
        "meets it. Its time to the target is counted in " + ", ".join(UNITS.values()) + ". Every method computes "
        "the gradient of each training image once an epoch (a DBA step forms the B per-sample gradients of its "
        "batch and averages the ones it selects; a plain step forms their mean in one backward pass, B as well), "
        "so per-sample gradients are n × epochs for every method and rank methods as epochs do; what DBA "
        "computes beyond them (the Gram matrix, the search) shows in wall seconds only.",
        "Runs that never reach a target are censored, not dropped: they enter means and tests with the end of "
        "their budget as their time (a lower bound: a censored method looks faster than it is), and every "
        "number says how many seeds reached the target (`≥` marks a mean with censored seeds). A seed where "
        "neither of two compared runs reached the target, or where one reached it only after the other had "
        "ended its budget (wall seconds, steps), does not say which is sooner: it is left out of their test.",
        "Comparisons, per cell and target: " + "; ".join(label for label, _, _ in PAIRINGS) + " (each DBA "
        "method chosen on validation; these three were fixed after a first look at the curves, to report every "
        "like-for-like pair rather than one), over the final seeds both finished, with a two-sided paired "
        "t-test. DBA "
        "is *sooner* or *later* when p < 0.05 (or when every seed gives the same non-zero difference). The "
        "claim is *reproduced* in a unit when DBA is sooner in more than half of the comparisons tested in it "
        "and later in none, *not reproduced* when it is sooner in no more of them than it is later, *mixed* "
        "otherwise (a first version of this rule, \"reproduced when sooner in all, not reproduced when in none\", "
        "was replaced after a first look, when it called 1 comparison sooner against 6 later *mixed*).",
    ]

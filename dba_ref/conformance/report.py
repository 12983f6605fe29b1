"""The conformance report: what was declared, one row per quantity and dtype, every problem listed by key.

As text (:func:`format_report`) it opens with the coverage, one screen of what
was checked and what was not declared, then the table, the problems by key,
the DBA trajectories' first divergences and the verdict.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .._text import columns, plural
from ..agreement import SelectionVerdict, error_ratio
from .schema import EXACT_QUANTITIES

@dataclass
class QuantityRow:
    """One line of the report: a quantity over all cases of one dtype, with its problems listed by key.

    ``max_error`` and ``allowed`` are those of ``worst_key``, the compared
    array that came nearest to (or went furthest beyond) what the rule allows
    it: its error and its allowance, both relative to its rounding scale
    (:func:`dba_ref.conformance.check.output_rounding`).
    """

    quantity: str
    dtype: str
    compared: int = 0
    max_error: float = 0.0
    allowed: float = 0.0
    worst_key: str = ""
    failed: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    bad: list = field(default_factory=list)
    ambiguous: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.quantity in EXACT_QUANTITIES

    @property
    def passed(self) -> bool:
        return not (self.failed or self.missing or self.bad)

    def record_error(self, rkey: str, err: float, allowed: float, failure: str | None = None) -> None:
        """Record one compared array: the error of its worst entry and what the rule allows it, both relative to
        the entry's rounding scale (:func:`dba_ref.agreement.worst_error`); ``failure`` says what failed in the
        caller's own words, when it has better ones."""
        self.compared += 1
        self.errors[rkey] = err
        if self.compared == 1 or error_ratio(err, allowed) > error_ratio(self.max_error, self.allowed):
            self.max_error, self.allowed, self.worst_key = err, allowed, rkey
        if not err <= allowed:
            self.failed.append(failure or f"{rkey}: max relative error {err:.3g} > {allowed:.3g} allowed")

    def record_verdict(self, rkey: str, verdict: SelectionVerdict) -> None:
        """Record an exact comparison (a selected set or a removal order)."""
        self.compared += 1
        if verdict.status == "ambiguous":
            self.ambiguous.append(f"{rkey}: {verdict.detail}")
        elif verdict.status == "differ":
            self.failed.append(f"{rkey}: {verdict.detail}")


@dataclass
class Coverage:
    """What a check covered: the :class:`~dba_ref.conformance.Declaration`, where it came from, the layers of
    each declared case, and how many keys the results file held (``supplied``) of which ``outside`` the declaration."""

    declaration: object
    source: str = ""
    layers: dict = field(default_factory=dict)
    supplied: int = 0
    outside: int = 0


@dataclass
class ConformanceReport:
    """The outcome of a check: the :class:`Coverage`, one :class:`QuantityRow` per quantity and dtype, the keys
    it did not know (``unexpected``), one :class:`~dba_ref.conformance.trajectory.TrajectoryCheck` per
    trajectory, and the failures of the implementation itself (``implementation_errors``: a step function that
    raised or returned the wrong thing, :mod:`~dba_ref.conformance.testing`)."""

    coverage: Coverage | None = None
    rows: dict = field(default_factory=dict)
    unexpected: list = field(default_factory=list)
    trajectories: list = field(default_factory=list)
    implementation_errors: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows.values()) and not self.implementation_errors

    @property
    def errors(self) -> dict:
        """``{result key: max relative error}`` of every array compared (exact comparisons excluded)."""
        return {key: err for row in self.rows.values() for key, err in row.errors.items()}

    @property
    def divergences(self) -> list:
        """The first :class:`~dba_ref.conformance.trajectory.Divergence` of every trajectory that has one."""
        return [t.first for t in self.trajectories if t.first is not None]

    @property
    def first_divergence(self):
        """The first divergence of the first failing trajectory (case, base, metric, strategy order), or None."""
        return next(iter(self.divergences), None)

    def row(self, quantity: str, dtype: str) -> QuantityRow:
        return self.rows.setdefault((quantity, dtype), QuantityRow(quantity, dtype))

    def listed(self, attribute: str) -> list:
        """Every row's entries of ``attribute`` (``failed``, ``missing``, ``bad``, ``ambiguous``)."""
        return [item for row in self.rows.values() for item in getattr(row, attribute)]

    def __str__(self) -> str:
        return format_report(self)


def _few(names, noun: str) -> str:
    """One or two names as they are, more by their number (``"3 metrics"``)."""
    return ", ".join(names) if len(names) <= 2 else f"{len(names)} {noun}"


def format_coverage(report: ConformanceReport) -> list:
    """The coverage as lines: declared cases, quantities, selections and DBA steps, what was not declared,
    and the results file's keys."""
    cov = report.coverage
    d = cov.declaration
    n_layers = sum(cov.layers.values())
    lines = [f"declared      {d.flags() or 'everything (no --case, --only, --metric, --strategy or --base)'}"
             + (f"  [{cov.source}]" if cov.source else ""),
             f"cases         {len(d.cases)}: {', '.join(d.cases)}",
             f"quantities    {', '.join(d.asked_quantities)}"]
    selection_fields = [q for q in ("indices", "removed", "value", "values") if q in d.quantities]
    if selection_fields:
        lines.append(f"selections    {_few(d.metrics, 'metrics')} × {_few(d.strategies, 'strategies')} on every layer: "
                     f"{len(d.metrics) * len(d.strategies) * n_layers} ({', '.join(selection_fields)})")
    if d.trajectories:
        checked = [q.replace("step_", "") for q in d.step_quantities if q.startswith("step_")]
        checked += ["weights"] if any(q.startswith("dba_") for q in d.step_quantities) else []
        lines.append(f"DBA steps     {d.steps} per trajectory from each case's weights, "
                     f"{_few([f'DBA({b})' for b in d.bases], 'bases')} × {_few(d.metrics, 'metrics')} × "
                     f"{_few(d.strategies, 'strategies')}: "
                     f"{plural(len(d.trajectories) * len(d.cases), 'trajectory', 'trajectories')}, "
                     f"{len(d.trajectories) * d.steps * n_layers} layer steps ({', '.join(checked)} after each)")
    left = d.undeclared()
    if "quantities" in left:                   # the weights of undeclared bases go without saying
        unasked = {f"dba_{base}" for base in left.get("bases", ())}
        left["quantities"] = [q for q in left["quantities"] if q not in unasked]
        left = {name: values for name, values in left.items() if values}
    if "cases" in left:                        # named by count: a check of some cases lists nothing of the others
        left["cases"] = [plural(len(left["cases"]), "other")]
    if left:
        lines.append("not declared  " + "; ".join(f"{name} {', '.join(values)}" for name, values in left.items()))
    if cov.supplied:
        lines.append(f"results       {plural(cov.supplied, 'key')}: {cov.supplied - cov.outside - len(report.unexpected)} "
                     f"declared, {cov.outside} outside the declaration (not compared), {len(report.unexpected)} unknown")
    return lines


def format_trajectories(report: ConformanceReport, max_listed: int) -> list:
    """The trajectories in a few lines: how many agree, where each failing one first diverges, the re-synchronisations."""
    if not report.trajectories:
        return []
    failing = report.divergences
    resynced = sum(len(t.resynchronised) for t in report.trajectories)
    lines = [f"\nDBA trajectories: {len(report.trajectories) - len(failing)} of {len(report.trajectories)} agree at "
             f"every step judged"
             + (f"; the reference took the other's selection at {plural(resynced, 'layer step')} where they parted"
                if resynced else "")]
    if failing:
        lines.append(f"first divergences ({len(failing)}):")
        lines += [f"  {d}" for d in failing[:max_listed]]
        if len(failing) > max_listed:
            lines.append(f"  ... and {len(failing) - max_listed} more")
    return lines


def format_report(report: ConformanceReport, max_listed: int = 20) -> str:
    """The report as text: the coverage, the table, then missing keys, wrong shapes, failures, ambiguous calls
    and unknown keys by name, the trajectories' first divergences, and the verdict."""
    header = ("quantity", "dtype", "compared", "rel error", "allowed", "result", "worst key")
    lines = []
    for row in report.rows.values():
        if row.exact:
            error, tol = f"{len(row.failed)} differ", "exact"
        else:
            error, tol = (f"{row.max_error:.2e}", f"{row.allowed:.1e}") if row.compared else ("-", "-")
        result = "pass" if row.passed else "FAIL"
        notes = [f"{len(getattr(row, a))} {label}" for a, label in (("missing", "missing"), ("bad", "wrong shape"),
                                                                   ("ambiguous", "ambiguous")) if getattr(row, a)]
        if notes:
            result += f" ({', '.join(notes)})"
        lines.append((row.quantity, row.dtype, str(row.compared), error, tol, result, row.worst_key))
    text = (format_coverage(report) + [""] if report.coverage is not None else []) + columns([header, *lines])
    hint = ("  (declare what you implement: --metric, --strategy, --base, --only, --case; or --inputs DIR for the "
            "declaration of `dba-ref conformance export DIR`)")
    for title, items in (("implementation errors", report.implementation_errors),
                         ("missing keys", report.listed("missing")),
                         ("wrong shape or dtype", report.listed("bad")),
                         ("failures", report.listed("failed")),
                         ("ambiguous: near-ties, not failures (spec §5)", report.listed("ambiguous")),
                         ("unexpected keys (ignored)", report.unexpected)):
        if items:
            text.append(f"\n{title} ({len(items)}):")
            if (title == "missing keys" and len(items) > max_listed and report.coverage is not None
                    and not report.coverage.declaration.flags()):
                text.append(hint)
            text += [f"  {item}" for item in items[:max_listed]]
            if len(items) > max_listed:
                text.append(f"  ... and {len(items) - max_listed} more")
    text += format_trajectories(report, max_listed)
    n_amb = len(report.listed("ambiguous"))
    text.append(f"\nconformance: {'PASS' if report.passed else 'FAIL'}"
                + (f" ({plural(n_amb, 'ambiguous near-tie')})" if n_amb else ""))
    return "\n".join(text)

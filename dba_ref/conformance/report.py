"""The conformance report: one row per quantity and dtype, with every problem listed by key, as text."""
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

    @property
    def exact(self) -> bool:
        return self.quantity in EXACT_QUANTITIES

    @property
    def passed(self) -> bool:
        return not (self.failed or self.missing or self.bad)

    def record_error(self, rkey: str, err: float, allowed: float) -> None:
        """Record one compared array: the error of its worst entry and what the rule allows it, both relative to
        the entry's rounding scale (:func:`dba_ref.agreement.worst_error`)."""
        self.compared += 1
        if self.compared == 1 or error_ratio(err, allowed) > error_ratio(self.max_error, self.allowed):
            self.max_error, self.allowed, self.worst_key = err, allowed, rkey
        if not err <= allowed:
            self.failed.append(f"{rkey}: max relative error {err:.3g} > {allowed:.3g} allowed")

    def record_verdict(self, rkey: str, verdict: SelectionVerdict) -> None:
        """Record an exact comparison (a selected set or a removal order)."""
        self.compared += 1
        if verdict.status == "ambiguous":
            self.ambiguous.append(f"{rkey}: {verdict.detail}")
        elif verdict.status == "differ":
            self.failed.append(f"{rkey}: {verdict.detail}")


@dataclass
class ConformanceReport:
    """The outcome of a check: one :class:`QuantityRow` per quantity and dtype, and the keys it ignored."""

    rows: dict = field(default_factory=dict)
    unexpected: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows.values())

    def row(self, quantity: str, dtype: str) -> QuantityRow:
        return self.rows.setdefault((quantity, dtype), QuantityRow(quantity, dtype))

    def listed(self, attribute: str) -> list:
        """Every row's entries of ``attribute`` (``failed``, ``missing``, ``bad``, ``ambiguous``)."""
        return [item for row in self.rows.values() for item in getattr(row, attribute)]


def format_report(report: ConformanceReport, max_listed: int = 20) -> str:
    """The report as text: the table, then missing keys, wrong shapes, failures and ambiguous calls by name."""
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
    text = columns([header, *lines])
    for title, items in (("missing keys", report.listed("missing")),
                         ("wrong shape or dtype", report.listed("bad")),
                         ("failures", report.listed("failed")),
                         ("ambiguous: near-ties, not failures (spec §5)", report.listed("ambiguous")),
                         ("unexpected keys (ignored)", report.unexpected)):
        if items:
            text.append(f"\n{title} ({len(items)}):")
            text += [f"  {item}" for item in items[:max_listed]]
            if len(items) > max_listed:
                text.append(f"  ... and {len(items) - max_listed} more")
    n_amb = len(report.listed("ambiguous"))
    text.append(f"\nconformance: {'PASS' if report.passed else 'FAIL'}"
                + (f" ({plural(n_amb, 'ambiguous near-tie')})" if n_amb else ""))
    return "\n".join(text)

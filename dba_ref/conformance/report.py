"""The conformance report: one row per quantity and dtype, with every problem listed by key, as text."""
from __future__ import annotations

from dataclasses import dataclass, field

from .._text import columns, plural
from ..agreement import SelectionVerdict
from .schema import EXACT_QUANTITIES, TOLERANCES

@dataclass
class QuantityRow:
    """One line of the report: a quantity over all cases of one dtype, with its problems listed by key."""

    quantity: str
    dtype: str
    compared: int = 0
    max_error: float = 0.0
    worst_key: str = ""
    failed: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    bad: list = field(default_factory=list)
    ambiguous: list = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.quantity in EXACT_QUANTITIES

    @property
    def tolerance(self) -> float | None:
        return None if self.exact else TOLERANCES[self.dtype][self.quantity]

    @property
    def passed(self) -> bool:
        return not (self.failed or self.missing or self.bad)

    def record_error(self, rkey: str, err: float, allowed: float | None = None) -> None:
        """Record the max relative error of one compared array; ``allowed`` (default: the row's tolerance)
        is larger where the rounding bound of a long greedy path is (:func:`dba_ref.agreement.check_selection`)."""
        allowed = self.tolerance if allowed is None else allowed
        self.compared += 1
        if self.compared == 1 or err > self.max_error:
            self.max_error, self.worst_key = err, rkey
        if not err <= allowed:
            self.failed.append(f"{rkey}: max relative error {err:.3g} > {allowed:g}")

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
    header = ("quantity", "dtype", "compared", "max rel error", "tolerance", "result", "worst key")
    lines = []
    for row in report.rows.values():
        if row.exact:
            error, tol = f"{len(row.failed)} differ", "exact"
        else:
            error, tol = (f"{row.max_error:.2e}" if row.compared else "-"), f"{row.tolerance:.0e}"
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

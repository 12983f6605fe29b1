"""The check: another implementation's outputs compared with the golden cases, quantity by quantity.

- arrays (losses, gradients, Grams, weights) by the **max relative error**
  ``max|a − r| / max|r|`` over the array (r the reference), against the
  tolerance of :data:`~dba_ref.conformance.schema.TOLERANCES` for the case's dtype;
- metric values relative to their **rounding scale**
  (:func:`dba_ref.agreement.value_scale`), because a metric is a difference
  that can cancel to 0, with the allowance of a long greedy path where it is
  larger (spec §7.1); ``Q`` relative to ``B·T``; entries where the reference
  is ±inf must be equal;
- selected sets and removal orders **exactly**, except at a near-tie (spec §5):
  a decision whose reference margin is ≤ :data:`~dba_ref.agreement.AMBIGUITY`
  is a close call that a correct implementation may decide the other way; it
  is reported as *ambiguous*, not as a failure, and nothing that follows from
  it is compared.

The rules themselves are :mod:`dba_ref.agreement`'s, the same the tests use.
"""
from __future__ import annotations

import numpy as np

from ..agreement import AMBIGUITY, check_selection, full_stat_scale, max_rel_error
from .files import load_golden
from .report import ConformanceReport
from .schema import _VARIABLE_LENGTH, QUANTITIES, TOLERANCES, output_keys, quantity_of

def check_results(results: dict, golden=None, quantities=QUANTITIES, cases=None) -> ConformanceReport:
    """Compare ``results`` (``{"<case>/<key>": array}``) with the golden cases.

    ``quantities`` and ``cases`` restrict what is required and compared.
    Missing keys and arrays of the wrong shape are recorded by name in the report.
    """
    golden = load_golden() if golden is None else golden
    unknown = sorted(set(quantities) - set(QUANTITIES))
    if unknown:
        raise ValueError(f"unknown quantity {', '.join(unknown)}; choose from {', '.join(QUANTITIES)}")
    names = list(golden) if cases is None else list(cases)
    unknown = sorted(set(names) - set(golden))
    if unknown:
        raise ValueError(f"unknown case {', '.join(unknown)}; choose from {', '.join(golden)}")
    report = ConformanceReport()
    for q in QUANTITIES:                       # every requested row is shown, in a fixed order
        if q in quantities:
            for dtype in sorted({str(golden[n]["dtype"]) for n in names}, reverse=True):
                report.row(q, dtype)
    expected = set()
    for name in names:
        expected |= _check_case(name, golden[name], results, report)
    report.unexpected = sorted(k for k in results if k not in expected)
    return report


def _check_case(name: str, ref: dict, results: dict, report: ConformanceReport) -> set:
    """Check one case's keys; return the result keys it expects."""
    dtype = str(ref["dtype"])
    seen, got = set(), {}
    for key in output_keys(ref):
        rkey = f"{name}/{key}"
        seen.add(rkey)
        q = quantity_of(key)
        if (q, dtype) not in report.rows:
            continue
        row = report.row(q, dtype)
        if rkey not in results:
            row.missing.append(rkey)
            continue
        value = np.asarray(results[rkey])
        variable = key.startswith("sel/") and key.rsplit("/", 1)[1] in _VARIABLE_LENGTH
        if not (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)):
            row.bad.append(f"{rkey} has dtype {value.dtype}, expected real numbers")
        elif variable and value.ndim != 1:
            row.bad.append(f"{rkey} has shape {value.shape}, expected 1-D")
        elif not variable and value.shape != ref[key].shape:
            row.bad.append(f"{rkey} has shape {value.shape}, expected {ref[key].shape}")
        else:
            got[key] = value
    for key, value in got.items():
        q = quantity_of(key)
        scale = None
        if q == "full_stats":
            _, layer, stat = key.split("/")
            scale = full_stat_scale(np.asarray(ref[f"gram{layer[1:]}"], np.float64), stat)
        if not key.startswith("sel/"):
            report.row(q, dtype).record_error(f"{name}/{key}", max_rel_error(value, ref[key], scale))
    for prefix in sorted({k.rsplit("/", 1)[0] for k in got if k.startswith("sel/")}):
        _, metric, strategy, layer = prefix.split("/")
        result = check_selection(np.asarray(ref[f"gram{layer[1:]}"], np.float64), metric, strategy,
                                 {f: ref[f"{prefix}/{f}"] for f in ("indices", "removed", "value", "values", "margins")},
                                 **{f: got.get(f"{prefix}/{f}") for f in ("indices", "removed", "value", "values")},
                                 threshold=AMBIGUITY[dtype], rtol=TOLERANCES[dtype]["values"])
        _record_selection(result, f"{name}/{prefix}", lambda q: report.rows.get((q, dtype)))
    return seen


def _record_selection(check, where: str, row) -> None:
    """Enter what comparing one selection found (a :class:`~dba_ref.agreement.SelectionCheck`) into the
    report's rows (``row(quantity)`` gives one, or None for a quantity not checked)."""
    if check.verdict is not None:
        for f in ("indices", "removed"):
            if row(f) is not None:
                row(f).record_verdict(f"{where}/{f}", check.verdict)
    if check.value_error is not None and row("value") is not None:
        row("value").record_error(f"{where}/value", check.value_error, check.value_allowed)
    if row("values") is not None:
        if check.values_problem:
            row("values").failed.append(f"{where}/values: {check.values_problem}")
        elif check.values_error is not None:
            row("values").record_error(f"{where}/values", check.values_error, check.values_allowed)

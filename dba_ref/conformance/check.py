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
  it is compared;
- the DBA steps as trajectories, one step at a time from the other
  implementation's own weights (:mod:`~dba_ref.conformance.trajectory`).

What is asked is the :class:`~dba_ref.conformance.Declaration`'s: a key outside
it is neither missing nor unexpected. The rules themselves are
:mod:`dba_ref.agreement`'s, the same the tests use.
"""
from __future__ import annotations

import numpy as np

from ..agreement import AMBIGUITY, check_selection, full_stat_scale, max_rel_error
from .cases import n_layers, step_inputs
from .declaration import Declaration
from .files import load_golden
from .report import ConformanceReport, Coverage
from .schema import STEP_QUANTITIES, TOLERANCES, padding_problem, quantity_of
from .trajectory import judge_trajectory, reference_trajectory, trajectory_label


def check_results(results: dict, golden=None, declaration: Declaration | None = None,
                  stopped: dict | None = None) -> ConformanceReport:
    """Compare ``results`` (``{"<case>/<key>": array}``) with the reference, on what ``declaration`` declares.

    ``golden`` defaults to the golden cases that ship with the package,
    ``declaration`` to everything, one DBA step. Missing keys and arrays of the
    wrong dtype or shape are recorded by name in the report; keys outside the
    declaration are counted, never listed. ``stopped`` maps a trajectory
    ``(case, base, metric, strategy)`` to ``(step, message)`` when the
    implementation could not make that step (:mod:`~dba_ref.conformance.testing`):
    the message is a failure, and that step's keys and the later ones are not asked for.
    """
    golden = load_golden() if golden is None else golden
    declaration = Declaration() if declaration is None else declaration
    stopped = stopped or {}
    missing_cases = [name for name in declaration.cases if name not in golden]
    if missing_cases:
        raise ValueError(f"the golden cases hold no case {', '.join(missing_cases)}")
    report = ConformanceReport(coverage=Coverage(declaration))
    for q in declaration.asked_quantities:                         # every declared row is shown, in a fixed order
        for dtype in sorted({str(golden[n]["dtype"]) for n in declaration.cases}, reverse=True):
            report.row(q, dtype)
    expected = set()
    for name in declaration.cases:
        inputs = {**golden[name], **step_inputs(name, golden[name], declaration.steps)}
        report.coverage.layers[name] = n_layers(inputs)
        expected |= _check_case(name, inputs, results, declaration, stopped, report)
    report.implementation_errors = [f"{case} {trajectory_label(b, m, s)}, step {step}: {message}"
                                    for (case, b, m, s), (step, message) in stopped.items()]
    for key in results:
        case, _, rest = key.partition("/")
        if key in expected:
            continue
        if case in golden and (case not in declaration.cases or quantity_of(rest) is not None):
            report.coverage.outside += 1         # a key the declaration leaves out: not compared, not listed
        else:
            report.unexpected.append(key)
    report.unexpected.sort()
    report.coverage.supplied = len(results)
    return report


def _check_case(name: str, ref: dict, results: dict, declaration: Declaration, stopped: dict,
                report: ConformanceReport) -> set:
    """Check one case's declared keys; return the result keys it asked for."""
    dtype, B = str(ref["dtype"]), ref["X"].shape[0]
    limits = {(b, m, s): step - 1 for (case, b, m, s), (step, _) in stopped.items() if case == name}
    seen, got = set(), {}
    for key, (q, shape) in declaration.outputs(ref).items():
        if q in STEP_QUANTITIES:               # stacked over the steps the implementation made
            base, metric, strategy = key.split("/")[:3]
            shape = (limits.get((base[4:], metric, strategy), declaration.steps), *shape[1:])
            if shape[0] == 0:
                continue
        rkey = f"{name}/{key}"
        seen.add(rkey)
        row = report.row(q, dtype)
        if rkey not in results:
            row.missing.append(rkey)
            continue
        value = np.asarray(results[rkey])
        if not (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)):
            row.bad.append(f"{rkey} has dtype {value.dtype}, expected real numbers")
        elif shape is None and value.ndim != 1:
            row.bad.append(f"{rkey} has shape {value.shape}, expected 1-D")
        elif shape is not None and value.shape != shape:
            steps = (f": a trajectory of {value.shape[0]} steps where {shape[0]} are declared (--steps)"
                     if q in STEP_QUANTITIES and value.shape[1:] == shape[1:] else "")
            row.bad.append(f"{rkey} has shape {value.shape}, expected {shape}{steps}")
        elif q in ("step_indices", "step_removed") and padding_problem(value, B):
            row.bad.append(f"{rkey} {padding_problem(value, B)}")
        else:
            got[key] = value
    for key, value in got.items():
        q = quantity_of(key)
        if q not in ("losses", "grad", "gram", "full_stats"):
            continue
        scale = None
        if q == "full_stats":
            _, layer, stat = key.split("/")
            scale = full_stat_scale(np.asarray(ref[f"gram{layer[1:]}"], np.float64), stat)
        report.row(q, dtype).record_error(f"{name}/{key}", max_rel_error(value, ref[key], scale))
    for prefix in sorted({k.rsplit("/", 1)[0] for k in got if k.startswith("sel/")}):
        _, metric, strategy, layer = prefix.split("/")
        result = check_selection(np.asarray(ref[f"gram{layer[1:]}"], np.float64), metric, strategy,
                                 {f: ref[f"{prefix}/{f}"] for f in ("indices", "removed", "value", "values", "margins")},
                                 **{f: got.get(f"{prefix}/{f}") for f in ("indices", "removed", "value", "values")},
                                 threshold=AMBIGUITY[dtype], rtol=TOLERANCES[dtype]["values"])
        _record_selection(result, f"{name}/{prefix}", lambda q: report.rows.get((q, dtype)))
    for base, metric, strategy in declaration.trajectories:
        steps = limits.get((base, metric, strategy), declaration.steps)
        if steps:
            report.trajectories.append(judge_trajectory(name, ref, base, metric, strategy, steps, got,
                                                        lambda q: report.rows.get((q, dtype))))
    return seen


def reference_results(declaration: Declaration | None = None, golden=None) -> dict:
    """What a perfect implementation reports for ``declaration``: the reference's own outputs, every key of
    :meth:`~dba_ref.conformance.Declaration.outputs` prefixed by its case (the one-step outputs from the golden files, the
    trajectories computed). The check's own test, and the benchmark's stand-in for another implementation."""
    golden = load_golden() if golden is None else golden
    declaration = Declaration() if declaration is None else declaration
    results = {}
    for name in declaration.cases:
        inputs = {**golden[name], **step_inputs(name, golden[name], declaration.steps)}
        computed = {}
        for base, metric, strategy in declaration.trajectories:
            computed.update(reference_trajectory(inputs, base, metric, strategy, declaration.steps))
        results.update({f"{name}/{key}": np.asarray(computed[key] if key in computed else inputs[key])
                        for key in declaration.outputs(inputs)})
    return results


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

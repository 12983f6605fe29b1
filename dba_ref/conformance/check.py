"""The check: another implementation's outputs compared with the golden cases, quantity by quantity.

Every float is compared by the package's one rule (spec §7.1), its scale and
operation count worked out per key from the case's shapes and dtype
(:func:`output_rounding`):

- arrays (losses, gradients, Grams, weights) entry by entry, within
  :func:`dba_ref.agreement.rounding_tolerance` of the array's **rounding
  scale** (its magnitude; for a Gram entry ``‖g_i‖ ‖g_j‖``) after the
  roundings of a forward and a backward pass (and of ``K`` computed either
  way, by the Gram identity or as ``G Gᵀ``), in the case's dtype;
- metric values relative to their rounding scale
  (:func:`dba_ref.agreement.value_scale`), because a metric is a difference
  that can cancel to 0, within the bound of their path
  (:func:`dba_ref.agreement.selection_tolerances`); ``T`` and ``Q`` relative
  to ``T`` and ``B·T``; entries where the reference is ±inf must be equal;
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

import re

import numpy as np

from ..agreement import (AMBIGUITY, array_scale, check_selection, explicit_gram_ops, full_stat_scale,
                         full_stat_tolerance, gram_entry_rtol, gram_scale, network_ops, path_value_scales,
                         rounding_tolerance, selection_tolerances, value_scales, worst_error)
from ..backprop import backprop
from .cases import model_from_inputs, n_layers, with_step_inputs
from .declaration import Declaration
from .files import load_golden
from .report import ConformanceReport, Coverage
from .schema import STEP_QUANTITIES, padding_problem, quantity_of
from .trajectory import judge_trajectory, reference_trajectory, trajectory_label


def _gram_rtol(case, layer: int) -> float:
    """How far another implementation's K entries of ``layer`` may lie from the case's, relative to
    ``√(K_ii K_jj)``: the roundings of its signals and of K computed either way."""
    return gram_entry_rtol(explicit_gram_ops(case["sizes"], layer), str(case["dtype"]))


def output_rounding(case, key: str, signals=None) -> tuple:
    """``(scale, tolerance)`` of a float output ``key`` of a golden ``case``: its rounding scale, and how far
    another correct implementation's value may lie from the case's by the rule (spec §7.1), absolutely.

    Each is a number or an array that broadcasts against the output:

    - losses, gradients: :func:`~dba_ref.agreement.rounding_tolerance` of the
      array's magnitude after a forward and a backward pass
      (:func:`~dba_ref.agreement.network_ops`); the weights after a DBA step
      add the mean over at most B samples;
    - Gram entries: ``‖g_i‖ ‖g_j‖`` (:func:`~dba_ref.agreement.gram_scale`)
      after the network's roundings and K's, by the identity or as ``G Gᵀ``
      (:func:`~dba_ref.agreement.explicit_gram_ops`);
    - the whole batch's T, Q and metric values, and the selections' value and
      path values: the bounds of :mod:`dba_ref.agreement.bounds`, with each K
      entry off by as much as the Gram's rounding allows.

    The rounding counts in the case's dtype (float32 for the float32 case). ``signals`` is the case's
    :func:`~dba_ref.backprop.backprop`, which a Gram's scale needs: computed when None.
    """
    sizes, B, dtype = case["sizes"], case["X"].shape[0], str(case["dtype"])
    q = quantity_of(key)
    if q in ("losses", "grad", "dba_sgd", "dba_adam"):
        scale = array_scale(case[key])
        return scale, rounding_tolerance(scale, network_ops(sizes) + (B if q.startswith("dba") else 0), dtype)
    layer = int(re.search(r"\d+$", key).group() if q == "gram" else re.search(r"/L(\d+)", key).group(1))
    if q == "gram":
        signals = backprop(model_from_inputs(case), case["X"], case["y"]) if signals is None else signals
        A, D = list(signals.layers)[layer - 1]
        scale = gram_scale(A, D)
        return scale, rounding_tolerance(scale, explicit_gram_ops(sizes, layer), dtype)
    K = np.asarray(case[f"gram{layer}"], np.float64)
    if q == "full_stats":
        stat = key.rsplit("/", 1)[1]
        return full_stat_scale(K, stat), full_stat_tolerance(K, stat, _gram_rtol(case, layer))
    _, metric, strategy, _, field = key.split("/")
    prefix = key.rsplit("/", 1)[0]
    removed, indices = case[f"{prefix}/removed"], case[f"{prefix}/indices"]
    value_tol, values_tol = selection_tolerances(K, metric, strategy, removed, indices, _gram_rtol(case, layer))
    if field == "value":
        return value_scales(K, metric, [indices])[0], value_tol
    return path_value_scales(K, metric, removed), values_tol



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
    missing_cases = [name for name in declaration.cases if name not in golden]
    if missing_cases:
        raise ValueError(f"the golden cases hold no case {', '.join(missing_cases)}")
    inputs = {name: with_step_inputs(name, golden[name], declaration.steps) for name in declaration.cases}
    return check_inputs(results, golden, inputs, declaration, stopped)


def check_inputs(results: dict, golden, inputs: dict, declaration: Declaration, stopped: dict | None = None
                 ) -> ConformanceReport:
    """:func:`check_results` on ``inputs``, ``{case: its file with the step inputs}`` of every declared case
    (:func:`~dba_ref.conformance.cases.with_step_inputs`), for a caller that has built them already."""
    stopped = stopped or {}
    report = ConformanceReport(coverage=Coverage(declaration))
    for q in declaration.asked_quantities:                         # every declared row is shown, in a fixed order
        for dtype in sorted({str(golden[n]["dtype"]) for n in declaration.cases}, reverse=True):
            report.row(q, dtype)
    expected = set()
    for name in declaration.cases:
        report.coverage.layers[name] = n_layers(inputs[name])
        expected |= _check_case(name, inputs[name], results, declaration, stopped, report)
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
        elif q in ("step_indices", "step_removed") and (problem := padding_problem(value, B)):
            row.bad.append(f"{rkey} {problem}")
        else:
            got[key] = value
    signals = (backprop(model_from_inputs(ref), ref["X"], ref["y"])          # once for every Gram's scale
               if any(quantity_of(key) == "gram" for key in got) else None)
    for key, value in got.items():
        q = quantity_of(key)
        if q not in ("losses", "grad", "gram", "full_stats"):
            continue
        scale, tolerance = output_rounding(ref, key, signals)
        report.row(q, dtype).record_error(f"{name}/{key}", *worst_error(value, ref[key], scale, tolerance))
    for prefix in sorted({k.rsplit("/", 1)[0] for k in got if k.startswith("sel/")}):
        _, metric, strategy, layer = prefix.split("/")
        result = check_selection(np.asarray(ref[f"gram{layer[1:]}"], np.float64), metric, strategy,
                                 {f: ref[f"{prefix}/{f}"] for f in ("indices", "removed", "value", "values", "margins")},
                                 **{f: got.get(f"{prefix}/{f}") for f in ("indices", "removed", "value", "values")},
                                 threshold=AMBIGUITY[dtype], gram_rtol=_gram_rtol(ref, int(layer[1:])))
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
        inputs = with_step_inputs(name, golden[name], declaration.steps)
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

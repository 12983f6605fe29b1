"""Golden cases and the conformance check: how another implementation is compared with this one.

- :mod:`~dba_ref.conformance.schema`       the keys of a case file, the quantities
- :mod:`~dba_ref.conformance.cases`        the cases and everything the reference computes from them
- :mod:`~dba_ref.conformance.declaration`  what an implementation declares it implements: what is asked of it
- :mod:`~dba_ref.conformance.files`        the golden files (``golden/`` beside this package: package data), export
- :mod:`~dba_ref.conformance.trajectory`   N consecutive DBA steps, judged one step at a time
- :mod:`~dba_ref.conformance.check`        another implementation's results against the cases, each key within
  the package's one rule (:func:`output_rounding`)
- :mod:`~dba_ref.conformance.report`       the report: coverage, a table, lists of problems, first divergences
- :mod:`~dba_ref.conformance.testing`      the same check from a test suite, on a step function

A **golden case** is a small, fixed problem (an MLP, its weights, a batch, a
``min_size``) together with everything the reference computes from it.
``golden/`` beside this package holds one ``.npz`` per case (a wheel ships
them), written by ``data/golden/make_golden.py`` of the source repository
through :func:`write_golden`; ``docs/golden_schema.md`` lists every key. The
check (``dba-ref conformance check``) reads another implementation's outputs
for the same inputs and compares them quantity by quantity, by the rules of
:mod:`dba_ref.agreement`, on what the implementation declares it implements
(:class:`Declaration`); its DBA steps are checked as trajectories of N steps.
From a test suite, :func:`check_step` and :func:`assert_step_conforms` run the
same check on a step function (:mod:`~dba_ref.conformance.testing`).
"""
from .cases import (CASE_NAMES, CASES, GoldenCase, case_inputs, model_from_inputs, reference_outputs, selection_fields,
                    step_inputs)
from .check import check_results, output_rounding, reference_results
from .declaration import DECLARATION_FILE, Declaration
from .files import PACKAGE_GOLDEN_DIR, export_inputs, golden_dir, load_golden, load_npz, write_golden
from .report import ConformanceReport, Coverage, QuantityRow, format_report
from .schema import (EXACT_QUANTITIES, GOLDEN_MIN_MARGIN, QUANTITIES, STEP_BASES, STEP_QUANTITIES, is_input,
                     output_keys, pad_rows, quantity_of, selection_key, trajectory_key, unpad)
from .testing import StepResult, assert_step_conforms, check_step, parametrize_with_cases
from .trajectory import Divergence, TrajectoryCheck

__all__ = ["CASE_NAMES", "CASES", "GoldenCase", "case_inputs", "model_from_inputs", "reference_outputs",
           "selection_fields", "step_inputs", "check_results", "output_rounding", "reference_results",
           "DECLARATION_FILE", "Declaration", "PACKAGE_GOLDEN_DIR", "export_inputs", "golden_dir", "load_golden",
           "load_npz", "write_golden", "ConformanceReport", "Coverage", "QuantityRow", "format_report",
           "EXACT_QUANTITIES", "GOLDEN_MIN_MARGIN", "QUANTITIES", "STEP_BASES", "STEP_QUANTITIES", "is_input",
           "output_keys", "quantity_of", "selection_key", "trajectory_key", "pad_rows", "unpad", "StepResult",
           "assert_step_conforms", "check_step", "parametrize_with_cases", "Divergence", "TrajectoryCheck"]

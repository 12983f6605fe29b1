"""Golden cases and the conformance check: how another implementation is compared with this one.

- :mod:`~dba_ref.conformance.schema`  the keys of a case file, the quantities
- :mod:`~dba_ref.conformance.cases`   the cases and everything the reference computes from them
- :mod:`~dba_ref.conformance.files`   the golden files (``golden/`` beside this package: package data), export
- :mod:`~dba_ref.conformance.check`   another implementation's results against the cases, each key within
  the package's one rule (:func:`output_rounding`)
- :mod:`~dba_ref.conformance.report`  the report, as a table and lists of problems

A **golden case** is a small, fixed problem (an MLP, its weights, a batch, a
``min_size``) together with everything the reference computes from it.
``golden/`` beside this package holds one ``.npz`` per case (a wheel ships
them), written by ``data/golden/make_golden.py`` of the source repository
through :func:`write_golden`; ``docs/golden_schema.md`` lists every key. The
check (``dba-ref conformance check``) reads another implementation's outputs
for the same inputs and compares them quantity by quantity, by the rules of
:mod:`dba_ref.agreement`.
"""
from .cases import CASES, GoldenCase, case_inputs, model_from_inputs, reference_outputs, selection_fields
from .check import check_results, output_rounding
from .files import PACKAGE_GOLDEN_DIR, export_inputs, golden_dir, load_golden, load_npz, write_golden
from .report import ConformanceReport, QuantityRow, format_report
from .schema import EXACT_QUANTITIES, GOLDEN_MIN_MARGIN, QUANTITIES, is_input, output_keys, quantity_of, selection_key

__all__ = ["CASES", "GoldenCase", "case_inputs", "model_from_inputs", "reference_outputs", "selection_fields",
           "check_results", "output_rounding", "PACKAGE_GOLDEN_DIR", "export_inputs", "golden_dir", "load_golden",
           "load_npz", "write_golden", "ConformanceReport", "QuantityRow", "format_report", "EXACT_QUANTITIES",
           "GOLDEN_MIN_MARGIN", "QUANTITIES", "is_input", "output_keys", "quantity_of",
           "selection_key"]

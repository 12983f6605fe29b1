"""When two implementations of DBA agree: the one rule used by the tests, the conformance checker and the exercises.

Two computations of one quantity agree when they differ by rounding alone,
and how far rounding can take them apart is bounded from the quantity's
*rounding scale* (the size of the terms it is made of) and the number of
roundings that fed it (spec §7.1). A metric value is a difference that can
cancel (``T/k − Q/k²``, ``kT/Q − 1``, ``T/Q − 1/k``): every singleton's
``variance`` is 0 up to rounding, and two values of ±1e-17 are a tie, not a
relative gap of 200%. Values are therefore compared in units of what
rounding can do to them, never relative to themselves. One module per job:

- :mod:`~dba_ref.agreement.rounding`  the rule (:func:`rounding_tolerance`, :data:`SAFETY`, ε and u), and the
  rounding scale and operation count of each quantity (arrays, Gram entries, metric values)
- :mod:`~dba_ref.agreement.bounds`    the rule's long-path form: the error bounds of metric values along a
  greedy path (:func:`path_error_bounds`, :func:`selection_tolerances`)
- :mod:`~dba_ref.agreement.margins`   how close each decision of a search was (:func:`decision_margins`),
  read from the one greedy path; :data:`AMBIGUITY` is the near-tie threshold
- :mod:`~dba_ref.agreement.compare`   the one comparator (:func:`entry_errors`, :func:`max_rel_error`,
  :func:`worst_error`,
  :func:`error_ratio`)
- :mod:`~dba_ref.agreement.judge`     another implementation's selection against the reference's
  (:func:`compare_selection`, :func:`check_selection`, :func:`check_against`)

Everything here is computed only when a caller asks: the searches themselves
compute none of it.
"""
from .bounds import (full_stat_tolerance, path_error_bounds, path_value_tolerances, selection_tolerances,
                     subset_error_bound)
from .compare import entry_errors, error_ratio, max_rel_error, worst_error
from .judge import (SelectionCheck, SelectionVerdict, check_against, check_selection, compare_selection,
                    selection_outputs)
from .margins import (decision_margin, decision_margins, decisive_steps, exhaustive_margins, greedy_margins,
                      prefix_margins, scaled_gap)
from .rounding import (AMBIGUITY, SAFETY, UNIT_ROUNDOFF, agreement_tolerance, array_scale, explicit_gram_ops,
                       full_stat_scale, gram_entry_rtol, gram_ops, gram_scale, machine_epsilon, network_ops,
                       path_stats, path_value_scales, rounding_tolerance, row_norms, value_scale, value_scales)

__all__ = ["AMBIGUITY", "SAFETY", "UNIT_ROUNDOFF", "agreement_tolerance", "array_scale", "explicit_gram_ops",
           "full_stat_scale", "gram_entry_rtol", "gram_ops", "gram_scale", "machine_epsilon", "network_ops",
           "path_stats", "path_value_scales", "rounding_tolerance", "row_norms", "value_scale", "value_scales",
           "full_stat_tolerance", "path_error_bounds", "path_value_tolerances", "selection_tolerances",
           "subset_error_bound", "entry_errors", "error_ratio", "max_rel_error", "worst_error", "SelectionCheck",
           "SelectionVerdict", "check_against", "check_selection", "compare_selection", "selection_outputs",
           "decision_margin", "decision_margins", "decisive_steps", "exhaustive_margins", "greedy_margins",
           "prefix_margins", "scaled_gap"]

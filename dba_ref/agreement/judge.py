"""The judge: another implementation's selection against the reference's (spec §5, §7.1).

The set and the removal order must be equal, except where the reference
decided a near-tie (:mod:`~dba_ref.agreement.margins`): from there on nothing
is compared. Values are compared with the one comparator
(:mod:`~dba_ref.agreement.compare`) within the rule's bounds
(:mod:`~dba_ref.agreement.bounds`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._text import plural
from .bounds import full_stat_tolerance, selection_tolerances
from .compare import worst_error
from .margins import decision_margins
from .rounding import AMBIGUITY, full_stat_scale, path_value_scales, value_scales


@dataclass(frozen=True)
class SelectionVerdict:
    """How another implementation's selection compares with the reference's.

    ``status`` is ``"agree"``, ``"ambiguous"`` (they part at a near-tie) or
    ``"differ"``; ``agreed_steps`` is how many leading entries of the removal
    order agree (so how many path values can be compared).
    """

    status: str
    agreed_steps: int
    detail: str = ""


def _first_difference(a: np.ndarray, b: np.ndarray) -> int | None:
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    if diff.size:
        return int(diff[0])
    return None if len(a) == len(b) else n


def _at(seq, t):
    return int(seq[t]) if t < len(seq) else "nothing (stops)"


def compare_selection(strategy: str, ref_indices, ref_removed, ref_margins, indices=None, removed=None,
                      threshold: float = AMBIGUITY["float64"]) -> SelectionVerdict:
    """Compare one selection (its set ``indices`` and/or its ``removed`` order) with the reference.

    Close calls are ambiguous, not failures (spec §5). Greedy: the step where
    the removal orders first part is ambiguous if the reference's margin there
    is ≤ ``threshold``; if the reference stopped there because of ``min_size``
    there was no decision to make, and they differ. Otherwise (prefix,
    exhaustive, or greedy given without its removal order) a difference is
    ambiguous if any decision margin of the reference is ≤ ``threshold``.
    """
    ref_indices, ref_removed = np.asarray(ref_indices, np.int64), np.asarray(ref_removed, np.int64)
    ref_margins = np.asarray(ref_margins, np.float64)
    same_set = indices is None or (np.shape(indices) == ref_indices.shape and bool(np.all(indices == ref_indices)))
    t = None if removed is None else _first_difference(ref_removed, np.asarray(removed))
    agreed = len(ref_removed) if t is None else t
    if t is None and same_set:
        return SelectionVerdict("agree", agreed)
    if strategy == "greedy" and t is not None:
        if t < len(ref_margins) and ref_margins[t] <= threshold:
            return SelectionVerdict("ambiguous", agreed, f"removal step {t + 1}: reference margin {ref_margins[t]:.2g}")
        return SelectionVerdict("differ", agreed, f"removal step {t + 1}: reference removes "
                                f"{_at(ref_removed, t)}, got {_at(removed, t)}")
    if ref_margins.size and ref_margins.min() <= threshold:
        return SelectionVerdict("ambiguous", agreed, f"reference margin {ref_margins.min():.2g}")
    if not same_set:
        return SelectionVerdict("differ", agreed, f"reference keeps {ref_indices.tolist()}, "
                                f"got {np.asarray(indices).tolist()}")
    return SelectionVerdict("differ", agreed, f"removal order: reference {ref_removed.tolist()}, "
                            f"got {np.asarray(removed).tolist()}")


@dataclass(frozen=True)
class SelectionCheck:
    """What comparing one selection found.

    ``verdict`` is ``None`` when neither the set nor the path was given.
    ``value_error`` and ``values_error`` are errors relative to the rounding
    scale (:func:`~dba_ref.agreement.rounding.value_scale`), ``value_allowed``
    and ``values_allowed`` what the rule allows on the same scale
    (:func:`~dba_ref.agreement.bounds.selection_tolerances`); for a path, the
    entry nearest to (or furthest beyond) its allowance
    (:func:`~dba_ref.agreement.compare.worst_error`). Errors are ``None``
    where the verdict allows no comparison (values after the two paths part
    belong to different subsets); ``values_problem`` says why a path could not
    be compared at all. ``full_stats_error`` and ``full_stats_allowed`` are the
    same for the whole batch's statistics (:func:`check_against`).
    """

    verdict: SelectionVerdict | None
    value_error: float | None = None
    value_allowed: float | None = None
    values_error: float | None = None
    values_allowed: float | None = None
    values_problem: str = ""
    full_stats_error: float | None = None
    full_stats_allowed: float | None = None

    @property
    def passed(self) -> bool:
        """No difference, no value beyond what it is allowed (ambiguous decisions pass)."""
        return ((self.verdict is None or self.verdict.status != "differ") and not self.values_problem
                and (self.value_error is None or self.value_error <= self.value_allowed)
                and (self.values_error is None or self.values_error <= self.values_allowed)
                and (self.full_stats_error is None or self.full_stats_error <= self.full_stats_allowed))

    def problems(self) -> list[str]:
        """What did not pass, in words (empty when :attr:`passed`)."""
        found = []
        if self.verdict is not None and self.verdict.status == "differ":
            found.append(f"selection differs: {self.verdict.detail}")
        if self.values_problem:
            found.append(f"path values: {self.values_problem}")
        for name in ("value", "values", "full_stats"):
            error, allowed = getattr(self, f"{name}_error"), getattr(self, f"{name}_allowed")
            if error is not None and not error <= allowed:
                found.append(f"{name}: error {error:.3g} of the rounding scale > {allowed:.3g} allowed")
        return found


def check_selection(K: np.ndarray, metric: str, strategy: str, ref: dict, indices=None, removed=None, value=None,
                    values=None, threshold: float = AMBIGUITY["float64"], gram_rtol: float = 0.0) -> SelectionCheck:
    """Compare one selection (any of its four outputs) with the reference's ``ref``.

    ``ref`` holds the reference's ``indices``, ``removed``, ``value``,
    ``values`` and ``margins``; ``K`` (float64) is the layer's reference Gram
    matrix. The set and the path are judged by :func:`compare_selection`; the
    selected value is compared only if they agree, the path values only as
    far as the paths agree, each within the rule's tolerance
    (:func:`~dba_ref.agreement.bounds.selection_tolerances`, with ``gram_rtol``
    the error of the other side's K entries when it computed K itself).
    """
    K = np.asarray(K, np.float64)
    verdict = None
    if indices is not None or removed is not None:
        verdict = compare_selection(strategy, ref["indices"], ref["removed"], ref["margins"], indices, removed,
                                    threshold)
    status = None if verdict is None else verdict.status
    result = {}
    ref_removed = np.asarray(ref["removed"], np.int64)
    value_tolerance, values_tolerances = selection_tolerances(K, metric, strategy, ref_removed, ref["indices"],
                                                              gram_rtol)
    if value is not None and status in (None, "agree"):
        scale = value_scales(K, metric, [np.asarray(ref["indices"], np.int64)])[0]
        result["value_error"], result["value_allowed"] = worst_error(value, ref["value"], scale, value_tolerance)
    if values is not None and status != "differ":
        ref_values, values = np.asarray(ref["values"]), np.asarray(values)
        n = len(ref_values) if status in (None, "agree") else verdict.agreed_steps
        if (status in (None, "agree") and len(values) != len(ref_values)) or len(values) < n:
            result["values_problem"] = f"{plural(len(values), 'entry', 'entries')}, expected {len(ref_values)}"
        else:
            result["values_error"], result["values_allowed"] = worst_error(
                values[:n], ref_values[:n], path_value_scales(K, metric, ref_removed[:n]), values_tolerances[:n])
    return SelectionCheck(verdict, **result)


def selection_outputs(selection) -> dict:
    """What a conformance check reads of a selection: ``indices``, ``removed``, ``value``, ``values`` and the
    whole batch's ``full_T``, ``full_Q``, ``full_value``, from a :class:`~dba_ref.Selection` or any object
    with those attributes (arrays, tensors or numbers)."""
    if hasattr(selection, "trace"):
        tr = selection.trace
        return {"indices": selection.indices, "removed": tr.removed, "value": selection.value, "values": tr.values,
                "full_T": tr.full_T, "full_Q": tr.full_Q, "full_value": tr.full_value}
    return {f: getattr(selection, f) for f in ("indices", "removed", "value", "values", "full_T", "full_Q",
                                               "full_value")}


def check_against(K: np.ndarray, reference, other, threshold: float = AMBIGUITY["float64"], gram_rtol: float = 0.0,
                  margins=None) -> SelectionCheck:
    """Compare another implementation's selection with a reference :class:`~dba_ref.Selection` made on ``K``.

    ``other`` is another :class:`~dba_ref.Selection`, or any object with the
    attributes of :func:`selection_outputs`. The result adds the whole batch's
    statistics ``T``, ``Q`` and metric value (the one nearest its allowance,
    :func:`~dba_ref.agreement.bounds.full_stat_tolerance`) to
    :func:`check_selection`'s. ``gram_rtol`` is the error of ``other``'s K
    entries when it computed K itself
    (:func:`~dba_ref.agreement.rounding.gram_entry_rtol`). ``margins`` are the
    reference's :func:`~dba_ref.agreement.margins.decision_margins` on ``K``
    when the caller has them; else they are replayed, and only where they are
    read: when the two selections differ.
    """
    K = np.asarray(K, np.float64)
    tr = reference.trace
    out = selection_outputs(other)
    got = {f: np.asarray(out[f]) for f in ("indices", "removed", "value", "values")}
    if margins is None:
        same = np.array_equal(got["indices"], reference.indices) and np.array_equal(got["removed"], tr.removed)
        margins = np.zeros(0) if same else decision_margins(K, reference)
    ref = {"indices": reference.indices, "value": reference.value, "removed": tr.removed, "values": tr.values,
           "margins": margins}
    result = check_selection(K, tr.metric, tr.strategy, ref, **got, threshold=threshold, gram_rtol=gram_rtol)
    names = ("T", "Q", tr.metric)
    stats = [np.asarray(out[f], np.float64) for f in ("full_T", "full_Q", "full_value")]
    full_error, full_allowed = worst_error(
        np.array(stats) if all(s.shape == () for s in stats) else np.zeros(0), [tr.full_T, tr.full_Q, tr.full_value],
        [full_stat_scale(K, name) for name in names], [full_stat_tolerance(K, name, gram_rtol) for name in names])
    return SelectionCheck(**{**result.__dict__, "full_stats_error": full_error, "full_stats_allowed": full_allowed})

"""The golden files' schema: which keys a case holds, which quantity each output belongs to.

Keys of one case file: inputs (``X``, ``y``, ``W1``, ``b1``, ... and the
hyper-parameters), outputs (``losses``, ``grad_W1``, ``gram1``, ``full/L1/T``,
``sel/<metric>/<strategy>/L<l>/<field>``, ...) and reference-only keys: the
``margins`` of every selection, which the check uses but never asks for, and
the weights after the reference's first DBA(SGD) and DBA(Adam) step
(``dba_sgd/W1``, ...), which pin the reference's step across versions.

The DBA steps another implementation is asked for are **trajectories**: for
each base optimizer, metric and strategy, ``steps`` consecutive steps from the
case's weights on the batches ``step_X[t-1], step_y[t-1]``, one array per
layer and output stacked over the steps, keyed
``dba_<base>/<metric>/<strategy>/...`` (:func:`trajectory_key`; the reference
computes them when it checks, :mod:`~dba_ref.conformance.trajectory`).
``docs/golden_schema.md`` lists every key. How far each output may lie from the
reference is the package's one rule, worked out per key by
:func:`dba_ref.conformance.check.output_rounding`.
"""
from __future__ import annotations

import re

import numpy as np

#: The golden files hold no near-tie: every margin of a case exceeds this (checked when written).
GOLDEN_MIN_MARGIN = {"float64": 1e-6, "float32": 1e-4}

#: The base optimizers of the DBA steps, with the hyper-parameters a case gives each (input ``<base>_<name>``,
#: the keyword of :func:`dba_ref.make_optimizer`).
STEP_BASES = {"sgd": ("learning_rate",), "momentum": ("learning_rate", "momentum"),
              "adam": ("learning_rate", "beta1", "beta2", "eps")}

_STEP_WEIGHTS = tuple(f"dba_{base}" for base in STEP_BASES)
#: The quantities of the DBA steps: each step's selected sets and removal orders, and the weights after it
#: (``dba_<base>``, one quantity per base optimizer).
STEP_QUANTITIES = ("step_indices", "step_removed", *_STEP_WEIGHTS)

#: Quantities in the order of the report; ``indices``, ``removed`` and their step versions are compared exactly.
QUANTITIES = ("losses", "grad", "gram", "full_stats", "indices", "value", "removed", "values", *STEP_QUANTITIES)
EXACT_QUANTITIES = ("indices", "removed", "step_indices", "step_removed")

#: The fields of a selection's outputs, ``sel/<metric>/<strategy>/L<l>/<field>``.
SELECTION_FIELDS = ("indices", "value", "removed", "values")
#: The selection fields that are 1-D arrays of any length (``value`` is a number).
VARIABLE_LENGTH = ("indices", "removed", "values")


def selection_key(metric: str, strategy: str, layer: int, field_name: str) -> str:
    """Key of one field of one selection, e.g. ``sel/mean_variance/greedy/L1/indices`` (layers from 1)."""
    return f"sel/{metric}/{strategy}/L{layer}/{field_name}"


def trajectory_key(base: str, metric: str, strategy: str, name: str) -> str:
    """Key of one output of a trajectory, stacked over its steps: ``name`` is ``L<l>/indices``, ``L<l>/removed``
    (``(steps, B)``, padded with -1), ``W<l>`` or ``b<l>`` (``(steps, out_l, in_l)``, ``(steps, out_l)``),
    e.g. ``dba_sgd/mean_variance/greedy/L1/indices``."""
    return f"dba_{base}/{metric}/{strategy}/{name}"


def quantity_of(key: str) -> str | None:
    """The quantity an output key belongs to; ``None`` for inputs and margins.

    The reference-only first steps ``dba_sgd/W<l>``, ``dba_adam/b<l>`` of the golden files belong to
    ``dba_sgd`` and ``dba_adam`` (the golden files' test compares them); the check asks for the trajectories of
    :func:`trajectory_key` instead.
    """
    if key == "losses":
        return "losses"
    if re.fullmatch(r"grad_[Wb]\d+", key):
        return "grad"
    if re.fullmatch(r"gram\d+", key):
        return "gram"
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "full" and re.fullmatch(r"L\d+", parts[1]):
        return "full_stats"
    if len(parts) == 5 and parts[0] == "sel" and parts[4] in SELECTION_FIELDS:
        return parts[4]
    if len(parts) == 2 and parts[0] in ("dba_sgd", "dba_adam") and re.fullmatch(r"[Wb]\d+", parts[1]):
        return parts[0]
    if len(parts) == 4 and parts[0] in _STEP_WEIGHTS and re.fullmatch(r"[Wb]\d+", parts[3]):
        return parts[0]
    if len(parts) == 5 and parts[0] in _STEP_WEIGHTS and re.fullmatch(r"L\d+", parts[3]) \
            and parts[4] in ("indices", "removed"):
        return f"step_{parts[4]}"
    return None


def is_input(key: str) -> bool:
    """Whether ``key`` of a case file is one of the case's inputs."""
    return quantity_of(key) is None and not key.endswith("/margins")


def output_keys(case_file) -> list[str]:
    """The outputs a golden file holds, in file order (what the check asks for is the declaration's,
    :meth:`dba_ref.conformance.Declaration.outputs`)."""
    return [k for k in case_file if quantity_of(k) is not None]


def pad_rows(rows, width: int) -> np.ndarray:
    """Rows of sample indices of different lengths as one int64 array ``(len(rows), width)``, padded with -1."""
    out = np.full((len(rows), width), -1, np.int64)
    for t, row in enumerate(rows):
        out[t, :len(row)] = row
    return out


def stack_steps(base: str, metric: str, strategy: str, rows: dict, width: int) -> dict:
    """A trajectory's outputs ``{name: [one array per step]}`` stacked over its steps, by :func:`trajectory_key`:
    the selections (``L<l>/indices``, ``L<l>/removed``) by :func:`pad_rows` to ``width``, the weights by
    ``np.stack``."""
    return {trajectory_key(base, metric, strategy, name): pad_rows(arrays, width) if name.startswith("L")
            else np.stack(arrays) for name, arrays in rows.items()}


def unpad(row) -> np.ndarray:
    """The entries of a padded row before its first -1 (:func:`pad_rows`)."""
    row = np.asarray(row)
    end = np.flatnonzero(row == -1)
    return row[:end[0]] if end.size else row


def padding_problem(array, batch_size: int) -> str | None:
    """Why ``array`` ``(steps, B)`` is not rows of sample indices (0..B-1) padded with -1 at the end, or None."""
    values = np.asarray(array, np.float64)
    if not np.all(values == np.round(values)) or values.min(initial=0) < -1 or values.max(initial=0) >= batch_size:
        return f"holds entries that are not sample indices 0..{batch_size - 1} or the padding -1"
    padding = values == -1
    late = np.flatnonzero((padding[:, :-1] & ~padding[:, 1:]).any(axis=1)) if values.shape[1] > 1 else []
    if len(late):
        return f"row {late[0]} (step {late[0] + 1}) has an index after the padding -1 (pad at the end only)"
    return None

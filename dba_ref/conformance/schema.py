"""The golden files' schema: which keys a case holds, which quantity each output belongs to.

Keys of one case file: inputs (``X``, ``y``, ``W1``, ``b1``, ... and the
hyper-parameters), outputs (``losses``, ``grad_W1``, ``gram1``, ``full/L1/T``,
``sel/<metric>/<strategy>/L<l>/<field>``, ``dba_sgd/W1``, ...) and the
reference-only ``margins`` of every selection, which the check uses but never
asks for. ``docs/golden_schema.md`` lists every key. How far each output may
lie from the reference is the package's one rule, worked out per key by
:func:`dba_ref.conformance.check.output_rounding`.
"""
from __future__ import annotations

import re

#: The golden files hold no near-tie: every margin of a case exceeds this (checked when written).
GOLDEN_MIN_MARGIN = {"float64": 1e-6, "float32": 1e-4}

#: Quantities in the order of the report; ``indices`` and ``removed`` are compared exactly.
QUANTITIES = ("losses", "grad", "gram", "full_stats", "indices", "value", "removed", "values", "dba_sgd",
              "dba_adam")
EXACT_QUANTITIES = ("indices", "removed")

_SELECTION_FIELDS = ("indices", "value", "removed", "values")
_VARIABLE_LENGTH = ("indices", "removed", "values")


def selection_key(metric: str, strategy: str, layer: int, field_name: str) -> str:
    """Key of one field of one selection, e.g. ``sel/mean_variance/greedy/L1/indices`` (layers from 1)."""
    return f"sel/{metric}/{strategy}/L{layer}/{field_name}"


def quantity_of(key: str) -> str | None:
    """The quantity an output key belongs to; ``None`` for inputs and reference-only keys."""
    if key == "losses":
        return "losses"
    if re.fullmatch(r"grad_[Wb]\d+", key):
        return "grad"
    if re.fullmatch(r"gram\d+", key):
        return "gram"
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == "full" and re.fullmatch(r"L\d+", parts[1]):
        return "full_stats"
    if len(parts) == 5 and parts[0] == "sel" and parts[4] in _SELECTION_FIELDS:
        return parts[4]
    if len(parts) == 2 and parts[0] in ("dba_sgd", "dba_adam") and re.fullmatch(r"[Wb]\d+", parts[1]):
        return parts[0]
    return None


def is_input(key: str) -> bool:
    """Whether ``key`` of a case file is one of the case's inputs."""
    return quantity_of(key) is None and not key.endswith("/margins")


def output_keys(case_file) -> list[str]:
    """The keys another implementation must produce for a case, in file order."""
    return [k for k in case_file if quantity_of(k) is not None]

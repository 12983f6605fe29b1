"""A declaration: what another implementation implements, so what the check asks of it and nothing more.

An implementation of DBA is rarely all of it: one metric, one search, one base
optimizer. A :class:`Declaration` names the cases, quantities, metrics,
strategies and base optimizers it implements and the length of its DBA
trajectories; ``dba-ref conformance export`` writes only those inputs (and the
declaration, ``DECLARATION.json``), and the check asks for exactly the keys of
:meth:`Declaration.outputs`: a key outside the declaration is never missing,
and one in the results file is never unexpected.

>>> from dba_ref.conformance import Declaration
>>> d = Declaration(metrics=["mean_variance"], strategies=["greedy"], bases=["sgd"], steps=20)
>>> d.flags()
'--metric mean_variance --strategy greedy --base sgd --steps 20'
>>> d.step_quantities
('step_indices', 'step_removed', 'dba_sgd')
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from itertools import product
from numbers import Integral
from pathlib import Path
from typing import NamedTuple

from ..metrics import METRIC_NAMES
from ..search import STRATEGIES
from .cases import CASE_NAMES, n_layers
from .schema import (QUANTITIES, SELECTION_FIELDS, STEP_BASES, STEP_QUANTITIES, VARIABLE_LENGTH, selection_key,
                     trajectory_key)

class Output(NamedTuple):
    """One output asked of a case: its ``quantity`` and ``shape`` (``None``: 1-D, any length)."""

    quantity: str
    shape: tuple | None


#: The longest trajectory a declaration may ask for (every step's batch is drawn and kept in memory).
MAX_STEPS = 1000

#: The file ``dba-ref conformance export DIR`` writes the declaration to, in DIR.
DECLARATION_FILE = "DECLARATION.json"

#: Each field's choices (the default is all of them) and its command-line option.
_CHOICES = {"cases": (CASE_NAMES, "--case"), "quantities": (QUANTITIES, "--only"), "metrics": (METRIC_NAMES, "--metric"),
            "strategies": (STRATEGIES, "--strategy"), "bases": (tuple(STEP_BASES), "--base")}


def _checked(name: str, values) -> tuple:
    """``values`` (one name or several) as a tuple in the order of the choices; unknown or no names are refused."""
    choices, option = _CHOICES[name]
    values = (values,) if isinstance(values, str) else tuple(values)
    unknown = [v for v in values if v not in choices]
    if unknown:
        raise ValueError(f"unknown {name[:-1] if name != 'strategies' else 'strategy'} {', '.join(map(repr, unknown))} "
                         f"({option}); choose from {', '.join(choices)}")
    if not values:
        raise ValueError(f"the declaration names no {name} ({option}); give at least one of {', '.join(choices)}")
    return tuple(c for c in choices if c in values)


@dataclass(frozen=True)
class Declaration:
    """What an implementation declares it implements; every field defaults to everything, ``steps`` to 1.

    Attributes
    ----------
    cases : the golden cases to run (:data:`~dba_ref.conformance.CASES`)
    quantities : the quantities it computes (:data:`~dba_ref.conformance.QUANTITIES`; ``--only``)
    metrics, strategies : those it implements, for the selections and the DBA steps
    bases : the base optimizers its DBA steps wrap (:data:`~dba_ref.conformance.schema.STEP_BASES`)
    steps : the length N of every DBA trajectory (1: one step from the case's weights)
    """

    cases: tuple = CASE_NAMES
    quantities: tuple = QUANTITIES
    metrics: tuple = METRIC_NAMES
    strategies: tuple = STRATEGIES
    bases: tuple = tuple(STEP_BASES)
    steps: int = 1

    def __post_init__(self):
        for name in _CHOICES:
            object.__setattr__(self, name, _checked(name, getattr(self, name)))
        if isinstance(self.steps, bool) or not isinstance(self.steps, Integral) or not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps (--steps) must be a whole number from 1 to {MAX_STEPS}, got {self.steps!r}")
        object.__setattr__(self, "steps", int(self.steps))

    # -- what it declares ---------------------------------------------------------------------------------
    @property
    def step_quantities(self) -> tuple:
        """The declared quantities of the DBA steps (the weights of the declared bases only)."""
        weights = {f"dba_{base}" for base in self.bases}
        return tuple(q for q in self.quantities if q in STEP_QUANTITIES and (q in weights or q.startswith("step_")))

    @property
    def asked_quantities(self) -> tuple:
        """The declared quantities that are asked for: all but the weights of undeclared base optimizers."""
        return tuple(q for q in self.quantities if q not in STEP_QUANTITIES or q in self.step_quantities)

    @property
    def trajectories(self) -> list[tuple[str, str, str]]:
        """``(base, metric, strategy)`` of every declared trajectory (none if no step quantity is declared)."""
        if not self.step_quantities:
            return []
        return [(b, m, s) for b in self.bases for m in self.metrics for s in self.strategies]

    def outputs(self, case_file) -> dict:
        """``{key: Output(quantity, shape)}`` of every output a case (its file, ``case_file``) is asked for, in the
        report's order; ``shape`` is ``None`` for the 1-D arrays of any length (a selection's set, removal order and
        path values). A trajectory's outputs are stacked over its steps: selections ``(steps, B)`` padded with -1,
        weights ``(steps, out_l, in_l)`` and ``(steps, out_l)``."""
        L, q, N = n_layers(case_file), set(self.quantities), self.steps
        B, out = case_file["X"].shape[0], {}
        if "losses" in q:
            out["losses"] = Output("losses", (B,))
        weights = [case_file[f"W{l}"].shape for l in range(1, L + 1)]
        for l, (n_out, n_in) in enumerate(weights, 1):
            if "grad" in q:
                out.update({f"grad_W{l}": Output("grad", (B, n_out, n_in)), f"grad_b{l}": Output("grad", (B, n_out))})
            if "gram" in q:
                out[f"gram{l}"] = Output("gram", (B, B))
        for l in range(1, L + 1):
            if "full_stats" in q:
                out.update({f"full/L{l}/{stat}": Output("full_stats", ()) for stat in ("T", "Q", *self.metrics)})
            for metric, strategy, field in product(self.metrics, self.strategies, SELECTION_FIELDS):
                if field in q:
                    out[selection_key(metric, strategy, l, field)] = Output(field, None if field in VARIABLE_LENGTH
                                                                            else ())
        for base, metric, strategy in self.trajectories:
            for l, (n_out, n_in) in enumerate(weights, 1):
                for field in ("indices", "removed"):
                    if f"step_{field}" in q:
                        out[trajectory_key(base, metric, strategy, f"L{l}/{field}")] = Output(f"step_{field}", (N, B))
                if f"dba_{base}" in q:
                    out.update({trajectory_key(base, metric, strategy, f"W{l}"): Output(f"dba_{base}", (N, n_out, n_in)),
                                trajectory_key(base, metric, strategy, f"b{l}"): Output(f"dba_{base}", (N, n_out))})
        return out

    def undeclared(self) -> dict:
        """``{field: names}`` of what the declaration leaves out (fields it leaves nothing out of are absent)."""
        left = {name: [c for c in _CHOICES[name][0] if c not in getattr(self, name)] for name in _CHOICES}
        return {name: names for name, names in left.items() if names}

    # -- how it is written ----------------------------------------------------------------------------------
    def flags(self) -> str:
        """The command-line options that declare it (``--case``, ``--only``, ``--metric``, ...); fields that
        declare everything and ``steps = 1`` give none."""
        words = [f"{_CHOICES[name][1]} {value}" for name in _CHOICES if name in self.undeclared()
                 for value in getattr(self, name)]
        if self.steps != 1:
            words.append(f"--steps {self.steps}")
        return " ".join(words)

    def replace(self, **changes) -> "Declaration":
        """A copy with some fields replaced (``None`` values are ignored: that field stays as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def write(self, directory) -> Path:
        """Write the declaration to ``<directory>/DECLARATION.json``; return the path."""
        path = Path(directory) / DECLARATION_FILE
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def read(cls, directory) -> "Declaration":
        """The declaration ``export`` recorded in ``directory`` (a one-line error if it is absent or malformed)."""
        path = Path(directory) / DECLARATION_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; `dba-ref conformance export {directory}` writes it")
        try:
            data = json.loads(path.read_text())
            names = {f.name for f in fields(cls)}
            if not isinstance(data, dict) or not set(data) <= names:
                raise ValueError(f"expected an object with the fields {', '.join(sorted(names))}")
            return cls(**data)
        except (ValueError, TypeError) as exc:                   # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path} is not a declaration written by `dba-ref conformance export` ({exc})") from exc

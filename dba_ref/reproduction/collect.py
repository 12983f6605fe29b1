"""What a reproduction has finished: the run records on disk, gathered per cell and per method.

Nothing here trains or formats; :func:`collect` reads the JSON files the
runner wrote (:mod:`~dba_ref.reproduction.runner`) into a
:class:`CellResult` per reported cell, each holding a :class:`MethodResult`
per method. A method's learning rate is known once all its tuning runs have
finished; its test accuracies are those of the final runs finished so far.

*Best baseline* and *best DBA* of a cell are the non-DBA and the DBA method with
the highest validation score in tuning: chosen on validation, like everything
else; the test set only scores them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .protocol import Cell, Method, Protocol
from .runner import choose_from_records
from .runs import load_record, run_path


@dataclass
class MethodResult:
    """What is on disk for one method of one cell."""

    method: Method
    grid: list                      # the learning rates of the tuning grid
    tuned: int                      # tuning runs finished
    scores: dict                    # lr -> (mean val acc, −mean val loss) once tuning is complete
    lr: float | None                # the selected learning rate (None until tuning is complete)
    finals: list = field(default_factory=list)
    tuning_seconds: float = 0.0     # wall time of the finished tuning runs

    @property
    def val_acc(self) -> float:
        return self.scores[self.lr][0] if self.lr is not None else math.nan

    @property
    def at_edge(self) -> bool:
        """The selected learning rate is the smallest or largest of the grid."""
        return self.lr is not None and self.lr in (self.grid[0], self.grid[-1])

    def final_values(self, key: str) -> np.ndarray:
        """``result[key]`` of each finished final run that has it."""
        return np.array([r["result"][key] for r in self.finals if key in r["result"]], dtype=float)

    @property
    def test_acc(self) -> np.ndarray:
        """Test accuracy of each finished final seed, in %."""
        return 100 * self.final_values("test_acc")

    @property
    def mean(self) -> float:
        acc = self.test_acc
        return float(acc.mean()) if acc.size else math.nan

    @property
    def std(self) -> float:
        acc = self.test_acc
        return float(acc.std(ddof=1)) if acc.size > 1 else math.nan

    def by_seed(self) -> dict:
        """Test accuracy in % of each finished final seed."""
        return {r["seed"]: 100 * r["result"]["test_acc"] for r in self.finals if "test_acc" in r["result"]}

    @property
    def n_diverged(self) -> int:
        return sum(bool(r["result"]["diverged"]) for r in self.finals)

    def peak_test(self) -> np.ndarray:
        """Best test accuracy over epochs of each ``final-peek`` seed, in % (the test-peeking number)."""
        return np.array([100 * max(r["curves"]["test_acc"]) for r in self.finals if "test_acc" in r.get("curves", {})])


@dataclass
class CellResult:
    """What is on disk for one reported cell: its methods, and how many of its planned runs finished."""

    cell: Cell
    methods: list
    planned: int
    finished: int
    stamps: list = field(default_factory=list)      # when each finished run finished (ISO time)

    def baselines(self):
        return [m for m in self.methods if not m.method.dba]

    def dba(self):
        return [m for m in self.methods if m.method.dba]

    @staticmethod
    def best_by_validation(results) -> MethodResult | None:
        """The method with the highest validation score among those with final runs (ties: the first)."""
        ready = [m for m in results if m.lr is not None and m.finals]
        return max(ready, key=lambda m: m.scores[m.lr]) if ready else None

    def best_baseline(self) -> MethodResult | None:
        return self.best_by_validation(self.baselines())

    def best_dba(self, base: str | None = None) -> MethodResult | None:
        return self.best_by_validation([m for m in self.dba() if base is None or m.method.optimizer == base])

    def get(self, key: str) -> MethodResult | None:
        """The method whose key is ``key``, if it has final runs."""
        return next((m for m in self.methods if m.method.key == key and m.finals), None)


def collect(protocol: Protocol, out) -> list[CellResult]:
    """Read every finished run of ``protocol`` under ``out``, one :class:`CellResult` per reported cell."""
    cells = []
    for cell in protocol.cells:
        methods, finished, stamps = [], 0, []
        for method in cell.methods:
            grid = method.learning_rates(protocol.lr_multipliers)
            loaded = [(lr, [load_record(run_path(out, cell.setting, "tune", s, method, lr))
                            for s in protocol.tune_seeds]) for lr in grid]
            tuning = [r for _, records in loaded for r in records if r]
            lr, scores = choose_from_records(loaded)
            finals = []
            if lr is not None:
                finals = [r for s in protocol.final_seeds
                          if (r := load_record(run_path(out, cell.setting, cell.final_role, s, method, lr)))]
            methods.append(MethodResult(method, grid, len(tuning), scores if lr is not None else {}, lr, finals,
                                        sum(r["result"]["train_seconds"] for r in tuning)))
            finished += len(tuning) + len(finals)
            stamps += [r["environment"]["finished"] for r in tuning + finals if "environment" in r]
        cells.append(CellResult(cell, methods, protocol.cell_runs(cell), finished, stamps))
    return cells


def main_cell(cells, dataset: str, per_class: int) -> CellResult | None:
    """The main cell of a regime (a protocol has at most one per data set and images per class), or None."""
    return next((c for c in cells if c.cell.reading == "main" and c.cell.setting.dataset == dataset
                 and c.cell.setting.per_class == per_class), None)

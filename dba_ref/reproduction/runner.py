"""Running the protocol: one JSON file per finished run, so a stopped reproduction resumes where it was.

A run is identified by its setting, role, seed, method and learning rate;
its file is ``runs/<setting>/<role>-s<seed>/<method>-lr<lr>.json`` under the
results folder. Roles:

``tune``
    scored on the validation slice; the test set is not evaluated.
``final``
    the selected learning rate; the test set is evaluated once, after the last epoch.
``final-peek``
    as ``final`` but with the test set evaluated after every epoch (the
    ``peek`` reading only; never used for the headline numbers).

A file is written atomically when its run has finished, so an interrupted
reproduction loses at most the run in progress; a run whose file exists is
never redone. Two cells that ask for the same run share its file. The machine
that trains runs is added to ``provenance.json`` beside them
(:mod:`~dba_ref.reproduction.provenance`).
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import __version__
from .._progress import Progress
from ..checkpoint import atomic_write
from ..data import load_dataset, make_split
from ..model import MLP
from ..training import TrainingDiverged, train
from .protocol import Cell, Method, Protocol, Setting
from .provenance import add_provenance, this_machine


#: Where the runs that raised are listed (relative to the results folder), to be retried.
FAILURES = "failures.json"


def run_path(out, setting: Setting, role: str, seed: int, method: Method, lr: float) -> Path:
    """Where the record of one run lives."""
    return Path(out) / "runs" / setting.key / f"{role}-s{seed}" / f"{method.key}-lr{lr:g}.json"


def load_record(path) -> dict | None:
    """The record at ``path``, or None if the run has not finished."""
    path = Path(path)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def unresolved_failures(out) -> list[dict]:
    """The runs ``failures.json`` records as failed (``{"run", "error"}``) that have still not finished."""
    path = Path(out) / FAILURES
    failed = json.loads(path.read_text()) if path.is_file() else []
    return [f for f in failed if not (Path(out) / f["run"]).is_file()]


def write_json(path, obj) -> Path:
    """Write ``obj`` as compact JSON with :func:`~dba_ref.checkpoint.atomic_write` (old file or new, never half)."""
    return atomic_write(path, json.dumps(obj, separators=(",", ":"), allow_nan=True).encode())


def _round(values, digits: int = 5) -> list:
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else v for v in values]


class DataCache:
    """Data sets loaded once per process, and the split of each (data set, per class, seed, validation)."""

    def __init__(self, data_dir=None):
        self.data_dir = data_dir
        self._data, self._splits = {}, {}

    def split(self, setting: Setting, seed: int):
        key = (setting.dataset, setting.per_class, seed, setting.val_per_class)
        if key not in self._splits:
            if setting.dataset not in self._data:
                data_dir = self.data_dir if setting.dataset != "mnist5k" else None
                self._data[setting.dataset] = load_dataset(setting.dataset, data_dir)
            self._splits[key] = make_split(self._data[setting.dataset], per_class=setting.per_class, seed=seed,
                                           val_per_class=setting.val_per_class)
        return self._splits[key]


def execute_run(setting: Setting, role: str, seed: int, method: Method, lr: float, data: DataCache,
                backend: str = "numpy") -> dict:
    """Train one configuration and return its record (nothing is written here).

    The model, the slices and the shuffling all use ``seed``. The validation
    slice is evaluated after every epoch; the test set only in the final
    roles (after the last epoch, or after every epoch for ``final-peek``).
    A run whose parameters become NaN or inf is recorded as diverged, with the
    accuracies of its last finite parameters.
    """
    split = data.split(setting, seed)
    model = MLP([split.X_train.shape[1], setting.hidden, int(split.y_train.max()) + 1], seed=seed)
    optimizer = method.build(lr)
    peek = role == "final-peek"
    X_watch, y_watch = (split.X_test, split.y_test) if peek else (split.X_val, split.y_val)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    history, diverged = None, False
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            history = train(model, optimizer, split.X_train, split.y_train, X_watch, y_watch,
                            epochs=setting.epochs, batch_size=setting.batch_size, seed=seed, progress=False,
                            backend=backend)
    except TrainingDiverged:
        diverged = True
    train_seconds = time.perf_counter() - started
    n = split.X_train.shape[0]
    batch = n if setting.batch_size is None else min(setting.batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    result = {"diverged": diverged, "train_seconds": train_seconds}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result["train_loss"], result["train_acc"] = model.evaluate(split.X_train, split.y_train)
        result["val_loss"], result["val_acc"] = model.evaluate(split.X_val, split.y_val)
        if role != "tune":
            result["test_loss"], result["test_acc"] = model.evaluate(split.X_test, split.y_test)
    record = {
        "setting": asdict(setting), "setting_key": setting.key, "role": role, "seed": seed,
        "method": method.to_dict(), "learning_rate": lr, "optimizer": optimizer.name,
        "hyperparams": optimizer.hyperparams, "backend": backend,
        "n_train": n, "n_val": int(split.y_val.shape[0]), "n_test": int(split.y_test.shape[0]),
        "result": result,
        "budget": {"epochs": setting.epochs, "batch_size": batch, "steps": steps_per_epoch * setting.epochs,
                   "samples_processed": n * setting.epochs},
        "environment": {"dba_ref": __version__, "python": platform.python_version(), "numpy": np.__version__,
                        "machine": platform.machine(), "cpus": os.cpu_count(),
                        "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
                        "finished": time.strftime("%Y-%m-%dT%H:%M:%S")},
    }
    if history is not None:
        batches = np.asarray(history.steps["batch_size"])
        record["budget"]["steps"] = int(batches.size)
        record["budget"]["samples_processed"] = int(batches.sum())
        record["result"]["mean_batch_size"] = float(batches.mean())
        watch = "test" if peek else "val"
        record["curves"] = {
            "epoch": [row["epoch"] for row in history.epochs],
            "train_loss": _round(row["train_loss"] for row in history.epochs),
            "train_acc": _round(row["train_acc"] for row in history.epochs),
            f"{watch}_loss": _round(row["test_loss"] for row in history.epochs),
            f"{watch}_acc": _round(row["test_acc"] for row in history.epochs),
        }
        if "selected" in history.steps:
            selected = [np.asarray(s) for s in history.steps["selected"]]
            record["result"]["mean_selected"] = [float(s.mean()) for s in selected]
            record["result"]["samples_in_updates"] = [int(s.sum()) for s in selected]
            record["curves"]["selected_mean"] = [
                _round(s[:steps_per_epoch * setting.epochs].reshape(setting.epochs, -1).mean(axis=1), 4)
                for s in selected]
            if role != "tune":
                record["selected_per_step"] = [s.tolist() for s in selected]
    return record


def tuning_score(record: dict | None) -> tuple:
    """Sort key of a tuning run (larger is better): validation accuracy, then lower validation loss.

    A diverged or missing run scores lowest.
    """
    if record is None or record["result"]["diverged"]:
        return (-math.inf, -math.inf)
    r = record["result"]
    loss = r["val_loss"] if math.isfinite(r["val_loss"]) else math.inf
    return (r["val_acc"], -loss)


def choose_learning_rate(protocol: Protocol, setting: Setting, method: Method, out) -> tuple[float | None, dict]:
    """The learning rate a method's tuning runs select, and the mean score of each grid point.

    Scores are averaged over ``tune_seeds``; ties go to the earlier (smaller)
    learning rate. Returns ``(None, scores)`` until every tuning run of the
    method has finished.
    """
    return choose_from_records((lr, [load_record(run_path(out, setting, "tune", s, method, lr))
                                     for s in protocol.tune_seeds])
                               for lr in method.learning_rates(protocol.lr_multipliers))


def choose_from_records(grid) -> tuple[float | None, dict]:
    """:func:`choose_learning_rate` over records already loaded: ``grid`` yields ``(lr, records)`` in grid order.

    ``records`` holds one tuning record per tuning seed, None where the run has
    not finished; the grid is read no further than the first such learning rate.
    """
    scores = {}
    for lr, records in grid:
        if any(r is None for r in records):
            return None, scores
        keys = [tuning_score(r) for r in records]
        scores[lr] = tuple(float(np.mean([k[i] for k in keys])) for i in range(2))
    best = max(scores, key=lambda lr: scores[lr])          # max keeps the first of equal keys
    return best, scores


def tuning_runs(protocol: Protocol, cell: Cell, method: Method):
    """The tuning runs of one method of a cell, ``(role, seed, method, lr)``: every learning rate × tuning seed."""
    for lr in method.learning_rates(protocol.lr_multipliers):
        for seed in protocol.tune_seeds:
            yield "tune", seed, method, lr


def final_runs(protocol: Protocol, cell: Cell, method: Method, out):
    """The final runs of one method of a cell, once its tuning is complete: the selected rate on every final seed."""
    lr, _ = choose_learning_rate(protocol, cell.setting, method, out)
    if lr is not None:
        for seed in protocol.final_seeds:
            yield cell.final_role, seed, method, lr


class _Stop(Exception):
    """The time limit was reached."""


def run_protocol(protocol: Protocol, out, *, backend: str = "numpy", data_dir=None, progress: bool = True,
                 deadline: float | None = None, skip_datasets=(), log=print) -> dict:
    """Run every unfinished run of ``protocol`` (resumable); return counts of what happened.

    The cells of ``protocol.schedule`` run in order, and within a cell one
    method after the other, its tuning runs and then its final runs, so that
    a stopped reproduction leaves whole methods behind.
    ``deadline`` (a ``time.time()`` value) stops before starting a run after
    it. Cells on a data set in ``skip_datasets`` are not started. A run that
    raises is recorded in ``failures.json`` and retried by the next
    invocation. Ctrl-C stops, keeping every finished run.

    Returns ``{"done", "skipped", "failed", "stopped"}``: runs trained now,
    runs found finished on disk (not redone), runs that raised, and why the
    reproduction stopped early (None when it completed).
    """
    out = Path(out)
    data = DataCache(data_dir)
    counts = {"done": 0, "skipped": 0, "failed": 0, "stopped": None}
    failures = []
    bar = Progress(protocol.n_runs(scheduled=True), desc=f"reproduce --{protocol.name}", unit="run", enabled=progress)

    def do(cell, role, seed, method, lr):
        path = run_path(out, cell.setting, role, seed, method, lr)
        if path.is_file():
            counts["skipped"] += 1
        elif deadline is not None and time.time() > deadline:
            raise _Stop
        else:
            try:
                record = execute_run(cell.setting, role, seed, method, lr, data, backend)
            except (ArithmeticError, ValueError, TypeError, MemoryError) as exc:
                failures.append({"run": path.relative_to(out).as_posix(), "error": f"{type(exc).__name__}: {exc}"})
                write_json(out / FAILURES, failures)
                counts["failed"] += 1
                log(f"run failed (retried next time): {path.relative_to(out)}: {exc}")
            else:
                write_json(path, record)
                if not counts["done"]:
                    add_provenance(out, machines=[this_machine()])
                counts["done"] += 1
        bar.update(1)

    try:
        for cell in protocol.schedule:
            if cell.setting.dataset in skip_datasets:
                bar.update(protocol.cell_runs(cell), skipped=cell.name)
                continue
            bar.update(0, cell=cell.name)
            for method in cell.methods:
                for run in tuning_runs(protocol, cell, method):
                    do(cell, *run)
                for run in final_runs(protocol, cell, method, out):
                    do(cell, *run)
    except _Stop:
        counts["stopped"] = "time limit reached"
    except KeyboardInterrupt:
        counts["stopped"] = "interrupted (Ctrl-C)"
    finally:
        bar.close()
    return counts

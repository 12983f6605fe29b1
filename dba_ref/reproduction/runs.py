"""One run of the protocol: what identifies it, its file, and training it.

A run is identified by its setting, role, seed, method and learning rate
(:class:`Run`); its record lives in ``runs/<setting>/<role>-s<seed>/<method>-lr<lr>.json``
under the results folder (:func:`run_path`), written atomically
(:func:`write_json`) once the run has finished. Roles:

``tune``
    scored on the validation slice; the test set is not evaluated.
``final``
    the selected learning rate; the test set is evaluated once, after the last epoch.
``final-peek``
    as ``final`` but with the test set evaluated after every epoch (the
    ``peek`` reading only; never used for the headline numbers).

:func:`execute_run` trains one run and returns its record, writing nothing;
:func:`train_run` is what a worker process runs (:mod:`~dba_ref.reproduction.workers`).
Which runs train, in which order, and who writes their files:
:mod:`~dba_ref.reproduction.runner`.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import __version__
from ..checkpoint import atomic_write
from ..data import load_dataset, make_split
from ..model import MLP
from ..training import TrainingDiverged, train
from .protocol import Method, Setting
from .provenance import this_machine


def run_path(out, setting: Setting, role: str, seed: int, method: Method, lr: float) -> Path:
    """Where the record of one run lives."""
    return Path(out) / "runs" / setting.key / f"{role}-s{seed}" / f"{method.key}-lr{lr:g}.json"


def load_record(path) -> dict | None:
    """The record at ``path``, or None if the run has not finished."""
    path = Path(path)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


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
    ``curves`` holds, per evaluation (epoch 0 = before training), the
    optimizer steps taken, the wall seconds since training started (the
    evaluations included), and the losses and accuracies. Records written
    before issue 21 lack ``step`` and ``seconds``.
    A run whose parameters become NaN or inf is recorded as diverged, with the
    accuracies of its last finite parameters. Of the optimizer's per-step
    diagnostics only DBA's ``selected`` is recorded (and computed).
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
                            backend=backend, diagnostics=["selected"])
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
            "step": [row["step"] for row in history.epochs],
            "seconds": _round((row["seconds"] for row in history.epochs), 4),
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


class Run(NamedTuple):
    """One training run: a setting, a role, a seed, a method and a learning rate (its file: :func:`run_path`)."""

    setting: Setting
    role: str
    seed: int
    method: Method
    lr: float

    def path(self, out) -> Path:
        return run_path(out, *self)


#: Fields of a record that differ between two trainings of the same run (wall-clock times, and the load
#: they ran under): everything else is the same bytes whether a run trained here, in a worker process or on
#: a Dask worker (of the same software).
WALL_TIME_FIELDS = (("result", "train_seconds"), ("curves", "seconds"), ("environment", "load_average_before"),
                    ("environment", "load_average_after"), ("environment", "finished"))


def without_wall_times(record: dict) -> dict:
    """``record`` less its ``WALL_TIME_FIELDS``: what two trainings of the same run agree on, to the bit."""
    return {key: ({k: v for k, v in value.items() if (key, k) not in WALL_TIME_FIELDS}
                  if isinstance(value, dict) else value) for key, value in record.items()}


_DATA: dict = {}        # data folder -> DataCache: a process keeps its data sets and splits between runs


def train_run(run: Run, backend: str = "numpy", data_dir=None, threads: int = 1) -> tuple[dict, str]:
    """:func:`execute_run` with ``threads`` BLAS threads, in whichever process runs it; returns the record and
    :func:`~dba_ref.reproduction.provenance.this_machine`.

    This is what a pool's worker runs (:mod:`~dba_ref.reproduction.workers`): it writes nothing, the
    process that called :func:`~dba_ref.reproduction.runner.run_protocol` writes the file.
    """
    from threadpoolctl import threadpool_limits

    data = _DATA.setdefault(None if data_dir is None else str(data_dir), DataCache(data_dir))
    with threadpool_limits(threads):
        record = execute_run(*run, data, backend)
    return record, this_machine()


#: Errors of a run itself (bad numbers, a refused configuration, no memory): recorded in ``failures.json``.
RUN_ERRORS = (ArithmeticError, ValueError, TypeError, MemoryError)

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
reproduction loses at most the runs in progress; a run whose file exists is
never redone. Two cells that ask for the same run share its file. Runs train
in this process, in worker processes or on a Dask cluster
(:mod:`~dba_ref.reproduction.workers`); wherever they train, one writer, the
process that runs :func:`run_protocol`, writes every file. The machines that
trained runs are added to ``provenance.json`` beside them
(:mod:`~dba_ref.reproduction.provenance`).
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

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
    ``curves`` holds, per evaluation (epoch 0 = before training), the
    optimizer steps taken, the wall seconds since training started (the
    evaluations included), and the losses and accuracies. Records written
    before issue 21 lack ``step`` and ``seconds``.
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


class Run(NamedTuple):
    """One training run: a setting, a role, a seed, a method and a learning rate (its file: :func:`run_path`)."""

    setting: Setting
    role: str
    seed: int
    method: Method
    lr: float

    def path(self, out) -> Path:
        return run_path(out, *self)


def tuning_runs(protocol: Protocol, cell: Cell, method: Method):
    """The tuning runs of one method of a cell: every learning rate × tuning seed."""
    for lr in method.learning_rates(protocol.lr_multipliers):
        for seed in protocol.tune_seeds:
            yield Run(cell.setting, "tune", seed, method, lr)


def final_runs(protocol: Protocol, cell: Cell, method: Method, out):
    """The final runs of one method of a cell, once its tuning is complete: the selected rate on every final seed."""
    lr, _ = choose_learning_rate(protocol, cell.setting, method, out)
    if lr is not None:
        for seed in protocol.final_seeds:
            yield Run(cell.setting, cell.final_role, seed, method, lr)


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
    process that called :func:`run_protocol` writes the file.
    """
    from threadpoolctl import threadpool_limits

    data = _DATA.setdefault(None if data_dir is None else str(data_dir), DataCache(data_dir))
    with threadpool_limits(threads):
        record = execute_run(*run, data, backend)
    return record, this_machine()


#: Errors of a run itself (bad numbers, a refused configuration, no memory): recorded in ``failures.json``.
RUN_ERRORS = (ArithmeticError, ValueError, TypeError, MemoryError)
#: How many times a run lost with its worker process is handed out again in one invocation.
MAX_LOST = 3


@dataclass
class _Entry:
    """One method of one schedule entry: its runs still to hand out, and its tuning runs not yet settled."""

    cell: Cell
    method: Method
    todo: deque
    unsettled: set
    finals_queued: bool = False


class Schedule:
    """Which run trains next: the schedule's cells in order, each method's tuning runs, then its final runs.

    A method's final runs are queued once each of its tuning runs is *settled*
    (its file written, or the run failed): they need the learning rate the
    tuning chose. Runs are handed out in that order, so with several workers
    the earliest entries still finish first. A run whose file is on disk is
    counted as ``skipped``; one an earlier entry of this invocation already
    handed out (two cells share it) as ``shared``; neither is handed out.
    ``advance(n)`` is told of every run counted without training (a progress bar).

    ``on_disk(path)`` says whether a run has finished (default: its file
    exists); ``out`` is where the tuning runs are read to choose a learning rate.
    """

    def __init__(self, protocol: Protocol, out, skip_datasets=(), on_disk=Path.is_file, advance=lambda n: None):
        self.protocol, self.out, self.on_disk, self.advance = protocol, Path(out), on_disk, advance
        self.counts = {"skipped": 0, "shared": 0}
        self.entries = []
        for cell in protocol.schedule:
            if cell.setting.dataset in skip_datasets:
                advance(protocol.cell_runs(cell))
                continue
            for method in cell.methods:
                tuning = list(tuning_runs(protocol, cell, method))
                self.entries.append(_Entry(cell, method, deque(tuning), {r.path(out) for r in tuning}))
        self._handed: set = set()           # paths handed out by this invocation
        self._owner: dict = {}              # path handed out -> the entry that handed it out
        self._waiting: dict = {}            # path not yet settled -> the entries waiting for it

    def next(self) -> Run | None:
        """The next run to train, or None when every run handed out so far must settle first (or all are done)."""
        for entry in self.entries:
            while True:
                while entry.todo:
                    run = entry.todo.popleft()
                    path = run.path(self.out)
                    if path in self._handed:
                        self.counts["shared"] += 1
                        self.advance(1)
                        if path in self._waiting:
                            self._waiting[path].append(entry)
                        else:
                            entry.unsettled.discard(path)
                    elif self.on_disk(path):
                        self._handed.add(path)
                        self.counts["skipped"] += 1
                        self.advance(1)
                        entry.unsettled.discard(path)
                    else:
                        self._handed.add(path)
                        self._owner[path] = entry
                        waiting = self._waiting.setdefault(path, [])
                        if entry not in waiting:
                            waiting.append(entry)
                        return run
                if entry.unsettled or entry.finals_queued:
                    break
                entry.finals_queued = True
                entry.todo.extend(final_runs(self.protocol, entry.cell, entry.method, self.out))
        return None

    def settle(self, run: Run) -> None:
        """``run`` has finished (its file is written) or failed: the entries waiting for it may go on."""
        path = run.path(self.out)
        for entry in self._waiting.pop(path):
            entry.unsettled.discard(path)

    def hand_back(self, run: Run) -> None:
        """``run`` was not trained after all (its worker died, or time ran out): it is handed out again, first
        of its entry; the entries waiting for it go on waiting."""
        path = run.path(self.out)
        self._handed.discard(path)
        self._owner.pop(path).todo.appendleft(run)


def run_protocol(protocol: Protocol, out, *, backend: str = "numpy", data_dir=None, progress: bool = True,
                 deadline: float | None = None, skip_datasets=(), pool=None, threads: int = 1, log=print) -> dict:
    """Run every unfinished run of ``protocol`` (resumable); return counts of what happened.

    The runs train in ``pool`` (:mod:`~dba_ref.reproduction.workers`; default:
    one at a time in this process; the caller closes it), at most
    ``pool.capacity()`` at once, each with ``threads`` BLAS threads, in the
    order of :class:`Schedule`. This process alone writes the run files, as
    their records come back, so a worker that dies loses nothing but its run
    in flight, which is handed out again (at most ``MAX_LOST`` times, then
    recorded as failed).
    ``deadline`` (a ``time.time()`` value) stops handing out runs after it;
    the runs in flight finish. Cells on a data set in ``skip_datasets`` are
    not started. A run that raises is recorded in ``failures.json`` and
    retried by the next invocation. Ctrl-C stops, keeping every finished run.

    Returns ``{"done", "skipped", "shared", "failed", "stopped"}``: runs
    trained now, runs found finished on disk (not redone), runs a second
    cell asks for too (trained once, counted once), runs that failed, and why
    the reproduction stopped early (None when it completed).
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    from .workers import InProcess

    pool = InProcess() if pool is None else pool
    out = Path(out)
    counts = {"done": 0, "skipped": 0, "shared": 0, "failed": 0, "stopped": None}
    failures, machines, lost = [], set(), {}
    bar = Progress(protocol.n_runs(scheduled=True), desc=f"reproduce --{protocol.name}", unit="run", enabled=progress)
    schedule = Schedule(protocol, out, skip_datasets, advance=bar.update)
    in_flight = {}                          # future -> run

    def record(run: Run, result: tuple[dict, str]) -> None:
        record, machine = result
        write_json(run.path(out), record)
        if machine not in machines:
            add_provenance(out, machines=[machine])
            machines.add(machine)
        counts["done"] += 1

    def fail(run: Run, error: str) -> None:
        relative = run.path(out).relative_to(out).as_posix()
        failures.append({"run": relative, "error": error})
        write_json(out / FAILURES, failures)
        counts["failed"] += 1
        log(f"run failed (retried next time): {relative}: {error}")

    def settle(future) -> None:
        run = in_flight.pop(future)
        exc = future.exception()
        if exc is None:
            record(run, future.result())
        elif isinstance(exc, pool.lost_errors) and lost.get(run, 0) + 1 < MAX_LOST:
            lost[run] = lost.get(run, 0) + 1
            log(f"run lost with its worker, handed out again: {run.path(out).relative_to(out)}: {exc}")
            schedule.hand_back(run)
            return
        elif isinstance(exc, RUN_ERRORS + pool.lost_errors + pool.failed_errors):
            fail(run, f"{type(exc).__name__}: {exc}")
        else:
            raise exc
        bar.update(1)
        schedule.settle(run)

    try:
        stopping = False
        while True:
            while not stopping and len(in_flight) < pool.capacity():
                run = schedule.next()
                if run is None:
                    break
                if deadline is not None and time.time() > deadline:
                    schedule.hand_back(run)
                    counts["stopped"], stopping = "time limit reached", True
                    break
                in_flight[pool.submit(train_run, run, backend, data_dir, threads)] = run
            if not in_flight:
                break
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in done:
                settle(future)
    except KeyboardInterrupt:
        counts["stopped"] = "interrupted (Ctrl-C)"
        for future in [f for f in in_flight if f.done() and not f.cancelled() and f.exception() is None]:
            record(in_flight.pop(future), future.result())
    finally:
        for future in in_flight:            # queued runs never start (a run already training finishes or dies)
            future.cancel()
        bar.close()
    counts.update(schedule.counts)
    return counts

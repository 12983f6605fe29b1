"""Running the protocol: which run trains next, and one writer for every run's file, so a stopped reproduction
resumes where it was.

A run whose file exists is never redone (:mod:`~dba_ref.reproduction.runs`: a
run, its file, training it); two cells that ask for the same run share its
file. A method's tuning runs come first; its learning rate is chosen from
them (:func:`choose_learning_rate`), then its final runs train
(:class:`Schedule`). Runs train in this process, in worker processes or on a
Dask cluster (:mod:`~dba_ref.reproduction.workers`); wherever they train, one
writer, the process that runs :func:`run_protocol`, writes every file, so an
interrupted reproduction loses at most the runs in progress. The machines
that trained runs are added to ``provenance.json`` beside them
(:mod:`~dba_ref.reproduction.provenance`).
"""
from __future__ import annotations

import json
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._progress import Progress
from .protocol import Cell, Method, Protocol, Setting
from .provenance import add_provenance
from .runs import RUN_ERRORS, Run, load_record, run_path, train_run, write_json


#: Where the runs that raised are listed (relative to the results folder), to be retried.
FAILURES = "failures.json"


def unresolved_failures(out) -> list[dict]:
    """The runs ``failures.json`` records as failed (``{"run", "error"}``) that have still not finished."""
    path = Path(out) / FAILURES
    failed = json.loads(path.read_text()) if path.is_file() else []
    return [f for f in failed if not (Path(out) / f["run"]).is_file()]


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
                    if self._hand_out(entry, run):
                        return run
                if entry.unsettled or entry.finals_queued:
                    break
                entry.finals_queued = True
                entry.todo.extend(final_runs(self.protocol, entry.cell, entry.method, self.out))
        return None

    def _hand_out(self, entry: _Entry, run: Run) -> bool:
        """Whether ``run``, next of ``entry``, is to be trained now (it is then handed out); False: it is counted
        as shared (``entry`` waits for it if it has not settled) or as found on disk."""
        path = run.path(self.out)
        if path in self._handed:
            self.counts["shared"] += 1
            self.advance(1)
            if path in self._waiting:
                self._waiting[path].append(entry)
            else:
                entry.unsettled.discard(path)
            return False
        self._handed.add(path)
        if self.on_disk(path):
            self.counts["skipped"] += 1
            self.advance(1)
            entry.unsettled.discard(path)
            return False
        self._owner[path] = entry
        waiting = self._waiting.setdefault(path, [])
        if entry not in waiting:
            waiting.append(entry)
        return True

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
        run_record, machine = result
        write_json(run.path(out), run_record)
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

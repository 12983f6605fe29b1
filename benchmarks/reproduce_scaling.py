"""`dba-ref reproduce` on several cores: measured speed-up, projection to more cores, cost of the cells not yet run.

Three parts (each prints its own table):

1. **scaling**: a subset of the full protocol, the 10-per-class main cell with the paper's four methods
   (the full protocol's grid and seeds: 40 runs of 100 epochs), run into a fresh folder serially
   (``--jobs 1``) and with ``--jobs N`` (default 2), each with one BLAS thread per run; the wall time
   of each, the speed-up, the run files checked equal but for their wall times, and the 1-minute load
   average before and after (the cores may be shared: a speed-up measured on busy cores is low).
2. **projection**: the full protocol's schedule (the cells with runs in ``docs/reproduction``) replayed
   on 1, 2, 4, 8, 16 and 32 workers by :class:`dba_ref.reproduction.runner.Schedule`, each run taking the
   wall time its committed file records plus the per-run CPU overhead measured in part 1 (worker start-up,
   sending the record back); it says how far the schedule itself (finals wait for their tuning) limits
   the speed-up, not what memory bandwidth or a busy machine would take off. The recorded times were
   measured on shared cores, so the hours are upper bounds; the speed-ups are what to read.
3. **cost**: for each cell of the full protocol with no run in ``docs/reproduction`` yet (the full-data
   cells), each method trained for 2 epochs to time an epoch, and the cell's cost projected: runs × (epochs
   + 1) × the CPU seconds of an epoch (the steady measure on shared cores: with one BLAS thread it is the
   wall time an idle core would take), and its wall time with ``--jobs N`` at the efficiency part 1
   measured. Where Fashion-MNIST's files are missing, MNIST-5k images repeated to its sizes stand in
   (an epoch's cost depends on the shapes, not on the pixels).

    OPENBLAS_NUM_THREADS=1 python benchmarks/reproduce_scaling.py [--jobs 2] [--parts scaling projection cost]
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import header, load

from dba_ref.data import Split, load_dataset
from dba_ref.reproduction import full_protocol, run_protocol
from dba_ref.reproduction.protocol import Protocol, core_methods
from dba_ref.reproduction.runner import Schedule
from dba_ref.reproduction.runs import execute_run, load_record, without_wall_times
from dba_ref.reproduction.workers import InProcess, Processes

COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "reproduction"


def scaling_subset() -> Protocol:
    """The full protocol's 10-per-class main cell, the paper's four methods only (40 runs)."""
    full = full_protocol(datasets=("mnist5k",))
    main = next(c for c in full.cells if c.reading == "main" and c.setting.per_class == 10)
    return replace(full, name="scaling", cells=(replace(main, methods=core_methods()),), schedule=(), notes=())


def loads() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def run_files(out: Path) -> dict:
    return {path.relative_to(out): without_wall_times(json.loads(path.read_text()))
            for path in (out / "runs").rglob("*.json")}


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (the pool's workers, once shut down)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(protocol: Protocol, pool, out: Path) -> tuple[float, float, float, str]:
    """Wall time of the whole protocol into ``out`` (pool start-up included), its CPU time (every process), the
    sum of its runs' wall times, and the load before → after."""
    before = loads()
    start, start_cpu = time.perf_counter(), cpu_seconds()
    with pool:
        counts = run_protocol(protocol, out, progress=False, pool=pool)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - start_cpu
    assert counts["failed"] == 0 and counts["stopped"] is None, counts
    runs = sum(json.loads(p.read_text())["result"]["train_seconds"] for p in (out / "runs").rglob("*.json"))
    return wall, cpu, runs, f"{before} → {loads()}"


def scaling(jobs: int) -> dict:
    protocol = scaling_subset()
    print(f"\n## 1. Scaling: {protocol.n_runs()} runs ({protocol.cells[0].name}, the paper's four methods), "
          f"serially and with --jobs {jobs}")
    print("| how | wall s | CPU s, all processes | sum of the runs' wall s | speed-up | "
          "load average 1/5/15 min before → after |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        serial_out, parallel_out = Path(tmp) / "serial", Path(tmp) / "parallel"
        serial, serial_cpu, serial_runs, serial_load = timed(protocol, InProcess(), serial_out)
        print(f"| serial (--jobs 1) | {serial:.1f} | {serial_cpu:.1f} | {serial_runs:.1f} | 1.00 | {serial_load} |",
              flush=True)
        parallel, parallel_cpu, parallel_runs, parallel_load = timed(protocol, Processes(jobs), parallel_out)
        print(f"| --jobs {jobs} | {parallel:.1f} | {parallel_cpu:.1f} | {parallel_runs:.1f} | "
              f"{serial / parallel:.2f} | {parallel_load} |")
        assert run_files(serial_out) == run_files(parallel_out), "the run files differ beyond their wall times"
    n = protocol.n_runs()
    overhead = max(0.0, parallel_cpu - serial_cpu) / n
    print(f"\nRun files equal but for their wall times. Measured: {serial / parallel:.2f}× ({serial / parallel / jobs:.0%} "
          f"of {jobs} cores). CPU time of --jobs {jobs} over the serial run: {parallel_cpu - serial_cpu:+.1f} s "
          f"({overhead:.2f} s per run: worker start-up, records sent back), so on {jobs} idle cores the work "
          f"allows at most {jobs * serial_cpu / parallel_cpu:.2f}×. Serial: {serial_cpu / n:.2f} CPU s and "
          f"{serial / n:.2f} wall s per run.")
    return {"efficiency": min(1.0, serial / parallel / jobs), "overhead": overhead}


def committed_protocol() -> Protocol:
    """The full protocol less its cells that have no run in docs/reproduction."""
    full = full_protocol()
    done = {(c.reading, c.setting) for c in full.cells
            if (COMMITTED / "runs" / c.setting.key).is_dir() and c.reading != "full-data"}
    return replace(full, cells=tuple(c for c in full.cells if (c.reading, c.setting) in done),
                   schedule=tuple(c for c in full.schedule if (c.reading, c.setting) in done))


def replay(protocol: Protocol, workers: int, overhead: float) -> float:
    """Wall time of ``protocol`` on ``workers`` workers, each run taking its committed wall time + ``overhead``."""
    schedule = Schedule(protocol, COMMITTED, on_disk=lambda path: False)
    clock, running = 0.0, []             # heap of (finish time, tie-break, run)
    count = 0
    while True:
        while len(running) < workers and (run := schedule.next()) is not None:
            seconds = load_record(run.path(COMMITTED))["result"]["train_seconds"] + overhead
            heapq.heappush(running, (clock + seconds, count, run))
            count += 1
        if not running:
            return clock
        clock, _, run = heapq.heappop(running)
        schedule.settle(run)


def projection(overhead: float) -> None:
    protocol = committed_protocol()
    print(f"\n## 2. Projection: the full protocol's {len(protocol.cells)} committed cells on more workers "
          f"(committed wall times + {overhead:.2f} s per run)")
    print("| workers | projected wall h | speed-up | efficiency |")
    print("|---|---|---|---|")
    base = None
    for workers in (1, 2, 4, 8, 16, 32):
        hours = replay(protocol, workers, overhead) / 3600
        base = base or hours
        print(f"| {workers} | {hours:.2f} | {base / hours:.2f} | {base / hours / workers:.0%} |", flush=True)


def stand_in_split(setting, data) -> Split:
    """MNIST-5k images repeated to ``setting``'s sizes (training and validation), for timing only."""
    rng = np.random.default_rng(0)
    n_train, n_val = 10 * setting.per_class, 10 * setting.val_per_class
    idx = rng.integers(0, len(data.y), n_train + n_val)
    X, y = data.X[idx], data.y[idx]
    return Split(X[:n_train], y[:n_train], X[n_train:][:1000], y[n_train:][:1000], X[n_train:], y[n_train:])


class StandIn:
    """A data cache that hands out :func:`stand_in_split` where the real data set is missing."""

    def __init__(self):
        from dba_ref.reproduction.runs import DataCache

        self.real, self.mnist = DataCache(), load_dataset("mnist5k")

    def split(self, setting, seed):
        try:
            return self.real.split(setting, seed)
        except (OSError, ValueError):
            return stand_in_split(setting, self.mnist)


def available(dataset: str) -> bool:
    try:
        load_dataset(dataset)
    except (OSError, ValueError):
        return False
    return True


def cost(efficiency: float, jobs: int) -> None:
    full = full_protocol()
    missing = [c for c in full.cells if not (COMMITTED / "runs" / c.setting.key).is_dir()]
    print(f"\n## 3. Cost of the cells not run yet ({len(missing)}): the second of 2 timed epochs per method, "
          f"× the cell's epochs (load {loads()})")
    print("| cell | method | wall s / epoch | CPU s / epoch | CPU s / run | runs | CPU min | data |")
    print("|---|---|---|---|---|---|---|---|")
    data = StandIn()
    for cell in missing:
        total, real = 0.0, available(cell.setting.dataset)
        runs = full.tuning_budget + len(full.final_seeds)
        for method in cell.methods:
            data.split(cell.setting, 0)                         # loading and splitting is not the run's cost
            start = time.process_time()
            record = execute_run(replace(cell.setting, epochs=2), "final", 0, method, method.default_lr, data)
            cpu = time.process_time() - start
            seconds = record["curves"]["seconds"]
            per_epoch = seconds[2] - seconds[1]                 # the second epoch, its evaluation included
            per_epoch_cpu = cpu * per_epoch / seconds[-1]       # this run's CPU/wall ratio applied to it
            per_run = per_epoch_cpu * (cell.setting.epochs + 1)
            total += runs * per_run
            print(f"| {cell.name} | {method.label} | {per_epoch:.2f} | {per_epoch_cpu:.2f} | {per_run:.0f} | {runs} | "
                  f"{runs * per_run / 60:.1f} | {'real' if real else 'MNIST-5k stand-in'} |", flush=True)
        print(f"| {cell.name} | **all** | | | | {full.cell_runs(cell)} | **{total / 60:.0f}** "
              f"(--jobs {jobs} at {efficiency:.0%}: {total / 60 / jobs / efficiency:.0f} min wall) | |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--parts", nargs="+", default=["scaling", "projection", "cost"],
                        choices=["scaling", "projection", "cost"])
    parser.add_argument("--efficiency", type=float, default=None,
                        help="parallel efficiency to use when the scaling part is not run")
    parser.add_argument("--overhead", type=float, default=0.0, help="per-run overhead (s) when scaling is not run")
    args = parser.parse_args(argv)
    header("dba-ref reproduce on several cores", "python benchmarks/reproduce_scaling.py " + " ".join(argv or sys.argv[1:]))
    measured = scaling(args.jobs) if "scaling" in args.parts else {"efficiency": args.efficiency or 1.0,
                                                                     "overhead": args.overhead}
    if "projection" in args.parts:
        projection(measured["overhead"])
    if "cost" in args.parts:
        cost(measured["efficiency"], args.jobs)
    print(f"\n# load average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

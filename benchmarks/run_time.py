"""Where a whole run's time goes: the main job (``dba-ref train``) and one reproduction run (issue 24).

Times, whole and split into the training steps, the evaluations, the saving and the rest:

- **the main job**: ``dba-ref train`` with its defaults (DBA(Adam) mean_variance/prefix, then Adam alone;
  100 epochs each), called in this process; the figure counts as "rest";
- **one reproduction run**: ``execute_run`` of the reproduction's runner for DBA(Adam) mean_variance/prefix
  in the main cell's setting (MNIST-5k, 60 per class, validation 50 per class, 784-256-10, batch 64, 100
  epochs), role ``tune``, seed 0, learning rate 1e-3, on each backend asked for; and the serial time of
  ``dba-ref reproduce --full`` projected as runs × that run's time (the projection of issue 24: every run
  costed as this one; baselines and 10-per-class runs cost less, the hidden-1000 and 300-epoch cells more).

Each part is the sum of the outermost calls of the functions that do it (wrapped here, so the script times
any version of the package the same way): steps ``Trainer.fit_batch``; evaluation ``MLP.evaluate``; saving
``History.save``, the results log and the checkpoint. Wall and CPU time (of the process) are printed side by
side: on shared cores the CPU time is the steadier figure, and with one BLAS thread it is what the wall time
would be on an idle core. The target of issue 24 is a run's time ≤ 1.5 × its steps.

First use compiles (Numba) and loads: a short warm-up run of each kind comes first, timed apart.
To compare two versions like for like, run the script from this tree with the other version first on the
path, e.g. ``git worktree add /tmp/before d96afe4`` then ``PYTHONPATH=/tmp/before python
benchmarks/run_time.py``; the header names the package it timed. ``--record FILE`` writes what the runs
computed (the reproduction's record and the main job's final rows, wall times and the machine left out) so
that two versions can be compared for equality.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/run_time.py
    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/run_time.py --parts reproduction --backends numba

``--what-if fused-numpy-updates`` times the reproduction run with a change the package does not make, for
the decision issue 24 leaves open (``docs/performance.md``): the numpy backend running every optimizer's
element rule fused, as the numba backend does (the exact rules give the same bits: compare the ``--record``
files). It patches this version's internals (not the "before" one's).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import header, load

import dba_ref
from dba_ref.model import MLP
from dba_ref.training import History, Trainer
from dba_ref.training import resume as checkpoints

PARTS = ("steps", "evaluation", "saving")


class Split:
    """Wall and CPU seconds spent in the outermost calls of wrapped functions, per part."""

    def __init__(self):
        self.wall = dict.fromkeys(PARTS, 0.0)
        self.cpu = dict.fromkeys(PARTS, 0.0)
        self.calls = dict.fromkeys(PARTS, 0)
        self._inside = False

    def wrap(self, owner, name: str, part: str, patches: contextlib.ExitStack) -> None:
        """Time ``owner.name`` as ``part`` until ``patches`` closes."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if self._inside:                         # a part called from another part counts once
                return original(*args, **kwargs)
            self._inside = True
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.wall[part] += time.perf_counter() - wall
                self.cpu[part] += time.process_time() - cpu
                self.calls[part] += 1
                self._inside = False

        setattr(owner, name, timed)
        patches.callback(setattr, owner, name, original)


@contextlib.contextmanager
def timed_parts():
    """A :class:`Split` timing the steps, the evaluations and the saving of whatever runs inside."""
    split = Split()
    with contextlib.ExitStack() as patches:
        split.wrap(Trainer, "fit_batch", "steps", patches)
        split.wrap(MLP, "evaluate", "evaluation", patches)
        split.wrap(History, "save", "saving", patches)
        split.wrap(checkpoints, "save", "saving", patches)
        from dba_ref.training import history as history_module
        if hasattr(history_module, "HistoryLog"):                 # the results log (issue 24)
            for method in ("__init__", "append", "finish"):
                split.wrap(history_module.HistoryLog, method, "saving", patches)
        yield split


def run_whole(fn):
    """``fn()`` timed whole and split: (result, wall, cpu, Split)."""
    with timed_parts() as split:
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return result, wall, cpu, split


def row(what: str, wall: float, cpu: float, split: Split, before: str) -> str:
    parts = " | ".join(f"{split.wall[p]:.2f} / {split.cpu[p]:.2f}" for p in PARTS)
    rest_wall = wall - sum(split.wall.values())
    rest_cpu = cpu - sum(split.cpu.values())
    ratio = f"{wall / split.wall['steps']:.2f} / {cpu / split.cpu['steps']:.2f}" if split.cpu["steps"] else "–"
    return (f"| {what} | {wall:.2f} / {cpu:.2f} | {parts} | {rest_wall:.2f} / {rest_cpu:.2f} | {ratio} "
            f"| {before} → {load()} |")


def table_header(first: str) -> None:
    print(f"| {first} | whole (s) | steps (s) | evaluation (s) | saving (s) | rest (s) | whole / steps | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print("| | wall / CPU | wall / CPU | wall / CPU | wall / CPU | wall / CPU | wall / CPU | |")


def main_job(epochs: int, quiet_out: Path, record: dict) -> None:
    """``dba-ref train`` with its defaults (but ``--epochs``), in this process; then its two runs split."""
    from dba_ref import training
    from dba_ref.cli import main as cli

    runs = []
    train = training.train

    def each_train(*args, **kwargs):                 # time every train() call of the command apart
        history, wall, cpu, split = run_whole(lambda: train(*args, **kwargs))
        runs.append((history.config["optimizer"]["name"], wall, cpu, split))
        return history

    argv = ["train", "--quiet", "--epochs", str(epochs)]
    warm_up = time.perf_counter()
    with contextlib.redirect_stdout(open(os.devnull, "w")), contextlib.redirect_stderr(open(os.devnull, "w")):
        cli(["train", "--quiet", "--epochs", "1", "--no-plot", "--out", str(quiet_out / "warm-up")])
    warm_up = time.perf_counter() - warm_up
    before = load()
    training.train = each_train
    try:
        with contextlib.redirect_stdout(open(os.devnull, "w")), contextlib.redirect_stderr(open(os.devnull, "w")):
            code, wall, cpu, split = run_whole(lambda: cli([*argv, "--out", str(quiet_out / "main")]))
    finally:
        training.train = train
    assert code == 0, f"dba-ref train exited with {code}"
    print(f"\n## The main job: `dba-ref {' '.join(argv)}` (defaults; in this process, after a 1-epoch warm-up "
          f"of {warm_up:.2f} s: loading, first-use compilation)\n")
    table_header("what")
    for name, run_wall, run_cpu, run_split in runs:
        print(row(f"train() of {name}", run_wall, run_cpu, run_split, before))
    print(row("the whole command (both runs, summary, figure)", wall, cpu, split, before))
    for sub in ("", "base"):
        results = json.loads((quiet_out / "main" / sub / "results.json").read_text())
        record[f"main job{'/' + sub if sub else ''}"] = {
            "final": {k: v for k, v in results["epochs"][-1].items() if k != "seconds"},
            "steps": results["steps"]}


def reproduction_run(backends, record: dict) -> dict:
    """One run of the reproduction's runner per backend: its time whole and split; returns CPU seconds per backend."""
    from dba_ref.reproduction.protocol import Method, Setting, full_protocol
    try:
        from dba_ref.reproduction.runs import DataCache, execute_run
    except ImportError:                      # a version from before the runner's split (e.g. "before" above)
        from dba_ref.reproduction.runner import DataCache, execute_run

    setting = Setting("mnist5k", 60, 256, 64, 100, 50)
    method = Method("adam", dba=True, metric="mean_variance", strategy="prefix")
    data = DataCache()
    data.split(setting, 0)
    warm = Setting("mnist5k", 60, 256, 64, 1, 50)
    print(f"\n## One reproduction run: {method.label}, {setting.describe()}; role tune, seed 0, lr 1e-3\n")
    table_header("backend")
    seconds = {}
    for backend in backends:
        wall = time.perf_counter()
        execute_run(warm, "tune", 0, method, 1e-3, data, backend)        # compiles and loads what it uses
        warm_up = time.perf_counter() - wall
        before = load()
        result, wall, cpu, split = run_whole(lambda: execute_run(setting, "tune", 0, method, 1e-3, data, backend))
        print(row(f"{backend} (warm-up run of 1 epoch first: {warm_up:.2f} s)", wall, cpu, split, before))
        seconds[backend] = (wall, cpu)
        record[f"reproduction run ({backend})"] = {
            k: v for k, v in result.items() if k != "environment"} | {
            "result": {k: v for k, v in result["result"].items() if k != "train_seconds"}}
    n = full_protocol().n_runs()
    print(f"\n`dba-ref reproduce --full` serial, projected as {n} runs × this run's time:\n")
    print("| backend | per run, wall / CPU (s) | projected, wall / CPU (hours) |")
    print("| --- | ---: | ---: |")
    for backend, (wall, cpu) in seconds.items():
        print(f"| {backend} | {wall:.2f} / {cpu:.2f} | {n * wall / 3600:.2f} / {n * cpu / 3600:.2f} |")
    return seconds


WHAT_IFS = ("fused-numpy-updates",)


@contextlib.contextmanager
def what_if(changes):
    """The package as it would be with ``changes`` (names of :data:`WHAT_IFS`), until the block ends."""
    with contextlib.ExitStack() as patches:
        if "fused-numpy-updates" in changes:
            from dba_ref.optimizers import base
            from dba_ref.optimizers.elementwise import Elementwise
            patches.callback(setattr, base, "elementwise_for", base.elementwise_for)
            base.elementwise_for = lambda signals: Elementwise(fused=True)
        yield


def version() -> str:
    """The package timed: its folder and, if it is a git checkout, its commit."""
    root = Path(dba_ref.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    return f"{root} ({commit[:80] or 'not a git checkout'})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", nargs="+", default=["main", "reproduction"], choices=["main", "reproduction"])
    p.add_argument("--backends", nargs="+", default=["numpy", "numba"],
                   help="backends of the reproduction run (default: numpy numba)")
    p.add_argument("--what-if", nargs="+", default=[], choices=WHAT_IFS,
                   help="time the reproduction run with this change to the package (see the docstring)")
    p.add_argument("--epochs", type=int, default=100, help="epochs of the main job (default: its own, 100)")
    p.add_argument("--record", default=None, help="write what the runs computed (no times) to this JSON file")
    args = p.parse_args(argv)

    header("a whole run's time, split: the main job and one reproduction run",
           "python benchmarks/run_time.py " + " ".join(sys.argv[1:]))
    print(f"# package timed: {version()}")
    record: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        if "main" in args.parts:
            main_job(args.epochs, Path(tmp), record)
        if "reproduction" in args.parts:
            with what_if(args.what_if):
                if args.what_if:
                    print(f"\n# what if: {', '.join(args.what_if)} (not what the package does)")
                reproduction_run(args.backends, record)
    if args.record:
        Path(args.record).write_text(json.dumps(record, indent=1, sort_keys=True, default=str, allow_nan=True))
        print(f"\nwrote {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

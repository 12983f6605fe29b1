"""Time of the conformance check itself: export + check of every golden case with 20-step DBA trajectories (issue 19).

For each declaration, three timings of the ``dba-ref conformance`` commands,
run in this process through :func:`dba_ref.cli.main` (everything but the
interpreter's start): ``export DIR`` with the declaration, then ``check
RESULTS.npz --inputs DIR``, where RESULTS.npz holds the reference's own
outputs (:func:`dba_ref.conformance.reference_results`, written beforehand and
not timed: it stands for the other implementation's run). The check
recomputes every reference step of every trajectory from the other
implementation's weights and judges it (docs/verification.md §2). Wall and
CPU time, medians of ``--repeats`` runs; the cores are shared, so the CPU
time is the steadier figure.

    python benchmarks/conformance_check.py
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import header, load, median_times

from dba_ref.cli import main as cli
from dba_ref.conformance import Declaration, load_golden, reference_results

#: (label, command-line options): the README's partial implementation, and everything declared.
DECLARATIONS = [
    ("mean_variance × greedy × DBA(sgd)", ["--metric", "mean_variance", "--strategy", "greedy", "--base", "sgd"]),
    ("everything: 3 metrics × 4 strategies × 3 bases", []),
]


def quiet(argv) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        status = cli(argv)
    if status != 0:
        raise SystemExit(f"dba-ref {' '.join(argv)} exited with {status}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20, help="trajectory length (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per entry, median (default: %(default)s)")
    args = p.parse_args(argv)

    header(f"dba-ref conformance export + check, all 8 golden cases, {args.steps}-step trajectories",
           "python benchmarks/conformance_check.py " + " ".join(sys.argv[1:]))
    print("| declaration | trajectories | keys | export (s) | export, CPU (s) | check (s) | check, CPU (s) "
          "| export + check (s) | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    golden = load_golden()
    with tempfile.TemporaryDirectory() as tmp:
        for label, options in DECLARATIONS:
            options = [*options, "--steps", str(args.steps)]
            cases, results = Path(tmp) / "cases", Path(tmp) / "results.npz"
            quiet(["conformance", "export", str(cases), *options])
            declaration = Declaration.read(cases)
            outputs = reference_results(declaration, golden)
            np.savez(results, **outputs)
            before = load()
            export = median_times(lambda: quiet(["conformance", "export", str(cases), *options]), args.repeats, 0)
            check = median_times(lambda: quiet(["conformance", "check", str(results), "--inputs", str(cases)]),
                                 args.repeats, 0)
            print(f"| {label} | {len(declaration.trajectories) * len(declaration.cases)} | {len(outputs)} "
                  f"| {export[0]:.2f} | {export[1]:.2f} | {check[0]:.2f} | {check[1]:.2f} | {export[0] + check[0]:.2f} "
                  f"| {before}–{load()} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

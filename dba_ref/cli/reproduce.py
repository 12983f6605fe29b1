"""Reproduce the paper's headline table (spec §9) and write a results folder.

  dba-ref reproduce --quick                  smoke run of every code path, MNIST-5k only (seconds)
  dba-ref reproduce --full                   the real protocol (hours; resumable)
  dba-ref reproduce --full --max-minutes 90  as much of it as fits, then the report
  dba-ref reproduce --full --report-only     the report from the runs already on disk
  dba-ref reproduce --full --jobs 0          on every core of this machine (one run per core)
  dba-ref reproduce --full --scheduler tcp://HOST:8786   on the workers of a Dask cluster

Every finished run is stored as its own JSON file under OUT/runs/ and never
redone, so an interrupted or time-limited reproduction continues where it
stopped when the same command is run again. The report (tables, figures, the
plain statement of what is and is not reproduced) is written from whatever has
finished and says exactly what has not. The machine that trained the runs and
every --note are kept in OUT/provenance.json, so --report-only rewrites the
same report from the same folder, on any machine and any day.

--jobs and --scheduler change where the runs train, not what they give: the
run files are the same but for their wall times, and this process alone
writes them (a worker that dies loses nothing; its run is trained again).
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

NAME = "reproduce"
HELP = "reproduce the paper's headline table (spec §9): tuned baselines vs DBA, several seeds, a report"


def add_arguments(p) -> None:
    from ..backends import BACKENDS
    from ..data import FASHION_MNIST_DIR, FASHION_MNIST_DIR_VARIABLE

    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--quick", action="store_true", help="a small smoke run (MNIST-5k only, seconds)")
    which.add_argument("--full", action="store_true", help="the real protocol (hours; resumable)")
    p.add_argument("--out", default=None,
                   help="results folder (default: reproduction-quick or reproduction in the current folder)")
    p.add_argument("--report", default=None, help="where to write the report (default: OUT/report.md)")
    p.add_argument("--backend", default="numpy", choices=BACKENDS, help="who computes the training steps (default: %(default)s)")
    p.add_argument("--data-dir", default=None,
                   help=f"folder of the Fashion-MNIST IDX files (default: ${FASHION_MNIST_DIR_VARIABLE}, else "
                        f"Debian's {FASHION_MNIST_DIR})")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new run after this many minutes, then write the report (default: no limit)")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads per run (default: %(default)s)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="train N runs at once in worker processes of this machine, each with --threads BLAS "
                            "threads; 0: one per available core (default: %(default)s, in this process)")
    where.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="train the runs as tasks on the workers of this Dask distributed scheduler; this "
                            "process writes the run files (needs pip install \"dba-ref[cluster]\"; default: none)")
    p.add_argument("--report-only", action="store_true", help="run nothing; write the report from the runs on disk")
    p.add_argument("--note", action="append", default=[], metavar="TEXT",
                   help="a sentence about the runs for the report's protocol notes (e.g. how they were limited); "
                        "kept in OUT/provenance.json for later invocations; repeatable (default: none)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress report (a bar on a terminal; elsewhere, as in a log file, a line per run)")


def fashion_available(data_dir) -> tuple[bool, str]:
    """Whether the Fashion-MNIST IDX files can be loaded, and why not."""
    from ..data import load_dataset

    try:
        load_dataset("fashion-mnist", data_dir)
    except (OSError, ValueError) as exc:
        return False, str(exc)
    return True, ""


def command_line(args) -> str:
    """The ``dba-ref reproduce`` command that reproduces the runs on disk (what the report cites).

    ``--jobs``, ``--scheduler`` and ``--threads`` are left out: they change where the runs train, not the runs.
    """
    parts = ["dba-ref", "reproduce", "--quick" if args.quick else "--full"]
    for flag, value in (("--out", args.out), ("--report", args.report), ("--data-dir", args.data_dir),
                        ("--max-minutes", args.max_minutes)):
        if value is not None:
            parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if args.backend != "numpy":
        parts += ["--backend", args.backend]
    return " ".join(shlex.quote(p) for p in parts)


def outcome(counts: dict) -> str:
    """What an invocation did, in one line (each number says which runs it counts)."""
    text = f"{counts['done']} runs trained, {counts['skipped']} found finished on disk (not redone)"
    if counts["shared"]:
        text += f", {counts['shared']} asked for by a second cell too (trained once)"
    text += f", {counts['failed']} failed"
    return text + (f"; stopped: {counts['stopped']}" if counts["stopped"] else "")


def run(args) -> int:
    from ..reproduction import full_protocol, quick_protocol, run_protocol
    from ..reproduction.provenance import add_provenance
    from ..reproduction.report import write_report
    from ..reproduction.workers import make_pool

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.jobs < 0:
        raise ValueError(f"--jobs must be >= 0 (0: one per core), got {args.jobs}")
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise ValueError(f"--max-minutes must be > 0, got {args.max_minutes}")
    out = Path(args.out or ("reproduction-quick" if args.quick else "reproduction"))
    report_path = Path(args.report) if args.report else out / "report.md"
    if args.report_only and not (out / "runs").is_dir():
        raise ValueError(f"--report-only: {out} holds no runs (no {out / 'runs'} folder); give the --out of a "
                         "reproduction, or run without --report-only")
    protocol = quick_protocol() if args.quick else full_protocol()
    add_provenance(out, notes=args.note)
    notes, counts = [], None            # notes about this invocation only
    if not args.report_only:
        skip = ()
        if args.full:
            ok, why = fashion_available(args.data_dir)
            if not ok:
                notes.append(f"Fashion-MNIST skipped: {why}")
                skip = ("fashion-mnist",)
        deadline = None if args.max_minutes is None else time.time() + 60 * args.max_minutes
        try:
            pool = make_pool(args.jobs, args.scheduler)
        except ImportError as exc:          # the cluster extra is not installed: say what to install, in one line
            raise ValueError(str(exc)) from None
        with pool:
            counts = run_protocol(protocol, out, backend=args.backend, data_dir=args.data_dir,
                                  progress=not args.quiet, deadline=deadline, skip_datasets=skip, pool=pool,
                                  threads=args.threads, log=lambda m: print(m, file=sys.stderr))
        print(outcome(counts))
    for note in notes:
        print(note, file=sys.stderr)
    write_report(protocol, out, report_path, notes=notes, command=command_line(args), counts=counts)
    print(f"wrote {report_path} and {out / 'table.md'}")
    return 0

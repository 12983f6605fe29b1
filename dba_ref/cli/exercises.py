"""The classroom exercises: list them, hand one out, grade a file or a whole class, export an otter-grader course.

Examples:
  dba-ref exercises                          # the exercises in course order, and how to get each
  dba-ref exercises start 3                  # writes ex03_gram_identity.py (task, hints, the function to fill in)
  dba-ref exercises start gram_identity hw/ --notebook      # ... as a notebook, into hw/
  dba-ref exercises check 3 ex03_gram_identity.py           # grades one file (or notebook)
  dba-ref exercises check 6 my_greedy.ipynb --seed 123      # the same cases as a report that said seed 123
  dba-ref exercises grade 3 FOLDER --csv grades.csv        # a whole class: CSV, feedback files, a figure
  dba-ref exercises export-course DIR        # otter-grader: student notebooks and autograder zips

An exercise is named by its number or its name (see the list). FILE is a .py
file or a .ipynb notebook that defines the functions the exercise asks for
(a notebook's code cells in order, without %magic and !shell lines and without
the hand-out's own check cell). check and grade run each file in a separate
Python process, in an empty temporary folder, with NumPy and without dba_ref,
under a time limit (for all its cases together) and a memory limit; only
plain numbers come back, and they are judged against the reference here. A
file that imports dba_ref scores 0. The report says what is wrong: the
shape, which entry and by how much, and the likely mistake.

This is a process boundary, not a security sandbox: the student's code runs
as your user and can read your files. Grade code from people you would let
run a program on the machine (docs: "For teachers").

Exit status: check 0 when every case passes, 1 when some fail (or the stub is
not filled in yet); grade 0 once the class is graded, whatever the grades;
2 on an error (no such file or exercise; start: a file of the stub's name is
already there and --force was not given).
"""
from __future__ import annotations

from .._text import columns

NAME = "exercises"
HELP = "the classroom exercises: list, start N (a stub), check N FILE, grade N FOLDER, export-course DIR"


def _limits(p) -> None:
    from ..exercises import Limits

    default = Limits()
    p.add_argument("--time-limit", type=float, default=default.seconds, metavar="SECONDS",
                   help="run time allowed to one submission, all its cases together; it is stopped after "
                        "(default: %(default)s)")
    p.add_argument("--memory-limit", type=int, default=default.memory_mb, metavar="MB",
                   help="address space allowed to one submission's process, NumPy's own ~100 MB included "
                        "(default: %(default)s)")


def _cases(p) -> None:
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the cases (default: a fresh one, printed in the report)")
    p.add_argument("--random", type=int, default=None, metavar="COUNT",
                   help="number of random cases on top of the edge cases (default: the exercise's, 6 to 20)")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="the exercises in course order: number, name, what to write, what to read first, "
                                "the expected time (the default action)")
    s = sub.add_parser("start", help="write the stub of exercise N into DIR (default: the current folder)")
    s.add_argument("exercise", metavar="N", help="the exercise: its number or name (see: dba-ref exercises)")
    s.add_argument("directory", nargs="?", default=".", metavar="DIR",
                   help="folder to write the stub into, created if needed (default: the current folder)")
    s.add_argument("--notebook", action="store_true",
                   help="write the notebook hand-out (.ipynb) instead of the .py stub")
    s.add_argument("--force", action="store_true", help="overwrite an existing file of the stub's name")
    c = sub.add_parser("check", help="grade FILE for exercise N on edge cases and fresh random cases")
    c.add_argument("exercise", metavar="N", help="the exercise: its number or name")
    c.add_argument("file", metavar="FILE", help="a .py file or .ipynb notebook defining the function(s)")
    _cases(c)
    _limits(c)
    g = sub.add_parser("grade", help="grade every .py and .ipynb file of FOLDER for exercise N (one file, one "
                                     "student): a CSV, a feedback file per student, a summary and a figure")
    g.add_argument("exercise", metavar="N", help="the exercise: its number or name")
    g.add_argument("folder", metavar="FOLDER", help="the folder of submissions; each file's stem names its student")
    g.add_argument("--csv", default=None, metavar="FILE",
                   help="the grade sheet to write (default: grades_<name>.csv in the current folder); the feedback "
                        "files go to <FILE without .csv>_feedback/, the figure to <FILE without .csv>.png")
    _cases(g)
    _limits(g)
    g.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="submissions graded at once (default: the number of CPU cores)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    e = sub.add_parser("export-course", help="write the exercises for otter-grader into DIR: per exercise the "
                                             "student notebook and the autograder zip (needs dba-ref[classroom])")
    e.add_argument("directory", metavar="DIR", help="the folder to write the course into")
    e.add_argument("--exercises", nargs="+", default=None, metavar="N",
                   help="which exercises, by number or name (default: all twelve)")
    e.add_argument("--seed", type=int, default=0, help="seed of the graded cases (default: %(default)s)")
    e.add_argument("--force", action="store_true", help="write over exercise folders that already exist")
    e.add_argument("--no-verify", action="store_true",
                   help="skip otter assign's run of the tests against the model solution (faster)")


def _list() -> int:
    from ..exercises import EXERCISES

    rows = [("N", "name", "write", "read first", "time")]
    rows += [(str(ex.number), ex.slug, ", ".join(f"{n}()" for n in ex.function_names), ex.reads_first,
              f"{ex.minutes} min") for ex in EXERCISES.values()]
    print("\n".join(columns(rows)))
    print("\nGet one with dba-ref exercises start N (or start NAME; --notebook for a notebook), fill it in, and "
          "grade it with dba-ref exercises check N FILE.")
    return 0


def run(args) -> int:
    from ..exercises import Limits, check_file, get_exercise, write_notebook, write_stub

    if args.action in (None, "list"):
        return _list()
    if args.action == "export-course":
        import sys

        from ..exercises.course import export_course

        try:
            written = export_course(args.directory, args.exercises, seed=args.seed, force=args.force,
                                    verify=not args.no_verify, quiet=False)
        except (ImportError, RuntimeError) as exc:        # otter-grader missing, or otter assign failed
            print(f"dba-ref exercises: error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {len(written)} exercises and README.md into {args.directory}")
        return 0
    exercise = get_exercise(args.exercise)
    if args.action == "start":
        write = write_notebook if args.notebook else write_stub
        path = write(exercise, args.directory, force=args.force)
        print(f"wrote {path}: fill in {', '.join(f'{n}()' for n in exercise.function_names)}, then grade it with "
              f"dba-ref exercises check {exercise.number} {path}")
        return 0
    limits = Limits(seconds=args.time_limit, memory_mb=args.memory_limit)
    if args.action == "check":
        report = check_file(args.file, exercise, seed=args.seed, n_random=args.random, limits=limits)
        print(report)
        return report.exit_status
    return _grade(exercise, args, limits)


def _grade(exercise, args, limits) -> int:
    from pathlib import Path

    from ..exercises.classroom import grade_folder, plot_class, summary, write_csv, write_feedback

    csv_path = Path(args.csv or f"grades_{exercise.slug}.csv")
    stem = csv_path.with_suffix("")
    results = grade_folder(exercise, args.folder, seed=args.seed, n_random=args.random, limits=limits,
                           jobs=args.jobs, progress=not args.quiet)
    write_csv(results, csv_path)
    feedback = write_feedback(results, stem.parent / f"{stem.name}_feedback")
    figure = plot_class(results, stem.with_suffix(".png"))
    print(summary(results))
    print(f"wrote {csv_path}, {len(results.reports)} feedback files in {feedback}/, and {figure}")
    return 0

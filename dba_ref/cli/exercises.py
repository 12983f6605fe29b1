"""The classroom exercises: list them, get a stub, grade a solution against the reference.

Examples:
  dba-ref exercises                       # the exercises, and the command that gets each stub
  dba-ref exercises start 2               # writes ex2_gram.py (task, hints, the function to fill in) here
  dba-ref exercises start 2 homework/     # ... into homework/ (an existing file is kept unless --force)
  python ex2_gram.py                      # grades the stub's function (or: dba-ref exercises check 2 ex2_gram.py)
  dba-ref exercises check 4 my_greedy.ipynb --seed 123      # the same cases as a report that said seed 123

FILE is a .py file or a .ipynb notebook that defines the function the
exercise asks for; it is run to load that function (a notebook's code cells in
order, without its %magic and !shell lines). The report says what is wrong:
the shape, which entry and by how much, and the likely mistake. Exit status:
0 when every case passes, 1 when some fail or the stub is not filled in yet,
2 on an error (no such file or exercise; start: a file of the stub's name is
already there and --force was not given).
"""
from __future__ import annotations

from .._text import columns

NAME = "exercises"
HELP = "list the classroom exercises, get a stub (start N), or grade a solution (check N FILE)"


def add_arguments(p) -> None:
    from ..exercises import N_RANDOM

    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="the exercises: number, topic, the function to write, the command to get the stub "
                                "(the default action)")
    s = sub.add_parser("start", help="write the stub of exercise N into DIR (default: the current folder)")
    s.add_argument("number", type=int, metavar="N", help="the exercise number (see: dba-ref exercises)")
    s.add_argument("directory", nargs="?", default=".", metavar="DIR",
                   help="folder to write the stub into, created if needed (default: the current folder)")
    s.add_argument("--force", action="store_true", help="overwrite an existing file of the stub's name")
    c = sub.add_parser("check", help="grade FILE's function for exercise N on edge cases and fresh random cases")
    c.add_argument("number", type=int, metavar="N", help="the exercise number (see: dba-ref exercises)")
    c.add_argument("file", metavar="FILE", help="a .py file or .ipynb notebook defining the function")
    c.add_argument("--seed", type=int, default=None,
                   help="seed of the cases (default: a fresh one, printed in the report)")
    c.add_argument("--random", type=int, default=N_RANDOM, metavar="COUNT",
                   help="number of random cases on top of the edge cases (default: %(default)s)")


def run(args) -> int:
    from ..exercises import EXERCISES, check, get_exercise, load_student_function, write_stub

    if args.action in (None, "list"):
        rows = [("N", "topic", "write", "get the stub")]
        rows += [(str(ex.number), ex.title, f"def {ex.signature}", f"dba-ref exercises start {ex.number}")
                 for ex in EXERCISES.values()]
        print("\n".join(columns(rows)))
        print("\nFill in the stub's function, then grade it by running the file, e.g. python ex2_gram.py "
              "(or: dba-ref exercises check 2 ex2_gram.py).")
        return 0
    exercise = get_exercise(args.number)
    if args.action == "start":
        path = write_stub(exercise, args.directory, force=args.force)
        print(f"wrote {path}: fill in def {exercise.signature}, then grade it with python {path}")
        return 0
    report = check(exercise, load_student_function(args.file, exercise), seed=args.seed, n_random=args.random)
    print(report)
    return report.exit_status

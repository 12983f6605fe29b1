"""List the classroom exercises, or grade a solution against the reference.

Examples:
  dba-ref exercises list
  dba-ref exercises check 2 tutorials/exercises/ex2_gram.py
  dba-ref exercises check 4 my_greedy.ipynb --seed 123      # the same cases as a report that said seed 123

FILE is a .py file or a .ipynb notebook that defines the function the
exercise asks for; it is run to load that function (a notebook's code cells in
order, without its %magic and !shell lines). The report says what is wrong:
the shape, which entry and by how much, and the likely mistake. Exit status:
0 when every case passes, 1 when some fail or the stub is not filled in yet.
"""
from __future__ import annotations

NAME = "exercises"
HELP = "list the classroom exercises, or grade a solution (dba-ref exercises check N FILE)"


def add_arguments(p) -> None:
    from ..exercises import N_RANDOM

    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the exercises: number, topic, the function to write, the stub")
    c = sub.add_parser("check", help="grade FILE's function for exercise N on edge cases and fresh random cases")
    c.add_argument("number", type=int, metavar="N", help="the exercise number (see: dba-ref exercises list)")
    c.add_argument("file", metavar="FILE", help="a .py file or .ipynb notebook defining the function")
    c.add_argument("--seed", type=int, default=None,
                   help="seed of the cases (default: a fresh one, printed in the report)")
    c.add_argument("--random", type=int, default=N_RANDOM, metavar="COUNT",
                   help="number of random cases on top of the edge cases (default: %(default)s)")


def run(args) -> int:
    from ..exercises import EXERCISES, check, get_exercise, load_student_function

    if args.action == "list":
        for ex in EXERCISES.values():
            print(f"{ex.number}  {ex.title:<30} def {ex.signature:<38} stub: {ex.stub}")
        return 0
    exercise = get_exercise(args.number)
    report = check(exercise, load_student_function(args.file, exercise), seed=args.seed, n_random=args.random)
    print(report)
    return 0 if report.passed else 1

"""Grading: run a student's function on an exercise's cases, compare with the reference, report in words.

:func:`check` runs the function on the exercise's fixed edge cases and on
fresh random cases drawn from a seed, each call on its own copy of the inputs,
and returns a :class:`Report`: passed, not attempted (the stub still raises
``NotImplementedError``), or the failures with the exercise's explanation of
each (see :mod:`dba_ref.exercises.differences`).
"""
from __future__ import annotations

import copy
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .catalogue import get_exercise
from .definitions import Case, Exercise
from .differences import with_cause

#: Default number of random cases per check (the edge cases come on top).
N_RANDOM = 20
#: The grader's own modules: frames in them are not the student's line.
_GRADER_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Failure:
    """A case the student's function got wrong, and the explanation shown for it."""

    case: Case
    message: str


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`check`; ``str(report)`` is the text shown to the student."""

    exercise: Exercise
    seed: int
    n_edge: int
    n_random: int
    failures: tuple = ()
    not_attempted: bool = False

    @property
    def n_cases(self) -> int:
        return self.n_edge + self.n_random

    @property
    def passed(self) -> bool:
        return not self.not_attempted and not self.failures

    @property
    def exit_status(self) -> int:
        """0 when every case passed, else 1 (failures, or not attempted): the exit status of
        ``dba-ref exercises check`` and of a stub run as a script."""
        return 0 if self.passed else 1

    def text(self) -> str:
        ex = self.exercise
        head = f"Exercise {ex.number} · {ex.title} · {ex.signature}"
        if self.not_attempted:
            return (f"{head}\nNOT ATTEMPTED: {ex.function} still raises NotImplementedError; "
                    f"replace the `raise` in the stub with your code.")
        if self.passed:
            return (f"{head}\nPASSED all {self.n_cases} cases ({self.n_edge} edge cases + "
                    f"{self.n_random} random, seed {self.seed}).")
        first = self.failures[0]
        lines = [head,
                 f"FAILED {len(self.failures)} of {self.n_cases} cases (seed {self.seed}). The first failure:",
                 f"  case: {first.case.name}",
                 f"  inputs: {_describe_inputs(ex.params, first.case.args)}"]
        lines += ["  " + line for line in first.message.splitlines()]
        others = [f.case.name for f in self.failures[1:6]]
        if others:
            more = len(self.failures) - 1 - len(others)
            lines.append("Also failing: " + "; ".join(others) + (f"; and {more} more" if more else "") + ".")
        lines.append(f"Re-run these exact cases with check({ex.number}, {ex.function}, seed={self.seed}), "
                     f"or --seed {self.seed} on the command line.")
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return self.text()


def _describe_inputs(names, args) -> str:
    parts = []
    for name, value in zip(names, args):
        if isinstance(value, np.ndarray):
            parts.append(f"{name} {value.shape}" if value.ndim else f"{name} = {value.item()!r}")
        elif isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value):
            parts.append(f"{name} [{', '.join(str(v.shape) for v in value)}]")
        else:
            parts.append(f"{name} = {value!r}")
    return ", ".join(parts)


def where_raised(exc: BaseException) -> str:
    """``' (in f, line N: code)'``: the last frame outside the grader and outside NumPy, the student's line."""
    numpy_dir = Path(np.__file__).resolve().parent

    def students(frame) -> bool:
        path = Path(frame.filename).resolve()
        return path.parent != _GRADER_DIR and numpy_dir not in path.parents

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if students(f)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (in {f.name}, line {f.lineno}: {f.line})" if f.line else f" (in {f.name}, line {f.lineno})"


def _same_inputs(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same_inputs(x, y) for x, y in zip(a, b))
    return a == b


def check(exercise, function: Callable, seed: int | None = None, n_random: int = N_RANDOM) -> Report:
    """Grade ``function`` for ``exercise`` (its number, or the function name it asks for).

    The edge cases are fixed in kind; their numbers and the random cases are
    drawn from ``seed`` (a fresh one when ``None``; the report says which, so
    a failure can be reproduced). Each call gets its own copies of the inputs;
    modifying them in place is reported as a mistake.
    """
    ex = get_exercise(exercise)
    if not callable(function):
        raise TypeError(f"give the function itself, e.g. check({ex.number}, {ex.function}); "
                        f"got {type(function).__name__}")
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 0:
        raise ValueError(f"n_random must be an integer >= 0, got {n_random!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 1_000_000)
    rng = np.random.default_rng(seed)
    edge = ex.edge_cases(rng)
    cases = edge + [ex.random_case(rng) for _ in range(n_random)]
    failures = []
    for case in cases:
        args = copy.deepcopy(case.args)
        try:
            got = function(*args)
        except NotImplementedError:
            return Report(ex, seed, len(edge), n_random, not_attempted=True)
        except Exception as exc:  # noqa: BLE001 — any error in student code is a finding to report
            message = f"your function raised {type(exc).__name__}: {exc}{where_raised(exc)}"
            hint = ex.explain_error(exc, case) if ex.explain_error else None
            failures.append(Failure(case, with_cause(message, hint)))
            continue
        changed = [name for name, a, b in zip(ex.params, case.args, args) if not _same_inputs(a, b)]
        if changed:
            failures.append(Failure(case, f"your function modified its input {', '.join(changed)} in place; "
                                          "work on a copy (the caller still needs it)."))
            continue
        message = ex.grade(got, ex.reference(*copy.deepcopy(case.args)), case)
        if message:
            failures.append(Failure(case, message))
    return Report(ex, seed, len(edge), n_random, tuple(failures))

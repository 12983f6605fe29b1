"""Grading: a submission's answers on an exercise's cases, judged against the reference, reported in words.

Two ways in, one judge:

- :func:`check_file` (and ``dba-ref exercises check``/``grade``) grades a
  ``.py`` file or notebook: the student's code runs in a process of its own
  under time and memory limits (:mod:`~dba_ref.exercises.sandbox`), only
  plain arrays come back, and they are judged here, in the grader's
  process. This is the path for grades.
- :func:`check` grades a function of the caller's own session (a notebook
  while the student works): quick, but the student's code runs in the same
  process as the judge, so it is a self-check, not a grade.

Either way the exercise's fixed edge cases and fresh random cases are drawn
from a seed (:func:`make_cases`, printed in the report so a failure can be
reproduced), the reference answers are computed here, and each answer is
judged by the exercise's ``grade`` (see :mod:`dba_ref.exercises.differences`).
"""
from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import harness
from .catalogue import get_exercise
from .definitions import Case, Exercise
from .differences import with_cause
from .loading import FORBIDDEN_MODULES, Submission, read_submission
from .sandbox import Limits, NotRun, Raised, Returned, run_submission


#: How many failing cases a feedback file lists in full.
MAX_LISTED = 10
#: The message of a case that could not run because the submission as a whole could not.
NOT_RUN = "not run"


@dataclass(frozen=True)
class CaseSet:
    """The cases of one grading, drawn once from ``seed`` and shared by every submission graded with it:
    the cases, their reference answers, and their inputs encoded for the child process."""

    exercise: Exercise
    seed: int
    n_edge: int
    cases: tuple
    expected: tuple
    specs: tuple
    inputs: dict

    @property
    def n_random(self) -> int:
        return len(self.cases) - self.n_edge


def make_cases(exercise, seed: int | None = None, n_random: int | None = None) -> CaseSet:
    """The edge cases and ``n_random`` random cases of ``exercise`` (default: its own count) from ``seed``
    (a fresh one when ``None``), with their reference answers."""
    ex = get_exercise(exercise)
    n_random = ex.n_random if n_random is None else n_random
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 0:
        raise ValueError(f"n_random must be an integer >= 0, got {n_random!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 1_000_000)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    edge = ex.edge_cases(rng)
    cases = tuple(edge + [ex.random_case(rng) for _ in range(int(n_random))])
    expected = tuple(ex.expected(copy.deepcopy(case)) for case in cases)
    inputs, specs = {}, []
    for case in cases:
        specs.append((case.protocol, case.function or ex.function, harness.encode(list(case.args), inputs)))
    return CaseSet(ex, int(seed), len(edge), cases, expected, tuple(specs), inputs)


# --------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------
def failure_label(message: str) -> str:
    """A short name of what went wrong, to count alike failures across a class: the likely cause when the
    message names one, else its first clause; numbers and quoted values are replaced by ``…``."""
    if "Likely cause: " in message:
        text = message.split("Likely cause: ", 1)[1]
    else:
        located = re.match(r"(\S+?)(\[| has shape)", message)
        if located:
            return f"wrong {'shape of' if located.group(2) != '[' else 'values of'} {located.group(1)}"
        text = message
    text = text.strip().splitlines()[0] if text.strip() else "?"
    text = re.split(r"[:;(]|\. ", text, maxsplit=1)[0]
    text = re.sub(r"'[^']*'|\"[^\"]*\"|[-+]?\d[\d.e+-]*", "…", text)
    text = re.sub(r"(…[\s,]*)+", "… ", text).strip(" ,.")
    return text[:90]


@dataclass(frozen=True)
class Failure:
    """A case the student's code got wrong, and the explanation shown for it."""

    case: Case
    message: str

    @property
    def label(self) -> str:
        return failure_label(self.message)


@dataclass(frozen=True)
class Report:
    """The outcome of grading one submission; ``str(report)`` is the text shown to the student.

    ``problem`` is what is wrong with the submission as a whole (it imports
    ``dba_ref``, it does not load, it lacks a function), ``forbidden`` whether
    that problem is a forbidden import (the score is then 0), ``printed`` the
    start of what the student's code printed (ignored by the grader),
    ``sandboxed`` whether the code ran in a process of its own (a grade) or in
    the caller's (a self-check), ``seconds`` how long it ran there.
    """

    exercise: Exercise
    seed: int
    n_edge: int
    n_random: int
    failures: tuple = ()
    not_attempted: bool = False
    problem: str | None = None
    forbidden: bool = False
    printed: str = ""
    sandboxed: bool = False
    rerun: str = ""
    seconds: float = 0.0

    @property
    def n_cases(self) -> int:
        return self.n_edge + self.n_random

    @property
    def n_passed(self) -> int:
        return self.n_cases - len(self.failures)

    @property
    def passed(self) -> bool:
        return not self.not_attempted and not self.forbidden and not self.failures and not self.problem

    @property
    def score(self) -> float:
        """Percent of the cases passed; 0 for a forbidden import or a stub not attempted."""
        if self.forbidden or self.not_attempted or not self.n_cases:
            return 0.0
        return 100.0 * self.n_passed / self.n_cases

    @property
    def exit_status(self) -> int:
        """0 when every case passed, else 1 (failures, not attempted, a problem): the exit status of
        ``dba-ref exercises check``."""
        return 0 if self.passed else 1

    @property
    def first_message(self) -> str:
        """The problem, else the first failure's message, else ``""``: the CSV's one line of feedback."""
        if self.forbidden or self.problem:
            return self.problem or ""
        if self.not_attempted:
            return "not attempted: the stub still raises NotImplementedError"
        return self.failures[0].message if self.failures else ""

    @property
    def label(self) -> str:
        """What went wrong, in a few words, to count alike failures across a class (``""`` when it passed)."""
        if self.forbidden:
            return "imports dba_ref (forbidden)"
        if self.not_attempted:
            return "not attempted"
        if self.problem:
            return failure_label(self.problem)
        return self.failures[0].label if self.failures else ""

    def text(self, all_failures: bool = False) -> str:
        """The report; ``all_failures=True`` lists the failing cases with their messages, up to
        :data:`MAX_LISTED` (the feedback files)."""
        ex = self.exercise
        lines = [f"Exercise {ex.number} · {ex.title} · {ex.signature}"]
        if not self.sandboxed:
            lines.append("(a self-check: your code ran in this process; grades come from "
                         f"dba-ref exercises check {ex.number} FILE)")
        if self.forbidden:
            lines += ["FORBIDDEN IMPORT, score 0: " + self.problem,
                      "The task asks for NumPy only: the reference answers are in dba_ref, so a submission that "
                      "imports it is not graded. Remove the import and write the function yourself."]
        elif self.not_attempted:
            lines.append(f"NOT ATTEMPTED: {'/'.join(ex.function_names)} still raise(s) NotImplementedError; "
                         "replace the `raise` in the stub with your code.")
        elif self.passed:
            lines.append(f"PASSED all {self.n_cases} cases ({self.n_edge} edge cases + {self.n_random} random, "
                         f"seed {self.seed}).")
        elif self.problem and all(f.message == NOT_RUN for f in self.failures):
            lines += [f"PROBLEM: {self.problem}", f"FAILED all {self.n_cases} cases: none could run."]
        else:
            if self.problem:
                lines.append(f"PROBLEM: {self.problem}")
            lines.append(f"FAILED {len(self.failures)} of {self.n_cases} cases (seed {self.seed}). "
                         + ("The failures:" if all_failures else "The first failure:"))
            for failure in self.failures[:MAX_LISTED] if all_failures else self.failures[:1]:
                lines += [f"  case: {failure.case.name}",
                          f"  inputs: {_describe_inputs(ex.arg_names(failure.case), failure.case.args)}"]
                lines += ["    " + line for line in failure.message.splitlines()]
            if all_failures and len(self.failures) > MAX_LISTED:
                lines.append(f"  ... and {len(self.failures) - MAX_LISTED} more failing cases.")
            others = [f.case.name for f in self.failures[1:6]]
            if others and not all_failures:
                more = len(self.failures) - 1 - len(others)
                lines.append("Also failing: " + "; ".join(others) + (f"; and {more} more" if more else "") + ".")
            if self.rerun:
                lines.append(f"Re-run these exact cases with {self.rerun}.")
        if self.printed.strip() and not self.passed:
            shown = self.printed.strip().splitlines()[:5]
            lines.append("Your code printed (the grader ignores it):")
            lines += ["  | " + line[:150] for line in shown]
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return self.text()


def _describe_inputs(names, args) -> str:
    parts = []
    for name, value in zip(names, args):
        if isinstance(value, np.ndarray):
            parts.append(f"{name} {value.shape}" if value.ndim else f"{name} = {value.item()!r}")
        elif isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
            parts.append(f"{name} [{', '.join(str(v.shape) for v in value)}]")
        elif isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            parts.append(f"{name}: {len(value)} steps")
        else:
            parts.append(f"{name} = {value!r}")
    return ", ".join(parts)


# --------------------------------------------------------------------------
# The judge
# --------------------------------------------------------------------------
def _same(a, b) -> bool:
    """Whether the plain data ``b`` equals the input ``a`` (arrays: shape and every entry)."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def unsupported_part(value):
    """The first :class:`~dba_ref.exercises.harness.Unsupported` inside ``value``, or ``None``."""
    if isinstance(value, harness.Unsupported):
        return value
    items = value.values if isinstance(value, harness.NamedTupleValue) else \
        value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next((u for u in map(unsupported_part, items) if u is not None), None)


def judge(ex: Exercise, case: Case, expected, outcome) -> str | None:
    """``None`` when ``outcome`` (a :class:`Returned`, :class:`Raised` or :class:`NotRun`) is right, else why not."""
    if isinstance(outcome, NotRun):
        return outcome.reason
    function = case.function or ex.function
    if isinstance(outcome, Raised):
        if outcome.kind == "NotImplementedError":
            return f"{function} is not written yet: it still raises NotImplementedError"
        if outcome.kind == "AnswerNotWritten":              # the harness's own word: the answer was too large
            return outcome.message
        if outcome.kind == "SystemExit":
            return f"your code called {outcome.message}{outcome.where}: a function must return its answer"
        if outcome.kind == "MemoryError":
            return (f"your function ran out of memory (MemoryError{outcome.where}): it allocated more than the "
                    "grader's memory limit")
        if unavailable_module(outcome):
            return unavailable_module(outcome)
        hint = ex.explain_error(outcome, case) if ex.explain_error else None
        return with_cause(f"your function raised {outcome.text()}", hint)
    odd = unsupported_part(outcome.value)
    if odd is not None:
        return (f"your function returned {odd.what}: return plain NumPy arrays (numpy.ndarray itself, not a "
                "subclass), numbers, or lists and tuples of them")
    changed = [name for name, a, b in zip(ex.arg_names(case), case.args, outcome.inputs_after) if not _same(a, b)]
    if changed:
        return (f"your function modified its input {', '.join(changed)} in place; work on a copy "
                "(the caller still needs it).")
    return ex.grade(outcome.value, expected, case)


def unavailable_module(error: Raised) -> str | None:
    """The message for an import of a module the grader's process does not have, else ``None``."""
    if error.kind in ("ModuleNotFoundError", "ImportError") and error.missing_module:
        return (f"your code imports {error.missing_module!r}, which is not available: only NumPy and the standard "
                f"library are{error.where}")
    return None


def _all_not_implemented(outcomes) -> bool:
    return bool(outcomes) and all(isinstance(o, Raised) and o.kind == "NotImplementedError" for o in outcomes)


def _failures(cases: CaseSet, outcomes) -> tuple:
    failures = []
    for case, expected, outcome in zip(cases.cases, cases.expected, outcomes):
        message = judge(cases.exercise, case, expected, outcome)
        if message:
            failures.append(Failure(case, message))
    return tuple(failures)


def grade_submission(submission: Submission, cases: CaseSet, limits: Limits = Limits()) -> Report:
    """Run ``submission`` on ``cases`` in a child process (:func:`~dba_ref.exercises.sandbox.run_submission`)
    and judge its answers here: the :class:`Report` of one student."""
    ex = cases.exercise
    base = dict(exercise=ex, seed=cases.seed, n_edge=cases.n_edge, n_random=cases.n_random, sandboxed=True,
                rerun=f"dba-ref exercises check {ex.number} {submission.path.name} --seed {cases.seed}"
                      + (f" --random {cases.n_random}" if cases.n_random != ex.n_random else ""))
    every = tuple(Failure(case, NOT_RUN) for case in cases.cases)
    if submission.problem:
        return Report(**base, failures=every, problem=submission.problem)
    forbidden = list(submission.forbidden)
    run = None
    if not forbidden:
        run = run_submission(submission.source, submission.path.name, ex.function_names, cases.specs, cases.inputs,
                             limits, FORBIDDEN_MODULES)
        forbidden = [f"it tried to import {name} while running" for name in run.forbidden_imports]
    if run is not None:
        base["seconds"] = run.seconds
    if forbidden:
        return Report(**base, failures=every, forbidden=True, printed=run.printed if run else "",
                      problem=f"your code imports {FORBIDDEN_MODULES[0]} ({'; '.join(forbidden[:3])})")
    if run.load is not None:
        problem = (unavailable_module(run.load) or f"running your file raised {run.load.text()}"
                   if isinstance(run.load, Raised) else run.load.reason)
        if isinstance(run.load, Raised) and run.load.kind == "SystemExit":
            problem += ": the file must define the function, not exit"
        return Report(**base, failures=every, problem=problem, printed=run.printed)
    if _all_not_implemented(run.outcomes):
        return Report(**base, failures=every, not_attempted=True, printed=run.printed)
    problem = None
    if run.missing:
        problem = (f"your file defines no function {', '.join(run.missing)}; exercise {ex.number} asks for "
                   + "; ".join(f"def {n}({', '.join(p)}):" for n, p in ex.functions if n in run.missing))
    return Report(**base, failures=_failures(cases, run.outcomes), problem=problem, printed=run.printed)


def check_file(path, exercise, seed: int | None = None, n_random: int | None = None,
               limits: Limits = Limits()) -> Report:
    """Grade the ``.py`` file or ``.ipynb`` notebook at ``path`` for ``exercise`` (its number or name).

    The file runs in a process of its own with ``limits`` (see
    :mod:`~dba_ref.exercises.sandbox`); its answers are judged here.
    """
    ex = get_exercise(exercise)
    submission = read_submission(path)
    return grade_submission(submission, make_cases(ex, seed, n_random), limits)


def _namespace(ex: Exercise, functions) -> dict:
    if callable(functions) and len(ex.functions) == 1:
        return {ex.function: functions}
    if isinstance(functions, dict):
        return functions
    names = " and ".join(ex.function_names)
    raise TypeError(f"give the function itself, e.g. check({ex.number}, {ex.function})" if len(ex.functions) == 1
                    else f"exercise {ex.number} asks for {names}: give a dict of them, e.g. "
                         f"check({ex.number}, globals())")


def _run_here(ex: Exercise, namespace: dict, case: Case):
    """One case run in this process, as an outcome."""
    function = case.function or ex.function
    if not callable(namespace.get(function)):
        return NotRun(f"not run: no function {function}")
    [plain] = harness.run_cases(namespace, [(case.protocol, function, copy.deepcopy(case.args))])
    if plain["status"] == "returned":
        return Returned(plain["value"], plain["inputs_after"])
    return Raised(plain["kind"], plain["message"], plain.get("where", ""), plain.get("missing_module", ""))


def check(exercise, functions: Callable | dict, seed: int | None = None, n_random: int | None = None) -> Report:
    """Self-check the caller's own function(s) for ``exercise`` (its number or name), in this process.

    ``functions`` is the function, or for an exercise with several a dict
    holding them all (``globals()`` in a notebook). Quick feedback while you
    work; the code runs in your process, so grades come from
    :func:`check_file` (``dba-ref exercises check``) instead.
    """
    ex = get_exercise(exercise)
    namespace = _namespace(ex, functions)
    cases = make_cases(ex, seed, n_random)
    base = dict(exercise=ex, seed=cases.seed, n_edge=cases.n_edge, n_random=cases.n_random,
                rerun=f"check({ex.number!r}, {ex.function if len(ex.functions) == 1 else 'globals()'}, "
                      f"seed={cases.seed})")
    outcomes = [_run_here(ex, namespace, case) for case in cases.cases]
    if _all_not_implemented(outcomes):
        return Report(**base, failures=tuple(Failure(c, NOT_RUN) for c in cases.cases), not_attempted=True)
    missing = [name for name in ex.function_names if not callable(namespace.get(name))]
    problem = f"no function {', '.join(missing)} given" if missing else None
    return Report(**base, failures=_failures(cases, outcomes), problem=problem)


@functools.lru_cache(maxsize=4)
def _course_cases(number: int, seed: int) -> CaseSet:
    """The cases of an exported course's tests, drawn once per kernel (each test asks for one of them)."""
    return make_cases(number, seed)


def check_case(exercise, functions: Callable | dict, seed: int, case: int) -> None:
    """Assert that case number ``case`` (0-based, edge cases first) of ``make_cases(exercise, seed)`` passes.

    What the tests of an exported course call, one test per case, so that a
    partly right answer gets part of the marks; raises ``AssertionError``
    with the grader's explanation. Runs in the caller's process, like :func:`check`.
    """
    ex = get_exercise(exercise)
    cases = _course_cases(ex.number, int(seed))
    target = cases.cases[case]
    message = judge(ex, target, cases.expected[case], _run_here(ex, _namespace(ex, functions), target))
    if message:
        raise AssertionError(f"case {case + 1} of {len(cases.cases)} ({target.name}): {message}")

"""What an exercise is made of: the :class:`Case`\\ s it is graded on and the :class:`Exercise` itself."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: The exercises' sources (package data): ``sources/<Exercise.stub>``, the stub's text with the model solution
#: between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` (:mod:`~dba_ref.exercises.handouts` takes it out).
SOURCES_DIR = Path(__file__).resolve().parent / "sources"


@dataclass(frozen=True)
class Case:
    """One set of inputs: ``name`` says in words what is special about it.

    ``function`` is which of the exercise's functions the case calls (``None``:
    the first), ``protocol`` how (:data:`~dba_ref.exercises.harness.PROTOCOLS`:
    ``"call"`` is ``function(*args)``); ``arg_names`` name the ``args`` when
    they are not the function's own parameters.
    """

    name: str
    args: tuple
    function: str | None = None
    protocol: str = "call"
    arg_names: tuple | None = None


@dataclass(frozen=True)
class Exercise:
    """An exercise: the functions a student writes, the reference answers and how answers are judged.

    ``functions`` are ``(name, parameter names)`` pairs in the stub's order.
    ``reference(*case.args)`` is a case's expected answer (a dict gives one
    reference per function name). ``edge_cases(rng)`` gives the fixed edge
    cases (their numbers drawn from ``rng``), ``random_case(rng)`` one random
    case; ``grade(got, expected, case)`` returns ``None`` for a right answer,
    else the explanation shown to the student; ``explain_error(error, case)``
    may add a hint when the student's function raises (``error`` a
    :class:`~dba_ref.exercises.sandbox.Raised`). ``reads_first`` is the
    tutorial notebook to read before, ``minutes`` the expected time,
    ``builds_on`` the numbers of the exercises whose answers it reuses.
    """

    number: int
    slug: str
    title: str
    functions: tuple
    reference: Callable | dict
    edge_cases: Callable[[np.random.Generator], list]
    random_case: Callable[[np.random.Generator], Case]
    grade: Callable[[Any, Any, Case], str | None]
    explain_error: Callable[[Any, Case], str | None] | None = None
    reads_first: str = ""
    minutes: int = 30
    builds_on: tuple = ()
    n_random: int = 20

    @property
    def function(self) -> str:
        """The name of the (first) function the student writes."""
        return self.functions[0][0]

    @property
    def function_names(self) -> tuple:
        return tuple(name for name, _ in self.functions)

    @property
    def signature(self) -> str:
        """``f(a, b)``, or ``f(a), g(b)`` for an exercise with several functions."""
        return ", ".join(f"{name}({', '.join(params)})" for name, params in self.functions)

    @property
    def stub(self) -> str:
        """The file name of the stub a student gets, e.g. ``ex03_gram_identity.py``."""
        return f"ex{self.number:02d}_{self.slug}.py"

    @property
    def source_path(self) -> Path:
        """The exercise's source inside the installed package (the stub with its model solution)."""
        return SOURCES_DIR / self.stub

    def arg_names(self, case: Case) -> tuple:
        """The names of ``case.args``: the case's own, or its function's parameters."""
        return case.arg_names or dict(self.functions)[case.function or self.function]

    def expected(self, case: Case):
        """The reference answer of ``case``."""
        ref = self.reference[case.function or self.function] if isinstance(self.reference, dict) else self.reference
        return ref(*case.args)

"""What an exercise is made of: the :class:`Case`\\ s it is graded on and the :class:`Exercise` itself."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: The stubs students start from (package data): ``stubs/<Exercise.stub>``.
STUBS_DIR = Path(__file__).resolve().parent / "stubs"


@dataclass(frozen=True)
class Case:
    """One set of inputs: ``name`` says in words what is special about it."""

    name: str
    args: tuple


@dataclass(frozen=True)
class Exercise:
    """An exercise: the function a student writes, its reference and how answers are judged.

    ``edge_cases(rng)`` gives the fixed edge cases (their numbers drawn from
    ``rng``), ``random_case(rng)`` one random case; ``grade(got, expected, case)``
    returns ``None`` for a right answer, else the explanation shown to the
    student; ``explain_error(exc, case)`` may add a hint when the student's
    function raises.
    """

    number: int
    function: str                 # the name the student's function must have
    params: tuple                 # its parameter names
    title: str
    stub: str                     # file name of the stub in STUBS_DIR, e.g. "ex2_gram.py"
    reference: Callable
    edge_cases: Callable[[np.random.Generator], list]
    random_case: Callable[[np.random.Generator], Case]
    grade: Callable[[Any, Any, Case], str | None]
    explain_error: Callable[[Exception, Case], str | None] | None = None    # a hint for an exception

    @property
    def signature(self) -> str:
        return f"{self.function}({', '.join(self.params)})"

    @property
    def stub_path(self) -> Path:
        """The stub inside the installed package (copy it with :func:`~dba_ref.exercises.write_stub`)."""
        return STUBS_DIR / self.stub

"""The exercises in course order, looked up by number, name or function; their stubs and notebooks written out."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import (adam, dba_update, error_signals, exhaustive_search, forward_loss, gram_identity, greedy_not_optimal,
               greedy_search, mean_variance, metrics, norm_test, prefix_search)
from .definitions import Exercise

#: The exercises by number, in course order: together they rebuild one DBA step, then an optimizer and AdAdaGrad's test.
EXERCISES = {module.EXERCISE.number: module.EXERCISE
             for module in (forward_loss, error_signals, gram_identity, mean_variance, metrics, greedy_search,
                            prefix_search, exhaustive_search, greedy_not_optimal, dba_update, adam, norm_test)}
assert list(EXERCISES) == list(range(1, len(EXERCISES) + 1)), "exercise numbers follow the course order"


def get_exercise(exercise) -> Exercise:
    """An :class:`Exercise` by number (1-12), by name (``"gram_identity"``) or by the function it asks for
    (``"gram"``); a string of digits counts as a number."""
    if isinstance(exercise, Exercise):
        return exercise
    by_name = {ex.slug: ex for ex in EXERCISES.values()}
    by_function = {name: ex for ex in EXERCISES.values() for name in ex.function_names}
    if isinstance(exercise, str):
        if exercise.strip().isdigit():
            exercise = int(exercise)
        elif exercise in by_name or exercise in by_function:
            return by_name.get(exercise) or by_function[exercise]
    if isinstance(exercise, (int, np.integer)) and not isinstance(exercise, bool) and int(exercise) in EXERCISES:
        return EXERCISES[int(exercise)]
    raise ValueError(f"no exercise {exercise!r}; choose a number in 1..{len(EXERCISES)} or a name: "
                     f"{', '.join(by_name)}")


def _target(directory, name: str, force: bool) -> Path:
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file, not a folder: give the folder to write {name} into")
    target = directory / name
    if target.exists() and not force:
        raise FileExistsError(f"{target} already exists and may hold your work; pass --force to overwrite it, "
                              "or give another folder")
    directory.mkdir(parents=True, exist_ok=True)
    return target


def write_stub(exercise, directory=".", force: bool = False) -> Path:
    """Write the stub of ``exercise`` (task, equations, hints, the function to fill in) into ``directory``
    (created if needed); return the new file's path.

    An existing file of that name may hold a student's work: it is overwritten
    only with ``force=True`` (``--force`` on the command line).
    """
    from .handouts import stub_text

    ex = get_exercise(exercise)
    target = _target(directory, ex.stub, force)
    target.write_text(stub_text(ex), encoding="utf-8")
    return target


def write_notebook(exercise, directory=".", force: bool = False) -> Path:
    """Write the notebook hand-out of ``exercise`` (``exNN_name.ipynb``) into ``directory``; as :func:`write_stub`."""
    from .handouts import notebook_json

    ex = get_exercise(exercise)
    target = _target(directory, Path(ex.stub).with_suffix(".ipynb").name, force)
    target.write_text(notebook_json(ex), encoding="utf-8")
    return target

"""The four exercises, looked up by number or function name, and their stubs written out for a student."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import error_signals, gram_identity, greedy_search, mean_variance
from .definitions import Exercise

#: The exercises by number, in the order of the tutorials.
EXERCISES = {module.EXERCISE.number: module.EXERCISE
             for module in (error_signals, gram_identity, mean_variance, greedy_search)}


def get_exercise(exercise) -> Exercise:
    """An :class:`Exercise` by number (1-4) or by the name of the function it asks for."""
    if isinstance(exercise, Exercise):
        return exercise
    by_name = {ex.function: ex for ex in EXERCISES.values()}
    if isinstance(exercise, str) and exercise in by_name:
        return by_name[exercise]
    if isinstance(exercise, (int, np.integer)) and not isinstance(exercise, bool) and int(exercise) in EXERCISES:
        return EXERCISES[int(exercise)]
    raise ValueError(f"no exercise {exercise!r}; choose a number in {sorted(EXERCISES)} "
                     f"or a function name in {sorted(by_name)}")


def write_stub(exercise, directory=".", force: bool = False) -> Path:
    """Copy the stub of ``exercise`` into ``directory`` (created if needed); return the new file's path.

    An existing file of that name may hold a student's work: it is overwritten
    only with ``force=True`` (``--force`` on the command line).
    """
    ex = get_exercise(exercise)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file, not a folder: give the folder to write {ex.stub} into")
    target = directory / ex.stub
    if target.exists() and not force:
        raise FileExistsError(f"{target} already exists and may hold your work; pass --force to overwrite it, "
                              "or give another folder")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_bytes(ex.stub_path.read_bytes())
    return target

"""Loading a student's function from a ``.py`` file or a Jupyter notebook (which runs it)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Callable

from .catalogue import get_exercise
from .grading import where_raised


def _notebook_source(path: Path) -> str:
    """The code cells of a notebook, joined; IPython-only lines (``%magic``, ``!shell``) are dropped."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable Jupyter notebook ({exc})") from exc
    lines = []
    for cell in cells:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        lines += [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines) + "\n"


def load_student_function(path, exercise) -> Callable:
    """Run the ``.py`` file or ``.ipynb`` notebook at ``path`` and return the function the exercise asks for.

    A ``.py`` file is imported as a module (its ``if __name__ == "__main__"``
    block does not run); a notebook's code cells run in order in one namespace.
    """
    ex = get_exercise(exercise)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    if path.suffix not in (".py", ".ipynb"):
        raise ValueError(f"{path}: give a .py file or a .ipynb notebook")
    try:
        if path.suffix == ".py":
            spec = importlib.util.spec_from_file_location(f"student_exercise_{ex.number}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            namespace = vars(module)
        else:
            namespace = {"__name__": f"student_exercise_{ex.number}", "__file__": str(path)}
            exec(compile(_notebook_source(path), str(path), "exec"), namespace)  # noqa: S102 — grading runs it
    except SyntaxError as exc:
        raise ValueError(f"{path}, line {exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:  # noqa: BLE001 — report any failure of the student's file in one line
        raise ValueError(f"running {path} raised {type(exc).__name__}: {exc}{where_raised(exc)}") from exc
    function = namespace.get(ex.function)
    if not callable(function):
        raise ValueError(f"{path} defines no function {ex.function}; exercise {ex.number} asks for "
                         f"def {ex.signature}:")
    return function

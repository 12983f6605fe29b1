"""A student's submission read as text: a ``.py`` file or a notebook's code cells, and what it imports.

Nothing here runs the submission (:mod:`~dba_ref.exercises.sandbox` does,
in another process). :func:`read_submission` gives its source, a syntax error
found by parsing it, and every statement that imports a module the task
forbids (:func:`forbidden_imports`), so that a report can name it even when
the import never ran.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

#: Modules a submission may not import: the package holds the reference answers.
FORBIDDEN_MODULES = ("dba_ref",)
#: Largest submission read (bytes); a larger file is reported, not graded.
MAX_SUBMISSION_BYTES = 2 * 2 ** 20
SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class Submission:
    """One student's file: its ``path``, the ``source`` to run, and what is wrong with it before it runs:
    ``problem`` (unreadable, a syntax error) and ``forbidden`` (import statements the task forbids, e.g.
    ``"line 3: from dba_ref.gram import gram"``)."""

    path: Path
    source: str
    problem: str | None = None
    forbidden: tuple = ()


def notebook_source(path: Path, text: str) -> str:
    """The code cells of a notebook, joined, each after a ``# cell N`` line.

    IPython-only lines (``%magic``, ``!shell``) are dropped, and so are the
    cells the hand-out marks as not editable (``"editable": false`` in the
    cell's metadata): its own self-check cell, which imports ``dba_ref``, and
    otter-grader's cells. Marking one's own cell so only hides it from the grader.
    """
    try:
        nb = json.loads(text)
        cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a readable Jupyter notebook ({type(exc).__name__}: {exc})") from exc
    lines = []
    for n, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or (cell.get("metadata") or {}).get("editable") is False:
            continue
        source = cell.get("source", "")
        source = "".join(map(str, source)) if isinstance(source, list) else str(source)
        lines.append(f"# cell {n}")
        lines += [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines) + "\n"


def _is_main_guard(node) -> bool:
    """``if __name__ == "__main__":``: code that a graded submission never runs."""
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == "__main__")


def forbidden_imports(tree, source: str, modules=FORBIDDEN_MODULES) -> tuple:
    """Every statement of ``tree`` that imports one of ``modules``: ``import m``, ``from m... import``, and
    ``__import__("m")`` / ``importlib.import_module("m")`` with a literal name; top-level
    ``if __name__ == "__main__":`` blocks (the stub's own quick check) are not run when graded and not counted."""
    def named(name) -> bool:
        return isinstance(name, str) and name.split(".")[0] in modules

    found = []
    body = [n for n in getattr(tree, "body", []) if not _is_main_guard(n)]
    for node in (n for top in body for n in ast.walk(top)):
        hit = False
        if isinstance(node, ast.Import):
            hit = any(named(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            hit = node.level == 0 and named(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            callee = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            hit = callee in ("__import__", "import_module") and named(node.args[0].value)
        if hit:
            line = (ast.get_source_segment(source, node) or "").splitlines()[0:1]
            found.append(f"line {node.lineno}: {line[0].strip() if line else type(node).__name__}")
    return tuple(found)


def read_submission(path) -> Submission:
    """Read the ``.py`` file or ``.ipynb`` notebook at ``path`` as a :class:`Submission` (never running it).

    A missing file or a wrong suffix raises (the caller chose the file); a
    file that cannot be read or parsed is a submission with a ``problem``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{path}: give a .py file or a .ipynb notebook")
    if path.stat().st_size > MAX_SUBMISSION_BYTES:
        return Submission(path, "", f"the file is larger than {MAX_SUBMISSION_BYTES // 2 ** 20} MB")
    try:
        text = path.read_text(encoding="utf-8")
        source = notebook_source(path, text) if path.suffix == ".ipynb" else text
    except UnicodeDecodeError:
        return Submission(path, "", "the file is not UTF-8 text")
    except ValueError as exc:
        return Submission(path, "", str(exc))
    try:
        tree = ast.parse(source, filename=path.name)
    except SyntaxError as exc:
        return Submission(path, source, f"syntax error at line {exc.lineno}: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:
        return Submission(path, source, f"the file cannot be parsed as Python ({type(exc).__name__})")
    return Submission(path, source, None, forbidden_imports(tree, source))

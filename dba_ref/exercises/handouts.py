"""The hand-outs of an exercise, all made from its one source: the ``.py`` stub and the notebook.

An exercise's source (``sources/exNN_name.py``) is its module docstring (the
task, the equations, hints), ``import numpy as np`` and the functions to
write, each body holding the model solution between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` (otter-grader's markers, so the same file serves
:mod:`~dba_ref.exercises.course`). A hand-out replaces each solution by
``raise NotImplementedError`` and adds how to check the answer: the stub a
``__main__`` block, the notebook a self-check cell that the grader skips.
"""
from __future__ import annotations

import ast
import json
import re
import textwrap

from .definitions import Exercise

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
#: Metadata of a notebook cell the student does not edit and the grader does not run (it imports dba_ref).
FIXED_CELL = {"editable": False, "deletable": False, "tags": ["dba-ref-self-check"]}
_DEF = re.compile(r"^\s*def (\w+)\(")


def source_text(ex: Exercise) -> str:
    """The exercise's source, model solution included."""
    return ex.source_path.read_text(encoding="utf-8")


def reading(ex: Exercise) -> str:
    """``Read first: notebook ... Builds on exercises ...``: where an exercise stands in the course."""
    line = f"Read first: notebook {ex.reads_first}." if ex.reads_first else ""
    if ex.builds_on:
        numbers = [str(n) for n in ex.builds_on]
        line += (" Builds on exercise" + ("s " if len(numbers) > 1 else " ")
                 + (", ".join(numbers[:-1]) + " and " + numbers[-1] if len(numbers) > 1 else numbers[0]) + ".")
    return line.strip() + f" About {ex.minutes} minutes."


def task_and_code(ex: Exercise) -> tuple:
    """``(docstring, code)``: the module docstring (with :func:`reading` after its title) and the code after it."""
    text = source_text(ex)
    tree = ast.parse(text)
    first = tree.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
        raise ValueError(f"{ex.source_path} does not start with its task as a docstring")
    lines = text.splitlines(keepends=True)
    title, _, rest = ast.get_docstring(tree, clean=True).partition("\n")
    return f"{title}\n\n{reading(ex)}\n{rest}", "".join(lines[first.end_lineno:]).lstrip("\n")


def _replace_solutions(code: str, keep: bool) -> str:
    """``code`` with each solution block kept (markers dropped) or replaced by ``raise NotImplementedError``."""
    out, function, inside = [], None, False
    for line in code.splitlines(keepends=True):
        match = _DEF.match(line)
        if match and not inside:
            function = match.group(1)
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
            if not keep:
                indent = line[:len(line) - len(line.lstrip())]
                out += [f"{indent}# Your code here.\n", f'{indent}raise NotImplementedError("write {function}")\n']
            continue
        if stripped == END:
            inside = False
            continue
        if keep or not inside:
            out.append(line)
    if inside:
        raise ValueError(f"a {BEGIN} without its {END}")
    return "".join(out)


def solution_code(ex: Exercise) -> str:
    """The model solution: the source's code with the markers dropped (no docstring, no check)."""
    return _replace_solutions(task_and_code(ex)[1], keep=True)


def check_section(ex: Exercise, notebook: bool) -> str:
    """The "Check your answer" section of a hand-out."""
    name = ex.stub if not notebook else ex.stub.replace(".py", ".ipynb")
    first = ("Your grade comes from the grader, which runs your file in a separate process, under a time and a "
             "memory limit, on edge cases and fresh random cases::")
    then = ("It says what is wrong: the shape, which entry and by how much, and the likely mistake. Use NumPy "
            "only: a file that imports dba_ref, which holds the reference answers, scores 0. "
            + ("The last cell of this notebook runs the same cases on your function here, for quick feedback."
               if notebook else f"Running this file, ``python {ex.stub}``, does the same."))
    return (f"Check your answer\n-----------------\n{textwrap.fill(first, 79)}\n\n"
            f"    dba-ref exercises check {ex.number} {name}\n\n{textwrap.fill(then, 79)}")


def stub_text(ex: Exercise) -> str:
    """The ``.py`` stub: the task, the functions to fill in, and a ``__main__`` block that runs the grader on
    the file itself."""
    doc, code = task_and_code(ex)
    main = (f'\n\nif __name__ == "__main__":      # the grader, on this file (the same as: dba-ref exercises check '
            f'{ex.number} {ex.stub})\n'
            "    import sys\n\n"
            "    from dba_ref.exercises import check_file\n\n"
            f"    report = check_file(__file__, {ex.number})\n"
            "    print(report)\n"
            "    sys.exit(report.exit_status)\n")
    return f'"""{doc}\n\n{check_section(ex, notebook=False)}\n"""\n' + _replace_solutions(code, keep=False) \
        .rstrip("\n") + "\n" + main


def as_markdown(doc: str) -> str:
    """A docstring's text as Markdown: ``::`` blocks become indented code, double backticks stay code."""
    text = doc.replace("::\n", ":\n")
    return re.sub(r"^(\S.*)\n-{3,}$", r"## \1", text, flags=re.MULTILINE)


def notebook_cell(kind: str, source: str, metadata=None) -> dict:
    cell = {"cell_type": kind, "metadata": metadata or {}, "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def notebook_json(ex: Exercise) -> str:
    """The notebook hand-out (nbformat 4, as JSON text): the task, the functions to fill in, a self-check cell."""
    doc, code = task_and_code(ex)
    title, _, rest = doc.partition("\n")
    names = ex.function if len(ex.functions) == 1 else "globals()"
    cells = [notebook_cell("markdown", f"# {title}\n{as_markdown(rest)}"),
             notebook_cell("markdown", as_markdown(check_section(ex, notebook=True))),
             notebook_cell("code", _replace_solutions(code, keep=False).rstrip("\n")),
             notebook_cell("markdown", "## Check your work\n\nA quick self-check on your function, in this notebook "
                               f"(the grader runs the file: `dba-ref exercises check {ex.number} FILE`)."),
             notebook_cell("code", f'from dba_ref.exercises import check\n\ncheck("{ex.slug}", {names})', FIXED_CELL)]
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 4,
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                       "language_info": {"name": "python"}}}
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"

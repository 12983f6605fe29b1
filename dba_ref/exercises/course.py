"""The exercises as an otter-grader course: a student release and an autograder per exercise, in one command.

:func:`export_course` writes, for each exercise, the otter-grader "master"
notebook (the task, the model solution between otter's solution markers,
and one test per graded case: the edge cases public, the random ones
hidden), then runs ``otter assign`` on it, which writes the student's
notebook and the autograder zip that Gradescope takes (``otter run`` grades
with it locally, without Docker). Each test calls
:func:`~dba_ref.exercises.check_case` for one case of a fixed seed, so a
partly right notebook gets part of the marks and the grader's explanation.

Otter runs the student's notebook and the tests in one kernel: the tests
share the student's process (on Gradescope, the container is the
sandbox). ``dba-ref exercises grade`` on the collected notebooks gives grades
that the notebook cannot tamper with; see ``docs/teaching.md``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .. import __version__
from .catalogue import EXERCISES, get_exercise
from .grading import make_cases
from .handouts import as_markdown, notebook_cell, task_and_code

#: What the autograder installs (``requirements`` of otter's assignment config): the package itself.
DEFAULT_REQUIREMENT = f"dba-ref=={__version__}"


def master_notebook(exercise, seed: int, requirement: str = DEFAULT_REQUIREMENT, verify: bool = True) -> dict:
    """otter-grader's master notebook of ``exercise`` (nbformat 4 as a dict), its tests drawn from ``seed``;
    ``verify``: ``otter assign`` runs the tests against the model solution."""
    ex = get_exercise(exercise)
    doc, code = task_and_code(ex)
    title, _, rest = doc.partition("\n")
    cases = make_cases(ex, seed)
    config = {"name": ex.slug, "requirements": [requirement], "export_cell": False, "init_cell": True,
              "check_all_cell": False, "run_tests": verify, "generate": {"pdf": False}, "tests": {"files": False}}
    functions = ex.function if len(ex.functions) == 1 else "globals()"
    tests = []
    for i, case in enumerate(cases.cases):
        hidden = "true" if i >= cases.n_edge else "false"
        tests.append(notebook_cell("code", f'""" # BEGIN TEST CONFIG\npoints: 1\nhidden: {hidden}\n'
                                           '""" # END TEST CONFIG\n'
                                   f"# case {i + 1}: {case.name}\n"
                                   "from dba_ref.exercises import check_case\n"
                                   f'check_case("{ex.slug}", {functions}, seed={cases.seed}, case={i})'))
    how = (f"Run the `grader.check` cell to run the public tests ({cases.n_edge} edge cases); the autograder adds "
           f"{cases.n_random} hidden random cases, one point per case. Use NumPy only: the grader holds the "
           "reference answers in `dba_ref`.")
    cells = [notebook_cell("raw", "# ASSIGNMENT CONFIG\n" + json.dumps(config, indent=1)),
             notebook_cell("markdown", f"# {title}\n{as_markdown(rest)}\n\n## Check your answer\n\n{how}"),
             notebook_cell("raw", f"# BEGIN QUESTION\nname: {ex.slug}"),
             notebook_cell("raw", "# BEGIN SOLUTION"), notebook_cell("code", code.rstrip("\n")),
             notebook_cell("raw", "# END SOLUTION"),
             notebook_cell("raw", "# BEGIN TESTS"), *tests, notebook_cell("raw", "# END TESTS"),
             notebook_cell("raw", "# END QUESTION")]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 4,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}}


def _otter() -> list:
    try:
        import otter  # noqa: F401
    except ImportError as exc:
        raise ImportError("export-course needs otter-grader: pip install 'dba-ref[classroom]'") from exc
    return [sys.executable, "-m", "otter"]


def export_course(directory, exercises=None, seed: int = 0, requirement: str = DEFAULT_REQUIREMENT,
                  force: bool = False, verify: bool = True, quiet: bool = True) -> dict:
    """Write the otter-grader course for ``exercises`` (default: all, in course order) into ``directory``.

    For exercise N: ``exNN_name/source/exNN_name.ipynb`` (otter's master
    notebook, with the solution and the tests), ``exNN_name/student/`` (the
    release) and ``exNN_name/autograder/`` (the autograder zip for
    Gradescope and ``otter run``). ``seed`` fixes the cases of the tests;
    ``verify`` has ``otter assign`` run them against the model solution
    first. Returns ``{number: folder}``. An existing exercise folder is kept
    unless ``force``.
    """
    command = _otter()
    chosen = [get_exercise(e) for e in (exercises or list(EXERCISES))]
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file, not a folder")
    written = {}
    for ex in chosen:
        out = directory / Path(ex.stub).stem
        if out.exists() and not force:
            raise FileExistsError(f"{out} already exists; pass --force to write over it, or give another folder")
        source = out / "source" / f"{Path(ex.stub).stem}.ipynb"
        source.parent.mkdir(parents=True, exist_ok=True)
        master = master_notebook(ex, seed, requirement, verify)
        source.write_text(json.dumps(master, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        result = subprocess.run([*command, "assign", str(source), str(out)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"otter assign failed for exercise {ex.number} ({ex.slug}):\n"
                               + (result.stderr or result.stdout)[-3000:])
        written[ex.number] = out
        if not quiet:
            print(f"exercise {ex.number:2d} · {ex.slug}: {out}/student, {out}/autograder", flush=True)
    readme = directory / "README.md"
    readme.write_text(_readme(chosen, seed, requirement), encoding="utf-8")
    return written


def autograder_zip(folder) -> Path:
    """The autograder zip that ``otter assign`` wrote into an exported exercise's folder."""
    zips = sorted((Path(folder) / "autograder").glob("*-autograder_*.zip"))
    if not zips:
        raise FileNotFoundError(f"no autograder zip in {Path(folder) / 'autograder'}")
    return zips[-1]


def _readme(chosen, seed: int, requirement: str) -> str:
    rows = "\n".join(f"| {ex.number} | `{Path(ex.stub).stem}/` | {ex.title} | {ex.reads_first} | {ex.minutes} min |"
                     for ex in chosen)
    return f"""# dba-ref exercises for otter-grader

Written by `dba-ref exercises export-course` (dba-ref {__version__}, test seed {seed}).

| N | folder | topic | read first | time |
| --- | --- | --- | --- | --- |
{rows}

In each folder:

- `student/`: the notebook to hand out (the task, the functions to fill in, `grader.check` for the
  public tests: the edge cases).
- `autograder/`: the autograder zip. Upload it to a Gradescope programming assignment, or grade
  locally with `otter run -a autograder/<zip> SUBMISSION.ipynb`. One point per case; the random cases
  are hidden tests. The autograder installs `{requirement}`.
- `source/`: otter's master notebook with the model solution, to edit and re-run `otter assign` on.

Otter runs a student's notebook and its tests in one Python kernel. For grades that a notebook
cannot tamper with, collect the notebooks into a folder and run
`dba-ref exercises grade N FOLDER --csv grades.csv` (each notebook in its own process, without
dba_ref, under time and memory limits).
"""

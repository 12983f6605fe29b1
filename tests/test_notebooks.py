"""The tutorial notebooks: in sync with their sources, committed with outputs, and they run.

``test_notebook_runs`` re-executes every notebook in ``tutorials/`` in a fresh
``python3`` kernel with nbclient, under a per-notebook time limit, and fails on
any cell error. The limit guards against a hang on a loaded machine; it is not a
speed target. Executing the notebooks takes a minute or two; it is part of the
default run (and so of CI), because a tutorial that no longer runs is a broken product.
"""
import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
#: Seconds a whole notebook may take before the test fails (all of its cells together).
NOTEBOOK_TIME_LIMIT = 300


def _load_builder():
    spec = importlib.util.spec_from_file_location("tutorials_build", TUTORIALS / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_builder()


def test_every_source_has_its_notebook():
    sources = sorted(build.SOURCES.glob("*.py"))
    assert len(sources) >= 4
    assert {build.notebook_path(s) for s in sources} == set(TUTORIALS.glob("*.ipynb"))


@pytest.mark.parametrize("source", sorted(build.SOURCES.glob("*.py")), ids=lambda p: p.stem)
def test_notebook_matches_its_source(source):
    assert build.cells_differ(source) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), "run python tutorials/_build.py"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "cells were run out of order"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "every tutorial has at least one figure"
    assert any(c.cell_type == "markdown" and "$" in c.source for c in nb.cells), "equations in Markdown"


def test_parse_source():
    cells = build.parse_source("# %% [markdown]\n# # Title\n# text $x$\n\n# %%\nx = 1\n\n\n# %%\n\n# %%\ny = 2\n")
    assert cells == [("markdown", "# Title\ntext $x$"), ("code", "x = 1"), ("code", "y = 2")]


def run_notebook(nb, cwd: Path, limit: float = NOTEBOOK_TIME_LIMIT) -> None:
    """Execute ``nb`` cell by cell in a fresh kernel, as the build does (the fields of its Markdown cells
    evaluated too); any cell error, a field that cannot be evaluated, or running past ``limit`` seconds in
    all, raises."""
    build.execute(nb, cwd=cwd, limit=limit)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    run_notebook(nbformat.read(path, as_version=4), path.parent)


def test_runner_fails_on_an_error_and_on_the_time_limit(tmp_path):
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")]
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="ZeroDivisionError"):
        run_notebook(nbformat.v4.new_notebook(cells=cells), tmp_path)
    slow = [nbformat.v4.new_code_cell("import time; time.sleep(30)")]
    with pytest.raises((TimeoutError, nbclient.exceptions.CellTimeoutError)):
        run_notebook(nbformat.v4.new_notebook(cells=slow), tmp_path, limit=3)

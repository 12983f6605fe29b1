"""The tutorial notebooks: in sync with their sources, committed with outputs, their text held to their
outputs, and they run.

A result that a Markdown cell quotes is a field of its source, ``{{expression:format}}``, filled from the
run when the notebook is built (``tutorials/_build.py``). ``test_notebook_matches_its_source`` checks that
the committed text is its source filled with the values of the committed run, ``test_no_result_typed_in``
that no decimal number or percentage was typed into the text instead, and ``test_notebook_runs``
re-executes every notebook from its source in a fresh ``python3`` kernel with nbclient, its fields
included, under a per-notebook time limit, and fails on any cell or field error. The limit guards against
a hang on a loaded machine; it is not a speed target. Executing the notebooks takes a few minutes; it is
part of the default run (and so of CI), because a tutorial that no longer runs is a broken product.
"""
import importlib.util
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
#: Seconds a whole notebook may take before the test fails (all of its cells together). The longest,
#: notebook 5, took 65 to 72 s at load averages of 3 to 5 and 141 to 224 s at 8 to 24, on 2 cores shared
#: with other jobs (tutorials/README.md).
NOTEBOOK_TIME_LIMIT = 600


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


SOURCES = sorted(build.SOURCES.glob("*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs(source):
    run_notebook(build.notebook_from_source(source), TUTORIALS)


def test_quoted_results_are_filled_and_held_to_the_run(tmp_path):
    template = "DBA reached {{acc:.1%}} ({{label['a']}}); $\\frac{1}{2}$ stays"
    code = nbformat.v4.new_code_cell("acc = 0.8946\nlabel = {'a': \"it's\"}")
    nb = build.execute(nbformat.v4.new_notebook(cells=[code, nbformat.v4.new_markdown_cell(template)]),
                       cwd=tmp_path, limit=120)
    cell = nb.cells[1]
    assert cell.source == "DBA reached 89.5% (it's); $\\frac{1}{2}$ stays"
    assert build.committed_source(cell) == template                 # the source comes back from the metadata
    edited = nbformat.from_dict({**cell, "source": cell.source.replace("89.5", "91.0")})
    assert build.committed_source(edited) == edited.source          # a hand edit shows as a difference
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="cannot be evaluated"):
        build.execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("{{missing}}")]), cwd=tmp_path,
                      limit=120)
    with pytest.raises(ValueError, match="backslash"):
        build._field_code(["a\\b"])


#: A result typed into Markdown: a decimal number or a percentage (an integer is a count or a setting).
TYPED_RESULT = re.compile(r"(?<![\w.:§/\-])\d+(?:\.\d+)?%|(?<![\w.:§/\-])\d+\.\d+(?![\d.])")
#: What is not prose: fields, equations, code spans and blocks, link targets.
NOT_PROSE = re.compile(r"\{\{.+?\}\}|\$\$.+?\$\$|\$[^$]+\$|```.+?```|`[^`]+`|\]\([^)]*\)", re.S)


def typed_results(source: Path) -> list[str]:
    """The decimal numbers and percentages in the Markdown prose of ``source`` that its code does not hold."""
    cells = build.parse_source(source.read_text(encoding="utf-8"))
    code = "\n".join(text for kind, text in cells if kind == "code")
    prose = "\n".join(NOT_PROSE.sub(" ", text) for kind, text in cells if kind == "markdown")
    return [n for n in TYPED_RESULT.findall(prose) if n.rstrip("%") not in code]


def test_typed_results_are_found():
    assert TYPED_RESULT.findall("kept 6.2 samples, 78% of them; spec §10.2, arXiv:2208.00815, 20 epochs") == [
        "6.2", "78%"]
    assert NOT_PROSE.sub(" ", "{{a:.1%}} and $0.5$ and `0.25` and [x](a/0.1.md)").split() == ["and", "and", "and", "[x"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_result_typed_in(source):
    assert typed_results(source) == [], ("quote a result as a field, {{name:format}}, filled from the run "
                                         "(tutorials/README.md, For maintainers)")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_notebook_ends_with_its_exercises(source):
    cells = build.parse_source(source.read_text(encoding="utf-8"))
    last_text = next(text for kind, text in reversed(cells) if kind == "markdown")
    assert "## Practise it" in last_text and "`dba-ref exercises start " in last_text


def test_the_reading_order_lists_every_notebook_in_order():
    readme = (TUTORIALS / "README.md").read_text(encoding="utf-8")
    order = readme[readme.index("## Reading order"):readme.index("## Exercises")]
    listed = re.findall(r"^\| (\d+) \| \[`(\w+)\.ipynb`\]", order, re.M)
    assert [name for _, name in listed] == [p.stem for p in NOTEBOOKS]
    assert [int(n) for n, _ in listed] == list(range(1, len(NOTEBOOKS) + 1))


def test_the_exercises_table_matches_the_exercises():
    from dba_ref.exercises import EXERCISES

    readme = (TUTORIALS / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Exercises"):readme.index("## For maintainers")]
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| .+ \| (\d+) \|$", table, re.M)
    assert all((TUTORIALS / ex.reads_first).is_file() for ex in EXERCISES.values()), "reads_first names no notebook"
    assert [(int(n), slug, int(after)) for n, slug, after in rows] == [
        (n, ex.slug, int(ex.reads_first[:2])) for n, ex in EXERCISES.items()]


def test_runner_fails_on_an_error_and_on_the_time_limit(tmp_path):
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")]
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="ZeroDivisionError"):
        run_notebook(nbformat.v4.new_notebook(cells=cells), tmp_path)
    slow = [nbformat.v4.new_code_cell("import time; time.sleep(30)")]
    with pytest.raises((TimeoutError, nbclient.exceptions.CellTimeoutError)):
        run_notebook(nbformat.v4.new_notebook(cells=slow), tmp_path, limit=3)

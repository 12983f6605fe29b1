"""Build the tutorial notebooks from their sources, execute them and save them with their outputs.

Each notebook ``tutorials/NN_name.ipynb`` is written from ``tutorials/_src/NN_name.py``,
a plain Python file in the "percent" format that jupytext also reads:

    # %% [markdown]
    # # A title
    # Text, $equations$ ...

    # %%
    x = compute()

A ``# %% [markdown]`` line starts a Markdown cell (its lines lose their leading
``# ``), a ``# %%`` line starts a code cell. The sources are what to edit and
review; the ``.ipynb`` files, with their outputs, are what readers open.

A result that the text quotes is never typed in: a Markdown cell names it as a
*field*, ``{{expression}}`` or ``{{expression:format}}`` (the replacement field
of an f-string), e.g. ``DBA kept {{kept_mean:.1f}} samples``. When the notebook
executes, each field is evaluated in the kernel right after the code cells above
it, and the cell's text is written with the values; the values are also stored
in the cell's metadata (``quoted``, with the source), so that ``--check`` and
the tests can see that the committed text is its source filled with the values
of the committed run. Text and outputs come from the same run and cannot drift apart.

Usage (from the repository root)::

    python tutorials/_build.py              # rebuild and execute every notebook
    python tutorials/_build.py 03           # only the notebooks whose name contains "03"
    python tutorials/_build.py --check      # exit 1 if a notebook's cells differ from its source
    python tutorials/_build.py --time       # execute every notebook, print its wall time, write nothing

Notebooks execute in ``tutorials/`` with the ``python3`` kernel and with BLAS
pinned to one thread (as in ``tests/test_notebooks.py``): on a shared machine
that keeps timings comparable and every number reproducible.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "_src"
KERNEL = "python3"
#: Environment of the kernel: one BLAS thread (reproducible numbers, fair timings on a shared machine).
KERNEL_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
#: A quoted result in a Markdown cell: ``{{expression}}`` or ``{{expression:format}}``.
FIELD = re.compile(r"\{\{(.+?)\}\}")
#: Key of a Markdown cell's metadata that holds its source and the values of its fields:
#: ``{"template": source, "values": {field: text}}``.
QUOTED = "quoted"


def parse_source(text: str) -> list[tuple[str, str]]:
    """``[(cell_type, source)]`` from a percent-format file."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in stripped else "code", []))
        elif cells:
            kind, lines = cells[-1]
            if kind == "markdown":
                line = line[2:] if line.startswith("# ") else line.lstrip("#")
            lines.append(line)
    out = []
    for kind, lines in cells:
        source = "\n".join(lines).strip("\n")
        if source.strip():
            out.append((kind, source))
    return out


def notebook_from_source(path: Path):
    """An unexecuted ``nbformat`` notebook from a source file, with stable cell ids."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, source) in enumerate(parse_source(path.read_text(encoding="utf-8"))):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(source, id=f"{path.stem[:2]}-{i:02d}"))
    return nb


def notebook_path(source: Path) -> Path:
    return HERE / f"{source.stem}.ipynb"


def fields(markdown: str) -> list[str]:
    """The fields of a Markdown cell, in order of first appearance (each once)."""
    return list(dict.fromkeys(FIELD.findall(markdown)))


def fill(markdown: str, values: dict) -> str:
    """``markdown`` with every field replaced by its value."""
    return FIELD.sub(lambda m: values[m.group(1)], markdown)


def _field_code(names: list[str]) -> str:
    """Code that prints the values of ``names`` as a JSON list. Each is the body of an f-string in triple
    quotes, so a field may use both kinds of quotes; it cannot hold a backslash or three quotes in a row."""
    triple = "'" * 3
    for name in names:
        if "\\" in name or triple in name:
            raise ValueError(f"the field {{{{{name}}}}} holds a backslash or {triple}: compute the value in a code "
                             "cell, under a name, and quote the name")
    return "print(__import__('json').dumps([" + ", ".join(f"f{triple}{{{n}}}{triple}" for n in names) + "]))"


def _quote(client, cell, index: int) -> None:
    """Evaluate the fields of a Markdown cell in the kernel (no history, no output kept); write the values."""
    from nbclient.exceptions import CellExecutionError
    from nbformat.v4 import new_code_cell

    names = fields(cell.source)
    probe = new_code_cell(_field_code(names))
    try:
        client.execute_cell(probe, index, store_history=False)
    except CellExecutionError as exc:
        raise CellExecutionError(f"a field of Markdown cell {index} cannot be evaluated: {names}", exc.ename,
                                 exc.evalue) from exc
    finally:
        client.nb.cells[index] = cell          # nbclient puts the cell it ran in the notebook: put this one back
    text = "".join(o.get("text", "") for o in probe.outputs if o.output_type == "stream" and o.name == "stdout")
    values = dict(zip(names, json.loads(text.strip().splitlines()[-1])))
    cell.metadata[QUOTED] = {"template": cell.source, "values": values}
    cell.source = fill(cell.source, values)


def execute(nb, timeout: int = 600, cwd: Path = HERE, limit: float | None = None):
    """Run every cell of ``nb`` in a fresh kernel, in place, and fill the fields of its Markdown cells.

    A cell error raises ``CellExecutionError``; ``timeout`` bounds each cell, ``limit`` (seconds, optional)
    the whole notebook (``TimeoutError`` once it is spent).
    """
    from nbclient import NotebookClient

    env = {**os.environ, **KERNEL_ENV}
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(cwd)}},
                            record_timing=False)
    deadline = None if limit is None else time.monotonic() + limit
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"ran past its limit of {limit:.0f} s before cell {index}")
                client.timeout = max(1, min(timeout, int(left)))     # what is left of the notebook's budget
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
            elif cell.cell_type == "markdown" and fields(cell.source):
                _quote(client, cell, index)
    return nb


def cells_differ(source: Path) -> list[str]:
    """Why the committed notebook of ``source`` does not match it (empty when it does)."""
    import nbformat

    target = notebook_path(source)
    if not target.is_file():
        return [f"{target.name} is missing: run python tutorials/_build.py {source.stem[:2]}"]
    built = [(c.cell_type, c.source) for c in notebook_from_source(source).cells]
    committed = [(c.cell_type, committed_source(c)) for c in nbformat.read(target, as_version=4).cells]
    if built == committed:
        return []
    first = next((i for i, (a, b) in enumerate(zip(built, committed)) if a != b), min(len(built), len(committed)))
    return [f"{target.name} differs from _src/{source.name} at cell {first} "
            f"({len(committed)} cells committed, {len(built)} in the source): run python tutorials/_build.py "
            f"{source.stem[:2]}"]


def committed_source(cell) -> str:
    """The source a committed cell was built from: for a Markdown cell with quoted values, its template, if
    the text is exactly the template filled with the stored values; otherwise the text as it stands (edited
    by hand, or values that are not the template's fields), which then differs from the source."""
    quoted = cell.metadata.get(QUOTED)
    if cell.cell_type != "markdown" or not quoted:
        return cell.source
    template, values = quoted.get("template", ""), quoted.get("values", {})
    if set(values) != set(fields(template)) or fill(template, values) != cell.source:
        return cell.source
    return template


def main(argv=None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="build only the notebooks whose name contains one of these")
    parser.add_argument("--check", action="store_true", help="only check that the notebooks match their sources")
    parser.add_argument("--time", action="store_true",
                        help="execute the notebooks and print the wall time of each; the .ipynb files are not written")
    args = parser.parse_args(argv)
    sources = sorted(p for p in SOURCES.glob("*.py") if not args.only or any(o in p.stem for o in args.only))
    if args.check:
        problems = [msg for s in sources for msg in cells_differ(s)]
        print("\n".join(problems) or f"{len(sources)} notebooks match their sources")
        return 1 if problems else 0
    if args.time:
        print(machine_line())
    for source in sources:
        started = time.perf_counter()
        nb = execute(notebook_from_source(source))
        seconds = time.perf_counter() - started
        if args.time:
            print(f"{notebook_path(source).name:40s} {seconds:6.1f} s   (load average after: {os.getloadavg()[0]:.1f})")
            continue
        nbformat.write(nb, notebook_path(source))
        print(f"{notebook_path(source).name}: executed in {seconds:.1f} s", file=sys.stderr)
    return 0


def machine_line() -> str:
    """Where and when the notebooks were timed: date, CPU, cores, load average, NumPy, BLAS threads."""
    import datetime

    import numpy

    from dba_ref._machine import cpu_model

    return (f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f}, NumPy {numpy.__version__}, {KERNEL_ENV['OPENBLAS_NUM_THREADS']} BLAS thread "
            "in the kernel; wall time of each notebook, kernel start included:")


if __name__ == "__main__":
    sys.exit(main())

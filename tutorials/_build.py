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
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "_src"
KERNEL = "python3"
#: Environment of the kernel: one BLAS thread (reproducible numbers, fair timings on a shared machine).
KERNEL_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


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


def execute(nb, timeout: int = 600, cwd: Path = HERE):
    """Run every cell of ``nb`` in a fresh kernel (in place); a cell error raises ``CellExecutionError``."""
    from nbclient import NotebookClient

    env = {**os.environ, **KERNEL_ENV}
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(cwd)}},
                            record_timing=False)
    client.execute(env=env)
    return nb


def cells_differ(source: Path) -> list[str]:
    """Why the committed notebook of ``source`` does not match it (empty when it does)."""
    import nbformat

    target = notebook_path(source)
    if not target.is_file():
        return [f"{target.name} is missing: run python tutorials/_build.py {source.stem[:2]}"]
    built = [(c.cell_type, c.source) for c in notebook_from_source(source).cells]
    committed = [(c.cell_type, c.source) for c in nbformat.read(target, as_version=4).cells]
    if built == committed:
        return []
    first = next((i for i, (a, b) in enumerate(zip(built, committed)) if a != b), min(len(built), len(committed)))
    return [f"{target.name} differs from _src/{source.name} at cell {first} "
            f"({len(committed)} cells committed, {len(built)} in the source): run python tutorials/_build.py "
            f"{source.stem[:2]}"]


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

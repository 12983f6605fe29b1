"""The report of a reproduction, assembled from whatever runs have finished.

``write_report`` writes, from the runs under the results folder:

- the report page: the protocol, the headline table with the paper's numbers
  beside ours, the plain statement of which claims are reproduced, the
  convergence-speed claim (its rules, verdict, comparisons and curves), what
  was not run, and per cell its tables and figures;
- ``table.md`` (the tables alone), ``summary.json`` (the same numbers,
  machine-readable) and ``figures/`` beside the runs.

Each part is made by its own module: :mod:`~dba_ref.reproduction.collect`
(reading the runs), :mod:`~dba_ref.reproduction.convergence`,
:mod:`~dba_ref.reproduction.statistics`, :mod:`~dba_ref.reproduction.tables`,
:mod:`~dba_ref.reproduction.figures` and :mod:`~dba_ref.reproduction.statements`;
this one puts them on a page.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..checkpoint import atomic_write
from .collect import CellResult, collect
from .convergence import measured_cells, rules
from .figures import plot_accuracy, plot_convergence, plot_selected
from .protocol import CONVERGENCE_CLAIM, READINGS, Protocol
from .provenance import read_provenance
from .runner import unresolved_failures
from .runs import write_json
from .statements import (claim_statements, convergence_statements, other_dataset_statements, reading_statements,
                         summary_statement, variant_statement)
from .tables import cell_table, cell_title, comparison_table, convergence_table, headline_table, summary


def write_report(protocol: Protocol, out, report_path, *, notes=(), command: str | None = None,
                 counts: dict | None = None) -> Path:
    """Write ``table.md``, ``summary.json``, ``figures/`` under ``out`` and the report at ``report_path``.

    Everything on the page comes from ``out`` (the runs and ``provenance.json``), the
    protocol and the arguments: ``command`` (how to reproduce the runs), ``notes`` (about
    this invocation only; notes about the runs belong in the provenance) and ``counts``
    (what :func:`~dba_ref.reproduction.runner.run_protocol` just did). The page is dated
    by its last finished run, so rewriting it from the same folder gives the same bytes.
    """
    out, report_path = Path(out), Path(report_path)
    cells = collect(protocol, out)

    def link(path) -> str:
        """``path`` relative to the report's folder."""
        return Path(os.path.relpath(path, report_path.parent)).as_posix()

    lines = header(protocol, cells, out, command or "dba-ref reproduce", link, notes)
    lines += ["", "## Headline", "", headline_table(cells), "",
              "The paper's numbers are those of its abstract (spec §1) and were measured on the full MNIST "
              "(600 / 100 training images out of 60,000, official 10k test set); here MNIST-5k stands in for it.",
              "", "## Plain statement", ""]
    lines += plain_statement(cells)
    lines += ["", "## Convergence speed", ""]
    lines += convergence_section(cells, out / "figures", link)
    lines += ["", "## What was not run", ""]
    lines += not_run(cells, out, counts)
    seconds = sum(m.tuning_seconds + m.final_values("train_seconds").sum() for c in cells for m in c.methods)
    lines += ["", f"Wall time of the runs behind this report (tuning and final, a run two cells share counted "
              f"twice): {seconds:.0f} s ({seconds / 3600:.2f} h).", "", "## Cells", ""]
    speeds = [convergence_table(c) if c.finished else "" for c in cells]
    lines += [cell_section(c, protocol.tuning_budget, speed, out / "figures", link) for c, speed in zip(cells, speeds)]
    atomic_write(report_path, ("\n".join(lines) + "\n").encode())

    atomic_write(out / "table.md", tables_page(cells, protocol.tuning_budget, speeds).encode())
    write_json(out / "summary.json", summary(protocol, cells))
    return report_path


#: How to spread the runs over cores and machines (the page's "Running it" section; ``{command}``: the report's).
RUNNING_IT = """Each run is independent of the others but for a method's final runs, which wait for its tuning runs. \
Where they train changes nothing in their files but the wall times (a run depends on its seed alone, and trains \
with one BLAS thread everywhere), and the process that runs the command writes every file, so an interrupted \
or time-limited invocation resumes where it stopped, however the runs were spread.

- On every core of one machine: `{command} --jobs 0` (or `--jobs N`: N worker processes).
- On a Dask cluster (`pip install "dba-ref[cluster]"` on every machine, the same dba-ref everywhere):

  ```
  # on one machine:
  dask scheduler --port 8786
  # on each machine: one worker process per core (--nworkers -1), one thread each
  dask worker tcp://SCHEDULER:8786 --nworkers -1 --nthreads 1
  # anywhere that reaches the scheduler:
  {command} --scheduler tcp://SCHEDULER:8786
  ```

  Each run is a task; its record comes back to the command, which writes the file. A worker that dies takes \
nothing with it: the scheduler gives its run to another worker (up to Dask's `distributed.scheduler.allowed-failures`, \
then the run is listed as failed and retried by the next invocation). Fashion-MNIST must be at the same \
`--data-dir` on every worker (`apt-get install dataset-fashion-mnist`); the command skips its cells when it cannot \
load it itself."""


def tables_page(cells, budget: int, speeds) -> str:
    """``table.md``: the headline table, the convergence comparisons, and every cell's tables (``speeds[i]``: the
    :func:`~dba_ref.reproduction.tables.convergence_table` of ``cells[i]``)."""
    parts = ["# Headline", headline_table(cells)]
    measured = measured_cells(cells)
    if measured:
        parts += ["# Convergence speed", comparison_table(measured)]
    for c, speed in zip(cells, speeds):
        if c.finished:
            parts += [f"## {cell_title(c)}", cell_table(c, budget)] + [t for t in [speed] if t]
    return "\n\n".join(parts) + "\n"


def header(protocol: Protocol, cells, out: Path, command: str, link, notes=()) -> list[str]:
    """Title, provenance (command, dates, machine, load) and the protocol section."""
    finals = [r for c in cells for m in c.methods for r in m.finals]
    loads = [r["environment"][k] for r in finals for k in ("load_average_before", "load_average_after")]
    stamps = sorted(t.replace("T", " ") for c in cells for t in c.stamps)
    provenance = read_provenance(out)
    machines = "; ".join(provenance["machines"]) or "not recorded"
    line = f"Generated by `{command}`"
    if stamps:
        line += f" on {stamps[-1][:10]}; the runs finished between {stamps[0]} and {stamps[-1]}"
    line += f"; {'machines' if len(provenance['machines']) > 1 else 'machine'}: {machines}"
    if loads:
        line += (f"; 1-minute load average during the final runs {min(loads):.1f}–{max(loads):.1f} "
                 "(the cores were shared, so wall times are upper bounds)")
    return ["# Reproducing the headline table of *Dynamic Batch Adaptation*", "", line + ".",
            f"Every number below is computed from the JSON files of the runs under `{link(out / 'runs')}/`; "
            "rerunning the command resumes (it never redoes a finished run) and adding `--report-only` rewrites "
            "this page from the runs on disk.",
            "", "## The protocol", "",
            *(f"- {sentence}" for sentence in protocol.describe()),
            "- RER = (err_baseline − err_DBA) / err_baseline. `(edge)` marks a learning rate at the end of its grid.",
            f"- {protocol.choices()}",
            *(f"- {note}" for note in (*protocol.notes, *provenance["notes"], *notes)),
            "", "## Running it", "", RUNNING_IT.format(command=command)]


def plain_statement(cells) -> list[str]:
    """The summary paragraph, one paragraph per claim, then the readings, the DBA variants, other data."""
    short = summary_statement(cells)
    lines = [short, ""] if short else []
    lines += [f"- {s}" for s in claim_statements(cells)]
    lines += ["", "Readings of the paper tried to close the gap (each a cell below; against the same regime's "
              "main cell):", ""]
    lines += [f"- {s}" for s in reading_statements(cells)]
    mains = [c for c in cells if c.cell.reading == "main" and c.cell.setting.dataset == "mnist5k"]
    lines += [f"- {s}" for s in (variant_statement(c) for c in mains) if s]
    others = other_dataset_statements(cells)
    if others:
        lines += ["", "Other data:", ""] + [f"- {s}" for s in others]
    return lines


def convergence_section(cells, figures: Path, link) -> list[str]:
    """The claim, how it is measured, the verdict, the comparisons and the curves (drawn here)."""
    lines = [f"The abstract: \"{CONVERGENCE_CLAIM}\". Measured from the curves of the final runs (evaluated after "
             "every epoch):", ""]
    lines += [f"- {rule}" for rule in rules()]
    lines += ["", *convergence_statements(cells)]
    measured = measured_cells(cells)
    if measured:
        lines += ["", "DBA against the baseline per cell, target and comparison: the mean time to the target of each "
                  "over the seeds that decide, the verdict and the paired t-test (each method's own times are in its "
                  "cell's section below):", "", comparison_table(measured)]
    for c in measured:
        path = plot_convergence(c, figures / f"convergence-{c.cell.reading}-{c.cell.setting.key}.png")
        if path:
            lines += ["", f"![convergence: {cell_title(c)}]({link(path)})"]
    return lines


def not_run(cells, out: Path, counts: dict | None) -> list[str]:
    """What each cell still lacks, the failed runs not yet redone, and why the last invocation stopped early."""
    lines = [f"- {c.cell.name}: {c.planned - c.finished} of {c.planned} runs" for c in cells if c.finished < c.planned]
    lines = lines or ["- nothing: every run of the protocol finished."]
    lines += [f"- failed (retried by the next invocation): {f['run']}: {f['error']}" for f in unresolved_failures(out)]
    if counts and counts.get("stopped"):
        lines += [f"- the last invocation stopped early: {counts['stopped']}."]
    return lines


def cell_section(c: CellResult, budget: int, speed: str, figures: Path, link) -> str:
    """One cell: title, what it is for, how many runs finished, its table, ``speed`` (its
    :func:`~dba_ref.reproduction.tables.convergence_table`) and its figures (drawn here)."""
    reading = READINGS[c.cell.reading]
    title = f"### {cell_title(c)}\n\n{reading[0].upper()}{reading[1:]}. {c.finished} of {c.planned} runs finished."
    record = next((r for m in c.methods for r in m.finals), None)
    if record:
        title += (f" Images: {record['n_train']} training, {record['n_val']} validation, {record['n_test']} test "
                  "per seed.")
    if not c.finished:
        return title + " **Not run.**\n"
    body = [title, cell_table(c, budget)]
    if speed:
        body.append(speed)
    stem = f"{c.cell.reading}-{c.cell.setting.key}"
    for plot, kind in ((plot_accuracy, "accuracy"), (plot_selected, "selected")):
        path = plot(c, figures / f"{kind}-{stem}.png")
        if path:
            body.append(f"![{kind}: {cell_title(c)}]({link(path)})")
    return "\n\n".join(body) + "\n"

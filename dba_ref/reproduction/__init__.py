"""Reproducing the paper's headline table (spec §9): ``dba-ref reproduce``.

What is run:

- :mod:`~dba_ref.reproduction.protocol`    settings, methods, cells, the fair tuning budget, and their description
- :mod:`~dba_ref.reproduction.readings`    readings of the paper other than the reference (Σ/B update)
- :mod:`~dba_ref.reproduction.runs`        one run: what identifies it, its file, training it
- :mod:`~dba_ref.reproduction.runner`      running them all: which run next, one writer for the files, resumable
- :mod:`~dba_ref.reproduction.workers`     where the runs train: here, worker processes, a Dask cluster
- :mod:`~dba_ref.reproduction.provenance`  the machine that trained the runs, and the notes about them

What is reported, from whatever has finished:

- :mod:`~dba_ref.reproduction.collect`     the finished runs, per cell and method
- :mod:`~dba_ref.reproduction.convergence` how soon each method reaches the convergence targets
- :mod:`~dba_ref.reproduction.statistics`  relative error reduction and the paired t-test
- :mod:`~dba_ref.reproduction.tables`      the cell tables, the headline table, ``summary.json``
- :mod:`~dba_ref.reproduction.figures`     accuracy per method; the batch DBA kept over training; the curves
- :mod:`~dba_ref.reproduction.statements`  the plain statement of which claims are reproduced
- :mod:`~dba_ref.reproduction.report`      the page that puts them together
"""
from .protocol import PAPER, Cell, Method, Protocol, Setting, full_protocol, quick_protocol
from .readings import sum_over_batch
from .runner import choose_learning_rate, run_protocol
from .runs import execute_run

__all__ = ["PAPER", "Cell", "Method", "Protocol", "Setting", "full_protocol", "quick_protocol", "sum_over_batch",
           "choose_learning_rate", "execute_run", "run_protocol"]

"""Reproducing the paper's headline table (spec §9): ``dba-ref reproduce``.

- :mod:`~dba_ref.reproduction.protocol`  what is run: settings, methods, cells, the fair tuning budget
- :mod:`~dba_ref.reproduction.readings`  readings of the paper other than the reference (Σ/B update)
- :mod:`~dba_ref.reproduction.runner`    running it, one JSON file per finished run, resumable
- :mod:`~dba_ref.reproduction.report`    tables, figures and the plain statement, from whatever finished
"""
from .protocol import PAPER, Cell, Method, Protocol, Setting, full_protocol, quick_protocol
from .readings import sum_over_batch
from .runner import choose_learning_rate, execute_run, run_protocol

__all__ = ["PAPER", "Cell", "Method", "Protocol", "Setting", "full_protocol", "quick_protocol", "sum_over_batch",
           "choose_learning_rate", "execute_run", "run_protocol"]

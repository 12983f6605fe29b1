"""Where a results folder's runs were made, and what was noted about them: ``OUT/provenance.json``.

The report's first lines name the machine that trained the runs and list the
notes given with ``dba-ref reproduce --note``. Both are facts about the runs,
not about the invocation that writes the report, so they are kept beside the
runs: ``--report-only`` on another machine, or another day, rewrites the same
page from the same folder.

The file is small and meant to be read (and edited, to drop a note)::

    {
     "machines": ["AMD EPYC, 2 logical CPUs, Linux 6.18.44, Python 3.11.7"],
     "notes": ["The runs were made on ... by time-limited invocations ..."]
    }

``machines`` lists, in order of first use, every machine that trained at
least one run of the folder; ``notes`` every distinct ``--note``.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from .._machine import cpu_model
from ..checkpoint import atomic_write

#: The file's name inside a results folder.
FILE = "provenance.json"
FIELDS = ("machines", "notes")


def this_machine() -> str:
    """``CPU model, N logical CPUs, OS release, Python version`` of the machine running this."""
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def read_provenance(out) -> dict:
    """``{"machines": [...], "notes": [...]}`` of the results folder ``out`` (both empty when there is no file)."""
    path = Path(out) / FILE
    if not path.is_file():
        return {field: [] for field in FIELDS}
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or delete it") from None
    if not (isinstance(doc, dict) and set(doc) == set(FIELDS)
            and all(isinstance(doc[f], list) and all(isinstance(s, str) for s in doc[f]) for f in FIELDS)):
        raise ValueError(f'{path} must hold {{"machines": [strings], "notes": [strings]}}; fix or delete it')
    return doc


def add_provenance(out, machines=(), notes=()) -> dict:
    """Add the ``machines`` and ``notes`` not yet in ``out``'s provenance; write it if anything was new."""
    doc = read_provenance(out)
    new = {"machines": [m for m in dict.fromkeys(machines) if m not in doc["machines"]],
           "notes": [n for n in dict.fromkeys(notes) if n not in doc["notes"]]}
    if any(new.values()):
        doc = {field: doc[field] + new[field] for field in FIELDS}
        atomic_write(Path(out) / FILE, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode())
    return doc

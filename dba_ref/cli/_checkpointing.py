"""The checkpoint options of ``dba-ref train``: ``--checkpoint-dir``, ``--checkpoint-every``, ``--resume``.

``dba-ref train`` calls :func:`add_arguments` for its parser and passes
:func:`train_kwargs` on to :func:`dba_ref.training.train`. A run killed at any
point is continued, bit for bit, by the same command with ``--resume``::

    dba-ref train --epochs 50 --checkpoint-every 100 --out runs/a      # killed during epoch 31
    dba-ref train --epochs 50 --checkpoint-every 100 --out runs/a --resume
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ._types import positive_int

#: Folder of the checkpoint inside the output folder when --checkpoint-dir is not given.
DEFAULT_SUBDIR = "checkpoint"


def add_arguments(group) -> None:
    """Add the three options to ``group`` (a parser or an argument group)."""
    group.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                       help="write a checkpoint there after every epoch (default: none; with --resume or "
                            f"--checkpoint-every: OUT/{DEFAULT_SUBDIR})")
    group.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                       help="also write the checkpoint after every N steps (default: only after every epoch)")
    group.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint if there is one (same options; --epochs may grow)")


def train_kwargs(args: argparse.Namespace, out, subfolder: str | None = None) -> dict:
    """``checkpoint_dir``, ``checkpoint_every`` and ``resume`` for :func:`dba_ref.training.train`.

    ``out`` is the run's output folder. A second run of the same command (the comparison run of
    ``dba-ref train``) passes its ``subfolder`` of the output folder: its checkpoint goes to
    ``--checkpoint-dir``/``subfolder`` when that option is given.
    """
    directory = args.checkpoint_dir
    if directory is not None and subfolder:
        directory = Path(directory) / subfolder
    if directory is None and (args.resume or args.checkpoint_every is not None):
        directory = Path(out) / DEFAULT_SUBDIR
    return {"checkpoint_dir": directory, "checkpoint_every": args.checkpoint_every, "resume": args.resume}


def finished(checkpoints, epochs: int) -> bool:
    """Whether every run has a checkpoint (a path, or None for none) that has trained ``epochs`` epochs:
    ``--resume`` then has nothing left to do."""
    from ..training.resume import trained_epochs

    return all(c is not None and c.exists() and trained_epochs(c) == epochs for c in checkpoints)

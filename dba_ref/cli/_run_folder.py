"""The output folder of ``dba-ref train``: its default name, and the rule that never replaces a run silently.

**Name.** ``runs/DATASET-OPTIMIZER-sSEED``, with ``OPTION=VALUE`` inserted for every option that
changes what is computed and differs from its default, so two runs that could differ never share a
default folder: ``dba-ref train --strategy greedy --epochs 20`` writes to
``runs/mnist5k-dba-adam-strategy=greedy-epochs=20-s0``.

**No silent overwrite.** A folder that already holds a file the command would write (a
``results.json``, the figure, a checkpoint) is refused unless

- ``--overwrite``: those files are deleted, and only them, once every other input has been checked
  (a command refused for a bad option or bad data leaves them as they were); or
- ``--resume``: every run that has results continues from its checkpoint (and is refused when it
  has none: it would start again and replace them).
"""
from __future__ import annotations

from pathlib import Path

#: Options that change nothing the runs compute (or already name the folder): left out of its name.
NOT_IN_NAME = frozenset({"dataset", "optimizer", "base", "seed", "data_dir", "out", "quiet", "no_plot", "overwrite",
                         "resume", "checkpoint_dir", "checkpoint_every", "test_every"})


def _text(value) -> str:
    """An option's value as it appears in a folder name (no path separator)."""
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "full" if value is None else str(value).replace("/", "_").replace("\\", "_")


def default_name(args, defaults) -> str:
    """``DATASET-OPTIMIZER[-OPTION=VALUE...]-sSEED`` for the options of ``args`` that differ from ``defaults``."""
    parts = [args.dataset, f"dba-{args.base}" if args.optimizer == "dba" else args.optimizer]
    for dest, value in vars(args).items():
        if dest in NOT_IN_NAME or dest.startswith("_") or value == getattr(defaults, dest, value):
            continue
        if dest == "hparam":
            parts += [f"{key}={_text(v)}" for key, v in value]
        elif value is True:
            parts.append(dest.replace("_", "-"))
        else:
            parts.append(f"{dest.replace('_', '-')}={_text(value)}")
    return "-".join([*parts, f"s{args.seed}"])


def check_folder(out: Path, results: list[Path], logs: list[Path], other_files: list[Path],
                 checkpoints: list[Path | None], overwrite: bool, resume: bool) -> None:
    """Refuse (``FileExistsError``) to write into ``out`` where that would replace a run unasked.

    ``results[i]``, ``logs[i]`` and ``checkpoints[i]`` are run i's results file, the log it leaves while
    training and its checkpoint (None: it keeps none); ``other_files`` are the other files the command
    writes (the figure).
    """
    if overwrite and resume:
        raise ValueError("--overwrite starts the runs again and --resume continues them: choose one")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file, not a folder: choose another --out")
    if overwrite:
        return
    if resume:
        for result, log, checkpoint in zip(results, logs, checkpoints):
            started = result.exists() or log.exists()      # finished, or killed
            if started and (checkpoint is None or not checkpoint.exists()):
                raise FileExistsError(f"{result} has no checkpoint to resume from (that run was trained without "
                                      "--checkpoint-every or --resume): pass --overwrite to train it again, or "
                                      "--out to write elsewhere")
        return
    existing = [p for p in [*results, *other_files, *logs, *(c for c in checkpoints if c)] if p.exists()]
    if existing:
        names = ", ".join(p.relative_to(out).as_posix() if p.is_relative_to(out) else str(p) for p in existing)
        raise FileExistsError(f"{out} already holds a run ({names}): pass --overwrite to replace it, --resume to "
                              "continue it, or --out to write elsewhere")


def clear(paths) -> None:
    """Delete the files among ``paths`` that exist (``--overwrite``, once everything else has been checked)."""
    for path in paths:
        if path is not None and path.exists():
            path.unlink()

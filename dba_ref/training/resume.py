"""Checkpoints of a :func:`~dba_ref.training.train` run: what identifies a run, and restoring one.

A checkpoint (``checkpoint_dir/checkpoint.ckpt``, written by
:mod:`dba_ref.checkpoint`) holds the parameters, the optimizer's state, the
sampler, the step count, the history and the seconds taken, together with the
run's identity: its configuration and a digest of its data. A checkpoint of
another run (another model, optimizer, hyper-parameter, batch size, seed,
shuffling or data) is refused, naming what differs; only the entries of
:data:`RESUMABLE_CHANGES` may differ (``epochs``, so a finished run can be
extended, ``test_every``, which changes no step, and the versions of Python and NumPy).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .._text import plural
from ..checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from .history import json_default

#: File name of the checkpoint inside ``checkpoint_dir``.
CHECKPOINT_FILE = "checkpoint.ckpt"
#: Entries of ``History.config`` that may differ between a checkpoint and the run resuming it.
RESUMABLE_CHANGES = ("epochs", "test_every", "python", "numpy")
#: The entries of a checkpoint of a train() run.
_KEYS = {"run", "step", "params", "optimizer_state", "sampler", "epochs", "steps", "seconds"}


def data_digest(*arrays) -> str:
    """SHA-256 of the arrays' dtypes, shapes and bytes: the same data, or not (``None`` entries skipped)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is not None:
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def run_identity(config: dict, shuffle: bool, train_data, test_data) -> dict:
    """What a checkpoint must match: the run's configuration, its shuffling and its data, JSON-normalised."""
    run = {**config, "shuffle": bool(shuffle), "data": {"train": data_digest(*train_data),
                                                        "test": data_digest(*test_data)}}
    return json.loads(json.dumps(run, default=json_default))


def _flat(d: dict, prefix: str = ""):
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def differences(saved: dict, now: dict) -> list[str]:
    """The entries of two (JSON-normalised) run identities that differ, RESUMABLE_CHANGES aside."""
    a, b = dict(_flat(saved)), dict(_flat(now))
    return [f"{key}: {a.get(key, '(absent)')!r} in the checkpoint, {b.get(key, '(absent)')!r} now"
            for key in sorted(set(a) | set(b)) if key.split(".")[0] not in RESUMABLE_CHANGES and a.get(key) != b.get(key)]


def save(path: Path, run: dict, trainer, sampler, history, seconds: float) -> None:
    """Write the checkpoint of a run in progress (atomically)."""
    write_checkpoint(path, {"run": run, "step": trainer.step, "params": trainer.model.params,
                            "optimizer_state": trainer.state, "sampler": sampler.state_dict(),
                            "epochs": history.epochs, "steps": history.steps, "seconds": seconds})


def _read(path: Path) -> dict:
    saved = read_checkpoint(path)
    if type(saved) is not dict or set(saved) != _KEYS:
        raise CheckpointError(f"{path}: not a checkpoint of dba_ref.training.train")
    return saved


def trained_epochs(path: Path) -> int:
    """How many epochs the run of the checkpoint at ``path`` has trained (its history less epoch 0)."""
    return len(_read(path)["epochs"]) - 1


def restore(path: Path, run: dict, trainer, sampler, history, epochs: int) -> float:
    """Load ``path`` into the trainer, sampler and history; return the seconds the run had taken.

    Raises :class:`~dba_ref.checkpoint.CheckpointError` for a checkpoint of
    another run, or one that has trained more than ``epochs``.
    """
    saved = _read(path)
    found = differences(saved["run"], run)
    if found:
        raise CheckpointError(f"{path} belongs to another run, refusing to resume it: " + "; ".join(found)
                              + ". Resume with the original settings, or use another checkpoint_dir")
    done = len(saved["epochs"]) - 1
    if done > epochs:
        raise CheckpointError(f"{path} has already trained {plural(done, 'epoch')}; ask for "
                              f"epochs >= {done} to resume it")
    trainer.model.set_params(saved["params"])
    trainer.state, trainer.step = saved["optimizer_state"], saved["step"]
    sampler.load_state_dict(saved["sampler"])
    history.epochs[:] = saved["epochs"]
    history.steps.clear()
    history.steps.update(saved["steps"])
    return saved["seconds"]

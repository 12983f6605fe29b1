"""What a training run did: its configuration, one row per evaluation, one entry per step; saved as JSON.

A run in progress is written as a log that only grows (:class:`HistoryLog`, JSON Lines): each evaluation
appends what happened since the one before, so saving after epoch n costs the same for every n. The
run's results file, the JSON of the whole :class:`History`, is written once, when the run ends.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..checkpoint import atomic_write


@dataclass
class History:
    """What a training run did.

    ``epochs`` has one dict per evaluation (epoch 0 = before training):
    ``epoch, step, train_loss, train_acc, test_loss, test_acc, seconds``; a run
    that evaluates its test set every few epochs only (``config["test_every"]``)
    has no ``test_loss``, ``test_acc`` in the rows of the other epochs.
    ``steps`` has one list per quantity, one entry per optimizer step:
    ``loss`` (mean over the batch) and ``batch_size`` (the samples in that
    step's batch), and what the optimizer asks to record
    (the ``diagnostics()`` of its state; all of them, or those the run names:
    ``train(diagnostics=...)``): DBA, per layer l, ``selected[l]``,
    ``full_metric[l]``, ``selected_metric[l]``, ``grad_norm[l]`` and
    ``update_norm[l]``; AdAdaGrad ``batch_test`` (the test statistic; the
    test passes when it is at most η²). A run whose optimizer chooses the
    batch size also records ``requested_batch_size``: the size asked for the
    next step, capped at the training-set size.
    """

    config: dict = field(default_factory=dict)
    epochs: list = field(default_factory=list)
    steps: dict = field(default_factory=lambda: {"loss": [], "batch_size": []})

    def append_step(self, record: dict) -> None:
        """Append one step's entries: a number to its list, a tuple (one number per layer) to the layers' lists."""
        for key, value in record.items():
            if isinstance(value, tuple):
                per_layer = self.steps.get(key)
                if per_layer is None:
                    per_layer = self.steps[key] = [[] for _ in value]
                for layer, v in enumerate(value):
                    per_layer[layer].append(v)
            else:
                self.steps.setdefault(key, []).append(value)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(config=d["config"], epochs=d["epochs"], steps=d["steps"])

    def save(self, path) -> Path:
        """Write JSON atomically (temporary file, fsync, rename): a crash never leaves half a file."""
        return atomic_write(path, json.dumps(self.to_dict(), indent=1, default=json_default, allow_nan=True).encode())

    @classmethod
    def load(cls, path) -> "History":
        """Read a results file (JSON), or the log of a run that did not finish (``.jsonl``, :class:`HistoryLog`)."""
        path = Path(path)
        if path.suffix == HistoryLog.SUFFIX:
            return HistoryLog.read(path)
        return cls.from_dict(json.loads(path.read_text()))

    @property
    def final(self) -> dict:
        """The last evaluation."""
        return self.epochs[-1]


class HistoryLog:
    """The history of a run in progress, appended to a JSON Lines file at every evaluation.

    The log of the results file ``path`` is ``path`` with the suffix ``.jsonl``
    (``results.json`` → ``results.jsonl``). Its first line holds the run's
    ``config`` and whatever the history holds already (a resumed run's past);
    every :meth:`append` then writes one line, ``{"epochs": [...], "steps":
    {...}}``, with only the rows and step entries added since the line before:
    what one evaluation writes does not grow with the epochs done. Each line is
    flushed to the operating system, so a process killed at any moment leaves
    every evaluation logged before it (a line cut short is ignored when read);
    it is not ``fsync``-ed (a wait for the disk of milliseconds, every epoch),
    so an operating-system crash or power cut may cost the last lines, those
    not yet written back to disk. (The checkpoint, which
    ``resume`` restores a run from, is written atomically and ``fsync``-ed; a
    resumed run rewrites the log from it.) :meth:`finish` writes the results
    file itself, ``History.save`` of the history up to the last logged
    evaluation (atomically, ``fsync``-ed), and removes the log.
    """

    SUFFIX = ".jsonl"

    def __init__(self, path, history: History):
        self.path = Path(path)
        if self.path.suffix == self.SUFFIX:
            raise ValueError(f"results_path {self.path} ends in {self.SUFFIX}, the suffix of the log written beside "
                             "it: give the results file another name, e.g. results.json")
        self.log = self.path.with_suffix(self.SUFFIX)
        self.history = history
        self._epochs = 0           # rows of history.epochs already written
        self._steps = {}           # entries of each history.steps list already written
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as fh:
            self._write(fh, {"config": history.config, **self._new()})

    def _new(self) -> dict:
        """The rows and step entries added since the last write, marked as written."""
        h = self.history
        epochs = h.epochs[self._epochs:]
        steps = {}
        for key, values in h.steps.items():
            n = len(values[0]) if _per_layer(values) else len(values)
            if key not in self._steps or n > self._steps[key]:          # a new key, or new entries
                steps[key] = _entries(values, self._steps.get(key, 0))
                self._steps[key] = n
        self._epochs = len(h.epochs)
        return {"epochs": epochs, "steps": steps}

    @staticmethod
    def _write(fh, record: dict) -> None:
        fh.write(json.dumps(record, default=json_default, allow_nan=True) + "\n")

    def append(self) -> None:
        """Write the evaluation rows and step entries added since the last write, as one line."""
        with open(self.log, "a") as fh:
            self._write(fh, self._new())

    def finish(self) -> Path:
        """Write the results file (the history up to the last logged evaluation) atomically; remove the log."""
        h = self.history
        steps = {key: _entries(values, 0, self._steps[key]) for key, values in h.steps.items() if key in self._steps}
        path = History(h.config, h.epochs[:self._epochs], steps).save(self.path)
        self.log.unlink(missing_ok=True)
        return path

    @staticmethod
    def read(log) -> History:
        """The :class:`History` a log holds: the run up to its last complete line."""
        lines = Path(log).read_text().split("\n")
        if len(lines) < 2:                             # not even the first line is complete
            raise ValueError(f"{log} is not a training log: its first line (the run's config) is incomplete")
        first = json.loads(lines[0])
        history = History(config=first["config"], epochs=[], steps={})
        for line in lines[:-1]:                        # the part after the last newline was cut short by a crash
            record = json.loads(line)
            history.epochs.extend(record["epochs"])
            for key, new in record["steps"].items():
                if _per_layer(new):
                    old = history.steps.setdefault(key, [[] for _ in new])
                    for layer, values in enumerate(new):
                        old[layer].extend(values)
                else:
                    history.steps.setdefault(key, []).extend(new)
        return history


def _per_layer(values: list) -> bool:
    """Whether a ``History.steps`` list holds one list per layer (DBA's records), not one entry per step."""
    return bool(values) and isinstance(values[0], list)


def _entries(values: list, start: int, stop: int | None = None) -> list:
    """Entries ``start:stop`` of a ``History.steps`` list (of each layer's list, if it is per layer)."""
    return [v[start:stop] for v in values] if _per_layer(values) else values[start:stop]


def json_default(obj):
    """JSON for NumPy scalars and arrays (and ``str`` of anything else)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)

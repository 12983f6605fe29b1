"""What a training run did: its configuration, one row per evaluation, one entry per step; saved as JSON."""
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
    ``epoch, step, train_loss, train_acc, test_loss, test_acc, seconds``.
    ``steps`` has one list per quantity, one entry per optimizer step:
    ``loss`` (mean over the batch) and ``batch_size`` (the samples in that
    step's batch), and what the optimizer asks to record
    (the ``diagnostics()`` of its state): DBA, per layer l, ``selected[l]``,
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
        return cls.from_dict(json.loads(Path(path).read_text()))

    @property
    def final(self) -> dict:
        """The last evaluation."""
        return self.epochs[-1]


def json_default(obj):
    """JSON for NumPy scalars and arrays (and ``str`` of anything else)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)

"""The training loop: mini-batches, evaluation every epoch, a history, a results file.

>>> from dba_ref import MLP, dba, sgd
>>> from dba_ref.data import load_dataset, make_split
>>> from dba_ref.training import train
>>> split = make_split(load_dataset("digits"), per_class=10, seed=0)
>>> model = MLP([64, 32, 10], seed=0)
>>> history = train(model, dba(sgd(0.1)), split.X_train, split.y_train, split.X_test, split.y_test,
...                 epochs=2, batch_size=50, progress=False)
>>> len(history.epochs)          # epoch 0 is the evaluation before training
3
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ._validation import check_positive
from .backprop import backprop, mean_grads
from .model import MLP
from .optimizers import DBAState, Optimizer, apply_updates


@dataclass
class History:
    """What a training run did.

    ``epochs`` has one dict per evaluation (epoch 0 = before training):
    ``epoch, step, train_loss, train_acc, test_loss, test_acc, seconds``.
    ``steps`` has one list per quantity, one entry per optimizer step:
    ``loss`` (mean over the batch) and ``batch_size``; DBA runs add, per layer
    l, ``selected[l]``, ``full_metric[l]``, ``selected_metric[l]``,
    ``grad_norm[l]`` and ``update_norm[l]``.
    """

    config: dict = field(default_factory=dict)
    epochs: list = field(default_factory=list)
    steps: dict = field(default_factory=lambda: {"loss": [], "batch_size": []})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(config=d["config"], epochs=d["epochs"], steps=d["steps"])

    def save(self, path) -> Path:
        """Write JSON atomically (temporary file, then rename): a crash never leaves half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, default=_json_default, allow_nan=True))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text()))

    @property
    def final(self) -> dict:
        """The last evaluation."""
        return self.epochs[-1]


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _record_dba(steps: dict, last) -> None:
    for key, values in (("selected", [s.size for s in last]), ("full_metric", [s.full_value for s in last]),
                        ("selected_metric", [s.value for s in last]), ("grad_norm", [s.grad_norm for s in last]),
                        ("update_norm", [s.update_norm for s in last])):
        per_layer = steps.setdefault(key, [[] for _ in last])
        for layer, v in enumerate(values):
            per_layer[layer].append(v)


def train(model: MLP, optimizer: Optimizer, X, y, X_test=None, y_test=None, *, epochs: int = 10,
          batch_size: int | None = 64, seed: int = 0, shuffle: bool = True, progress: bool = True,
          results_path=None, config: dict | None = None) -> History:
    """Train ``model`` in place with ``optimizer``; return the :class:`History`.

    Parameters
    ----------
    model : MLP
    optimizer : Optimizer
        A plain optimizer gets the batch-mean gradient; DBA gets the per-sample signals.
    X, y : training data ``(n, in)`` and int labels ``(n,)``.
    X_test, y_test : optional held-out data evaluated after every epoch.
    epochs : int >= 1
    batch_size : int >= 1, or None for the full batch. The last batch of an
        epoch may be smaller (DBA uses a batch below ``min_size`` whole).
    seed : int
        Seed of the shuffling; the same model seed, data and seed give the same numbers.
    progress : bool
        Show a tqdm progress bar over epochs.
    results_path : path, optional
        JSON file rewritten (atomically) after every epoch.
    config : dict, optional
        Extra entries stored in ``history.config``.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a dba_ref.MLP, got {type(model).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a dba_ref Optimizer (e.g. dba_ref.sgd(0.1)), got {type(optimizer).__name__}")
    X, y = model.check_batch(X, y)
    has_test = X_test is not None or y_test is not None
    if has_test:
        if X_test is None or y_test is None:
            raise ValueError("give both X_test and y_test, or neither")
        X_test, y_test = model.check_batch(X_test, y_test)
    epochs = check_positive(epochs, "epochs", integer=True)
    n = X.shape[0]
    batch_size = n if batch_size is None else min(check_positive(batch_size, "batch_size", integer=True), n)

    history = History(config={
        "model": {"sizes": model.sizes, "activation": model.activation, "seed": model.seed, "dtype": model.dtype.name},
        "optimizer": {"name": optimizer.name, **optimizer.hyperparams},
        "epochs": epochs, "batch_size": batch_size, "seed": seed, "n_train": n,
        "n_test": int(X_test.shape[0]) if has_test else 0,
        "python": platform.python_version(), "numpy": np.__version__, **(config or {}),
    })
    rng = np.random.default_rng(seed)
    state = optimizer.init(model.params)
    started = time.perf_counter()
    step = 0

    def evaluate(epoch: int) -> dict:
        row = {"epoch": epoch, "step": step}
        row["train_loss"], row["train_acc"] = model.evaluate(X, y)
        if has_test:
            row["test_loss"], row["test_acc"] = model.evaluate(X_test, y_test)
        row["seconds"] = time.perf_counter() - started
        history.epochs.append(row)
        if results_path is not None:
            history.save(results_path)
        return row

    from tqdm.auto import tqdm

    row = evaluate(0)
    bar = tqdm(range(1, epochs + 1), desc=optimizer.name, unit="epoch", disable=not progress, leave=True)
    for epoch in bar:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            signals = backprop(model, X[idx], y[idx])
            grads = signals if optimizer.takes_signals else mean_grads(signals)
            updates, state = optimizer.update(grads, state, model.params)
            model.set_params(apply_updates(model.params, updates))
            step += 1
            history.steps["loss"].append(float(signals.losses.mean()))
            history.steps["batch_size"].append(int(idx.size))
            if isinstance(state, DBAState):
                _record_dba(history.steps, state.last)
        row = evaluate(epoch)
        bar.set_postfix({k: f"{row[k]:.4f}" for k in ("train_loss", "test_acc") if k in row})
    bar.close()
    return history

"""The training loop: mini-batches, evaluation every epoch, a history, a results file.

Batches come from a :class:`BatchSampler`: every epoch is one seeded
permutation of the training set, cut into consecutive batches. The batch size
may change between steps; an optimizer that chooses it (AdAdaGrad, with
``Optimizer.requested_batch_size``) sets the size of the next batch after each
update, and the history records the size of every step.

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
from .optimizers import AdaptiveBatchState, DBAState, Optimizer, apply_updates


class BatchSampler:
    """Epochs of consecutive batches from a seeded permutation; the batch size may change between steps.

    Each call of :meth:`epoch` draws one permutation of ``range(n)`` from
    ``rng`` (or uses ``0..n-1`` when ``shuffle`` is false) and yields index
    arrays of ``batch_size`` consecutive entries, reading ``batch_size`` anew
    before every batch; the last batch of an epoch takes what is left and may
    be smaller. Setting :attr:`batch_size` between two batches is how the
    size adapts; it is capped at n (the whole training set).

    >>> import numpy as np
    >>> sampler = BatchSampler(10, 3, np.random.default_rng(0), shuffle=False)
    >>> sizes = []
    >>> for idx in sampler.epoch():
    ...     sizes.append(idx.size)
    ...     sampler.batch_size *= 2
    >>> sizes
    [3, 6, 1]
    """

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator, shuffle: bool = True):
        self.n = check_positive(n, "n", integer=True)
        self.rng = rng
        self.shuffle = bool(shuffle)
        self.batch_size = batch_size

    @property
    def batch_size(self) -> int:
        """Size of the next batch (1..n)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value) -> None:
        if isinstance(value, float) and np.isinf(value) and value > 0:
            value = self.n                       # "as large as possible"
        self._batch_size = min(check_positive(value, "batch_size", integer=True), self.n)

    def epoch(self):
        """Yield the index arrays of one epoch."""
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        start = 0
        while start < self.n:
            idx = order[start:start + self.batch_size]
            start += idx.size
            yield idx


@dataclass
class History:
    """What a training run did.

    ``epochs`` has one dict per evaluation (epoch 0 = before training):
    ``epoch, step, train_loss, train_acc, test_loss, test_acc, seconds``.
    ``steps`` has one list per quantity, one entry per optimizer step:
    ``loss`` (mean over the batch) and ``batch_size`` (the samples in that
    step's batch); DBA runs add, per layer l, ``selected[l]``,
    ``full_metric[l]``, ``selected_metric[l]``, ``grad_norm[l]`` and
    ``update_norm[l]``; adaptive-batch runs (AdAdaGrad) add
    ``requested_batch_size`` (the size the optimizer asked for the next step,
    capped at the training-set size) and ``batch_test`` (the test statistic;
    the test passes when it is at most η²).
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


def _record_adaptive(steps: dict, state: AdaptiveBatchState, requested: int) -> None:
    steps.setdefault("requested_batch_size", []).append(int(requested))
    steps.setdefault("batch_test", []).append(state.last.statistic)


def train(model: MLP, optimizer: Optimizer, X, y, X_test=None, y_test=None, *, epochs: int = 10,
          batch_size: int | None = 64, seed: int = 0, shuffle: bool = True, progress: bool = True,
          results_path=None, config: dict | None = None) -> History:
    """Train ``model`` in place with ``optimizer``; return the :class:`History`.

    Parameters
    ----------
    model : MLP
    optimizer : Optimizer
        A plain optimizer gets the batch-mean gradient; DBA and AdAdaGrad get the
        per-sample signals. An optimizer with ``requested_batch_size`` (AdAdaGrad)
        sets the size of every following batch.
    X, y : training data ``(n, in)`` and int labels ``(n,)``.
    X_test, y_test : optional held-out data evaluated after every epoch.
    epochs : int >= 1
    batch_size : int >= 1, or None for the full batch. The last batch of an
        epoch may be smaller (DBA uses a batch below ``min_size`` whole). For an
        adaptive-batch optimizer this is the *initial* batch size.
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

    adaptive = optimizer.requested_batch_size is not None

    history = History(config={
        "model": {"sizes": model.sizes, "activation": model.activation, "seed": model.seed, "dtype": model.dtype.name},
        "optimizer": {"name": optimizer.name, **optimizer.hyperparams},
        "epochs": epochs, "batch_size": batch_size, "adaptive_batch": adaptive, "seed": seed, "n_train": n,
        "n_test": int(X_test.shape[0]) if has_test else 0,
        "python": platform.python_version(), "numpy": np.__version__, **(config or {}),
    })
    sampler = BatchSampler(n, batch_size, np.random.default_rng(seed), shuffle)
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
        for idx in sampler.epoch():
            signals = backprop(model, X[idx], y[idx])
            grads = signals if optimizer.takes_signals else mean_grads(signals)
            updates, state = optimizer.update(grads, state, model.params)
            model.set_params(apply_updates(model.params, updates))
            step += 1
            history.steps["loss"].append(float(signals.losses.mean()))
            history.steps["batch_size"].append(int(idx.size))
            if isinstance(state, DBAState):
                _record_dba(history.steps, state.last)
            if adaptive:
                requested = optimizer.requested_batch_size(state)
                if requested is not None:
                    sampler.batch_size = requested
                if isinstance(state, AdaptiveBatchState):
                    _record_adaptive(history.steps, state, sampler.batch_size)
        row = evaluate(epoch)
        bar.set_postfix({k: f"{row[k]:.4f}" for k in ("train_loss", "test_acc") if k in row})
    bar.close()
    return history

"""The training loop: mini-batches, evaluation every epoch, a history, a results file, checkpoints.

Batches come from a :class:`BatchSampler`: every epoch is one seeded
permutation of the training set, cut into consecutive batches. The batch size
may change between steps; an optimizer that chooses it (AdAdaGrad, with
``Optimizer.requested_batch_size``) sets the size of the next batch after each
update, and the history records the size of every step. One step is
:meth:`Trainer.fit_batch`, shared by :func:`train` and by
:class:`dba_ref.estimator.DBAClassifier`.

**Checkpoints.** With ``checkpoint_dir``, :func:`train` writes
``checkpoint_dir/checkpoint.ckpt`` after every ``checkpoint_every`` steps and
after every epoch's evaluation: the parameters, the optimizer's state, the
sampler (its generator's state, the epoch's permutation, the position in it,
the batch size), the step count and the history, exactly and atomically
(:mod:`dba_ref.checkpoint`). ``resume=True`` continues from it: a run killed
at any moment and resumed ends with the same weights, bit for bit, and the
same history (but for the ``seconds`` column) as a run never interrupted, with
the same software on the same machine. A checkpoint of another run (another
model, optimizer, hyper-parameter, batch size, seed, shuffling or data) is
refused, naming what differs; ``epochs`` may differ, so a finished run can be
extended.

**Divergence.** A step whose loss or new parameters hold NaN or inf raises
:class:`TrainingDiverged` (a ``ValueError``) naming the step and the layer;
the model keeps the parameters of the step before, and the checkpoint on disk
is the last good one.

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

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ._validation import check_positive
from .backprop import backprop, mean_grads
from .checkpoint import CheckpointError, atomic_write, read_checkpoint, write_checkpoint
from .model import MLP
from .optimizers import AdaptiveBatchState, DBAState, Optimizer, apply_updates

#: File name of the checkpoint inside ``checkpoint_dir``.
CHECKPOINT_FILE = "checkpoint.ckpt"
#: Entries of ``History.config`` that may differ between a checkpoint and the run resuming it.
RESUMABLE_CHANGES = ("epochs", "python", "numpy")


class TrainingDiverged(ValueError, FloatingPointError):
    """A step produced NaN or inf. ``step`` (1-based, counted over the whole run) and ``layer``
    (1..L, spec §2) say where; the model keeps the parameters it had before that step."""

    def __init__(self, step: int, layer: int, reason: str):
        self.step, self.layer = step, layer
        super().__init__(f"training diverged at step {step}: {reason}; the model keeps its parameters from before "
                         f"step {step} (lower the learning rate?)")


class BatchSampler:
    """Epochs of consecutive batches from a seeded permutation; the batch size may change between steps.

    Each epoch draws one permutation of ``range(n)`` from ``rng`` (or uses
    ``0..n-1`` when ``shuffle`` is false) and :meth:`epoch` yields index
    arrays of ``batch_size`` consecutive entries, reading ``batch_size`` anew
    before every batch; the last batch of an epoch takes what is left and may
    be smaller. Setting :attr:`batch_size` between two batches is how the
    size adapts; it is capped at n (the whole training set). The epoch in
    progress (its permutation and :attr:`position`) is part of the sampler:
    :meth:`epoch` called again after a pause continues it, and
    :meth:`state_dict` / :meth:`load_state_dict` save and restore it all.

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
        self._order: np.ndarray | None = None      # the permutation of the epoch in progress, None between epochs
        self.position = 0                          # samples of that epoch already handed out

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
        """Yield the index arrays of one epoch (or of the rest of the epoch in progress)."""
        if self._order is None:
            self._order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
            self.position = 0
        while self.position < self.n:
            idx = self._order[self.position:self.position + self.batch_size]
            self.position += idx.size
            yield idx
        self._order, self.position = None, 0

    def state_dict(self) -> dict:
        """Everything that decides the batches still to come: generator state, permutation, position, size."""
        return {"rng": self.rng.bit_generator.state, "order": self._order, "position": self.position,
                "batch_size": self._batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (of a sampler over the same ``n``)."""
        order = state["order"]
        if order is not None and (np.shape(order) != (self.n,) or not 0 <= state["position"] <= self.n):
            raise ValueError(f"sampler state is for another data set size (order of shape {np.shape(order)}, "
                             f"position {state['position']}; this sampler draws from n={self.n})")
        self.rng.bit_generator.state = state["rng"]
        self._order, self.position = order, int(state["position"])
        self.batch_size = state["batch_size"]


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
        """Write JSON atomically (temporary file, fsync, rename): a crash never leaves half a file."""
        return atomic_write(path, json.dumps(self.to_dict(), indent=1, default=_json_default, allow_nan=True).encode())

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


def _first_nonfinite(arrays) -> int | None:
    """Position (from 1) of the first array holding NaN or inf, or None."""
    return next((i for i, a in enumerate(arrays, start=1) if not np.all(np.isfinite(a))), None)


def _nonfinite_layer(params) -> int | None:
    """The first layer (from 1) whose ``W`` or ``b`` holds NaN or inf, or None."""
    return next((l for l, (W, b) in enumerate(params, start=1)
                 if not (np.isfinite(W).all() and np.isfinite(b).all())), None)


class Trainer:
    """A model, an optimizer and the optimizer's state: the per-step code of every training loop here.

    :func:`train` and :class:`dba_ref.estimator.DBAClassifier` both drive one.
    :meth:`fit_batch` is one step; :meth:`run_epoch` is one pass of a
    :class:`BatchSampler`, letting an adaptive-batch optimizer resize the
    batches. ``steps`` receives the per-step records of :class:`History`.
    """

    def __init__(self, model: MLP, optimizer: Optimizer, state=None, step: int = 0, steps: dict | None = None):
        if not isinstance(model, MLP):
            raise TypeError(f"model must be a dba_ref.MLP, got {type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a dba_ref Optimizer (e.g. dba_ref.sgd(0.1)), "
                            f"got {type(optimizer).__name__}")
        layer = _nonfinite_layer(model.params)
        if layer is not None:
            raise ValueError(f"the model's layer {layer} has NaN or inf parameters; train a model with finite "
                             "weights (set them with model.set_params, which checks them)")
        self.model, self.optimizer = model, optimizer
        self.state = optimizer.init(model.params) if state is None else state
        self.step = step
        self.steps = {"loss": [], "batch_size": []} if steps is None else steps

    @property
    def adaptive(self) -> bool:
        """Whether the optimizer chooses the size of the next batch."""
        return self.optimizer.requested_batch_size is not None

    def fit_batch(self, X, y) -> float:
        """One optimizer step on the batch ``(X, y)``; returns its mean loss.

        Raises :class:`TrainingDiverged`, with model and state unchanged, when
        the loss or the new parameters hold NaN or inf.
        """
        signals = backprop(self.model, X, y)
        step = self.step + 1
        if not np.all(np.isfinite(signals.losses)):
            raise self._diverged_loss(step, X)
        grads = signals if self.optimizer.takes_signals else mean_grads(signals)
        updates, state = self.optimizer.update(grads, self.state, self.model.params)
        params = apply_updates(self.model.params, updates)
        layer = _nonfinite_layer(params)
        if layer is not None:
            raise TrainingDiverged(step, layer, f"the update gives layer {layer} parameters that are NaN or inf")
        self.model.set_params(params)
        self.state, self.step = state, step
        loss = float(signals.losses.mean())
        self.steps["loss"].append(loss)
        self.steps["batch_size"].append(int(signals.batch_size))
        if isinstance(state, DBAState):
            self._record_dba(state.last)
        return loss

    def _diverged_loss(self, step: int, X) -> TrainingDiverged:
        """The error for a non-finite loss, naming the first layer whose pre-activations Z_l overflow."""
        pre, _ = self.model.forward_all(self.model.check_batch(X))
        layer = _first_nonfinite(pre)
        if layer is None:
            return TrainingDiverged(step, self.model.n_layers, f"the loss is NaN or inf: the logits of layer "
                                    f"{self.model.n_layers} spread beyond the floating-point range")
        return TrainingDiverged(step, layer, f"the loss is NaN or inf: the pre-activations of layer {layer} overflow")

    def run_epoch(self, X, y, sampler: BatchSampler, after_step=None) -> None:
        """Step through (the rest of) one epoch of ``sampler`` over ``(X, y)``; ``after_step()`` after each step."""
        for idx in sampler.epoch():
            self.fit_batch(X[idx], y[idx])
            if self.adaptive:
                requested = self.optimizer.requested_batch_size(self.state)
                if requested is not None:
                    sampler.batch_size = requested
                if isinstance(self.state, AdaptiveBatchState):
                    self.steps.setdefault("requested_batch_size", []).append(int(sampler.batch_size))
                    self.steps.setdefault("batch_test", []).append(float(self.state.last.statistic))
            if after_step is not None:
                after_step()

    def sampler(self, n: int, batch_size: int, rng: np.random.Generator, shuffle: bool = True) -> BatchSampler:
        """A sampler over n samples whose first batch has the size the optimizer asks for, if it asks."""
        sampler = BatchSampler(n, batch_size, rng, shuffle)
        requested = self.optimizer.requested_batch_size(self.state) if self.adaptive else None
        if requested is not None:
            sampler.batch_size = requested
        return sampler

    def _record_dba(self, last) -> None:
        for key, values in (("selected", [int(s.size) for s in last]),
                            ("full_metric", [float(s.full_value) for s in last]),
                            ("selected_metric", [float(s.value) for s in last]),
                            ("grad_norm", [float(s.grad_norm) for s in last]),
                            ("update_norm", [float(s.update_norm) for s in last])):
            per_layer = self.steps.setdefault(key, [[] for _ in last])
            for layer, v in enumerate(values):
                per_layer[layer].append(v)


# --------------------------------------------------------------------------
# Checkpoints of a train() run
# --------------------------------------------------------------------------
def _data_digest(*arrays) -> str:
    """SHA-256 of the arrays' dtypes, shapes and bytes: the same data, or not."""
    h = hashlib.sha256()
    for a in arrays:
        if a is not None:
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _flat(d: dict, prefix: str = ""):
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _differences(saved: dict, now: dict) -> list[str]:
    """The entries of two (JSON-normalised) configs that differ, RESUMABLE_CHANGES aside."""
    a, b = dict(_flat(saved)), dict(_flat(now))
    return [f"{key}: {a.get(key, '(absent)')!r} in the checkpoint, {b.get(key, '(absent)')!r} now"
            for key in sorted(set(a) | set(b)) if key.split(".")[0] not in RESUMABLE_CHANGES and a.get(key) != b.get(key)]


def _restore(path: Path, trainer: Trainer, sampler: BatchSampler, history: History, run_id: dict,
             epochs: int) -> float:
    """Load ``path`` into the trainer, sampler and history; return the seconds the run had taken."""
    saved = read_checkpoint(path)
    keys = {"run", "step", "params", "optimizer_state", "sampler", "epochs", "steps", "seconds"}
    if type(saved) is not dict or set(saved) != keys:
        raise CheckpointError(f"{path}: not a checkpoint of dba_ref.training.train")
    differences = _differences(saved["run"], run_id)
    if differences:
        raise CheckpointError(f"{path} belongs to another run, refusing to resume it: " + "; ".join(differences)
                              + ". Resume with the original settings, or use another checkpoint_dir")
    done = len(saved["epochs"]) - 1
    if done > epochs:
        raise CheckpointError(f"{path} has already trained {done} epochs; ask for epochs >= {done} to resume it")
    trainer.model.set_params(saved["params"])
    trainer.state, trainer.step = saved["optimizer_state"], saved["step"]
    sampler.load_state_dict(saved["sampler"])
    history.epochs[:] = saved["epochs"]
    history.steps.clear()
    history.steps.update(saved["steps"])
    return saved["seconds"]


def train(model: MLP, optimizer: Optimizer, X, y, X_test=None, y_test=None, *, epochs: int = 10,
          batch_size: int | None = 64, seed: int = 0, shuffle: bool = True, progress: bool = True,
          results_path=None, config: dict | None = None, checkpoint_dir=None, checkpoint_every: int | None = None,
          resume: bool = False) -> History:
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
        Epochs in all, counting those a resumed checkpoint has done.
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
    checkpoint_dir : path, optional
        Folder of the checkpoint ``checkpoint.ckpt``, written after every epoch
        (and every ``checkpoint_every`` steps). It must not hold one already
        unless ``resume`` is true.
    checkpoint_every : int >= 1, optional
        Also write the checkpoint after every this many steps.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` if there is one
        (start afresh if there is none). The checkpoint must come from the
        same settings and data; only ``epochs`` may differ.

    Raises
    ------
    TrainingDiverged
        (a ValueError) when the loss or the parameters become NaN or inf.
    dba_ref.checkpoint.CheckpointError
        (a ValueError) for a corrupt checkpoint or one of another run.
    """
    trainer = Trainer(model, optimizer)
    X, y = model.check_batch(X, y)
    has_test = X_test is not None or y_test is not None
    if has_test:
        if X_test is None or y_test is None:
            raise ValueError("give both X_test and y_test, or neither")
        X_test, y_test = model.check_batch(X_test, y_test)
    epochs = check_positive(epochs, "epochs", integer=True)
    n = X.shape[0]
    batch_size = n if batch_size is None else min(check_positive(batch_size, "batch_size", integer=True), n)
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_FILE
    if checkpoint is None and (resume or checkpoint_every is not None):
        raise ValueError("resume and checkpoint_every need checkpoint_dir (the folder of the checkpoint)")
    if checkpoint_every is not None:
        checkpoint_every = check_positive(checkpoint_every, "checkpoint_every", integer=True)
    if checkpoint is not None and not resume and checkpoint.exists():
        raise ValueError(f"{checkpoint} exists: pass resume=True (CLI: --resume) to continue that run, "
                         "or choose another checkpoint_dir")

    history = History(config={
        "model": {"sizes": model.sizes, "activation": model.activation, "seed": model.seed, "dtype": model.dtype.name},
        "optimizer": {"name": optimizer.name, **optimizer.hyperparams},
        "epochs": epochs, "batch_size": batch_size, "adaptive_batch": trainer.adaptive, "seed": seed,
        "n_train": n, "n_test": int(X_test.shape[0]) if has_test else 0,
        "python": platform.python_version(), "numpy": np.__version__, **(config or {}),
    }, steps=trainer.steps)
    sampler = trainer.sampler(n, batch_size, np.random.default_rng(seed), shuffle)
    earlier_seconds = 0.0
    if checkpoint is not None:
        run_id = json.loads(json.dumps({**history.config, "shuffle": bool(shuffle),
                                        "data": {"train": _data_digest(X, y), "test": _data_digest(X_test, y_test)}},
                                       default=_json_default))
        if resume and checkpoint.exists():
            earlier_seconds = _restore(checkpoint, trainer, sampler, history, run_id, epochs)
    started = time.perf_counter()

    def seconds() -> float:
        return earlier_seconds + time.perf_counter() - started

    def save_checkpoint() -> None:
        write_checkpoint(checkpoint, {"run": run_id, "step": trainer.step, "params": model.params,
                                      "optimizer_state": trainer.state, "sampler": sampler.state_dict(),
                                      "epochs": history.epochs, "steps": history.steps, "seconds": seconds()})

    def every_n_steps() -> None:
        if trainer.step % checkpoint_every == 0:
            save_checkpoint()

    def evaluate(epoch: int) -> dict:
        row = {"epoch": epoch, "step": trainer.step}
        row["train_loss"], row["train_acc"] = model.evaluate(X, y)
        if has_test:
            row["test_loss"], row["test_acc"] = model.evaluate(X_test, y_test)
        row["seconds"] = seconds()
        history.epochs.append(row)
        if results_path is not None:
            history.save(results_path)
        if checkpoint is not None:
            save_checkpoint()
        return row

    from tqdm.auto import tqdm

    if not history.epochs:
        evaluate(0)
    first = len(history.epochs)
    bar = tqdm(range(first, epochs + 1), desc=optimizer.name, unit="epoch", disable=not progress, leave=True,
               initial=first - 1, total=epochs)
    for epoch in bar:
        trainer.run_epoch(X, y, sampler, every_n_steps if checkpoint_every else None)
        row = evaluate(epoch)
        bar.set_postfix({k: f"{row[k]:.4f}" for k in ("train_loss", "test_acc") if k in row})
    bar.close()
    return history

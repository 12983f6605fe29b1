"""The training loop: one step (:class:`Trainer`), and whole runs with evaluation and checkpoints (:func:`train`)."""
from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from .._progress import Progress
from .._validation import check_names, check_positive
from ..backends import get_backend
from ..model import MLP
from ..optimizers import DIAGNOSTIC_NAMES, Optimizer, apply_updates
from . import resume as checkpoints
from .history import History, HistoryLog
from .sampler import BatchSampler


class TrainingDiverged(ValueError, FloatingPointError):
    """A step produced NaN or inf. ``step`` (1-based, counted over the whole run) and ``layer``
    (1..L, spec §2) say where; the model keeps the parameters it had before that step."""

    def __init__(self, step: int, layer: int, reason: str):
        self.step, self.layer = step, layer
        super().__init__(f"training diverged at step {step}: {reason}; the model keeps its parameters from before "
                         f"step {step} (lower the learning rate?)")


def _first_nonfinite(arrays) -> int | None:
    """Position (from 1) of the first array holding NaN or inf, or None."""
    return next((i for i, a in enumerate(arrays, start=1) if not np.all(np.isfinite(a))), None)


def _nonfinite_layer(params) -> int | None:
    """The first layer (from 1) whose ``W`` or ``b`` holds NaN or inf, or None."""
    return next((l for l, (W, b) in enumerate(params, start=1)
                 if not (np.isfinite(W).all() and np.isfinite(b).all())), None)


class Trainer:
    """A model, an optimizer and the optimizer's state: the one step loop of this package.

    :func:`train`, :class:`dba_ref.estimator.DBAClassifier` and the
    benchmarks drive one. :meth:`fit_batch` is one step; :meth:`run_epoch` is
    one pass of a :class:`BatchSampler`, letting an optimizer that chooses the
    batch size resize the batches. ``history.steps`` receives what every step
    records (see :class:`~dba_ref.training.History`). ``state`` and ``step``
    continue an earlier run (the optimizer's state and the steps taken).
    ``backend`` computes the forward and backward passes, and with them DBA's
    Gram matrices, searches and means (:mod:`dba_ref.backends`); with
    ``"cuda"`` a batch's signals stay on the device. ``diagnostics``: which of
    the optimizer's per-step quantities ``history.steps`` records, names of
    :data:`~dba_ref.optimizers.DIAGNOSTIC_NAMES` (None: all its state offers;
    a name the optimizer does not offer is not recorded); what is not recorded
    is not computed.
    """

    def __init__(self, model: MLP, optimizer: Optimizer, history: History | None = None, state=None, step: int = 0,
                 backend: str = "numpy", diagnostics=None):
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
        self.diagnostics = None if diagnostics is None else check_names(diagnostics, DIAGNOSTIC_NAMES, "diagnostics")
        self.backend = get_backend(backend)
        self.state = optimizer.init(model.params) if state is None else state
        self.step = step
        self.history = History() if history is None else history

    @property
    def adaptive(self) -> bool:
        """Whether the optimizer chooses the size of the next batch (its state has a ``next_batch_size``)."""
        return hasattr(self.state, "next_batch_size")

    def fit_batch(self, X, y) -> float:
        """One optimizer step on a validated batch ``(X, y)``; returns its mean loss.

        Every optimizer is called alike: ``update(None, state, params, signals=signals)``
        (see :class:`~dba_ref.optimizers.Optimizer`). Raises :class:`TrainingDiverged`,
        with model and state unchanged, when the loss or the new parameters hold NaN or inf.
        """
        signals = self.backend.signals(self.model, X, y)
        step = self.step + 1
        if not np.all(np.isfinite(signals.losses)):
            raise self._diverged_loss(step, X)
        updates, state = self.optimizer.update(None, self.state, self.model.params, signals=signals)
        params = apply_updates(self.model.params, updates)
        layer = _nonfinite_layer(params)
        if layer is not None:
            raise TrainingDiverged(step, layer, f"the update gives layer {layer} parameters that are NaN or inf")
        self.model.assign_params(params)
        self.state, self.step = state, step
        loss = float(signals.losses.mean())
        record = {"loss": loss, "batch_size": int(signals.batch_size)}
        if hasattr(state, "diagnostics"):
            record.update(state.diagnostics(self.diagnostics))
        self.history.append_step(record)
        return loss

    def _diverged_loss(self, step: int, X) -> TrainingDiverged:
        """The error for a non-finite loss, naming the first layer whose pre-activations Z_l overflow."""
        pre, _ = self.model.forward_all(X)
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
                requested = self.state.next_batch_size
                if requested is not None:
                    sampler.batch_size = requested
                self.history.append_step({"requested_batch_size": int(sampler.batch_size)})
            if after_step is not None:
                after_step()

    def sampler(self, n: int, batch_size: int, rng: np.random.Generator, shuffle: bool = True) -> BatchSampler:
        """A sampler over n samples whose first batch has the size the optimizer asks for, if it asks."""
        sampler = BatchSampler(n, batch_size, rng, shuffle)
        requested = self.state.next_batch_size if self.adaptive else None
        if requested is not None:
            sampler.batch_size = requested
        return sampler


def train(model: MLP, optimizer: Optimizer, X, y, X_test=None, y_test=None, *, epochs: int = 10,
          batch_size: int | None = 64, seed: int = 0, shuffle: bool = True, progress: bool = True,
          results_path=None, config: dict | None = None, checkpoint_dir=None, checkpoint_every: int | None = None,
          resume: bool = False, backend: str = "numpy", test_every: int = 1, diagnostics=None) -> History:
    """Train ``model`` in place with ``optimizer``; return the :class:`~dba_ref.training.History`.

    Parameters
    ----------
    model : MLP
    optimizer : Optimizer
        A plain optimizer gets the batch-mean gradient; DBA and AdAdaGrad also read
        the per-sample signals. An optimizer whose state has a ``next_batch_size``
        (AdAdaGrad) sets the size of every following batch.
    X, y : training data ``(n, in)`` and int labels ``(n,)``.
    X_test, y_test : optional held-out data, evaluated before training, every ``test_every``
        epochs and after the last.
    epochs : int >= 1
        Epochs in all, counting those a resumed checkpoint has done.
    batch_size : int >= 1 or None
        None for the full batch. The last batch of an epoch may be smaller
        (DBA uses a batch below ``min_size`` whole). For an adaptive-batch
        optimizer this is the *initial* batch size.
    seed : int
        Seed of the shuffling; the same model seed, data and seed give the same numbers.
    progress : bool
        Report the epochs: a progress bar on a terminal, one line per epoch where stderr is a file.
    results_path : path, optional
        JSON file of the history (:meth:`History.save`), written (atomically) when
        the run ends, normally or by an exception. While it runs, every evaluation
        appends to its log, ``results_path`` with the suffix ``.jsonl``
        (:class:`~dba_ref.training.history.HistoryLog`; removed once the JSON is
        written), so saving costs the same after every epoch; a process killed
        leaves the log of every evaluation done (``History.load`` reads it).
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
    backend : {"numpy", "numba", "cuda"}
        Who computes: the forward and backward passes and, for DBA, the Gram
        matrices, the searches and the means (:class:`Trainer`).
    test_every : int >= 1
        Evaluate ``(X_test, y_test)`` every this many epochs (and always before
        training and after the last epoch); the rows of the other epochs have no
        ``test_loss``, ``test_acc``. The training set is evaluated every epoch.
        Recorded as ``history.config["test_every"]``.
    diagnostics : list of str, optional
        Which of the optimizer's per-step quantities ``history.steps`` records
        (names of :data:`~dba_ref.optimizers.DIAGNOSTIC_NAMES`); None: all it
        offers. What is not recorded is not computed: DBA's ``grad_norm`` and
        ``update_norm`` take a pass over every gradient and update per step.

    Raises
    ------
    TrainingDiverged
        (a ValueError) when the loss or the parameters become NaN or inf.
    dba_ref.checkpoint.CheckpointError
        (a ValueError) for a corrupt checkpoint or one of another run.
    """
    trainer = Trainer(model, optimizer, backend=backend, diagnostics=diagnostics)
    X, y = model.check_batch(X, y)
    has_test = X_test is not None or y_test is not None
    if has_test:
        if X_test is None or y_test is None:
            raise ValueError("give both X_test and y_test, or neither")
        X_test, y_test = model.check_batch(X_test, y_test)
    epochs = check_positive(epochs, "epochs", integer=True)
    test_every = check_positive(test_every, "test_every", integer=True)
    n = X.shape[0]
    batch_size = n if batch_size is None else min(check_positive(batch_size, "batch_size", integer=True), n)
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / checkpoints.CHECKPOINT_FILE
    if checkpoint is None and (resume or checkpoint_every is not None):
        raise ValueError("resume and checkpoint_every need checkpoint_dir (the folder of the checkpoint)")
    if checkpoint_every is not None:
        checkpoint_every = check_positive(checkpoint_every, "checkpoint_every", integer=True)
    if checkpoint is not None and not resume and checkpoint.exists():
        raise ValueError(f"{checkpoint} exists: pass resume=True (CLI: --resume) to continue that run, "
                         "or choose another checkpoint_dir")

    history = trainer.history
    history.config = {
        "model": {"sizes": model.sizes, "activation": model.activation, "seed": model.seed, "dtype": model.dtype.name},
        "optimizer": {"name": optimizer.name, **optimizer.hyperparams},
        "epochs": epochs, "batch_size": batch_size, "adaptive_batch": trainer.adaptive, "seed": seed,
        "backend": trainer.backend.name, "test_every": test_every,
        "n_train": n, "n_test": int(X_test.shape[0]) if has_test else 0,
        "python": platform.python_version(), "numpy": np.__version__, **(config or {}),
    }
    sampler = trainer.sampler(n, batch_size, np.random.default_rng(seed), shuffle)
    earlier_seconds = 0.0
    if checkpoint is not None:
        run = checkpoints.run_identity(history.config, shuffle, (X, y), (X_test, y_test))
        if resume and checkpoint.exists():
            earlier_seconds = checkpoints.restore(checkpoint, run, trainer, sampler, history, epochs)
    started = time.perf_counter()

    def seconds() -> float:
        return earlier_seconds + time.perf_counter() - started

    def save_checkpoint() -> None:
        checkpoints.save(checkpoint, run, trainer, sampler, history, seconds())

    def every_n_steps() -> None:
        if trainer.step % checkpoint_every == 0:
            save_checkpoint()

    # A resumed run that has trained every epoch trains nothing and rewrites no results file that exists.
    complete = len(history.epochs) > epochs and results_path is not None and Path(results_path).exists()
    log = None if results_path is None or complete else HistoryLog(results_path, history)

    def evaluate(epoch: int) -> dict:
        row = {"epoch": epoch, "step": trainer.step}
        row["train_loss"], row["train_acc"] = model.evaluate(X, y, check_input=False)
        if has_test and (epoch % test_every == 0 or epoch == epochs):
            row["test_loss"], row["test_acc"] = model.evaluate(X_test, y_test, check_input=False)
        row["seconds"] = seconds()
        history.epochs.append(row)
        if log is not None:
            log.append()
        if checkpoint is not None:
            save_checkpoint()
        return row

    bar = None
    try:
        if not history.epochs:
            evaluate(0)
        first = len(history.epochs)
        bar = Progress(epochs, desc=optimizer.name, unit="epoch", initial=first - 1, enabled=progress)
        for epoch in range(first, epochs + 1):
            trainer.run_epoch(X, y, sampler, every_n_steps if checkpoint_every else None)
            row = evaluate(epoch)
            bar.update(1, **{k: f"{row[k]:.4f}" for k in ("train_loss", "test_acc") if k in row})
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.finish()
    return history

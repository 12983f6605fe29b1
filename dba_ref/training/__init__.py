"""Training: mini-batches, evaluation every epoch (the test set every ``test_every``), a history, a results file, checkpoints.

- :mod:`~dba_ref.training.sampler`  :class:`BatchSampler`, epochs of seeded batches whose size may change
- :mod:`~dba_ref.training.loop`     :class:`Trainer` (one step: the one step loop of the package) and :func:`train`
- :mod:`~dba_ref.training.history`  :class:`History`, what a run did, saved as JSON
- :mod:`~dba_ref.training.resume`   what identifies a run, and restoring one from its checkpoint

Batches come from a :class:`BatchSampler`: every epoch is one seeded
permutation of the training set, cut into consecutive batches. The batch size
may change between steps; an optimizer that chooses it (AdAdaGrad, with
its state's ``next_batch_size``) sets the size of the next batch after each
update, and the history records the size of every step.

**Checkpoints.** With ``checkpoint_dir``, :func:`train` writes
``checkpoint_dir/checkpoint.ckpt`` after every ``checkpoint_every`` steps and
after every epoch's evaluation: the parameters, the optimizer's state, the
sampler (its generator's state, the epoch's permutation, the position in it,
the batch size), the step count and the history, exactly and atomically
(:mod:`dba_ref.checkpoint`). ``resume=True`` continues from it: a run killed
at any moment and resumed ends with the same weights, bit for bit, and the
same history (but for the ``seconds`` column) as a run never interrupted, with
the same software on the same machine. A checkpoint of another run is
refused, naming what differs (:mod:`~dba_ref.training.resume`).

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
from .history import History
from .loop import Trainer, TrainingDiverged, train
from .resume import CHECKPOINT_FILE, RESUMABLE_CHANGES
from .sampler import BatchSampler

__all__ = ["train", "Trainer", "TrainingDiverged", "History", "BatchSampler", "CHECKPOINT_FILE",
           "RESUMABLE_CHANGES"]

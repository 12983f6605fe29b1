"""DBA as an optimizer: the update of :mod:`dba_ref.update` in front of any base optimizer (spec §6).

Every step, each layer's direction is the mean gradient over the samples its
search keeps (:func:`dba_ref.update.dba_gradients`); the list of those means
goes to the base optimizer (SGD, Adam, ...), whose state is kept as usual.
``strategy="all"`` keeps every sample and reproduces the base optimizer bit
for bit. DBA reads the batch's per-sample :class:`~dba_ref.backprop.Signals`,
an extra argument of its ``update`` (as optax passes extra arguments), and
computes with the backend that made them (``signals.backend``, chosen where the
signals are computed: ``train(backend=)``, ``dba_step(backend=)``).

Example
-------
>>> import numpy as np
>>> from dba_ref import MLP, backprop, dba, sgd, apply_updates
>>> model = MLP([4, 8, 3], seed=0)
>>> opt = dba(sgd(0.1))
>>> state = opt.init(model.params)
>>> signals = backprop(model, np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 3)
>>> updates, state = opt.update(None, state, model.params, signals=signals)
>>> [step.size for step in state.last]   # random labels share no direction: down to min_size
[2, 2]
"""
from __future__ import annotations

from typing import Any, NamedTuple

from .._validation import check_choice, check_min_size, check_tol
from ..backends import backend_of
from ..metrics import METRICS
from ..search import DBA_DEFAULTS, STRATEGIES, Selection
from .base import Optimizer, check_base
from .tree import tree_norm


class LayerStep(NamedTuple):
    """What DBA did to one layer in one step: its ``selection``, the mean gradient over it
    ``grad = (gW, gb)`` and the base optimizer's ``update = (uW, ub)`` for the layer."""

    selection: Selection
    grad: tuple
    update: tuple

    @property
    def size(self) -> int:
        """Number of samples kept."""
        return self.selection.size

    @property
    def full_value(self) -> float:
        """Metric of the whole batch."""
        return self.selection.trace.full_value

    @property
    def value(self) -> float:
        """Metric of the selected subset."""
        return self.selection.value

    @property
    def grad_norm(self) -> float:
        """``‖ḡ_l‖``, the norm of the mean gradient over the selection."""
        return tree_norm(self.grad)

    @property
    def update_norm(self) -> float:
        """The norm of the layer's update."""
        return tree_norm(self.update)


class DBAState(NamedTuple):
    """``base``: the base optimizer's state; ``last``: one :class:`LayerStep` per layer from the last update."""

    base: Any
    last: tuple = ()

    #: What a checkpoint leaves out (:mod:`dba_ref.checkpoint`): the record of the last step, which no update reads.
    RECORD_FIELDS = ("last",)

    def diagnostics(self, names=None) -> dict:
        """What the training loop records of the last step, a tuple per quantity with one entry per layer:
        :data:`DIAGNOSTICS`, or only those in ``names`` (None: all). The norms take a pass over every
        gradient and update: a run that does not record them does not ask for them."""
        return {name: tuple(read(step) for step in self.last)
                for name, read in DIAGNOSTICS.items() if names is None or name in names}


#: What :meth:`DBAState.diagnostics` records of each layer's :class:`LayerStep`: samples kept, the metric of the
#: whole batch and of the selection, ``‖ḡ_l‖`` and the norm of the layer's update.
DIAGNOSTICS = {"selected": lambda step: step.size,
               "full_metric": lambda step: float(step.full_value),
               "selected_metric": lambda step: float(step.value),
               "grad_norm": lambda step: step.grad_norm,
               "update_norm": lambda step: step.update_norm}


def dba(base: Optimizer, metric: str = DBA_DEFAULTS["metric"], strategy: str = DBA_DEFAULTS["strategy"],
        min_size=DBA_DEFAULTS["min_size"], tol: float = DBA_DEFAULTS["tol"]) -> Optimizer:
    """Wrap ``base`` so that each layer is updated with the mean over its selected samples.

    Parameters are those of :func:`dba_ref.select`, checked here, once. The
    returned optimizer's ``update(None, state, params, signals=signals)`` takes
    the batch's :class:`~dba_ref.backprop.Signals` (its ``grads`` must be None:
    DBA computes each layer's own); its state is a :class:`DBAState`.
    """
    check_base(base, "dba")
    check_choice(metric, METRICS, "metric")
    check_choice(strategy, STRATEGIES, "strategy")
    tol = check_tol(tol)
    min_size = check_min_size(min_size)

    def init(params):
        return DBAState(base=base.init(params))

    def update(grads, state, params=None, *, signals):
        if grads is not None:
            raise ValueError("DBA computes each layer's gradient from the signals: call "
                             "update(None, state, params, signals=signals)")
        grads, selections = backend_of(signals).dba_gradients(signals, metric, strategy, min_size, tol)
        updates, base_state = base.update(grads, state.base, params, signals=signals)   # on the signals' backend
        return updates, DBAState(base_state, tuple(map(LayerStep, selections, grads, updates)))

    hyper = {"base": base.name, **{f"base.{k}": v for k, v in base.hyperparams.items()},
             "metric": metric, "strategy": strategy, "min_size": min_size, "tol": tol}
    return Optimizer(init, update, f"dba({base.name})", hyper)

"""DBA as an optimizer: the update of :mod:`dba_ref.update` in front of any base optimizer (spec §6).

Every step, each layer's direction is the mean gradient over the samples its
search keeps (:func:`dba_ref.update.dba_gradients`); the list of those means
goes to the base optimizer (SGD, Adam, ...), whose state is kept as usual.
``strategy="all"`` keeps every sample and reproduces the base optimizer bit
for bit. The backend that computes the Gram matrices, the searches and the
means is chosen once, when the optimizer is built.

Example
-------
>>> import numpy as np
>>> from dba_ref import MLP, backprop, dba, sgd, apply_updates
>>> model = MLP([4, 8, 3], seed=0)
>>> opt = dba(sgd(0.1))
>>> state = opt.init(model.params)
>>> signals = backprop(model, np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 3)
>>> updates, state = opt.update(signals, state, model.params)
>>> [step.size for step in state.last]   # random labels share no direction: down to min_size
[2, 2]
"""
from __future__ import annotations

from typing import Any, NamedTuple

from .._validation import check_choice, check_min_size, check_tol
from ..backends import get_backend
from ..metrics import METRICS
from ..search import STRATEGIES, Selection, check_exhaustive_size
from ..update import search_plan
from .base import Optimizer, tree_norm


class LayerStep(NamedTuple):
    """What DBA did to one layer in one step: its ``selection``, ``‖ḡ_l‖`` of the mean over it, and the
    norm of the update the base optimizer returned for the layer."""

    selection: Selection
    grad_norm: float
    update_norm: float

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


class DBAState(NamedTuple):
    """``base``: the base optimizer's state; ``last``: one :class:`LayerStep` per layer from the last update."""

    base: Any
    last: tuple = ()


def record_steps(state: DBAState) -> dict:
    """What the training loop records of a DBA step, one entry per layer: samples kept, metric of the
    whole batch and of the selection, ``‖ḡ_l‖`` and the norm of the update."""
    last = state.last
    return {"selected": tuple(step.size for step in last),
            "full_metric": tuple(float(step.full_value) for step in last),
            "selected_metric": tuple(float(step.value) for step in last),
            "grad_norm": tuple(step.grad_norm for step in last),
            "update_norm": tuple(step.update_norm for step in last)}


def dba(base: Optimizer, metric: str = "mean_variance", strategy: str = "greedy", min_size=2,
        tol: float = 0.0, backend: str = "numpy") -> Optimizer:
    """Wrap ``base`` so that each layer is updated with the mean over its selected samples.

    Parameters are those of :func:`dba_ref.select`; ``backend`` names who
    computes (:mod:`dba_ref.backends`). They are checked here, once. The
    returned optimizer's ``update`` takes the batch's
    :class:`~dba_ref.backprop.Signals` (``takes_signals=True``).
    """
    if not isinstance(base, Optimizer):
        raise TypeError(f"base must be an Optimizer (e.g. dba_ref.sgd(0.1)), got {type(base).__name__}")
    if base.takes_signals:
        raise ValueError(f"base optimizer {base.name!r} already consumes per-sample signals; it cannot be wrapped")
    check_choice(metric, METRICS, "metric")
    check_choice(strategy, STRATEGIES, "strategy")
    tol = check_tol(tol)
    min_size = check_min_size(min_size)
    dba_gradients = get_backend(backend).dba_gradients

    def init(params):
        return DBAState(base=base.init(params))

    def update(signals, state, params=None):
        check_exhaustive_size(search_plan(strategy, min_size, signals.batch_size)[0], signals.batch_size)
        grads, selections = dba_gradients(signals, metric, strategy, min_size, tol)
        updates, base_state = base.update(grads, state.base, params)
        last = tuple(LayerStep(sel, tree_norm(g), tree_norm(u)) for sel, g, u in zip(selections, grads, updates))
        return updates, DBAState(base=base_state, last=last)

    hyper = {"base": base.name, **{f"base.{k}": v for k, v in base.hyperparams.items()},
             "metric": metric, "strategy": strategy, "min_size": min_size, "tol": tol, "backend": backend}
    return Optimizer(init, update, f"dba({base.name})", hyper, takes_signals=True, record=record_steps)

"""Dynamic Batch Adaptation as a wrapper around any base optimizer (spec §6).

For every layer l separately::

    K_l  = (Δ_l Δ_lᵀ) ⊙ (A_{l-1} A_{l-1}ᵀ + 1)            Gram of the per-sample gradients
    S_l  = select(K_l, metric, strategy, min_size, tol)     the subset to keep
    ḡ_l  = (1/|S_l|) Δ_{S_l}ᵀ [A_{S_l}, 1]                 mean gradient over the subset

and the list of ``ḡ_l`` goes to the base optimizer (SGD, Adam, ...), whose
state is kept per layer as usual. ``strategy="all"`` keeps every sample and
reproduces the base optimizer bit for bit.

A batch smaller than ``min_size`` (the last batch of an epoch, say) is used
whole: that is not an error here, unlike in :func:`dba_ref.select`.

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

from dataclasses import dataclass
from typing import Any

from .._validation import check_choice, check_tol, resolve_min_size
from ..backends import get_backend
from ..backprop import mean_grad
from ..metrics import METRICS
from ..search import STRATEGIES, Selection, check_exhaustive_size, package_selection, select
from .base import Optimizer, tree_norm


@dataclass(frozen=True)
class LayerStep:
    """What DBA did to one layer in one step."""

    selection: Selection
    grad_norm: float      # ‖ḡ_l‖, the mean over the selection
    update_norm: float    # ‖update the base optimizer returned for the layer‖

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


@dataclass(frozen=True)
class DBAState:
    """``base``: the base optimizer's state; ``last``: one :class:`LayerStep` per layer from the last update."""

    base: Any
    last: tuple = ()


def dba(base: Optimizer, metric: str = "mean_variance", strategy: str = "greedy", min_size=2,
        tol: float = 0.0, backend: str = "numpy") -> Optimizer:
    """Wrap ``base`` so that each layer is updated with the mean over its selected samples.

    Parameters are those of :func:`dba_ref.select`; they are checked here, once.
    The returned optimizer's ``update`` takes the batch's
    :class:`~dba_ref.backprop.Signals` (``takes_signals=True``).
    """
    if not isinstance(base, Optimizer):
        raise TypeError(f"base must be an Optimizer (e.g. dba_ref.sgd(0.1)), got {type(base).__name__}")
    if base.takes_signals:
        raise ValueError(f"base optimizer {base.name!r} already consumes per-sample signals; it cannot be wrapped")
    check_choice(metric, METRICS, "metric")
    check_choice(strategy, STRATEGIES, "strategy")
    tol = check_tol(tol)
    resolve_min_size(min_size, 1 << 30)        # type and range check only
    be = get_backend(backend)

    def init(params):
        return DBAState(base=base.init(params))

    def update(signals, state, params=None):
        B = signals.batch_size
        m = resolve_min_size(min_size, B)
        layer_strategy = strategy if m <= B else "all"        # a too-small batch is used whole
        m = min(m, B)
        if hasattr(be, "DeviceStep"):                         # the whole step on the device (cuda)
            check_exhaustive_size(layer_strategy, B)
            step = be.DeviceStep(signals.layers)
            results = step.search(metric, layer_strategy, m, tol)
            selections = [package_selection(metric, layer_strategy, B, m, float(T), float(Q), result)
                          for (T, Q), result in zip(step.totals(), results)]
            grads = step.mean_grads([sel.indices for sel in selections])
        else:
            grads, selections = [], []
            for A, D in signals.layers:
                sel = select(be.gram(A, D), metric, layer_strategy, m, tol, backend)
                grads.append(be.mean_grad(A, D, sel.indices))
                selections.append(sel)
        # A layer that keeps the whole batch gets the mean gradient exactly as plain optimizers get it
        # (a device sums in another order), so that strategy="all" reproduces the base optimizer bit for bit.
        grads = [mean_grad(A, D) if sel.size == B else g for (A, D), sel, g in zip(signals.layers, selections, grads)]
        updates, base_state = base.update(grads, state.base, params)
        last = tuple(LayerStep(sel, tree_norm(g), tree_norm(u)) for sel, g, u in zip(selections, grads, updates))
        return updates, DBAState(base=base_state, last=last)

    hyper = {"base": base.name, **{f"base.{k}": v for k, v in base.hyperparams.items()},
             "metric": metric, "strategy": strategy, "min_size": min_size, "tol": tol, "backend": backend}
    return Optimizer(init, update, f"dba({base.name})", hyper, takes_signals=True)

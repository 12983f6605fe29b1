"""One DBA step on one batch, in one call: for checking another implementation step by step.

For a model with parameters ``θ = [(W_l, b_l)]`` and a batch ``(X, y)`` of B
samples, :func:`dba_step` does exactly what the :func:`~dba_ref.dba` optimizer
does in training (spec §6)::

    (A_{l-1}, Δ_l)  = backprop(model, X, y)                 (B, in_l), (B, out_l)
    K_l             = (Δ_l Δ_lᵀ) ⊙ (A_{l-1} A_{l-1}ᵀ + 1)    (B, B)
    S_l             = select(K_l, metric, strategy, min_size, tol)
    ḡ_l             = (1/|S_l|) Δ_{S_l}ᵀ [A_{S_l}, 1]         (out_l, in_l), (out_l,)
    u, state        = base.update([ḡ_1, ..., ḡ_L], state, θ)
    θ'              = θ + u

and returns every intermediate a cross-checker compares: the selections with
their traces, the mean gradients ``ḡ_l``, the updates ``u`` and the new
parameters ``θ'``, without touching ``model``. It is built from
:func:`~dba_ref.backprop` (or the chosen backend's forward and backward passes),
the :func:`~dba_ref.dba` optimizer and :func:`~dba_ref.apply_updates`, and reads
the selections and the mean gradients from the optimizer's state; it adds no
arithmetic of its own.

Example
-------
>>> import numpy as np
>>> from dba_ref import MLP, dba_step, sgd
>>> model = MLP([4, 8, 3], seed=0)
>>> X, y = np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 3
>>> step = dba_step(model, X, y, sgd(0.1))
>>> [sel.size for sel in step.selections]        # samples kept by each layer
[2, 2]
>>> gW, gb = step.grads[0]                        # layer 1's mean gradient over its 2 samples
>>> bool(np.array_equal(step.params[0][0], model.weights[0] - 0.1 * gW))     # SGD: θ' = θ − η ḡ
True
>>> next_step = dba_step(step.model, X, y, sgd(0.1), state=step.state)        # chain a second step
"""
from __future__ import annotations

from dataclasses import dataclass

from .backends import get_backend
from .model import MLP
from .optimizers import DBA_DEFAULTS, DBAState, Optimizer, apply_updates, dba


@dataclass(frozen=True)
class DBAStep:
    """The outcome of :func:`dba_step`; every list has one entry per layer.

    Attributes
    ----------
    model : MLP
        A new model holding the parameters after the step, ``θ'``.
    selections : list of dba_ref.search.Selection
        The subset ``S_l`` each layer kept (sorted ``indices`` into the batch)
        with the ``trace`` of the search.
    grads : list of (ndarray, ndarray)
        ``ḡ_l = (gW, gb)``, the mean gradient over ``S_l``; shapes ``(out_l, in_l)``, ``(out_l,)``.
    updates : list of (ndarray, ndarray)
        What the base optimizer returned, ``u_l``; ``θ' = θ + u``.
    loss : float
        Mean cross-entropy of the whole batch at ``θ``, before the step.
    state : DBAState
        The optimizer state after the step: pass it to the next :func:`dba_step`.
    """

    model: MLP
    selections: list
    grads: list
    updates: list
    loss: float
    state: DBAState

    @property
    def params(self) -> list:
        """``θ'`` as ``[(W_l, b_l)]``."""
        return self.model.params


def dba_step(model: MLP, X, y, base: Optimizer, metric: str = DBA_DEFAULTS["metric"],
             strategy: str = DBA_DEFAULTS["strategy"], min_size=DBA_DEFAULTS["min_size"],
             tol: float = DBA_DEFAULTS["tol"], state: DBAState | None = None, backend: str = "numpy") -> DBAStep:
    """One step of DBA(``base``) on the batch ``(X, y)``; ``model`` is not modified.

    Parameters
    ----------
    model : MLP
        The parameters ``θ`` before the step.
    X : array ``(B, in)`` ; y : int array ``(B,)``
        The batch. As in training, a batch smaller than ``min_size`` is used whole.
    base : Optimizer
        The optimizer DBA wraps, e.g. ``sgd(0.1)`` or ``adam(1e-3)``.
    metric, strategy, min_size, tol
        Those of :func:`dba_ref.select`.
    state : DBAState or None
        ``None`` for a first step (the base optimizer's ``init``); else the
        ``state`` of the previous step's :class:`DBAStep`, with the same ``base``.
    backend : {"numpy", "numba", "cuda"}
        Who computes (:mod:`dba_ref.backends`); all give the same step, to rounding.

    Returns
    -------
    DBAStep with the new ``model`` (and ``params``), ``selections``, ``grads``,
    ``updates``, ``loss`` and ``state``.
    """
    if not isinstance(model, MLP):
        raise TypeError(f"model must be a dba_ref.MLP (MLP.from_torch imports a PyTorch one), "
                        f"got {type(model).__name__}")
    optimizer = dba(base, metric, strategy, min_size, tol)
    if state is None:
        state = optimizer.init(model.params)
    elif not isinstance(state, DBAState):
        raise TypeError(f"state must be the .state of a previous DBAStep (or None), got {type(state).__name__}")
    X, y = model.check_batch(X, y)
    signals = get_backend(backend).signals(model, X, y)
    updates, state = optimizer.update(None, state, model.params, signals=signals)
    new = model.copy()
    new.set_params(apply_updates(model.params, updates))
    return DBAStep(new, [layer.selection for layer in state.last], [layer.grad for layer in state.last], updates,
                   float(signals.losses.mean()), state)

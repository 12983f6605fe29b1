"""The optimizer interface, in the style of optax.

An optimizer is a pair of pure functions::

    state            = init(params)
    updates, state   = update(grads, state, params)
    params           = apply_updates(params, updates)      # params + updates

``params``, ``grads`` and ``updates`` are lists of per-layer ``(W, b)``
tuples (a "pytree"); every optimizer's state is a ``NamedTuple`` whose
moments are pytrees of the same shape. Functions never modify their inputs.
The moment and bias-correction lines shared by the Adam family are
:func:`update_moment` and :func:`bias_correction`.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np


def tree_map(fn: Callable, *trees):
    """Apply ``fn`` leaf-wise over lists/tuples of arrays with the same structure."""
    first = trees[0]
    if isinstance(first, (list, tuple)):
        return type(first)(tree_map(fn, *parts) for parts in zip(*trees))
    return fn(*trees)


def tree_leaves(tree) -> list:
    """The arrays of a pytree, in order."""
    if isinstance(tree, (list, tuple)):
        return [leaf for part in tree for leaf in tree_leaves(part)]
    return [tree]


def tree_norm(tree) -> float:
    """Euclidean norm of all leaves together."""
    return float(np.sqrt(sum(float(np.sum(np.square(leaf, dtype=np.float64))) for leaf in tree_leaves(tree))))


def apply_updates(params, updates):
    """``params + updates``, leaf by leaf (new arrays)."""
    return tree_map(lambda p, u: p + u, params, updates)


def tree_zeros_like(tree):
    """A pytree of zeros shaped like ``tree``: the start of every moment."""
    return tree_map(np.zeros_like, tree)


def update_moment(grads, moments, decay: float, order: int):
    """An exponential moving average of the gradients (``order=1``) or of their squares (``order=2``).

    ``m ← β m + (1 − β) g`` or ``v ← β v + (1 − β) g²``, leaf by leaf.
    """
    if order == 1:
        return tree_map(lambda m, g: decay * m + (1 - decay) * g, moments, grads)
    return tree_map(lambda v, g: decay * v + (1 - decay) * g * g, moments, grads)


def bias_correction(moment, decay: float, count: int):
    """``m / (1 − β^t)``: removes the bias of a moment that started at 0, after ``count`` = t updates."""
    return moment / (1 - decay ** count)


class EmptyState(NamedTuple):
    """The state of an optimizer that keeps none (plain SGD)."""


@dataclass(frozen=True)
class Optimizer:
    """A pure optimizer: ``init(params) -> state`` and ``update(grads, state, params) -> (updates, state)``.

    Attributes
    ----------
    name : str
        Display name, e.g. ``"adam"`` or ``"dba(sgd)"``.
    hyperparams : dict
        The hyper-parameters it was built with (recorded in results files).
    takes_signals : bool
        True when ``update`` wants the batch's per-sample :class:`~dba_ref.backprop.Signals`
        instead of the mean gradient (DBA and the adaptive-batch optimizers do).
    requested_batch_size : callable or None
        For optimizers that choose the size of the *next* batch (AdAdaGrad):
        ``requested_batch_size(state) -> int | None`` reads it from the state
        (``None`` before the first update). The training loop then draws its next
        batch with that size. ``None`` for every other optimizer.
    record : callable or None
        What the training loop should record of a step, read from the state
        after the update: ``record(state) -> {name: value}``, a value being a
        number, or a tuple of one number per layer (DBA's selected sizes and
        metrics, AdAdaGrad's test statistic). ``None``: nothing beyond the loss.
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], tuple[Any, Any]]
    name: str
    hyperparams: dict = field(default_factory=dict)
    takes_signals: bool = False
    requested_batch_size: Callable[[Any], Any] | None = None
    record: Callable[[Any], dict] | None = None


def check_decay(value, name: str) -> float:
    """A decay rate / momentum coefficient in [0, 1), e.g. Adam's β1 and β2."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1), got {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return float(value)


def check_flag(value, name: str) -> bool:
    """A boolean switch (``True``/``False``; NumPy booleans accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)

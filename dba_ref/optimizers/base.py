"""The optimizer interface, in the style of optax.

An optimizer is a pair of pure functions::

    state            = init(params)
    updates, state   = update(grads, state, params)
    params           = apply_updates(params, updates)      # params + updates

``params``, ``grads`` and ``updates`` are lists of per-layer ``(W, b)``
tuples (a "pytree"); every optimizer's state is a ``NamedTuple`` whose
moments are pytrees of the same shape. Functions never modify their inputs.
What an update does to each coordinate is stated once, as an element rule
(:mod:`~dba_ref.optimizers.elementwise`), run vectorised by NumPy or fused
into one compiled pass per parameter array, with the same numbers.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple

import numpy as np

from .elementwise import elementwise_for


class EmptyState(NamedTuple):
    """The state of an optimizer that keeps none (plain SGD)."""


class Optimizer(NamedTuple):
    """A pure optimizer, as optax's ``GradientTransformationExtraArgs``: two functions, and what it is.

    ``init(params) -> state``
        The state before the first step.
    ``update(grads, state, params=None, **extra_args) -> (updates, state)``
        ``grads`` is a pytree like ``params``; ``extra_args`` are further inputs of
        the step, passed by keyword. The one the package passes is ``signals``, the
        batch's per-sample :class:`~dba_ref.backprop.Signals`: DBA and the
        adaptive-batch optimizers read it, the others ignore it. ``grads=None``
        with ``signals=`` stands for the batch-mean gradient of those signals
        (:meth:`Signals.mean_grads <dba_ref.backprop.Signals.mean_grads>`), which is
        how the training loop calls every optimizer; DBA, which replaces that
        gradient by each layer's mean over its selection, takes ``grads=None`` only.

    ``name`` (e.g. ``"adam"``, ``"dba(sgd)"``) and ``hyperparams`` (what it was
    built with, recorded in results files) describe it. What a step did is read
    from the state it returns, when asked: a state with a ``diagnostics(names=None)``
    method (DBA's, AdAdaGrad's) says what the training loop records (the quantities
    of :data:`~dba_ref.optimizers.DIAGNOSTIC_NAMES` it has, all or those named), and one with
    a ``next_batch_size`` (AdAdaGrad's) chooses the size of the next batch.
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]
    name: str
    hyperparams: dict


def gradient_optimizer(init: Callable, update: Callable, name: str, hyperparams: dict) -> Optimizer:
    """The :class:`Optimizer` of an update of the gradient alone,
    ``update(grads, state, params, elementwise) -> (updates, state)``.

    ``elementwise`` runs the update's element rules
    (:class:`~dba_ref.optimizers.elementwise.Elementwise`): fused on the backend
    that computed the batch's signals when it is ``numba`` or ``cuda``; an update
    that computes without element rules may ignore it. The optimizer's
    ``update`` also accepts the step's extra arguments: ``signals`` stands in for
    ``grads=None`` as their batch-mean gradient, and names that backend;
    anything else is not read. Every optimizer of the registry but the wrappers
    is built so.
    """
    def update_with_extra_args(grads, state, params=None, *, signals=None, **extra_args):
        if grads is None:
            if signals is None:
                raise TypeError(f"{name}.update needs grads, or signals= to take the batch-mean gradient of")
            grads = signals.mean_grads()
        return update(grads, state, params, elementwise_for(signals))

    return Optimizer(init, update_with_extra_args, name, dict(hyperparams))


def check_base(base, wrapper: str) -> Optimizer:
    """``base`` must be an :class:`Optimizer` that wraps no other: what ``wrapper`` (DBA, adaptive_batch) wraps.

    A wrapper records what it wraps as ``hyperparams["base"]``; wrapping it again
    (``dba(adadagrad())``, ``dba(dba(sgd()))``) is refused.
    """
    if not isinstance(base, Optimizer):
        raise TypeError(f"{wrapper}'s base must be an Optimizer (e.g. dba_ref.sgd(0.1)), got {type(base).__name__}")
    if wraps_another(base):
        raise ValueError(f"{wrapper} cannot wrap {base.name!r}, which already wraps {base.hyperparams['base']!r}: "
                         "give a plain optimizer (sgd, momentum, adam, ...)")
    return base


def wraps_another(optimizer: Optimizer) -> bool:
    """Whether ``optimizer`` is a wrapper (DBA, adaptive_batch): it records the optimizer it wraps as ``"base"``."""
    return "base" in optimizer.hyperparams


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

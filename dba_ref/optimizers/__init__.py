"""Optimizers as pure ``init``/``update`` pairs, and a registry by name.

``OPTIMIZERS`` maps a name to ``(factory, one-line description)``; the CLI and
the trainer build optimizers through :func:`make_optimizer`.
"""
from __future__ import annotations

import inspect

from .._validation import check_choice
from .adam import adam
from .base import Optimizer, apply_updates, tree_map, tree_norm
from .dba import DBAState, LayerStep, dba
from .sgd import momentum, nesterov, sgd

OPTIMIZERS = {
    "sgd": (sgd, "stochastic gradient descent, Δθ = −η g"),
    "momentum": (momentum, "SGD with heavy-ball momentum (PyTorch convention)"),
    "nesterov": (nesterov, "SGD with Nesterov momentum"),
    "adam": (adam, "Adam with bias correction (Kingma & Ba, 2015)"),
}


def make_optimizer(name: str, **hyperparams) -> Optimizer:
    """Build optimizer ``name`` from the registry with the given hyper-parameters.

    Unknown hyper-parameter names raise a ``TypeError`` listing the accepted ones.
    """
    factory, _ = OPTIMIZERS[check_choice(name, OPTIMIZERS, "optimizer")]
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(hyperparams) - set(accepted))
    if unknown:
        raise TypeError(f"optimizer {name!r} has no hyper-parameter {', '.join(unknown)}; it accepts {accepted}")
    return factory(**hyperparams)


__all__ = ["Optimizer", "apply_updates", "tree_map", "tree_norm", "sgd", "momentum", "nesterov", "adam",
           "dba", "DBAState", "LayerStep", "OPTIMIZERS", "make_optimizer"]

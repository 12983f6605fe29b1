"""Optimizers as pure ``init``/``update`` pairs, and a registry by name.

``OPTIMIZERS`` maps a name to ``(factory, one-line description)``; the CLI and
the trainer build optimizers through :func:`make_optimizer`. Every entry is a
NumPy reference of the published method, checked against a framework
implementation where one exists (``docs/optimizers/`` says which, and how).
"""
from __future__ import annotations

import inspect

from .._validation import check_choice
from .adabelief import AdaBeliefState, adabelief
from .adagrad import AdaGradNormState, AdaGradState, adagrad, adagrad_norm
from .adam import EPS_PLACEMENTS, AdamState, adam
from .adamp import ProjectedState, adamp, sgdp
from .adan import AdanState, adan
from .adaptive_batch import AdaptiveBatchState, BatchTest, adadagrad, adadagrad_norm, adaptive_batch
from .base import (EmptyState, Optimizer, apply_updates, bias_correction, tree_map, tree_norm, tree_zeros_like,
                   update_moment)
from .dba import DBAState, LayerStep, dba
from .diffgrad import DiffGradState, diffgrad
from .enhanced_sgd import EnhancedSGDState, enhanced_sgd
from .sgd import MomentumState, momentum, nesterov, sgd

OPTIMIZERS = {
    "sgd": (sgd, "stochastic gradient descent, Δθ = −η g"),
    "momentum": (momentum, "SGD with heavy-ball momentum (PyTorch convention)"),
    "nesterov": (nesterov, "SGD with Nesterov momentum"),
    "adam": (adam, "Adam with bias correction (Kingma & Ba, 2015)"),
    "adagrad": (adagrad, "AdaGrad, a step size per coordinate from its summed squared gradients (Duchi et al., 2011)"),
    "adagrad_norm": (adagrad_norm, "AdaGrad-Norm, one scalar step size η/b from the summed squared gradient norms "
                                   "(Ward et al., 2019)"),
    "adadagrad": (adadagrad, "AdAdaGrad: AdaGrad whose batch grows when the coordinate-wise test fails "
                             "(Lau et al., 2024)"),
    "adadagrad_norm": (adadagrad_norm, "AdAdaGrad-Norm: AdaGrad-Norm whose batch grows when the norm test fails "
                                       "(Lau et al., 2024)"),
    "adabelief": (adabelief, "AdaBelief, Adam with the variance of g − m in place of g² (Zhuang et al., 2020)"),
    "adan": (adan, "Adan, adaptive Nesterov momentum from gradient differences (Xie et al., 2022)"),
    "diffgrad": (diffgrad, "diffGrad, Adam damped where the gradient changes little (Dubey et al., 2020)"),
    "adamp": (adamp, "AdamP, Adam without the radial update on scale-invariant-looking weights (Heo et al., 2021)"),
    "sgdp": (sgdp, "SGDP, momentum SGD without the radial update on scale-invariant-looking weights "
                   "(Heo et al., 2021)"),
    "enhanced_sgd": (enhanced_sgd, "EnhancedSGD (GradRetentionNet): momentum SGD with variance-driven scaling and "
                                   "a Q-learning controller; a heuristic"),
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


def build_optimizer(name: str, hyperparams: dict | None = None, *, learning_rate: float | None = None,
                    base: str = "sgd", **dba_options) -> Optimizer:
    """Optimizer ``name`` with ``hyperparams``; for ``name="dba"``, DBA wrapping ``base`` built with them.

    ``learning_rate``, when given, is added to ``hyperparams``. ``base`` and
    ``dba_options`` (``metric``, ``strategy``, ``min_size``, ``tol``,
    ``backend``, see :func:`dba`) are used only when ``name`` is ``"dba"``, so
    a caller holding a full set of options (the CLI, :class:`~dba_ref.DBAClassifier`)
    can pass them all.

    >>> build_optimizer("dba", {"beta1": 0.8}, learning_rate=0.05, base="adam", metric="variance").name
    'dba(adam)'
    >>> build_optimizer("sgd", learning_rate=0.5, metric="variance").hyperparams
    {'learning_rate': 0.5}
    """
    hyperparams = dict(hyperparams or {})
    if learning_rate is not None:
        hyperparams["learning_rate"] = learning_rate
    if name != "dba":
        return make_optimizer(name, **hyperparams)
    return dba(make_optimizer(base, **hyperparams), **dba_options)


__all__ = ["Optimizer", "apply_updates", "tree_map", "tree_norm", "tree_zeros_like", "update_moment",
           "bias_correction", "sgd", "momentum", "nesterov", "adam", "adagrad", "adagrad_norm", "adadagrad",
           "adadagrad_norm", "adaptive_batch", "adabelief", "adan", "diffgrad", "adamp", "sgdp", "enhanced_sgd",
           "EPS_PLACEMENTS", "dba", "OPTIMIZERS", "make_optimizer", "build_optimizer",
           "EmptyState", "MomentumState", "AdamState", "AdaBeliefState", "DiffGradState", "AdanState",
           "AdaGradState", "AdaGradNormState", "ProjectedState", "EnhancedSGDState", "AdaptiveBatchState",
           "BatchTest", "DBAState", "LayerStep"]

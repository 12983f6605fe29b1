"""Optimizers as pure ``init``/``update`` pairs, and a registry by name.

``OPTIMIZERS`` maps a name to ``(factory, one-line description)``; the CLI,
:class:`~dba_ref.DBAClassifier` and the reproduction build optimizers by name
through :func:`make_optimizer`, the one builder. Every entry is a NumPy
reference of the published method, checked against a framework implementation
where one exists (``docs/optimizers/`` says which, and how).
"""
from __future__ import annotations

import inspect

from .._validation import check_choice
from .adabelief import AdaBeliefState, adabelief
from .adagrad import AdaGradNormState, AdaGradState, adagrad, adagrad_norm
from .adam import EPS_PLACEMENTS, AdamState, adam
from .adamp import ProjectedState, adamp, sgdp
from .adan import AdanState, adan
from .adaptive_batch import DIAGNOSTICS as ADAPTIVE_BATCH_DIAGNOSTICS
from .adaptive_batch import AdaptiveBatchState, BatchTest, adadagrad, adadagrad_norm, adaptive_batch
from .base import EmptyState, Optimizer, check_base, gradient_optimizer, wraps_another
from .dba import DIAGNOSTICS as DBA_DIAGNOSTICS
from .dba import DBA_DEFAULTS, DBAState, LayerStep, dba
from .elementwise import ElementRule, Elementwise, element_function, element_rule, elementwise_for
from .diffgrad import DiffGradState, diffgrad
from .enhanced_sgd import EnhancedSGDState, enhanced_sgd
from .sgd import MomentumState, momentum, nesterov, sgd
from .tree import apply_updates, tree_map, tree_norm, tree_zeros_like

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


def make_optimizer(name: str, **options) -> Optimizer:
    """Optimizer ``name`` of :data:`OPTIMIZERS` built with ``options``, or DBA around one (``name="dba"``).

    For a registry name, ``options`` are the factory's hyper-parameters. For
    ``"dba"``, ``base`` (a registry name, required) is the optimizer DBA wraps,
    ``metric``, ``strategy``, ``min_size`` and ``tol`` are DBA's (:func:`dba`),
    and every other option is the base's. An option the optimizer does not
    have raises a ``TypeError`` listing those it accepts.

    >>> make_optimizer("adam", learning_rate=0.01).hyperparams["learning_rate"]
    0.01
    >>> make_optimizer("dba", base="adam", metric="variance", learning_rate=0.05).name
    'dba(adam)'
    """
    if name == "dba":
        dba_options = {k: options.pop(k) for k in DBA_DEFAULTS if k in options}
        if "base" not in options:
            raise TypeError("make_optimizer('dba', ...) needs base=, the name of the optimizer DBA wraps, e.g. "
                            "make_optimizer('dba', base='adam')")
        return dba(make_optimizer(options.pop("base"), **options), **dba_options)
    factory, _ = OPTIMIZERS[check_choice(name, [*OPTIMIZERS, "dba"], "optimizer")]
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"optimizer {name!r} has no hyper-parameter {', '.join(unknown)}; it accepts {accepted}")
    return factory(**options)


#: The registry optimizers DBA can wrap: all but the adaptive-batch ones, which wrap a base of their own.
WRAPPABLE = tuple(name for name, (factory, _) in OPTIMIZERS.items() if not wraps_another(factory()))

#: Every quantity a state's ``diagnostics()`` can record per step (DBA's, then AdAdaGrad's): the names the
#: training loop may ask for (``train(diagnostics=...)``).
DIAGNOSTIC_NAMES = (*DBA_DIAGNOSTICS, *ADAPTIVE_BATCH_DIAGNOSTICS)


__all__ = ["Optimizer", "apply_updates", "tree_map", "tree_norm", "tree_zeros_like", "sgd", "momentum", "nesterov",
           "adam", "adagrad", "adagrad_norm", "adadagrad", "adadagrad_norm", "adaptive_batch", "adabelief", "adan", "diffgrad", "adamp", "sgdp", "enhanced_sgd",
           "EPS_PLACEMENTS", "dba", "DBA_DEFAULTS", "DIAGNOSTIC_NAMES", "WRAPPABLE", "OPTIMIZERS", "make_optimizer", "gradient_optimizer",
           "check_base", "wraps_another", "ElementRule", "Elementwise", "element_rule", "element_function",
           "elementwise_for",
           "EmptyState", "MomentumState", "AdamState", "AdaBeliefState", "DiffGradState", "AdanState",
           "AdaGradState", "AdaGradNormState", "ProjectedState", "EnhancedSGDState", "AdaptiveBatchState",
           "BatchTest", "DBAState", "LayerStep"]

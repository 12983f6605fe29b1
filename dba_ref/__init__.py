"""dba-ref: the reference implementation of Dynamic Batch Adaptation (arXiv:2208.00815).

DBA looks at the gradient of every sample in a batch and, for every layer
separately, keeps only the subset of samples whose gradients best improve a
metric such as gradient variance; the layer is updated with the mean over
that subset. The modules, one concept each:

- :mod:`dba_ref.model`      the MLP, its activations and the softmax cross-entropy
- :mod:`dba_ref.model_io`   the MLP's weights in and out: a list of arrays, a PyTorch ``nn.Sequential``
- :mod:`dba_ref.backprop`   per-sample error signals, per-sample and mean gradients
- :mod:`dba_ref.gram`       the Gram identity ``K = (ΔΔᵀ) ⊙ (AAᵀ + 1)``
- :mod:`dba_ref.metrics`    variance, normalized variance, mean variance from (T, Q, k)
- :mod:`dba_ref.search`     greedy / prefix / exhaustive / all subset search
- :mod:`dba_ref.update`     the DBA update: every layer's Gram matrix, search and mean over the selection
- :mod:`dba_ref.agreement`  when two implementations agree: value scales, margins, the one comparator
- :mod:`dba_ref.backends`   NumPy (reference), and faster kernels (Numba CPU, CUDA) behind one interface
- :mod:`dba_ref.optimizers` SGD, momentum, Adam, AdaGrad(-Norm), AdAdaGrad(-Norm), AdaBelief, Adan,
  diffGrad, AdamP, SGDP, EnhancedSGD, and the DBA wrapper (optax style)
- :mod:`dba_ref.step`       ``dba_step``: one DBA step on one batch, every intermediate returned
- :mod:`dba_ref.data`       bundled MNIST-5k, IDX files, scikit-learn digits, stratified subsets
- :mod:`dba_ref.training`   the training loop, its sampler and history, checkpoint/resume
- :mod:`dba_ref.checkpoint` exact, pickle-free checkpoint files
- :mod:`dba_ref.estimator`  ``DBAClassifier``, a scikit-learn estimator (imported on first use)
- :mod:`dba_ref.conformance` golden cases and the check of another implementation against them
- :mod:`dba_ref.exercises`  classroom exercises, their stubs and the autograder
- :mod:`dba_ref.reproduction` the paper's headline table: protocol, runs, statistics, report
- :mod:`dba_ref.frameworks` independent PyTorch and JAX versions, to check the reference with
- :mod:`dba_ref.plots`      figures of a training run
- :mod:`dba_ref.cli`        the ``dba-ref`` command
"""
from .backprop import Signals, backprop, batch_grads, mean_grad, mean_grads, per_sample_grads
from .gram import explicit_gram, explicit_layer_grams, gram, layer_grams
from .metrics import METRICS, mean_variance, metric_value, normalized_variance, variance
from .model import MLP
from .optimizers import (DBA_DEFAULTS, OPTIMIZERS, Optimizer, adabelief, adadagrad, adadagrad_norm, adagrad,
                         adagrad_norm, adam, adamp, adan, adaptive_batch, apply_updates, dba, diffgrad, enhanced_sgd,
                         make_optimizer, momentum, nesterov, sgd, sgdp)
from .search import Selection, SelectionTrace, select
from .step import DBAStep, dba_step

__version__ = "0.1.0"


def __getattr__(name):
    # DBAClassifier needs scikit-learn, whose import costs ~1 s: load it only when asked for.
    if name == "DBAClassifier":
        from .estimator import DBAClassifier

        return DBAClassifier
    raise AttributeError(f"module 'dba_ref' has no attribute {name!r}")


__all__ = [
    "MLP", "Signals", "backprop", "per_sample_grads", "batch_grads", "mean_grad", "mean_grads",
    "gram", "layer_grams", "explicit_gram", "explicit_layer_grams",
    "METRICS", "variance", "normalized_variance", "mean_variance", "metric_value",
    "select", "Selection", "SelectionTrace",
    "Optimizer", "OPTIMIZERS", "DBA_DEFAULTS", "make_optimizer", "apply_updates", "sgd", "momentum", "nesterov", "adam", "dba",
    "adagrad", "adagrad_norm", "adadagrad", "adadagrad_norm", "adaptive_batch", "adabelief", "adan", "diffgrad",
    "adamp", "sgdp", "enhanced_sgd", "dba_step", "DBAStep",
    "DBAClassifier", "__version__",
]

"""The learning rates the reproduction validated, which ``dba-ref train`` uses when they apply.

docs/reproduction.md tunes every method in its cell "main — mnist5k, 60 per class, 784-256-10 ReLU,
batch 64, 100 epochs, validation 50 per class": five learning rates (the optimizer's default × 0.1,
0.316, 1, 3.16, 10) trained on seed 100 and scored by accuracy on a validation slice of 50 images
per class; the chosen rate then trained seeds 0–4, scored on the test set. :data:`METHODS` copies,
for each method of that cell, the chosen rate and the test accuracy over the five seeds; the test
``tests/test_cli.py::test_validated_rates_are_those_of_the_reproduction`` checks the copy against
``docs/reproduction/summary.json``, from which the report is generated.

A run uses these rates when its data, model and batch are the cell's (:data:`SETTINGS`) and it sets
no other hyper-parameter; its epochs, seed, dtype and backend may differ (the expected accuracies
are those of 100 epochs).
"""
from __future__ import annotations

from typing import NamedTuple

#: The cell, as docs/reproduction.md names it.
CELL = "main — mnist5k, 60 per class, 784-256-10 ReLU, batch 64, 100 epochs, validation 50 per class"
#: Its epoch budget.
EPOCHS = 100
#: The paper's test accuracy for DBA in that regime (1% of MNIST, 60 per class), which the cell does not reproduce.
PAPER_ACCURACY = 97.79
#: Its data, model and batch, as the values of ``dba-ref train``'s options.
SETTINGS = {"dataset": "mnist5k", "per_class": 60, "fraction": None, "hidden": [256], "activation": "relu",
            "batch_size": 64}


class Validated(NamedTuple):
    """A method's learning rate chosen on validation, and its test accuracy (%) over seeds 0–4: mean, std."""

    learning_rate: float
    test_mean: float
    test_std: float


#: Keyed as the reproduction keys its methods (:attr:`dba_ref.reproduction.protocol.Method.key`): the
#: optimizer's name, or ``dba-BASE-METRIC-STRATEGY-mMIN_SIZE-tTOL``.
METHODS = {
    "sgd": Validated(0.316, 88.22, 0.62),
    "momentum": Validated(0.158, 88.78, 0.52),
    "nesterov": Validated(0.158, 88.52, 0.56),
    "adam": Validated(0.000316, 88.20, 0.44),
    "adagrad": Validated(0.00316, 88.11, 0.41),
    "adagrad_norm": Validated(3.16, 88.31, 0.70),
    "adadagrad": Validated(0.0316, 88.54, 0.98),
    "adadagrad_norm": Validated(10.0, 87.76, 0.98),
    "adabelief": Validated(0.001, 88.37, 0.48),
    "adan": Validated(0.001, 88.65, 0.71),
    "diffgrad": Validated(0.01, 88.73, 0.66),
    "adamp": Validated(0.000316, 88.19, 0.44),
    "sgdp": Validated(0.01, 87.62, 0.62),
    "enhanced_sgd": Validated(0.1, 87.59, 0.80),
    "dba-sgd-variance-greedy-m2-t0": Validated(0.316, 22.28, 4.55),
    "dba-sgd-variance-prefix-m2-t0": Validated(0.0316, 87.61, 0.82),
    "dba-sgd-normalized_variance-greedy-m2-t0": Validated(0.1, 88.74, 0.59),
    "dba-sgd-normalized_variance-prefix-m2-t0": Validated(0.0316, 88.50, 0.76),
    "dba-sgd-mean_variance-greedy-m2-t0": Validated(0.1, 89.66, 0.78),
    "dba-sgd-mean_variance-prefix-m2-t0": Validated(0.0316, 88.65, 0.81),
    "dba-adam-variance-greedy-m2-t0": Validated(0.001, 23.31, 2.93),
    "dba-adam-variance-prefix-m2-t0": Validated(0.000316, 87.45, 0.85),
    "dba-adam-normalized_variance-greedy-m2-t0": Validated(0.001, 88.46, 1.05),
    "dba-adam-normalized_variance-prefix-m2-t0": Validated(0.00316, 89.29, 0.42),
    "dba-adam-mean_variance-greedy-m2-t0": Validated(0.00316, 89.48, 0.58),
    "dba-adam-mean_variance-prefix-m2-t0": Validated(0.00316, 89.48, 0.58),
    "dba-sgd-variance-greedy-m0.5-t0": Validated(1.0, 66.85, 2.53),
    "dba-sgd-normalized_variance-greedy-m0.5-t0": Validated(0.316, 88.92, 0.67),
    "dba-sgd-mean_variance-greedy-m2-t0.05": Validated(0.316, 88.36, 0.68),
    "dba-adam-variance-greedy-m0.5-t0": Validated(0.01, 65.36, 4.80),
    "dba-adam-normalized_variance-greedy-m0.5-t0": Validated(0.00316, 89.14, 0.52),
    "dba-adam-mean_variance-greedy-m2-t0.05": Validated(0.000316, 88.10, 0.47),
}


def validated(key: str, settings: dict, hyperparams: dict) -> Validated | None:
    """What the cell validated for method ``key``, if ``settings`` are the cell's and ``hyperparams`` empty."""
    if hyperparams or any(settings.get(name) != value for name, value in SETTINGS.items()):
        return None
    return METHODS.get(key)

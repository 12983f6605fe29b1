"""The golden cases: small fixed problems, and everything the reference computes from each.

A case is an MLP, its weights, a batch and a ``min_size``; its reference
outputs are the per-sample losses and gradients, the Gram matrix of every
layer, the selection with its trace and decision margins for every metric ×
strategy × layer, and the weights after one DBA(SGD) and one DBA(Adam) step.
For a trajectory of N DBA steps a case adds N batches drawn from its seed
(:func:`step_inputs`; the first is the case's own batch) and the
hyper-parameters of every base optimizer of :data:`STEP_BASES`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..agreement import decision_margins
from ..backprop import backprop, per_sample_grads
from ..gram import gram
from ..metrics import METRIC_NAMES
from ..model import MLP
from ..optimizers import Optimizer, adam, apply_updates, dba, make_optimizer, sgd
from ..search import STRATEGIES, select
from .schema import STEP_BASES, selection_key

#: Hyper-parameters shared by every case (stored in each file too).
STEP_METRIC, STEP_STRATEGY = "mean_variance", "greedy"
SGD_LEARNING_RATE = 0.1
ADAM_LEARNING_RATE, ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.01, 0.9, 0.999, 1e-8
MOMENTUM_LEARNING_RATE, MOMENTUM = 0.05, 0.9
TOL = 0.0


@dataclass(frozen=True)
class GoldenCase:
    """One golden problem: architecture, activation, dtype, batch size, ``min_size`` and seed."""

    name: str
    sizes: tuple
    activation: str
    dtype: str
    batch_size: int
    min_size: int
    seed: int
    description: str


CASES = (
    GoldenCase("small", (5, 7, 3), "relu", "float64", 8, 2, 1, "one hidden ReLU layer, the paper's architecture in miniature"),
    GoldenCase("deep", (6, 9, 7, 5, 4), "relu", "float64", 10, 2, 2, "four weight layers"),
    GoldenCase("float32", (5, 8, 3), "relu", "float32", 10, 2, 3, "a float32 model (statistics still in float64)"),
    GoldenCase("edge_one_removal", (4, 6, 3), "tanh", "float64", 6, 5, 4,
               "min_size = B - 1: exactly one removal is allowed"),
    GoldenCase("edge_whole_batch", (4, 6, 3), "tanh", "float64", 6, 6, 5,
               "min_size = B: nothing may be removed, the greedy loop never runs"),
    GoldenCase("act_tanh", (5, 6, 6, 3), "tanh", "float64", 9, 2, 6, "two hidden tanh layers"),
    GoldenCase("act_sigmoid", (5, 6, 6, 3), "sigmoid", "float64", 9, 2, 7, "two hidden sigmoid layers"),
    GoldenCase("act_identity", (5, 6, 6, 3), "identity", "float64", 9, 2, 8, "two hidden identity (linear) layers"),
)


def case_inputs(case: GoldenCase) -> dict:
    """The inputs of a case, drawn from its seed: model, weights (biases made non-zero), batch, hyper-parameters."""
    model = MLP(list(case.sizes), activation=case.activation, seed=case.seed, dtype=case.dtype)
    rng = np.random.default_rng(1000 + case.seed)
    inputs = {
        "description": np.array(case.description),
        "sizes": np.array(case.sizes, np.int64),
        "activation": np.array(case.activation),
        "dtype": np.array(case.dtype),
        "X": rng.normal(size=(case.batch_size, case.sizes[0])).astype(case.dtype),
        "y": rng.integers(0, case.sizes[-1], size=case.batch_size).astype(np.int64),
    }
    for l, W in enumerate(model.weights, 1):
        inputs[f"W{l}"] = W
        inputs[f"b{l}"] = rng.normal(scale=0.1, size=W.shape[0]).astype(case.dtype)
    inputs.update({
        "min_size": np.array(case.min_size, np.int64), "tol": np.array(TOL),
        "metrics": np.array(METRIC_NAMES), "strategies": np.array(STRATEGIES),
        "step_metric": np.array(STEP_METRIC), "step_strategy": np.array(STEP_STRATEGY),
        "sgd_learning_rate": np.array(SGD_LEARNING_RATE), "adam_learning_rate": np.array(ADAM_LEARNING_RATE),
        "adam_beta1": np.array(ADAM_BETA1), "adam_beta2": np.array(ADAM_BETA2), "adam_eps": np.array(ADAM_EPS),
    })
    return inputs


CASE_NAMES = tuple(case.name for case in CASES)


def step_inputs(name: str, inputs, steps: int) -> dict:
    """The inputs a trajectory of ``steps`` DBA steps adds to case ``name`` (whose file holds ``inputs``).

    ``step_X`` ``(steps, B, in)`` and ``step_y`` ``(steps, B)``: batch t is
    ``step_X[t-1], step_y[t-1]``; the first is the case's ``X, y``, batch t ≥ 2
    is drawn from the seed ``(case seed, t)``, so a longer trajectory extends a
    shorter one. ``momentum_learning_rate`` and ``momentum_momentum``: the
    heavy-ball base (SGD and Adam's are in every case file).
    """
    case = CASES[CASE_NAMES.index(name)]
    X, y = inputs["X"], inputs["y"]
    step_X, step_y = [X], [y]
    for t in range(2, steps + 1):
        rng = np.random.default_rng([3000 + case.seed, t])
        step_X.append(rng.normal(size=X.shape).astype(X.dtype))
        step_y.append(rng.integers(0, case.sizes[-1], size=y.shape).astype(np.int64))
    return {"step_X": np.stack(step_X), "step_y": np.stack(step_y),
            "momentum_learning_rate": np.array(MOMENTUM_LEARNING_RATE), "momentum_momentum": np.array(MOMENTUM)}


def with_step_inputs(name: str, case_file, steps: int) -> dict:
    """Case ``name``'s file ``case_file`` with the inputs of a trajectory of ``steps`` DBA steps added
    (:func:`step_inputs`): what the check and the reference's trajectories read."""
    return {**case_file, **step_inputs(name, case_file, steps)}


def base_hyperparams(inputs, base: str) -> dict:
    """The hyper-parameters of base optimizer ``base`` in a case's inputs: ``{name: inputs["<base>_<name>"]}``."""
    return {name: float(inputs[f"{base}_{name}"]) for name in STEP_BASES[base]}


def base_optimizer(inputs, base: str) -> Optimizer:
    """The reference base optimizer ``base`` (a key of :data:`STEP_BASES`) with a case's hyper-parameters."""
    return make_optimizer(base, **base_hyperparams(inputs, base))


def n_layers(inputs) -> int:
    return len(inputs["sizes"]) - 1


def model_from_inputs(inputs) -> MLP:
    """The reference :class:`~dba_ref.model.MLP` holding a case's weights."""
    model = MLP([int(s) for s in inputs["sizes"]], activation=str(inputs["activation"]), dtype=str(inputs["dtype"]))
    model.set_params([(inputs[f"W{l}"], inputs[f"b{l}"]) for l in range(1, n_layers(inputs) + 1)])
    return model


def selection_fields(selection, K: np.ndarray) -> dict:
    """A reference selection as the golden files store it: ``indices``, ``value``, ``removed``, ``values``, ``margins``."""
    return {"indices": selection.indices, "value": selection.value, "removed": selection.trace.removed,
            "values": selection.trace.values, "margins": decision_margins(K, selection)}


def reference_outputs(inputs) -> dict:
    """Everything the reference computes from a case's inputs, under the keys of the schema.

    Includes the reference-only ``margins`` of every selection.
    """
    model = model_from_inputs(inputs)
    X, y = inputs["X"], inputs["y"]
    signals = backprop(model, X, y)
    out = {"losses": signals.losses}
    grams = []
    for l, ((gW, gb), (A, D)) in enumerate(zip(per_sample_grads(model, X, y), signals.layers), 1):
        out[f"grad_W{l}"], out[f"grad_b{l}"] = gW, gb
        out[f"gram{l}"] = gram(A, D)
        grams.append(out[f"gram{l}"])
    m, tol = int(inputs["min_size"]), float(inputs["tol"])
    for l, K in enumerate(grams, 1):
        selections = {}
        for metric in map(str, inputs["metrics"]):
            for strategy in map(str, inputs["strategies"]):
                sel = select(K, metric, strategy, m, tol)
                for name, value in selection_fields(sel, K).items():
                    selections[selection_key(metric, strategy, l, name)] = np.asarray(value)
            out[f"full/L{l}/{metric}"] = np.asarray(sel.trace.full_value)     # the whole batch's statistics
        out[f"full/L{l}/T"], out[f"full/L{l}/Q"] = np.asarray(sel.trace.full_T), np.asarray(sel.trace.full_Q)
        out.update(selections)
    step = dict(metric=str(inputs["step_metric"]), strategy=str(inputs["step_strategy"]), min_size=m, tol=tol)
    bases = {"dba_sgd": sgd(float(inputs["sgd_learning_rate"])),
             "dba_adam": adam(float(inputs["adam_learning_rate"]), float(inputs["adam_beta1"]),
                              float(inputs["adam_beta2"]), float(inputs["adam_eps"]))}
    for name, base in bases.items():
        opt = dba(base, **step)
        updates, _ = opt.update(None, opt.init(model.params), model.params, signals=signals)
        for l, (W, b) in enumerate(apply_updates(model.params, updates), 1):
            out[f"{name}/W{l}"], out[f"{name}/b{l}"] = W, b
    return out


def min_margin(case_file) -> float:
    """The smallest decision margin of any selection in a case (``inf`` when it made no decision)."""
    margins = [np.asarray(v, np.float64) for k, v in case_file.items() if k.endswith("/margins")]
    return float(min((v.min() for v in margins if v.size), default=np.inf))

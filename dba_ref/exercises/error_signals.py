"""Exercise 2: the per-sample error signals ``[Δ_1, ..., Δ_L]`` of a ReLU MLP (spec §2).

The student writes ``error_signals(weights, biases, X, y)``; the reference is
:func:`dba_ref.backprop.backprop`. Mistakes named: a missing bias, a
transposed product, the mean instead of the per-sample signal, a missing
activation derivative, a flipped sign or a missing softmax or one-hot term,
an overflowing softmax.
"""
from __future__ import annotations

import numpy as np

from .._text import plural
from ..backprop import backprop
from ..model import MLP, softmax
from .definitions import Case, Exercise
from .differences import compare_arrays, is_shape_error, likely_cause, with_cause
from .tolerances import error_signal_tolerances


def model_from(weights, biases) -> MLP:
    model = MLP([weights[0].shape[1]] + [W.shape[0] for W in weights])
    model.set_params(zip(weights, biases))
    return model


def reference_error_signals(weights, biases, X, y) -> list:
    """``[Δ_1, ..., Δ_L]`` of a ReLU MLP with softmax cross-entropy (spec §2), via :func:`backprop`."""
    return list(backprop(model_from(weights, biases), X, y).deltas)


def random_network(rng, sizes, B, bias_scale=0.5):
    weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [bias_scale * rng.normal(size=o) for o in sizes[1:]]
    X = rng.normal(size=(B, sizes[0]))
    y = rng.integers(0, sizes[-1], size=B)
    return [weights, biases, X, y]


def network_case(name, args) -> Case:
    return Case(f"{name} (layer widths {[args[0][0].shape[1]] + [W.shape[0] for W in args[0]]}, "
                f"B = {args[2].shape[0]})", tuple(args))


def _error_signals_edges(rng) -> list:
    one = random_network(rng, [3, 4, 2], 1)
    softmax_regression = random_network(rng, [4, 3], 5)
    square = random_network(rng, [3, 4, 4, 4], 6)
    dead = random_network(rng, [3, 5, 3], 4)
    dead[1][0][[0, 2]] = -50.0                        # hidden units 0 and 2 never fire
    huge = random_network(rng, [3, 4, 3], 4)
    huge[1][1] = np.array([900.0, 0.0, -900.0])       # logits near ±900: exp overflows
    one_class = random_network(rng, [3, 3, 2], 5)
    one_class[3][:] = 1
    return [network_case("one sample", one),
            network_case("no hidden layer (softmax regression, L = 1)", softmax_regression),
            network_case("two hidden layers, W_2 and W_3 square (a transposed product has the right shape)",
                          square),
            network_case("dead ReLU units (hidden units 0 and 2 are never active)", dead),
            network_case("huge logits (a naive softmax overflows)", huge),
            network_case("every sample of the same class", one_class)]


def _error_signals_random(rng) -> Case:
    hidden = [int(w) for w in rng.integers(1, 7, size=int(rng.integers(0, 3)))]
    sizes = [int(rng.integers(1, 7)), *hidden, int(rng.integers(2, 6))]
    return network_case("random network", random_network(rng, sizes, int(rng.integers(1, 9))))


def _grade_error_signals(got, expected, case) -> str | None:
    weights, biases, X, y = case.args
    L, B = len(expected), X.shape[0]
    want = f"return a list [Δ_1, ..., Δ_{L}], one array of shape (B, out_l) per layer"
    if not isinstance(got, (list, tuple)):
        return f"{want}; you returned {type(got).__name__}" + (" (a list even when L = 1)" if L == 1 else "")
    if len(got) != L:
        return (f"the network has L = {plural(L, 'layer')} but you returned {plural(len(got), 'array')}: "
                f"{want}, in layer order")
    model = model_from(weights, biases)
    pre, _ = model.forward_all(X)
    onehot = np.eye(model.n_classes)[y]
    tolerances = error_signal_tolerances(weights, biases, X)
    # The error flows backwards: the highest wrong layer is where the mistake is.
    for l in range(L - 1, -1, -1):
        name = f"Δ_{l + 1}"
        problem, arr = compare_arrays(got[l], expected[l], name, tolerances[l], ("sample", "unit"))
        if problem is None:
            continue
        if arr is None:
            return problem
        if arr.shape != expected[l].shape:
            return problem + f": one row per sample and one column per unit of layer {l + 1}, (B, out_{l + 1})"
        if np.isnan(arr).any():
            return with_cause(problem, "NaN appeared: exp of a large logit overflowed. Subtract each row's "
                                        "maximum from Z_L before the softmax (it does not change the result)")
        wrong = [(expected[l] / B, "you divided by B: Δ is the error signal of each sample's own loss "
                                   "(backpropagate the sum of per-sample losses, not their mean)"),
                 (lambda: reference_error_signals(weights, [np.zeros_like(b) for b in biases], X, y)[l],
                  "the biases are missing from the forward pass: Z_l = A_{l-1} W_lᵀ + b_l")]
        if l == L - 1:
            wrong += [(-expected[l], "the sign is flipped: Δ_L = softmax(Z_L) − onehot(y)"),
                      (softmax(pre[l]), "you forgot to subtract onehot(y): Δ_L = softmax(Z_L) − onehot(y)"),
                      (pre[l] - onehot, "Δ_L needs the softmax of the logits: softmax(Z_L) − onehot(y)")]
        else:
            W_next = weights[l + 1]
            wrong += [(expected[l + 1] @ W_next,
                       "the derivative of the activation is missing: multiply by φ'(Z_l) = (Z_l > 0) elementwise"),
                      ((lambda: (expected[l + 1] @ W_next.T) * (pre[l] > 0)) if W_next.shape[0] == W_next.shape[1]
                       else None,
                       "a transposed product: Δ_l = (Δ_{l+1} W_{l+1}) ⊙ φ'(Z_l) with W_{l+1} of shape "
                       "(out_{l+1}, out_l); you used W_{l+1}ᵀ")]
        return with_cause(problem, likely_cause(arr, wrong, tolerances[l]))
    return None


def _explain_error_signals_error(error, case) -> str | None:
    if not is_shape_error(error):
        return None
    weights = case.args[0]
    shapes = ", ".join(f"W_{l + 1} {W.shape}" for l, W in enumerate(weights))
    return (f"a shape mismatch, often a transposed product. Here X is {case.args[2].shape} and {shapes}. "
            "Forward: Z_l = A_{l-1} @ W_l.T + b_l; backward: Δ_l = (Δ_{l+1} @ W_{l+1}) * φ'(Z_l), "
            "(B, out_{l+1}) @ (out_{l+1}, out_l)")


EXERCISE = Exercise(2, "error_signals", "the per-sample error signals",
                    (("error_signals", ("weights", "biases", "X", "y")),), reference_error_signals,
                    _error_signals_edges, _error_signals_random, _grade_error_signals, _explain_error_signals_error,
                    reads_first="01_per_sample_backprop.ipynb", minutes=45, builds_on=(1,))

"""Exercise 1: the forward pass, the softmax cross-entropy and its gradient, and central differences (spec §2).

The student writes four functions: ``forward(weights, biases, X)`` (the
logits of a ReLU MLP; reference :meth:`dba_ref.MLP.forward_all`),
``cross_entropy(Z, y)`` (per-sample losses; :func:`dba_ref.model.cross_entropy`),
``cross_entropy_grad(Z, y)`` (``softmax(Z) − onehot(y)``, the row i being
``∂ℓ_i/∂Z_i``) and ``numerical_gradient(f, Z, h)`` (central differences of a
scalar function, graded on test functions whose gradient is known). Mistakes
named: a missing bias, a ReLU on the logits, a missing ReLU, a transposed
product; the mean loss instead of per-sample losses, an overflowing softmax,
a flipped sign, the softmax over the wrong axis; the gradient divided by B or
missing the one-hot term; a forward difference, a division by h instead of
2h, all entries perturbed at once.
"""
from __future__ import annotations

import numpy as np

from ..agreement import rounding_tolerance
from ..model import cross_entropy, softmax
from .definitions import Case, Exercise
from .differences import as_float_array, compare_arrays, describe_difference, is_shape_error, likely_cause, with_cause
from .error_signals import model_from, random_network
from .harness import TEST_FUNCTIONS
from .tolerances import logits_tolerance, softmax_scale

FUNCTIONS = (("forward", ("weights", "biases", "X")), ("cross_entropy", ("Z", "y")),
             ("cross_entropy_grad", ("Z", "y")), ("numerical_gradient", ("f", "Z", "h")))


def reference_forward(weights, biases, X) -> np.ndarray:
    """The logits ``Z_L`` of a ReLU MLP."""
    return model_from(weights, biases).forward_all(np.asarray(X, np.float64))[0][-1]


def reference_cross_entropy_grad(Z, y) -> np.ndarray:
    """``softmax(Z) − onehot(y)``, shape (B, C): row i is the gradient of ℓ_i with respect to Z_i."""
    Z = np.asarray(Z, np.float64)
    return softmax(Z) - np.eye(Z.shape[1])[y]


def reference_numerical_gradient(name, Z, h) -> np.ndarray:
    """The exact gradient of the test function ``name`` at ``Z``, which central differences approximate."""
    return TEST_FUNCTIONS[name][1](np.asarray(Z, np.float64))


def _network(name, rng, sizes, B, bias_scale=0.5) -> Case:
    weights, biases, X, _ = random_network(rng, sizes, B, bias_scale)
    return Case(f"forward: {name} (layer widths {sizes}, B = {B})", (weights, biases, X), "forward")


def _logits(name, Z, y) -> list:
    Z, y = np.asarray(Z, np.float64), np.asarray(y, np.int64)
    return [Case(f"{f}: {name} (B = {Z.shape[0]}, C = {Z.shape[1]})", (Z, y), f)
            for f in ("cross_entropy", "cross_entropy_grad")]


def _difference(name, f, Z, h) -> Case:
    return Case(f"numerical_gradient: {name} (f = {f}, Z of shape {np.shape(Z)}, h = {h:g})",
                (f, np.asarray(Z, np.float64), h),
                "numerical_gradient", "finite_difference")


def _edges(rng) -> list:
    square = _network("two hidden layers, W_2 and W_3 square (a transposed product has the right shape)", rng,
                      [3, 4, 4, 4], 5)
    dead = _network("dead ReLU units (hidden units 0 and 2 never fire)", rng, [3, 5, 3], 4)
    dead.args[1][0][[0, 2]] = -50.0
    negative = _network("a hidden layer whose units are all negative for the first sample", rng, [2, 3, 2], 3)
    negative.args[2][0] = [-5.0, -5.0]
    negative.args[0][0][:] = np.abs(negative.args[0][0])
    y3 = rng.integers(0, 3, size=4)
    huge = rng.normal(size=(4, 3)) + np.array([900.0, 0.0, -900.0])
    return [_network("one sample", rng, [3, 4, 2], 1),
            _network("no hidden layer (softmax regression)", rng, [4, 3], 5),
            square, dead, negative,
            *_logits("huge logits (exp overflows unless the row maximum is subtracted)", huge, y3),
            *_logits("every logit equal (each loss is log C)", np.zeros((3, 4)), [0, 1, 3]),
            *_logits("one sample, two classes", rng.normal(size=(1, 2)), [1]),
            *_logits("confident and right (losses near 0)", 30.0 * np.eye(3), [0, 1, 2]),
            _difference("a cubic", "cubic", rng.normal(size=(3, 4)), 1e-5),
            _difference("log-sum-exp over every entry", "logsumexp", rng.normal(size=(2, 5)), 1e-4),
            _difference("one entry", "cubic", [[1.5]], 1e-6)]


def _random(rng) -> Case:
    kind = int(rng.integers(4))
    if kind == 0:
        hidden = [int(w) for w in rng.integers(1, 7, size=int(rng.integers(0, 3)))]
        sizes = [int(rng.integers(1, 7)), *hidden, int(rng.integers(2, 6))]
        return _network("random network", rng, sizes, int(rng.integers(1, 9)))
    if kind in (1, 2):
        B, C = int(rng.integers(1, 9)), int(rng.integers(2, 7))
        return _logits("random logits", rng.uniform(1, 10) * rng.normal(size=(B, C)), rng.integers(0, C, size=B))[
            kind - 1]
    name = ("cubic", "logsumexp")[int(rng.integers(2))]
    return _difference("random point", name, rng.normal(size=(int(rng.integers(1, 5)), int(rng.integers(1, 6)))),
                       float(10.0 ** -rng.integers(4, 7)))


# --------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------
def _grade_forward(got, expected, case) -> str | None:
    weights, biases, X = case.args
    tolerance = logits_tolerance(weights, biases, X)
    problem, arr = compare_arrays(got, expected, "Z_L", tolerance, ("sample", "class"))
    if problem is None:
        return None
    if arr is None:
        return problem
    if arr.shape != expected.shape:
        return problem + ": one row per sample, one column per class, (B, out_L)"
    L = len(weights)

    def forward(bias=True, relu=True, last_relu=False, transpose=False):
        A = np.asarray(X, np.float64)
        for l, (W, b) in enumerate(zip(weights, biases)):
            Z = A @ (W if transpose else W.T) + (b if bias else 0.0)
            A = np.maximum(Z, 0.0) if relu and (l < L - 1 or last_relu) else Z
        return A

    square = all(W.shape[0] == W.shape[1] for W in weights)
    wrong = [(lambda: forward(bias=False), "the biases are missing: Z_l = A_{l-1} W_lᵀ + b_l"),
             (lambda: forward(last_relu=True), "a ReLU on the last layer: the logits Z_L are not passed through "
                                               "the activation, only the hidden layers are"),
             ((lambda: forward(relu=False)) if L > 1 else None,
              "the ReLU between layers is missing: A_l = max(Z_l, 0) for l < L"),
             ((lambda: forward(transpose=True)) if square else None,
              "a transposed product: W_l has shape (out_l, in_l), so Z_l = A_{l-1} @ W_l.T")]
    return with_cause(problem, likely_cause(arr, wrong, tolerance))


def _loss_tolerance(Z):
    return rounding_tolerance(softmax_scale(Z), np.shape(Z)[1] + 2)


def _grade_cross_entropy(got, expected, case) -> str | None:
    Z, y = case.args
    B = Z.shape[0]
    arr, problem = as_float_array(got, "your losses")
    if problem:
        return problem
    if arr.shape != expected.shape:
        if arr.ndim == 0 and B > 1:
            cause = ("you returned one number, maybe their mean: return one loss per sample, "
                     "ℓ_i = −log softmax(Z_i)[y_i], shape (B,)")
            if np.isfinite(arr) and abs(float(arr) - float(expected.mean())) <= float(_loss_tolerance(Z).max()):
                return f"the losses have shape (), expected ({B},).\nLikely cause: {cause}"
            return f"the losses have shape (), expected ({B},): {cause}"
        return f"the losses have shape {arr.shape}, expected ({B},): one loss per sample"
    tolerance = _loss_tolerance(Z)[:, 0]
    problem = describe_difference(arr, expected, "ℓ", tolerance, ("sample",))
    if problem is None:
        return None
    if not np.isfinite(arr).all():
        return with_cause(problem, "exp overflowed: compute log softmax(z) = z − max z − log Σ exp(z − max z) "
                                   "(log-sum-exp with the row maximum subtracted), never log(exp(z) / Σ exp(z))")
    wrong = [(-expected, "the sign is flipped: ℓ_i = −log p_i[y_i] is at least 0"),
             (lambda: -np.log(np.exp(Z - Z.max(axis=0)) / np.exp(Z - Z.max(axis=0)).sum(axis=0))[np.arange(B), y],
              "the softmax is taken over the wrong axis (over samples, axis=0): normalise each row, axis=1"),
             (lambda: -(Z - Z.max(axis=1, keepdims=True))[np.arange(B), y],
              "the log Σ exp term is missing: log softmax(z) = z − log Σ_c exp(z_c)")]
    return with_cause(problem, likely_cause(arr, wrong, tolerance))


def _grade_cross_entropy_grad(got, expected, case) -> str | None:
    Z, y = case.args
    B, C = Z.shape
    tolerance = rounding_tolerance(softmax_scale(Z), C + 1)
    problem, arr = compare_arrays(got, expected, "∂ℓ/∂Z", tolerance, ("sample", "class"))
    if problem is None:
        return None
    if arr is None or arr.shape != expected.shape:
        return problem + f": one row per sample, one column per class, ({B}, {C})" if arr is not None else problem
    if not np.isfinite(arr).all():
        return with_cause(problem, "exp overflowed: subtract each row's maximum from Z before the softmax")
    onehot = np.eye(C)[y]
    wrong = [(expected / B, "you divided by B: row i is the gradient of sample i's own loss ℓ_i, not of the mean"),
             (-expected, "the sign is flipped: ∂ℓ_i/∂Z_i = softmax(Z_i) − onehot(y_i)"),
             (expected + onehot, "you forgot to subtract onehot(y): ∂ℓ_i/∂Z_i = softmax(Z_i) − onehot(y_i)"),
             (lambda: np.exp(Z - Z.max(axis=0)) / np.exp(Z - Z.max(axis=0)).sum(axis=0) - onehot,
              "the softmax is taken over the wrong axis (over samples, axis=0): normalise each row, axis=1")]
    return with_cause(problem, likely_cause(arr, wrong, tolerance))


def central_difference_tolerance(name, Z, h) -> np.ndarray:
    """How far central differences of test function ``name`` may lie from its gradient: each evaluation of f
    rounds by ``rounding_tolerance(f's terms, Z.size)``, which the quotient divides by h, and truncation adds
    ``h²·|f‴|/6`` (bounded per function in :data:`~dba_ref.exercises.harness.TEST_FUNCTIONS`)."""
    Z = np.asarray(Z, np.float64)
    reach = np.abs(Z).max(initial=0.0) + h
    terms = Z.size * reach ** 3 / 3.0 if name == "cubic" else 1.0 + 2.0 * reach
    return rounding_tolerance(terms, Z.size + 2) / h + TEST_FUNCTIONS[name][2] * h * h


def _grade_numerical_gradient(got, expected, case) -> str | None:
    name, Z, h = case.args
    f = TEST_FUNCTIONS[name][0]
    tolerance = central_difference_tolerance(name, Z, h)
    problem, arr = compare_arrays(got, expected, "your gradient", tolerance, ("row", "column"))
    if problem is None:
        return None
    if arr is None or arr.shape != expected.shape:
        return (problem + ": one partial derivative per entry of Z, the same shape as Z") if arr is not None \
            else problem

    def differences(step, forward_only=False):
        out = np.empty_like(Z)
        for idx in np.ndindex(Z.shape):
            plus, minus = Z.copy(), Z.copy()
            plus[idx] += step
            minus[idx] -= 0.0 if forward_only else step
            out[idx] = (f(plus) - f(minus)) / (step if forward_only else 2 * step)
        return out

    wrong = [(lambda: differences(h, forward_only=True),
              "a forward difference, (f(Z + h) − f(Z)) / h: its error is of order h. The central difference "
              "(f(Z + h e_j) − f(Z − h e_j)) / 2h is of order h²"),
             (2.0 * expected, "you divided by h instead of 2h: the two evaluations are 2h apart"),
             (np.full_like(expected, expected.sum()),
              "you perturbed every entry at once: move one entry at a time, f(Z + h e_j) with e_j the j-th unit "
              "array, so each entry gets its own partial derivative")]
    # A mistake's answer is matched within its own truncation: up to Z.size times the tolerance (the all-ones
    # direction's third derivative adds up over the entries), with a factor 2 for the two computations.
    return with_cause(problem, likely_cause(arr, wrong, 2.0 * Z.size * tolerance))


_GRADERS = {"forward": _grade_forward, "cross_entropy": _grade_cross_entropy,
            "cross_entropy_grad": _grade_cross_entropy_grad, "numerical_gradient": _grade_numerical_gradient}


def _grade(got, expected, case) -> str | None:
    return _GRADERS[case.function](got, expected, case)


def _explain(error, case) -> str | None:
    if case.function == "forward" and is_shape_error(error):
        weights, _, X = case.args
        shapes = ", ".join(f"W_{l + 1} {W.shape}" for l, W in enumerate(weights))
        return (f"a shape mismatch, often a transposed product. Here X is {X.shape} and {shapes}: "
                "Z_l = A_{l-1} @ W_l.T + b_l")
    if case.function == "numerical_gradient" and error.kind == "TypeError" and "float" in error.message:
        return "f takes the whole array Z and returns one float: call f(Z_plus), not f on one entry"
    return None


EXERCISE = Exercise(1, "forward_loss", "the forward pass, the loss and its gradient", FUNCTIONS,
                    {"forward": reference_forward, "cross_entropy": cross_entropy,
                     "cross_entropy_grad": reference_cross_entropy_grad,
                     "numerical_gradient": reference_numerical_gradient},
                    _edges, _random, _grade, _explain, reads_first="01_per_sample_backprop.ipynb", minutes=45)

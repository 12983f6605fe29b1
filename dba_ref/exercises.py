"""Classroom exercises and their autograder.

Each exercise asks a student for one function; the stubs, with the task and
hints, are in ``tutorials/exercises/``. The reference answers are the
package's own functions:

==  ======================  =======================================  ====================================
N   topic                   the student writes                       reference
==  ======================  =======================================  ====================================
1   per-sample error        ``error_signals(weights, biases, X, y)``  :func:`dba_ref.backprop.backprop`
    signals                 ``-> [Δ_1, ..., Δ_L]``
2   the Gram identity       ``gram(A, D) -> K``                       :func:`dba_ref.gram.gram`
3   a metric from T, Q, k   ``mean_variance(T, Q, k)``                :func:`dba_ref.metrics.mean_variance`
4   the greedy search       ``greedy_removals(K, min_size)``          :func:`dba_ref.search.greedy_path`
==  ======================  =======================================  ====================================

:func:`check` runs a student's function on fixed edge cases and on fresh
random cases, compares every answer with the reference and returns a
:class:`Report` that says, in words, what is wrong: the shape, which entry and
by how much, and, where the answer matches a common mistake (a transposed
product, a missing bias term, an off-by-one in the greedy stop, the unbiased
variance instead of the biased one, ...), which mistake::

    >>> from dba_ref.exercises import check
    >>> from dba_ref.gram import gram
    >>> check(2, gram, seed=0).passed
    True

From a shell, ``dba-ref exercises check 2 my_gram.py`` loads the function from
a ``.py`` file or a notebook (:func:`load_student_function`) and prints the
same report. Loading a file runs it: grade only files you are willing to run.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .backprop import backprop
from .gram import gram as _gram
from .metrics import Q_EPS, mean_variance as _mean_variance, metric_value, subset_stats, variance
from .model import MLP, softmax
from .agreement import greedy_margins
from .search import greedy_path

#: Default number of random cases per check (the edge cases come on top).
N_RANDOM = 20
#: Tolerances: an entry is right when ``|got − expected| <= ATOL_SCALE * scale + RTOL * |expected|``,
#: ``scale`` being the largest expected magnitude (at least 1).
RTOL = 1e-8
ATOL_SCALE = 1e-10


# --------------------------------------------------------------------------
# Cases, exercises, reports
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One set of inputs: ``name`` says in words what is special about it."""

    name: str
    args: tuple


@dataclass(frozen=True)
class Exercise:
    """An exercise: the function a student writes, its reference and how answers are judged.

    ``grade(got, expected, case)`` returns ``None`` for a right answer, else
    the explanation shown to the student.
    """

    number: int
    function: str                 # the name the student's function must have
    params: tuple                 # its parameter names
    title: str
    stub: str                     # path of the stub, relative to the repository root
    reference: Callable
    edge_cases: Callable[[np.random.Generator], list]
    random_case: Callable[[np.random.Generator], Case]
    grade: Callable[[Any, Any, Case], str | None]
    explain_error: Callable[[Exception, Case], str | None] | None = None    # a hint for an exception

    @property
    def signature(self) -> str:
        return f"{self.function}({', '.join(self.params)})"


@dataclass(frozen=True)
class Failure:
    case: Case
    message: str


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`check`; ``str(report)`` is the text shown to the student."""

    exercise: Exercise
    seed: int
    n_edge: int
    n_random: int
    failures: tuple = ()
    not_attempted: bool = False

    @property
    def n_cases(self) -> int:
        return self.n_edge + self.n_random

    @property
    def passed(self) -> bool:
        return not self.not_attempted and not self.failures

    def text(self) -> str:
        ex = self.exercise
        head = f"Exercise {ex.number} · {ex.title} · {ex.signature}"
        if self.not_attempted:
            return (f"{head}\nNOT ATTEMPTED: {ex.function} still raises NotImplementedError; "
                    f"replace the `raise` in the stub with your code.")
        if self.passed:
            return (f"{head}\nPASSED all {self.n_cases} cases ({self.n_edge} edge cases + "
                    f"{self.n_random} random, seed {self.seed}).")
        first = self.failures[0]
        lines = [head,
                 f"FAILED {len(self.failures)} of {self.n_cases} cases (seed {self.seed}). The first failure:",
                 f"  case: {first.case.name}",
                 f"  inputs: {_describe_inputs(ex.params, first.case.args)}"]
        lines += ["  " + line for line in first.message.splitlines()]
        others = [f.case.name for f in self.failures[1:6]]
        if others:
            more = len(self.failures) - 1 - len(others)
            lines.append("Also failing: " + "; ".join(others) + (f"; and {more} more" if more else "") + ".")
        lines.append(f"Re-run these exact cases with check({ex.number}, {ex.function}, seed={self.seed}), "
                     f"or --seed {self.seed} on the command line.")
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return self.text()


def _describe_inputs(names, args) -> str:
    parts = []
    for name, value in zip(names, args):
        if isinstance(value, np.ndarray):
            parts.append(f"{name} {value.shape}" if value.ndim else f"{name} = {value.item()!r}")
        elif isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value):
            parts.append(f"{name} [{', '.join(str(v.shape) for v in value)}]")
        else:
            parts.append(f"{name} = {value!r}")
    return ", ".join(parts)


def _fmt(x) -> str:
    return f"{float(x):.6g}"


def _where_raised(exc: BaseException) -> str:
    """``' (in f, line N: code)'``: the last frame outside this module and outside NumPy, the student's line."""
    skip = (str(Path(__file__).resolve()), str(Path(np.__file__).resolve().parent))
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not str(Path(f.filename).resolve()).startswith(skip)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (in {f.name}, line {f.lineno}: {f.line})" if f.line else f" (in {f.name}, line {f.lineno})"


def _same_inputs(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same_inputs(x, y) for x, y in zip(a, b))
    return a == b


def check(exercise, function: Callable, seed: int | None = None, n_random: int = N_RANDOM) -> Report:
    """Grade ``function`` for ``exercise`` (its number, or the function name it asks for).

    The edge cases are fixed in kind; their numbers and the random cases are
    drawn from ``seed`` (a fresh one when ``None``; the report says which, so
    a failure can be reproduced). Each call gets its own copies of the inputs;
    modifying them in place is reported as a mistake.
    """
    ex = get_exercise(exercise)
    if not callable(function):
        raise TypeError(f"give the function itself, e.g. check({ex.number}, {ex.function}); "
                        f"got {type(function).__name__}")
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 0:
        raise ValueError(f"n_random must be an integer >= 0, got {n_random!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 1_000_000)
    rng = np.random.default_rng(seed)
    edge = ex.edge_cases(rng)
    cases = edge + [ex.random_case(rng) for _ in range(n_random)]
    failures = []
    for case in cases:
        args = copy.deepcopy(case.args)
        try:
            got = function(*args)
        except NotImplementedError:
            return Report(ex, seed, len(edge), n_random, not_attempted=True)
        except Exception as exc:  # noqa: BLE001 — any error in student code is a finding to report
            message = f"your function raised {type(exc).__name__}: {exc}{_where_raised(exc)}"
            hint = ex.explain_error(exc, case) if ex.explain_error else None
            failures.append(Failure(case, _with_cause(message, hint)))
            continue
        changed = [name for name, a, b in zip(ex.params, case.args, args) if not _same_inputs(a, b)]
        if changed:
            failures.append(Failure(case, f"your function modified its input {', '.join(changed)} in place; "
                                          "work on a copy (the caller still needs it)."))
            continue
        message = ex.grade(got, ex.reference(*copy.deepcopy(case.args)), case)
        if message:
            failures.append(Failure(case, message))
    return Report(ex, seed, len(edge), n_random, tuple(failures))


# --------------------------------------------------------------------------
# Comparing arrays in words
# --------------------------------------------------------------------------
def _as_float_array(got, what: str):
    """``(array, None)`` or ``(None, message)`` when ``got`` is not a real numeric array."""
    if got is None:
        return None, f"{what}: your function returned None; did you forget the `return`?"
    try:
        arr = np.asarray(got)
    except Exception:  # noqa: BLE001 — ragged lists and the like
        return None, f"{what}: cannot read your answer as an array (got {type(got).__name__})"
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        return None, f"{what}: expected numbers, got {type(got).__name__} of dtype {arr.dtype}"
    if np.issubdtype(arr.dtype, np.complexfloating):
        return None, f"{what}: expected real numbers, got complex ones"
    return arr.astype(np.float64), None


def _mismatch(got: np.ndarray, expected: np.ndarray):
    """Boolean mask of the wrong entries (shapes equal); infinities and NaN must match exactly."""
    finite = np.isfinite(expected)
    scale = max(1.0, float(np.max(np.abs(expected[finite]), initial=0.0)))
    with np.errstate(invalid="ignore"):
        close = np.abs(got - expected) <= ATOL_SCALE * scale + RTOL * np.abs(expected)
    same_special = (got == expected) | (np.isnan(got) & np.isnan(expected))
    return ~np.where(finite, close & np.isfinite(got), same_special)


def close_to(got: np.ndarray, candidate: np.ndarray) -> bool:
    """Whether ``got`` equals ``candidate`` within the grading tolerance (used to name mistakes)."""
    candidate = np.asarray(candidate, np.float64)
    return got.shape == candidate.shape and not _mismatch(got, candidate).any()


def describe_difference(got, expected, name: str, axes=()) -> str | None:
    """``None`` when ``got`` equals ``expected`` to tolerance, else a sentence saying what differs.

    ``axes`` names what each index means, e.g. ``("sample", "unit")``.
    """
    arr, problem = _as_float_array(got, name)
    if problem:
        return problem
    expected = np.asarray(expected, np.float64)
    if arr.shape != expected.shape:
        return f"{name} has shape {arr.shape}, expected {expected.shape}"
    bad = _mismatch(arr, expected)
    if not bad.any():
        return None
    err = np.where(bad, np.abs(np.nan_to_num(arr - expected, nan=np.inf, posinf=np.inf, neginf=np.inf)), -1.0)
    worst = np.unravel_index(int(np.argmax(err)), arr.shape)
    at = f"{name}[{', '.join(str(i) for i in worst)}]" if worst else name
    meaning = ", ".join(f"{a} {i}" for a, i in zip(axes, worst))
    g, e = arr[worst], expected[worst]
    sentence = f"{at}{f' ({meaning})' if meaning else ''} is {_fmt(g)}, expected {_fmt(e)}"
    if np.isfinite(g) and np.isfinite(e):
        sentence += f" (off by {float(g - e):+.3g})"
    if arr.size > 1:
        sentence += f"; {int(bad.sum())} of {arr.size} entries are wrong"
    if np.asarray(got).dtype == np.float32:
        sentence += ". Your answer is float32: compute in float64"
    return sentence


def _first_cause(got: np.ndarray, candidates) -> str | None:
    """The explanation of the first ``(wrong_answer, explanation)`` that ``got`` matches."""
    for candidate, explanation in candidates:
        with np.errstate(all="ignore"):
            value = candidate() if callable(candidate) else candidate
        if value is not None and close_to(got, value):
            return explanation
    return None


def _with_cause(message: str, cause: str | None) -> str:
    return message if not cause else f"{message}.\nLikely cause: {cause}"


# --------------------------------------------------------------------------
# Exercise 1: the per-sample error signals
# --------------------------------------------------------------------------
def _model_from(weights, biases) -> MLP:
    model = MLP([weights[0].shape[1]] + [W.shape[0] for W in weights])
    model.set_params(zip(weights, biases))
    return model


def reference_error_signals(weights, biases, X, y) -> list:
    """``[Δ_1, ..., Δ_L]`` of a ReLU MLP with softmax cross-entropy (spec §2), via :func:`backprop`."""
    return list(backprop(_model_from(weights, biases), X, y).deltas)


def _random_network(rng, sizes, B, bias_scale=0.5):
    weights = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [bias_scale * rng.normal(size=o) for o in sizes[1:]]
    X = rng.normal(size=(B, sizes[0]))
    y = rng.integers(0, sizes[-1], size=B)
    return [weights, biases, X, y]


def _network_case(name, args) -> Case:
    return Case(f"{name} (layer widths {[args[0][0].shape[1]] + [W.shape[0] for W in args[0]]}, "
                f"B = {args[2].shape[0]})", tuple(args))


def _error_signals_edges(rng) -> list:
    one = _random_network(rng, [3, 4, 2], 1)
    softmax_regression = _random_network(rng, [4, 3], 5)
    square = _random_network(rng, [3, 4, 4, 4], 6)
    dead = _random_network(rng, [3, 5, 3], 4)
    dead[1][0][[0, 2]] = -50.0                        # hidden units 0 and 2 never fire
    huge = _random_network(rng, [3, 4, 3], 4)
    huge[1][1] = np.array([900.0, 0.0, -900.0])       # logits near ±900: exp overflows
    one_class = _random_network(rng, [3, 3, 2], 5)
    one_class[3][:] = 1
    return [_network_case("one sample", one),
            _network_case("no hidden layer (softmax regression, L = 1)", softmax_regression),
            _network_case("two hidden layers, W_2 and W_3 square (a transposed product has the right shape)",
                          square),
            _network_case("dead ReLU units (hidden units 0 and 2 are never active)", dead),
            _network_case("huge logits (a naive softmax overflows)", huge),
            _network_case("every sample of the same class", one_class)]


def _error_signals_random(rng) -> Case:
    hidden = [int(w) for w in rng.integers(1, 7, size=int(rng.integers(0, 3)))]
    sizes = [int(rng.integers(1, 7)), *hidden, int(rng.integers(2, 6))]
    return _network_case("random network", _random_network(rng, sizes, int(rng.integers(1, 9))))


def _grade_error_signals(got, expected, case) -> str | None:
    weights, biases, X, y = case.args
    L, B = len(expected), X.shape[0]
    want = f"return a list [Δ_1, ..., Δ_{L}], one array of shape (B, out_l) per layer"
    if not isinstance(got, (list, tuple)):
        return f"{want}; you returned {type(got).__name__}" + (" (a list even when L = 1)" if L == 1 else "")
    if len(got) != L:
        return f"the network has L = {L} layer(s) but you returned {len(got)} array(s): {want}, in layer order"
    model = _model_from(weights, biases)
    pre, _ = model.forward_all(X)
    onehot = np.eye(model.n_classes)[y]
    # The error flows backwards: the highest wrong layer is where the mistake is.
    for l in range(L - 1, -1, -1):
        name = f"Δ_{l + 1}"
        problem = describe_difference(got[l], expected[l], name, ("sample", "unit"))
        if problem is None:
            continue
        arr, _ = _as_float_array(got[l], name)
        if arr is None:
            return problem
        if arr.shape != expected[l].shape:
            return problem + f": one row per sample and one column per unit of layer {l + 1}, (B, out_{l + 1})"
        if np.isnan(arr).any():
            return _with_cause(problem, "NaN appeared: exp of a large logit overflowed. Subtract each row's "
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
        return _with_cause(problem, _first_cause(arr, wrong))
    return None


def _is_shape_error(exc) -> bool:
    text = str(exc)
    return isinstance(exc, ValueError) and any(w in text for w in ("mismatch", "broadcast", "shapes", "aligned"))


def _explain_error_signals_error(exc, case) -> str | None:
    if not _is_shape_error(exc):
        return None
    weights = case.args[0]
    shapes = ", ".join(f"W_{l + 1} {W.shape}" for l, W in enumerate(weights))
    return (f"a shape mismatch, often a transposed product. Here X is {case.args[2].shape} and {shapes}. "
            "Forward: Z_l = A_{l-1} @ W_l.T + b_l; backward: Δ_l = (Δ_{l+1} @ W_{l+1}) * φ'(Z_l), "
            "(B, out_{l+1}) @ (out_{l+1}, out_l)")


# --------------------------------------------------------------------------
# Exercise 2: the Gram identity
# --------------------------------------------------------------------------
def _gram_case(name, rng, B, n_in, n_out) -> Case:
    return Case(f"{name} (B = {B}, in = {n_in}, out = {n_out})",
                (rng.normal(size=(B, n_in)), rng.normal(size=(B, n_out))))


def _gram_edges(rng) -> list:
    zero_row = _gram_case("sample 2 has a zero error signal", rng, 5, 3, 2)
    zero_row.args[1][2] = 0.0
    zero_inputs = _gram_case("all inputs are zero (only the bias term is left)", rng, 4, 3, 2)
    zero_inputs.args[0][:] = 0.0
    return [_gram_case("one sample", rng, 1, 3, 2),
            _gram_case("square: B = in = out (a transposed product has the right shape)", rng, 4, 4, 4),
            zero_row, zero_inputs,
            _gram_case("one input and one output", rng, 3, 1, 1),
            _gram_case("a bigger layer", rng, 40, 30, 10)]


def _gram_random(rng) -> Case:
    return _gram_case("random layer", rng, int(rng.integers(1, 11)), int(rng.integers(1, 9)), int(rng.integers(1, 7)))


def _grade_gram(got, expected, case) -> str | None:
    A, D = case.args
    B = A.shape[0]
    problem = describe_difference(got, expected, "K", ("sample", "sample"))
    if problem is None:
        return None
    arr, _ = _as_float_array(got, "K")
    if arr is None:
        return problem
    if arr.shape != expected.shape:
        if arr.shape in ((D.shape[1], D.shape[1]), (A.shape[1], A.shape[1])):
            return (f"{problem}: K has one entry per pair of samples, (B, B) = ({B}, {B}). "
                    "You built Dᵀ D or Aᵀ A (a transposed product); use D @ D.T and A @ A.T")
        return f"{problem}: K has one entry per pair of samples, (B, B) = ({B}, {B})"
    DD, AA = D @ D.T, A @ A.T
    wrong = [(DD * AA,
              "the bias term is missing: K = (D Dᵀ) ⊙ (A Aᵀ + 1); the + 1 is the bias, a constant input"),
             (DD @ (AA + 1), "a matrix product where the identity has an elementwise one: "
                             "K = (D Dᵀ) ⊙ (A Aᵀ + 1), i.e. (D @ D.T) * (A @ A.T + 1)"),
             ((DD + 1) * AA, "the + 1 belongs to the input factor: K = (D Dᵀ) ⊙ (A Aᵀ + 1)"),
             (DD * AA + 1, "the + 1 goes inside the input factor, before the elementwise product: "
                           "K = (D Dᵀ) ⊙ (A Aᵀ + 1)"),
             ((lambda: (D.T @ D) * (A.T @ A + 1)) if A.shape == D.shape == (B, B) else None,
              "a transposed product: D.T @ D and A.T @ A sum over samples; K needs D @ D.T and A @ A.T")]
    return _with_cause(problem, _first_cause(arr, wrong))


def _explain_gram_error(exc, case) -> str | None:
    if not _is_shape_error(exc):
        return None
    A, D = case.args
    B, n_in, n_out = A.shape[0], A.shape[1], D.shape[1]
    return (f"a shape mismatch. A is (B, in) = {A.shape} and D is (B, out) = {D.shape}; D @ D.T and A @ A.T are "
            f"both (B, B) = ({B}, {B}), while D.T @ D is ({n_out}, {n_out}) and A.T @ A is ({n_in}, {n_in}) "
            "(a transposed product)")


# --------------------------------------------------------------------------
# Exercise 3: a metric from the statistics T, Q, k
# --------------------------------------------------------------------------
def _stats_of_subsets(rng, B, P, n):
    """``(T, Q, k)`` arrays of ``n`` random subsets of a random batch of B gradients in R^P."""
    G = rng.normal(size=(B, P)) + rng.normal(size=P)
    K = G @ G.T
    stats = [subset_stats(K, np.sort(rng.choice(B, size=int(rng.integers(1, B + 1)), replace=False)))
             for _ in range(n)]
    T, Q, k = (np.array(column) for column in zip(*stats))
    return T, Q, k.astype(np.int64)


def _metric_edges(rng) -> list:
    T, Q, k = _stats_of_subsets(rng, 8, 3, 30)
    T1, Q1, _ = _stats_of_subsets(rng, 6, 4, 10)
    return [Case("one sample (k = 1, so T = Q), Python scalars", (2.5, 2.5, 1)),
            Case("identical gradients (T/Q = 1/k), Python scalars", (10.0, 40.0, 4)),
            Case("two opposite gradients cancel (Q = 0), Python scalars", (2.0, 0.0, 2)),
            Case("all gradients zero (T = Q = 0), Python scalars", (0.0, 0.0, 3)),
            Case("gradients that nearly cancel (Q = 1e-14·k·T, under the guard)", (3.0, 3.0 * 5 * 1e-14, 5)),
            Case("30 random subsets, arrays (as the searches call it)", (T, Q, k)),
            Case("arrays T and Q with one Python int k (as the greedy step calls it)", (T1, Q1, 4)),
            Case("arrays mixing k = 1, cancelling and ordinary subsets",
                 (np.array([1.5, 2.0, 0.0, 6.0]), np.array([1.5, 0.0, 0.0, 9.0]), np.array([1, 2, 3, 3])))]


def _metric_random(rng) -> Case:
    B = int(rng.integers(2, 12))
    return Case(f"12 random subsets of a batch of {B}", _stats_of_subsets(rng, B, int(rng.integers(1, 6)), 12))


_UNBIASED_AT_ONE = ("at k = 1 you divided by k − 1 = 0: that is the unbiased variance. The spec's variance is "
                    "the biased one, V = T/k − Q/k² (divide by k)")


def _grade_mean_variance(got, expected, case) -> str | None:
    T, Q, k = (np.asarray(a, np.float64) for a in case.args)
    arr, problem = _as_float_array(got, "your result")
    if problem:
        return problem
    expected = np.asarray(expected, np.float64)
    if arr.shape != expected.shape:
        return (f"your result has shape {arr.shape}, expected {expected.shape}: one value per entry of "
                "T, Q and k (broadcast together), a 0-d array or a float for scalars")
    bad = _mismatch(arr, expected)
    if not bad.any():
        return None
    Tb, Qb, kb = np.broadcast_arrays(T, Q, k)
    i = int(np.flatnonzero(bad.ravel())[0])
    stats = f"T = {_fmt(Tb.flat[i])}, Q = {_fmt(Qb.flat[i])}, k = {int(kb.flat[i])}"
    if arr.ndim:
        message = (f"entry {i} ({stats}) is {_fmt(arr.flat[i])}, expected {_fmt(expected.flat[i])}; "
                   f"{int(bad.sum())} of {arr.size} values are wrong")
    else:
        message = f"for {stats} you returned {_fmt(arr)}, expected {_fmt(expected)}"
    guarded = ~np.isfinite(expected)
    if (guarded & bad).any():
        return _with_cause(message, f"the guard is missing or wrong: when Q <= {Q_EPS:g}·k·T the selected "
                                    "gradients cancel (their mean is zero to rounding) and the metric must be "
                                    f"+inf, e.g. np.where(Q > {Q_EPS:g} * k * T, T / Q - 1 / k, np.inf)")
    if (bad & (kb == 1) & ~np.isfinite(arr)).any():
        return _with_cause(message, _UNBIASED_AT_ONE)
    with np.errstate(all="ignore"):
        # Each alternative is compared where it is defined; elsewhere it is taken to agree.
        wrong = [(np.where(~guarded & (kb > 1), expected * kb / (kb - 1), expected),
                  "you used the unbiased variance (divided by k − 1); the spec's variance is the biased one, "
                  "V = T/k − Q/k², so mean_variance = (V/k) / ‖ḡ‖² = T/Q − 1/k"),
                 (np.where(~guarded, kb * expected, expected),
                  "that is normalized_variance, V/‖ḡ‖² = kT/Q − 1: divide V by k as well, (V/k)/‖ḡ‖²"),
                 (np.where(~guarded, variance(T, Q, k), expected),
                  "that is the variance V = T/k − Q/k² itself; mean_variance divides V/k by ‖ḡ‖² = Q/k²"),
                 (np.where(~guarded, Tb / Qb, expected), "the − 1/k term is missing: mean_variance = T/Q − 1/k")]
    return _with_cause(message, _first_cause(arr, wrong))


def _explain_metric_error(exc, case) -> str | None:
    if not isinstance(exc, ZeroDivisionError):
        return None
    T, Q, k = (np.asarray(a, np.float64) for a in case.args)
    if np.any(k == 1):
        return _UNBIASED_AT_ONE
    if np.any(Q <= Q_EPS * k * T):
        return (f"Q = 0 here (the gradients cancel): test the guard Q <= {Q_EPS:g}·k·T first and return +inf "
                "without dividing")
    return None


# --------------------------------------------------------------------------
# Exercise 4: the greedy search
# --------------------------------------------------------------------------
METRIC = "mean_variance"


def reference_greedy_removals(K, min_size) -> list:
    """The samples greedy backward elimination removes from the batch, in order (mean_variance, tol = 0)."""
    return [int(i) for i in greedy_path(np.asarray(K, np.float64), METRIC, int(min_size), 0.0)[0]]


def _value_without(K, removed) -> float:
    keep = np.setdiff1d(np.arange(K.shape[0]), removed)
    return float(metric_value(METRIC, *subset_stats(K, keep)))


def _greedy_case(name, G, min_size) -> Case:
    G = np.asarray(G, np.float64)
    return Case(f"{name} (B = {G.shape[0]}, min_size = {min_size})", (G @ G.T, min_size))


def _greedy_edges(rng) -> list:
    cluster = np.array([1.0, 0.5, -0.2]) + 0.1 * rng.normal(size=(5, 3))
    outlier = np.vstack([cluster, [[-1.0, -0.3, 0.4]]])
    twins = [[1, 0.05, 0], [-0.5, 1, 0.2], [1, -0.05, 0.02], [0.95, 0, -0.03], [-0.5, 1, 0.2], [1.05, 0.02, 0]]
    zero = np.vstack([cluster[:3], np.zeros((1, 3)), cluster[3:]])
    return [_greedy_case("one gradient points against the others (sample 5)", outlier, 2),
            _greedy_case("min_size = B: nothing may be removed", cluster, 5),
            _greedy_case("a single sample", cluster[:1], 1),
            _greedy_case("samples 1 and 4 are identical (a tie: the lowest index goes first)", twins, 2),
            _greedy_case("sample 3 has a zero gradient", zero, 2),
            _greedy_case("two pairs of opposite gradients (Q = 0: the full batch's metric is +inf)",
                         [[1, 0], [-1, 0], [0, 2], [0, -2]], 2),
            _greedy_case("two balanced clusters (no removal helps: keep everything)",
                         [[1, -0.1], [1, -0.1], [1, 0.1], [1, 0.1]], 2),
            _greedy_case("two agreeing samples among noisy ones (the search reaches min_size)",
                         [[1, 0], [0.3, 1], [1, 0.01], [-0.2, -1], [0.5, -1.2], [0.1, 1.3]], 2),
            _greedy_case("three agreeing samples among noisy ones (min_size = 3 stops the search)",
                         [[1, 0], [0.3, 1], [1, 0.01], [-0.2, -1], [1, -0.02], [0.1, 1.3]], 3)]


def _greedy_random(rng) -> Case:
    """A random batch whose every greedy decision is clear (margin > 1e-6), so that any correct
    order of arithmetic gives the same answer."""
    while True:
        B, P = int(rng.integers(3, 13)), int(rng.integers(2, 6))
        G = rng.normal(size=P) + rng.uniform(0.2, 2.0) * rng.normal(size=(B, P))
        min_size = int(rng.integers(2, min(B, 4) + 1))
        K = G @ G.T
        margins = greedy_margins(K, METRIC, greedy_path(K, METRIC, min_size, 0.0)[0], min_size, 0.0)
        if margins.size == 0 or margins.min() > 1e-6:
            return _greedy_case("random batch", G, min_size)


def _grade_greedy(got, expected, case) -> str | None:
    K, m = case.args
    B = K.shape[0]
    if got is None:
        return "your function returned None; did you forget the `return`?"
    try:
        arr = np.asarray(got)
    except Exception:  # noqa: BLE001
        arr = np.asarray([None])
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        return (f"return the removed sample indices, in the order removed, as a list of ints; "
                f"you returned {type(got).__name__}" + (f" of dtype {arr.dtype}" if arr.dtype != object else ""))
    order = [int(i) for i in arr]
    if order == expected:
        return None
    message = f"you removed {order}; the greedy search removes {expected}"
    if any(not 0 <= i < B for i in order):
        return f"{message}.\nIndices must lie in 0..{B - 1} (B = {B})"
    if len(set(order)) != len(order):
        return f"{message}.\nA sample can be removed only once"
    kept = sorted(set(range(B)) - set(expected))
    if order == kept and kept != sorted(expected):
        return _with_cause(message, "you returned the samples kept; return the ones removed, in the order removed")
    n, n_ref, at_min = len(order), len(expected), B - len(expected) == m
    if n > n_ref and order[:n_ref] == expected:              # went on after the search stops
        extra = order[n_ref]
        if at_min:
            cause = (f"you went on to keep {B - n} samples, below min_size = {m}"
                     + (" (an off-by-one in the stop)" if n == n_ref + 1 else "")
                     + ". Remove a sample only while |S| > min_size")
        else:
            cause = (f"you removed sample {extra} although it does not lower the metric "
                     f"({_fmt(_value_without(K, expected))} -> {_fmt(_value_without(K, order[:n_ref + 1]))}): "
                     "stop as soon as the best removal is not strictly lower")
        return _with_cause(message, cause)
    if n < n_ref and expected[:n] == order:                  # stopped too soon
        if at_min and n == n_ref - 1:
            cause = (f"an off-by-one in the stop: you stopped with {B - n} samples, but one more removal is "
                     f"allowed while |S| > min_size = {m}")
        else:
            cause = (f"you stopped too early: removing sample {expected[n]} still lowers the metric "
                     f"({_fmt(_value_without(K, order))} -> {_fmt(_value_without(K, expected[:n + 1]))})")
        return _with_cause(message, cause)
    step = next(t for t, (a, b) in enumerate(zip(order, expected)) if a != b)
    mine, theirs = _value_without(K, order[:step + 1]), _value_without(K, expected[:step + 1])
    if abs(mine - theirs) <= 1e-12 * max(abs(mine), abs(theirs)):
        cause = (f"at step {step + 1} (|S| = {B - step}) removing sample {order[step]} or {expected[step]} gives "
                 f"the same metric {_fmt(mine)}: a tie, and ties go to the lowest original index")
    else:
        cause = (f"at step {step + 1} (|S| = {B - step}) you removed sample {order[step]}, giving {METRIC} = "
                 f"{_fmt(mine)}; removing sample {expected[step]} gives the lower {_fmt(theirs)}. "
                 "Each step removes the sample whose removal gives the lowest metric")
    return _with_cause(message, cause)


# --------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------
EXERCISES = {ex.number: ex for ex in (
    Exercise(1, "error_signals", ("weights", "biases", "X", "y"), "the per-sample error signals",
             "tutorials/exercises/ex1_error_signals.py", reference_error_signals,
             _error_signals_edges, _error_signals_random, _grade_error_signals, _explain_error_signals_error),
    Exercise(2, "gram", ("A", "D"), "the Gram identity", "tutorials/exercises/ex2_gram.py",
             _gram, _gram_edges, _gram_random, _grade_gram, _explain_gram_error),
    Exercise(3, "mean_variance", ("T", "Q", "k"), "a metric from T, Q and k",
             "tutorials/exercises/ex3_mean_variance.py", _mean_variance, _metric_edges, _metric_random,
             _grade_mean_variance, _explain_metric_error),
    Exercise(4, "greedy_removals", ("K", "min_size"), "the greedy search",
             "tutorials/exercises/ex4_greedy.py", reference_greedy_removals, _greedy_edges, _greedy_random,
             _grade_greedy),
)}


def get_exercise(exercise) -> Exercise:
    """An :class:`Exercise` by number (1-4) or by the name of the function it asks for."""
    if isinstance(exercise, Exercise):
        return exercise
    by_name = {ex.function: ex for ex in EXERCISES.values()}
    if isinstance(exercise, str) and exercise in by_name:
        return by_name[exercise]
    if isinstance(exercise, (int, np.integer)) and not isinstance(exercise, bool) and int(exercise) in EXERCISES:
        return EXERCISES[int(exercise)]
    raise ValueError(f"no exercise {exercise!r}; choose a number in {sorted(EXERCISES)} "
                     f"or a function name in {sorted(by_name)}")


# --------------------------------------------------------------------------
# Loading a student's file
# --------------------------------------------------------------------------
def _notebook_source(path: Path) -> str:
    """The code cells of a notebook, joined; IPython-only lines (``%magic``, ``!shell``) are dropped."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable Jupyter notebook ({exc})") from exc
    lines = []
    for cell in cells:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        lines += [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines) + "\n"


def load_student_function(path, exercise) -> Callable:
    """Run the ``.py`` file or ``.ipynb`` notebook at ``path`` and return the function the exercise asks for.

    A ``.py`` file is imported as a module (its ``if __name__ == "__main__"``
    block does not run); a notebook's code cells run in order in one namespace.
    """
    ex = get_exercise(exercise)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    if path.suffix not in (".py", ".ipynb"):
        raise ValueError(f"{path}: give a .py file or a .ipynb notebook")
    try:
        if path.suffix == ".py":
            spec = importlib.util.spec_from_file_location(f"student_exercise_{ex.number}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            namespace = vars(module)
        else:
            namespace = {"__name__": f"student_exercise_{ex.number}", "__file__": str(path)}
            exec(compile(_notebook_source(path), str(path), "exec"), namespace)  # noqa: S102 — grading runs it
    except SyntaxError as exc:
        raise ValueError(f"{path}, line {exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:  # noqa: BLE001 — report any failure of the student's file in one line
        raise ValueError(f"running {path} raised {type(exc).__name__}: {exc}{_where_raised(exc)}") from exc
    function = namespace.get(ex.function)
    if not callable(function):
        raise ValueError(f"{path} defines no function {ex.function}; exercise {ex.number} asks for "
                         f"def {ex.signature}:")
    return function


__all__ = ["check", "Report", "Exercise", "Case", "EXERCISES", "get_exercise", "load_student_function",
           "describe_difference", "reference_error_signals", "reference_greedy_removals"]

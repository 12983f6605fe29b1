"""Exercise 3: the Gram identity ``K = (D Dᵀ) ⊙ (A Aᵀ + 1)`` (spec §3).

The student writes ``gram(A, D)``; the reference is :func:`dba_ref.gram.gram`.
Mistakes named: the missing bias term, a matrix product for the elementwise
one, the ``+ 1`` in the wrong place, a transposed product.
"""
from __future__ import annotations

from ..gram import gram
from .definitions import Case, Exercise
from .differences import compare_arrays, is_shape_error, likely_cause, with_cause
from .tolerances import gram_tolerance


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
    tolerance = gram_tolerance(A, D)
    problem, arr = compare_arrays(got, expected, "K", tolerance, ("sample", "sample"))
    if problem is None:
        return None
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
    return with_cause(problem, likely_cause(arr, wrong, tolerance))


def _explain_gram_error(error, case) -> str | None:
    if not is_shape_error(error):
        return None
    A, D = case.args
    B, n_in, n_out = A.shape[0], A.shape[1], D.shape[1]
    return (f"a shape mismatch. A is (B, in) = {A.shape} and D is (B, out) = {D.shape}; D @ D.T and A @ A.T are "
            f"both (B, B) = ({B}, {B}), while D.T @ D is ({n_out}, {n_out}) and A.T @ A is ({n_in}, {n_in}) "
            "(a transposed product)")


EXERCISE = Exercise(3, "gram_identity", "the Gram identity", (("gram", ("A", "D")),), gram, _gram_edges,
                    _gram_random, _grade_gram, _explain_gram_error, reads_first="02_gram_identity.ipynb", minutes=30,
                    builds_on=(2,))

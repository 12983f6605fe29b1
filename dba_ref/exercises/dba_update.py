"""Exercise 10: the DBA update of one layer, the mean gradient over the kept samples (spec §6).

The student writes ``dba_update(A, D, keep) -> (gW, gb)``: with ``S`` the
samples where the boolean mask ``keep`` is true, ``gW = D_Sᵀ A_S / |S|`` and
``gb = Σ_{i∈S} D_i / |S|``, without forming a per-sample gradient. The
reference is :func:`dba_ref.backprop.mean_grad`. Mistakes named: a division
by B instead of ``|S|``, the mean over the samples removed, the transposed
product, the bias averaged over the whole batch, the plain batch mean, a sum
instead of a mean.
"""
from __future__ import annotations

import numpy as np

from ..backprop import mean_grad
from .definitions import Case, Exercise
from .differences import compare_arrays, is_shape_error, likely_cause, with_cause
from .tolerances import mean_gradient_tolerance


def reference_dba_update(A, D, keep) -> tuple:
    """``(gW, gb)``, the mean gradient of the layer over the samples where ``keep`` is true."""
    return mean_grad(np.asarray(A, np.float64), np.asarray(D, np.float64), np.flatnonzero(keep))


def _case(name, rng, B, n_in, n_out, keep=None) -> Case:
    keep = rng.random(B) < 0.6 if keep is None else np.asarray(keep, bool)
    if not keep.any():
        keep[int(rng.integers(B))] = True
    return Case(f"{name} (B = {B}, in = {n_in}, out = {n_out}, {int(keep.sum())} kept)",
                (rng.normal(size=(B, n_in)), rng.normal(size=(B, n_out)), keep))


def _edges(rng) -> list:
    return [_case("every sample kept (the plain batch mean)", rng, 6, 3, 2, [True] * 6),
            _case("one sample kept", rng, 5, 3, 2, [False, False, True, False, False]),
            _case("a batch of one", rng, 1, 4, 3, [True]),
            _case("square: in = out (a transposed product has the right shape)", rng, 6, 4, 4,
                  [True, False, True, True, False, True]),
            _case("all but the last sample kept", rng, 7, 2, 3, [True] * 6 + [False]),
            _case("one input and one output", rng, 5, 1, 1, [True, True, False, True, False])]


def _random(rng) -> Case:
    return _case("random layer and mask", rng, int(rng.integers(1, 13)), int(rng.integers(1, 7)),
                 int(rng.integers(1, 6)))


def _grade(got, expected, case) -> str | None:
    A, D, keep = case.args
    S = np.flatnonzero(keep)
    B, k = A.shape[0], len(S)
    gW_ref, gb_ref = expected
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return the pair (gW, gb); you returned {type(got).__name__}"
    tol_W, tol_b = mean_gradient_tolerance(A, D, S)
    problem, arr = compare_arrays(got[0], gW_ref, "gW", tol_W, ("output", "input"))
    which, ref, tolerance = "gW", gW_ref, tol_W
    if problem is None:
        problem, arr = compare_arrays(got[1], gb_ref, "gb", tol_b, ("output",))
        which, ref, tolerance = "gb", gb_ref, tol_b
    if problem is None:
        return None
    if arr is None:
        return problem
    if arr.shape != ref.shape:
        if which == "gW" and arr.shape == ref.shape[::-1]:
            return (f"{problem}: gW has the shape of W, (out, in); you built A_Sᵀ D_S (a transposed product). "
                    "Use D_S.T @ A_S")
        return f"{problem}: gW has the shape of W, (out, in), gb that of b, (out,)"
    removed = np.flatnonzero(~np.asarray(keep, bool))
    alt = {"all": mean_grad(A, D), "removed": mean_grad(A, D, removed) if removed.size else None}
    pick = 0 if which == "gW" else 1
    wrong = [(ref * k / B, "you divided by B, the batch size: the mean is over the |S| samples kept"),
             (ref * k, "a sum, not a mean: divide by |S|, the number of samples kept"),
             (None if alt["removed"] is None else alt["removed"][pick],
              "you averaged over the samples removed (keep == False); average over the ones kept"),
             (alt["all"][pick], "that is the mean over the whole batch: the mask was not applied"),
             ((lambda: (A[S].T @ D[S]).T / k) if which == "gW" and A.shape[1] == D.shape[1] else None,
              "a transposed product: gW = D_Sᵀ A_S / |S| has shape (out, in)")]
    return with_cause(problem, likely_cause(arr, wrong, tolerance))


def _explain(error, case) -> str | None:
    if is_shape_error(error):
        A, D, _ = case.args
        return (f"a shape mismatch. A is (B, in) = {A.shape} and D is (B, out) = {D.shape}; the kept rows are "
                "A[keep] and D[keep], and gW = D[keep].T @ A[keep] / |S| has shape (out, in)")
    if error.kind in ("IndexError", "TypeError") and "index" in error.message:
        return "keep is a boolean mask of shape (B,): index with it directly, A[keep], or use np.flatnonzero(keep)"
    return None


EXERCISE = Exercise(10, "dba_update", "the DBA update of a layer", (("dba_update", ("A", "D", "keep")),),
                    reference_dba_update, _edges, _random, _grade, _explain, reads_first="04_training_mnist5k.ipynb",
                    minutes=25, builds_on=(3, 6))

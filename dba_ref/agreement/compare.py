"""The one comparator: errors entry by entry, relative to a scale, and the entry nearest its allowance.

Every comparison of arrays in the package (the judge, the conformance
checker, the exercises' grader) goes through :func:`entry_errors`.
"""
from __future__ import annotations

import numpy as np


def entry_errors(actual, reference, scale=None) -> np.ndarray:
    """``|a − r| / scale`` entry by entry, by default ``scale = max|r|`` (over the finite entries).

    ``scale`` may be a number or an array (one scale per entry, see
    :func:`~dba_ref.agreement.rounding.value_scales`); a zero scale gives the
    absolute error. Where the reference is ±inf or NaN the entry must be equal
    (error 0, else inf); a NaN or inf in ``a`` against a finite reference is an
    error of inf. ``a`` and ``r`` must have the same shape.
    """
    a, r = np.asarray(actual, np.float64), np.asarray(reference, np.float64)
    finite = np.isfinite(r)
    if scale is None:
        scale = np.max(np.abs(r[finite]), initial=0.0)
    scale = np.broadcast_to(np.asarray(scale, np.float64), r.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.array(np.abs(a - r), dtype=np.float64)
        err = np.divide(err, scale, out=err, where=scale > 0)
    same_special = (a == r) | (np.isnan(a) & np.isnan(r))
    return np.where(finite, np.where(np.isfinite(a), err, np.inf), np.where(same_special, 0.0, np.inf))


def max_rel_error(actual, reference, scale=None) -> float:
    """The largest of :func:`entry_errors` (0 for empty arrays, inf for arrays of different shapes): the
    error relative to the array's magnitude, or to ``scale``."""
    if np.shape(actual) != np.shape(reference):
        return float("inf")
    return float(np.max(entry_errors(actual, reference, scale), initial=0.0))


def error_ratio(error, allowed):
    """``error / allowed``, how near an error comes to its allowance (it passes at <= 1): 0 where the error is 0,
    inf where a positive error meets a zero allowance."""
    error, allowed = np.asarray(error, np.float64), np.asarray(allowed, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(error == 0, 0.0, error / allowed)[()]


def worst_error(actual, reference, scale, tolerance) -> tuple[float, float]:
    """``(error, allowed)`` of the entry nearest to, or furthest beyond, its tolerance, both relative to ``scale``.

    ``error`` is :func:`entry_errors` with ``scale`` (one per entry or one for
    all), ``allowed`` is ``tolerance / scale`` (absolute where the scale is 0);
    the entry reported is the one with the largest ``error / allowed``, so the
    arrays agree exactly when ``error <= allowed``. ``(0.0, 0.0)`` for empty
    arrays; ``(inf, 0.0)`` for arrays of different shapes.
    """
    if np.shape(actual) != np.shape(reference):
        return float("inf"), 0.0
    errors = entry_errors(actual, reference, scale).ravel()
    if errors.size == 0:
        return 0.0, 0.0
    shape = np.shape(reference)
    scale = np.broadcast_to(np.asarray(scale, np.float64), shape).ravel()
    allowed = np.broadcast_to(np.asarray(tolerance, np.float64), shape).ravel().copy()
    np.divide(allowed, scale, out=allowed, where=scale > 0)
    worst = int(np.argmax(error_ratio(errors, allowed)))
    return float(errors[worst]), float(allowed[worst])

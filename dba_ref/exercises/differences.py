"""A student's answer against the expected one, in words: what differs, where, by how much, and why.

An entry is right when ``|got − expected| <= tolerance``, entry by entry,
the tolerance being what rounding alone can do to that quantity
(:mod:`~dba_ref.exercises.tolerances`, the package's one rule
:func:`dba_ref.agreement.rounding_tolerance`); infinities and NaN must match
exactly. :func:`likely_cause` names a classic mistake by computing what that
mistake would have returned and comparing.
"""
from __future__ import annotations

import numpy as np

from ..agreement import entry_errors


def fmt(x) -> str:
    """A number as the reports print it (6 significant digits)."""
    return f"{float(x):.6g}"


def how_many_wrong(n_wrong: int, n: int, nouns: str) -> str:
    """``"1 of 1600 entries is wrong"``, ``"3 of 4 entries are wrong"``."""
    return f"{n_wrong} of {n} {nouns} {'is' if n_wrong == 1 else 'are'} wrong"


def as_float_array(got, what: str):
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


def mismatch(got: np.ndarray, expected: np.ndarray, tolerance) -> np.ndarray:
    """Boolean mask of the wrong entries (shapes equal): ``|got − expected| > tolerance`` (an array broadcast
    against ``expected``, or a number); infinities and NaN must match exactly.

    The comparison is the package's one comparator, :func:`dba_ref.agreement.entry_errors`,
    with each entry's tolerance as its scale.
    """
    tolerance = np.broadcast_to(np.asarray(tolerance, np.float64), np.shape(expected))
    return entry_errors(got, expected, np.where(np.isfinite(expected), tolerance, 1.0)) > 1.0


def close_to(got: np.ndarray, candidate, tolerance) -> bool:
    """Whether ``got`` equals ``candidate`` within ``tolerance`` (used to name mistakes)."""
    candidate = np.asarray(candidate, np.float64)
    return got.shape == candidate.shape and not mismatch(got, candidate, tolerance).any()


def compare_arrays(got, expected, name: str, tolerance, axes=()) -> tuple:
    """``(problem, array)``: ``got`` read once as a float64 array (``None`` when it cannot be) and
    :func:`describe_difference`'s sentence about it (``None`` when it equals ``expected`` within ``tolerance``),
    so that a grader looking for the cause works on the same array."""
    arr, problem = as_float_array(got, name)
    if problem:
        return problem, None
    expected = np.asarray(expected, np.float64)
    if arr.shape != expected.shape:
        return f"{name} has shape {arr.shape}, expected {expected.shape}", arr
    bad = mismatch(arr, expected, tolerance)
    if not bad.any():
        return None, arr
    err = np.where(bad, np.abs(np.nan_to_num(arr - expected, nan=np.inf, posinf=np.inf, neginf=np.inf)), -1.0)
    worst = np.unravel_index(int(np.argmax(err)), arr.shape)
    at = f"{name}[{', '.join(str(i) for i in worst)}]" if worst else name
    meaning = ", ".join(f"{a} {i}" for a, i in zip(axes, worst))
    g, e = arr[worst], expected[worst]
    sentence = f"{at}{f' ({meaning})' if meaning else ''} is {fmt(g)}, expected {fmt(e)}"
    if np.isfinite(g) and np.isfinite(e):
        sentence += f" (off by {float(g - e):+.3g})"
    if arr.size > 1:
        sentence += "; " + how_many_wrong(int(bad.sum()), arr.size, "entries")
    if np.asarray(got).dtype == np.float32:
        sentence += ". Your answer is float32: compute in float64"
    return sentence, arr


def describe_difference(got, expected, name: str, tolerance, axes=()) -> str | None:
    """``None`` when ``got`` equals ``expected`` within ``tolerance``, else a sentence saying what differs.

    ``axes`` names what each index means, e.g. ``("sample", "unit")``.
    """
    return compare_arrays(got, expected, name, tolerance, axes)[0]


def likely_cause(got: np.ndarray, mistakes, tolerance) -> str | None:
    """The explanation of the first ``(wrong_answer, explanation)`` of ``mistakes`` that ``got`` matches
    within ``tolerance``.

    ``wrong_answer`` is an array, ``None`` (the mistake cannot be told apart
    on this case) or a function computing the array, called only when reached.
    """
    for candidate, explanation in mistakes:
        with np.errstate(all="ignore"):
            value = candidate() if callable(candidate) else candidate
        if value is not None and close_to(got, value, tolerance):
            return explanation
    return None


def with_cause(message: str, cause: str | None) -> str:
    """``message``, followed by ``Likely cause: ...`` when a cause is known."""
    return message if not cause else f"{message}.\nLikely cause: {cause}"


def is_shape_error(error) -> bool:
    """Whether ``error`` (a :class:`~dba_ref.exercises.sandbox.Raised`) is NumPy's complaint about incompatible
    shapes."""
    return error.kind == "ValueError" and any(w in error.message for w in ("mismatch", "broadcast", "shapes",
                                                                              "aligned"))

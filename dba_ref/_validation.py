"""Input checks shared by the public API.

Every public function validates what it is given and raises a ``ValueError``
(bad value) or ``TypeError`` (bad type) whose message says what to fix, in the
manner of scikit-learn. The checks live here, once.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ._text import plural

FLOAT_DTYPES = (np.float32, np.float64)


def check_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as a NumPy float dtype, or raise if it is not float32/float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_features(X, n_features: int | None = None, dtype=np.float64, name: str = "X") -> np.ndarray:
    """A finite 2-D real array ``(B, n_features)`` with B >= 1, converted to ``dtype``."""
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be a 2-D numeric array, got {type(X).__name__}")
    arr = np.asarray(X)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (0 samples); give at least one sample")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features per sample but the model expects {n_features}")
    arr = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or inf (first at row {bad[0]}, column {bad[1]})")
    return arr


def check_labels(y, n_samples: int, n_classes: int, name: str = "y") -> np.ndarray:
    """Integer class labels ``(n_samples,)`` in ``[0, n_classes)``, returned as int64."""
    if isinstance(y, (str, bytes)) or y is None:
        raise TypeError(f"{name} must be a 1-D array of integer labels, got {type(y).__name__}")
    arr = np.asarray(y)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} must hold integer class labels, got dtype {arr.dtype}"
            + (" (convert with y.astype(int))" if np.issubdtype(arr.dtype, np.floating) else "")
        )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {plural(arr.shape[0], 'label')} but X has {plural(n_samples, 'sample')}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        bad = arr[(arr < 0) | (arr >= n_classes)][0]
        raise ValueError(f"{name} has label {bad} outside [0, {n_classes}) for a model with {n_classes} outputs")
    return arr.astype(np.int64, copy=False)


def check_gram(K) -> np.ndarray:
    """A finite, symmetric, square ``(B, B)`` real matrix with B >= 1, returned as float64.

    Symmetry is checked on up to 64 evenly spaced rows against their columns,
    to rounding: enough to catch a matrix that is not a Gram matrix at all, at
    O(B) cost.
    """
    arr = np.asarray(K)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"K must be a real numeric matrix, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"K must be a square (B, B) Gram matrix, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("K is empty (a batch of 0 samples); give at least one sample")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr.sum()) and not np.isfinite(arr).all():      # one pass; entries scanned only if needed
        raise ValueError("K contains NaN or inf")
    rows = np.unique(np.linspace(0, arr.shape[0] - 1, min(64, arr.shape[0])).astype(np.int64))
    scale = np.abs(np.diagonal(arr)).max()
    if not np.allclose(arr[rows], arr[:, rows].T, rtol=1e-9, atol=1e-12 * scale):
        raise ValueError("K is not symmetric; a Gram matrix K[i, j] = <g_i, g_j> is within rounding")
    return arr


def check_min_size(min_size):
    """``min_size`` must be an int count >= 1 or a float fraction in (0, 1]; returned unchanged."""
    if isinstance(min_size, (bool, np.bool_)):
        raise TypeError("min_size must be an int count or a float fraction, not a bool")
    if isinstance(min_size, numbers.Integral):
        if min_size < 1:
            raise ValueError(f"min_size must be >= 1, got {int(min_size)}")
        return int(min_size)
    if isinstance(min_size, numbers.Real):
        if not (0.0 < float(min_size) <= 1.0):
            raise ValueError(f"min_size as a fraction must lie in (0, 1], got {float(min_size)}")
        return float(min_size)
    raise TypeError(f"min_size must be an int count or a float fraction, got {type(min_size).__name__}")


def check_choice(value, choices, name: str) -> str:
    """``value`` must be one of ``choices`` (strings)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {sorted(choices)}; got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {sorted(choices)}")
    return value


def check_names(names, choices, name: str) -> tuple:
    """``names`` must be a list (or tuple) of strings, each one of ``choices``."""
    if isinstance(names, str) or not isinstance(names, (list, tuple, set, frozenset)):
        raise TypeError(f"{name} must be a list of names from {sorted(choices)}, e.g. [{sorted(choices)[0]!r}]; "
                        f"got {names!r}")
    return tuple(check_choice(value, choices, name) for value in names)


def check_tol(tol) -> float:
    """The greedy tolerance: a real number in [0, 1)."""
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a real number in [0, 1), got {type(tol).__name__}")
    tol = float(tol)
    if not (0.0 <= tol < 1.0):
        raise ValueError(f"tol must lie in [0, 1), got {tol}")
    return tol


def check_positive(value, name: str, integer: bool = False, allow_zero: bool = False):
    """A positive (or non-negative) finite number; ``integer=True`` requires an int."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {'an integer' if integer else 'a real number'}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return int(value) if integer else float(value)


def check_indices(indices, n_samples: int, name: str = "indices", allow_empty: bool = False) -> np.ndarray:
    """A selection of samples of a batch of ``n_samples``, returned as int64 indices (in the order given).

    Accepted: a 1-D array (or list) of distinct integer indices in ``[0, n_samples)``, in any
    order, at least one (none with ``allow_empty``); or a boolean mask of length ``n_samples``
    with at least one ``True`` (returned as its ascending indices). Refused, with what to pass
    instead: an empty selection, repeated or negative or out-of-range indices, floats, 2-D
    arrays, and masks of another length. Cost O(k + n_samples).
    """
    what = f"a 1-D array of distinct integer indices in [0, {n_samples}) or a boolean mask of length {n_samples}"
    if isinstance(indices, (str, bytes)) or indices is None:
        raise TypeError(f"{name} must be {what}, got {type(indices).__name__}")
    arr = np.asarray(indices)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be {what}; got shape {arr.shape}")
    if arr.size == 0:
        if allow_empty:
            return np.zeros(0, np.int64)
        raise ValueError(f"{name} selects no sample; give at least one ({what})")
    if arr.dtype == bool:
        if arr.shape[0] != n_samples:
            raise ValueError(f"{name} is a boolean mask of length {arr.shape[0]} for a batch of {n_samples}; "
                             f"a mask has one entry per sample")
        if not (arr.any() or allow_empty):
            raise ValueError(f"{name} is a boolean mask with no True entry; select at least one sample")
        return np.flatnonzero(arr)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be {what}; got dtype {arr.dtype}"
                        + (" (convert whole numbers with .astype(int))" if np.issubdtype(arr.dtype, np.floating)
                           else ""))
    low, high = arr.min(), arr.max()
    if low < 0 or high >= n_samples:
        bad = low if low < 0 else high
        raise ValueError(f"{name} holds {bad}, outside [0, {n_samples}) for a batch of {n_samples}"
                         + (" (negative indices are not accepted)" if bad < 0 else ""))
    arr = arr.astype(np.int64, copy=False)
    counts = np.bincount(arr, minlength=n_samples)
    if counts.max() > 1:
        raise ValueError(f"{name} holds {int(np.argmax(counts > 1))} more than once; each sample may be "
                         f"selected once (pass np.unique({name}))")
    return arr


def check_layer_signals(A, D) -> tuple[np.ndarray, np.ndarray]:
    """One layer's inputs ``A`` ``(B, in)`` and error signals ``D`` ``(B, out)``: finite 2-D real arrays of
    one batch, returned in one float dtype (float32 when both are, else float64)."""
    dtype = np.float32 if all(np.asarray(x).dtype == np.float32 for x in (A, D)) else np.float64
    A, D = check_features(A, dtype=dtype, name="A"), check_features(D, dtype=dtype, name="D")
    if D.shape[0] != A.shape[0]:
        raise ValueError(f"A has {plural(A.shape[0], 'row')} and D has {D.shape[0]}; both hold one row per "
                         f"sample of the batch")
    return A, D

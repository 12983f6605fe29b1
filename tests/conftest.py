"""Shared test setup.

CUDA kernels are tested under Numba's CUDA simulator unless ``DBA_REF_REAL_GPU=1``
is set (on a machine with an NVIDIA GPU): the same tests then run on the device.
The switch must happen before numba is first imported, hence here.
"""
import os

if os.environ.get("DBA_REF_REAL_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
import pytest

from dba_ref import MLP


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def random_batch(rng, model: MLP, B: int):
    """A random batch ``(X, y)`` for ``model``: Gaussian inputs and uniform labels."""
    X = rng.normal(size=(B, model.sizes[0]))
    y = rng.integers(0, model.n_classes, size=B)
    return X, y


# --------------------------------------------------------------------------
# Comparing two implementations' selections (spec §5: close calls are ambiguous)
# --------------------------------------------------------------------------
#: A decision whose margin is at most this is a close call two implementations may decide differently.
AMBIGUOUS = 1e-9


def decisive_steps(trace, tol):
    """How many leading greedy steps the NumPy trace decides clearly.

    A step is ambiguous when its margin is at most ``tol`` (spec §5); margins
    are measured against the rounding scale of the values compared, so a
    step between values that cancel to rounding noise is ambiguous too.
    """
    for t, margin in enumerate(trace.margins):
        if margin <= tol:
            return t
    return len(trace.margins)


def trace_value_scale(trace) -> float:
    """The size of the terms a metric value is computed from: T/B for variance, 1 for the scale-free metrics."""
    return max(abs(trace.full_T) / trace.batch_size, 1.0) if trace.metric == "variance" else 1.0


def assert_same_selection(ref, out, tol=AMBIGUOUS, rtol=1e-12) -> bool:
    """``out`` (a backend's Selection) agrees with ``ref`` (NumPy's) under the rules of this module.

    Returns whether every decision was clear, i.e. the whole path was compared.
    """
    r, o = ref.trace, out.trace
    assert (o.full_T, o.full_Q) == pytest.approx((r.full_T, r.full_Q), rel=rtol)
    scale = trace_value_scale(r)
    if r.strategy != "greedy":
        np.testing.assert_array_equal(out.indices, ref.indices)
        np.testing.assert_array_equal(o.removed, r.removed)
        np.testing.assert_allclose(o.values, r.values, rtol=rtol, atol=rtol * scale)
        assert np.isclose(out.value, ref.value, rtol=rtol, atol=rtol * scale) or out.value == ref.value
        return True
    n = decisive_steps(r, tol)
    np.testing.assert_array_equal(o.removed[:n], r.removed[:n])
    np.testing.assert_allclose(o.values[:n], r.values[:n], rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(o.margins[:n], r.margins[:n], rtol=1e-6, atol=1e-9 if rtol < 1e-9 else rtol)
    if n == len(r.margins):                   # every decision clear: the same path, the same set
        np.testing.assert_array_equal(o.removed, r.removed)
        np.testing.assert_array_equal(out.indices, ref.indices)
        assert len(o.margins) == len(r.margins)
    return n == len(r.margins)

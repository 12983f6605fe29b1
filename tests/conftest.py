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

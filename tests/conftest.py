"""Shared test setup: the CUDA simulator switch and the fixtures (the helpers are in ``helpers.py``).

CUDA kernels are tested under Numba's CUDA simulator unless ``DBA_REF_REAL_GPU=1``
is set (on a machine with an NVIDIA GPU): the same tests then run on the device.
The switch must happen before numba is first imported, hence here.
"""
import os

if os.environ.get("DBA_REF_REAL_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)

"""Shared pieces of the benchmark scripts: timing, the machine, the batches, one training step.

A "step" is :meth:`dba_ref.training.Trainer.fit_batch`, what
:func:`dba_ref.training.train` does with one batch: backprop, the
optimizer's update, and writing the new parameters into the model.
"""
from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

from dba_ref import MLP, dba, sgd
from dba_ref._machine import cpu_model
from dba_ref.backends import get_backend
from dba_ref.data import load_dataset
from dba_ref.training import Trainer


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    return median_times(fn, repeats, warmup)[0]


def median_times(fn, repeats: int, warmup: int = 2, sync=None) -> tuple[float, float]:
    """Median wall time and median CPU time (all threads of the process) of ``fn()``, in seconds.

    On shared cores the CPU time is the steadier measure of the work done;
    with one thread (``OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1``) it is what
    the wall time would be on an idle core. ``sync``, if given, is called after
    every call of ``fn`` (the warm-up ones too) and timed with it: a device's
    synchronisation, so that the clock is read once its work is done.
    """
    for _ in range(warmup):
        fn()
        if sync is not None:
            sync()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if sync is not None:
            sync()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def load() -> str:
    """The 1-minute load average, as text: the cores are shared, so every row says how busy they were."""
    return f"{os.getloadavg()[0]:.2f}"


def machine() -> str:
    """CPU model, core count, Python, NumPy and Numba versions."""
    import numba

    cpu = cpu_model()
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}, "
            f"Numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads), OpenBLAS threads: {blas}")


def header(title: str, command: str) -> None:
    print(f"# {title}")
    print(f"# date {time.strftime('%Y-%m-%d %H:%M')}; machine: {machine()}")
    print(f"# command: {command}")


def mnist_batches(B: int, n_batches: int, seed: int = 0):
    """``n_batches`` batches of B MNIST-5k images, without replacement within a batch up to B = 5000."""
    data = load_dataset("mnist5k")
    rng = np.random.default_rng(seed)
    n = len(data.y)
    return [(data.X[idx], data.y[idx]) for idx in (rng.choice(n, B, replace=B > n) for _ in range(n_batches))]


class Stepper:
    """Plain SGD and DBA(SGD) training steps of one backend on a fixed cycle of batches.

    Each is the trainer's own step (:meth:`~dba_ref.training.Trainer.fit_batch`)
    on its own copy of the model; the DBA step is :func:`dba_ref.dba` with its
    defaults (mean_variance, greedy, min_size 2) on ``backend``.
    """

    def __init__(self, sizes, batches, backend: str, learning_rate: float = 0.05, seed: int = 0):
        model = MLP(sizes, seed=seed)
        self.model = model
        self.batches = batches
        self.backend = get_backend(backend)
        self.plain_trainer = Trainer(model.copy(), sgd(learning_rate), backend=backend)
        self.dba_trainer = Trainer(model.copy(), dba(sgd(learning_rate)), backend=backend)
        self.count = 0

    def _batch(self):
        self.count += 1
        return self.batches[self.count % len(self.batches)]

    def plain(self) -> None:
        self.plain_trainer.fit_batch(*self._batch())

    def dba_step(self) -> None:
        self.dba_trainer.fit_batch(*self._batch())

    def selected(self) -> list:
        """Samples kept per layer in the last DBA step."""
        return [layer.size for layer in self.dba_trainer.state.last]

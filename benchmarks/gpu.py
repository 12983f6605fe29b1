"""GPU benchmarks of the CUDA backend (issue 3). NEEDS an NVIDIA GPU and CuPy (``pip install cupy-cuda12x``).

Without a GPU, without CuPy, or under the CUDA simulator it says so and
exits with status 0, measuring nothing.

1. The Gram kernel ``K = (D Dᵀ) ⊙ (A Aᵀ + 1)`` against CuPy computing the
   same K with its matrix product (cuBLAS), at the shapes of a 784-1024-10
   MLP's two layers: time, GFLOP/s (nominal ``2 B² (in + out)`` for both, so
   the symmetric kernel's saving counts in its favour) and the ratio.
   Target: ≥ 50% of CuPy's rate.
2. A whole DBA(SGD) step at B = 8192, hidden 1024: the Numba CPU backend's
   step against the GPU step (NumPy backprop on the host, then
   :class:`dba_ref.backends.cuda.DeviceStep`: Gram, statistics, greedy
   selection and masked means on the device, the SGD update on the host).
   Target: the GPU step ≥ 10× faster.

    python benchmarks/gpu.py
"""
from __future__ import annotations

import os
import sys
import time


def unavailable() -> str | None:
    """Why this benchmark cannot run here, or None."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "NUMBA_ENABLE_CUDASIM=1 is set: the simulator's timings mean nothing"
    from numba import cuda

    if not cuda.is_available():
        return "no CUDA GPU is available to Numba"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed (pip install cupy-cuda12x)"
    return None


def gpu_time(fn, repeats: int = 10) -> float:
    """Median seconds of ``fn()`` with the device synchronised around each call."""
    import statistics

    from numba import cuda

    fn()
    cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gram_table(batch_sizes, layers) -> None:
    import cupy as cp
    import numpy as np
    from numba import cuda

    from dba_ref.backends.cuda import _launch_gram

    print("| dtype | B | in, out | Gram kernel (ms) | CuPy (ms) | kernel GFLOP/s | CuPy GFLOP/s | kernel / CuPy |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        for B in batch_sizes:
            for n_in, n_out in layers:
                A = rng.random((B, n_in)).astype(dtype)
                D = rng.normal(size=(B, n_out)).astype(dtype)
                dA, dD = cuda.to_device(A), cuda.to_device(D)
                dK = cuda.device_array((B, B), dtype)
                cA, cD = cp.asarray(A), cp.asarray(D)
                ours = gpu_time(lambda: _launch_gram(dA, dD, dK))
                theirs = gpu_time(lambda: (cD @ cD.T) * (cA @ cA.T + 1))
                flops = 2.0 * B * B * (n_in + n_out)
                print(f"| {np.dtype(dtype).name} | {B} | {n_in}, {n_out} | {1e3 * ours:.2f} | {1e3 * theirs:.2f} "
                      f"| {flops / ours / 1e9:.0f} | {flops / theirs / 1e9:.0f} | {theirs / ours:.2f} |", flush=True)


def step_table(B: int, hidden: int) -> None:
    import numpy as np
    from _common import Stepper, median_time, mnist_batches

    from dba_ref import apply_updates, backprop, sgd
    from dba_ref.backends.cuda import DeviceStep

    batches = mnist_batches(B, 2)
    cpu = Stepper([784, hidden, 10], batches, "numba")
    cpu_step = median_time(cpu.dba_step, 3, warmup=1)

    model = cpu.model.copy()
    opt = sgd(0.05)
    state = opt.init(model.params)
    parts = {"backprop": 0.0, "device": 0.0}

    def gpu_step():
        nonlocal state
        t0 = time.perf_counter()
        signals = backprop(model, *batches[0])
        t1 = time.perf_counter()
        step = DeviceStep(signals.layers)
        paths = step.search("mean_variance", "greedy", 2, 0.0)
        keeps = [np.setdiff1d(np.arange(B), removed) for removed, _, _ in paths]
        grads = step.mean_grads(keeps)
        t2 = time.perf_counter()
        updates, state = opt.update(grads, state, model.params)
        model.set_params(apply_updates(model.params, updates))
        parts["backprop"], parts["device"] = t1 - t0, t2 - t1

    gpu = median_time(gpu_step, 5, warmup=1)
    print(f"| B | hidden | Numba CPU DBA step (s) | GPU DBA step (s) | of which NumPy backprop (s) "
          f"| of which device work (s) | speed-up |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {B} | {hidden} | {cpu_step:.3f} | {gpu:.3f} | {parts['backprop']:.3f} | {parts['device']:.3f} "
          f"| {cpu_step / gpu:.1f}× |")


def main() -> int:
    from _common import header

    header("CUDA backend: Gram kernel vs CuPy, whole DBA step vs Numba CPU", "python benchmarks/gpu.py")
    reason = unavailable()
    if reason:
        print(f"# not run: this benchmark needs an NVIDIA GPU and CuPy; {reason}.")
        return 0
    from numba import cuda

    name = cuda.get_current_device().name
    print(f"# device: {name.decode() if isinstance(name, bytes) else name}")
    gram_table([1024, 4096, 8192], [(784, 1024), (1024, 10)])
    step_table(8192, 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())

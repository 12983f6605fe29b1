"""Small launches for NVIDIA's compute-sanitizer: the Gram kernel, and the greedy search on both its layouts.

    compute-sanitizer --tool racecheck --error-exitcode 3 python benchmarks/gpu_sanitize.py
    compute-sanitizer --tool synccheck --error-exitcode 3 python benchmarks/gpu_sanitize.py

NEEDS an NVIDIA GPU. ``racecheck`` reports shared-memory hazards (a thread
reading a shared slot another writes without a barrier between them);
``synccheck`` reports barriers not reached by every thread of a block. The
launches are small (the tools slow a kernel down by orders of magnitude) but
cover what the checks are about: the Gram kernel at the largest block shape
on a grid of several tiles with partial edges and several chunks of the
contraction (the two shared stages, the parked ``A Aᵀ + 1``), and the
greedy search of two layers whose paths end at different steps, on one
block per layer (barriers of a block, the table in shared memory) and on a
cooperative grid (grid-wide barriers, the table in global memory). Each
result is also checked against NumPy here, so that a run under a tool that
changed a result fails too (the two greedy layouts must give the same path
bit for bit; NumPy's path is printed for information, as a close call may
go either way). ``benchmarks/gpu_verify.py`` runs it under both tools.
"""
from __future__ import annotations

import sys

import numpy as np


def main() -> int:
    from numba import cuda

    from dba_ref.agreement import gram_scale, rounding_tolerance
    from dba_ref.backends import cuda_launch, cuda_tiles
    from dba_ref.gram import gram as numpy_gram
    from dba_ref.search import greedy_path

    rng = np.random.default_rng(0)
    B, n_in, n_out = 130, 37, 11
    A, D = rng.normal(size=(B, n_in)), rng.normal(size=(B, n_out))
    dK = cuda.device_array((B, B))
    shape = cuda_launch.launch_gram(cuda.to_device(A), cuda.to_device(D), dK, cuda_tiles.CONFIGS[0])
    K = numpy_gram(A, D)
    error = np.abs(dK.copy_to_host() - K)
    allowed = rounding_tolerance(gram_scale(A, D), n_in + n_out + 1)       # the package's one rule (spec §7.1)
    print(f"gram B={B} {n_in}→{n_out} on {shape}: largest difference from NumPy {error.max():.3g}")
    failed = not np.all(error <= allowed)

    B = 300
    layers = []
    for n_in, n_out in [(9, 3), (20, 5)]:
        A = np.maximum(rng.normal(size=(B, n_in)), 0)
        D = rng.normal(size=n_out) + 0.7 * rng.normal(size=(B, n_out))
        layers.append(numpy_gram(A, D))
    dK = cuda.to_device(np.stack(layers))
    stats = cuda_launch.launch_stats(dK)
    runs = []
    for plan in (cuda_launch.ONE_BLOCK, cuda_launch.GreedyPlan(2, True)):
        runs.append(cuda_launch.launch_greedy(dK, *stats, "mean_variance", 2, 0.0, plan))
        numpy_paths = [np.array_equal(removed, greedy_path(K, "mean_variance", 2, 0.0)[0])
                       for K, (removed, _) in zip(layers, runs[-1])]
        print(f"greedy B={B}, two layers, on {plan}: removed {[len(p[0]) for p in runs[-1]]}, "
              f"NumPy's path: {numpy_paths}")
    same = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(*runs))
    print(f"the two layouts give the same paths bit for bit: {same}")
    failed |= not same
    cuda.synchronize()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

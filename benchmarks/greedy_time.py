"""Time of the greedy selection alone, NumPy vs Numba, at B = 512 ... 4096 (issue 3).

K is the first-layer Gram matrix of a 784-512-10 MLP (seed 0) on a batch of
MNIST-5k images. For each metric the table gives the number of greedy steps
(removals), the backend kernel's time (``greedy_path``: the O(B²) path after
the Gram matrix, with its own ``r = K.sum(axis=1)``) and the time of the front
door ``select(K, ...)``, which adds the input check (finite, float64) and the
full-batch T and Q. The kernel's CPU time is given too: the kernel is
single-threaded, so on shared cores its CPU time is what its wall time
would be on an idle core. The target: ≤ 50 ms at B = 4096 on the Numba backend.

    python benchmarks/greedy_time.py
"""
from __future__ import annotations

import argparse
import sys

from _common import header, load, median_times, mnist_batches

from dba_ref import MLP, layer_grams
from dba_ref.backends import get_backend


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[512, 1024, 2048, 4096])
    p.add_argument("--metrics", nargs="+", default=["mean_variance", "variance"])
    p.add_argument("--repeats", type=int, default=7, help="timed calls per entry (median; NumPy: a third)")
    args = p.parse_args(argv)

    header("greedy selection alone (min_size 2, tol 0), layer-1 Gram of 784-512-10 on MNIST-5k",
           "python benchmarks/greedy_time.py " + " ".join(sys.argv[1:]))
    model = MLP([784, 512, 10], seed=0)
    print("| B | metric | removals | NumPy greedy_path (ms) | Numba greedy_path (ms) | Numba greedy_path, CPU (ms) "
          "| speed-up | NumPy select (ms) | Numba select (ms) | load |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for B in args.batch_sizes:
        X, y = mnist_batches(B, 1)[0]
        K = layer_grams(model, X, y)[0]
        for metric in args.metrics:
            before = load()
            times = {}
            for name in ("numpy", "numba"):
                be = get_backend(name)
                repeats = args.repeats if name == "numba" else max(1, args.repeats // 3)
                greedy = be.kernels.search.greedy_path
                times[name, "path"], times[name, "cpu"] = median_times(lambda: greedy(K, metric, 2, 0.0), repeats)
                times[name, "select"] = median_times(lambda: be.select(K, metric), repeats)[0]
            steps = len(get_backend("numba").kernels.search.greedy_path(K, metric, 2, 0.0)[0])
            np_path, nb_path = times["numpy", "path"], times["numba", "path"]
            print(f"| {B} | {metric} | {steps} | {1e3 * np_path:.1f} | {1e3 * nb_path:.1f} "
                  f"| {1e3 * times['numba', 'cpu']:.1f} | {np_path / nb_path:.0f}× "
                  f"| {1e3 * times['numpy', 'select']:.1f} | {1e3 * times['numba', 'select']:.1f} "
                  f"| {before} → {load()} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time of one plain SGD step and one DBA(SGD) step, per backend and batch size (issues 2 and 3).

A 784-hidden-10 ReLU MLP on MNIST-5k batches; a step is backprop, the
optimizer's update and writing the parameters (what the trainer does per
batch). Prints the median times, their ratio (the target: DBA ≤ 2× plain on
the numba backend at B = 600, hidden 512), the same for the CPU time of the process (steadier than the wall time on
shared cores), the samples DBA kept per layer, the load average, and for
every DBA row where the step splits its (wall) time.

    python benchmarks/step_time.py                                  # numpy and numba, B = 128, 600, 2048
    python benchmarks/step_time.py --backends numpy --batch-sizes 128 600   # issue 2's table
"""
from __future__ import annotations

import argparse
import sys

from _common import Stepper, header, load, median_time, median_times, mnist_batches

from dba_ref import backprop


def breakdown(stepper: Stepper, repeats: int) -> dict:
    """Median time (ms) of the parts of a DBA step on one batch: backprop, Gram, selection, masked mean."""
    be = stepper.backend
    kernels = be.kernels
    X, y = stepper.batches[0]
    signals = backprop(stepper.model, X, y)
    grams = [kernels.gram(A, D) for A, D in signals.layers]
    selections = [be.select(K) for K in grams]
    parts = {
        "backprop": lambda: backprop(stepper.model, X, y),
        "gram": lambda: [kernels.gram(A, D) for A, D in signals.layers],
        "select": lambda: [be.select(K) for K in grams],
        "mean": lambda: [kernels.mean_grad(A, D, s.indices) for (A, D), s in zip(signals.layers, selections)],
    }
    return {part: 1e3 * median_time(fn, repeats) for part, fn in parts.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", nargs="+", default=["numpy", "numba"], help="backends to time")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 600, 2048])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--repeats", type=int, default=15, help="timed steps per entry (median)")
    args = p.parse_args(argv)

    header(f"plain SGD step vs DBA(SGD) step, 784-{args.hidden}-10 MLP, MNIST-5k batches",
           "python benchmarks/step_time.py " + " ".join(sys.argv[1:]))
    print("| backend | B | plain SGD step (ms) | DBA(SGD) step (ms) | DBA / plain | CPU time: plain, DBA (ms) "
          "| DBA / plain (CPU) | kept per layer | DBA parts: backprop / Gram / select / masked mean (ms) | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |")
    for backend in args.backends:
        for B in args.batch_sizes:
            stepper = Stepper([784, args.hidden, 10], mnist_batches(B, 8), backend)
            before = load()
            plain, plain_cpu = median_times(stepper.plain, args.repeats)
            step, step_cpu = median_times(stepper.dba_step, args.repeats)
            parts = breakdown(stepper, max(3, args.repeats // 3))
            kept = ", ".join(str(k) for k in stepper.selected())
            split = " / ".join(f"{parts[k]:.1f}" for k in ("backprop", "gram", "select", "mean"))
            print(f"| {backend} | {B} | {1e3 * plain:.1f} | {1e3 * step:.1f} | {step / plain:.2f} "
                  f"| {1e3 * plain_cpu:.1f}, {1e3 * step_cpu:.1f} | {step_cpu / plain_cpu:.2f} | {kept} "
                  f"| {split} | {before} → {load()} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

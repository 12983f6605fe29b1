"""One optimizer update, vectorised (NumPy) vs fused (Numba), for every optimizer of the registry (issue 24).

The parameters are the main job's, a 784-256-10 MLP (203,530 numbers); the gradients are one MNIST-5k
batch's. For each optimizer: the median CPU time (and wall time) of ``update(grads, state, params, signals=...)`` with every
element rule vectorised and with every rule fused (signals labelled ``numpy`` with fusing switched off, and
``numba``), and the memory bound: the time to move the bytes the fused update reads and writes once each
(its arrays in and out, every leaf), measured as NumPy copies of that many bytes. ``fused / bound`` near 1
is an update at memory speed; what it spends above is the explicit reductions of the optimizers that have
them (AdaGrad-Norm's norm, EnhancedSGD's variance, AdamP's and SGDP's projections) and the call itself.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/update_time.py
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np
from _common import header, load, median_times, mnist_batches

from dba_ref import MLP, backprop
from dba_ref.optimizers import OPTIMIZERS, make_optimizer
from dba_ref.optimizers.tree import tree_leaves


def arrays_moved(opt, grads, state, params, signals) -> int:
    """Bytes of the arrays a fused update reads and writes: gradient, state in and out, update (and θ if read)."""
    updates, new_state = opt.update(grads, state, params, signals=signals)
    arrays = [a for tree in (grads, state, new_state, updates) for a in tree_leaves(tree) if isinstance(a, np.ndarray)]
    if any(k in opt.hyperparams for k in ("weight_decay", "delta")):
        arrays += tree_leaves(params)                                   # AdamP/SGDP/Adan read the weights
    return sum(a.nbytes for a in arrays)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=30, help="timed updates per entry (median)")
    p.add_argument("--hidden", type=int, default=256)
    args = p.parse_args(argv)
    header(f"one optimizer update, vectorised vs fused, 784-{args.hidden}-10 MLP",
           "python benchmarks/update_time.py " + " ".join(sys.argv[1:]))
    model = MLP([784, args.hidden, 10], seed=0)
    X, y = mnist_batches(64, 1)[0]
    signals = backprop(model, X, y)
    grads, params = signals.mean_grads(), model.params
    vectorised, fused = signals, dataclasses.replace(signals, backend="numba")
    print("| optimizer | vectorised (ms) | fused (ms) | vectorised / fused | memory bound (ms) | fused / bound "
          "| wall: vectorised, fused (ms) | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in OPTIMIZERS:
        before = load()
        opt = make_optimizer(name)
        state = opt.update(grads, opt.init(params), params, signals=signals)[1]        # a state with moments
        opt.update(grads, state, params, signals=fused)                                  # compiles the fused loop
        v, v_cpu = median_times(lambda: opt.update(grads, state, params, signals=vectorised), args.repeats)
        f, f_cpu = median_times(lambda: opt.update(grads, state, params, signals=fused), args.repeats)
        moved = arrays_moved(opt, grads, state, params, fused)
        source, target = np.ones(moved // 16), np.empty(moved // 16)                    # read + write = moved bytes
        _, bound = median_times(lambda: np.copyto(target, source), args.repeats)
        print(f"| {name} | {1e3 * v_cpu:.2f} | {1e3 * f_cpu:.2f} | {v_cpu / f_cpu:.1f} | {1e3 * bound:.2f} "
              f"| {f_cpu / bound:.1f} | {1e3 * v:.2f}, {1e3 * f:.2f} | {before} → {load()} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

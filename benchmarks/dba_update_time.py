"""One DBA(SGD) update alone, per backend: for comparing two versions of the package like for like.

The median CPU time of ``dba(sgd(0.05)).update(None, state, params, signals=signals)`` on the signals of
backend b (``get_backend(b).signals``, which DBA's update computes with: Gram matrices,
greedy search, masked means, the SGD step) on a fixed 784-512-10 model (seed 0) and fixed MNIST-5k
batches (seed 0) of B = 128 and 600, and the samples kept per layer: two versions that give the
same selections do the same work, so their times compare. Unlike ``step_time.py`` (whose steps train
the model, so selections drift with the code's history), nothing here changes between calls.
Run it with one thread, from each version's checkout:

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH=. python benchmarks/dba_update_time.py
"""
import numpy as np
from _common import median_times

from dba_ref import MLP, dba, sgd
from dba_ref.backends import get_backend
from dba_ref.data import load_dataset


def main() -> None:
    data = load_dataset("mnist5k")
    rng = np.random.default_rng(0)
    for B in (128, 600):
        idx = rng.choice(len(data.y), B, replace=False)
        model = MLP([784, 512, 10], seed=0)
        X, y = model.check_batch(data.X[idx], data.y[idx])
        for backend in ("numpy", "numba"):
            signals = get_backend(backend).signals(model, X, y)
            opt = dba(sgd(0.05))
            state = opt.init(model.params)
            last = []

            def update() -> None:                               # keeps the state the last call returned
                last[:] = [opt.update(None, state, model.params, signals=signals)[1]]

            _, cpu = median_times(update, 21, warmup=3)         # the warm-up calls compile
            print(f"B={B} {backend}: {1e3 * cpu:.2f} ms CPU, kept {[layer.size for layer in last[0].last]}")


if __name__ == "__main__":
    main()

"""What the first call of each Numba CPU kernel costs: compiling, loading from the disk cache, warm (issue 3).

Each measurement runs in a fresh Python process with ``NUMBA_CACHE_DIR`` set
to a new temporary folder: the first process compiles every kernel and
writes the cache, the second loads them from it. Inputs are tiny (B = 16),
so the times are the compiler's and the loader's, not the kernels'.

    python benchmarks/compile_cost.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from _common import header, load

CHILD = r"""
import json, time
import numpy as np
start = time.perf_counter()
from dba_ref.backends import numba_cpu as nb
imported = time.perf_counter() - start
rng = np.random.default_rng(0)
A, D = rng.random((16, 5)), rng.normal(size=(16, 3))
K = A @ A.T + 1
calls = {
    "gram": lambda: nb.gram(A, D),
    "greedy_path": lambda: nb.greedy_path(K, "mean_variance", 2, 0.0),
    "prefix_path": lambda: nb.prefix_path(K, "mean_variance", 2),
    "exhaustive_search": lambda: nb.exhaustive_search(K[:8, :8], "mean_variance", 2),
    "mean_grad": lambda: nb.mean_grad(A, D, np.arange(0, 16, 2)),
}
out = {"import": imported}
for name, call in calls.items():
    t = time.perf_counter(); call(); first = time.perf_counter() - t
    t = time.perf_counter(); call(); warm = time.perf_counter() - t
    out[name] = (first, warm)
print(json.dumps(out))
"""


def run_child(cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    header("first-call cost of the Numba CPU kernels", "python benchmarks/compile_cost.py")
    before = load()
    with tempfile.TemporaryDirectory() as cache:
        cold = run_child(cache)
        cached = run_child(cache)
    print(f"# import of dba_ref.backends.numba_cpu: {cold['import']:.2f} s (empty cache), "
          f"{cached['import']:.2f} s (cached); load {before} → {load()}")
    print("| kernel | first call, empty cache (s) | first call, from disk cache (s) | warm call (ms) |")
    print("| --- | ---: | ---: | ---: |")
    names = [k for k in cold if k != "import"]
    for name in names:
        print(f"| {name} | {cold[name][0]:.2f} | {cached[name][0]:.3f} | {1e3 * cached[name][1]:.3f} |")
    print(f"| all five | {sum(cold[n][0] for n in names):.2f} | {sum(cached[n][0] for n in names):.3f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

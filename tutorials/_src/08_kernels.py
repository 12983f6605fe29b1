# %% [markdown]
# # 8 · The kernels: NumPy, Numba CPU and CUDA
#
# The NumPy code of notebooks 1–4 is the reference: short, readable, next to the paper. It is also
# slow where Python loops: the greedy search is a loop of $B$ steps. `dba_ref` therefore has three
# **backends** behind one switch, `backend="numpy" | "numba" | "cuda"`:
#
# | backend | what runs | needs |
# | --- | --- | --- |
# | `numpy` | the reference itself (`dba_ref/gram.py`, `dba_ref/search.py`) | nothing |
# | `numba` | the same steps compiled for the CPU with `@njit` (`dba_ref/backends/numba_cpu.py`) | Numba |
# | `cuda` | Numba CUDA kernels (`dba_ref/backends/cuda.py`) | an NVIDIA GPU, or Numba's CUDA simulator |
#
# The one idea of this notebook: **a backend changes who computes, never what is computed** — the
# same Gram matrices, the same selections, the same metric values to $10^{-12}$ relative, the same
# updates (spec §7). Then: what the compiled kernels buy, and what they cost on the first call.
#
# This machine has no GPU, so the CUDA kernels run in **Numba's CUDA simulator**, which executes every
# GPU thread as a Python thread on the CPU. It checks that the kernels compute the right thing; its
# timings mean nothing. The switch must be set before Numba is imported, so it comes first. (On a
# machine with a GPU, start Jupyter with `DBA_REF_REAL_GPU=1` to run the same cells on the device.)

# %%
import os

if os.environ.get("DBA_REF_REAL_GPU") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"          # must precede the first import of numba

import time

import matplotlib.pyplot as plt
import numba
import numpy as np

from dba_ref import MLP, backprop, dba_step, sgd
from dba_ref.agreement import value_scales
from dba_ref.backends import BACKENDS, get_backend
from dba_ref.data import load_dataset, make_split
from dba_ref.metrics import METRIC_NAMES
from dba_ref.search import STRATEGIES
from dba_ref.training import train

SIMULATED = bool(numba.config.ENABLE_CUDASIM)
print(f"Numba {numba.__version__}; backends {BACKENDS}; CUDA: "
      f"{'the simulator (timings mean nothing)' if SIMULATED else 'a real GPU'}")

# %% [markdown]
# ## The public interface
#
# A backend is chosen once, where a batch's forward and backward passes are computed:
# `train(..., backend=...)`, `dba_step(..., backend=...)`, the `--backend` option of the `train`
# command. The signals it returns name it (`signals.backend`), and DBA's update (spec §6) computes its
# Gram matrices, searches and means with the same one. `get_backend(name)` returns the backend: its `kernels`, the five
# computations every backend provides, each with the semantics of its NumPy twin,
#
# - `gram(A, D)` $\to K = (\Delta\Delta^\top) \odot (AA^\top + 1)$,
# - `search.greedy_path(K, metric, min_size, tol)` $\to$ the removal order and the metric after each removal,
# - `search.prefix_path(K, metric, min_size)`, `search.exhaustive_search(K, metric, min_size)`,
# - `mean_grad(A, D, indices)` $\to \frac{1}{|S|}\Delta_S^\top [A_S, 1]$,
#
# and the conveniences `backend.layer_grams(model, X, y)` and `backend.select(K, ...)`, which are
# `layer_grams` and `select` with its kernels. Validation and the packaging of results stay in the
# front doors (`select`, ...), so all three answer in the same format.
#
# ## The first call compiles
#
# Numba compiles a kernel the first time it is called, for the types it is called with. The Numba
# backend asks for the result to be cached on disk (`cache=True`, in `__pycache__` next to the
# module), so a later process loads it instead of compiling it — unless the source of the kernel
# changed since. The first call in this fresh process is therefore either a compilation or a load from
# the cache; the second is the kernel alone. The five kernels of the Numba backend, on a tiny batch:

# %%
rng = np.random.default_rng(0)
A_small, D_small = rng.random((32, 20)), rng.normal(size=(32, 5))
K_small = get_backend("numpy").kernels.gram(A_small, D_small)

started = time.perf_counter()
numba_kernels = get_backend("numba").kernels
print(f"import of the numba backend: {time.perf_counter() - started:.2f} s")
for name, call in [("gram", lambda: numba_kernels.gram(A_small, D_small)),
                   ("greedy_path", lambda: numba_kernels.search.greedy_path(K_small, "mean_variance", 2, 0.0)),
                   ("prefix_path", lambda: numba_kernels.search.prefix_path(K_small, "mean_variance", 2)),
                   ("exhaustive_search",
                    lambda: numba_kernels.search.exhaustive_search(K_small[:8, :8].copy(), "mean_variance", 2)),
                   ("mean_grad", lambda: numba_kernels.mean_grad(A_small, D_small, np.arange(0, 32, 2)))]:
    times = []
    for _ in range(2):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    print(f"{name:>17}: first call {times[0] * 1e3:8.1f} ms, second call {times[1] * 1e3:6.3f} ms")

# %% [markdown]
# The difference between the first and the second call is compilation, or loading from the disk
# cache if an earlier process already compiled this version of the kernels; it is paid once per
# process, and every time in the rest of the notebook is measured after it. Compiling costs more than
# loading: `python benchmarks/compile_cost.py` measures both, for every kernel, in fresh processes with
# an empty and with a filled cache (`docs/performance.md`). The CUDA backend compiles its kernels on
# first use too (under the simulator there is nothing to compile: the kernels run as Python). The
# Numba backend's `mean_grad` is the reference's own NumPy function — a compiled version was measured no
# faster — so it has nothing to compile either.
#
# ## The same answer
#
# A $784 \to 16 \to 10$ network trained for three epochs on 600 MNIST-5k digits, and a batch of
# $B = 16$ held-out digits: small, because the CUDA simulator is slow. Each backend computes,
# on its own:
#
# 1. both layers' Gram matrices, `get_backend(b).layer_grams(...)`;
# 2. from its own Gram matrices, the selection of every metric × strategy × layer,
#    `get_backend(b).select(K, metric, strategy, min_size=2)` — 3 × 4 × 2 = 24 selections;
# 3. one DBA(SGD) step, `dba_step(model, X, y, sgd(0.1), backend=b)`, i.e. the forward and backward
#    passes, Gram, greedy search and masked mean gradient of every layer.
#
# Each is compared with NumPy's: Gram matrices and updates by $\max|a - r| / \max|r|$, selected sets
# and removal orders exactly, and the metric value of each selection two ways: relative to the value,
# $|a - r| / |r|$, and relative to its rounding scale, as the conformance check of notebook 7 does.

# %%
split = make_split(load_dataset("mnist5k"), per_class=60, seed=0)
model = MLP([784, 16, 10], seed=0)
train(model, sgd(0.1), split.X_train, split.y_train, epochs=3, batch_size=32, progress=False)
batch = np.random.default_rng(1).choice(len(split.y_test), size=16, replace=False)
X, y = split.X_test[batch], split.y_test[batch]


def rel_error(a, r):
    return float(np.max(np.abs(np.asarray(a) - r)) / np.max(np.abs(r)))


def run_backend(backend):
    """Gram matrices, every selection and one DBA(SGD) step, on one backend; with the seconds it took."""
    started = time.perf_counter()
    be = get_backend(backend)
    grams = be.layer_grams(model, X, y)
    selections = {(metric, strategy, layer): be.select(K, metric, strategy, min_size=2)
                  for metric in METRIC_NAMES for strategy in STRATEGIES for layer, K in enumerate(grams, 1)}
    updates = dba_step(model, X, y, sgd(0.1), backend=backend).updates
    return grams, selections, updates, time.perf_counter() - started


results = {backend: run_backend(backend) for backend in BACKENDS}
ref_grams, ref_selections, ref_updates, _ = results["numpy"]


def value_errors(backend):
    """Per selection: |value − NumPy's value| relative to NumPy's value, and relative to its rounding scale."""
    plain, scaled = {}, {}
    for key, sel in results[backend][1].items():
        ref = ref_selections[key]
        metric, _, layer = key
        gap = 0.0 if sel.value == ref.value else abs(sel.value - ref.value)
        plain[key] = gap / abs(ref.value) if gap else 0.0
        scaled[key] = gap / value_scales(ref_grams[layer - 1], metric, [ref.indices])[0] if gap else 0.0
    return plain, scaled


errors = {backend: value_errors(backend) for backend in BACKENDS}
print(f"{'backend':>7} | Gram rel. error | same sets | same removal orders | value error: relative | "
      f"to rounding scale | update rel. error | seconds")
for backend, (grams, selections, updates, seconds) in results.items():
    gram_err = max(rel_error(K, K_ref) for K, K_ref in zip(grams, ref_grams))
    same_sets = sum(np.array_equal(s.indices, ref_selections[key].indices) for key, s in selections.items())
    same_paths = sum(np.array_equal(s.trace.removed, ref_selections[key].trace.removed)
                     for key, s in selections.items())
    plain, scaled = (max(e.values()) for e in errors[backend])
    upd_err = max(rel_error(u, u_ref) for layer, layer_ref in zip(updates, ref_updates)
                  for u, u_ref in zip(layer, layer_ref))
    print(f"{backend:>7} | {gram_err:15.1e} | {same_sets:6d}/{len(selections)} | {same_paths:16d}/{len(selections)} |"
          f" {plain:21.1e} | {scaled:17.1e} | {upd_err:17.1e} | {seconds:7.2f}")

# %% [markdown]
# All three backends keep the same samples and remove them in the same order, in all 24 selections,
# and their DBA updates agree to the last digits. Numba's Gram matrices and updates are NumPy's bit for
# bit: it calls the same BLAS products, and the reference's own function for the mean gradient. Its
# searches do the same floating-point operations as the reference, though not always in the same order
# (the exhaustive kernel builds each subset's $T$ and $Q$ from a smaller subset's), hence value errors
# of a few units in the 15th digit. The CUDA kernels add up in other orders — tiles of the Gram matrix,
# tree reductions in the search — so their Gram matrices differ in the last digit, and their metric
# values a little more. Which value differs most, and why?

# %%
backend, key = max(((b, k) for b in BACKENDS for k in ref_selections), key=lambda bk: errors[bk[0]][0][bk[1]])
metric, strategy, layer = key
ref, sel = ref_selections[key], results[backend][1][key]
scale = value_scales(ref_grams[layer - 1], metric, [ref.indices])[0]
print(f"largest relative error: {backend}, {metric} / {strategy} / layer {layer}, k = {ref.size} samples kept")
print(f"  NumPy {ref.value!r}\n  {backend:<5} {sel.value!r}")
print(f"  its rounding scale ({'T/k' if metric == 'variance' else 'leading term x kT/Q'}) is {scale:.4g}, "
      f"{scale / ref.value:.0f} times the value")
worst_plain = {b: max(errors[b][0].values()) for b in BACKENDS}       # the table's two value-error columns
worst_scaled = {b: max(errors[b][1].values()) for b in BACKENDS}

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
keys = list(ref_selections)
floor = 1e-18                                                   # an error of exactly 0 is drawn here
for ax, which, title in zip(axes, (0, 1), ("relative to the value", "relative to its rounding scale (notebook 7)")):
    for backend, marker in (("numba", "s"), ("cuda", "o")):
        ax.semilogy(range(len(keys)), [max(errors[backend][which][k], floor) for k in keys], marker, ms=6,
                    mfc="none", label=backend)
    ax.axhline(1e-12, color="k", lw=1, ls="--", label="1e-12")
    ax.set_xticks(range(len(keys)), [f"{m[:4]}.{s[:4]}.L{l}" for m, s, l in keys], rotation=90, fontsize=7)
    ax.set_title(f"value error of each selection, {title}", fontsize=9)
    ax.set_ylim(floor / 3, 1e-9)
    ax.grid(alpha=0.3, which="major")
axes[0].set_ylabel("|value − NumPy's value| / scale")
axes[0].legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# A metric value is a difference: `{{metric}}` of the subset above is the small gap between larger numbers,
# its rounding scale {{scale / ref.value:.0f}} times larger than the value itself (the lines above the
# figure; the rounding scale and the condition number $kT/Q$ are defined in notebook 7). A difference in
# the last digit of $K$, or in the order of a sum, is amplified by that factor in the value. The right panel
# measures each error against the value's rounding scale, as notebook 7 does: at most
# {{worst_scaled['cuda']:.1e}} for CUDA and {{worst_scaled['numba']:.1e}} for Numba (the table), well below
# $10^{-12}$. On this batch even the plain relative errors (left) stay below $10^{-12}$ (at most
# {{worst_plain['cuda']:.1e}}); on a batch where two kept samples nearly agree, the value can be $10^{-4}$ of
# its rounding scale or less, and the same rounding then puts the plain relative error past $10^{-12}$ while
# the error against the rounding scale stays as small. That is why the tests
# (`tests/test_backends.py`) and the conformance checker read spec §7's "values to $10^{-12}$
# relative" against the rounding scale for a value that cancels.
#
# %% [markdown]
# ## What the compiled kernels buy
#
# Now NumPy against Numba on the CPU, as $B$ grows from 64 to 4096: the first layer of a
# $784 \to 512 \to 10$ network (untrained: the cost does not depend on the values) on MNIST-5k images,
# so $A$ is $B \times 784$ and $\Delta$ is $B \times 512$. Two pieces, each through the backend's own
# kernel (`get_backend(b).kernels.gram`, `get_backend(b).kernels.search.greedy_path`), best of three calls:
#
# - the **Gram matrix**, $O(B^2(\text{in} + \text{out}))$. Both backends hand the two products $AA^\top$
#   and $\Delta\Delta^\top$ to BLAS — no hand-written loop beats BLAS on a CPU; Numba only fuses the
#   combination $\Delta\Delta^\top \odot (AA^\top + 1)$ into one pass without a temporary matrix;
# - the **greedy search**, $O(B)$ per removal. NumPy runs a Python loop whose every step is a handful
#   of vector operations over the remaining samples; Numba compiles the whole loop. With `variance`
#   and `min_size = 2` the path always runs all $B - 2$ removals (the worst case); with
#   `mean_variance`, the default, it stops where the metric stops falling.

# %%
data = load_dataset("mnist5k")
wide = MLP([784, 512, 10], seed=0)
order = np.random.default_rng(0).permutation(len(data.y))
backends = {name: get_backend(name).kernels for name in ("numpy", "numba")}


def best_of(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


sizes = [64, 128, 256, 512, 1024, 2048, 4096]
timings = {}
print(f"{'B':>5} | {'Gram ms':^17} | {'greedy, variance ms':^23} | {'greedy, mean_variance ms':^23}")
print(f"{'':>5} | {'numpy':>8} {'numba':>8} | {'numpy':>7} {'numba':>7} steps | {'numpy':>7} {'numba':>7} steps")
for B in sizes:
    (A, D), _ = backprop(wide, data.X[order[:B]], data.y[order[:B]]).layers
    K = backends["numpy"].gram(A, D)
    for name, be in backends.items():
        timings[name, "gram", B] = best_of(lambda: be.gram(A, D))
        for metric in ("variance", "mean_variance"):
            timings[name, metric, B] = best_of(lambda: be.search.greedy_path(K, metric, 2, 0.0))
    steps = {m: len(backends["numba"].search.greedy_path(K, m, 2, 0.0)[0]) for m in ("variance", "mean_variance")}
    ms = {key: t * 1e3 for key, t in timings.items()}
    print(f"{B:5d} | {ms['numpy', 'gram', B]:8.2f} {ms['numba', 'gram', B]:8.2f} | "
          f"{ms['numpy', 'variance', B]:7.2f} {ms['numba', 'variance', B]:7.2f} {steps['variance']:5d} | "
          f"{ms['numpy', 'mean_variance', B]:7.2f} {ms['numba', 'mean_variance', B]:7.2f} {steps['mean_variance']:5d}")

# %%
fig, (ax_gram, ax_greedy) = plt.subplots(1, 2, figsize=(11, 4))
B_all = np.array(sizes)
for name, marker in (("numpy", "o"), ("numba", "s")):
    ax_gram.loglog(B_all, [timings[name, "gram", B] for B in sizes], marker + "-", label=name)
    ax_greedy.loglog(B_all, [timings[name, "variance", B] for B in sizes], marker + "-",
                     color="C0" if name == "numpy" else "C1", label=f"{name}, variance (B − 2 removals)")
    ax_greedy.loglog(B_all, [timings[name, "mean_variance", B] for B in sizes], marker + "--",
                     color="C0" if name == "numpy" else "C1", label=f"{name}, mean_variance (default)")
ax_gram.set_title("Gram matrix K, first layer (in = 784, out = 512)", fontsize=10)
ax_greedy.set_title("greedy search on that K (min_size = 2)", fontsize=10)
for ax in (ax_gram, ax_greedy):
    ax.set_xlabel("batch size B")
    ax.set_ylabel("seconds (best of 3)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
fig.suptitle("NumPy vs Numba on the CPU (one BLAS thread, a shared 2-core machine)", fontsize=10)
fig.tight_layout()

speedup = {m: timings["numpy", m, 4096] / timings["numba", m, 4096] for m in ("gram", "variance", "mean_variance")}
print("at B = 4096, numba is faster than numpy by: "
      + ", ".join(f"{m} x{s:.1f}" for m, s in speedup.items()))

# %% [markdown]
# Read the table and the figure together (timings vary from run to run on a shared machine; the
# shapes of the curves do not):
#
# - **Gram matrix**: the same time in both backends, within noise. The time is BLAS's, and both call
#   the same BLAS; it grows as $B^2$ (slope 2 in the figure).
# - **Greedy search**: Numba is {{timings['numpy', 'variance', 64] / timings['numba', 'variance', 64]:.0f}}
#   times faster at $B = 64$ (`variance`), where NumPy's time is the fixed cost of a Python loop step, and
#   still {{speedup['variance']:.1f}} times faster at $B = 4096$, where both do $O(B^2)$ work in all. `mean_variance` stops earlier than `variance`
#   (the "steps" columns), so it costs less in both.
# - **What dominates**: at large $B$ the Gram matrix, not the search, is most of the work of a DBA
#   step on a CPU; on the GPU both run as kernels.
#
# ## And the GPU?
#
# The CUDA backend computes $K$ with a tiled kernel in shared memory (upper triangle only, mirrored),
# runs the greedy search of all layers in one launch (one block per layer, a tree reduction per step to
# find the best candidate, ties to the lowest index as in NumPy), and the masked mean gradient with the
# same tiling as the Gram. Here it ran in the simulator, and the "seconds" of the `cuda` row of the
# agreement table are the simulator's: a Python thread per GPU thread, far slower than NumPy, and
# **no indication of GPU speed whatsoever**. What the simulator does establish is that the
# kernels — their indexing, their shared-memory tiles, their reductions and tie-breaking — compute the
# same numbers as the reference. GPU timings are the job of `benchmarks/gpu.py` on a machine with a GPU
# (`docs/performance.md`).
#
# ## Which backend to use
#
# - `numpy` to read, to teach, and as the reference every other backend is tested against
#   (`tests/test_backends.py` runs all three on random inputs, every metric × strategy × `min_size`
#   edge, and degenerate Gram matrices).
# - `numba` to train on a CPU with large batches: same answers, a faster greedy search.
# - `cuda` on a GPU, for large batches and wide layers.
#
# Whichever you pick, `dba-ref conformance check` (notebook 7) and the tests hold it to the same
# definition.
#
# ## Practise it
#
# `dba-ref exercises start greedy_search`, if you have not yet: the loop every backend compiles. Then time your
# version against `get_backend("numba").kernels.search.greedy_path` as $B$ grows, as above.

"""GPU benchmarks of the CUDA backend: one GPU, one run, tables for docs/performance.md and a JSON file.

    python benchmarks/gpu.py [--json gpu.json]         # NEEDS an NVIDIA GPU (CuPy and PyTorch optional)
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu.py --smoke   # tiny sizes in Numba's simulator: a code check

The JSON file is written after every row, so that a run cut off by a time
limit leaves every number measured until then (``benchmarks/gpu_verify.py``
runs this last, in a few minutes of a GPU machine).

The model is a 784-1024-10 ReLU MLP on MNIST-5k batches (drawn with
replacement above 5000), DBA with its defaults (``mean_variance``,
``greedy``, ``min_size=2``, ``tol=0``), in float64 and float32. Tables:

1. **Gram kernel vs CuPy.** ``K = (D Dᵀ) ⊙ (A Aᵀ + 1)`` at the shapes of
   the two layers, B = 1024, 4096, 8192: the kernel at the block shape
   :func:`dba_ref.backends.cuda_tiles.choose_config` picks and at every
   other shape, against CuPy computing the same K with two matrix products
   (cuBLAS, full matrices) and two elementwise kernels. Rates are nominal,
   ``2 B² (in + out)`` flops for both, so the kernel's symmetric half counts
   in its favour. Target: kernel / CuPy ≥ 0.5. The kernel computes K in the
   inputs' dtype here (the DBA step always uses float64 K).
2. **Whole steps on the GPU**, per dtype and B = 1024, 4096, 8192:
   a plain ``torch.optim.SGD`` step (``TorchMLP``; the batch already on the
   device), the framework way (:class:`dba_ref.frameworks.torch_dba.DBA`,
   per-sample gradients by ``vmap``, on CUDA tensors; skipped where its
   ``B × P`` gradients would not fit in 60% of the GPU's memory), and the
   dba-ref CUDA DBA(SGD) step: the batch and the parameters copied in,
   forward and backward passes, Gram matrices, greedy selection and masked
   means on the device, the mean gradients copied out, the SGD update on the
   host (as ``dba_ref.training`` does). Targets: dba-ref ≤ 10× the plain
   step at B = 1024; ≥ 50× faster than the framework way at B = 4096.
3. **Where the dba-ref step's time goes**: the same step cut into its parts,
   each timed with the device synchronised around it.
4. **The greedy search, old and new plans**: the greedy search of both
   layers' K (the step's own, from a batch at the trained-from-scratch
   model) on :data:`dba_ref.backends.cuda_launch.ONE_BLOCK` (one block of
   256 threads per layer: the earlier kernel's layout) and on cooperative
   grids of 2 to 32 teams a layer (:func:`~dba_ref.backends.cuda_launch.greedy_plan`
   picks one), ``mean_variance`` (the DBA default) and ``variance`` (which
   removes all but ``min_size`` samples: the longest path); each plan's path
   is checked bit for bit against the one-block path.

Every time is the median of several calls after a warm-up call (compilation
excluded), with the device synchronised before the clock is read.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

SIZES = (784, 1024, 10)
BATCHES = (1024, 4096, 8192)
SMOKE_SIZES = (10, 6, 3)
SMOKE_BATCHES = (7, 10)
LEARNING_RATE = 0.05


class Record(dict):
    """Every number measured, written to ``path`` (JSON) whenever a row is added."""

    def __init__(self, path: str, **fields):
        super().__init__(fields)
        self.path = path
        self.save()

    def add(self, table: str, row: dict) -> None:
        self.setdefault(table, []).append(row)
        self.save()

    def save(self) -> None:
        from dba_ref.checkpoint import atomic_write

        atomic_write(self.path, json.dumps(self, indent=1).encode())


def simulated() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def unavailable(smoke: bool) -> str | None:
    """Why this benchmark cannot run here, or None."""
    if smoke:
        return None if simulated() else "--smoke runs in Numba's CUDA simulator: set NUMBA_ENABLE_CUDASIM=1"
    if simulated():
        return "NUMBA_ENABLE_CUDASIM=1 is set: the simulator's timings mean nothing (use --smoke)"
    from numba import cuda

    if not cuda.is_available():
        return "no CUDA GPU is available to Numba"
    from dba_ref.backends.cuda_environment import numpy_conflict

    return numpy_conflict()


def optional(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def median_seconds(fn, repeats: int, sync) -> float:
    """Median wall time of ``fn()`` after one warm-up call, ``sync()`` (the device) before each clock read."""
    from _common import median_times

    return median_times(fn, repeats, warmup=1, sync=sync)[0]


def batches(B: int, n: int, smoke: bool, seed: int = 0):
    """``n`` batches ``(X, y)`` of B samples (float64): MNIST-5k images, or random ones in smoke mode."""
    if smoke:
        rng = np.random.default_rng(seed)
        return [(rng.normal(size=(B, SMOKE_SIZES[0])), rng.integers(0, SMOKE_SIZES[-1], B)) for _ in range(n)]
    from _common import mnist_batches

    return mnist_batches(B, n, seed)


# --------------------------------------------------------------------------
# 1. The Gram kernel against CuPy
# --------------------------------------------------------------------------
def gram_rows(batch_sizes, layers, smoke: bool, record: Record) -> list:
    from numba import cuda

    from dba_ref.backends import cuda_launch, cuda_tiles

    cupy = None if smoke else optional("cupy")
    rows = []
    rng = np.random.default_rng(0)
    print("\n## Gram kernel vs " + ("CuPy (cuBLAS)" if cupy else "NumPy on the host (smoke mode)" if smoke
                                    else "nothing (CuPy is not installed: pip install cupy-cuda12x)"))
    print("\n| dtype | B | in, out | shape | kernel (ms) | reference (ms) | kernel GFLOP/s | reference GFLOP/s "
          "| kernel / reference |")
    print("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for dtype in (np.float64, np.float32):
        for B in batch_sizes:
            for n_in, n_out in layers:
                A = np.maximum(rng.normal(size=(B, n_in)), 0).astype(dtype)
                D = rng.normal(size=(B, n_out)).astype(dtype)
                dA, dD, dK = cuda.to_device(A), cuda.to_device(D), cuda.device_array((B, B), dtype)
                if cupy:
                    cA, cD = cupy.asarray(A), cupy.asarray(D)
                    reference = median_seconds(lambda: (cD @ cD.T) * (cA @ cA.T + 1), 10,
                                               cupy.cuda.Device().synchronize)
                elif smoke:
                    reference = median_seconds(lambda: (D @ D.T) * (A @ A.T + 1), 1, lambda: None)
                else:
                    reference = None
                chosen = cuda_launch.launch_gram(dA, dD, dK)          # the shape a step's launch picks
                flops = 2.0 * B * B * (n_in + n_out)
                for shape in cuda_tiles.CONFIGS:
                    ours = median_seconds(lambda: cuda_launch.launch_gram(dA, dD, dK, shape), 1 if smoke else 10,
                                          cuda.synchronize)
                    name = f"{shape.tile}² ({shape.threads}×{shape.threads} threads × {shape.work}×{shape.work})"
                    name += " chosen" if shape == chosen else ""
                    row = dict(dtype=np.dtype(dtype).name, B=B, n_in=n_in, n_out=n_out, shape=list(shape),
                               chosen=shape == chosen, kernel_s=ours, reference_s=reference,
                               reference="cupy" if cupy else "numpy" if smoke else None,
                               ratio=None if reference is None else reference / ours)
                    rows.append(row)
                    record.add("gram", row)
                    rate = "–" if reference is None else f"{flops / reference / 1e9:.0f}"
                    print(f"| {row['dtype']} | {B} | {n_in}, {n_out} | {name} | {1e3 * ours:.3f} | {ms(reference, 3)} "
                          f"| {flops / ours / 1e9:.0f} | {rate} | {ratio(reference, ours, 2, '')} |", flush=True)
    return rows


# --------------------------------------------------------------------------
# 2 and 3. Whole steps
# --------------------------------------------------------------------------
class DeviceDBA:
    """The dba-ref DBA(SGD) training step with the CUDA backend: the trainer's own step
    (:meth:`dba_ref.training.Trainer.fit_batch`), the forward and backward passes on the device."""

    def __init__(self, sizes, dtype):
        from dba_ref import MLP, dba, sgd
        from dba_ref.training import Trainer

        self.base = sgd(LEARNING_RATE)
        self.trainer = Trainer(MLP(list(sizes), seed=0, dtype=dtype), dba(self.base), backend="cuda")

    def step(self, X, y) -> None:
        """One training step on a batch the trainer has validated (``X`` in the model's dtype, ``y`` int64)."""
        self.trainer.fit_batch(X, y)

    @property
    def kept(self) -> list:
        """Samples kept per layer in the last step."""
        return [layer.size for layer in self.trainer.state.last]

    def parts(self, X, y, clock) -> None:
        """The same step's parts one by one, ``clock(name)`` after each with the device synchronised: what
        :meth:`step` does, taken apart to time it (the backend's signals, then its DBA update, then SGD)."""
        from dba_ref import apply_updates
        from dba_ref.search import DBA_DEFAULTS

        trainer = self.trainer
        model, backend = trainer.model, trainer.backend
        signals = backend.signals(model, X, y)
        clock("copy in + forward/backward")
        signals.step.totals()
        clock("Gram + statistics")
        paths = signals.step.search(**DBA_DEFAULTS)
        clock("greedy selection")
        grads = [signals.step.mean_grad(l, np.setdiff1d(np.arange(X.shape[0]), removed))
                 for l, (removed, _) in enumerate(paths)]
        clock("masked means + copy out")
        updates, _ = self.base.update(grads, self.base.init(model.params), model.params)
        model.assign_params(apply_updates(model.params, updates))
        clock("SGD update on the host")


def framework_bytes(sizes, B: int, dtype) -> int:
    """Device memory of the framework way's per-sample gradients and their flattened copy ``G``."""
    params = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    return 2 * B * params * np.dtype(dtype).itemsize


def step_rows(sizes, batch_sizes, smoke: bool, record: Record):
    from numba import cuda

    torch = optional("torch")
    device = "cuda" if torch is not None and torch.cuda.is_available() and not smoke else "cpu"
    sync = (lambda: (cuda.synchronize(), torch.cuda.synchronize())) if device == "cuda" else cuda.synchronize
    memory = torch.cuda.get_device_properties(0).total_memory if device == "cuda" else 1 << 40
    repeats, framework_repeats = (1, 1) if smoke else (5, 2)
    steps, parts = [], []
    print(f"\n## Whole steps (PyTorch on {device})")
    print("\n| dtype | B | plain PyTorch SGD step (ms) | framework-way DBA step (ms) | dba-ref CUDA DBA step (ms) "
          "| dba-ref / plain | framework / dba-ref | kept per layer |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for dtype in (np.float64, np.float32):
        for B in batch_sizes:
            X, y = batches(B, 1, smoke)[0]
            X, y = X.astype(dtype), y.astype(np.int64)
            ours = DeviceDBA(sizes, dtype)
            dba_ref = median_seconds(lambda: ours.step(X, y), repeats, sync)
            kept = ours.kept
            plain = framework = None
            if torch is not None:
                plain, framework = torch_steps(torch, sizes, X, y, device, sync, repeats, framework_repeats, memory)
            row = dict(dtype=np.dtype(dtype).name, B=B, torch_device=device, plain_s=plain, framework_s=framework,
                       dba_ref_s=dba_ref, kept=kept)
            steps.append(row)
            record.add("steps", row)
            print(f"| {row['dtype']} | {B} | {ms(plain)} | {ms(framework)} | {ms(dba_ref)} | {ratio(dba_ref, plain)} "
                  f"| {ratio(framework, dba_ref)} | {', '.join(map(str, kept))} |", flush=True)
            parts.append(dict(dtype=row["dtype"], B=B, **step_parts(ours, X, y, repeats, cuda.synchronize)))
            record.add("parts", parts[-1])
    names = [name for name in parts[0] if name not in ("dtype", "B")]
    print("\n## Where the dba-ref CUDA step's time goes (ms, medians; each part timed with the device synchronised)")
    print("\n| dtype | B | " + " | ".join(f"device: {name}" if name != "SGD update on the host" else name
                                         for name in names) + " |")
    print("| --- | ---: |" + " ---: |" * len(names))
    for row in parts:
        print(f"| {row['dtype']} | {row['B']} | " + " | ".join(f"{1e3 * row[name]:.2f}" for name in names) + " |")
    return steps, parts


def torch_steps(torch, sizes, X, y, device, sync, repeats, framework_repeats, memory):
    """Median seconds of a plain torch.optim.SGD step and of a framework-way DBA step (None: skipped)."""
    import torch.nn.functional as F

    from dba_ref.frameworks.torch_dba import DBA, TorchMLP

    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt, yt = torch.as_tensor(X).to(device), torch.as_tensor(y).to(device)
    net = TorchMLP(sizes, "relu", dtype).to(device)
    sgd = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)

    def plain_step():
        sgd.zero_grad()
        F.cross_entropy(net(Xt), yt).backward()
        sgd.step()

    plain = median_seconds(plain_step, 20 * repeats, sync)
    if framework_bytes(sizes, X.shape[0], X.dtype) > 0.6 * memory:
        return plain, None
    framework = DBA(net, torch.optim.SGD(net.parameters(), lr=LEARNING_RATE))
    seconds = median_seconds(lambda: framework.step(Xt, yt), framework_repeats, sync)
    if device == "cuda":
        torch.cuda.empty_cache()            # the per-sample gradients' memory, back to Numba and CuPy
    return plain, seconds


def step_parts(ours: DeviceDBA, X, y, repeats: int, sync) -> dict:
    """Median seconds of each part of the dba-ref step."""
    samples: dict = {}
    for _ in range(repeats):
        sync()
        last = [time.perf_counter()]

        def clock(name):
            sync()
            now = time.perf_counter()
            samples.setdefault(name, []).append(now - last[0])
            last[0] = now

        ours.parts(X, y, clock)
    return {name: statistics.median(times) for name, times in samples.items()}


# --------------------------------------------------------------------------
# 4. The greedy search, old and new plans
# --------------------------------------------------------------------------
GREEDY_PARTS = (2, 4, 8, 16, 32)


def greedy_rows(sizes, batch_sizes, smoke: bool, record: Record) -> list:
    """Time the greedy search of a real step's K on every plan; check each plan's path against the one-block one.

    The cooperative plans tried are those one grid holds (none where the
    cooperative kernel does not link: the reason is printed)."""
    from numba import cuda

    from dba_ref import MLP
    from dba_ref.backends import cuda_launch
    from dba_ref.backends.cuda_reductions import TEAM
    from dba_ref.backends.cuda_step import DeviceStep

    rows = []
    print("\n## The greedy search: one block per layer (the earlier layout) against cooperative grids")
    print("\n| B | metric | plan | removed per layer | time (ms) | per step (µs) | one block / plan | same path |")
    print("| ---: | --- | --- | --- | ---: | ---: | ---: | --- |")
    for B in batch_sizes:
        X, y = batches(B, 1, smoke)[0]
        model = MLP(list(sizes), seed=0)
        step = DeviceStep.from_batch(model.params, "relu", X, y)
        dK = cuda.to_device(np.stack([step.gram(l) for l in range(step.n_layers)]))
        stats = cuda_launch.launch_stats(dK)
        room, refusal = cuda_launch.cooperative_room()
        default = cuda_launch.greedy_plan(B)
        plans = [cuda_launch.ONE_BLOCK] + [cuda_launch.GreedyPlan(p, True) for p in GREEDY_PARTS
                                           if p * step.n_layers <= room and (p == 2 or p * TEAM < B)]
        for metric in ("mean_variance", "variance"):
            reference = one_block = None
            for plan in plans:
                run = lambda: cuda_launch.launch_greedy(dK, *stats, metric, 2, 0.0, plan)  # noqa: E731
                paths = run()
                seconds = median_seconds(run, 1 if smoke else 3, cuda.synchronize)
                reference = paths if reference is None else reference
                one_block = seconds if one_block is None else one_block
                same = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(paths, reference))
                removed = [len(path[0]) for path in paths]
                name = ("one block per layer" if not plan.cooperative else f"cooperative, {plan.parts} teams a layer")
                name += " (default)" if plan == default else ""
                row = dict(B=B, metric=metric, parts=plan.parts, cooperative=plan.cooperative, default=plan == default,
                           removed=removed, seconds=seconds, per_step_us=1e6 * seconds / max(1, max(removed)),
                           one_block_over_plan=one_block / seconds, same_path=same, refusal=refusal)
                rows.append(row)
                record.add("greedy", row)
                print(f"| {B} | {metric} | {name} | {', '.join(map(str, removed))} | {1e3 * seconds:.2f} "
                      f"| {row['per_step_us']:.1f} | {row['one_block_over_plan']:.2f} | {'yes' if same else 'NO'} |",
                      flush=True)
    if rows and rows[0]["refusal"]:
        print(f"\n# no cooperative launch: {rows[0]['refusal']}")
    return rows


def ms(seconds, digits: int = 1) -> str:
    return "–" if seconds is None else f"{1e3 * seconds:.{digits}f}"


def ratio(a, b, digits: int = 1, unit: str = "×") -> str:
    return "–" if a is None or b is None else f"{a / b:.{digits}f}{unit}"


# --------------------------------------------------------------------------
# The targets
# --------------------------------------------------------------------------
def targets(record: dict, batch_sizes) -> dict:
    """The targets (issue 22), from the rows measured so far (None where a number is missing), and the greedy
    search's plans: the default plan's time over the one-block layout's, at the largest B."""
    small, middle, large = batch_sizes[0], batch_sizes[1], batch_sizes[-1]
    result = {}
    for dtype in ("float64", "float32"):
        chosen = [row["ratio"] for row in record["gram"]
                  if row["chosen"] and row["reference"] == "cupy" and row["dtype"] == dtype]
        result[f"gram_kernel_over_cupy_min_{dtype}"] = min(chosen, default=None)
    for row in record["steps"]:
        if row["B"] == small and row["plain_s"]:
            result[f"dba_ref_over_plain_B{small}_{row['dtype']}"] = row["dba_ref_s"] / row["plain_s"]
        if row["B"] == middle and row["framework_s"]:
            result[f"framework_over_dba_ref_B{middle}_{row['dtype']}"] = row["framework_s"] / row["dba_ref_s"]
    for row in record["greedy"]:
        if row["B"] == large and row["default"]:
            result[f"greedy_one_block_over_default_B{large}_{row['metric']}"] = row["one_block_over_plan"]
    result["greedy_plans_same_path"] = all(row["same_path"] for row in record["greedy"]) if record["greedy"] else None
    return result


def print_targets(result: dict) -> None:
    print("\n## Targets (issue 22)\n")
    for key, value in result.items():
        if key.startswith("gram_kernel"):
            print(f"- Gram kernel / CuPy ≥ 0.5 at the shape choose_config picks ({key}): lowest {fmt(value)}")
        elif key.startswith("dba_ref_over_plain"):
            print(f"- dba-ref step ≤ 10× a plain PyTorch step ({key}): {fmt(value)}×")
        elif key.startswith("framework_over"):
            print(f"- framework way / dba-ref step ≥ 50 ({key}): {fmt(value)}×")
        elif key.startswith("greedy_one_block"):
            print(f"- greedy search, one block per layer / the default plan ({key}): {fmt(value)}×")
        else:
            print(f"- every greedy plan gives the one-block path bit for bit: {value}")


def fmt(value) -> str:
    return "not measured" if value is None else f"{value:.2f}"


def device_name() -> str:
    from numba import cuda

    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def versions() -> dict:
    import numba

    found = {"numpy": np.__version__, "numba": numba.__version__}
    for name in ("numba_cuda", "cupy", "torch"):
        module = optional(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


TABLES = ("gram", "greedy", "steps")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes in Numba's CUDA simulator (a code check)")
    parser.add_argument("--json", default="benchmarks/gpu_results.json",
                        help="where to write every number measured, after every row "
                             "(default: benchmarks/gpu_results.json)")
    parser.add_argument("--tables", default=",".join(TABLES),
                        help=f"which tables, in this order (default: {','.join(TABLES)}; steps includes the parts)")
    args = parser.parse_args(argv)
    tables = args.tables.split(",")
    if not set(tables) <= set(TABLES):
        parser.error(f"--tables takes some of {', '.join(TABLES)}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import header

    header("CUDA backend: Gram kernel vs CuPy, the greedy search's plans, whole DBA steps vs PyTorch",
           "python benchmarks/gpu.py" + (" --smoke" if args.smoke else ""))
    reason = unavailable(args.smoke)
    if reason:
        print(f"# not run: {reason}.")
        return 0
    name = "Numba's CUDA simulator" if args.smoke else device_name()
    print(f"# device: {name}; versions: {versions()}")
    sizes, batch_sizes = (SMOKE_SIZES, SMOKE_BATCHES) if args.smoke else (SIZES, BATCHES)
    record = Record(args.json, smoke=args.smoke, device=name, versions=versions(), sizes=list(sizes),
                    date=time.strftime("%Y-%m-%d %H:%M"), gram=[], greedy=[], steps=[], parts=[])
    for table in tables:
        if table == "gram":
            gram_rows(batch_sizes, list(zip(sizes[:-1], sizes[1:])), args.smoke, record)
        elif table == "greedy":
            greedy_rows(sizes, batch_sizes, args.smoke, record)
        else:
            step_rows(sizes, batch_sizes, args.smoke, record)
        record["targets"] = targets(record, batch_sizes)
        record.save()
    print_targets(record["targets"])
    print(f"\n# wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

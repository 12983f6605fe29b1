"""Every CUDA kernel as a training step launches it: multi-block grids with partial edge tiles, each run twice.

What the simulator cannot show, checked on a GPU with ``DBA_REF_REAL_GPU=1``
(``benchmarks/gpu_verify.py`` runs this file first), and in Numba's CUDA
simulator at small sizes otherwise:

- every tiled kernel (``gram``, ``linear``, ``backward``, ``masked_sum``) at every
  block shape of :data:`dba_ref.backends.cuda_tiles.CONFIGS`, with the argument
  types a float64 and a float32 step pass (and the float32-K Gram kernel that
  ``benchmarks/gpu.py`` times), over batches of 1, 2 and more than one tile
  (the last one partial), features and outputs of one, a few, and more than one
  tile (partial), against NumPy within the rounding rule of
  :mod:`dba_ref.agreement`;
- every output entry written (outputs are filled with NaN before each launch);
- every kernel run twice on the same inputs, and the two results equal bit for
  bit: the kernels use no atomics, so a difference is a race (a missing
  barrier, a block reading what another writes);
- the greedy search on every plan (one block per layer, several teams in one
  block, a cooperative grid-wide launch) giving the same path bit for bit, and
  NumPy's selection.
"""
import os

import numba
import numpy as np
import pytest

from dba_ref import select
from dba_ref.agreement import gram_scale
from dba_ref.backends import get_backend
from dba_ref.gram import gram as numpy_gram
from dba_ref.metrics import METRIC_NAMES

from helpers import assert_same_selection, assert_within_rounding, skip_module_without_cuda_backend

skip_module_without_cuda_backend()
from numba import cuda  # noqa: E402  (after the backend check above)

from dba_ref.backends import cuda_launch, cuda_products, cuda_reductions, cuda_tiles  # noqa: E402

SIMULATED = bool(numba.config.ENABLE_CUDASIM)
#: ``(B, inputs, outputs)``: batches of 1, 2 and more than one tile with a partial last one, features and
#: outputs of one, a few, and more than one tile (partial). On a GPU (tiles 32 to 128 wide) every
#: combination; in the simulator (tiles 8 wide; a Python thread per CUDA thread) each size at least once.
SIZES = ([(1, 1, 3), (2, 5, 11), (9, 13, 3), (19, 1, 11), (19, 13, 11)] if SIMULATED else
         [(B, n_in, n_out) for B in (1, 2, 129, 300) for n_in in (1, 5, 257) for n_out in (3, 129)])
#: Greedy searches: a batch of several teams, and (on a GPU) one of several blocks of teams.
GREEDY_BATCHES = [13] if SIMULATED else [257, 1100]

#: ``(kernel, model dtype, result dtype)`` as a training step launches them, and the float32-K Gram kernel of
#: ``benchmarks/gpu.py``: K and the masked means accumulate in float64 from the model's dtype (spec §4).
VARIANTS = [("gram", np.float64, np.float64), ("gram", np.float32, np.float64), ("gram", np.float32, np.float32),
            ("linear", np.float64, np.float64), ("linear", np.float32, np.float32),
            ("backward", np.float64, np.float64), ("backward", np.float32, np.float32),
            ("masked_sum", np.float64, np.float64), ("masked_sum", np.float32, np.float64)]


def twice(launch, *outputs):
    """Run ``launch(*outs)`` twice, on outputs of ``(shape, dtype)`` filled with NaN each time; the results of the
    first run, checked fully written and bit for bit equal to the second's."""
    runs = []
    for _ in range(2):
        outs = [cuda.to_device(np.full(shape, np.nan, dtype)) for shape, dtype in outputs]
        launch(*outs)
        runs.append([out.copy_to_host() for out in outs])
    for first, second in zip(*runs):
        assert not np.isnan(first).any(), f"{np.isnan(first).sum()} entries never written"
        np.testing.assert_array_equal(first, second, err_msg="two runs differ: a race")
    return runs[0]


def run_product(kernel, shape, model_dtype, out_dtype, rng, B, n_in, n_out):
    """One tiled kernel at one size, twice; returns ``(result, reference, rounding scale, operations)``."""
    A = rng.normal(size=(B, n_in)).astype(model_dtype)
    D = rng.normal(size=(B, n_out)).astype(model_dtype)
    dA, dD = cuda.to_device(A), cuda.to_device(D)
    if kernel == "gram":
        K, = twice(lambda out: cuda_launch.launch_gram(dA, dD, out, shape), ((B, B), out_dtype))
        np.testing.assert_array_equal(K, K.T, err_msg="K is not exactly symmetric")
        return K, numpy_gram(A, D), gram_scale(A, D), n_in + n_out + 1
    if kernel == "linear":
        W = rng.normal(size=(n_out, n_in)).astype(model_dtype)
        b = rng.normal(size=n_out).astype(model_dtype)
        dW, db = cuda.to_device(W), cuda.to_device(b)
        relu = cuda_products.ACTIVATION_IDS["relu"]
        Z, activated = twice(lambda Z, A_out: cuda_launch.launch_linear(dA, dW, db, relu, Z, A_out, shape),
                             ((B, n_out), out_dtype), ((B, n_out), out_dtype))
        np.testing.assert_array_equal(activated, np.maximum(Z, 0), err_msg="φ(Z) is not relu of Z")
        return Z, A.astype(np.float64) @ W.T.astype(np.float64) + b, np.abs(A) @ np.abs(W).T + np.abs(b), n_in + 1
    if kernel == "backward":
        W = rng.normal(size=(n_out, n_in)).astype(model_dtype)
        Z = rng.normal(size=(B, n_in)).astype(model_dtype)
        rows = cuda.to_device(np.arange(n_out, dtype=np.int64))
        tanh = cuda_products.ACTIVATION_IDS["tanh"]
        dW, dZ = cuda.to_device(W), cuda.to_device(Z)
        out, = twice(lambda out: cuda_launch.launch_backward(dD, dW, rows, dZ, tanh, out, shape),
                     ((B, n_in), out_dtype))
        derivative = 1 - np.tanh(Z.astype(np.float64)) ** 2
        return out, (D.astype(np.float64) @ W) * derivative, np.abs(D) @ np.abs(W), n_out + 4
    rows = np.sort(rng.choice(B, size=max(1, B // 2), replace=False)).astype(np.int64)
    d_rows = cuda.to_device(rows)
    out, = twice(lambda out: cuda_launch.launch_masked_sum(dA, dD, d_rows, out, shape), ((n_out, n_in), out_dtype))
    A64, D64 = A[rows].astype(np.float64), D[rows].astype(np.float64)
    return out, D64.T @ A64 / len(rows), np.abs(D64).T @ np.abs(A64) / len(rows), len(rows) + 1


@pytest.mark.parametrize("shape", cuda_tiles.CONFIGS, ids=lambda s: f"{s.threads}x{s.work}")
@pytest.mark.parametrize("kernel, model_dtype, out_dtype", VARIANTS,
                         ids=[f"{k}-{np.dtype(m).name}-{np.dtype(o).name}" for k, m, o in VARIANTS])
def test_tiled_kernel_on_partial_tiles_twice(rng, kernel, model_dtype, out_dtype, shape):
    for B, n_in, n_out in SIZES:
        out, ref, scale, n_ops = run_product(kernel, shape, model_dtype, out_dtype, rng, B, n_in, n_out)
        assert out.dtype == out_dtype and out.shape == ref.shape
        # inputs are exact in the accumulator's dtype; a float32 result rounds in float32
        assert_within_rounding(out, ref, scale, n_ops, out_dtype, what=f"{kernel} at B={B}, {n_in} in, {n_out} out")


# ---------------------------------------------------------------------------
# The greedy search, every plan
# ---------------------------------------------------------------------------
def plans(B: int) -> list:
    """One block per layer, the default plan for B, a cooperative grid of 3 teams a layer; on a GPU also one of
    2, and in the simulator several teams in one block per layer."""
    chosen = [cuda_launch.ONE_BLOCK, cuda_launch.greedy_plan(B), cuda_launch.GreedyPlan(3, True),
              cuda_launch.GreedyPlan(2, not SIMULATED)]
    return list(dict.fromkeys(chosen))


@pytest.mark.parametrize("B", GREEDY_BATCHES)
def test_greedy_search_on_every_plan_is_the_same_path(rng, B):
    """Two layers whose paths stop at different steps; every plan bit for bit alike, run twice, and NumPy's."""
    layers = []
    for n_in, n_out in [(9, 3), (20, 5)]:
        A = np.maximum(rng.normal(size=(B, n_in)), 0)
        D = rng.normal(size=n_out) + 0.7 * rng.normal(size=(B, n_out))
        layers.append(numpy_gram(A, D))
    dK = cuda.to_device(np.stack(layers))
    stats = cuda_launch.launch_stats(dK)
    cases = [("variance", 2, 0.0), ("mean_variance", 2, 0.02)] if SIMULATED else \
        [(metric, 2, tol) for metric in METRIC_NAMES for tol in (0.0, 0.02)]
    for metric, min_size, tol in cases:
        first = None
        for plan in plans(B):
            for _ in range(2):
                paths = cuda_launch.launch_greedy(dK, *stats, metric, min_size, tol, plan)
                if first is None:
                    first = paths
                for l, ((removed, values), (removed0, values0)) in enumerate(zip(paths, first)):
                    np.testing.assert_array_equal(removed, removed0, err_msg=f"{plan}, layer {l}: another path")
                    np.testing.assert_array_equal(values, values0, err_msg=f"{plan}, layer {l}: other values")
        for K, (removed, _) in zip(layers, first):
            out = get_backend("cuda").select(K, metric, "greedy", min_size, tol)
            np.testing.assert_array_equal(out.trace.removed, removed)
            assert_same_selection(select(K, metric, "greedy", min_size, tol), out, K)
    assert len({len(path[0]) for path in first}) > 1 or not SIMULATED, "the layers' paths should end apart"


def test_greedy_plan_fills_a_team_then_goes_cooperative():
    samples = cuda_reductions.TEAM * cuda_reductions.SAMPLES
    assert cuda_launch.greedy_plan(1) == cuda_launch.GreedyPlan(1, False)
    assert cuda_launch.greedy_plan(samples).parts == 1
    assert cuda_launch.greedy_plan(samples + 1).parts == 2
    assert cuda_launch.greedy_plan(50 * samples).parts == 50
    for B in (1, samples, samples + 1, 50 * samples):
        plan = cuda_launch.greedy_plan(B)
        assert plan.cooperative == (plan.parts * cuda_reductions.TEAM > cuda_reductions.MAX_BLOCK)
    with pytest.raises(ValueError, match="cooperative plan"):
        cuda_launch.GreedyPlan(cuda_reductions.MAX_TEAMS + 1, False).launch_shape(2)


def test_greedy_search_falls_back_to_one_block_when_no_cooperative_launch_can_be_made(rng, monkeypatch):
    """A cooperative kernel that does not link (no cudadevrt) or a grid too small for two teams a layer:
    the default plan runs on one block per layer, with a warning for the former, and the same path."""
    A, D = np.maximum(rng.normal(size=(11, 4)), 0), rng.normal(size=(11, 3))
    dK = cuda.to_device(numpy_gram(A, D)[None])
    stats = cuda_launch.launch_stats(dK)
    expected = cuda_launch.launch_greedy(dK, *stats, "variance", 2, 0.0, cuda_launch.ONE_BLOCK)
    launched = []
    kernel = cuda_reductions.greedy_kernel
    monkeypatch.setattr(cuda_launch, "greedy_plan", lambda B: cuda_launch.GreedyPlan(3, True))
    monkeypatch.setattr(cuda_launch, "greedy_kernel", lambda cooperative: launched.append(cooperative) or
                        kernel(cooperative))
    for room, refusal in [(0, "the cooperative greedy kernel did not build: LinkerError: cudadevrt"), (1, None)]:
        monkeypatch.setattr(cuda_launch, "cooperative_room", lambda: (room, refusal))
        launched.clear()
        if refusal:
            with pytest.warns(RuntimeWarning, match="cudadevrt.*one block per layer"):
                paths = cuda_launch.launch_greedy(dK, *stats, "variance", 2, 0.0)
        else:
            paths = cuda_launch.launch_greedy(dK, *stats, "variance", 2, 0.0)
        assert launched == [False]
        np.testing.assert_array_equal(paths[0][0], expected[0][0])
        np.testing.assert_array_equal(paths[0][1], expected[0][1])


# ---------------------------------------------------------------------------
# Block shapes from the compiled kernels' occupancy
# ---------------------------------------------------------------------------
def test_choose_config_takes_the_largest_tile_whose_grid_fills_the_gpu(monkeypatch):
    shapes = (cuda_tiles.TileConfig(16, 8), cuda_tiles.TileConfig(16, 4), cuda_tiles.TileConfig(8, 4))
    monkeypatch.setattr(cuda_tiles, "CONFIGS", shapes)
    # 132 SMs; blocks a SM holds: 1 of the 128-wide tile, 2 of the 64-wide, 9 of the 32-wide
    resident = {128: 132, 64: 264, 32: 1188}
    asked = []

    def occupancy(shape):
        asked.append(shape.tile)
        return resident[shape.tile]

    upper = lambda B: lambda tile: -(-B // tile) * (-(-B // tile) + 1) // 2  # noqa: E731
    assert cuda_tiles.choose_config(upper(8192), occupancy).tile == 128       # 2080 tiles
    assert cuda_tiles.choose_config(upper(2048), occupancy).tile == 128       # 136 ≥ 132
    assert cuda_tiles.choose_config(upper(1024), occupancy).tile == 32        # 36 < 132, 136 < 264
    asked.clear()
    assert cuda_tiles.choose_config(upper(100), occupancy).tile == 32         # the smallest when nothing fills it
    assert asked == [128, 64], "the smallest shape is never compiled only to be compared"


@pytest.mark.skipif(SIMULATED, reason="the simulator has no occupancy calculator (needs a GPU)")
def test_resident_blocks_come_from_the_compiled_kernel():
    """The driver's occupancy of each tiled kernel agrees with its compiled registers and shared memory."""
    device = cuda.get_current_device()
    sms = device.MULTIPROCESSOR_COUNT
    for dtype in (np.float64, np.float32):
        for variant in cuda_launch.step_variants(dtype):
            if variant.shape is None:
                continue
            kernel = variant.kernel.compile(variant.signature)
            resident = kernel.max_cooperative_grid_blocks(variant.threads)
            registers, shared = kernel.regs_per_thread, kernel.shared_mem_per_block
            assert resident % sms == 0 and resident > 0, (variant.name, resident)
            per_warp = -(-registers * 32 // 256) * 256
            warps = variant.threads // 32 or 1
            assert resident // sms <= 65536 // (per_warp * warps), (variant.name, registers, resident)
            shared_per_sm = getattr(device, "MAX_SHARED_MEMORY_PER_MULTIPROCESSOR", 228 * 1024)
            assert resident // sms <= shared_per_sm // max(shared, 1), (variant.name, shared, resident)
            assert kernel.local_mem_per_thread == 0, f"{variant.name} {variant.shape}: spills to local memory"


@pytest.mark.skipif(SIMULATED, reason="the simulator compiles nothing (needs a GPU)")
def test_a_training_step_launches_only_the_variants_the_register_check_compiles(rng):
    """Every signature compiled for a step's kernels is one of ``step_variants`` (what
    ``benchmarks/gpu_registers.py`` checks for spills without a GPU), after DBA steps in float64 and float32."""
    from dba_ref import MLP, dba, sgd
    from dba_ref.training import Trainer

    for dtype in (np.float64, np.float32):
        trainer = Trainer(MLP([20, 30, 5], seed=0, dtype=dtype), dba(sgd(0.1)), backend="cuda")
        X, y = rng.normal(size=(1100, 20)).astype(dtype), rng.integers(0, 5, 1100)
        trainer.fit_batch(*trainer.model.check_batch(X, y))
    variants = [variant for dtype in (np.float64, np.float32) for variant in cuda_launch.step_variants(dtype)]
    known = {(variant.kernel, variant.signature) for variant in variants}
    for kernel in {variant.kernel for variant in variants}:
        for signature in kernel.overloads:
            assert (kernel, tuple(signature)) in known, f"{kernel.py_func.__name__} compiled for {signature}, " \
                                                        f"which benchmarks/gpu_registers.py does not check"

"""The CUDA path beyond the backend interface: the tiled products, the device forward/backward, the install check.

Runs in Numba's CUDA simulator (``tests/conftest.py``) at small sizes, or on a
GPU with ``DBA_REF_REAL_GPU=1``. Agreement with NumPy is to rounding: each
product of n terms is within ``n·eps`` of the sum of its terms' magnitudes
(the standard forward error bound), and errors of a layer's inputs carry
through the next products; so every comparison below is against
``ROUNDING · N · eps · magnitude``, N the number of terms summed along the way.
"""
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from dba_ref import MLP, backprop, dba, dba_step, select, sgd
from dba_ref.backends import get_backend
from dba_ref.backprop import mean_grad as numpy_mean_grad
from dba_ref.gram import gram as numpy_gram
from dba_ref.model import ACTIVATIONS

from helpers import clear_steps, skip_module_without_cuda_backend

skip_module_without_cuda_backend()
from dba_ref.backends import cuda as cuda_backend  # noqa: E402  (after the backend check above)
from dba_ref.backends import cuda_environment, cuda_launch, cuda_products, cuda_tiles  # noqa: E402

SIMULATED = bool(numba.config.ENABLE_CUDASIM)
ROOT = Path(__file__).resolve().parents[1]
#: Factor over the n·eps bound: elementwise functions (exp, tanh, log) add a few ulps of their own.
ROUNDING = 4


def random_model(rng, sizes, activation, dtype):
    """An MLP with non-zero biases, so that a missing bias shows."""
    model = MLP(sizes, activation=activation, seed=int(rng.integers(1 << 31)), dtype=dtype)
    model.set_params([(W, rng.normal(scale=0.5, size=b.shape)) for W, b in model.params])
    return model


def magnitudes(model, X):
    """Bounds on the terms summed into ``A_{l-1}``, ``Δ_l`` and ``ℓ``: the backprop of ``|·|``.

    ``|Z_l| ≤ M_l = |A_{l-1}| |W_l|ᵀ + |b_l|`` and ``|A_l| ≤ M_l + 1`` forward
    (φ(z) is at most |z| + 1 for the four activations); backward, an error
    of Z_l moves φ'(Z_l) and the softmax by at most as much, so
    ``|Δ_L| ≤ 1 + max_j M_L`` and ``|Δ_l| ≤ (|Δ_{l+1}| |W_{l+1}|) (1 + M_l)``.
    """
    W = [np.abs(w.astype(np.float64)) for w in model.weights]
    b = [np.abs(v.astype(np.float64)) for v in model.biases]
    inputs, pre = [np.abs(X.astype(np.float64))], []
    for l in range(model.n_layers):
        pre.append(inputs[-1] @ W[l].T + b[l])
        inputs.append(pre[-1] + 1)
    deltas = [np.broadcast_to(1 + pre[-1].max(axis=1, keepdims=True), pre[-1].shape)]
    for l in range(model.n_layers - 1, 0, -1):
        deltas.insert(0, (deltas[0] @ W[l]) * (1 + pre[l - 1]))
    return inputs[:-1], deltas, 1 + pre[-1].max(axis=1)


def assert_within_rounding(out, ref, magnitude, n_terms, dtype, what):
    bound = ROUNDING * n_terms * np.finfo(dtype).eps * magnitude
    error = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    worst = np.unravel_index(np.argmax(error - bound), error.shape)
    assert np.all(error <= bound), f"{what}: error {error[worst]:.3g} > bound {bound[worst]:.3g} at {worst}"


# ---------------------------------------------------------------------------
# The forward and backward passes on the device
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_device_backprop_matches_numpy(rng, activation, dtype):
    """A_{l-1}, Δ_l and ℓ of DeviceStep.from_batch against dba_ref.backprop, B not a multiple of any tile."""
    sizes = [7, 13, 5, 3] if SIMULATED else [784, 300, 100, 10]
    B = 19 if SIMULATED else 1001
    model = random_model(rng, sizes, activation, dtype)
    X = rng.normal(size=(B, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], B)
    step = cuda_backend.DeviceStep.from_batch(model.params, activation, X, y)
    ref = backprop(model, X, y)
    mag_inputs, mag_deltas, mag_loss = magnitudes(model, X)
    n_terms = sum(sizes)                        # every product along the forward and backward chains
    for l, ((A, D), (rA, rD)) in enumerate(zip(step.layers(), ref.layers)):
        assert A.dtype == D.dtype == dtype and A.shape == rA.shape and D.shape == rD.shape
        assert_within_rounding(A, rA, mag_inputs[l], n_terms, dtype, f"{activation} A_{l}")
        assert_within_rounding(D, rD, mag_deltas[l], n_terms, dtype, f"{activation} Δ_{l + 1}")
    losses = step.losses()
    assert losses.dtype == dtype
    assert_within_rounding(losses, ref.losses, mag_loss, n_terms, dtype, f"{activation} losses")


def test_device_backprop_takes_a_strided_int64_y(rng):
    """``check_labels`` hands an int64 y on as the view it was given; the device copy makes it contiguous."""
    sizes = [5, 7, 3]
    model = random_model(rng, sizes, "tanh", np.float64)
    X = rng.normal(size=(9, sizes[0]))
    y = np.repeat(rng.integers(0, sizes[-1], 9), 2)[::2]
    assert y.dtype == np.int64 and not y.flags.c_contiguous
    ref = backprop(model, X, y)
    mag_inputs, mag_deltas, mag_loss = magnitudes(model, X)
    steps = {"DeviceStep.from_batch": cuda_backend.DeviceStep.from_batch(model.params, "tanh", X, y),
             "the backend's signals": get_backend("cuda").signals(model, *model.check_batch(X, y)).step}
    for name, step in steps.items():
        for l, ((A, D), (rA, rD)) in enumerate(zip(step.layers(), ref.layers)):
            assert_within_rounding(D, rD, mag_deltas[l], sum(sizes), np.float64, f"{name}: Δ_{l + 1}")
        assert_within_rounding(step.losses(), ref.losses, mag_loss, sum(sizes), np.float64, f"{name}: losses")


def test_device_step_from_batch_runs_the_whole_step(rng):
    """K, the greedy search and the masked means of from_batch's device signals (float32: K in float64)."""
    model = random_model(rng, [9, 12, 4], "tanh", np.float32)
    B = 23
    X = rng.normal(size=(B, 9)).astype(np.float32)
    y = rng.integers(0, 4, B)
    step = cuda_backend.DeviceStep.from_batch(model.params, "tanh", X, y)
    layers = step.layers()                      # the device's own signals: K differs from NumPy's only by its sums
    keeps = []
    for l, ((A, D), path) in enumerate(zip(layers, step.search("mean_variance", "greedy", 2, 0.0))):
        K = numpy_gram(A, D)
        magnitude = (np.abs(D) @ np.abs(D).T) * (np.abs(A) @ np.abs(A).T + 1)
        assert_within_rounding(step.gram(l), K, magnitude, A.shape[1] + D.shape[1], np.float64, f"K_{l + 1}")
        ref = select(K, "mean_variance", "greedy", 2)
        n = clear_steps(ref, K)
        assert n > 0
        np.testing.assert_array_equal(path[0][:n], ref.trace.removed[:n])
        keeps.append(np.setdiff1d(np.arange(B), path[0]))
    for (gW, gb), (A, D), keep in zip(step.mean_grads(keeps), layers, keeps):
        rW, rb = numpy_mean_grad(A.astype(np.float64), D.astype(np.float64), keep)
        assert gW.dtype == gb.dtype == np.float32
        np.testing.assert_allclose(gW, rW, rtol=np.finfo(np.float32).eps, atol=0)      # float64 sums, rounded once
        np.testing.assert_allclose(gb, rb, rtol=np.finfo(np.float32).eps, atol=0)


def test_from_batch_checks_its_inputs_once(rng):
    model = MLP([4, 5, 3], seed=0)
    X, y = rng.normal(size=(6, 4)), np.arange(6) % 3
    with pytest.raises(ValueError, match="features per sample"):
        cuda_backend.DeviceStep.from_batch(model.params, "relu", X[:, :3], y)
    with pytest.raises(ValueError, match=r"\[0, 3\)|labels"):
        cuda_backend.DeviceStep.from_batch(model.params, "relu", X, y + 1)
    with pytest.raises(ValueError, match="activation"):
        cuda_backend.DeviceStep.from_batch(model.params, "gelu", X, y)
    with pytest.raises(ValueError, match=r"params\[1\]"):
        cuda_backend.DeviceStep.from_batch([model.params[0], (model.weights[1].T, model.biases[1])], "relu", X, y)
    with pytest.raises(ValueError, match="at least one layer"):
        cuda_backend.DeviceStep.from_batch([], "relu", X, y)


def test_device_step_from_host_signals_has_no_losses(rng):
    step = cuda_backend.DeviceStep([(rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))])
    with pytest.raises(ValueError, match="from_batch"):
        step.losses()


# ---------------------------------------------------------------------------
# The production block shapes in the simulator, on one block (tests/test_cuda_kernels.py runs the shapes of
# cuda_tiles.CONFIGS on multi-block grids, in the simulator and on a GPU)
# ---------------------------------------------------------------------------
SHAPES = [cuda_tiles.TileConfig(16, 8), cuda_tiles.TileConfig(8, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.threads}x{s.work}")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_block_shape_computes_the_four_products(rng, shape, dtype):
    from numba import cuda

    B, n_in, n_out = 37, 21, 11                 # partial tiles and partial chunks everywhere
    A = rng.normal(size=(B, n_in)).astype(dtype)
    D = rng.normal(size=(B, n_out)).astype(dtype)
    W, b = rng.normal(size=(n_out, n_in)).astype(dtype), rng.normal(size=n_out).astype(dtype)
    kernels = cuda_products.tile_kernels(np.dtype(dtype), shape)
    grid = lambda rows, cols: ((cuda_launch.blocks(cols, shape.tile), cuda_launch.blocks(rows, shape.tile)),  # noqa: E731
                               (shape.threads, shape.threads))
    absA, absD, absW = np.abs(A), np.abs(D), np.abs(W)

    dK = cuda.device_array((B, B), dtype)
    cuda_launch.launch_gram(cuda.to_device(A), cuda.to_device(D), dK, shape)
    K = dK.copy_to_host()
    np.testing.assert_array_equal(K, K.T)
    magnitude = (absD @ absD.T) * (absA @ absA.T + 1)
    assert_within_rounding(K, numpy_gram(A, D), magnitude, n_in + n_out, dtype, "K")

    Z, A_out = cuda.device_array((B, n_out), dtype), cuda.device_array((B, n_out), dtype)
    kernels.linear[grid(B, n_out)](cuda.to_device(A), cuda.to_device(W), cuda.to_device(b),
                                   cuda_products.ACTIVATION_IDS["tanh"], Z, A_out)
    magnitude = absA @ absW.T + np.abs(b)
    assert_within_rounding(Z.copy_to_host(), A @ W.T + b, magnitude, n_in, dtype, "Z")
    assert_within_rounding(A_out.copy_to_host(), np.tanh(Z.copy_to_host()), np.ones_like(magnitude), 1, dtype, "φ(Z)")

    rows = cuda.to_device(np.arange(n_out))
    Zb, out = rng.normal(size=(B, n_in)).astype(dtype), cuda.device_array((B, n_in), dtype)
    kernels.backward[grid(B, n_in)](cuda.to_device(D), cuda.to_device(W), rows, cuda.to_device(Zb),
                                    cuda_products.ACTIVATION_IDS["relu"], out)
    assert_within_rounding(out.copy_to_host(), (D @ W) * (Zb > 0), absD @ absW, n_out, dtype, "Δ")

    subset = np.sort(rng.choice(B, size=15, replace=False))
    G = cuda.device_array((n_out, n_in), dtype)
    kernels.masked_sum[grid(n_out, n_in)](cuda.to_device(A), cuda.to_device(D), cuda.to_device(subset),
                                          dtype(len(subset)), G)
    magnitude = absD[subset].T @ absA[subset] / len(subset)
    assert_within_rounding(G.copy_to_host(), numpy_mean_grad(A, D, subset)[0], magnitude, len(subset), dtype, "G")


# ---------------------------------------------------------------------------
# The kernels compile for a Hopper GPU with their accumulators in registers
# ---------------------------------------------------------------------------
def test_step_kernels_compile_for_sm90_without_spills(tmp_path):
    """``benchmarks/gpu_registers.py --tile 128``: every kernel a step launches, the tiled ones at 128-wide tiles
    (64 accumulators a thread: the most registers), as a float64 and a float32 step launch them.

    The simulator checks no types and no registers; libNVVM and, where a CUDA
    toolkit is installed, ptxas do. No kernel may spill registers to local
    memory or keep a local array there (``ld.local`` in the PTX: the
    accumulators not unrolled into registers), and every kernel must fit on
    a multiprocessor at its block size (a kernel of over 64 registers a
    thread cannot run 1,024 threads a block).
    """
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    probe = subprocess.run([sys.executable, "-c", "from numba.cuda.cudadrv.nvvm import NVVM; NVVM()"],
                           env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("libNVVM not found: install a CUDA toolkit to run this check without a GPU")
    out = tmp_path / "registers.json"
    result = subprocess.run([sys.executable, "benchmarks/gpu_registers.py", "--tile", "128", "--json", str(out)],
                            env=env, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    rows = json.loads(out.read_text())["rows"]
    names = {row["kernel"] for row in rows if row["used_by"] == "step"}
    assert names >= {"gram", "linear", "backward", "masked_sum", "softmax_cross_entropy", "masked_bias",
                     "column_sums", "totals", "greedy", "greedy (cooperative)"}, names
    assert {(row["kernel"], row["dtype"]) for row in rows if row["kernel"] == "gram"} >= {("gram", "float32")}
    for row in rows:
        what = f"{row['used_by']} {row['dtype']} {row['kernel']} {row['block']}"
        assert row["ld_local"] == 0, f"{what}: a local array was not kept in registers"
        if row["registers"] is not None:
            assert row["registers"] <= 255 and row["spilled"] == 0, f"{what}: {row['registers']} registers, " \
                                                                    f"{row['spilled']} bytes spilled"
            assert row["blocks_per_sm"]["resident"] >= 1, f"{what}: a block does not fit on a multiprocessor"


# ---------------------------------------------------------------------------
# Install: numba-cuda against a NumPy it cannot run with
# ---------------------------------------------------------------------------
def test_numba_cuda_with_numpy_2_5_is_a_one_line_error(monkeypatch):
    """numba-cuda (≤ 0.30.4) registers np.row_stack, which NumPy 2.5 removed: say which NumPy to install."""
    def numba_cuda_typing(name):
        assert name == "numba.cuda.np.arrayobj"
        raise AttributeError("module 'numpy' has no attribute 'row_stack'")

    monkeypatch.setattr(cuda_backend.cuda, "implementation", "NVIDIA", raising=False)
    monkeypatch.delattr(np, "row_stack", raising=False)
    monkeypatch.setattr(cuda_environment, "import_module", numba_cuda_typing)
    with pytest.raises(OSError, match=r"pip install 'numpy<2.5'") as error:
        get_backend("cuda")
    assert "\n" not in str(error.value) and np.__version__ in str(error.value)
    with pytest.raises(OSError, match="numpy<2.5"):
        dba_step(MLP([2, 2]), np.zeros((2, 2)), np.zeros(2, int), sgd(0.1), backend="cuda")


def test_numba_cuda_with_a_numpy_it_supports_passes(monkeypatch):
    monkeypatch.setattr(cuda_backend.cuda, "implementation", "NVIDIA", raising=False)
    monkeypatch.delattr(np, "row_stack", raising=False)
    monkeypatch.setattr(cuda_environment, "import_module", lambda name: None)     # a numba-cuda that imports fine
    assert cuda_environment.numpy_conflict() is None
    monkeypatch.setattr(cuda_backend.cuda, "implementation", "Built-in")   # Numba's own CUDA target
    assert cuda_environment.numpy_conflict() is None


# ---------------------------------------------------------------------------
# The GPU benchmark's smoke mode (simulator, tiny sizes)
# ---------------------------------------------------------------------------
def test_gpu_benchmark_smoke_mode_runs_every_table(tmp_path):
    pytest.importorskip("torch", reason="the benchmark's framework rows need PyTorch")
    out = tmp_path / "gpu.json"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    result = subprocess.run([sys.executable, "benchmarks/gpu.py", "--smoke", "--json", str(out)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for table in ("| dtype | B | in, out | shape |", "| B | metric | plan |", "| dtype | B | plain PyTorch SGD step",
                  "| dtype | B | device"):
        assert table in result.stdout, result.stdout[-3000:]
    import json

    record = json.loads(out.read_text())
    assert record["smoke"] is True and record["gram"] and record["steps"] and record["parts"] and record["greedy"]
    assert {row["cooperative"] for row in record["greedy"]} == {False, True}
    assert all(row["same_path"] for row in record["greedy"]) and record["targets"]["greedy_plans_same_path"]


# ---------------------------------------------------------------------------
# The GPU verification script: a stage cut off at its limit leaves its numbers, and the next one runs
# ---------------------------------------------------------------------------
def test_gpu_verify_leaves_its_results_when_a_stage_is_cut_off(tmp_path):
    """``benchmarks/gpu_verify.py run --simulator``: the kernel tests stopped at a 15 s limit, then the sanitizer
    stage (skipped without compute-sanitizer) in a new process."""
    import json

    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "benchmarks/gpu_verify.py", "run", "--simulator", "--out", str(out),
                             "--only", "kernel-tests,sanitizer", "--limit", "kernel-tests=15"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    stages = results["stages"]
    assert stages["environment"]["status"] == "passed", stages["environment"]
    kernel = stages["kernel-tests"]
    assert kernel["status"] in ("timed out", "passed") and kernel["tests"], kernel
    assert all(test["outcome"] in ("passed", "skipped") for test in kernel["tests"].values()), kernel["tests"]
    assert stages["sanitizer"]["status"] in ("skipped", "passed"), stages["sanitizer"]
    assert "current" not in results
    assert "## GPU verification" in result.stdout and "- kernel-tests:" in result.stdout

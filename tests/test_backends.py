"""Every backend against the NumPy reference (spec §7): same selections, same values, same updates.

The compiled backends must reproduce :mod:`dba_ref.search` and
:mod:`dba_ref.backprop` on fresh random inputs of several shapes and on every
metric × strategy × ``min_size`` edge. Agreement rules (spec §5):

- the same removal order and the same selected set wherever every NumPy
  decision margin exceeds 1e-9; statistics and metric values within the
  rounding bound of spec §7.1 (:mod:`dba_ref.agreement`, which grows with the
  length of a greedy path); Gram entries and mean gradients equal to rounding:
  each differs by at most ``SAFETY · n_ops · ε · scale`` for its own rounding
  scale and operation count (``dba_ref.agreement.rounding_tolerance``), as the backends add in
  another order;
- float32 inputs: K is float64 on every backend (see :mod:`dba_ref.gram`), so
  it agrees as in float64; mean gradients come back in float32 and agree to
  float32 rounding.

The ``cuda`` backend runs in Numba's CUDA simulator (``tests/conftest.py``),
with small sizes; with ``DBA_REF_REAL_GPU=1`` on a machine with a GPU the same
tests run on the device, with the larger sizes below.
"""
from dataclasses import replace

import numba
import numpy as np
import pytest

from dba_ref import MLP, apply_updates, backprop, dba, select, sgd
from dba_ref.agreement import gram_scale
from dba_ref.backends import BACKENDS, Backend, _kernels, get_backend
from dba_ref.backprop import mean_grad as numpy_mean_grad
from dba_ref.gram import gram as numpy_gram
from dba_ref.metrics import METRIC_NAMES, metric_value
from dba_ref.search import prefix_path as numpy_prefix_path
from dba_ref.training import train

from helpers import (assert_path_values, assert_same_selection, assert_within_rounding, clear_steps, mean_grad_scale,
                     search_ops, training_step_rounding)

SIMULATED = bool(numba.config.ENABLE_CUDASIM)
COMPILED = ["numba", "cuda"]
#: Batch sizes per backend: 1, 2, not a multiple of a block, and (where affordable) more than 1024: on a GPU,
#: a greedy search of one block per layer (B ≤ 1024) and a cooperative one (tests/test_cuda_kernels.py
#: compares every plan, and benchmarks/gpu.py at B = 8192).
SIZES = {"numba": [1, 2, 37, 1100], "cuda": [1, 2, 37] if SIMULATED else [1, 2, 1000, 1100]}


def signals(rng, B, n_in, n_out, dtype=np.float64):
    """Layer inputs A (ReLU-like) and error signals D with a shared direction, as in a real batch."""
    A = np.maximum(rng.normal(size=(B, n_in)), 0.0)
    D = rng.normal(size=n_out) + 0.7 * rng.normal(size=(B, n_out))
    return A.astype(dtype), D.astype(dtype)


def widths(backend):
    """(inputs, outputs) of the layers tested: small under the simulator, deep and wide otherwise."""
    if backend == "cuda" and SIMULATED:
        return [(9, 3), (20, 5)]
    return [(784, 512), (512, 10), (30, 1000)]


@pytest.fixture(params=COMPILED)
def backend(request):
    return request.param


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------
def test_every_backend_is_registered_and_provides_the_interface():
    assert BACKENDS == ("numpy", "numba", "cuda")
    for name in BACKENDS:
        be = get_backend(name)
        assert isinstance(be, Backend) and be.name == name
        for fn in (be.kernels.gram, be.kernels.mean_grad, *be.kernels.search, be.signals, be.dba_gradients):
            assert callable(fn), f"{name}: {fn!r}"


def test_cuda_without_a_device_is_a_clear_error(monkeypatch):
    from dba_ref.backends import cuda as cuda_module

    monkeypatch.setattr(cuda_module.cuda, "is_available", lambda: False)
    with pytest.raises(OSError, match="NUMBA_ENABLE_CUDASIM=1"):
        get_backend("cuda")
    with pytest.raises(OSError, match="backend='numba'"):
        train(MLP([2, 2]), dba(sgd(0.1)), np.zeros((2, 2)), np.zeros(2, int), epochs=1, progress=False,
              backend="cuda")


def test_compiled_scalar_metric_is_the_reference_bit_for_bit(rng):
    T = np.concatenate([rng.random(200) * 10, [0.0, 1.0, 2.0, 5.0, -1.0]])
    Q = np.concatenate([rng.random(200) * 50, [0.0, 0.0, 1e-300, 5e-12, 0.0]])
    k = np.concatenate([rng.integers(1, 100, 200), [1, 3, 2, 1, 4]]).astype(np.float64)
    for metric_id, name in enumerate(METRIC_NAMES):
        expected = metric_value(name, T, Q, k)
        got = np.array([_kernels.metric(metric_id, t, q, kk) for t, q, kk in zip(T, Q, k)])
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------
# Gram matrix
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gram_matches_numpy(rng, backend, dtype):
    be = get_backend(backend)
    for B in SIZES[backend]:
        for n_in, n_out in widths(backend):
            A, D = signals(rng, B, n_in, n_out, dtype)
            K = be.kernels.gram(A, D)
            assert K.shape == (B, B) and K.dtype == np.float64
            np.testing.assert_array_equal(K, K.T)
            ref = numpy_gram(A, D)                      # the inner products of AAᵀ and ΔΔᵀ, then one product
            assert_within_rounding(K, ref, gram_scale(A, D), n_in + n_out + 1, what=f"K, B={B}, {n_in}→{n_out}")


# ---------------------------------------------------------------------------
# Searches
# ---------------------------------------------------------------------------
def min_size_edges(B):
    """1, 2, a fraction, B − 1 and B (those that exist for this B)."""
    return sorted({m for m in (1, 2, B - 1, B) if 1 <= m <= B}) + ([0.5] if B > 2 else [])


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_greedy_matches_numpy(rng, backend, metric):
    whole = []
    for B in sorted(SIZES[backend] + [5]):
        A, D = signals(rng, B, *widths(backend)[0])
        K = numpy_gram(A, D)
        edges = min_size_edges(B)
        if backend == "cuda" and SIMULATED and B > 5:
            edges = [2]                        # a greedy step costs ~30 ms of Python threads here
        for min_size in edges:
            for tol in (0.0, 0.02):
                ref = select(K, metric, "greedy", min_size, tol)
                whole.append(assert_same_selection(ref, get_backend(backend).select(K, metric, "greedy", min_size, tol),
                                                   K))
    assert sum(whole) >= len(whole) / 2, "most paths must be compared whole, or the test compares little"


@pytest.mark.parametrize("strategy", ["prefix", "exhaustive"])
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_prefix_and_exhaustive_match_numpy(rng, backend, metric, strategy):
    sizes = [1, 2, 11] if strategy == "exhaustive" else SIZES[backend]
    for B in sizes:
        K = numpy_gram(*signals(rng, B, 9, 3))
        for min_size in min_size_edges(B):
            ref = select(K, metric, strategy, min_size)
            out = get_backend(backend).select(K, metric, strategy, min_size)
            assert_same_selection(ref, out, K)
            assert out.trace.n_evaluated == ref.trace.n_evaluated


@pytest.mark.parametrize("metric", METRIC_NAMES)
@pytest.mark.parametrize("strategy", ["greedy", "prefix", "exhaustive"])
def test_degenerate_gram_matrices_match_numpy(backend, metric, strategy):
    """Ties everywhere: all-zero gradients (+inf metrics), duplicated samples, one sample."""
    g = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [-1.0, 0.5], [1.0, 2.0]])
    cases = [np.zeros((6, 6)), g @ g.T, np.array([[3.0]])]
    for K in cases:
        for min_size in min_size_edges(K.shape[0]):
            ref = select(K, metric, strategy, min_size)
            out = get_backend(backend).select(K, metric, strategy, min_size)
            np.testing.assert_array_equal(out.indices, ref.indices)         # exact ties go to the lowest index
            np.testing.assert_array_equal(out.trace.removed, ref.trace.removed)
            assert_same_selection(ref, out, K, tol=-1.0)                     # ties are decided alike: compare all


def test_float32_gram_gives_the_numpy_float32_selection(rng, backend):
    """Each backend computes its own float64 K from the float32 signals; they differ by float64 rounding only."""
    be = get_backend(backend)
    n_in, n_out = widths(backend)[1]
    whole = []
    for B in SIZES[backend][:-1] + [21]:
        A, D = signals(rng, B, n_in, n_out, np.float32)
        K = numpy_gram(A, D)
        for metric in METRIC_NAMES:
            ref = select(K, metric, "greedy", min(2, B))
            out = be.select(be.kernels.gram(A, D), metric, "greedy", min(2, B))
            whole.append(assert_same_selection(ref, out, K, gram_rounding=n_in + n_out + 1))
    assert sum(whole) >= len(whole) / 2, "most paths must be compared whole, or the test compares little"


# ---------------------------------------------------------------------------
# The masked mean update
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mean_grad_matches_numpy(rng, backend, dtype):
    be = get_backend(backend)
    for B in SIZES[backend]:
        for n_in, n_out in widths(backend):
            A, D = signals(rng, B, n_in, n_out, dtype)
            for indices in (None, np.arange(B), np.sort(rng.choice(B, size=max(1, B // 3), replace=False))):
                gW, gb = be.kernels.mean_grad(A, D, indices)
                rW, rb = numpy_mean_grad(A, D, indices)
                assert gW.dtype == dtype and gb.dtype == dtype
                k = B if indices is None else len(indices)           # a sum of k terms, then a division
                sW, sb = mean_grad_scale(A, D, indices)
                assert_within_rounding(gW, rW, sW, k + 1, dtype, what=f"mean weight gradient, B={B}, k={k}")
                assert_within_rounding(gb, rb, sb, k + 1, dtype, what=f"mean bias gradient, B={B}, k={k}")


# ---------------------------------------------------------------------------
# Whole DBA steps
# ---------------------------------------------------------------------------
def test_dba_optimizer_trains_alike_on_every_backend(rng, backend):
    sizes = [9, 12, 3] if backend == "cuda" and SIMULATED else [64, 128, 10]
    B = 12 if backend == "cuda" and SIMULATED else 150
    X, y = rng.normal(size=(2 * B, sizes[0])), rng.integers(0, sizes[-1], 2 * B)
    runs = {}
    for name in ("numpy", backend):
        model = MLP(sizes, seed=1)
        opt = dba(sgd(0.1))
        state = opt.init(model.params)
        history, rounding = [], [0.0] * 2 * len(sizes[1:])
        for step in range(2):
            signals_ = replace(backprop(model, X[step * B:(step + 1) * B], y[step * B:(step + 1) * B]), backend=name)
            updates, state = opt.update(None, state, model.params, signals=signals_)
            selections = [layer.selection.indices for layer in state.last]
            rounding = [r + s for r, s in zip(rounding, training_step_rounding(model, updates, signals_, step + 1,
                                                                                 selections))]
            model.set_params(apply_updates(model.params, updates))
            history.append([layer.selection.indices for layer in state.last])
        runs[name] = (model, history, rounding)
    (ref_model, ref_hist, rounding), (model, hist, _) = runs["numpy"], runs[backend]
    for ref_sets, sets in zip(ref_hist, hist):
        for r, s in zip(ref_sets, sets):
            np.testing.assert_array_equal(s, r)
    got = [p for layer in model.params for p in layer]
    for l, (p, ref, scale) in enumerate(zip(got, [p for layer in ref_model.params for p in layer], rounding)):
        assert_within_rounding(p, ref, scale, 1, what=f"parameters {l} after 2 steps")


@pytest.mark.parametrize("B", [37] if SIMULATED else [1000, 1100])
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_cuda_device_step_matches_numpy_layer_by_layer(rng, metric, B):
    """The whole-step host code: stats, the greedy search and updates, arrays kept on the device.

    Long paths (B = 1000 and 1100 on a GPU: up to 1,098 running updates) are compared by the
    agreement rule of spec §7.1, whose bound grows with the path.
    """
    from dba_ref.backends import cuda as cuda_module

    layers = [signals(rng, B, n_in, n_out) for n_in, n_out in widths("cuda")]
    step = cuda_module.DeviceStep(layers)
    totals = step.totals()
    paths = step.search(metric, "greedy", 2, 0.0)
    keeps = []
    for l, (A, D) in enumerate(layers):
        K = numpy_gram(A, D)
        n_ops = A.shape[1] + D.shape[1] + 1 + search_ops(B)      # each side computes its own K, then searches
        assert_within_rounding(totals[l], (np.trace(K), K.sum()), (np.trace(K), B * np.trace(K)), n_ops,
                               what="T and Q of the whole batch")
        ref = select(K, metric, "greedy", 2)
        removed, values = paths[l]
        n = clear_steps(ref, K)
        np.testing.assert_array_equal(removed[:n], ref.trace.removed[:n])
        assert_path_values(values[:n], ref, K, gram_rounding=A.shape[1] + D.shape[1] + 1, what="greedy path values")
        if n == len(ref.trace.removed) + (B - len(ref.trace.removed) > 2):
            np.testing.assert_array_equal(removed, ref.trace.removed)
        keeps.append(np.setdiff1d(np.arange(B), removed))
    assert step.search(metric, "all", 2, 0.0) == [None] * len(layers)
    for (order, values), (A, D) in zip(step.search(metric, "prefix", 2, 0.0), layers):
        K = numpy_gram(A, D)
        ref = select(K, metric, "prefix", 1)               # every prefix's value: the trace of min_size 1
        ref_order, ref_values = numpy_prefix_path(K, metric, 1)
        np.testing.assert_array_equal(order, ref_order)
        assert_path_values(values[::-1][1:], ref, K, gram_rounding=A.shape[1] + D.shape[1] + 1,
                           what="prefix values")
        np.testing.assert_array_equal(ref_values[::-1][1:], ref.trace.values)
    for (gW, gb), (A, D), keep in zip(step.mean_grads(keeps), layers, keeps):
        rW, rb = numpy_mean_grad(A, D, keep)
        sW, sb = mean_grad_scale(A, D, keep)
        assert_within_rounding(gW, rW, sW, len(keep) + 1, what="mean weight gradient")
        assert_within_rounding(gb, rb, sb, len(keep) + 1, what="mean bias gradient")


def test_cli_trains_with_the_numba_backend(tmp_path):
    from dba_ref.cli import main

    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--per-class", "5", "--hidden", "16", "--epochs", "1",
                 "--batch-size", "25", "--backend", "numba", "--out", str(out), "--quiet", "--no-plot"])
    assert code == 0 and (out / "results.json").exists()
    assert '"backend": "numba"' in (out / "results.json").read_text()

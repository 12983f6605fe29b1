"""Property-based tests (hypothesis) of every invariant of spec §7, on every backend.

Inputs are drawn, not chosen: Gram matrices of random gradients with
duplicated samples, all-equal gradients (ties everywhere), zero gradients
(Q = 0), gradients that cancel in pairs, at scales from 1e-100 to 1e100; and
random MLPs (1 to 3 weight layers, widths 1 to 6, every activation) on random
batches (B from 1, labels random, rows duplicated, inputs scaled by 1e-6 to
1e6). For every backend of ``dba_ref.backends.BACKENDS``:

- the selection is a valid subset (sorted, distinct, in range) of size at least
  the resolved ``min_size``; every metric value is finite or +inf, never NaN,
  and is the metric of the selected set (to a first-order bound of the rounding
  of T and Q, from ``tests/conftest.py``'s rounding tolerances);
- ``exhaustive`` ≤ ``greedy`` and ≤ ``prefix`` in metric value;
- the greedy path is monotone: every accepted removal lowers the metric by the
  ``tol`` rule, in the backend's own arithmetic;
- permuting the batch permutes the selection (where every decision is clear)
  and changes no statistic;
- the Gram matrix equals the explicit ``G Gᵀ``, and ``B ×`` the mean gradient
  equals ``Σ_i g_i``;
- ``strategy="all"`` reproduces the base optimizer bit for bit;
- the backend agrees with NumPy (same sets where every decision is clear,
  values to rounding at their scale).

Backend-free: per-sample gradients are each sample's own gradient and match
central finite differences. The CUDA backend runs in Numba's simulator
(``tests/conftest.py``), slow, so it gets small batches and few examples.
"""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dba_ref import MLP, backprop, dba, gram, select, sgd
from dba_ref.backends import BACKENDS, get_backend
from dba_ref.backprop import flatten_layer_grads, mean_grads, per_sample_grads
from dba_ref.agreement import decision_margins, decisive_steps
from dba_ref.metrics import METRIC_NAMES, Q_EPS, metric_value
from dba_ref.model import ACTIVATIONS, cross_entropy
from dba_ref.search import min_size_count

from conftest import (AMBIGUOUS, array_scale, assert_same_selection, assert_within, assert_within_rounding,
                      central_difference_tolerance, gram_scale, mean_grad_scale, network_ops,
                      rounding_tolerance, search_ops)

#: Examples and largest batch per backend: the CUDA simulator runs a Python thread per CUDA thread.
EXAMPLES = {"numpy": 100, "numba": 50, "cuda": 4}
MAX_B = {"numpy": 12, "numba": 12, "cuda": 5}
EXHAUSTIVE_B = 10                       # 2^10 subsets: fast enough for every example
KINDS = ("random", "duplicates", "ties", "zeros", "some_zero", "opposite")


def examples(backend):
    """Settings per backend: fixed examples (derandomised, so every run tests the same cases); the simulated CUDA
    backend does not shrink a failure (each run costs seconds there; the failing example is printed all the same)."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([] if backend == "cuda" else [Phase.shrink])
    return settings(max_examples=EXAMPLES[backend], deadline=None, derandomize=True, phases=phases,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------------------------------------------
# Drawing inputs
# ---------------------------------------------------------------------------------------------------------------
@st.composite
def gram_matrices(draw, max_b):
    """A Gram matrix K = G Gᵀ of B drawn gradients, with exact duplicates / ties / zeros / cancelling pairs."""
    B = draw(st.integers(1, max_b))
    P = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(KINDS))
    G = draw(arrays(np.float64, (B, P), elements=st.floats(-1, 1, allow_nan=False, allow_infinity=False)))
    src = np.arange(B)                                  # sample i has the gradient of base row src[i]
    sign = np.ones(B)
    if kind == "duplicates":
        src = np.array(draw(st.lists(st.integers(0, B - 1), min_size=B, max_size=B)))
    elif kind == "ties":
        src = np.zeros(B, int)
    elif kind == "zeros":
        G[:] = 0.0
    elif kind == "some_zero":
        G[np.array(draw(st.lists(st.booleans(), min_size=B, max_size=B)))] = 0.0
    elif kind == "opposite":                            # g, −g, g', −g', ...: sums cancel
        src = np.arange(B) // 2 * 2
        sign = np.where(np.arange(B) % 2, -1.0, 1.0)
    scale = 10.0 ** draw(st.integers(-100, 100))
    base = (G * scale) @ (G * scale).T
    base = (base + base.T) / 2
    return sign[:, None] * base[np.ix_(src, src)] * sign[None, :]     # exact duplicates and signs


@st.composite
def selection_settings(draw, B):
    """metric, min_size (a count or a fraction), tol."""
    metric = draw(st.sampled_from(METRIC_NAMES))
    if draw(st.booleans()):
        min_size = draw(st.integers(1, B))
    else:
        min_size = draw(st.floats(0.01, 1.0))
    tol = draw(st.sampled_from([0.0, 0.0, 0.01, 0.3]))
    return metric, min_size, tol


@st.composite
def mlp_batches(draw, max_b, activations=tuple(ACTIVATIONS)):
    """A random MLP and a batch for it: B from 1, random labels, duplicated rows, huge or tiny inputs."""
    sizes = [draw(st.integers(1, 6)) for _ in range(draw(st.integers(2, 4)))]
    sizes[-1] = max(sizes[-1], 2)
    model = MLP(sizes, activation=draw(st.sampled_from(activations)), seed=draw(st.integers(0, 2 ** 16)))
    B = draw(st.integers(1, max_b))
    X = draw(arrays(np.float64, (B, sizes[0]), elements=st.floats(-3, 3)))
    y = np.array(draw(st.lists(st.integers(0, sizes[-1] - 1), min_size=B, max_size=B)))
    if draw(st.booleans()):                            # duplicated samples
        src = np.array(draw(st.lists(st.integers(0, B - 1), min_size=B, max_size=B)))
        X, y = X[src], y[src]
    return model, X * 10.0 ** draw(st.integers(-6, 6)), y


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------
def resolved_min_size(min_size, B):
    return min_size_count(min_size, B)


def value_and_bound(metric, K, indices):
    """The metric of ``indices`` from K, and a first-order bound on the rounding of any way of computing it.

    The searches update T and Q incrementally from the whole batch's sums, so their
    absolute errors are bounded in terms of the whole of K: ``dT``, ``dQ``, the
    rounding tolerances of sums of ``Σ|K_ii|`` and ``Σ|K_ij|`` after a search's
    operations. The bound is inf where the value may lie on either side of the
    Q-is-zero guard (then finite and +inf are both right).
    """
    sub = K[np.ix_(indices, indices)]
    k = len(indices)
    T, Q = float(np.trace(sub)), float(sub.sum())
    n_ops = search_ops(K.shape[0])
    dT, dQ = rounding_tolerance(np.abs(np.diag(K)).sum(), n_ops), rounding_tolerance(np.abs(K).sum(), n_ops)
    value = float(metric_value(metric, T, Q, k))
    if metric == "variance":
        return value, dT / k + dQ / k ** 2
    if Q - dQ <= Q_EPS * k * (T + dT):
        return value, np.inf
    bound = dT / (Q - dQ) + (T + dT) / (Q - dQ) * (dQ / (Q - dQ))
    return value, bound * (k if metric == "normalized_variance" else 1)


def assert_valid(sel, B, m, strategy):
    """A valid subset of size >= m; statistics and values finite or +inf, never NaN."""
    idx = sel.indices
    assert idx.dtype == np.int64 and idx.ndim == 1
    assert np.all(np.diff(idx) > 0), idx                       # sorted, distinct
    assert idx.size == 0 or (idx[0] >= 0 and idx[-1] < B), idx
    assert m <= idx.size <= B
    if strategy == "all":
        assert idx.size == B
    trace = sel.trace
    for v in (sel.value, trace.full_value, *trace.values):
        assert not np.isnan(v) and v != -np.inf, (v, trace)
    assert np.isfinite(trace.full_T) and np.isfinite(trace.full_Q)
    if strategy == "greedy":
        assert idx.size == B - len(trace.removed)
        assert np.array_equal(np.setdiff1d(np.arange(B), trace.removed), idx)


def clear(sel, K) -> bool:
    """Every decision of the greedy search was clear (spec §5: margins above the ambiguity threshold)."""
    if sel.trace.strategy != "greedy":
        return True
    margins = decision_margins(K, sel)
    return decisive_steps(margins, AMBIGUOUS) == len(margins)


def strategies_for(B):
    return ("greedy", "prefix", "all") + (("exhaustive",) if B <= EXHAUSTIVE_B else ())


# ---------------------------------------------------------------------------------------------------------------
# The search, on drawn Gram matrices
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_selection_is_a_valid_subset_whose_value_is_its_metric(backend):
    @examples(backend)
    @given(data=st.data())
    def check(data):
        K = data.draw(gram_matrices(MAX_B[backend]))
        B = K.shape[0]
        metric, min_size, tol = data.draw(selection_settings(B))
        m = resolved_min_size(min_size, B)
        for strategy in strategies_for(B):
            sel = get_backend(backend).select(K, metric, strategy, min_size, tol)
            assert_valid(sel, B, m, strategy)
            value, bound = value_and_bound(metric, K, sel.indices)
            if np.isfinite(bound):
                assert sel.value == value or abs(sel.value - value) <= bound, (strategy, sel.value, value, bound)
            if not np.any(K):                                   # Q = 0: scale-free metrics +inf, variance 0
                assert sel.value == (0.0 if metric == "variance" else np.inf)

    check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_exhaustive_is_never_worse_than_greedy_or_prefix(backend):
    @examples(backend)
    @given(data=st.data())
    def check(data):
        K = data.draw(gram_matrices(min(MAX_B[backend], EXHAUSTIVE_B)))
        metric, min_size, tol = data.draw(selection_settings(K.shape[0]))
        best, best_bound = value_and_bound(metric, K, get_backend(backend).select(K, metric, "exhaustive", min_size).indices)
        for strategy in ("greedy", "prefix"):
            value, bound = value_and_bound(metric, K, get_backend(backend).select(K, metric, strategy, min_size, tol).indices)
            if np.isfinite(bound) and np.isfinite(best_bound):
                assert best <= value + bound + best_bound, (strategy, best, value)

    check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_greedy_path_is_monotone(backend):
    @examples(backend)
    @given(data=st.data())
    def check(data):
        K = data.draw(gram_matrices(MAX_B[backend]))
        metric, min_size, tol = data.draw(selection_settings(K.shape[0]))
        trace = get_backend(backend).select(K, metric, "greedy", min_size, tol).trace
        current = trace.full_value
        for value in trace.values:
            assert value < (current if current <= 0 else (1 - tol) * current), (current, value, trace)
            current = value

    check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_permuting_the_batch_permutes_the_selection(backend):
    @examples(backend)
    @given(data=st.data())
    def check(data):
        K = data.draw(gram_matrices(MAX_B[backend]))
        B = K.shape[0]
        metric, min_size, tol = data.draw(selection_settings(B))
        perm = np.array(data.draw(st.permutations(range(B))), dtype=np.int64)
        Kp = K[np.ix_(perm, perm)]                      # sample j of the new batch is sample perm[j]
        for strategy in ("greedy", "all") + (("exhaustive",) if B <= EXHAUSTIVE_B else ()):
            sel = get_backend(backend).select(K, metric, strategy, min_size, tol)
            out = get_backend(backend).select(Kp, metric, strategy, min_size, tol)
            assert_within_rounding(out.trace.full_T, sel.trace.full_T, np.abs(np.diag(K)).sum(), search_ops(B),
                                   what="T of the permuted batch")
            assert_within_rounding(out.trace.full_Q, sel.trace.full_Q, np.abs(K).sum(), search_ops(B),
                                   what="Q of the permuted batch")
            value, bound = value_and_bound(metric, K, sel.indices)
            other, other_bound = value_and_bound(metric, K, np.sort(perm[out.indices]))
            if strategy == "exhaustive" and np.isfinite(bound + other_bound):    # the optimum does not move
                assert abs(value - other) <= bound + other_bound or value == other
            if strategy == "all" or (strategy == "greedy" and clear(sel, K) and clear(out, Kp)):
                np.testing.assert_array_equal(np.sort(perm[out.indices]), sel.indices)
                np.testing.assert_array_equal(perm[out.trace.removed], sel.trace.removed)

    check()


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "numpy"])
def test_backend_agrees_with_numpy_on_drawn_matrices(backend):
    @examples(backend)
    @given(data=st.data())
    def check(data):
        K = data.draw(gram_matrices(MAX_B[backend]))
        metric, min_size, tol = data.draw(selection_settings(K.shape[0]))
        assert_same_selection(select(K, metric, "greedy", min_size, tol),
                              get_backend(backend).select(K, metric, "greedy", min_size, tol), K)
        for strategy in ("prefix",) + (("exhaustive",) if K.shape[0] <= EXHAUSTIVE_B else ()):
            ref = select(K, metric, strategy, min_size)
            out = get_backend(backend).select(K, metric, strategy, min_size)
            value, bound = value_and_bound(metric, K, ref.indices)
            other, other_bound = value_and_bound(metric, K, out.indices)
            if np.isfinite(bound + other_bound):
                assert abs(value - other) <= bound + other_bound or value == other, (strategy, value, other)

    check()


# ---------------------------------------------------------------------------------------------------------------
# Metrics on valid statistics
# ---------------------------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None, derandomize=True)
@given(k=st.integers(1, 10 ** 6), T=st.floats(0, 1e300), fraction=st.floats(0, 1))
def test_metrics_are_finite_or_plus_infinity_never_nan(k, T, fraction):
    Q = fraction * k * T                                   # Cauchy–Schwarz: 0 <= Q <= k T
    for metric in METRIC_NAMES:
        value = float(metric_value(metric, T, Q, k))
        assert not np.isnan(value) and value != -np.inf, (metric, T, Q, k)
        if metric != "variance" and Q <= Q_EPS * k * T:
            assert value == np.inf


# ---------------------------------------------------------------------------------------------------------------
# Per-sample gradients, the Gram identity and whole DBA steps, on drawn MLPs and batches
# ---------------------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=mlp_batches(6, activations=("tanh", "sigmoid", "identity")), seed=st.integers(0, 2 ** 16))
def test_per_sample_gradients_are_each_samples_own_and_match_finite_differences(case, seed):
    model, X, y = case
    X = X / max(1.0, np.abs(X).max())                     # moderate inputs: finite differences need them
    grads = per_sample_grads(model, X, y)
    direction = [(np.random.default_rng(seed).normal(size=W.shape), np.zeros_like(b)) for W, b in model.params]
    for i in range(X.shape[0]):
        alone = per_sample_grads(model, X[i:i + 1], y[i:i + 1])
        for (gW, gb), (aW, ab) in zip(grads, alone):             # a batch of one may take other BLAS kernels
            assert_within_rounding(gW[i], aW[0], array_scale(aW), network_ops(model.sizes), what="weight gradient")
            assert_within_rounding(gb[i], ab[0], array_scale(ab), network_ops(model.sizes), what="bias gradient")
        exact = sum(float(np.sum(gW[i] * vW)) for (gW, _), (vW, _) in zip(grads, direction))
        h = 1e-5

        def loss_at(t):
            shifted = model.copy()
            shifted.set_params([(W + t * vW, b) for (W, b), (vW, _) in zip(model.params, direction)])
            return float(cross_entropy(shifted.forward(X[i:i + 1]), y[i:i + 1])[0])

        numeric = (loss_at(h) - loss_at(-h)) / (2 * h)
        # a loss rounds like its terms (logsumexp(Z) and Z_y); the third derivative along v scales like |v|³
        loss_scale = 1.0 + loss_at(0.0) + np.abs(model.forward(X[i:i + 1])).max()
        norm_v = np.sqrt(sum(np.sum(v ** 2) for v, _ in direction))
        tol = central_difference_tolerance(loss_scale, network_ops(model.sizes), h, third_derivative=norm_v ** 3)
        assert_within(numeric, exact, tol, "directional derivative", "the central-difference tolerance",
                      kind="truncation")


@pytest.mark.parametrize("backend", BACKENDS)
def test_gram_identity_batch_sum_and_dba_step_on_drawn_mlps(backend):
    be = get_backend(backend)

    @examples(backend)
    @given(case=mlp_batches(MAX_B[backend]), metric=st.sampled_from(METRIC_NAMES))
    def check(case, metric):
        model, X, y = case
        signals = backprop(model, X, y)
        B = X.shape[0]
        for (A, D), (gW, gb) in zip(signals.layers, per_sample_grads(model, X, y)):
            G = flatten_layer_grads(gW, gb)
            K = be.kernels.gram(A, D)
            explicit = G @ G.T                          # inner dimension P; the identity's in + out, then a product
            assert_within_rounding(K, explicit, gram_scale(A, D), G.shape[1] + A.shape[1] + D.shape[1] + 1,
                                   what="Gram identity against G Gᵀ")
            mW, mb = be.kernels.mean_grad(A, D, None)
            sW, sb = mean_grad_scale(A, D)              # B × (a sum of B terms / B) against the sum of B terms
            assert_within_rounding(B * mW, gW.sum(axis=0), B * sW, B + 2, what="B × mean weight gradient")
            assert_within_rounding(B * mb, gb.sum(axis=0), B * sb, B + 2, what="B × mean bias gradient")
        if backend == "numpy":
            return
        opt = dba(sgd(0.1), metric=metric)
        ref_updates, ref_state = opt.update(None, opt.init(model.params), model.params, signals=signals)
        updates, state = opt.update(None, opt.init(model.params), model.params,
                                    signals=replace(signals, backend=backend))
        for r, o, ru, u, (A, D) in zip(ref_state.last, state.last, ref_updates, updates, signals.layers):
            K = gram(A, D)                              # the reference's; the backend computed its own
            if clear(r.selection, K) and assert_same_selection(r.selection, o.selection, K, A.shape[1] + D.shape[1] + 1):
                k = len(r.selection.indices)            # −0.1 × a mean over the k selected samples
                for a, b, scale, what in zip(ru, u, mean_grad_scale(A, D, r.selection.indices), ("weight", "bias")):
                    assert_within_rounding(b, a, 0.1 * scale, k + 2, what=f"{what} update")

    check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_strategy_all_reproduces_the_base_optimizer_bit_for_bit(backend):
    @examples(backend)
    @given(case=mlp_batches(MAX_B[backend]))
    def check(case):
        model, X, y = case
        signals = backprop(model, X, y)
        base = sgd(0.1)
        expected, _ = base.update(mean_grads(signals), base.init(model.params), model.params)
        opt = dba(base, strategy="all")
        got, _ = opt.update(None, opt.init(model.params), model.params, signals=replace(signals, backend=backend))
        for (eW, eb), (gW, gb) in zip(expected, got):
            np.testing.assert_array_equal(gW, eW)
            np.testing.assert_array_equal(gb, eb)

    check()

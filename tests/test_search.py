"""Metrics and subset search (spec §4, §5, §7).

Values computed two ways (a search's running sums, a recomputation from the
subset, explicit gradients) agree to rounding at their scale (dba_ref.agreement).
"""
import numpy as np
import pytest
from helpers import assert_path_values, assert_selection_value, assert_within_rounding, selection_value_tolerances

from dba_ref import METRICS, metric_value, select
from dba_ref.agreement import decision_margins, value_scale
from dba_ref.metrics import subset_stats
from dba_ref.search import EXHAUSTIVE_MAX_B, alignment_order

METRIC_NAMES = list(METRICS)
SEARCHES = ["greedy", "prefix", "exhaustive"]


def random_gram(rng, B, P=12, signal=1.0):
    """Gram of B gradients = common direction × signal + noise (so the metrics have structure)."""
    G = signal * rng.normal(size=P) + rng.normal(size=(B, P))
    return G @ G.T, G


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_metrics_match_their_definitions_on_explicit_gradients(rng, metric):
    K, G = random_gram(rng, 7)
    S = [0, 2, 3, 6]
    T, Q, k = subset_stats(K, S)
    g = G[S]
    mean = g.mean(axis=0)
    V = np.mean(np.sum((g - mean) ** 2, axis=1))          # biased covariance trace
    expected = {"variance": V, "normalized_variance": V / (mean @ mean),
                "mean_variance": (V / k) / (mean @ mean)}[metric]
    # both sides: sums over the P = 12 coordinates, then over the k samples
    assert_within_rounding(metric_value(metric, T, Q, k), expected, value_scale(metric, T, Q, k), G.shape[1] + k)


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_single_sample_metric_is_zero_and_cancelling_subset_is_inf(metric):
    assert metric_value(metric, 4.0, 4.0, 1) == 0.0
    g = np.array([[1.0, 2.0], [-1.0, -2.0]])
    T, Q, k = subset_stats(g @ g.T, [0, 1])
    value = metric_value(metric, T, Q, k)
    assert value == (5.0 if metric == "variance" else np.inf)
    zero = metric_value(metric, 0.0, 0.0, 3)
    assert zero == (0.0 if metric == "variance" else np.inf) and not np.isnan(zero)


@pytest.mark.parametrize("metric", METRIC_NAMES)
@pytest.mark.parametrize("strategy", SEARCHES + ["all"])
def test_selection_is_a_valid_subset_respecting_min_size(rng, metric, strategy):
    K, _ = random_gram(rng, 12)
    for min_size in (1, 2, 5, 12, 0.5):
        sel = select(K, metric, strategy, min_size)
        m = min_size if isinstance(min_size, int) else 6
        assert sel.size >= m
        assert np.all(np.diff(sel.indices) > 0) and sel.indices.min() >= 0 and sel.indices.max() < 12
        T, Q, k = subset_stats(K, sel.indices)
        assert_selection_value(metric_value(metric, T, Q, k), sel, K, what=f"{strategy} value, min_size={min_size}")
        if strategy == "all":
            assert sel.size == 12


@pytest.mark.parametrize("metric", METRIC_NAMES)
@pytest.mark.parametrize("min_size", [1, 2, 4])
def test_exhaustive_is_no_worse_than_greedy_and_prefix(rng, metric, min_size):
    for trial in range(5):
        K, _ = random_gram(rng, 10, signal=trial * 0.5)
        best = select(K, metric, "exhaustive", min_size)
        for strategy in ("greedy", "prefix"):
            other = select(K, metric, strategy, min_size)         # the same subset may be found, rounded otherwise
            slack = selection_value_tolerances(best, K)[0] + selection_value_tolerances(other, K)[0]
            assert best.value <= other.value + slack, strategy


def test_exhaustive_finds_the_true_optimum_by_brute_force(rng):
    K, _ = random_gram(rng, 6)
    from itertools import combinations
    best = min((float(metric_value("mean_variance", *subset_stats(K, list(S)))), S)
               for k in range(2, 7) for S in combinations(range(6), k))
    sel = select(K, "mean_variance", "exhaustive", 2)
    assert tuple(sel.indices) == best[1]
    assert_selection_value(best[0], sel, K)


@pytest.mark.parametrize("metric", METRIC_NAMES)
@pytest.mark.parametrize("tol", [0.0, 0.01])
def test_greedy_path_is_monotone_and_running_sums_are_exact(rng, metric, tol):
    K, _ = random_gram(rng, 40, signal=0.7)
    sel = select(K, metric, "greedy", 2, tol)
    tr = sel.trace
    values = np.concatenate([[tr.full_value], tr.values])
    for before, after in zip(values[:-1], values[1:]):
        assert after < (before if before <= 0 else (1 - tol) * before)
    # the O(B) running updates equal recomputation from scratch at every step, to the rounding of the updates
    kept, recomputed = list(range(40)), []
    for i in tr.removed:
        kept.remove(int(i))
        recomputed.append(float(metric_value(metric, *subset_stats(K, kept))))
    assert_path_values(recomputed, sel, K)
    assert kept == sel.indices.tolist()
    assert len(decision_margins(K, sel)) >= len(tr.removed)     # every accepted removal was a decision


def test_greedy_removes_the_outlier_first():
    G = np.array([[1.0, 0.0], [1.1, 0.1], [0.9, -0.1], [1.0, 0.05], [-1.0, 2.0]])
    sel = select(G @ G.T, "mean_variance", "greedy", 2)
    assert sel.trace.removed[0] == 4
    assert 4 not in sel.indices


def test_greedy_stops_at_min_size_and_when_no_removal_helps():
    G = np.ones((5, 3))                       # identical gradients: variance 0 everywhere
    sel = select(G @ G.T, "variance", "greedy", 1)
    assert sel.size == 5 and len(sel.trace.removed) == 0   # 0 is not strictly below 0
    K = np.diag([1.0, 2.0, 3.0, 4.0])          # orthogonal gradients
    assert select(K, "variance", "greedy", 3).size == 3


def test_ties_go_to_the_lowest_index():
    G = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    sel = select(G @ G.T, "variance", "greedy", 2)
    # removing 0 or 3 (or 1 or 2) ties; the lowest index goes first
    assert sel.trace.removed[0] == 0


@pytest.mark.parametrize("metric", METRIC_NAMES)
@pytest.mark.parametrize("strategy", SEARCHES)
def test_permuting_the_batch_permutes_the_selection(rng, metric, strategy):
    K, _ = random_gram(rng, 11, signal=0.8)
    perm = rng.permutation(11)
    Kp = K[np.ix_(perm, perm)]
    a, b = select(K, metric, strategy, 2), select(Kp, metric, strategy, 2)
    assert sorted(perm[b.indices].tolist()) == a.indices.tolist()
    assert_selection_value(b.value, a, K)                     # the same subset, summed in another order
    if strategy == "greedy":
        np.testing.assert_array_equal(perm[b.trace.removed], a.trace.removed)


def test_prefix_ranks_by_alignment_and_keeps_the_longest_best_prefix():
    G = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 0.0], [-1.0, 0.0]])
    order = alignment_order(G @ G.T)
    assert order.tolist() == [1, 0, 2, 3]          # zero gradient has c = 0 and sits before the negative one
    sel = select(G @ G.T, "variance", "prefix", 1)
    assert sel.trace.removed.tolist() == [3, 2, 0]
    assert len(sel.trace.values) == 3


def test_float32_gram_is_accumulated_in_float64(rng):
    K, _ = random_gram(rng, 30, signal=2.0)
    a = select(K, "mean_variance", "greedy", 2)
    b = select(K.astype(np.float32), "mean_variance", "greedy", 2)
    assert isinstance(b.value, float)
    np.testing.assert_array_equal(b.indices, a.indices)
    # K's entries rounded once to float32, relative to |K_ij| <= sqrt(K_ii K_jj)
    assert_selection_value(b.value, a, K, gram_rounding=1, dtype=np.float32)


def test_docstring_example():
    G = np.array([[1.0, 0.0], [1.1, 0.1], [0.9, -0.1], [-1.0, 2.0]])
    assert select(G @ G.T, min_size=3).indices.tolist() == [0, 1, 2]


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(metric="varience"), ValueError, "unknown metric 'varience'"),
    (dict(strategy="beam"), ValueError, "unknown strategy 'beam'"),
    (dict(min_size=0), ValueError, "min_size must be >= 1"),
    (dict(min_size=9), ValueError, r"min_size=9 is larger than the batch \(B=8\)"),
    (dict(min_size=1.5), ValueError, r"fraction must lie in \(0, 1\]"),
    (dict(min_size=True), TypeError, "not a bool"),
    (dict(min_size="2"), TypeError, "min_size must be an int count"),
    (dict(tol=1.0), ValueError, r"tol must lie in \[0, 1\)"),
    (dict(metric=3), TypeError, "metric must be a string"),
    (dict(kernels="numba"), TypeError, "kernels must be a dba_ref.search.SearchKernels"),
])
def test_bad_arguments_say_what_is_wrong(rng, kwargs, error, match):
    K, _ = random_gram(rng, 8)
    with pytest.raises(error, match=match):
        select(K, **kwargs)


def test_bad_gram_matrices_are_refused(rng):
    K, _ = random_gram(rng, 21)
    with pytest.raises(ValueError, match=f"B <= {EXHAUSTIVE_MAX_B}, got B=21"):
        select(K, strategy="exhaustive")
    with pytest.raises(ValueError, match="square"):
        select(K[:, :5])
    with pytest.raises(ValueError, match="empty"):
        select(np.zeros((0, 0)))
    bad = K.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        select(bad)
    with pytest.raises(TypeError, match="real numeric"):
        select(np.array([["a"]]))

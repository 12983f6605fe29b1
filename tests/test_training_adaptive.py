"""Adaptive batch sizes: the sampler of the training loop, the norm and coordinate-wise tests, AdAdaGrad in training."""
import math

import numpy as np
import pytest

from dba_ref import MLP, backprop, per_sample_grads
from dba_ref.backprop import Signals, flatten_layer_grads, mean_grads
from dba_ref.data import load_dataset, make_split
from dba_ref.optimizers import adadagrad, adadagrad_norm, adagrad, adaptive_batch, sgd
from dba_ref.optimizers.adaptive_batch import coordinate_test, gram_diagonal, norm_test
from dba_ref.plots import plot_history
from dba_ref.agreement import value_scale
from dba_ref.training import BatchSampler, History, train

from conftest import assert_within_rounding, random_batch


# ---------------------------------------------------------------------------------------------------------------
# The sampler
# ---------------------------------------------------------------------------------------------------------------
def test_fixed_size_sampler_is_the_permutation_cut_in_consecutive_slices():
    sampler = BatchSampler(23, 5, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    for _ in range(3):
        order = rng.permutation(23)
        expected = [order[s:s + 5] for s in range(0, 23, 5)]
        got = list(sampler.epoch())
        assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_changing_size_mid_epoch_still_visits_every_sample_once():
    sampler = BatchSampler(50, 3, np.random.default_rng(0))
    sizes, seen = [], []
    for idx in sampler.epoch():
        sizes.append(idx.size)
        seen.extend(idx)
        sampler.batch_size = sampler.batch_size + 4
    assert sorted(seen) == list(range(50))
    assert sizes[:4] == [3, 7, 11, 15] and sum(sizes) == 50 and sizes[-1] == 14


def test_sampler_caps_the_size_and_reads_infinity_as_everything():
    sampler = BatchSampler(10, 4, np.random.default_rng(0), shuffle=False)
    sampler.batch_size = 99
    assert sampler.batch_size == 10
    sampler.batch_size = math.inf
    assert sampler.batch_size == 10 and [idx.size for idx in sampler.epoch()] == [10]
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        sampler.batch_size = 0
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        sampler.batch_size = 2.5


# ---------------------------------------------------------------------------------------------------------------
# The tests, against explicit per-sample gradients
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def batch(rng):
    model = MLP([7, 6, 4], seed=1)
    X, y = random_batch(rng, model, 9)
    return model, X, y


def explicit_stats(model, X, y):
    """Per-sample gradients of all layers as rows of G (B, P): the definitions, materialised."""
    return np.hstack([flatten_layer_grads(gW, gb) for gW, gb in per_sample_grads(model, X, y)])


def test_gram_diagonal_is_the_squared_norm_of_every_per_sample_gradient(batch):
    model, X, y = batch
    signals = backprop(model, X, y)
    for (A, D), (gW, gb) in zip(signals.layers, per_sample_grads(model, X, y)):
        G = flatten_layer_grads(gW, gb)
        squares = np.sum(G * G, axis=1)                # positive terms: their sum is their scale
        assert_within_rounding(gram_diagonal(A, D), squares, squares, G.shape[1] + A.shape[1] + D.shape[1] + 1)


def statistic_scale(G) -> np.ndarray:
    """The rounding scale of ``σ²/(B‖ḡ‖²) = B/(B − 1) · (T/Q − 1/B)`` per coordinate j.

    ``T = Σ_i g_ij²``, ``Q = (Σ_i g_ij)²``: ``B/(B − 1)`` times mean_variance's (metrics.value_scale).
    """
    B = G.shape[0]
    return B / (B - 1) * value_scale("mean_variance", np.sum(G * G, axis=0), G.sum(axis=0) ** 2, B)


def test_norm_test_equals_its_definition(batch):
    model, X, y = batch
    G = explicit_stats(model, X, y)
    B, P = G.shape
    var = np.var(G, axis=0, ddof=1).sum()                  # trace of the sample covariance
    mean2 = np.sum(G.mean(axis=0) ** 2)
    result = norm_test(backprop(model, X, y), eta=0.3)
    assert result.batch_size == B
    # the same statistic of all P coordinates together: T = Σ_i ‖g_i‖², Q = ‖Σ_i g_i‖²
    scale = B / (B - 1) * value_scale("mean_variance", np.sum(G * G), np.sum(G.sum(axis=0) ** 2), B)
    assert_within_rounding(result.statistic, var / (B * mean2), scale, P + B + 4, what="statistic")
    assert_within_rounding(result.implied_size, var / (0.3 ** 2 * mean2), B / 0.3 ** 2 * scale, P + B + 6,
                           what="implied size")
    assert result.passed == (var / B <= 0.3 ** 2 * mean2)


def test_coordinate_test_equals_its_definition(batch):
    model, X, y = batch
    X = X.copy()
    X[:, 2] = 0.0                   # a dead input: its weights have σ_j² = ḡ_j = 0 and must not count
    G = explicit_stats(model, X, y)
    B = G.shape[0]
    var, mean2 = np.var(G, axis=0, ddof=1), G.mean(axis=0) ** 2
    live = np.flatnonzero(var > 0)                 # the dead input's weights have exact zeros
    j = live[np.argmax(var[live] / (B * mean2[live]))]
    result = coordinate_test(backprop(model, X, y), eta=0.5)
    # coordinate j's statistic, from sums over B samples (and the mean gradient's)
    assert_within_rounding(result.statistic, var[j] / (B * mean2[j]), statistic_scale(G)[j], B + 4, what="statistic")
    assert_within_rounding(result.implied_size, B * result.statistic / 0.25, B * result.statistic / 0.25, 2,
                           what="implied size")


def test_coordinate_test_fails_outright_where_the_mean_is_zero_but_the_samples_are_not():
    A = np.array([[1.0], [-1.0]])           # one input, two samples with opposite inputs
    D = np.array([[1.0], [1.0]])            # → weight gradients +1 and −1: mean 0, variance 2
    result = coordinate_test(Signals([A], [D], np.zeros(2)), eta=0.1)
    assert math.isinf(result.statistic) and not result.passed


def test_a_single_sample_has_no_test():
    model = MLP([3, 2], seed=0)
    signals = backprop(model, np.ones((1, 3)), np.array([1]))
    for test in (norm_test, coordinate_test):
        result = test(signals, 0.1)
        assert math.isnan(result.statistic) and result.passed


def test_requested_size_grows_only_and_respects_the_cap(batch):
    model, X, y = batch
    signals = backprop(model, X, y)
    opt = adadagrad_norm(eta=0.05)
    state = opt.init(model.params)
    _, state = opt.update(None, state, model.params, signals=signals)
    assert not state.last.passed
    assert state.batch_size == math.ceil(state.last.implied_size) > 9
    _, easy = adadagrad_norm(eta=100.0).update(None, opt.init(model.params), model.params, signals=signals)
    assert easy.last.passed and easy.batch_size == 9
    _, kept = adadagrad_norm(eta=100.0).update(None, state, model.params, signals=signals)   # a passing test never shrinks it
    assert kept.batch_size == state.batch_size
    _, capped = adadagrad_norm(eta=0.05, max_batch_size=12).update(None, opt.init(model.params), model.params, signals=signals)
    assert capped.batch_size == 12


def test_the_update_is_the_base_optimizers_on_the_mean_gradient(batch):
    model, X, y = batch
    signals = backprop(model, X, y)
    base, wrapped = adagrad(0.3), adadagrad(0.3)
    expected, _ = base.update(mean_grads(signals), base.init(model.params), model.params)
    got, _ = wrapped.update(None, wrapped.init(model.params), model.params, signals=signals)
    for (eW, eb), (gW, gb) in zip(expected, got):
        np.testing.assert_array_equal(eW, gW)
        np.testing.assert_array_equal(eb, gb)


# ---------------------------------------------------------------------------------------------------------------
# In the training loop
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return make_split(load_dataset("digits"), per_class=20, seed=0)


def fit(split, optimizer, seed=0, epochs=4, batch_size=4):
    model = MLP([64, 16, 10], seed=seed)
    history = train(model, optimizer, split.X_train, split.y_train, split.X_test, split.y_test, epochs=epochs,
                    batch_size=batch_size, seed=seed, progress=False)
    return model, history


def test_adadagrad_norm_grows_the_batch_and_records_it(digits):
    n = len(digits.y_train)
    _, history = fit(digits, adadagrad_norm(eta=0.5))
    sizes, requested = history.steps["batch_size"], history.steps["requested_batch_size"]
    assert len(sizes) == len(requested) == len(history.steps["batch_test"]) == len(history.steps["loss"])
    assert sizes[0] == 4 and max(sizes) > 4 * 4
    assert all(later >= earlier for earlier, later in zip(requested, requested[1:]))      # requests never shrink
    position = 0                        # samples of the current epoch already used
    for k in range(1, len(sizes)):
        position = (position + sizes[k - 1]) % n
        assert sizes[k] == min(requested[k - 1], n - position)      # the request, or what is left of the epoch
    assert history.config["adaptive_batch"] is True and history.config["batch_size"] == 4


def test_adaptive_training_repeats_exactly_by_seed(digits):
    m1, h1 = fit(digits, adadagrad(eta=0.5, test="norm"))
    m2, h2 = fit(digits, adadagrad(eta=0.5, test="norm"))
    _, h3 = fit(digits, adadagrad(eta=0.5, test="norm"), seed=1)
    assert h1.steps == h2.steps
    np.testing.assert_array_equal(m1.weights[0], m2.weights[0])
    assert h1.steps["batch_size"] != h3.steps["batch_size"]


def test_the_coordinate_test_on_digits_asks_for_everything_at_once(digits):
    """Pixels seen by a single sample of the batch fail their coordinate test outright (see the docs)."""
    _, history = fit(digits, adadagrad(), epochs=2)
    assert history.steps["requested_batch_size"][0] == 200
    assert history.steps["batch_size"][:3] == [4, 196, 200]           # the rest of epoch 1, then all of epoch 2


def test_any_plain_optimizer_can_run_with_adaptive_batches(digits):
    _, history = fit(digits, adaptive_batch(sgd(0.2), "norm", eta=0.5), epochs=2)
    assert history.final["train_loss"] < history.epochs[0]["train_loss"]
    assert max(history.steps["batch_size"]) > 4


def test_fixed_batch_runs_have_no_adaptive_records(digits):
    _, history = fit(digits, adagrad(0.1), epochs=1, batch_size=32)
    assert "requested_batch_size" not in history.steps and history.config["adaptive_batch"] is False
    assert history.steps["batch_size"] == [32] * 6 + [8]


def test_history_round_trips_and_the_figure_has_the_batch_size_panel(tmp_path, digits):
    _, history = fit(digits, adadagrad_norm(eta=0.5), epochs=2)
    path = history.save(tmp_path / "results.json")
    assert History.load(path).steps["requested_batch_size"] == history.steps["requested_batch_size"]
    fig = plot_history(history, tmp_path / "training.png")
    assert (tmp_path / "training.png").stat().st_size > 0
    assert fig.axes[-1].get_ylabel() == "batch size" and len(fig.axes) == 3

"""Per-sample backpropagation (spec §2, §7): finite differences, sums, dtypes."""
import numpy as np
import pytest
from conftest import random_batch

from dba_ref import MLP, backprop, batch_grads, per_sample_grads
from dba_ref.model import cross_entropy

ACTS = ["relu", "tanh", "sigmoid", "identity"]


def loss_of_sample(model, x, label):
    return float(cross_entropy(model.forward(x[None]), np.array([label]))[0])


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("sizes", [[5, 3], [4, 6, 3], [3, 5, 4, 2]])
def test_per_sample_grads_match_central_finite_differences(rng, activation, sizes):
    model = MLP(sizes, activation=activation, seed=1)
    X, y = random_batch(rng, model, 4)
    grads = per_sample_grads(model, X, y)
    h = 1e-6
    for i in range(X.shape[0]):
        for l in range(model.n_layers):
            for array, analytic in ((model.weights[l], grads[l][0][i]), (model.biases[l], grads[l][1][i])):
                numeric = np.zeros_like(array)
                for idx in np.ndindex(array.shape):
                    old = array[idx]
                    array[idx] = old + h
                    up = loss_of_sample(model, X[i], y[i])
                    array[idx] = old - h
                    down = loss_of_sample(model, X[i], y[i])
                    array[idx] = old
                    numeric[idx] = (up - down) / (2 * h)
                # central differences are accurate to ~h² · f''' plus rounding ~1e-16 / h
                np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_sum_of_per_sample_grads_is_B_times_batch_gradient(rng):
    model = MLP([7, 9, 5, 3], activation="tanh", seed=3)
    X, y = random_batch(rng, model, 11)
    for (gW, gb), (mW, mb) in zip(per_sample_grads(model, X, y), batch_grads(model, X, y)):
        np.testing.assert_allclose(gW.sum(axis=0), 11 * mW, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gb.sum(axis=0), 11 * mb, rtol=1e-12, atol=1e-14)


def test_per_sample_grad_equals_gradient_of_batch_of_one(rng):
    model = MLP([6, 4, 3], seed=0)
    X, y = random_batch(rng, model, 5)
    full = per_sample_grads(model, X, y)
    for i in range(5):
        single = batch_grads(model, X[i:i + 1], y[i:i + 1])
        for l in range(model.n_layers):
            np.testing.assert_allclose(full[l][0][i], single[l][0], rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(full[l][1][i], single[l][1], rtol=1e-13, atol=1e-15)


def test_signal_shapes_and_losses(rng):
    model = MLP([6, 8, 5, 4], seed=0)
    X, y = random_batch(rng, model, 7)
    s = backprop(model, X, y)
    assert [A.shape for A in s.inputs] == [(7, 6), (7, 8), (7, 5)]
    assert [D.shape for D in s.deltas] == [(7, 8), (7, 5), (7, 4)]
    np.testing.assert_allclose(s.losses, model.losses(X, y))
    # Δ_L rows are softmax − onehot: they sum to zero
    np.testing.assert_allclose(s.deltas[-1].sum(axis=1), 0, atol=1e-15)


def test_float32_model_runs_in_float32_and_stays_close_to_float64(rng):
    m64 = MLP([10, 16, 4], seed=2)
    m32 = MLP([10, 16, 4], seed=2, dtype=np.float32)
    X, y = random_batch(rng, m64, 9)
    g64, g32 = per_sample_grads(m64, X, y), per_sample_grads(m32, X, y)
    for (w64, b64), (w32, b32) in zip(g64, g32):
        assert w32.dtype == np.float32 and b32.dtype == np.float32
        np.testing.assert_allclose(w32, w64, rtol=2e-4, atol=1e-5)
        np.testing.assert_allclose(b32, b64, rtol=2e-4, atol=1e-5)


def test_stable_softmax_cross_entropy_with_huge_logits():
    Z = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    losses = cross_entropy(Z, np.array([2, 1]))
    np.testing.assert_allclose(losses, [2000.0, np.log(3)])

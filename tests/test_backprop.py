"""Per-sample backpropagation (spec §2, §7): finite differences, sums, dtypes.

Floats computed two ways agree to rounding at their scale (dba_ref.agreement, tests/helpers.py).
"""
import numpy as np
import pytest
from helpers import (assert_within, assert_within_rounding, central_difference_tolerance, mean_grad_scale,
                     random_batch, softmax_sum_rounding)

from dba_ref import MLP, backprop, batch_grads, per_sample_grads
from dba_ref.agreement import array_scale, network_ops
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
        # the rounding of one loss evaluation: terms of ℓ = logsumexp(Z) − Z_y, after the network's operations
        loss_scale = 1.0 + abs(loss_of_sample(model, X[i], y[i])) + np.abs(model.forward(X[i:i + 1])).max()
        tol = central_difference_tolerance(loss_scale, network_ops(sizes), h)
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
                assert_within(analytic, numeric, tol, f"sample {i}, layer {l}", "the central-difference tolerance",
                              kind="truncation")


def test_sum_of_per_sample_grads_is_B_times_batch_gradient(rng):
    model = MLP([7, 9, 5, 3], activation="tanh", seed=3)
    X, y = random_batch(rng, model, 11)
    signals = backprop(model, X, y)
    for (gW, gb), (mW, mb), (A, D) in zip(per_sample_grads(model, X, y), batch_grads(model, X, y), signals.layers):
        sW, sb = mean_grad_scale(A, D)              # 11 terms summed in two orders, a division and a product by 11
        assert_within_rounding(gW.sum(axis=0), 11 * mW, 11 * sW, 11 + 2)
        assert_within_rounding(gb.sum(axis=0), 11 * mb, 11 * sb, 11 + 2)


def test_per_sample_grad_equals_gradient_of_batch_of_one(rng):
    model = MLP([6, 4, 3], seed=0)
    X, y = random_batch(rng, model, 5)
    full = per_sample_grads(model, X, y)
    for i in range(5):
        single = batch_grads(model, X[i:i + 1], y[i:i + 1])      # BLAS may take another kernel for one row
        for l in range(model.n_layers):
            for array, ref in ((full[l][0][i], single[l][0]), (full[l][1][i], single[l][1])):
                assert_within_rounding(array, ref, array_scale(ref), network_ops(model.sizes), what=f"layer {l}")


def test_signal_shapes_and_losses(rng):
    model = MLP([6, 8, 5, 4], seed=0)
    X, y = random_batch(rng, model, 7)
    s = backprop(model, X, y)
    assert [A.shape for A in s.inputs] == [(7, 6), (7, 8), (7, 5)]
    assert [D.shape for D in s.deltas] == [(7, 8), (7, 5), (7, 4)]
    np.testing.assert_array_equal(s.losses, model.losses(X, y))        # the same forward pass
    # Δ_L rows are softmax − onehot: they sum to zero, to the rounding of a softmax's row sum
    assert_within_rounding(s.deltas[-1].sum(axis=1), np.zeros(7), *softmax_sum_rounding(model.forward(X)))


def test_float32_model_runs_in_float32_and_stays_close_to_float64(rng):
    m64 = MLP([10, 16, 4], seed=2)
    m32 = MLP([10, 16, 4], seed=2, dtype=np.float32)
    X, y = random_batch(rng, m64, 9)
    g64, g32 = per_sample_grads(m64, X, y), per_sample_grads(m32, X, y)
    for (w64, b64), (w32, b32) in zip(g64, g32):
        assert w32.dtype == np.float32 and b32.dtype == np.float32
        for a32, a64 in ((w32, w64), (b32, b64)):               # X rounded to float32 once, then the network
            assert_within_rounding(a32, a64, array_scale(a64), network_ops(m64.sizes) + 1, np.float32)


def test_stable_softmax_cross_entropy_with_huge_logits():
    Z = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    losses = cross_entropy(Z, np.array([2, 1]))
    # ℓ = logsumexp(Z) − Z_y, terms of sizes 1000 + 1000 and 0 + log 3, a sum over 3 classes
    assert_within_rounding(losses, [2000.0, np.log(3)], [2000.0, np.log(3)], 3)

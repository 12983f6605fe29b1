"""The Gram identity (spec §3)."""
import numpy as np
import pytest
from helpers import assert_within_rounding, random_batch

from dba_ref import MLP, backprop, explicit_gram, explicit_layer_grams, gram, layer_grams, per_sample_grads
from dba_ref.agreement import gram_scale, rounding_tolerance
from dba_ref.backprop import flatten_layer_grads


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("sizes,B", [([5, 3], 1), ([8, 6, 4], 13), ([3, 7, 5, 2], 6)])
def test_gram_identity_equals_explicit_G_Gt(rng, activation, sizes, B):
    model = MLP(sizes, activation=activation, seed=4)
    X, y = random_batch(rng, model, B)
    signals = backprop(model, X, y)
    for l, (K, K_explicit, (A, D)) in enumerate(zip(layer_grams(model, X, y), explicit_layer_grams(model, X, y),
                                                   signals.layers)):
        assert K.shape == (B, B)
        n_in, n_out = sizes[l], sizes[l + 1]
        n_ops = n_out * n_in + n_out + n_in + n_out + 1    # G Gᵀ: inner dimension P; identity: in + out, a product
        assert_within_rounding(K, K_explicit, gram_scale(A, D), n_ops, what=f"layer {l + 1}")
        np.testing.assert_array_equal(K, K.T)
        # positive semi-definite: K is G Gᵀ up to an error E with |E_ij| <= n_ops·ε·|g_i||g_j|, so
        # ‖E‖₂ <= n_ops·ε·trace(K); the eigensolver adds about B·ε·‖K‖₂ <= B·ε·trace(K)
        assert np.linalg.eigvalsh(K).min() >= -rounding_tolerance(np.trace(K), n_ops + B)


def test_gram_bias_term_matters():
    A = np.array([[1.0, 0.0], [0.0, 1.0]])
    D = np.array([[1.0], [1.0]])
    # g_0 = [1, 0, 1], g_1 = [0, 1, 1]: they share only the bias entry
    np.testing.assert_array_equal(gram(A, D), [[2.0, 1.0], [1.0, 2.0]])


def test_explicit_gram_flattening(rng):
    model = MLP([4, 3], seed=0)
    X, y = random_batch(rng, model, 5)
    gW, gb = per_sample_grads(model, X, y)[0]
    G = flatten_layer_grads(gW, gb)
    assert G.shape == (5, 3 * 4 + 3)
    np.testing.assert_array_equal(explicit_gram(gW, gb), G @ G.T)          # it is that product

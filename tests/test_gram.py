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


@pytest.mark.parametrize("sizes,B", [([4, 3], 5), ([3, 7, 5, 2], 6)])
def test_explicit_gram_is_the_inner_products_of_the_per_sample_gradients(rng, sizes, B):
    """``explicit_gram`` against its definition computed another way: ``K[i, j] = ⟨∇W(i), ∇W(j)⟩ + ⟨∇b(i), ∇b(j)⟩``,
    a double loop over the samples on the ``(out, in)`` arrays themselves, with no flattening and no matrix
    product. (``per_sample_grads`` is checked against finite differences of the loss in tests/test_backprop.py.)"""
    model = MLP(sizes, activation="tanh", seed=2)
    X, y = random_batch(rng, model, B)
    for l, ((gW, gb), (A, D)) in enumerate(zip(per_sample_grads(model, X, y), backprop(model, X, y).layers)):
        loop = np.array([[np.sum(gW[i] * gW[j]) + np.sum(gb[i] * gb[j]) for j in range(B)] for i in range(B)])
        P = gW[0].size + gb[0].size                 # both ways sum P products, each in its own order
        assert_within_rounding(explicit_gram(gW, gb), loop, gram_scale(A, D), 2 * P, what=f"layer {l + 1}")


def test_flattened_gradients_are_the_weight_entries_then_the_bias(rng):
    """Row i of ``G`` is ``[vec(∇W(i)), ∇b(i)]`` (``flatten_layer_grads``), ``vec`` taking ∇W(i) row by row."""
    gW, gb = rng.normal(size=(5, 3, 4)), rng.normal(size=(5, 3))
    G = flatten_layer_grads(gW, gb)
    assert G.shape == (5, 3 * 4 + 3)
    for i in range(5):
        np.testing.assert_array_equal(G[i, :12], [gW[i, o, k] for o in range(3) for k in range(4)])
        np.testing.assert_array_equal(G[i, 12:], gb[i])

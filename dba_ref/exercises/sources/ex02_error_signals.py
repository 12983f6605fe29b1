"""Exercise 2 — the per-sample error signals of every layer.

Task
----
Write ``error_signals(weights, biases, X, y)`` for a multilayer perceptron with
ReLU hidden layers and a softmax cross-entropy loss. Layer l = 1..L has
weights ``W_l`` of shape (out_l, in_l) and bias ``b_l`` of shape (out_l,);
``weights`` and ``biases`` are Python lists of them, in layer order. ``X`` is a
batch of B samples, shape (B, in_1); ``y`` holds their integer labels, shape (B,).

Forward pass (rows are samples)::

    A_0 = X
    Z_l = A_{l-1} W_lᵀ + b_l              for l = 1..L
    A_l = relu(Z_l) = max(Z_l, 0)         for l < L       (Z_L are the logits)

Backward pass, for the *sum* of the per-sample losses ℓ_i = −log softmax(Z_L)[i, y_i]::

    Δ_L = softmax(Z_L) − onehot(y)                     shape (B, out_L)
    Δ_l = (Δ_{l+1} W_{l+1}) ⊙ relu'(Z_l)               shape (B, out_l), relu'(z) = 1 if z > 0 else 0

Row i of Δ_l is sample i's own error signal at layer l: its per-sample
gradient is ∇W_l(i) = Δ_l[i] ⊗ A_{l-1}[i] and ∇b_l(i) = Δ_l[i].

Return the list ``[Δ_1, ..., Δ_L]``, one (B, out_l) array per layer, in layer
order (a list of one array when L = 1). Use NumPy only; do not call dba_ref.

Hints
-----
1. Keep every Z_l of the forward pass: the backward pass needs them.
2. softmax(z) = exp(z − max z) / Σ exp(z − max z) per row. Subtracting the row
   maximum changes nothing mathematically and keeps exp from overflowing for
   large logits (one of the test cases has logits near ±900).
3. onehot(y) is ``np.eye(n_classes)[y]``; or copy the softmax and subtract 1 at
   ``[np.arange(B), y]``.
4. Shapes: Δ_{l+1} is (B, out_{l+1}) and W_{l+1} is (out_{l+1}, out_l), so the
   product is ``D_next @ W_next`` — no transpose.
5. The error signal of a sample is not divided by B: that division belongs to
   the mean loss of the usual training loop, not to a per-sample gradient.
"""
import numpy as np


def error_signals(weights, biases, X, y):
    """The error signals ``[Δ_1, ..., Δ_L]`` of a ReLU MLP with softmax cross-entropy, one (B, out_l) array each."""
    # BEGIN SOLUTION
    A, pre = X, []
    for W, b in zip(weights, biases):
        Z = A @ W.T + b
        pre.append(Z)
        A = np.maximum(Z, 0.0)
    Z = pre[-1]
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    D = E / E.sum(axis=1, keepdims=True)
    D[np.arange(len(y)), y] -= 1.0
    deltas = [D]
    for l in range(len(weights) - 2, -1, -1):
        D = (D @ weights[l + 1]) * (pre[l] > 0)
        deltas.append(D)
    return deltas[::-1]
    # END SOLUTION


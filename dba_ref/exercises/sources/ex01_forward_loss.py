"""Exercise 1 — the forward pass, the loss and its gradient, checked by finite differences.

Task
----
Write four functions for a multilayer perceptron with ReLU hidden layers and
a softmax cross-entropy loss. Layer l = 1..L has weights ``W_l`` of shape
(out_l, in_l) and bias ``b_l`` of shape (out_l,); ``weights`` and ``biases``
are Python lists of them, in layer order. ``X`` is a batch of B samples,
shape (B, in_1); ``y`` holds their integer labels, shape (B,).

1. ``forward(weights, biases, X)``: the logits Z_L, shape (B, out_L)::

       A_0 = X
       Z_l = A_{l-1} W_lᵀ + b_l              for l = 1..L
       A_l = relu(Z_l) = max(Z_l, 0)         for l < L       (no ReLU on Z_L)

2. ``cross_entropy(Z, y)``: the loss of every sample, shape (B,)::

       ℓ_i = −log softmax(Z_i)[y_i] = log Σ_c exp(Z_ic) − Z_{i,y_i}

3. ``cross_entropy_grad(Z, y)``: the gradient of each sample's loss with
   respect to its own logits, shape (B, C); row i is ∂ℓ_i/∂Z_i::

       ∂ℓ_i/∂Z_i = softmax(Z_i) − onehot(y_i)

4. ``numerical_gradient(f, Z, h)``: the gradient of a scalar function ``f``
   of an array (``f(Z)`` returns one float) by central differences, one
   entry at a time, the same shape as Z::

       ∂f/∂Z_j ≈ (f(Z + h e_j) − f(Z − h e_j)) / (2h)

   with e_j the array that is 1 at entry j and 0 elsewhere. Then check your
   ``cross_entropy_grad`` with it: for a fixed y, f(Z) = Σ_i ℓ_i(Z) has the
   gradient whose row i is ∂ℓ_i/∂Z_i.

Use NumPy only; do not call dba_ref.

Hints
-----
1. softmax(z) = exp(z − max z) / Σ exp(z − max z), row by row: subtracting
   the row maximum changes nothing mathematically and keeps exp from
   overflowing (one case has logits near ±900). For the loss, use
   log softmax(z) = (z − max z) − log Σ exp(z − max z), never
   log(softmax(z)) of an overflowed exp.
2. Shapes: A_{l-1} is (B, in_l) and W_l is (out_l, in_l), so the product is
   ``A @ W.T``; the bias (out_l,) broadcasts over the B rows.
3. ``np.eye(C)[y]`` is onehot(y); ``Z[np.arange(B), y]`` picks Z_{i,y_i}.
4. Finite differences: perturb a copy (``Zp = Z.copy(); Zp[idx] += h``), or
   restore the entry exactly afterwards; the caller's Z must come back
   unchanged. ``np.ndindex(Z.shape)`` walks every entry of an array of any shape.
5. Central differences are accurate to about h² (a forward difference only to
   h); too small an h lets rounding win, by about ε·|f|/h.
"""
import numpy as np


def forward(weights, biases, X):
    """The logits Z_L of a ReLU MLP, shape (B, out_L)."""
    # BEGIN SOLUTION
    A = np.asarray(X, dtype=np.float64)
    for l, (W, b) in enumerate(zip(weights, biases)):
        Z = A @ W.T + b
        A = np.maximum(Z, 0.0) if l < len(weights) - 1 else Z
    return A
    # END SOLUTION


def cross_entropy(Z, y):
    """The softmax cross-entropy of every sample, ℓ_i = −log softmax(Z_i)[y_i], shape (B,)."""
    # BEGIN SOLUTION
    shifted = Z - Z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y]
    # END SOLUTION


def cross_entropy_grad(Z, y):
    """∂ℓ_i/∂Z_i = softmax(Z_i) − onehot(y_i) for every sample, shape (B, C)."""
    # BEGIN SOLUTION
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    P = E / E.sum(axis=1, keepdims=True)
    P[np.arange(len(y)), y] -= 1.0
    return P
    # END SOLUTION


def numerical_gradient(f, Z, h):
    """The central-difference gradient of the scalar function f at Z, the same shape as Z."""
    # BEGIN SOLUTION
    grad = np.zeros(np.shape(Z))
    for idx in np.ndindex(np.shape(Z)):
        plus, minus = np.array(Z, dtype=np.float64), np.array(Z, dtype=np.float64)
        plus[idx] += h
        minus[idx] -= h
        grad[idx] = (f(plus) - f(minus)) / (2 * h)
    return grad
    # END SOLUTION

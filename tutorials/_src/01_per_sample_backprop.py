# %% [markdown]
# # 1 · Per-sample backpropagation, by hand
#
# Dynamic Batch Adaptation looks at the gradient of **every sample** of a batch, layer by layer,
# before deciding which samples to keep. A usual training loop never sees these: it backpropagates
# the *mean* loss and gets one gradient for the whole batch. This notebook derives the per-sample
# gradients of a small multilayer perceptron by hand, builds them with NumPy, and checks every
# single number against finite differences.
#
# The one idea: **backpropagating the sum of the per-sample losses keeps every sample's own error
# signal**, and a sample's gradient for a layer is an outer product of two vectors the backward pass
# already has. (Spec §2; the library's version is `dba_ref/backprop.py`.)
#
# This is the first of eight notebooks. Notebooks 1–6 are the concepts, in order: what DBA computes
# (1–4), why it should help, where it does and what it costs (5), and its relative, adaptive batch sizes
# (6). Notebooks 7 and 8 are for implementers: checking your own implementation, and the fast backends.
# Every symbol keeps one meaning across them (the notation table, `docs/notation.md`), and each notebook
# ends with the exercises that practise it.

# %%
import matplotlib.pyplot as plt
import numpy as np

from dba_ref import MLP, backprop, batch_grads, per_sample_grads

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The network
#
# A multilayer perceptron with layers $l = 1, \dots, L$; layer $l$ has weights $W_l$ of shape
# $(\text{out}_l, \text{in}_l)$ and a bias $b_l$ of shape $(\text{out}_l)$. A batch is a matrix whose
# $B$ rows are samples:
#
# $$Z_l = A_{l-1} W_l^\top + b_l, \qquad A_0 = X, \qquad A_l = \varphi(Z_l) \;\; (l < L),$$
#
# with $\varphi = \mathrm{ReLU}$, and the logits are $Z_L$. Sample $i$ has its own loss, the
# cross-entropy of its logits and its label $y_i$:
#
# $$\ell_i = -\log \operatorname{softmax}(Z_L[i])_{y_i} = \log \sum_c e^{Z_L[i,c]} - Z_L[i, y_i].$$
#
# We take a tiny network, $4 \to 6 \to 3$, and a batch of $B = 4$ samples. The biases are set to
# small positive random values, so that a forgotten bias would show and most hidden units are active.

# %%
model = MLP([4, 6, 3], seed=0)
model.set_params([(W, 0.3 + 0.1 * rng.normal(size=b.shape)) for W, b in model.params])
(W1, b1), (W2, b2) = model.params
X = rng.normal(size=(4, 4))
y = np.array([0, 2, 2, 1])

Z1 = X @ W1.T + b1          # (B, 6)
A1 = np.maximum(Z1, 0)      # (B, 6)
Z2 = A1 @ W2.T + b2         # (B, 3), the logits
print("Z1 =\n", Z1, "\nZ2 =\n", Z2)

# %% [markdown]
# ## The error signal of the output layer
#
# Write $p = \operatorname{softmax}(z)$ for one sample's logits $z$. Since
# $\ell = \log\sum_c e^{z_c} - z_y$,
#
# $$\frac{\partial \ell}{\partial z_c} = \frac{e^{z_c}}{\sum_{c'} e^{z_{c'}}} - [c = y] = p_c - [c = y].$$
#
# Stacking the samples as rows gives the **error signal** of the last layer,
#
# $$\Delta_L = \operatorname{softmax}(Z_L) - \operatorname{onehot}(y) \qquad (B \times \text{out}_L).$$
#
# Row $i$ is $\partial \ell_i / \partial Z_L[i]$, the derivative of sample $i$'s own loss: the loss we
# differentiate is the **sum** $\sum_i \ell_i$, in which sample $i$'s logits appear only in
# $\ell_i$. (The mean loss would divide every row by $B$, nothing more; we will get the mean gradient
# back at the end.) The softmax subtracts each row's maximum first, which changes nothing
# mathematically and keeps `exp` from overflowing.

# %%
def softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


onehot = np.eye(3)[y]
D2 = softmax(Z2) - onehot                 # Δ_2, (B, 3)
print("Δ2 =\n", D2)
print("each row sums to", D2.sum(axis=1), "(softmax sums to 1, onehot too)")

# %% [markdown]
# ## Back through a layer
#
# The chain rule through $Z_{l+1} = A_l W_{l+1}^\top + b_{l+1}$ and $A_l = \varphi(Z_l)$ gives, for
# every sample at once,
#
# $$\Delta_l = \big(\Delta_{l+1} W_{l+1}\big) \odot \varphi'(Z_l) \qquad (B \times \text{out}_l),$$
#
# where $\odot$ is the elementwise product and $\varphi'(z) = [z > 0]$ for ReLU. The product
# $\Delta_{l+1} W_{l+1}$ has shapes $(B, \text{out}_{l+1}) \times (\text{out}_{l+1}, \text{out}_l)$:
# rows never mix, so row $i$ is still sample $i$'s own signal.

# %%
D1 = (D2 @ W2) * (Z1 > 0)                 # Δ_1, (B, 6)
print("Δ1 =\n", D1)

# %% [markdown]
# ## A sample's gradient is an outer product
#
# Entry $(o, j)$ of $W_l$ enters sample $i$'s loss only through $Z_l[i, o] = \sum_j W_l[o, j]\,
# A_{l-1}[i, j] + b_l[o]$, so
#
# $$\frac{\partial \ell_i}{\partial W_l[o, j]} = \Delta_l[i, o]\, A_{l-1}[i, j], \qquad
#   \nabla W_l(i) = \Delta_l[i] \otimes A_{l-1}[i], \qquad \nabla b_l(i) = \Delta_l[i].$$
#
# Every per-sample gradient is a rank-one matrix built from two vectors the forward and backward
# passes already hold: the layer's input $A_{l-1}[i]$ and its error signal $\Delta_l[i]$.

# %%
grads_by_hand = {
    "W1": np.einsum("bo,bi->boi", D1, X),    # (B, 6, 4): one 6x4 matrix per sample
    "b1": D1,                                # (B, 6)
    "W2": np.einsum("bo,bi->boi", D2, A1),   # (B, 3, 6)
    "b2": D2,                                # (B, 3)
}
{name: g.shape for name, g in grads_by_hand.items()}

# %% [markdown]
# ## Checking every number with finite differences
#
# A central difference estimates a derivative from two loss evaluations,
#
# $$\frac{\partial \ell_i}{\partial \theta} \approx \frac{\ell_i(\theta + h) - \ell_i(\theta - h)}{2h},$$
#
# with a truncation error of order $h^2$ and a rounding error of order $\epsilon_{\text{mach}} / h$, where
# $\epsilon_{\text{mach}} \approx 2.2 \cdot 10^{-16}$ is the machine epsilon of float64 (the gap between 1 and
# the next float64: every operation rounds to about that relative error). We perturb every one of the
# $4 \cdot 6 + 6 + 6 \cdot 3 + 3 = 51$ parameters and read off the change of **each sample's**
# loss separately: $51 \times 4 = 204$ derivatives.

# %%
def sample_losses(params):
    """ℓ_i for every sample, for parameters given as a dict of arrays."""
    A = np.maximum(X @ params["W1"].T + params["b1"], 0)
    Z = A @ params["W2"].T + params["b2"]
    Z = Z - Z.max(axis=1, keepdims=True)
    return np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(len(y)), y]


params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def finite_difference_grads(h):
    """Central differences of every sample's loss w.r.t. every parameter: same layout as grads_by_hand."""
    out = {}
    for name, value in params.items():
        g = np.zeros((len(y),) + value.shape)
        for idx in np.ndindex(value.shape):
            plus = {**params, name: value.copy()}
            minus = {**params, name: value.copy()}
            plus[name][idx] += h
            minus[name][idx] -= h
            g[(slice(None),) + idx] = (sample_losses(plus) - sample_losses(minus)) / (2 * h)
        out[name] = g
    return out


numeric = finite_difference_grads(h=1e-5)
for name in params:
    err = np.abs(numeric[name] - grads_by_hand[name]).max()
    scale = np.abs(grads_by_hand[name]).max()
    print(f"{name}: max |by hand - finite difference| = {err:.1e}   (largest entry {scale:.2f})")

# %% [markdown]
# The two agree to about the size of the finite-difference error itself. How small can that error
# be made? Sweeping $h$ shows the two error sources: the truncation error shrinks like $h^2$ (and
# like $h$ for a one-sided difference $(\ell(\theta+h) - \ell(\theta))/h$), the rounding error grows
# like $\epsilon_{\text{mach}}/h$. The figure shows the largest disagreement over all 204 derivatives.

# %%
def forward_difference_grads(h):
    base = sample_losses(params)
    out = {}
    for name, value in params.items():
        g = np.zeros((len(y),) + value.shape)
        for idx in np.ndindex(value.shape):
            plus = {**params, name: value.copy()}
            plus[name][idx] += h
            g[(slice(None),) + idx] = (sample_losses(plus) - base) / h
        out[name] = g
    return out


def max_error(estimate):
    return max(np.abs(estimate[n] - grads_by_hand[n]).max() for n in params)


hs = np.logspace(-12, -1, 23)
central = [max_error(finite_difference_grads(h)) for h in hs]
forward = [max_error(forward_difference_grads(h)) for h in hs]
best = int(np.argmin(central))
print(f"central differences: smallest error {central[best]:.1e} at h = {hs[best]:.0e}")
print(f"forward differences: smallest error {min(forward):.1e} at h = {hs[int(np.argmin(forward))]:.0e}")

fig, ax = plt.subplots(figsize=(6, 3.8))
ax.loglog(hs, central, "o-", ms=4, label=r"central  $(\ell(\theta+h)-\ell(\theta-h))/2h$")
ax.loglog(hs, forward, "s-", ms=4, label=r"forward  $(\ell(\theta+h)-\ell(\theta))/h$")
ax.loglog(hs, np.finfo(float).eps / hs, ":", color="0.5", label=r"$\epsilon_{\mathrm{mach}} / h$ (rounding)")
ax.set_xlabel("step h")
ax.set_ylabel("max |finite difference − by hand|")
ax.set_title(f"{sum(g.size for g in grads_by_hand.values())} per-sample derivatives: finite differences vs backprop",
             fontsize=10)
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The backpropagated gradients sit at the bottom of the "V": the remaining disagreement is the
# finite-difference method's own error, not the backward pass's.
#
# ## The library does the same
#
# `dba_ref.backprop` runs exactly these equations for any number of layers and returns the pair
# $(A_{l-1}, \Delta_l)$ of every layer; `per_sample_grads` forms the outer products.

# %%
signals = backprop(model, X, y)
print("Δ1, Δ2 match:", np.allclose(signals.deltas[0], D1, rtol=0, atol=1e-15),
      np.allclose(signals.deltas[1], D2, rtol=0, atol=1e-15))
(gW1, gb1), (gW2, gb2) = per_sample_grads(model, X, y)
print("per-sample gradients match:",
      all(np.allclose(a, grads_by_hand[n], rtol=0, atol=1e-15)
          for a, n in [(gW1, "W1"), (gb1, "b1"), (gW2, "W2"), (gb2, "b2")]))

# %% [markdown]
# ## From per-sample gradients back to the usual one
#
# The gradient of the mean loss $\frac1B\sum_i \ell_i$, all a usual optimizer ever sees, is the mean
# of the per-sample gradients: $\sum_i \nabla W_l(i) = B \cdot \nabla W_l^{\text{batch}}
# = \Delta_l^\top A_{l-1}$. Averaging throws away *which* sample pushed *where* — and that is
# what DBA looks at.

# %%
mean_W1, mean_b1 = batch_grads(model, X, y)[0]
print("sum of per-sample gradients = B x batch gradient:",
      np.allclose(grads_by_hand["W1"].sum(axis=0), len(y) * mean_W1),
      np.allclose(grads_by_hand["b1"].sum(axis=0), len(y) * mean_b1))

fig, axes = plt.subplots(1, 5, figsize=(12, 2.4))
lim = np.abs(grads_by_hand["W2"]).max()
for i, ax in enumerate(axes[:4]):
    ax.imshow(grads_by_hand["W2"][i], cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"∇W2 of sample {i} (label {y[i]})", fontsize=9)
axes[4].imshow(grads_by_hand["W2"].mean(axis=0), cmap="RdBu_r", vmin=-lim, vmax=lim)
axes[4].set_title("batch mean", fontsize=9)
for ax in axes:
    ax.set_xlabel("input unit j")
    ax.set_ylabel("output unit o")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Per-sample gradients of W2 are rank one; their mean hides how they differ", fontsize=10)
fig.tight_layout()

# %% [markdown]
# Each per-sample gradient is an outer product $\Delta_2[i] \otimes A_1[i]$: every column is the
# same vector $\Delta_2[i]$ scaled by one hidden activation, and the columns of inactive hidden units
# are zero. Sample 0 is already classified with confidence ($\Delta_2[0]$ printed above is nearly
# zero), so it asks for almost nothing; samples 1 and 2, both of class 2, ask for similar changes;
# sample 3 asks for a different one. The mean mixes all of this into one matrix.
#
# ## Practise it
#
# - `dba-ref exercises start forward_loss`: the forward pass and the per-sample losses $\ell_i$.
# - `dba-ref exercises start error_signals`: the error signals $[\Delta_1, \dots, \Delta_L]$ of a ReLU
#   network of any depth, down to no hidden layer.
#
# Each command writes a stub with the task, the equations and hints into the current folder; the stub
# says how to grade it (`dba-ref exercises` lists every exercise). The autograder runs your function
# on edge cases and fresh random ones and says what is wrong in words. This is what it says about an
# answer to `error_signals` that forgets the biases in the forward pass:

# %%
from dba_ref.exercises import check


def error_signals_without_biases(weights, biases, X, y):      # deliberately wrong
    net = MLP([weights[0].shape[1]] + [W.shape[0] for W in weights])
    net.set_params([(W, np.zeros_like(b)) for W, b in zip(weights, biases)])
    return backprop(net, X, y).deltas


print(check("error_signals", error_signals_without_biases, seed=0))

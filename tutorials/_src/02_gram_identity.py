# %% [markdown]
# # 2 · The Gram identity
#
# To choose a subset of a batch, DBA needs to know how the per-sample gradients of a layer relate
# to each other: their norms, and how well each pair agrees. Write $g_i$ for sample $i$'s gradient of
# one layer's parameters, $\nabla W_l(i)$ and $\nabla b_l(i)$ of notebook 1 flattened into one vector
# of $P = \text{out}_l \cdot \text{in}_l + \text{out}_l$ numbers (about $10^5$ for a $784 \to 128$
# layer). Everything DBA needs is in the **Gram matrix** of their inner products,
# $K[i, j] = \langle g_i, g_j \rangle$ ($B \times B$ for a batch of $B$ samples). Building the $g_i$
# explicitly costs $B \cdot P$ numbers per layer. The one idea of this notebook: **$K$ comes straight from the layer's inputs
# and error signals, without a single per-sample gradient**,
#
# $$K = (\Delta \Delta^\top) \odot (A A^\top + 1).$$
#
# (Spec §3; the library's version is `dba_ref/gram.py`.)

# %%
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

from dba_ref import MLP, explicit_layer_grams, layer_grams, sgd
from dba_ref.data import load_dataset, make_split
from dba_ref.gram import explicit_gram, gram
from dba_ref.training import train

# %% [markdown]
# ## Why it holds
#
# From notebook 1, sample $i$'s gradient of one layer is an outer product plus the bias part:
# $\nabla W(i) = \Delta[i] \otimes A[i]$ and $\nabla b(i) = \Delta[i]$, where $A = A_{l-1}$ is the
# layer's input $(B \times \text{in})$ and $\Delta = \Delta_l$ its error signal
# $(B \times \text{out})$. The inner product of two outer products factorises:
#
# $$\langle u \otimes a,\; v \otimes c \rangle = \sum_{o}\sum_{j} u_o a_j\, v_o c_j
#   = \Big(\sum_o u_o v_o\Big)\Big(\sum_j a_j c_j\Big) = (u \cdot v)(a \cdot c).$$
#
# The bias gradient is the weight gradient of an input that is always 1, so the flattened gradient is
# $g_i = \operatorname{vec}\big(\Delta[i] \otimes [A[i], 1]\big)$. Hence
#
# $$K[i, j] = (\Delta[i] \cdot \Delta[j])\,(A[i] \cdot A[j] + 1), \qquad
#   K = (\Delta\Delta^\top) \odot (AA^\top + 1).$$
#
# The $+1$ is the bias. Both factors are $B \times B$; the identity costs $O(B^2(\text{in} + \text{out}))$
# time and $O(B^2)$ memory.
#
# ## Checking it on real digits
#
# A $784 \to 64 \to 10$ network, trained for three epochs on 600 MNIST-5k digits (60 per class) so
# that its gradients are those of a network that has started to learn. A batch of 40 held-out digits,
# four per class, sorted by class. For both layers we compare the identity with the explicit path
# (materialise every $g_i$, then $G G^\top$).

# %%
split = make_split(load_dataset("mnist5k"), per_class=60, seed=0)
model = MLP([784, 64, 10], seed=0)
train(model, sgd(0.1), split.X_train, split.y_train, epochs=3, batch_size=32, progress=False)

rng = np.random.default_rng(1)
idx = np.concatenate([rng.choice(np.flatnonzero(split.y_test == c), 4, replace=False) for c in range(10)])
X, y = split.X_test[idx], split.y_test[idx]

grams = layer_grams(model, X, y)                 # the identity
explicit = explicit_layer_grams(model, X, y)     # G @ G.T from materialised per-sample gradients
for l, (K, K_explicit) in enumerate(zip(grams, explicit), start=1):
    rel = np.abs(K - K_explicit).max() / np.abs(K_explicit).max()
    print(f"layer {l}: K is {K.shape}, max relative difference to G Gᵀ = {rel:.1e}")

# %% [markdown]
# The two agree to rounding. What does $K$ say? Its normalised form, the cosine
# $K[i,j] / \sqrt{K[i,i]\,K[j,j]}$, is $+1$ where two samples ask for the same change of the layer
# and $-1$ where they ask for opposite ones.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
for l, (ax, K) in enumerate(zip(axes, grams), start=1):
    norms = np.sqrt(np.diag(K))
    image = ax.imshow(K / np.outer(norms, norms), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_title(f"layer {l} ({model.sizes[l - 1]} → {model.sizes[l]})")
    ticks = np.arange(2, 40, 4)
    ax.set_xticks(ticks, [str(c) for c in range(10)])
    ax.set_yticks(ticks, [str(c) for c in range(10)])
    ax.set_xlabel("samples, by class")
    ax.set_ylabel("samples, by class")
fig.colorbar(image, ax=axes, shrink=0.85)
fig.suptitle("cosine of the per-sample gradients, K[i, j] / √(K[i, i] K[j, j])")
print("predicted class of each sample:\n", model.predict(X).reshape(10, 4))

# %% [markdown]
# The diagonal blocks show that samples of the same class mostly agree with each other; gradients of
# different classes are closer to orthogonal, some opposed. A sample that disagrees with its own
# block (compare the predictions printed above with the rows, which are classes 0–9) is the kind of
# sample a selection metric can decide to leave out of an update — notebook 3.
#
# ## Memory and time as the batch grows
#
# One layer, $\text{in} = 784$ and $\text{out} = 128$, so $P = 784 \cdot 128 + 128 = 100{,}480$
# parameters. The two ways to get $K$:
#
# | path | memory | time |
# | --- | --- | --- |
# | explicit: $G \in \mathbb{R}^{B \times P}$, then $G G^\top$ | $B \cdot P$ numbers | $O(B^2 P)$ |
# | identity: $(\Delta\Delta^\top) \odot (AA^\top + 1)$ | $B^2$ numbers | $O(B^2 (\text{in} + \text{out}))$ |
#
# The explicit path's memory grows linearly in $B$ but with a factor $P \approx 10^5$; the identity's
# grows quadratically with a factor 1, so the two cross only at $B \approx P$. Counting
# multiply-adds only, the explicit path is $P / (\text{in} + \text{out}) \approx 110$ times more
# work; it also writes $B \cdot P$ numbers to memory, which the count leaves out.
#
# We measure both: time as the best of three runs (`time.perf_counter`), memory as the peak of
# NumPy's allocations during one run (`tracemalloc`, which sees every NumPy array). The explicit
# path stops at $B = 256$, where $G$ alone holds $256 \cdot P$ float64 numbers ($8 \cdot 256 \cdot P \approx 2 \cdot 10^8$
# bytes); the identity goes on to $B = 2048$. The inputs are
# random (the cost does not depend on the values).

# %%
n_in, n_out = 784, 128
P = n_out * n_in + n_out


def explicit_path(A, D):
    gW = np.einsum("bo,bi->boi", D, A)          # (B, out, in): every per-sample gradient
    return explicit_gram(gW, D)                 # flatten with the bias part, then G @ G.T


def measure(fn, *args, repeat=3):
    seconds = min(_timed(fn, *args) for _ in range(repeat))
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


def _timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


rng = np.random.default_rng(0)
rows = []
for B in [8, 16, 32, 64, 128, 256, 512, 1024, 2048]:
    A, D = rng.random((B, n_in)), rng.normal(size=(B, n_out))
    t_gram, m_gram = measure(gram, A, D)
    t_exp, m_exp = measure(explicit_path, A, D) if B <= 256 else (np.nan, np.nan)
    rows.append((B, t_exp, m_exp, t_gram, m_gram))

print(f"{'B':>5} | {'explicit ms':>11} {'explicit MB':>11} | {'identity ms':>11} {'identity MB':>11} | time ratio")
for B, t_exp, m_exp, t_gram, m_gram in rows:
    print(f"{B:5d} | {t_exp * 1e3:11.2f} {m_exp / 1e6:11.1f} | {t_gram * 1e3:11.3f} {m_gram / 1e6:11.3f} |"
          f" {t_exp / t_gram:10.0f}")

# %%
B_all = np.array([r[0] for r in rows])
t_exp, m_exp, t_gram, m_gram = (np.array([r[k] for r in rows]) for k in range(1, 5))
fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
ax_t.loglog(B_all, t_exp, "o-", label="explicit  G Gᵀ")
ax_t.loglog(B_all, t_gram, "s-", label="identity  (ΔΔᵀ) ⊙ (AAᵀ + 1)")
ax_t.set_ylabel("seconds (best of 3)")
ax_m.loglog(B_all, m_exp / 1e6, "o-", label="explicit, measured")
ax_m.loglog(B_all, m_gram / 1e6, "s-", label="identity, measured")
ax_m.loglog(B_all, B_all * P * 8 / 1e6, ":", color="C0", label="B·P float64 (the matrix G)")
ax_m.loglog(B_all, B_all ** 2 * 8 / 1e6, ":", color="C1", label="B² float64 (the matrix K)")
ax_m.set_ylabel("peak NumPy memory (MB)")
for ax in (ax_t, ax_m):
    ax.set_xlabel("batch size B")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
fig.suptitle(f"One layer, in = {n_in}, out = {n_out} (P = {P:,} parameters per sample)")
fig.tight_layout()

B, t_e, m_e, t_g, m_g = rows[5]
print(f"At B = {B}: explicit {m_e / 1e6:.0f} MB and {t_e * 1e3:.0f} ms; identity {m_g / 1e6:.2f} MB and "
      f"{t_g * 1e3:.2f} ms: {m_e / m_g:.0f} times less memory, {t_e / t_g:.0f} times less time.")

# %% [markdown]
# Read the table and the figure together. The explicit path's peak memory is a small multiple of the
# size of $G$ ($B \cdot P$ numbers, the dotted line): the per-sample gradients are built, then copied
# once more when the bias part is appended. The identity's memory is a small multiple of $B^2$
# numbers: the two products $\Delta\Delta^\top$ and $AA^\top + 1$, then $K$. The last line above
# compares the two at the largest batch both were run on. Timings depend on the machine (these ran on
# one BLAS thread, see `tutorials/README.md`); the memory does not.
#
# The explicit path is still worth keeping, as in `dba_ref.gram.explicit_gram`: it is the obvious
# computation, and the check that the identity is right.
#
# ## Practise it
#
# `dba-ref exercises start gram_identity` asks for `gram(A, D)`, the identity for one layer. The
# autograder recognises the usual slips: a transposed product, a missing $+1$, a matrix product where
# the identity has an elementwise one.

"""DBA in JAX, written the JAX way: pure functions on pytrees, ``jax.vmap(jax.grad(...))``, a jitted search.

Parameters are a list of ``(W_l, b_l)`` pairs, the same pytree as
``dba_ref.MLP.params``. Per-sample gradients come from::

    jax.vmap(jax.grad(sample_loss), in_axes=(None, 0, 0))(params, X, y)   # [(gW (B,out,in), gb (B,out))]

the Gram matrix is ``G Gᵀ`` of the flattened gradients, and the greedy search
runs under ``jax.jit`` as a ``lax.while_loop`` over fixed-shape arrays (a mask
of the kept samples, the removal order padded with −1), as JAX wants loops to
be written. Prefix and exhaustive searches are plain ``jax.numpy``. The DBA
step hands the per-layer mean over each selection to a base optimizer given as
an optax-style pair of pure functions (:func:`sgd`, :func:`adam`).

Importing this module turns on ``jax_enable_x64`` (JAX's float64 switch), so that
float64 models stay float64.

Example
-------
>>> import numpy as np
>>> from dba_ref import MLP
>>> from dba_ref.frameworks import jax_dba
>>> model = MLP([4, 8, 3], seed=0)
>>> opt = jax_dba.sgd(0.1)
>>> X, y = np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 3
>>> params, state, sels = jax_dba.dba_step(model.params, opt.init(model.params), X, y, "relu", opt)
>>> [sel.indices.shape[0] <= 16 for sel in sels]
[True, True]
"""
from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._validation import check_min_size
from ..metrics import METRIC_NAMES, Q_EPS
from ..search import EXHAUSTIVE_MAX_B, STRATEGIES, min_size_count

jax.config.update("jax_enable_x64", True)

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "identity": lambda z: z}


def forward(params, x, activation: str):
    """Logits of one sample ``x`` (or a batch of rows)."""
    phi = ACTIVATIONS[activation]
    for W, b in params[:-1]:
        x = phi(x @ W.T + b)
    W, b = params[-1]
    return x @ W.T + b


def sample_loss(params, x, y, activation: str):
    """``ℓ = −log softmax(logits)[y]`` of one sample."""
    return -jax.nn.log_softmax(forward(params, x, activation))[y]


def _as_params(params):
    return [(jnp.asarray(W), jnp.asarray(b)) for W, b in params]


def per_sample_losses(params, X, y, activation: str):
    """``ℓ_i``, shape ``(B,)``."""
    return jax.vmap(partial(sample_loss, activation=activation), in_axes=(None, 0, 0))(_as_params(params), X, y)


def per_sample_grads(params, X, y, activation: str) -> list:
    """``[(gW, gb)]`` per layer, shapes ``(B, out, in)`` and ``(B, out)``."""
    loss = partial(sample_loss, activation=activation)
    return jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(_as_params(params), jnp.asarray(X), jnp.asarray(y))


def gram(gW, gb):
    """``K = G Gᵀ``, ``G = [vec(gW_i), gb_i]``, shape ``(B, B)``."""
    G = jnp.concatenate([gW.reshape(gW.shape[0], -1), gb], axis=1)
    return G @ G.T


def metric_value(name: str, T, Q, k):
    """``variance = T/k − Q/k²``; ``normalized_variance = kT/Q − 1``; ``mean_variance = T/Q − 1/k`` (+inf when
    ``Q <= Q_EPS·k·T``). Everything in float64: JAX divides an int32 count in float32."""
    T, Q, k = (jnp.asarray(v, jnp.float64) for v in (T, Q, k))
    if name == "variance":
        return T / k - Q / (k * k)
    ratio = k * T / Q - 1 if name == "normalized_variance" else T / Q - 1 / k
    return jnp.where(Q > Q_EPS * k * T, ratio, jnp.inf)


class JaxSelection(NamedTuple):
    """The chosen subset and the trace of the search, as NumPy arrays and floats."""

    indices: np.ndarray
    value: float
    removed: np.ndarray
    values: np.ndarray
    full_T: float
    full_Q: float
    full_value: float


@partial(jax.jit, static_argnames=("metric",))
def _greedy(K, metric: str, min_size: int, tol: float):
    """Backward elimination as a ``lax.while_loop``; returns the mask, the value and the padded path."""
    B = K.shape[0]
    d = jnp.diag(K)

    def cond(state):
        keep, k, current, removed, values, stopped = state
        return (~stopped) & (k > min_size)

    def body(state):
        keep, k, current, removed, values, stopped = state
        w = keep.astype(K.dtype)
        r = K @ w
        cand = jnp.where(keep, metric_value(metric, d @ w - d, w @ r - 2 * r + d, k - 1), jnp.inf)
        best = jnp.argmin(cand)                                       # the first minimum: lowest index on ties
        accept = cand[best] < jnp.where(current <= 0, current, (1 - tol) * current)
        step = B - k
        return (keep.at[best].set(keep[best] & ~accept), k - accept.astype(k.dtype),
                jnp.where(accept, cand[best], current), removed.at[step].set(jnp.where(accept, best, -1)),
                values.at[step].set(jnp.where(accept, cand[best], jnp.nan)), ~accept)

    start = (jnp.ones(B, bool), jnp.int32(B), metric_value(metric, d.sum(), K.sum(), B),
             jnp.full(B, -1), jnp.full(B, jnp.nan, K.dtype), jnp.bool_(False))
    keep, k, current, removed, values, _ = lax.while_loop(cond, body, start)
    return keep, current, removed, values, B - k


def select(K, metric: str = "mean_variance", strategy: str = "greedy", min_size=2, tol: float = 0.0) -> JaxSelection:
    """The subset of a batch that minimises ``metric``, from the Gram matrix ``K`` (float64 inside)."""
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}; choose one of {list(METRIC_NAMES)}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    K = jnp.asarray(K, jnp.float64)
    B = K.shape[0]
    m = min_size_count(check_min_size(min_size), B)
    if m > B:
        raise ValueError(f"min_size={m} is larger than the batch (B={B})")
    T, Q = K.trace(), K.sum()
    full = float(metric_value(metric, T, Q, B))
    indices, value, removed, values = np.arange(B), full, np.zeros(0, np.int64), np.zeros(0)
    if strategy == "greedy":
        keep, value, removed, values, n = _greedy(K, metric, m, float(tol))
        indices, removed, values = np.flatnonzero(np.asarray(keep)), np.asarray(removed)[:int(n)], np.asarray(values)[:int(n)]
    elif strategy == "prefix":
        norms = jnp.sqrt(jnp.maximum(jnp.diag(K), 0.0))
        c = jnp.where(norms > 0, K.sum(1) / jnp.where(norms > 0, norms, 1.0), 0.0)
        order = np.asarray(jnp.argsort(-c, stable=True))
        P = K[order][:, order]
        path = np.asarray(metric_value(metric, jnp.cumsum(jnp.diag(P)), P.cumsum(0).cumsum(1).diagonal(),
                                       jnp.arange(1, B + 1)))
        allowed = path[m - 1:]
        k_best = m + int(np.flatnonzero(allowed == allowed.min()).max())     # the longest of the best prefixes
        indices, value, removed, values = order[:k_best], path[k_best - 1], order[::-1][:B - m], path[m - 1:B - 1][::-1]
    elif strategy == "exhaustive":
        if B > EXHAUSTIVE_MAX_B:
            raise ValueError(f"exhaustive search needs B <= {EXHAUSTIVE_MAX_B}, got {B}")
        M = ((jnp.arange(1, 2 ** B)[:, None] >> jnp.arange(B)) & 1).astype(jnp.float64)
        M = M[M.sum(1) >= m]
        vals = np.asarray(metric_value(metric, M @ jnp.diag(K), ((M @ K) * M).sum(1), M.sum(1)))
        tied = np.asarray(M)[vals == vals.min()]                     # if every value is +inf, every subset ties
        largest_first = min((-len(t), t) for t in (tuple(np.flatnonzero(row)) for row in tied))[1]   # ties: largest,
        indices, value = np.array(largest_first), vals.min()                                  # then lexicographic
    return JaxSelection(np.sort(np.asarray(indices, np.int64)), float(value), np.asarray(removed, np.int64),
                        np.asarray(values, np.float64), float(T), float(Q), full)


# --------------------------------------------------------------------------
# Base optimizers (optax style) and the DBA step
# --------------------------------------------------------------------------
class GradientTransformation(NamedTuple):
    """``state = init(params)``; ``updates, state = update(grads, state)``."""

    init: Callable
    update: Callable


def sgd(learning_rate: float) -> GradientTransformation:
    """``Δθ = −η g``."""
    return GradientTransformation(lambda params: (),
                                  lambda grads, state: (jax.tree_util.tree_map(lambda g: -learning_rate * g, grads), state))


def adam(learning_rate: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """Adam with bias correction, ε added to √v̂ (as ``torch.optim.Adam``)."""
    tree_map = jax.tree_util.tree_map

    def init(params):
        zeros = tree_map(lambda p: jnp.zeros_like(jnp.asarray(p)), _as_params(params))
        return 0, zeros, zeros

    def update(grads, state):
        t, mu, nu = state
        t += 1
        mu = tree_map(lambda m, g: b1 * m + (1 - b1) * g, mu, grads)
        nu = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, nu, grads)
        step = tree_map(lambda m, v: -learning_rate * (m / (1 - b1 ** t)) / (jnp.sqrt(v / (1 - b2 ** t)) + eps), mu, nu)
        return step, (t, mu, nu)

    return GradientTransformation(init, update)


def dba_step(params, state, X, y, activation: str, base: GradientTransformation, metric: str = "mean_variance",
             strategy: str = "greedy", min_size=2, tol: float = 0.0):
    """One DBA step: per layer, the mean gradient over its selection goes to ``base``.

    Returns ``(new params, new base state, [JaxSelection per layer])``. A batch
    smaller than ``min_size`` is used whole.
    """
    B = len(y)
    m = min_size_count(check_min_size(min_size), B)
    layer_strategy = strategy if m <= B else "all"
    selections, means = [], []
    for gW, gb in per_sample_grads(params, X, y, activation):
        sel = select(gram(gW, gb), metric, layer_strategy, min(m, B), tol)
        means.append((gW[sel.indices].mean(0), gb[sel.indices].mean(0)))
        selections.append(sel)
    updates, state = base.update(means, state)
    return jax.tree_util.tree_map(lambda p, u: p + u, _as_params(params), updates), state, selections

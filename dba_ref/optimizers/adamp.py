"""AdamP and SGDP (Heo, Chun, Oh, Han, Yun, Kim, Uh & Ha, ICLR 2021).

For a *scale-invariant* weight w (the loss does not change when w is scaled,
as for a weight followed by batch normalisation), the gradient is orthogonal to
w, and momentum accumulates a radial component that only inflates ‖w‖, which
shrinks the effective step size. AdamP/SGDP remove the radial part of the
update, ``Π_w(u) = u − (ŵ · u) ŵ`` with ``ŵ = w / ‖w‖``, wherever w *looks*
scale-invariant, judged by the cosine between the gradient and the weight::

    u = Adam's m̂ / (√v̂ + ε)   (AdamP)        or   v ← μ v + g,  u = v   (SGDP)
    if max |cos(g, w)| < δ / √dim(w):   u ← Π_w(u),   r = wd_ratio     else r = 1
    θ ← θ (1 − η λ r [/(1 − μ) for SGDP]) − η u

The test runs on two views of a weight matrix, as in the authors' code
(github.com/clovaai/AdamP) and ``pytorch_optimizer``: first per output channel
(each row of W separately, dim = in; projected when *every* row passes), then
the whole matrix as one vector (dim = out·in). Vectors (biases) are never
projected. ``cos(x, y) = x·y / (max(‖x‖, ε) max(‖y‖, ε))``.

**On an MLP.** Without normalisation layers no weight of an MLP is exactly
scale-invariant: scaling a row of W_l scales that unit's pre-activation. The
projection then fires only when the gradient happens to be nearly orthogonal
to the weights (``|cos|`` below δ/√in for every row, or below δ/√(out·in) for the
matrix), which in high dimension is not rare; it then drops the update's
component along w (so it cannot change ‖w‖ to first order) and cuts the weight
decay by ``wd_ratio``. Elsewhere AdamP is Adam and SGDP is momentum SGD.

Weight decay is decoupled (``θ ← θ(1 − ηλr)``) and the ``wd_ratio`` reduction,
the 1/(1 − μ) factor of SGDP and Adam's bias correction follow the authors'
code. ``eps_placement`` is Adam's (:mod:`dba_ref.optimizers.adam`): the
authors' code adds ε to √v̂ (``"corrected"``, default); ``pytorch_optimizer``
adds it to √v (``"raw"``).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._validation import check_positive
from .adam import AdamState, adam_direction, check_eps_placement, first_moment, second_moment
from .base import Optimizer, check_decay, check_flag, gradient_optimizer
from .tree import tree_leaves, tree_unflatten, tree_zeros_like
from .elementwise import ElementRule, element_rule
from .sgd import MomentumState, momentum_direction, sgd_step

#: The views of a weight the scale-invariance test tries, in order.
VIEWS = ("channel", "layer")


def cosine_rows(x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
    """``|cos|`` between matching rows of two 2-D arrays: ``|x·y| / (max(‖x‖, ε) max(‖y‖, ε))``."""
    nx = np.maximum(np.linalg.norm(x, axis=1), eps)
    ny = np.maximum(np.linalg.norm(y, axis=1), eps)
    return np.abs(np.sum(x * y, axis=1)) / (nx * ny)


def project_radial(w: np.ndarray, grad: np.ndarray, update: np.ndarray, delta: float, eps: float):
    """Remove the radial component of ``update`` where ``w`` looks scale-invariant.

    Returns ``(update, view)`` with ``view`` the view that passed the test
    (``"channel"`` or ``"layer"``), or ``None`` when nothing was projected
    (always for 1-D ``w``). Rows are ``w.reshape(out, -1)`` (channel) or
    ``w.reshape(1, -1)`` (layer); ``ŵ = row / (‖row‖ + ε)`` and
    ``u ← u − ŵ (ŵ·u)`` row by row.
    """
    if w.ndim < 2:
        return update, None
    for view in VIEWS:
        shape = (w.shape[0], -1) if view == "channel" else (1, -1)
        W, G = w.reshape(shape), grad.reshape(shape)
        if cosine_rows(G, W, eps).max() < delta / math.sqrt(W.shape[1]):
            W_hat = W / (np.linalg.norm(W, axis=1, keepdims=True) + eps)
            U = update.reshape(shape)
            return (U - W_hat * np.sum(W_hat * U, axis=1, keepdims=True)).reshape(w.shape), view
    return update, None


class ProjectedState(NamedTuple):
    """``inner``: the moments (AdamP: an :class:`~dba_ref.optimizers.adam.AdamState`; SGDP: a
    :class:`~dba_ref.optimizers.sgd.MomentumState`).

    ``views``: one entry per leaf (W, b, W, b, ...) from the last step, the view in
    which it was projected (``"channel"``/``"layer"``) or ``None``.
    """

    inner: object
    views: tuple = ()


@element_rule(n_out=3)
def adamp_direction(g, m, v, beta1, beta2, c1, c2, eps, raw, nesterov):
    """One coordinate of AdamP's direction before the projection: Adam's (with ``β1 m + (1 − β1) g`` in place of
    m for ``nesterov``), and the new moments ``m``, ``v``."""
    m = first_moment(m, g, beta1)
    v = second_moment(v, g, beta2)
    return adam_direction(first_moment(m, g, beta1) if nesterov else m, v, c1, c2, eps, raw), m, v


#: One coordinate of SGDP's direction before the projection, and the new velocity: momentum SGD's.
sgdp_direction = ElementRule(momentum_direction, n_out=2)


@element_rule(n_out=1)
def decayed_step(u, p, lr, decay):
    """One coordinate of a step with decoupled weight decay: ``Δθ = −η u − decay · θ``."""
    return -lr * u - decay * p


def _projected_updates(params, grads, directions, lr: float, delta: float, eps: float, weight_decay: float,
                       wd_ratio: float, decay_scale: float, elementwise):
    """``−η Π(u) − η λ r θ`` leaf by leaf, and the view each leaf was projected in."""
    if params is None:
        raise ValueError("AdamP/SGDP need the parameters for the projection: call update(grads, state, params)")
    updates, views = [], []
    for p, g, u in zip(tree_leaves(params), tree_leaves(grads), tree_leaves(directions)):
        u, view = project_radial(p, g, u, delta, eps)
        views.append(view)
        r = wd_ratio if view is not None else 1.0
        if weight_decay:
            updates.append(elementwise.leaf(decayed_step, (u, p), (lr, lr * weight_decay * r * decay_scale)))
        else:
            updates.append(elementwise.leaf(sgd_step, (u,), (lr,)))
    return tree_unflatten(params, updates), tuple(views)


def _check_projection(delta, wd_ratio, weight_decay):
    delta = check_positive(delta, "delta")
    wd_ratio = check_positive(wd_ratio, "wd_ratio", allow_zero=True)
    if wd_ratio > 1:
        raise ValueError(f"wd_ratio must lie in [0, 1], got {wd_ratio}")
    return delta, wd_ratio, check_positive(weight_decay, "weight_decay", allow_zero=True)


def adamp(learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
          delta: float = 0.1, wd_ratio: float = 0.1, weight_decay: float = 0.0, nesterov: bool = False,
          eps_placement: str = "corrected") -> Optimizer:
    """AdamP: Adam whose update loses its radial part on weights that look scale-invariant.

    ``nesterov=True`` uses ``β1 m + (1 − β1) g`` in place of m, as the authors' code does.
    """
    lr = check_positive(learning_rate, "learning_rate")
    beta1, beta2 = check_decay(beta1, "beta1"), check_decay(beta2, "beta2")
    eps = check_positive(eps, "eps")
    delta, wd_ratio, wd = _check_projection(delta, wd_ratio, weight_decay)
    nesterov = check_flag(nesterov, "nesterov")
    eps_placement = check_eps_placement(eps_placement)
    raw = eps_placement == "raw"

    def init(params):
        return ProjectedState(AdamState(0, tree_zeros_like(params), tree_zeros_like(params)))

    def update(grads, state, params, elementwise):
        t = state.inner.count + 1
        directions, m, v = elementwise(adamp_direction, (grads, state.inner.m, state.inner.v),
                                       (beta1, beta2, 1 - beta1 ** t, 1 - beta2 ** t, eps, raw, nesterov))
        updates, views = _projected_updates(params, grads, directions, lr, delta, eps, wd, wd_ratio, 1.0, elementwise)
        return updates, ProjectedState(AdamState(t, m, v), views)

    return gradient_optimizer(init, update, "adamp", {"learning_rate": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                                             "delta": delta, "wd_ratio": wd_ratio, "weight_decay": wd,
                                             "nesterov": nesterov, "eps_placement": eps_placement})


def sgdp(learning_rate: float = 0.1, momentum: float = 0.9, nesterov: bool = False, eps: float = 1e-8,
         delta: float = 0.1, wd_ratio: float = 0.1, weight_decay: float = 0.0) -> Optimizer:
    """SGDP: momentum SGD (PyTorch convention) whose update loses its radial part on weights that look scale-invariant."""
    lr = check_positive(learning_rate, "learning_rate")
    mu = check_decay(momentum, "momentum")
    nesterov = check_flag(nesterov, "nesterov")
    eps = check_positive(eps, "eps")
    delta, wd_ratio, wd = _check_projection(delta, wd_ratio, weight_decay)

    def init(params):
        return ProjectedState(MomentumState(tree_zeros_like(params)))

    def update(grads, state, params, elementwise):
        directions, velocity = elementwise(sgdp_direction, (grads, state.inner.velocity), (mu, nesterov))
        updates, views = _projected_updates(params, grads, directions, lr, delta, eps, wd, wd_ratio, 1.0 / (1.0 - mu),
                                            elementwise)
        return updates, ProjectedState(MomentumState(velocity), views)

    return gradient_optimizer(init, update, "sgdp", {"learning_rate": lr, "momentum": mu, "nesterov": nesterov, "eps": eps,
                                            "delta": delta, "wd_ratio": wd_ratio, "weight_decay": wd})


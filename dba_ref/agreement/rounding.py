"""The rule: how far two computations of one quantity may differ by rounding alone (spec §7.1).

Two computations of a quantity (another summation order, BLAS kernel or thread
count, another library, another backend, the committed golden file) differ by
rounding, and rounding is relative to the *terms* a result is made of, not to
the result: a sum of n terms ``x_p``, in any order, is off by at most
``γ_n Σ|x_p|`` to first order, ``γ_n = n·u``, with ``u = ε/2`` the unit
roundoff and ``ε = np.finfo(dtype).eps`` the machine epsilon. The rule::

    two computations agree when  |a − b|  <=  2 (e_a + e_b),

``e_a`` and ``e_b`` first-order bounds of each one's rounding error, and the
factor 2 for the second-order terms first order leaves out
(:func:`agreement_tolerance`). It has two forms:

- **short computations** (everything but a metric value): each side's bound is
  ``e = 4 γ_n · scale``, with ``scale`` the quantity's *rounding scale* (the
  size of the terms that fed it, :func:`array_scale`, :func:`gram_scale`, ...)
  and ``n = n_ops`` the roundings that fed it (the inner dimensions of the
  products and sums, :func:`network_ops`, :func:`gram_ops`, ...); the 4 covers
  the few element-wise operations around the sums (an activation, the
  softmax's exp and log, a division: ×2) and an error made in one layer
  reaching the next through Jacobians of norm about 1, not exactly 1 (×2). So
  ``|a − b| <= 16 n u · scale =`` :func:`rounding_tolerance`
  ``= SAFETY · n_ops · ε · (scale + tiny)``, :data:`SAFETY` = 8.
- **metric values** (spec §7.1): ``e`` follows the search's path, in
  :mod:`dba_ref.agreement.bounds`.

Decisions are judged beside the rule: a decision whose margin is at most
:data:`AMBIGUITY` (spec §5) is a near-tie that another correct implementation
may take the other way (:mod:`dba_ref.agreement.margins`).
"""
from __future__ import annotations

import numpy as np

from ..metrics import subset_stats
from ..search import remove_sample, running_sums

#: The safety factor of :func:`rounding_tolerance`, in units of ε = 2u: 16 u = 2 (second order) × 2 (two sides)
#: × 2 (element-wise operations around the sums) × 2 (Jacobians of norm about 1 between layers).
SAFETY = 8

#: Decision margin at or under which a decision is a near-tie (spec §5): 1e-9 for float64;
#: 1e-5 for a float32 model (float32 Gram entries carry relative errors near 1e-7 that a metric can amplify).
AMBIGUITY = {"float64": 1e-9, "float32": 1e-5}


def machine_epsilon(dtype=np.float64) -> float:
    """ε of ``dtype``, ``np.finfo(dtype).eps``: the gap between 1 and the next number (2.2e-16 for float64,
    1.2e-7 for float32). The unit roundoff, the largest relative error of one rounding, is ``u = ε/2``."""
    return float(np.finfo(dtype).eps)


#: Unit roundoff ``u = ε/2`` of float64, in which every statistic is accumulated (spec §4).
UNIT_ROUNDOFF = machine_epsilon(np.float64) / 2


def agreement_tolerance(error_a, error_b):
    """``2 (e_a + e_b)``: how far two computations with first-order error bounds ``e_a`` and ``e_b`` may lie apart
    (the factor 2 for the second-order terms the bounds leave out)."""
    return 2.0 * (np.asarray(error_a, np.float64) + np.asarray(error_b, np.float64))


def rounding_tolerance(scale, n_ops, dtype=np.float64):
    """``SAFETY · n_ops · ε · (scale + tiny)``: how far two computations of a quantity may differ by rounding alone.

    ``scale`` is the quantity's rounding scale (a number or an array, one per
    entry), ``n_ops`` how many roundings fed it, ``ε`` :func:`machine_epsilon`
    of ``dtype``: :func:`agreement_tolerance` of two bounds ``4 γ_{n_ops} ·
    scale`` (see the module docstring). ``tiny = np.finfo(dtype).tiny`` is the
    smallest normal number: below it numbers lose relative precision (gradual
    underflow), an operation's result being off by up to ``ε·tiny`` absolutely,
    so no scale counts as less than tiny. A result that underflowed and is then
    multiplied by M carries ``ε·tiny·M``: add ``tiny·M`` to the scale
    (:func:`gram_scale` does).
    """
    return SAFETY * n_ops * machine_epsilon(dtype) * (np.asarray(scale, np.float64) + float(np.finfo(dtype).tiny))


# --------------------------------------------------------------------------
# Rounding scales and operation counts of the network's quantities
# --------------------------------------------------------------------------
def array_scale(reference) -> float:
    """The rounding scale of an array that a network computes (losses, gradients, weights): its largest entry.

    An entry is a sum of products of signals from every layer; entries that
    cancel (Δ_L = softmax − onehot, a gradient near 0) keep the rounding of the
    terms, the array's magnitude, not their own.
    """
    r = np.abs(np.asarray(reference, np.float64))
    return float(r[np.isfinite(r)].max(initial=0.0))


def network_ops(sizes) -> int:
    """Roundings that feed a network's signals: the inner dimensions of one forward and one backward pass.

    ``Σ_l in_l`` (forward, ``Z_l = A_{l−1} W_lᵀ``), ``out_L`` (the softmax's
    sum) and ``Σ_{l<L} out_{l+1}`` (backward, ``Δ_l = Δ_{l+1} W_{l+1}``). An
    error made in one layer reaches the next through its Jacobian, so they add up.
    """
    sizes = [int(s) for s in sizes]
    return sum(sizes[:-1]) + sizes[-1] + sum(sizes[2:])


def gram_ops(sizes, layer: int) -> int:
    """Roundings that feed a Gram entry of ``layer`` (from 1): the network's, then ``(ΔΔᵀ) ⊙ (AAᵀ + 1)``."""
    return network_ops(sizes) + int(sizes[layer - 1]) + int(sizes[layer]) + 1


def explicit_gram_ops(sizes, layer: int) -> int:
    """Roundings between another implementation's K of ``layer`` and the reference's: :func:`gram_ops`, plus the
    inner dimension ``P = out·(in + 1)`` of an explicit ``G Gᵀ`` of per-sample gradients (the other way to
    compute K)."""
    n_in, n_out = int(sizes[layer - 1]), int(sizes[layer])
    return gram_ops(sizes, layer) + n_out * (n_in + 1)


def gram_entry_rtol(n_ops: int, dtype=np.float64) -> float:
    """How far two computations' entries ``K_ij`` may differ relative to ``√(K_ii K_jj)`` after ``n_ops`` roundings
    in ``dtype`` (:func:`rounding_tolerance` of scale 1; 0 for 0 roundings: the same K on both sides).

    ``K_ij`` is an inner product, and ``√(K_ii K_jj) = ‖g_i‖ ‖g_j‖`` bounds its
    terms by Cauchy–Schwarz. The metric-value bounds take it as ``gram_rtol``.
    """
    return float(rounding_tolerance(1.0, n_ops, dtype)) if n_ops else 0.0


def row_norms(X) -> np.ndarray:
    """``‖x_i‖`` of every row, scaled by the row's largest entry first so that squares of tiny entries do not
    underflow."""
    X = np.abs(np.asarray(X, np.float64))
    largest = X.max(axis=1, initial=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(largest[:, None] > 0, X / largest[:, None], 0.0)
    return largest * np.sqrt(np.sum(scaled * scaled, axis=1))


def gram_scale(A, D) -> np.ndarray:
    """``‖g_i‖ ‖g_j‖ + tiny·(‖A_i‖ ‖A_j‖ + 1)``, the rounding scale of each entry ``K_ij = ⟨g_i, g_j⟩`` of a layer.

    ``g_i = Δ_i ⊗ [A_i, 1]`` has ``‖g_i‖ = ‖Δ_i‖ · sqrt(‖A_i‖² + 1)``, from the
    layer's signals; by Cauchy–Schwarz it bounds the terms of every way of
    computing ``K_ij``: the identity's ``(Δ_i·Δ_j)(A_i·A_j + 1)`` and the
    explicit ``Σ_p g_ip g_jp``. (``sqrt(K_ii K_jj)`` is the same number, but
    computed from K it underflows to 0 where ``K_ii`` does, while ``K_ij`` need
    not.) Where ``Δ_i·Δ_j`` underflows, its error, up to ``ε·tiny``, is then
    multiplied by ``A_i·A_j + 1`` (:func:`rounding_tolerance`).
    """
    a, g = row_norms(A), row_norms(D) * np.hypot(row_norms(A), 1.0)
    return np.outer(g, g) + float(np.finfo(np.float64).tiny) * (np.outer(a, a) + 1.0)


# --------------------------------------------------------------------------
# Rounding scales of metric values
# --------------------------------------------------------------------------
def value_scale(name: str, T, Q, k):
    """The rounding scale of a metric value: its rounding error is about the unit roundoff times this.

    ``T/k`` for ``variance`` (the term it is a difference of); for the ratio
    metrics their leading term (``kT/Q``, ``T/Q``) times ``kT/Q >= 1``, the
    condition number of ``Q`` (Q's rounding error is about ε·kT, by
    Cauchy–Schwarz). ``+inf`` where ``Q <= 0`` (the value is +inf then).
    """
    T, Q, k = np.asarray(T, np.float64), np.asarray(Q, np.float64), np.asarray(k, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if name == "variance":
            return (T / k)[()]
        condition = k * T / Q
        scale = condition * (condition if name == "normalized_variance" else T / Q)
        return np.where(Q > 0, scale, np.inf)[()]


def value_scales(K: np.ndarray, metric: str, subsets) -> np.ndarray:
    """The rounding scale (:func:`value_scale`) of each subset's metric value."""
    stats = np.array([subset_stats(K, list(s)) for s in subsets], np.float64).reshape(-1, 3)
    return value_scale(metric, *stats.T)


def path_stats(K: np.ndarray, removed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(T, Q, k)`` of the subset after each removal of ``removed``, three arrays, in O(B) per step."""
    K = np.asarray(K, np.float64)
    diag, r, T, Q = running_sums(K)
    k = K.shape[0]
    stats = []
    for j in removed:
        T, Q = remove_sample(K, diag, r, T, Q, j)
        k -= 1
        stats.append((T, Q, k))
    return tuple(np.array(stats, np.float64).reshape(-1, 3).T)


def path_value_scales(K: np.ndarray, metric: str, removed) -> np.ndarray:
    """The rounding scale of the value after each removal of ``removed``: :func:`value_scale` of :func:`path_stats`."""
    return np.asarray(value_scale(metric, *path_stats(K, removed)), np.float64)


def full_stat_scale(K: np.ndarray, name: str) -> float:
    """Scale of a full-batch statistic: T itself; ``B·T`` for Q (its Cauchy–Schwarz bound, as Q can
    cancel); :func:`value_scale` for a metric value."""
    B, T = K.shape[0], float(np.trace(K))
    if name == "T":
        return T
    if name == "Q":
        return B * T
    return float(value_scale(name, T, K.sum(), B))

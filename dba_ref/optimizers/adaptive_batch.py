"""Adaptive batch sizes by adaptive-sampling tests: AdAdaGrad and AdAdaGrad-Norm.

Lau, Liu & Kolar, "AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient
Methods" (arXiv:2402.11215, 2024): train with AdaGrad (or AdaGrad-Norm) and let
the *next* batch be larger whenever the current batch's mean gradient is too
noisy to trust. Noisy means that the variance of the mean gradient is large
compared with its squared norm, estimated from the per-sample gradients
g_1..g_B of the batch just used.

The norm test (Byrd, Chin, Nocedal & Wu, 2012), over all parameters::

    σ² = (1/(B−1)) Σ_i ‖g_i − ḡ‖²       (trace of the sample covariance)
    passes when   σ² / B ≤ η² ‖ḡ‖²
    else          B_next = ⌈σ² / (η² ‖ḡ‖²)⌉

The coordinate-wise test (the paper's variant for AdaGrad's per-coordinate
step sizes): the same inequality for every coordinate j separately::

    σ_j² = (1/(B−1)) Σ_i (g_ij − ḡ_j)²
    passes when   σ_j² / B ≤ η² ḡ_j²   for every j
    else          B_next = ⌈max_j σ_j² / (η² ḡ_j²)⌉

In both cases B_next is never smaller than the last request (the batch size
only grows) and never larger than ``max_batch_size`` (the training loop also
caps it at the size of the training set). A coordinate with σ_j² = 0 passes;
one with ḡ_j = 0 but σ_j² > 0 fails outright (B_next = ∞, i.e. the cap). A
batch of one sample has no variance estimate: the test is skipped.

**Without per-sample gradients.** With the Gram identity (spec §3),
``‖g_i‖² = K[i,i] = ‖Δ_i‖² (‖A_i‖² + 1)`` layer by layer, so with
``T = Σ_i ‖g_i‖²`` and ``Q = ‖Σ_i g_i‖² = B² ‖ḡ‖²`` summed over the layers::

    σ² / (B ‖ḡ‖²) = (B / (B − 1)) · (T/Q − 1/B) = (B / (B − 1)) · mean_variance(T, Q, B)

— DBA's ``mean_variance`` metric (:mod:`dba_ref.metrics`) is the norm-test
statistic up to the factor B/(B − 1). T needs only the diagonal of the Gram
matrix and Q the mean gradient that the update computes anyway, so the norm
test adds O(B (in + out)) per layer. The coordinate-wise test needs Σ_i g_ij²,
which for ``g_i = Δ_i ⊗ [A_i, 1]`` is the matrix product ``(Δ⊙Δ)ᵀ [A⊙A, 1]``:
O(B·in·out), the cost of the mean gradient itself, still with no (B, out, in) array.

The authors' released code (github.com/timlautk/AdAdaGrad) implements the norm
test from materialised per-sample gradients; it has no coordinate-wise test,
whose definition here is the inequality above applied to every coordinate.

**Not a DBA base.** These optimizers read the batch's per-sample
:class:`~dba_ref.backprop.Signals` (the ``signals`` extra argument of their
``update``) and wrap a base of their own, so ``dba(adadagrad())`` is refused; see ``docs/optimizers/adadagrad.md`` for why
the combination is not meaningful. ``dba(adagrad())`` is.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .._validation import check_choice, check_positive
from ..metrics import mean_variance
from .adagrad import adagrad, adagrad_norm
from .base import Optimizer, check_base
from .tree import tree_leaves

#: The adaptive-sampling tests.
TESTS = ("norm", "coordinate")


class BatchTest(NamedTuple):
    """One adaptive-sampling test on one batch.

    ``statistic`` is the left-hand side over the right-hand side of the test
    divided by η², i.e. ``σ²/(B ‖ḡ‖²)`` (norm) or ``max_j σ_j²/(B ḡ_j²)``
    (coordinate): the test passes when ``statistic ≤ η²``. ``implied_size`` is
    ``σ²/(η² ‖ḡ‖²)`` (or its coordinate-wise maximum), possibly ∞;
    ``batch_size`` is B. Both are NaN for B = 1 (no test).
    """

    batch_size: int
    statistic: float
    implied_size: float

    @property
    def passed(self) -> bool:
        return not self.implied_size > self.batch_size


class AdaptiveBatchState(NamedTuple):
    """``base``: the base optimizer's state; ``batch_size``: the size requested for the next batch
    (None before the first update; ``math.inf`` when a failed test asks for more than any cap,
    which the training loop reads as "the whole training set"); ``last``: the :class:`BatchTest`
    of the last update."""

    base: Any
    batch_size: int | None = None
    last: BatchTest | None = None

    @property
    def next_batch_size(self):
        """The size the training loop draws the next batch with (None: keep the current one)."""
        return self.batch_size

    def diagnostics(self, names=None) -> dict:
        """What the training loop records of a step: ``batch_test``, the test statistic (the test passes when it
        is at most η²), unless ``names`` leaves it out (None: all)."""
        return {"batch_test": float(self.last.statistic)} if names is None or "batch_test" in names else {}


#: What :meth:`AdaptiveBatchState.diagnostics` records.
DIAGNOSTICS = ("batch_test",)


def gram_diagonal(A: np.ndarray, D: np.ndarray) -> np.ndarray:
    """``K[i, i] = ‖g_i‖² = ‖Δ_i‖² (‖A_i‖² + 1)`` for one layer, shape ``(B,)``, float64 (spec §3's diagonal)."""
    A, D = np.asarray(A, np.float64), np.asarray(D, np.float64)
    return np.einsum("bo,bo->b", D, D) * (np.einsum("bi,bi->b", A, A) + 1.0)


def norm_test(signals, eta: float, grads=None) -> BatchTest:
    """The norm test on a batch's :class:`~dba_ref.backprop.Signals`, all layers together.

    ``grads`` are the batch-mean gradients when the caller has them already (the
    update needs them anyway); then the test itself costs O(B (in + out)) per layer.
    """
    B = signals.batch_size
    if B < 2:
        return BatchTest(B, math.nan, math.nan)
    grads = signals.mean_grads() if grads is None else grads
    T = sum(float(gram_diagonal(A, D).sum()) for A, D in signals.layers)             # Σ_i ‖g_i‖²
    Q = B * B * sum(float(np.sum(np.square(leaf, dtype=np.float64))) for leaf in tree_leaves(grads))   # ‖Σ_i g_i‖²
    statistic = B / (B - 1) * float(mean_variance(T, Q, B))      # σ² / (B ‖ḡ‖²)
    return BatchTest(B, statistic, B * statistic / eta ** 2)


def coordinate_test(signals, eta: float, grads=None) -> BatchTest:
    """The coordinate-wise test: the norm test's inequality for every parameter separately.

    Needs Σ_i g_ij² = ``(Δ⊙Δ)ᵀ [A⊙A, 1]`` per layer, one matrix product; ``grads``
    as for :func:`norm_test`.
    """
    B = signals.batch_size
    if B < 2:
        return BatchTest(B, math.nan, math.nan)
    grads = signals.mean_grads() if grads is None else grads
    worst = 0.0
    for (A, D), (gW, gb) in zip(signals.layers, grads):
        A, D = np.asarray(A, np.float64), np.asarray(D, np.float64)
        mean = np.hstack([np.asarray(gW, np.float64), np.asarray(gb, np.float64)[:, None]])   # ḡ_j, (out, in + 1)
        squares = np.hstack([(D * D).T @ (A * A), np.sum(D * D, axis=0)[:, None]])            # Σ_i g_ij²
        var = np.maximum(squares - B * mean * mean, 0.0) / (B - 1)      # σ_j², clipped at 0 against rounding
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(var > 0, var / (B * mean * mean), 0.0)       # σ_j² / (B ḡ_j²); ∞ where ḡ_j = 0 < σ_j²
        worst = max(worst, float(ratio.max()))
    return BatchTest(B, worst, B * worst / eta ** 2)


_TEST_FUNCTIONS = {"norm": norm_test, "coordinate": coordinate_test}


def adaptive_batch(base: Optimizer, test: str = "norm", eta: float = 0.1, max_batch_size: int | None = None) -> Optimizer:
    """Wrap ``base`` so that every update also runs ``test`` and requests the next batch size.

    The update itself is ``base``'s on the batch-mean gradient; the wrapper
    only adds the test, on the ``signals`` extra argument:
    ``update(grads, state, params, signals=signals)``, ``grads=None`` standing
    for the batch mean of the signals. The training loop reads the request from
    the state (:attr:`AdaptiveBatchState.next_batch_size`, see :func:`dba_ref.training.train`).
    """
    check_base(base, "adaptive_batch")
    run_test = _TEST_FUNCTIONS[check_choice(test, TESTS, "test")]
    eta = check_positive(eta, "eta")
    if max_batch_size is not None:
        max_batch_size = check_positive(max_batch_size, "max_batch_size", integer=True)

    def init(params):
        return AdaptiveBatchState(base=base.init(params))

    def update(grads, state, params=None, *, signals):
        if grads is None:
            grads = signals.mean_grads()
        updates, base_state = base.update(grads, state.base, params, signals=signals)
        result = run_test(signals, eta, grads)
        requested = max(state.batch_size or 0, signals.batch_size)          # the batch size never shrinks
        if not result.passed:
            requested = max(requested, math.ceil(result.implied_size) if math.isfinite(result.implied_size) else math.inf)
        if max_batch_size is not None:
            requested = min(requested, max_batch_size)
        return updates, AdaptiveBatchState(base=base_state, batch_size=requested, last=result)

    hyper = {"base": base.name, **{f"base.{k}": v for k, v in base.hyperparams.items()},
             "test": test, "eta": eta, "max_batch_size": max_batch_size}
    return Optimizer(init, update, f"adaptive_batch({base.name})", hyper)


def adadagrad(learning_rate: float = 1e-2, eps: float = 1e-10, initial_accumulator_value: float = 0.0,
              eta: float = 0.1, test: str = "coordinate", max_batch_size: int | None = None) -> Optimizer:
    """AdAdaGrad: :func:`~dba_ref.optimizers.adagrad.adagrad` with adaptive batch sizes (coordinate-wise test by default)."""
    opt = adaptive_batch(adagrad(learning_rate, eps, initial_accumulator_value), test, eta, max_batch_size)
    return opt._replace(name="adadagrad")


def adadagrad_norm(learning_rate: float = 1.0, b0: float = 0.1, eta: float = 0.1, test: str = "norm",
                   max_batch_size: int | None = None) -> Optimizer:
    """AdAdaGrad-Norm: :func:`~dba_ref.optimizers.adagrad.adagrad_norm` with adaptive batch sizes (norm test)."""
    return adaptive_batch(adagrad_norm(learning_rate, b0), test, eta, max_batch_size)._replace(name="adadagrad_norm")

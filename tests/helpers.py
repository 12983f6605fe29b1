"""Helpers of the tests: random batches and models, assertions within rounding, comparing selections.

The rule itself (how far two computations may differ by rounding, with the
rounding scale and operation count of the network's quantities) is the
package's, :mod:`dba_ref.agreement` (spec §7.1); here are the assertions that
apply it, and the scales of the quantities only the tests compare (mean
gradients, optimizer steps, softmax sums, central differences). Fixtures are
in ``conftest.py``.
"""
import json
import os

import numpy as np
import pytest

from dba_ref import MLP, apply_updates, backprop
from dba_ref.agreement import (AMBIGUITY, SAFETY, check_against, decision_margins, decisive_steps, error_ratio,
                               gram_entry_rtol, machine_epsilon, network_ops, rounding_tolerance, selection_tolerances)
from dba_ref.backends import get_backend
from dba_ref.backprop import mean_grad, mean_grads


def random_batch(rng, model: MLP, B: int):
    """A random batch ``(X, y)`` for ``model``: Gaussian inputs and uniform labels."""
    X = rng.normal(size=(B, model.sizes[0]))
    y = rng.integers(0, model.n_classes, size=B)
    return X, y


def random_mlp(rng, n_layers: int, activation: str) -> MLP:
    """An MLP with odd widths (1..9 inputs and hidden units, 3 or 5 classes) and non-zero biases.

    The frameworks' cross-checks draw their models with it.
    """
    sizes = [int(s) for s in rng.choice([1, 3, 5, 7, 9], size=n_layers)] + [int(rng.choice([3, 5]))]
    model = MLP(sizes, activation=activation, seed=int(rng.integers(1 << 31)))
    model.set_params([(W, rng.normal(scale=0.3, size=b.shape)) for W, b in model.params])
    return model


# --------------------------------------------------------------------------
# Rounding tolerances (issue 11): floats compared across runs and machines, by
# the package's rule, dba_ref.agreement.rounding_tolerance (spec §7.1).
# Comparisons of one computation with itself within a process (``strategy="all"``
# equals the base optimizer; a resumed run equals an uninterrupted one) stay bit
# for bit: they are properties, not comparisons across machines.
# --------------------------------------------------------------------------
def assert_within_rounding(actual, reference, scale, n_ops, dtype=np.float64, what="values"):
    """``|actual − reference| <= rounding_tolerance(scale, n_ops, dtype)``, entry by entry (:func:`assert_within`)."""
    assert_within(actual, reference, rounding_tolerance(scale, n_ops, dtype), what,
                  f"{SAFETY} × {n_ops} operations × ε({np.dtype(dtype).name}) × scale")


def assert_within(actual, reference, tolerance, what="values", how="the tolerance", kind="rounding"):
    """``|actual − reference| <= tolerance`` entry by entry (``tolerance`` broadcast against ``reference``).

    Where the reference is ±inf the actual value must be equal; a NaN never
    passes. With ``DBA_REF_ROUNDING_LOG=FILE`` set, the worst ratio error /
    tolerance is appended to FILE (one JSON line per call, with ``kind``:
    ``"rounding"``, or ``"truncation"`` for central differences):
    ``.ci/blas_matrix`` reports the worst rounding comparison.
    """
    a = np.asarray(actual, np.float64)
    r = np.asarray(reference, np.float64)
    assert a.shape == r.shape, f"{what}: shape {a.shape}, expected {r.shape}"
    finite = np.isfinite(r)
    assert not np.isnan(a).any(), f"{what}: NaN in {a}"
    assert np.array_equal(a[~finite], r[~finite]), f"{what}: {a[~finite]} where the reference is {r[~finite]}"
    tol = np.broadcast_to(np.asarray(tolerance, np.float64), r.shape)[finite]
    err = np.abs(a[finite] - r[finite])
    ratio = error_ratio(err, tol)
    worst = float(ratio.max(initial=0.0))
    log = os.environ.get("DBA_REF_ROUNDING_LOG")
    if log:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
        with open(log, "a") as f:
            f.write(json.dumps({"test": test, "what": what, "kind": kind, "ratio": worst}) + "\n")
    if not worst <= 1:                                      # NaN fails too
        at = int(np.argmax(np.where(np.isnan(ratio), np.inf, ratio)))
        pytest.fail(f"{what}: {a[finite][at]!r} vs {r[finite][at]!r} differ by {err[at]:.3g}, {worst:.3g} times "
                    f"{how} ({tol[at]:.3g})")


def central_difference_tolerance(f_scale, n_ops, h, third_derivative=1.0) -> float:
    """How far ``(f(x + h) − f(x − h)) / 2h`` may lie from ``f′(x)``.

    Each evaluation of f rounds by up to ``rounding_tolerance(f_scale, n_ops)``,
    which the quotient divides by h; truncation adds ``h²·|f‴|/6``, with ``|f‴|``
    taken as ``6 · third_derivative`` (order 1 for networks of order-1 weights and
    inputs along a direction of unit size; scale it by ``|v|³`` for a direction v).
    """
    return float(rounding_tolerance(f_scale, n_ops)) / h + third_derivative * h ** 2


def softmax_sum_rounding(Z) -> tuple:
    """``(scale, n_ops)`` of the row sums of ``softmax(Z)`` (which are 1): each ``p_j = exp(Z_j − logsumexp Z)``
    rounds relative to ``|Z_j| + |logsumexp Z| <= 1 + 2·max|Z|`` (per row), and a row sums ``n_classes`` of them."""
    Z = np.asarray(Z, np.float64)
    return 1.0 + 2.0 * np.abs(Z).max(axis=1), Z.shape[1] + 1


def search_ops(batch_size: int) -> int:
    """Roundings that feed a search's statistics: ``3B`` (a row sum ``r_i``, ``Q = Σ r_i``, up to B updates)."""
    return 3 * int(batch_size)


def step_rounding_scale(params, update, ops, cancellation=1.0) -> np.ndarray:
    """``|θ| + ops·c·|u|``: the rounding scale one optimizer step ``θ ← θ + u`` adds to the parameters.

    ``ops`` is how many roundings fed the update ``u``: the gradient's (a network's
    :func:`network_ops` and the mean over k samples), the optimizer's running sums
    (moments, velocities, accumulators: t of them at step t) and any reduction
    (a norm over P parameters: P). ``c`` is the gradient's cancellation
    (:func:`gradient_cancellation`, 1 for a gradient given as data): a mean
    gradient rounds relative to its terms, and an update depends on each gradient
    entry with a relative condition of at most 1 (SGD, Adam's ``g/(|g| + ε)``),
    so its rounding relative to itself grows by the same factor. (An update that
    cancels as well, momentum's ``μv`` against ``g``, is covered only by SAFETY.)
    ``θ + u`` rounds once more, relative to ``|θ|``. The scales of successive
    steps add up: after s steps compare with ``assert_within_rounding(θ, θ_ref,
    Σ_t step_rounding_scale(θ_t, u_t, ops_t, c_t), 1)``. An error of the weights
    also changes the next gradients, through the loss's curvature; at these
    learning rates that is part of :data:`SAFETY`'s "Jacobians of norm about 1".
    """
    return np.abs(np.asarray(params, np.float64)) + ops * np.abs(np.asarray(update, np.float64)) * cancellation


def gradient_cancellation(A, D, indices=None):
    """``Σ|terms| / |Σ terms|`` for each entry of a layer's mean gradient over S, as ``(W, b)`` arrays.

    The mean is known only to about ``ε·Σ|terms|``, so ``|Σ terms|`` counts as no
    less than that (the factor is at most ``1/ε``: an entry that cancels to
    rounding noise leaves its update undetermined to about its own size); 1 where
    the terms are all 0 (both sides compute an exact 0).
    """
    out = []
    for terms, g in zip(mean_grad_scale(A, D, indices), mean_grad(A, D, indices)):
        floor = machine_epsilon() * terms
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(terms == 0, 1.0, terms / np.maximum(np.abs(np.asarray(g, np.float64)), floor)))
    return tuple(out)


def training_step_rounding(model, updates, signals, step: int, selections=None) -> list:
    """The rounding scale one training step adds to each parameter array ``[W1, b1, W2, ...]`` (before the update).

    Layer l's update is fed by the signals (:func:`network_ops`), the mean over
    its selection S_l (``selections[l]``, indices; ``None``: the whole batch) and
    the optimizer's running sums over ``step`` steps, amplified by its gradient's
    cancellation (:func:`step_rounding_scale`).
    """
    scales = []
    for l, ((W, b), (uW, ub), (A, D)) in enumerate(zip(model.params, updates, signals.layers)):
        S = None if selections is None else selections[l]
        ops = network_ops(model.sizes) + (A.shape[0] if S is None else len(S)) + step
        cW, cb = gradient_cancellation(A, D, S)
        scales += [step_rounding_scale(W, uW, ops, cW), step_rounding_scale(b, ub, ops, cb)]
    return scales


def mean_grad_scale(A, D, indices=None):
    """``(|Δ_S|ᵀ|A_S| / k, Σ|Δ_S| / k)``: the rounding scale of each entry of a mean gradient over S."""
    if indices is not None:
        A, D = np.asarray(A)[indices], np.asarray(D)[indices]
    k = A.shape[0]
    return matmul_scale(np.asarray(D).T, A) / k, np.abs(np.asarray(D, np.float64)).sum(axis=0) / k


def matmul_scale(A, B) -> np.ndarray:
    """``|A| @ |B|``, the rounding scale of each entry of ``A @ B`` (its terms' absolute sum)."""
    return np.abs(np.asarray(A, np.float64)) @ np.abs(np.asarray(B, np.float64))


# --------------------------------------------------------------------------
# Comparing selections: the package's one rule (dba_ref.agreement, spec §5 and §7.1)
# --------------------------------------------------------------------------
# Whether two implementations' selections agree, and how far their metric values
# may lie apart, is decided by dba_ref.agreement, the package the conformance
# checker and the exercises use too; the helpers below only adapt it to the tests'
# way of counting the roundings of a Gram matrix (``gram_rounding``: roundings of
# each K entry, relative to its scale sqrt(K_ii K_jj), between the two sides' K,
# which dba_ref.agreement.gram_entry_rtol turns into a relative error).
#
#: A decision whose margin is at most this is a close call two implementations may decide differently.
AMBIGUOUS = AMBIGUITY["float64"]


def clear_steps(selection, K, threshold=AMBIGUOUS) -> int:
    """How many leading decisions of ``selection`` (made on ``K``) are clear: the steps that must agree."""
    return decisive_steps(decision_margins(K, selection), threshold)


def selection_value_tolerances(selection, K, gram_rounding: int = 0, dtype=np.float64) -> tuple:
    """``(value tolerance, values tolerances)``: how far another correct computation of ``selection``'s value and
    path values may lie from them (:func:`dba_ref.agreement.selection_tolerances`)."""
    tr = selection.trace
    return selection_tolerances(K, tr.metric, tr.strategy, tr.removed, selection.indices,
                                gram_entry_rtol(gram_rounding, dtype))


def assert_selection_value(got, selection, K, gram_rounding: int = 0, dtype=np.float64, what="selected value"):
    """``got`` is ``selection.value`` computed another correct way (to the agreement rule's tolerance), from a K
    whose entries differ by ``gram_rounding`` roundings in ``dtype``."""
    assert_within(got, selection.value, selection_value_tolerances(selection, K, gram_rounding, dtype)[0], what,
                  "the rounding bound of dba_ref.agreement")


def assert_path_values(got, selection, K, gram_rounding: int = 0, what="path values"):
    """``got`` are the first ``len(got)`` of ``selection.trace.values`` computed another correct way."""
    n = len(got)
    assert_within(got, selection.trace.values[:n], selection_value_tolerances(selection, K, gram_rounding)[1][:n],
                  what, "the rounding bound of dba_ref.agreement")


def assert_agrees_with_reference(ref, K, other, gram_rounding: int = 0, threshold=AMBIGUOUS, margins=None):
    """The verdict on another implementation's selection ``other`` against ``ref`` (a Selection made on ``K``),
    after asserting that everything the rule compares passed (:func:`dba_ref.agreement.check_against`).

    ``other`` is a Selection or has its outputs as attributes (``indices``, ``removed``,
    ``value``, ``values``, ``full_T``, ``full_Q``, ``full_value``: arrays, tensors or numbers).
    """
    result = check_against(K, ref, other, threshold=threshold, gram_rtol=gram_entry_rtol(gram_rounding),
                           margins=margins)
    assert result.passed, "; ".join(result.problems())
    return result.verdict


def assert_same_selection(ref, out, K, gram_rounding: int = 0, tol=AMBIGUOUS) -> bool:
    """``out`` (a backend's Selection) agrees with ``ref`` (NumPy's) by the agreement rule.

    Sets and removal orders are equal as far as every decision is clear (margin
    > ``tol``, spec §5; ``tol=-1`` compares everything), values within the
    rounding bound of spec §7.1. Returns whether every decision was clear, i.e.
    the whole path was compared.
    """
    margins = decision_margins(K, ref)
    verdict = assert_agrees_with_reference(ref, K, out, gram_rounding, tol, margins)
    every_decision_clear = decisive_steps(margins, tol) == len(margins)
    if every_decision_clear:
        assert verdict.status == "agree", verdict.detail
    return every_decision_clear


def replay_training(model, optimizer, X, y, batch_size, epochs, dtype=np.float64):
    """``train(model, optimizer, X, y, epochs, batch_size, shuffle=False)``'s steps again, one by one, in float64:
    the rounding they add up, and each step's loss tolerance for a run in ``dtype``.

    Returns ``(model, rounding, loss_tolerance)``: the replayed model, the rounding
    scale of each parameter array after the last step (``training_step_rounding``),
    and per step the tolerance of the batch loss: its own rounding (the terms of
    ``ℓ = logsumexp(Z) − Z_y`` through the network and the mean over the batch)
    plus the weights' tolerance so far times the loss's gradient.
    """
    state, rounding, loss_tolerance, step = optimizer.init(model.params), [0.0] * 2 * model.n_layers, [], 0
    for _ in range(epochs):
        for start in range(0, len(y), batch_size):
            Xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            step += 1
            signals = backprop(model, Xb, yb)
            grads = mean_grads(signals)                        # plain optimizers (DBA: see training_step_rounding)
            terms = 1.0 + np.abs(signals.losses).max() + np.abs(model.forward(Xb)).max()
            through_weights = sum(np.sum(np.abs(g) * rounding_tolerance(r, 1, dtype))
                                  for g, r in zip([g for pair in grads for g in pair], rounding))
            own = rounding_tolerance(terms, network_ops(model.sizes) + len(yb), dtype)
            loss_tolerance.append(float(own) + through_weights)
            updates, state = optimizer.update(grads, state, model.params)
            rounding = [r + a for r, a in zip(rounding, training_step_rounding(model, updates, signals, step))]
            model.set_params(apply_updates(model.params, updates))
    return model, rounding, np.array(loss_tolerance)


def skip_module_without_cuda_backend() -> None:
    """Skip the calling test module when ``DBA_REF_REAL_GPU=1`` is set and no GPU answers; under the simulator
    the CUDA backend is always there, so a failure to load it is raised."""
    try:
        get_backend("cuda")
    except OSError as error:
        if os.environ.get("DBA_REF_REAL_GPU") != "1":      # the simulator is always there: a real failure
            raise
        pytest.skip(f"DBA_REF_REAL_GPU=1 but {error}", allow_module_level=True)

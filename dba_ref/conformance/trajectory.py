"""DBA trajectories: another implementation's N consecutive steps, judged one step at a time.

A trajectory is N DBA steps of one base optimizer, metric and strategy from a
case's weights ``θ_0`` on the batches ``(X_t, y_t)`` of
:func:`~dba_ref.conformance.cases.step_inputs`. After each step t the other
implementation reports, for every layer l, the subset it kept ``S°_{t,l}``
(``indices``) with the order its search removed the others (``removed``), and
its weights ``θ°_t`` (row t − 1 of the arrays of :func:`~dba_ref.conformance.schema.trajectory_key`). The reference judges each step **from where the other
implementation stood**::

    (A, Δ)       = backprop(θ°_{t-1}; X_t, y_t)
    S_l          = search(K_l),  K_l = (Δ_l Δ_lᵀ) ⊙ (A_{l-1} A_{l-1}ᵀ + 1)     the reference's own selection
    S'_l         = S_l, or S°_{t,l} where the two part                        (re-synchronisation)
    u_t, s_t     = base.update([mean_grad(A_{l-1}, Δ_l, S'_l)], s_{t-1}, θ°_{t-1})
    θ_t          = θ°_{t-1} + u_t

- each selection ``S°_{t,l}`` against ``S_l`` by :func:`dba_ref.agreement.compare_selection`:
  the same set and removal order, or parting at a near-tie (a decision margin
  ≤ :data:`~dba_ref.agreement.AMBIGUITY`): *ambiguous*, not a failure; else a failure;
- the weights ``θ°_t`` against ``θ_t`` entry by entry, within
  ``rounding_tolerance(scale_t, 1, dtype)`` (:func:`dba_ref.agreement.rounding_tolerance`) with::

      scale_t = |θ°_{t-1}| + Σ_{k≤t} ops_k · c_k · |u_k|

  the rounding of ``θ + u`` and of every update that fed the optimizer's state:
  ``ops_k`` roundings (a forward and a backward pass, the mean over ``|S'|``
  samples, k running sums of the state), each amplified by the cancellation
  ``c_k`` of the mean gradient (:func:`update_rounding`).

The state ``s_t`` is the reference's own, carried along the other
implementation's weights. Where the selections part, the step continues with
the other's selection for that layer, so the weights of that step and of
every later one are still compared, against the step the other implementation
should have made from its own choice. The first failure, by step and then
layer (a selection before the weights it leads to), is the trajectory's
:class:`Divergence`. docs/verification.md §2 says why a step is judged from the
other's weights rather than against the reference's own trajectory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .._text import plural
from ..agreement import AMBIGUITY, compare_selection, decision_margins, entry_errors, network_ops, rounding_tolerance
from ..backprop import backprop, mean_grad
from ..gram import gram
from ..optimizers import apply_updates
from ..search import search
from ..update import search_plan
from .cases import base_optimizer, model_from_inputs, n_layers
from .schema import stack_steps, trajectory_key, unpad


@dataclass(frozen=True)
class Divergence:
    """Where a trajectory first fails: ``step`` and ``layer`` (from 1), the result ``key``, what differs, and for
    a selection the ``sample`` where the two part with the reference's decision ``margin`` there."""

    case: str
    trajectory: str
    step: int
    layer: int
    key: str
    detail: str
    sample: int | None = None
    margin: float | None = None

    def __str__(self) -> str:
        where = f"{self.case} {self.trajectory}: step {self.step}, layer {self.layer}"
        if self.sample is not None:
            where += f", sample {self.sample}"
        if self.margin is not None:
            where += f" (reference decision margin {self.margin:.3g})"
        return f"{where}: {self.detail}"


@dataclass
class TrajectoryCheck:
    """What judging one trajectory found: the steps judged, the (step, layer) pairs where the reference took the
    other's selection, and the first :class:`Divergence` (None when every step agrees)."""

    case: str
    trajectory: str
    steps: int
    resynchronised: list = field(default_factory=list)
    first: Divergence | None = None


def trajectory_label(base: str, metric: str, strategy: str) -> str:
    """``"DBA(sgd) mean_variance/greedy"``."""
    return f"DBA({base}) {metric}/{strategy}"


# --------------------------------------------------------------------------
# The reference's step, in two halves (the selection may be forced between them)
# --------------------------------------------------------------------------
def reference_search(model, X, y, metric: str, strategy: str, min_size, tol: float):
    """The first half of a DBA step (spec §6): the batch's signals and, per layer, ``(K_l, Selection_l)``."""
    signals = backprop(model, X, y)
    strategy, m = search_plan(strategy, min_size, signals.batch_size)
    searches = []
    for A, D in signals.layers:
        K = gram(A, D)
        searches.append((K, search(K, metric, strategy, m, tol)))
    return signals, searches


def reference_update(model, signals, subsets, base, state):
    """The second half: the mean gradient of every layer over ``subsets[l]`` and the base optimizer's update.
    Returns ``(grads, updates, state)``; with the searches' own subsets this is :func:`dba_ref.dba_step`."""
    grads = [mean_grad(A, D, S) for (A, D), S in zip(signals.layers, subsets)]
    updates, state = base.update(grads, state, model.params)
    return grads, updates, state


def update_rounding(sizes, signals, subsets, grads, updates, step: int, dtype) -> list:
    """``ops · c · |u|`` for every parameter array ``[W1, b1, W2, ...]`` of one step (see the module docstring).

    ``c = Σ|terms| / |Σ terms|`` entry by entry for the mean gradient over the
    subset (at most ``1/ε``: an entry that cancels to rounding noise leaves its
    update undetermined to about its own size; 1 where every term is 0).
    """
    eps = float(np.finfo(dtype).eps)
    out = []
    for (A, D), S, g, u in zip(signals.layers, subsets, grads, updates):
        A64, D64 = np.abs(np.asarray(A, np.float64)[S]), np.abs(np.asarray(D, np.float64)[S])
        terms = (D64.T @ A64 / len(S), D64.sum(axis=0) / len(S))
        ops = network_ops(sizes) + len(S) + step
        for term, gi, ui in zip(terms, g, u):
            with np.errstate(divide="ignore", invalid="ignore"):
                c = np.where(term == 0, 1.0, term / np.maximum(np.abs(np.asarray(gi, np.float64)), eps * term))
            out.append(ops * c * np.abs(np.asarray(ui, np.float64)))
    return out


# --------------------------------------------------------------------------
# The reference's own trajectory (what a perfect implementation reports)
# --------------------------------------------------------------------------
def reference_trajectory(inputs, base: str, metric: str, strategy: str, steps: int) -> dict:
    """The reference's outputs of a trajectory, ``{trajectory_key: array}``: every step's selections and
    weights, stacked over the steps."""
    model, opt = model_from_inputs(inputs), base_optimizer(inputs, base)
    state, m, tol = opt.init(model.params), inputs["min_size"].item(), float(inputs["tol"])
    L, B = n_layers(inputs), inputs["step_y"].shape[1]
    rows = {name: [] for l in range(1, L + 1) for name in (f"L{l}/indices", f"L{l}/removed", f"W{l}", f"b{l}")}
    for t in range(steps):
        signals, searches = reference_search(model, inputs["step_X"][t], inputs["step_y"][t], metric, strategy, m, tol)
        _, updates, state = reference_update(model, signals, [sel.indices for _, sel in searches], opt, state)
        model.set_params(apply_updates(model.params, updates))
        for l, ((_, sel), (W, b)) in enumerate(zip(searches, model.params), 1):
            rows[f"L{l}/indices"].append(sel.indices)
            rows[f"L{l}/removed"].append(sel.trace.removed)
            rows[f"W{l}"].append(W.copy())
            rows[f"b{l}"].append(b.copy())
    return stack_steps(base, metric, strategy, rows, B)


# --------------------------------------------------------------------------
# The judge
# --------------------------------------------------------------------------
def _subset(indices) -> np.ndarray | None:
    """``indices`` as sorted int64 if they name a non-empty set of distinct samples, else None (not usable)."""
    if indices is None or indices.size == 0:
        return None
    subset = np.unique(indices.astype(np.int64))
    return subset if subset.size == indices.size else None


def _parting(selection, margins, verdict, indices, removed) -> tuple:
    """The sample where another selection parts from the reference's, and the reference's margin there."""
    ref_removed = selection.trace.removed
    t = verdict.agreed_steps
    if selection.trace.strategy == "greedy" and removed is not None and (t < len(ref_removed) or t < len(removed)):
        sample = ref_removed[t] if t < len(ref_removed) else removed[t]
        return int(sample), (float(margins[t]) if t < len(margins) else None)
    kept = set(np.asarray(indices).tolist()) if indices is not None else set(selection.indices.tolist())
    differ = sorted(kept ^ set(selection.indices.tolist()), key=float)
    margin = float(margins.min()) if margins.size else None
    return (int(differ[0]) if differ else None), margin


class _Step(NamedTuple):
    """What judging one step needs to know of the trajectory: where to record, and the keys by output name."""

    case: str
    label: str
    t: int
    keys: dict
    row: object


def _judge_selections(step: _Step, searches, got: dict, threshold: float, result: TrajectoryCheck) -> tuple:
    """Compare the other's selections of one step with the reference's ``searches``; return the subsets the step
    continues with (the other's where they part: re-synchronisation) and the failures ``(layer, 0, Divergence)``."""
    subsets, failures = [], []
    for l, (K, sel) in enumerate(searches, 1):
        given = {name: unpad(got[step.keys[f"L{l}/{name}"]][step.t - 1]) for name in ("indices", "removed")
                 if step.keys[f"L{l}/{name}"] in got}
        indices, removed = given.get("indices"), given.get("removed")
        subsets.append(sel.indices)
        if not given:
            continue
        same = ((indices is None or np.array_equal(indices, sel.indices))
                and (removed is None or np.array_equal(removed, sel.trace.removed)))
        margins = np.zeros(0) if same else decision_margins(K, sel)        # replayed only where they part
        verdict = compare_selection(sel.trace.strategy, sel.indices, sel.trace.removed, margins, indices, removed,
                                    threshold)
        for name in given:
            step.row(f"step_{name}").record_verdict(f"{step.case}/{step.keys[f'L{l}/{name}']} step {step.t}", verdict)
        if verdict.status == "agree":
            continue
        forced = _subset(indices)
        if forced is not None:
            subsets[-1] = forced
            result.resynchronised.append((step.t, l))
        if verdict.status == "differ":
            sample, margin = _parting(sel, margins, verdict, indices, removed)
            name = ("removed" if sel.trace.strategy == "greedy" and removed is not None
                    and not np.array_equal(removed, sel.trace.removed) else "indices")
            failures.append((l, 0, Divergence(step.case, step.label, step.t, l, step.keys[f"L{l}/{name}"],
                                              verdict.detail, sample, margin)))
    return subsets, failures


def _judge_weights(step: _Step, base: str, start: list, expected: list, history: list, got: dict, dtype) -> tuple:
    """Compare the other's weights after one step with ``expected``, array by array; return the weights the next
    step starts from (the other's where finite) and the failures ``(layer, 1, Divergence)``."""
    after, failures = list(expected), []
    for i, ref in enumerate(expected):
        name = f"{'Wb'[i % 2]}{i // 2 + 1}"
        if step.keys[name] not in got:
            continue
        other = got[step.keys[name]][step.t - 1]
        allowed = rounding_tolerance(np.abs(np.asarray(start[i], np.float64)) + history[i], 1, dtype)
        ratio = entry_errors(other, ref, allowed)
        # the entry nearest (or furthest beyond) its allowance
        at = np.unravel_index(int(np.argmax(np.nan_to_num(ratio, nan=np.inf))), ref.shape)
        rkey, failure = f"{step.case}/{step.keys[name]} step {step.t}", None
        if not ratio.max(initial=0.0) <= 1:
            failure = (f"{name}{[int(j) for j in at]} = {float(other[at]):.17g}, reference {float(ref[at]):.17g}: "
                       f"they differ by {abs(float(other[at]) - float(ref[at])):.3g} > "
                       f"{float(allowed[at]):.3g}, the rounding of {plural(step.t, 'step')}")
            failures.append((i // 2 + 1, 1, Divergence(step.case, step.label, step.t, i // 2 + 1, step.keys[name],
                                                        failure)))
        # its error and allowance relative to the array's magnitude
        scale = float(np.max(np.abs(ref), initial=0.0)) or 1.0
        entry_allowed = float(allowed[at])
        step.row(f"dba_{base}").record_error(rkey, float(ratio[at]) * entry_allowed / scale, entry_allowed / scale,
                                             None if failure is None else f"{rkey}: {failure}")
        if np.all(np.isfinite(other)):
            after[i] = other
    return after, failures


def judge_trajectory(case: str, inputs, base: str, metric: str, strategy: str, steps: int, got: dict,
                     row) -> TrajectoryCheck:
    """Judge the first ``steps`` steps of one trajectory of case ``case`` (its ``inputs``, with the step inputs).

    ``got`` maps the case's result keys (without the case prefix) to the other
    implementation's arrays, already checked (dtype, shape, padding); a key
    absent from it is not compared. ``row(quantity)`` is the report's row of a
    declared quantity, which records every comparison, per step, as
    ``"<case>/<key> step <t>"``.
    """
    label, dtype = trajectory_label(base, metric, strategy), str(inputs["dtype"])
    model, opt = model_from_inputs(inputs), base_optimizer(inputs, base)
    state, m, tol = opt.init(model.params), inputs["min_size"].item(), float(inputs["tol"])
    history = [np.zeros(p.shape) for pair in model.params for p in pair]      # Σ_k ops_k c_k |u_k|
    L = n_layers(inputs)
    keys = {name: trajectory_key(base, metric, strategy, name) for l in range(1, L + 1)
            for name in (f"W{l}", f"b{l}", f"L{l}/indices", f"L{l}/removed")}
    result = TrajectoryCheck(case, label, steps)
    for t in range(1, steps + 1):
        step = _Step(case, label, t, keys, row)
        signals, searches = reference_search(model, inputs["step_X"][t - 1], inputs["step_y"][t - 1], metric,
                                             strategy, m, tol)
        subsets, failures = _judge_selections(step, searches, got, AMBIGUITY[dtype], result)
        grads, updates, state = reference_update(model, signals, subsets, opt, state)
        rounding = update_rounding(inputs["sizes"], signals, subsets, grads, updates, t, dtype)
        history = [h + r for h, r in zip(history, rounding)]
        start = [p for pair in model.params for p in pair]
        expected = [p for pair in apply_updates(model.params, updates) for p in pair]
        after, weight_failures = _judge_weights(step, base, start, expected, history, got, dtype)
        failures += weight_failures
        if failures and result.first is None:
            result.first = min(failures, key=lambda f: f[:2])[2]           # by layer, a selection first
        model.set_params(list(zip(after[::2], after[1::2])))
    return result

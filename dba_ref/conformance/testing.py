"""Conformance from a test suite: the check of ``dba-ref conformance``, run on a step function.

Your implementation makes one DBA step in a function of this signature
(NumPy arrays in and out; weights in PyTorch's ``(out, in)`` layout)::

    def step(weights, X, y, hyperparams, state):
        ...
        return selections, new_weights, new_state          # or StepResult(selections, new_weights, new_state)

``weights``
    ``[(W_1, b_1), ..., (W_L, b_L)]`` before the step, ``W_l`` ``(out_l, in_l)``,
    ``b_l`` ``(out_l,)``, in the case's dtype (copies: yours to change).
``X, y``
    The step's batch, ``(B, in)`` in the case's dtype and ``(B,)`` int64.
``hyperparams``
    ``{"sizes", "activation", "dtype", "metric", "strategy", "min_size",
    "tol", "base"}`` and the base optimizer's own, under the keywords of
    :func:`dba_ref.make_optimizer`: ``learning_rate`` (sgd), with ``momentum``
    (momentum), or ``beta1``, ``beta2``, ``eps`` (adam; ε added to √v̂ after the
    bias correction, as ``torch.optim.Adam``).
``state``
    ``None`` at a trajectory's first step, then what your previous call
    returned: anything (moments, a ``torch.optim`` optimizer, ...).

It returns, for every layer, ``(indices, removed)``: the sorted indices of the
samples the layer kept and the order its search removed the others (``removed``
may be ``None`` if you do not declare ``step_removed``); the weights after the
step, shaped as ``weights``; and the state to pass to the next call.

:func:`check_step` runs it over every declared case, base optimizer, metric and
strategy for ``declaration.steps`` steps, each step from the weights the
previous one returned, and judges it as ``dba-ref conformance check`` judges a
results file (:mod:`~dba_ref.conformance.trajectory`): it returns the
:class:`~dba_ref.conformance.ConformanceReport` (``.passed``, ``.errors`` by
key, ``.first_divergence``). An exception in your function, or outputs of the
wrong type, shape or dtype, are reported as that, by case, trajectory and
step, never raised. :func:`assert_step_conforms` raises ``AssertionError``
with the report instead, and :func:`parametrize_with_cases` makes one pytest
test per case (as scikit-learn's ``parametrize_with_checks`` makes one per check)::

    from dba_ref.conformance import Declaration, parametrize_with_cases

    DECLARED = Declaration(metrics="mean_variance", strategies="greedy", bases="sgd", steps=20)

    @parametrize_with_cases(my_step, DECLARED)
    def test_my_dba(step, check):
        check(step)

Your function runs in the test's process: this is for checking your own code.
To judge code you do not trust, run it elsewhere and check its results file
with ``dba-ref conformance check``, which reads it as untrusted input.
Ready-made step functions for a PyTorch ``nn.Sequential`` and for JAX:
:mod:`dba_ref.frameworks.torch_adapter`, :mod:`dba_ref.frameworks.jax_adapter`.
"""
from __future__ import annotations

import traceback
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from .cases import base_hyperparams, with_step_inputs
from .check import check_inputs
from .declaration import Declaration
from .files import load_golden
from .report import ConformanceReport, format_report
from .schema import STEP_QUANTITIES, stack_steps


class StepResult(NamedTuple):
    """What a step function returns: per layer ``(indices, removed)``, the new ``[(W_l, b_l)]``, its state."""

    selections: Any
    weights: Any
    state: Any


class StepError(Exception):
    """A step function's outputs are not what the signature asks for (the message says what)."""


def step_declaration(declaration: Declaration | None) -> Declaration:
    """``declaration`` (default: everything) restricted to what a step function gives: the step quantities."""
    declaration = Declaration() if declaration is None else declaration
    quantities = [q for q in declaration.asked_quantities if q in STEP_QUANTITIES]
    if not quantities:
        raise ValueError("a step function gives the DBA steps' selections and weights: declare at least one of "
                         f"{', '.join(STEP_QUANTITIES)} in the declaration's quantities")
    return declaration.replace(quantities=quantities)


def hyperparams_of(inputs, base: str, metric: str, strategy: str) -> dict:
    """The ``hyperparams`` a step function receives for one trajectory of a case."""
    return {"sizes": [int(s) for s in inputs["sizes"]], "activation": str(inputs["activation"]),
            "dtype": str(inputs["dtype"]), "metric": metric, "strategy": strategy,
            "min_size": inputs["min_size"].item(), "tol": float(inputs["tol"]), "base": base,
            **base_hyperparams(inputs, base)}


def _array(value, what: str, integer: bool) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:  # a tensor on a device, one that requires grad, a ragged list ...
        raise StepError(f"{what} is not convertible to a NumPy array ({type(exc).__name__}: {exc})") from exc
    if integer and array.size == 0:
        return array.astype(np.int64)                          # [] (nothing removed) reads as float64
    kinds = (np.integer,) if integer else (np.floating,)
    if not any(np.issubdtype(array.dtype, k) for k in kinds):
        raise StepError(f"{what} has dtype {array.dtype}, expected {'integers' if integer else 'floating point'}")
    return array


def step_outputs(returned, inputs, quantities) -> tuple[dict, Any]:
    """What a step function returned, as ``{name: array}`` (``L<l>/indices``, ``L<l>/removed``, ``W<l>``,
    ``b<l>``; the declared ones), and its new state; a :class:`StepError` says what is wrong with it."""
    if not isinstance(returned, (tuple, list)) or len(returned) != 3:
        raise StepError(f"returned {type(returned).__name__}, expected (selections, new_weights, new_state)")
    selections, weights, state = returned
    L = len(inputs["sizes"]) - 1
    for what, value in (("selections", selections), ("new_weights", weights)):
        if not isinstance(value, (tuple, list)) or len(value) != L:
            size = f"{len(value)} entries" if isinstance(value, (tuple, list)) else type(value).__name__
            raise StepError(f"{what} is {size}, expected a list of {L} (one per layer)")
    out = {}
    for l, selection in enumerate(selections, 1):
        if not isinstance(selection, (tuple, list)) or len(selection) != 2:
            raise StepError(f"selection of layer {l} is {type(selection).__name__}, expected (indices, removed)")
        for name, value in zip(("indices", "removed"), selection):
            if f"step_{name}" not in quantities:
                continue
            if value is None:
                raise StepError(f"layer {l} gives no {name}, but step_{name} is declared (leave it out of the "
                                "declaration's quantities if your implementation does not compute it)")
            array = _array(value, f"{name} of layer {l}", integer=True)
            B = inputs["X"].shape[0]
            if array.ndim != 1 or array.size > B or np.any(array < 0) or np.any(array >= B):
                raise StepError(f"{name} of layer {l} is {array.tolist()!r}, expected a 1-D array of sample "
                                f"indices 0..{B - 1}")
            out[f"L{l}/{name}"] = array
    for l, pair in enumerate(weights, 1):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise StepError(f"new_weights[{l - 1}] is {type(pair).__name__}, expected (W{l}, b{l})")
        for name, value in zip((f"W{l}", f"b{l}"), pair):
            array = _array(value, name, integer=False)
            if array.shape != inputs[name].shape:
                raise StepError(f"{name} has shape {array.shape}, expected {inputs[name].shape} (PyTorch's (out, in) "
                                "layout)")
            out[name] = array.copy()
    return out, state


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def run_step_function(step, inputs, base: str, metric: str, strategy: str, steps: int, quantities):
    """Run ``step`` for one trajectory: ``({trajectory key: array stacked over the steps made}, failure)``,
    ``failure`` being ``(step, message)`` if a step failed (the trajectory stops there), else None."""
    L, B = len(inputs["sizes"]) - 1, inputs["X"].shape[0]
    weights = [(inputs[f"W{l}"], inputs[f"b{l}"]) for l in range(1, L + 1)]
    hyperparams, state, rows, failure = hyperparams_of(inputs, base, metric, strategy), None, [], None
    for t in range(1, steps + 1):
        X, y = inputs["step_X"][t - 1].copy(), inputs["step_y"][t - 1].copy()
        try:
            returned = step([(W.copy(), b.copy()) for W, b in weights], X, y, dict(hyperparams), state)
        except Exception as exc:  # the implementation's own failure: reported, never raised
            failure = (t, f"the step function raised {type(exc).__name__}: {exc}{_where(exc)}")
            break
        try:
            out, state = step_outputs(returned, inputs, quantities)
        except StepError as exc:
            failure = (t, f"the step function's output: {exc}")
            break
        rows.append(out)
        weights = [(out[f"W{l}"], out[f"b{l}"]) for l in range(1, L + 1)]
    by_name = {name: [r[name] for r in rows] for name in (rows[0] if rows else ())}
    return stack_steps(base, metric, strategy, by_name, B), failure


def check_step(step, declaration: Declaration | None = None, golden=None) -> ConformanceReport:
    """Run the step function ``step`` on every declared trajectory and check it; return the report.

    ``declaration`` defaults to everything (every case, base, metric and
    strategy, one step); only its step quantities (``step_indices``,
    ``step_removed``, ``dba_<base>``) apply to a step function.
    """
    if not callable(step):
        raise TypeError(f"step must be a function step(weights, X, y, hyperparams, state), got {type(step).__name__}")
    declaration = step_declaration(declaration)
    golden = load_golden() if golden is None else golden
    results, stopped, inputs = {}, {}, {}
    for name in declaration.cases:
        inputs[name] = with_step_inputs(name, golden[name], declaration.steps)     # the check reads them too
        for base, metric, strategy in declaration.trajectories:
            out, failure = run_step_function(step, inputs[name], base, metric, strategy, declaration.steps,
                                             declaration.step_quantities)
            results.update({f"{name}/{key}": value for key, value in out.items()})
            if failure is not None:
                stopped[(name, base, metric, strategy)] = failure
    report = check_inputs(results, golden, inputs, declaration, stopped)
    report.coverage.source = f"step function {getattr(step, '__qualname__', type(step).__name__)}"
    return report


def assert_step_conforms(step, declaration: Declaration | None = None, golden=None,
                         max_listed: int = 20) -> ConformanceReport:
    """:func:`check_step`, raising ``AssertionError`` with the report's text when it fails; returns the report."""
    report = check_step(step, declaration, golden)
    if not report.passed:
        raise AssertionError("\n" + format_report(report, max_listed))
    return report


def parametrize_with_cases(step, declaration: Declaration | None = None):
    """A ``pytest.mark.parametrize`` of ``(step, check)``, one test per declared case, named by the case.

    ``check(step)`` is :func:`assert_step_conforms` on that case alone::

        @parametrize_with_cases(my_step, Declaration(metrics="mean_variance", strategies="greedy", steps=20))
        def test_my_dba(step, check):
            check(step)
    """
    import pytest

    declaration = step_declaration(declaration)
    checks = [partial(assert_step_conforms, declaration=declaration.replace(cases=[name]))
              for name in declaration.cases]
    return pytest.mark.parametrize("step, check", [(step, check) for check in checks], ids=list(declaration.cases))

"""Exercise 11: Adam in the style of optax, an ``init``/``update`` pair with a NamedTuple state.

The student writes ``adam(learning_rate, b1, b2, eps) -> (init, update)``
with ``state = init(params)`` an ``AdamState(count, m, v)`` and
``updates, state = update(grads, state, params)`` (spec's Adam: moments,
bias correction, ``updates = −η m̂ / (√v̂ + ε)``). A case runs ``init`` and
several ``update`` steps (the ``optimizer_steps`` protocol of
:mod:`~dba_ref.exercises.harness`) and compares every update and every state
with the reference, :func:`dba_ref.optimizers.adam`. Mistakes named: no bias
correction, the step count off by one, ε inside the square root, the sign
of the update, ``g`` for ``g²`` in the second moment, the decay rates
swapped, the state changed in place, the count not advanced.
"""
from __future__ import annotations

import numpy as np

from ..agreement import rounding_tolerance
from ..optimizers.adam import adam as reference_optimizer
from .definitions import Case, Exercise
from .differences import as_float_array, describe_difference, likely_cause, with_cause
from .harness import NamedTupleValue

FIELDS = ("count", "m", "v")


def _moments(hyper, grads):
    """The moments after each step, ``[(m_t, v_t, |m|_t)]``, the last an EMA of ``|g|``: the scale of m's terms."""
    b1, b2 = hyper["b1"], hyper["b2"]
    m = [np.zeros_like(g) for g in grads[0]]
    v, a = [x.copy() for x in m], [x.copy() for x in m]
    out = []
    for g in grads:
        m = [b1 * x + (1 - b1) * y for x, y in zip(m, g)]
        v = [b2 * x + (1 - b2) * y * y for x, y in zip(v, g)]
        a = [b1 * x + (1 - b1) * np.abs(y) for x, y in zip(a, g)]
        out.append((m, v, a))
    return out


def reference_adam_steps(hyper, params, grads) -> dict:
    """What a right ``adam`` gives on ``grads`` (one list of arrays per step), in the form the harness returns:
    ``{"init": state_0, "updates": [...], "states": [...]}``, states as ``(count, m, v)`` tuples."""
    opt = reference_optimizer(hyper["learning_rate"], hyper["b1"], hyper["b2"], hyper["eps"])
    state = opt.init(params)
    out = {"init": (int(state.count), list(state.m), list(state.v)), "updates": [], "states": []}
    for g in grads:
        updates, state = opt.update(g, state, params)
        out["updates"].append(list(updates))
        out["states"].append((int(state.count), list(state.m), list(state.v)))
    return out


def _case(name, rng, shapes, n_steps, hyper=None, scale=1.0, zero=False) -> Case:
    hyper = {"learning_rate": 1e-2, "b1": 0.9, "b2": 0.999, "eps": 1e-8, **(hyper or {})}
    params = [rng.normal(size=s) for s in shapes]
    grads = [[np.zeros(s) if zero else scale * rng.normal(size=s) for s in shapes] for _ in range(n_steps)]
    return Case(f"{name} ({n_steps} steps, parameter shapes {[tuple(s) for s in shapes]})", (hyper, params, grads),
                protocol="optimizer_steps", arg_names=("hyperparameters", "params", "grads"))


def _edges(rng) -> list:
    return [_case("one step (the bias correction matters most at t = 1)", rng, [(3,), (2, 2)], 1),
            _case("zero gradients (v̂ = 0: ε keeps the division finite)", rng, [(4,)], 3, zero=True),
            _case("b1 = 0 (no momentum)", rng, [(2, 3)], 4, {"b1": 0.0}),
            _case("tiny gradients, where ε matters", rng, [(5,)], 3, {"eps": 1e-3}, scale=1e-4),
            _case("fifty steps (the bias correction fades)", rng, [(3,)], 50, {"b2": 0.99}),
            _case("three parameter arrays of different shapes", rng, [(2, 3), (3,), (1, 1)], 3,
                  {"learning_rate": 0.5})]


def _random(rng) -> Case:
    shapes = [tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 3))))
              for _ in range(int(rng.integers(1, 4)))]
    hyper = {"learning_rate": float(10.0 ** rng.uniform(-3, 0)), "b1": float(rng.uniform(0.0, 0.95)),
             "b2": float(rng.uniform(0.9, 0.9999)), "eps": float(10.0 ** rng.uniform(-8, -4))}
    return _case("random", rng, shapes, int(rng.integers(1, 8)), hyper, scale=float(10.0 ** rng.uniform(-2, 1)))


def _state_parts(state, what: str):
    """``((count, m, v), None)`` of a returned state, or ``(None, message)``."""
    if not isinstance(state, NamedTupleValue) or tuple(state.fields[:3]) != FIELDS:
        got = f"a NamedTuple {state.type_name}{state.fields}" if isinstance(state, NamedTupleValue) else \
            type(state).__name__
        return None, (f"{what} must be an AdamState(count, m, v), a NamedTuple with the fields count, m and v in "
                      f"that order; you returned {got}")
    return state.values[:3], None


def _tolerances(hyper, moments, expected):
    """Per step, the rounding tolerances of the update and of m and v (lists of arrays like the parameters),
    from the steps' :func:`_moments`.

    m and v are running sums over t steps of terms of size EMA(|g|) and v
    itself (t + 1 roundings); the update ``η m̂ / (√v̂ + ε)`` depends on them
    with a relative condition of about 1: its scale is ``η·|m|̂/(√v̂ + ε)``, the
    terms' scale of m̂ over the denominator, with ``t + 4`` roundings.
    """
    lr, b1, b2, eps = (hyper[k] for k in ("learning_rate", "b1", "b2", "eps"))
    out = []
    for t, ((_, v, a), u) in enumerate(zip(moments, expected["updates"]), 1):
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        tol_u = [rounding_tolerance(lr * (x / c1) / (np.sqrt(y / c2) + eps) + np.abs(z), t + 4)
                 for x, y, z in zip(a, v, u)]
        out.append((tol_u, [rounding_tolerance(x, t + 1) for x in a], [rounding_tolerance(y, t + 1) for y in v]))
    return out


def _compare_list(got, want, tolerances, name, what) -> str | None:
    if not isinstance(got, (list, tuple)) or len(got) != len(want):
        return (f"{what} must be a list with one array per parameter array ({len(want)}); you returned "
                + (f"{len(got)}" if isinstance(got, (list, tuple)) else type(got).__name__))
    for i, (g, w, tol) in enumerate(zip(got, want, tolerances)):
        problem = describe_difference(g, w, f"{name}[{i}]", tol)
        if problem:
            return problem
    return None


def _grade(got, expected, case) -> str | None:
    hyper, params, grads = case.args
    lr, b1, b2, eps = (hyper[k] for k in ("learning_rate", "b1", "b2", "eps"))
    if not isinstance(got, dict) or not {"init", "updates", "states", "states_at_end"} <= got.keys():
        return "the grader could not follow your optimizer's steps"
    parts, problem = _state_parts(got["init"], "init(params)")
    if problem:
        return problem
    count, m, v = parts
    zeros = [np.zeros_like(p) for p in params]
    if not (isinstance(count, int) and count == 0):
        return f"init(params) must start the count at 0; you returned count = {count!r}"
    problem = _compare_list(m, zeros, [0.0] * len(zeros), "m", "the state's m") or \
        _compare_list(v, zeros, [0.0] * len(zeros), "v", "the state's v")
    if problem:
        return f"init(params): {problem}: both moments start as zeros shaped like the parameters"
    moments = _moments(hyper, grads)
    tolerances = _tolerances(hyper, moments, expected)
    for t, (updates, state, want_u, want_s, (tol_u, tol_m, tol_v)) in enumerate(
            zip(got["updates"], got["states"], expected["updates"], expected["states"], tolerances), 1):
        parts, problem = _state_parts(state, f"the state after step {t}")
        if problem:
            return problem
        count, m, v = parts
        if not (isinstance(count, (int, np.integer)) and int(count) == t):
            return with_cause(f"after step {t} the state's count is {count!r}, expected {t}",
                              "update must return a new state whose count is the old count + 1")
        at = f"step {t}: "
        m_problem = _compare_list(m, want_s[1], tol_m, "m", "m")
        v_problem = _compare_list(v, want_s[2], tol_v, "v", "v")
        if m_problem or v_problem:
            g = grads[t - 1]
            prev_m, prev_v = (moments[t - 2][0], moments[t - 2][1]) if t > 1 else (zeros, zeros)
            if m_problem:
                cause = _list_cause(m, [([b1 * g_ + (1 - b1) * p for g_, p in zip(g, prev_m)],
                                         "the decay rates are swapped: m ← b1·m + (1 − b1)·g")], tol_m)
                return with_cause(at + m_problem, cause)
            cause = _list_cause(v, [([b2 * p + (1 - b2) * g_ for g_, p in zip(g, prev_v)],
                                     "the second moment averages g², not g: v ← b2·v + (1 − b2)·g²"),
                                    ([b2 * g_ * g_ + (1 - b2) * p for g_, p in zip(g, prev_v)],
                                     "the decay rates are swapped: v ← b2·v + (1 − b2)·g²")], tol_v)
            return with_cause(at + v_problem, cause)
        problem = _compare_list(updates, want_u, tol_u, "updates", "updates")
        if problem:
            m_t, v_t = want_s[1], want_s[2]
            with np.errstate(all="ignore"):
                def step(c1, c2, inside=False, sign=-1.0):
                    return [sign * lr * (x / c1) / (np.sqrt(y / c2 + eps) if inside else np.sqrt(y / c2) + eps)
                            for x, y in zip(m_t, v_t)]
                wrong = [(step(1.0, 1.0), "the bias correction is missing: m̂ = m / (1 − b1^t), v̂ = v / (1 − b2^t)"),
                         (step(1 - b1 ** (t - 1), 1 - b2 ** (t - 1)),
                          "the step count is off by one: correct with t = count + 1, the number of updates so far "
                          "including this one (at t = 0 the correction divides by zero)"),
                         (step(1 - b1 ** (t + 1), 1 - b2 ** (t + 1)),
                          "the step count is off by one: at step t the correction is 1 − b^t, with t starting at 1"),
                         (step(1 - b1 ** t, 1 - b2 ** t, inside=True), "ε belongs outside the square root: "
                                                                       "m̂ / (√v̂ + ε)"),
                         (step(1 - b1 ** t, 1 - b2 ** t, sign=1.0),
                          "the sign is flipped: updates are added to the parameters, so updates = −η m̂ / (√v̂ + ε)")]
            return with_cause(at + problem, _list_cause(updates, wrong, tol_u))
    for t, (then, now) in enumerate(zip([got["init"], *got["states"]], got["states_at_end"])):
        if not _same_state(then, now):
            return (f"the state returned by {'init' if t == 0 else f'step {t}'} had changed by the end: your update "
                    "modified an earlier state in place. Build new arrays (m = b1 * m + ...), never m += ...")
    return None


def _list_cause(got, mistakes, tolerances) -> str | None:
    """The explanation of the first mistake whose arrays all match ``got``'s."""
    arrays = [as_float_array(g, "")[0] for g in got]
    if any(a is None for a in arrays):
        return None
    for candidate, explanation in mistakes:
        if all(likely_cause(a, [(c, "")], tol) is not None for a, c, tol in zip(arrays, candidate, tolerances)):
            return explanation
    return None


def _same_state(a, b) -> bool:
    if isinstance(a, NamedTupleValue) and isinstance(b, NamedTupleValue):
        return a.fields == b.fields and _same_state(list(a.values), list(b.values))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    return a == b


def _explain(error, case) -> str | None:
    if error.kind == "TypeError" and "argument" in error.message:
        return ("the grader calls adam(learning_rate=..., b1=..., b2=..., eps=...), then init(params) and "
                "update(grads, state, params): keep the stub's signatures")
    if error.kind == "ZeroDivisionError":
        return "a division by zero in the bias correction: at step t it is 1 − b^t with t = count + 1 >= 1"
    return None


EXERCISE = Exercise(11, "adam", "Adam, optax-style", (("adam", ("learning_rate", "b1", "b2", "eps")),),
                    reference_adam_steps, _edges, _random, _grade, _explain, reads_first="04_training_mnist5k.ipynb",
                    minutes=40, builds_on=(10,), n_random=12)

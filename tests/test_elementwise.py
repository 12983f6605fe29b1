"""Element rules run fused (one compiled pass per parameter array) give the vectorised NumPy update: bit for bit
for the exact rules on float64, to rounding otherwise; the rule of when the fused loop runs."""
import dataclasses

import numpy as np
import pytest

from dba_ref import MLP, backprop
from dba_ref.optimizers import OPTIMIZERS, make_optimizer
from dba_ref.optimizers import elementwise as ew
from dba_ref.optimizers.adam import adam_step
from dba_ref.optimizers.tree import tree_leaves

from helpers import assert_within_rounding, random_batch

#: The optimizers whose element rule is not exact (it calls exp): fused and vectorised agree to rounding only.
NOT_EXACT = {"diffgrad"}
#: Options that switch on every branch of a rule (weight decay, Nesterov, the raw ε, bias correction).
VARIANTS = {"adamp": {"weight_decay": 0.01, "nesterov": True, "eps_placement": "raw"},
            "sgdp": {"weight_decay": 0.01, "nesterov": True}, "adan": {"weight_decay": 0.02, "bias_correction": True},
            "diffgrad": {"eps_placement": "raw"}}


def three_steps(name, options, model, batches, backend):
    """Updates and states of three steps of optimizer ``name``, its batches' signals labelled ``backend``."""
    opt = make_optimizer(name, **options)
    state, out = opt.init(model.params), []
    for signals in batches:
        signals = dataclasses.replace(signals, backend=backend)
        updates, state = opt.update(signals.mean_grads(), state, model.params, signals=signals)
        out.append((tree_leaves(updates), [leaf for leaf in tree_leaves(state) if isinstance(leaf, np.ndarray)]))
    return out


@pytest.fixture
def batches(rng):
    def make(dtype):
        model = MLP([6, 5, 3], seed=3, dtype=dtype)
        model.set_params([(W, rng.normal(scale=0.3, size=b.shape)) for W, b in model.params])
        return model, [backprop(model, *random_batch(rng, model, 12)) for _ in range(3)]
    return make


@pytest.mark.parametrize("name, options", [(name, {}) for name in OPTIMIZERS] + list(VARIANTS.items()),
                         ids=list(OPTIMIZERS) + [f"{name}-variant" for name in VARIANTS])
def test_every_optimizer_fused_gives_the_vectorised_update(name, options, batches, monkeypatch):
    model, signals = batches(np.float64)
    run_fused, calls = ew.run_fused, []
    monkeypatch.setattr(ew, "run_fused", lambda *args: calls.append(args[0]) or run_fused(*args))
    vectorised = three_steps(name, options, model, signals, "numpy")
    assert calls == []
    fused = three_steps(name, options, model, signals, "numba")         # the numba backend: every rule fused
    assert len(calls) >= 3 * len(model.params) * 2                      # every leaf, every step
    for step, (a, b) in enumerate(zip(fused, vectorised), start=1):
        for x, y in zip(a[0] + a[1], b[0] + b[1]):
            assert x.dtype == y.dtype and x.shape == y.shape
            if name in NOT_EXACT:
                # exp rounds differently; a handful of operations per step, carried over ``step`` steps
                assert_within_rounding(x, y, np.abs(y), 10 * step, what=f"{name} step {step}")
            else:
                np.testing.assert_array_equal(x, y, err_msg=f"{name} step {step}")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_fused_on_float32_agrees_to_float32_rounding(name, batches, monkeypatch):
    model, signals = batches(np.float32)
    vectorised = three_steps(name, VARIANTS.get(name, {}), model, signals, "numpy")   # float32: never fused there
    fused = three_steps(name, VARIANTS.get(name, {}), model, signals, "numba")
    for step, (a, b) in enumerate(zip(fused, vectorised), start=1):
        for x, y in zip(a[0] + a[1], b[0] + b[1]):
            assert x.shape == y.shape
            # the fused loop rounds once per output, NumPy after each of a rule's ~10 float32 operations
            assert_within_rounding(x, y, np.abs(y), 10 * step, np.float32, what=f"{name} step {step}")


def test_the_fused_loop_runs_on_the_compiled_backends_only(batches):
    signals = batches(np.float64)[1][0]
    assert not ew.elementwise_for(None).fused and not ew.elementwise_for(signals).fused     # numpy: the reference
    for backend in ("numba", "cuda"):
        assert ew.elementwise_for(dataclasses.replace(signals, backend=backend)).fused


def test_fused_outputs_are_new_arrays_of_the_inputs_shape(rng):
    g, m, v = rng.normal(size=(7, 3)), rng.normal(size=(7, 3)), rng.random((7, 3))
    before = [x.copy() for x in (g, m, v)]
    outs = ew.run_fused(adam_step, (g, m, v), (0.1, 0.9, 0.999, 0.1, 0.001, 1e-8, False))
    assert len(outs) == 3 and all(o.shape == (7, 3) and o.dtype == np.float64 for o in outs)
    assert all(np.array_equal(x, y) for x, y in zip((g, m, v), before))
    assert not any(np.shares_memory(o, x) for o in outs for x in (g, m, v))
    expected = adam_step.fn(g, m, v, 0.1, 0.9, 0.999, 0.1, 0.001, 1e-8, False)
    assert all(np.array_equal(o, e) for o, e in zip(outs, expected))
    # non-contiguous inputs (a transposed view) are read as they are laid out logically
    outs_t = ew.run_fused(adam_step, (g.T, m.T, v.T), (0.1, 0.9, 0.999, 0.1, 0.001, 1e-8, False))
    assert all(np.array_equal(o, e.T) for o, e in zip(outs_t, expected))

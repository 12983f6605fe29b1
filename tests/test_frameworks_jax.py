"""The JAX version (jax.vmap(jax.grad(...)), a jitted greedy search) against the NumPy reference, float64.

Optional: skipped when ``jax`` is not installed (CI does not install it). Tolerances as for PyTorch:
losses, gradients, Grams and statistics to rounding at their scale (dba_ref.agreement), selections
equal wherever the reference's decision margins exceed 1e-9 (spec §5), weights after one and after
20 DBA(SGD) / DBA(Adam) steps within the rounding the steps added up.
"""

import numpy as np
import pytest
from helpers import (assert_agrees_with_reference, assert_within_rounding, random_batch, random_mlp,
                     training_step_rounding)

pytest.importorskip("jax", reason="JAX is not installed (optional: pip install jax)")

from dba_ref import MLP, adam, apply_updates, backprop, dba, gram, per_sample_grads, select, sgd  # noqa: E402
from dba_ref.agreement import array_scale, explicit_gram_ops, gram_scale, network_ops  # noqa: E402
from dba_ref.frameworks import jax_dba as jd  # noqa: E402
from dba_ref.metrics import METRIC_NAMES  # noqa: E402
from dba_ref.model import ACTIVATIONS  # noqa: E402
from dba_ref.search import STRATEGIES  # noqa: E402

BASES = {"sgd": (lambda: sgd(0.1), lambda: jd.sgd(0.1)), "adam": (lambda: adam(1e-2), lambda: jd.adam(1e-2))}


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_per_sample_losses_gradients_and_grams_match(rng, n_layers, activation):
    for _ in range(3):
        model = random_mlp(rng, n_layers, activation)
        X, y = random_batch(rng, model, int(rng.choice([1, 5, 11])))
        n_ops = network_ops(model.sizes)
        losses = model.losses(X, y)
        assert_within_rounding(np.asarray(jd.per_sample_losses(model.params, X, y, activation)), losses,
                               array_scale(losses), n_ops, what="losses")
        signals = backprop(model, X, y)
        for l, ((gW, gb), (rW, rb), (A, D)) in enumerate(zip(jd.per_sample_grads(model.params, X, y, activation),
                                                             per_sample_grads(model, X, y), signals.layers), 1):
            assert gW.shape == rW.shape and gb.shape == rb.shape
            assert_within_rounding(np.asarray(gW), rW, array_scale(rW), n_ops, what=f"layer {l} weight gradients")
            assert_within_rounding(np.asarray(gb), rb, array_scale(rb), n_ops, what=f"layer {l} bias gradients")
            K = gram(A, D)
            assert_within_rounding(np.asarray(jd.gram(gW, gb)), K, gram_scale(A, D),
                                   explicit_gram_ops(model.sizes, l), what=f"layer {l} Gram")


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_selections_and_removal_orders_match(rng, metric, strategy):
    statuses = []
    for trial in range(6):
        model = random_mlp(rng, int(rng.integers(1, 4)), str(rng.choice(sorted(ACTIVATIONS))))
        X, y = random_batch(rng, model, int(rng.integers(4, 11)))
        min_size = [2, 3, 0.5, 1][trial % 4]
        for l, ((gW, gb), (A, D)) in enumerate(zip(jd.per_sample_grads(model.params, X, y, model.activation),
                                                   backprop(model, X, y).layers), 1):
            K = gram(A, D)
            verdict = assert_agrees_with_reference(select(K, metric, strategy, min_size), K,
                                                   jd.select(jd.gram(gW, gb), metric, strategy, min_size),
                                                   explicit_gram_ops(model.sizes, l))
            assert verdict.status != "differ", f"{model.sizes}, min_size={min_size}: {verdict.detail}"
            statuses.append(verdict.status)
    assert statuses.count("agree") >= 0.6 * len(statuses), statuses


def run_dba(base, metric, strategy, min_size, batches, activation="tanh"):
    """The reference and the JAX version on the same batches; checks every step."""
    make_ref, make_jax = BASES[base]
    model = MLP([7, 9, 5, 3], activation=activation, seed=11)
    params, ref_opt, jax_opt = model.params, dba(make_ref(), metric, strategy, min_size), make_jax()
    ref_state, jax_state = ref_opt.init(model.params), jax_opt.init(params)
    rounding = [0.0] * 2 * model.n_layers
    for step, (X, y) in enumerate(batches, 1):
        signals = backprop(model, X, y)
        updates, ref_state = ref_opt.update(None, ref_state, model.params, signals=signals)
        added = training_step_rounding(model, updates, signals, step, [s.selection.indices for s in ref_state.last])
        rounding = [r + a for r, a in zip(rounding, added)]
        model.set_params(apply_updates(model.params, updates))
        params, jax_state, sels = jd.dba_step(params, jax_state, X, y, activation, jax_opt, metric, strategy, min_size)
        for l, (layer, (A, D), sel) in enumerate(zip(ref_state.last, signals.layers, sels), 1):
            verdict = assert_agrees_with_reference(layer.selection, gram(A, D), sel,
                                                   explicit_gram_ops(model.sizes, l))
            assert verdict.status == "agree", f"step {step}, layer {l}: {verdict.status} ({verdict.detail})"
        theirs = [np.asarray(p) for pair in params for p in pair]
        for i, (p, t, r) in enumerate(zip([p for pair in model.params for p in pair], theirs, rounding)):
            assert_within_rounding(t, p, r, 1, what=f"step {step}, parameters {i}")
    return ref_state


@pytest.mark.parametrize("base", list(BASES))
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_one_dba_step_matches(rng, metric, strategy, base):
    run_dba(base, metric, strategy, 2, [random_batch(rng, MLP([7, 9, 5, 3]), 10)])


@pytest.mark.parametrize("base", list(BASES))
def test_twenty_training_steps_on_the_same_batches_match(base):
    rng = np.random.default_rng(2024)
    batches = [random_batch(rng, MLP([7, 9, 5, 3]), 10 if step < 19 else 3) for step in range(20)]
    state = run_dba(base, "mean_variance", "greedy", 4, batches)
    assert [s.size for s in state.last] == [3, 3, 3]          # the last batch, smaller than min_size, used whole

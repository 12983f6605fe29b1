"""The JAX version (jax.vmap(jax.grad(...)), a jitted greedy search) against the NumPy reference, float64.

Optional: skipped when ``jax`` is not installed (CI does not install it). Tolerances as for PyTorch:
gradients and Grams <= 1e-10 relative, selections equal wherever the reference's decision margins
exceed 1e-9 (spec §5), weights after one and after 20 DBA(SGD) / DBA(Adam) steps <= 1e-9.
"""
import doctest

import numpy as np
import pytest
from conftest import random_batch

pytest.importorskip("jax", reason="JAX is not installed (optional: pip install jax)")

from dba_ref import MLP, adam, apply_updates, backprop, dba, gram, per_sample_grads, select, sgd  # noqa: E402
from dba_ref.conformance import check_against, max_rel_error  # noqa: E402
from dba_ref.frameworks import jax_dba as jd  # noqa: E402
from dba_ref.metrics import METRIC_NAMES  # noqa: E402
from dba_ref.model import ACTIVATIONS  # noqa: E402
from dba_ref.search import STRATEGIES  # noqa: E402

GRAD_TOL, SELECTION_TOL, WEIGHT_TOL, AMBIGUOUS = 1e-10, 1e-9, 1e-9, 1e-9
BASES = {"sgd": (lambda: sgd(0.1), lambda: jd.sgd(0.1)), "adam": (lambda: adam(1e-2), lambda: jd.adam(1e-2))}


def random_model(rng, n_layers, activation):
    """An MLP with odd widths and non-zero biases (as in test_frameworks_torch.py)."""
    sizes = [int(s) for s in rng.choice([1, 3, 5, 7, 9], size=n_layers)] + [int(rng.choice([3, 5]))]
    model = MLP(sizes, activation=activation, seed=int(rng.integers(1 << 31)))
    model.set_params([(W, rng.normal(scale=0.3, size=b.shape)) for W, b in model.params])
    return model


def compare(ref_sel, K, jax_sel):
    result = check_against(ref_sel, K, jax_sel, threshold=AMBIGUOUS)
    assert not result.values_problem, result.values_problem
    for what in ("value_error", "values_error", "full_stats_error"):
        err = getattr(result, what)
        assert err is None or err <= SELECTION_TOL, f"{what}: {err:.3g}"
    return result.verdict


def test_docstring_example_runs():
    assert doctest.testmod(jd).failed == 0


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_per_sample_losses_gradients_and_grams_match(rng, n_layers, activation):
    for _ in range(3):
        model = random_model(rng, n_layers, activation)
        X, y = random_batch(rng, model, int(rng.choice([1, 5, 11])))
        assert max_rel_error(jd.per_sample_losses(model.params, X, y, activation), model.losses(X, y)) <= GRAD_TOL
        signals = backprop(model, X, y)
        for (gW, gb), (rW, rb), (A, D) in zip(jd.per_sample_grads(model.params, X, y, activation),
                                              per_sample_grads(model, X, y), signals.layers):
            assert gW.shape == rW.shape and gb.shape == rb.shape
            assert max_rel_error(gW, rW) <= GRAD_TOL and max_rel_error(gb, rb) <= GRAD_TOL
            assert max_rel_error(jd.gram(gW, gb), gram(A, D)) <= GRAD_TOL


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_selections_and_removal_orders_match(rng, metric, strategy):
    statuses = []
    for trial in range(6):
        model = random_model(rng, int(rng.integers(1, 4)), str(rng.choice(sorted(ACTIVATIONS))))
        X, y = random_batch(rng, model, int(rng.integers(4, 11)))
        min_size = [2, 3, 0.5, 1][trial % 4]
        for (gW, gb), (A, D) in zip(jd.per_sample_grads(model.params, X, y, model.activation),
                                    backprop(model, X, y).layers):
            K = gram(A, D)
            verdict = compare(select(K, metric, strategy, min_size), K,
                              jd.select(jd.gram(gW, gb), metric, strategy, min_size))
            assert verdict.status != "differ", f"{model.sizes}, min_size={min_size}: {verdict.detail}"
            statuses.append(verdict.status)
    assert statuses.count("agree") >= 0.6 * len(statuses), statuses


def run_dba(base, metric, strategy, min_size, batches, activation="tanh"):
    """The reference and the JAX version on the same batches; checks every step."""
    make_ref, make_jax = BASES[base]
    model = MLP([7, 9, 5, 3], activation=activation, seed=11)
    params, ref_opt, jax_opt = model.params, dba(make_ref(), metric, strategy, min_size), make_jax()
    ref_state, jax_state = ref_opt.init(model.params), jax_opt.init(params)
    for step, (X, y) in enumerate(batches, 1):
        signals = backprop(model, X, y)
        updates, ref_state = ref_opt.update(signals, ref_state, model.params)
        model.set_params(apply_updates(model.params, updates))
        params, jax_state, sels = jd.dba_step(params, jax_state, X, y, activation, jax_opt, metric, strategy, min_size)
        for l, (layer, (A, D), sel) in enumerate(zip(ref_state.last, signals.layers, sels), 1):
            verdict = compare(layer.selection, gram(A, D), sel)
            assert verdict.status == "agree", f"step {step}, layer {l}: {verdict.status} ({verdict.detail})"
        for (W, b), (jW, jb) in zip(model.params, params):
            assert max_rel_error(jW, W) <= WEIGHT_TOL and max_rel_error(jb, b) <= WEIGHT_TOL, f"step {step}"
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

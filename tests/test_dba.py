"""The DBA wrapper (spec §6, §7)."""
import numpy as np
import pytest
from conftest import array_scale, assert_within_rounding, mean_grad_scale, network_ops, random_batch

from dba_ref import MLP, adam, apply_updates, backprop, dba, mean_grads, momentum, nesterov, per_sample_grads, sgd
from dba_ref.backprop import flatten_layer_grads

BASES = {"sgd": lambda: sgd(0.1), "momentum": lambda: momentum(0.05, 0.9), "nesterov": lambda: nesterov(0.05, 0.8),
         "adam": lambda: adam(1e-2)}


@pytest.mark.parametrize("base", list(BASES))
def test_strategy_all_reproduces_the_base_optimizer_bit_for_bit(rng, base):
    plain, wrapped = MLP([9, 12, 7, 4], seed=5), MLP([9, 12, 7, 4], seed=5)
    opt_plain, opt_dba = BASES[base](), dba(BASES[base](), strategy="all")
    s_plain, s_dba = opt_plain.init(plain.params), opt_dba.init(wrapped.params)
    for step in range(6):
        X, y = random_batch(rng, plain, 10 + step)
        u_plain, s_plain = opt_plain.update(mean_grads(backprop(plain, X, y)), s_plain, plain.params)
        u_dba, s_dba = opt_dba.update(None, s_dba, wrapped.params, signals=backprop(wrapped, X, y))
        plain.set_params(apply_updates(plain.params, u_plain))
        wrapped.set_params(apply_updates(wrapped.params, u_dba))
        for a, b in zip(plain.weights + plain.biases, wrapped.weights + wrapped.biases):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("metric", ["variance", "normalized_variance", "mean_variance"])
@pytest.mark.parametrize("strategy", ["greedy", "prefix"])
def test_each_layer_is_updated_with_the_mean_over_its_own_selection(rng, metric, strategy):
    model = MLP([6, 10, 5, 3], seed=7)
    X, y = random_batch(rng, model, 24)
    opt = dba(sgd(1.0), metric=metric, strategy=strategy, min_size=3)
    updates, state = opt.update(None, opt.init(model.params), model.params, signals=backprop(model, X, y))
    explicit = per_sample_grads(model, X, y)
    sizes = []
    for (uW, ub), (gW, gb), step, (A, D) in zip(updates, explicit, state.last, backprop(model, X, y).layers):
        S = step.selection.indices
        k = len(S)
        sW, sb = mean_grad_scale(A, D, S)                   # k terms summed in two orders, then divided by k
        assert_within_rounding(uW, -gW[S].mean(axis=0), sW, k + 1, what="weight update")
        assert_within_rounding(ub, -gb[S].mean(axis=0), sb, k + 1, what="bias update")
        mean = flatten_layer_grads(gW[S], gb[S]).mean(axis=0)
        # a norm of P entries, each off by the above: relative to the norm of the entries' scales, k + 1 + P operations
        norm_scale = np.sqrt(np.sum(sW ** 2) + np.sum(sb ** 2))
        assert_within_rounding(step.grad_norm, np.linalg.norm(mean), norm_scale, k + 1 + mean.size, what="‖ḡ_S‖")
        assert_within_rounding(step.update_norm, step.grad_norm, step.grad_norm, mean.size,    # SGD, learning rate 1
                               what="update norm")
        assert step.value <= step.full_value                # greedy only accepts lower values
        sizes.append(step.size)
    assert all(3 <= s <= 24 for s in sizes)


def test_batch_smaller_than_min_size_is_used_whole(rng):
    model = MLP([5, 4, 3], seed=0)
    X, y = random_batch(rng, model, 3)
    opt = dba(sgd(0.1), min_size=8)
    updates, state = opt.update(None, opt.init(model.params), model.params, signals=backprop(model, X, y))
    assert [s.size for s in state.last] == [3, 3]
    for (uW, ub), (gW, gb) in zip(updates, mean_grads(backprop(model, X, y))):
        np.testing.assert_array_equal(uW, -0.1 * gW)



def test_a_batch_used_whole_is_not_refused_for_the_exhaustive_limit(rng):
    """A batch below min_size needs no search, so exhaustive's limit on B does not apply to it."""
    model = MLP([5, 4, 3], seed=0)
    X, y = random_batch(rng, model, 25)
    opt = dba(sgd(0.1), strategy="exhaustive", min_size=30)
    _, state = opt.update(None, opt.init(model.params), model.params, signals=backprop(model, X, y))
    assert [s.size for s in state.last] == [25, 25]
    with pytest.raises(ValueError, match="allowed only for B <= 20"):
        dba(sgd(0.1), strategy="exhaustive", min_size=2).update(None, state, model.params, signals=backprop(model, X, y))

def test_fractional_min_size_is_resolved_per_batch(rng):
    model = MLP([5, 4, 3], seed=0)
    X, y = random_batch(rng, model, 20)
    opt = dba(sgd(0.1), metric="variance", min_size=0.25)
    _, state = opt.update(None, opt.init(model.params), model.params, signals=backprop(model, X, y))
    assert [s.size for s in state.last] == [5, 5]     # variance falls with every removal, down to min_size


def test_float32_dba_step_stays_close_to_float64(rng):
    m64, m32 = MLP([8, 16, 4], seed=3), MLP([8, 16, 4], seed=3, dtype=np.float32)
    X, y = random_batch(rng, m64, 32)
    opt = dba(sgd(0.5), metric="variance", min_size=8)
    u64, s64 = opt.update(None, opt.init(m64.params), m64.params, signals=backprop(m64, X, y))
    u32, s32 = opt.update(None, opt.init(m32.params), m32.params, signals=backprop(m32, X, y))
    assert [s.selection.indices.tolist() for s in s32.last] == [s.selection.indices.tolist() for s in s64.last]
    for (a64, b64), (a32, b32) in zip(u64, u32):
        assert a32.dtype == np.float32
        # X rounded to float32, the network's signals, a mean over the batch: float32 rounding
        assert_within_rounding(a32, a64, array_scale(a64), network_ops(m64.sizes) + 1 + 32, np.float32)


def test_dba_validates_its_arguments():
    with pytest.raises(TypeError, match="base must be an Optimizer"):
        dba("sgd")
    with pytest.raises(ValueError, match="unknown metric"):
        dba(sgd(), metric="var")
    with pytest.raises(ValueError, match="unknown strategy"):
        dba(sgd(), strategy="random")
    with pytest.raises(ValueError, match="min_size must be >= 1"):
        dba(sgd(), min_size=0)
    with pytest.raises(ValueError, match="tol"):
        dba(sgd(), tol=-0.1)
    with pytest.raises(ValueError, match="which already wraps"):
        dba(dba(sgd()))

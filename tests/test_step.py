"""``dba_step``: one DBA step on one batch, every intermediate returned (issue 11, item 7).

- it is the ``dba`` optimizer's step, bit for bit (one step and chained steps, SGD and Adam), and it
  leaves the model and the batch alone;
- its ``grads`` are the means of the per-sample gradients over each selection, its ``params`` are
  ``θ + u`` and, for SGD, ``θ − η ḡ`` exactly;
- the README's two "Use" examples (below, verbatim) run: the NumPy one, and the PyTorch cross-check,
  whose hand-written torch step must agree with the reference to rounding.
"""
from pathlib import Path

import numpy as np
import pytest
from helpers import random_batch

from dba_ref import (MLP, DBAStep, adam, apply_updates, backprop, batch_grads, dba, dba_step, per_sample_grads,
                     select, sgd, layer_grams)
from dba_ref.optimizers import DBAState


@pytest.fixture
def model():
    net = MLP([5, 7, 4, 3], activation="tanh", seed=3)
    rng = np.random.default_rng(7)
    net.set_params([(W, rng.normal(scale=0.3, size=b.shape)) for W, b in net.params])
    return net


@pytest.mark.parametrize("make_base", [lambda: sgd(0.1), lambda: adam(1e-2)], ids=["sgd", "adam"])
def test_chained_steps_are_the_dba_optimizers_steps(rng, model, make_base):
    batches = [random_batch(rng, model, 24) for _ in range(3)]
    opt = dba(make_base(), metric="normalized_variance", strategy="greedy", min_size=3, tol=0.01)
    params, state = model.params, opt.init(model.params)
    current, step_state = model, None
    for X, y in batches:
        reference = MLP.from_arrays([a for pair in params for a in pair], activation="tanh")
        updates, state = opt.update(None, state, params, signals=backprop(reference, X, y))
        params = apply_updates(params, updates)
        step = dba_step(current, X, y, make_base(), metric="normalized_variance", strategy="greedy", min_size=3,
                        tol=0.01, state=step_state)
        for (W, b), (W_ref, b_ref) in zip(step.params, params):
            assert W.tobytes() == W_ref.tobytes() and b.tobytes() == b_ref.tobytes()
        for sel, last in zip(step.selections, state.last):
            np.testing.assert_array_equal(sel.indices, last.selection.indices)
            np.testing.assert_array_equal(sel.trace.removed, last.selection.trace.removed)
        current, step_state = step.model, step.state


def test_model_and_batch_are_left_alone(rng, model):
    X, y = random_batch(rng, model, 16)
    before = [a.copy() for a in model.to_arrays()] + [X.copy(), y.copy()]
    step = dba_step(model, X, y, adam(0.1))
    after = model.to_arrays() + [X, y]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, after))
    assert not any(np.shares_memory(W, W_new) for W, W_new in zip(model.weights, step.model.weights))
    assert not all(np.array_equal(W, W_new) for W, W_new in zip(model.weights, step.model.weights))


def test_what_the_step_returns(rng, model):
    X, y = random_batch(rng, model, 20)
    step = dba_step(model, X, y, sgd(0.5), metric="mean_variance", strategy="prefix", min_size=4)
    assert isinstance(step, DBAStep) and isinstance(step.state, DBAState)
    assert step.loss == float(model.losses(X, y).mean())
    for l, (sel, (gW, gb), (uW, ub), (W, b), (W_new, b_new)) in enumerate(
            zip(step.selections, step.grads, step.updates, model.params, step.params)):
        K = layer_grams(model, X, y)[l]
        np.testing.assert_array_equal(sel.indices, select(K, "mean_variance", "prefix", 4).indices)
        assert sel.size >= 4
        # ḡ_l is the mean of the explicit per-sample gradients over S_l (another order of sums: rounding)
        pW, pb = per_sample_grads(model, X, y)[l]
        eps = np.finfo(np.float64).eps
        for g, per_sample in ((gW, pW), (gb, pb)):
            mean = per_sample[sel.indices].mean(axis=0)
            scale = np.abs(per_sample[sel.indices]).mean(axis=0)           # the size of the terms summed
            assert np.all(np.abs(g - mean) <= sel.size * eps * scale)
        # SGD: u = −η ḡ and θ' = θ + u = θ − η ḡ, exactly
        assert uW.tobytes() == (-0.5 * gW).tobytes() and ub.tobytes() == (-0.5 * gb).tobytes()
        assert W_new.tobytes() == (W - 0.5 * gW).tobytes() and b_new.tobytes() == (b - 0.5 * gb).tobytes()


def test_strategy_all_and_small_batches_use_the_whole_batch(rng, model):
    X, y = random_batch(rng, model, 6)
    full = batch_grads(model, X, y)
    for kwargs in ({"strategy": "all"}, {"min_size": 10}):        # a batch smaller than min_size is used whole
        step = dba_step(model, X, y, sgd(0.1), **kwargs)
        assert [sel.size for sel in step.selections] == [6, 6, 6]
        for (gW, gb), (fW, fb) in zip(step.grads, full):
            assert gW.tobytes() == fW.tobytes() and gb.tobytes() == fb.tobytes()


def test_float32_model_gives_float32_results(rng):
    model = MLP([4, 6, 3], seed=0, dtype=np.float32)
    X, y = random_batch(rng, model, 12)
    step = dba_step(model, X, y, sgd(0.1))
    assert {a.dtype for a in step.model.to_arrays()} == {np.dtype(np.float32)}
    assert {g.dtype for pair in step.grads for g in pair} == {np.dtype(np.float32)}


@pytest.mark.parametrize("kwargs, error, words", [
    ({"model": [np.ones((3, 2))]}, TypeError, "model must be a dba_ref.MLP"),
    ({"base": "sgd"}, TypeError, "base must be an Optimizer"),
    ({"base": dba(sgd(0.1))}, ValueError, "cannot wrap"),
    ({"metric": "varience"}, ValueError, "unknown metric 'varience'"),
    ({"strategy": "best"}, ValueError, "unknown strategy 'best'"),
    ({"min_size": 0}, ValueError, "min_size must be >= 1"),
    ({"tol": 1.0}, ValueError, "tol must lie in [0, 1)"),
    ({"state": ()}, TypeError, "state must be the .state of a previous DBAStep"),
    ({"X": np.ones((4, 3))}, ValueError, "X has 3 features per sample but the model expects 4"),
    ({"y": np.array([0, 1, 2, 5])}, ValueError, "label 5 outside [0, 3)"),
])
def test_bad_input(kwargs, error, words):
    model = MLP([4, 5, 3], seed=0)
    before = model.to_arrays()
    args = {"model": model, "X": np.ones((4, 4)), "y": np.array([0, 1, 2, 0]), "base": sgd(0.1), **kwargs}
    with pytest.raises(error) as info:
        dba_step(**args)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, model.to_arrays()))


# --------------------------------------------------------------------------
# The README's "Use" section: every line runs
# --------------------------------------------------------------------------
README_NUMPY_EXAMPLE = '''\
import numpy as np
from dba_ref import MLP, dba, dba_step, layer_grams, select, sgd
from dba_ref.data import load_dataset, make_split
from dba_ref.training import train

split = make_split(load_dataset("mnist5k"), per_class=60, seed=0)       # 600 digits, sorted by class:
batch = np.random.default_rng(0).permutation(len(split.y_train))[:64]  # take a shuffled batch
X, y = split.X_train[batch], split.y_train[batch]
model = MLP([784, 256, 10], activation="relu", seed=0)

# One layer's Gram matrix and the subset DBA would keep, step by step
K = layer_grams(model, X, y)[0]                                         # (64, 64)
sel = select(K, metric="mean_variance", strategy="greedy", min_size=2)
print(sel.indices, sel.trace.removed, sel.trace.values)

# One DBA step: each layer's subset, the mean gradient over it, the new parameters (model is not changed)
step = dba_step(model, X, y, sgd(0.1), metric="mean_variance")
print([s.size for s in step.selections], step.loss, step.params[0][0].shape)

# Training: DBA wraps any optimizer of the package
history = train(model, dba(sgd(0.1), metric="mean_variance"), split.X_train, split.y_train,
                split.X_test, split.y_test, epochs=20, batch_size=64)
print(history.final["test_acc"], history.steps["selected"][0][:10])
'''

README_TORCH_EXAMPLE = '''\
import numpy as np
import torch
from torch import nn
from dba_ref import MLP, dba_step, sgd
from dba_ref.data import load_dataset, make_split

split = make_split(load_dataset("mnist5k"), per_class=60, seed=0)       # 600 digits, sorted by class:
batch = np.random.default_rng(0).permutation(len(split.y_train))[:64]  # take a shuffled batch
X, y = split.X_train[batch], split.y_train[batch]

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).double()   # your model
step = dba_step(MLP.from_torch(net), X, y, sgd(0.1))     # the reference DBA(SGD) step; net is not changed
for l, sel in enumerate(step.selections, 1):
    print(f"layer {l} keeps {sel.size} of 64 (mean_variance {sel.trace.full_value:.3f} -> {sel.value:.3f}),",
          f"greedy removed {sel.trace.removed[:5]} first")

# Your DBA step goes here. A stand-in: each layer steps along the mean gradient over the subset it keeps
Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
grads = [torch.autograd.grad(nn.functional.cross_entropy(net(Xt[sel.indices]), yt[sel.indices]),
                             [layer.weight, layer.bias]) for layer, sel in zip(net[::2], step.selections)]
with torch.no_grad():
    for layer, (gW, gb) in zip(net[::2], grads):
        layer.weight -= 0.1 * gW
        layer.bias -= 0.1 * gb
err = max(np.abs(mine - ref).max() for mine, ref in zip(MLP.from_torch(net).to_arrays(), step.model.to_arrays()))
print(f"largest difference from the reference: {err:.1e}")
'''


def run_example(code):
    namespace = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def test_readme_numpy_example_runs(capsys):
    ns = run_example(README_NUMPY_EXAMPLE)
    assert np.bincount(ns["y"], minlength=10).max() < 20             # a shuffled batch, not the class-sorted head
    assert [s.size for s in ns["step"].selections][0] == ns["sel"].size
    assert ns["history"].final["test_acc"] > 0.5
    assert capsys.readouterr().out.count("\n") >= 3


@pytest.mark.torch
def test_readme_torch_example_runs(capsys):
    pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")
    ns = run_example(README_TORCH_EXAMPLE)
    step = ns["step"]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" keeps ")[0] for line in lines[:2]] == ["layer 1", "layer 2"]
    assert all(2 <= sel.size < 64 for sel in step.selections)
    # The torch step and the reference sum the same terms in other orders: they agree to rounding, i.e. to
    # B roundings of the size of the parameters and of the update.
    scale = max(np.abs(a).max() for pair in step.params + step.updates for a in pair)
    assert ns["err"] <= len(ns["y"]) * np.finfo(np.float64).eps * scale
    assert lines[-1] == f"largest difference from the reference: {ns['err']:.1e}"


def test_readme_holds_the_examples():
    """The README's two "Use" examples are the ones run above, character for character."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert README_NUMPY_EXAMPLE in text and README_TORCH_EXAMPLE in text

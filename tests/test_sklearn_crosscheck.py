"""Our MLP trained with SGD, momentum, Nesterov and Adam against scikit-learn's MLPClassifier (issue 4).

Same data, same initial weights, the same batches in the same order, no
regularisation (``alpha=0``): the per-step losses and the final weights agree
to rounding (tests/helpers.py): the weights within the rounding the steps added
up (``training_step_rounding``), a loss within its own rounding plus that of the
weights it is computed at (first order: ``Σ_p |∂L/∂θ_p| · tolerance(θ_p)``).
The conventions bridged (docs/verification.md explains each):

- weights: sklearn's ``coefs_[l]`` is ``(in, out)``, our ``W_l`` is ``(out, in)``;
- starting weights: sklearn cannot be given them, so a first ``partial_fit`` call
  allocates its state, then ``coefs_``/``intercepts_`` are overwritten and its
  optimizer is dropped (it holds references to the old arrays) so that the next
  call builds a fresh one over the injected weights;
- loss: sklearn's ``loss_curve_`` gets, per ``partial_fit`` call, the mean
  log-loss of the batch before the update with probabilities clipped to
  ``[eps, 1 − eps]``; ours is the mean of the per-sample cross-entropies (no
  clipping). Equal while no probability is below 2.2e-16;
- SGD: sklearn defaults to ``momentum=0.9, nesterovs_momentum=True``; plain SGD
  needs ``momentum=0``. Its velocity ``v ← μv − ηg`` is ``−η`` times ours
  (``v ← μv + g``) for a constant η, so the steps are equal;
- Adam: sklearn adds ε to ``√v`` *before* the bias correction
  (``Δ = −η √(1−β2^t)/(1−β1^t) · m/(√v + ε)``), i.e. our ε divided by
  ``√(1−β2^t)``, a step-dependent ε. ε = 1e-30 in both removes the difference
  (it is then negligible next to √v, and both give 0 where g has always been 0);
- three or more classes (with two, sklearn uses one logistic output unit).
"""
import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed")
from sklearn.neural_network import MLPClassifier  # noqa: E402

from helpers import assert_within, assert_within_rounding, replay_training  # noqa: E402
from dba_ref import MLP, adam, momentum, nesterov, sgd  # noqa: E402
from dba_ref.agreement import max_rel_error, rounding_tolerance  # noqa: E402
from dba_ref.training import train  # noqa: E402

SK_ACTIVATION = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "identity": "identity"}
LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 0.01}


def ours(solver, eps):
    return {"sgd": lambda: sgd(LR["sgd"]), "momentum": lambda: momentum(LR["momentum"], 0.9),
            "nesterov": lambda: nesterov(LR["nesterov"], 0.9),
            "adam": lambda: adam(LR["adam"], 0.9, 0.999, eps)}[solver]()


def sklearn_twin(model: MLP, solver: str, batch_size: int, X, y, eps: float) -> MLPClassifier:
    """An MLPClassifier configured like ``solver`` and holding ``model``'s weights, ready for partial_fit."""
    clf = MLPClassifier(hidden_layer_sizes=model.sizes[1:-1], activation=SK_ACTIVATION[model.activation], alpha=0.0,
                        solver="adam" if solver == "adam" else "sgd", batch_size=batch_size, shuffle=False,
                        learning_rate="constant", learning_rate_init=LR[solver], momentum=0.9 if solver != "sgd" else 0.0,
                        nesterovs_momentum=solver == "nesterov", beta_1=0.9, beta_2=0.999, epsilon=eps, random_state=0)
    clf.partial_fit(X[:batch_size], y[:batch_size], classes=np.arange(model.n_classes))    # allocates its state
    clf.coefs_ = [W.T.copy() for W in model.weights]
    clf.intercepts_ = [b.copy() for b in model.biases]
    del clf._optimizer                  # rebuilt over the injected arrays by the next partial_fit
    clf.loss_curve_ = []
    return clf


def run_both(activation, solver, eps, hidden=(9, 7), n=60, batch_size=12, epochs=3):
    """Train ours and sklearn's on the same batches; returns (model, clf, our losses, initial weights, replay)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, 6))
    y = np.arange(n) % 4
    rng.shuffle(y)
    model = MLP([6, *hidden, 4], activation=activation, seed=3)
    model.set_params([(W, rng.normal(scale=0.1, size=b.shape)) for W, b in model.params])
    clf = sklearn_twin(model, solver, batch_size, X, y, eps)
    initial = [W.copy() for W in model.weights]
    replay = replay_training(model.copy(), ours(solver, eps), X, y, batch_size, epochs)
    history = train(model, ours(solver, eps), X, y, epochs=epochs, batch_size=batch_size, shuffle=False,
                    progress=False)
    for _ in range(epochs):
        for start in range(0, n, batch_size):
            clf.partial_fit(X[start:start + batch_size], y[start:start + batch_size])
    return model, clf, np.array(history.steps["loss"]), initial, replay


@pytest.mark.parametrize("solver", ["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("activation", sorted(SK_ACTIVATION))
def test_losses_and_weights_equal_sklearn_over_fifteen_steps(activation, solver):
    model, clf, losses, initial, (replayed, rounding, loss_tolerance) = run_both(activation, solver, eps=1e-30)
    for a, b in zip(model.weights + model.biases, replayed.weights + replayed.biases):
        np.testing.assert_array_equal(a, b)                            # the replay is train()'s run
    assert len(losses) == len(clf.loss_curve_) == 15
    assert_within(losses, clf.loss_curve_, loss_tolerance, "batch losses", "their rounding and their weights'")
    assert max_rel_error(model.weights[0], initial[0]) > 1e-3          # the weights did move
    for l, (W, b, cW, cb) in enumerate(zip(model.weights, model.biases, clf.coefs_, clf.intercepts_)):
        assert_within_rounding(W, cW.T, rounding[2 * l], 1, what=f"layer {l} weights")
        assert_within_rounding(b, cb, rounding[2 * l + 1], 1, what=f"layer {l} biases")


def test_adam_epsilon_conventions_differ_unless_bridged():
    """With the default ε = 1e-8 the two Adams differ beyond rounding: that is why the test above uses 1e-30.

    And by little (< 1e-4 of the weights): a step-dependent ε of 1e-8 moves an update by about ε/√v̂.
    """
    model, clf, _, _, (_, rounding, _) = run_both("tanh", "adam", eps=1e-8)
    beyond = max(np.max(np.abs(W - cW.T) / rounding_tolerance(r, 1))
                 for W, cW, r in zip(model.weights, clf.coefs_, rounding[0::2]))
    assert beyond > 1, "the ε conventions should differ by more than rounding"
    assert max(max_rel_error(W, cW.T) for W, cW in zip(model.weights, clf.coefs_)) < 1e-4

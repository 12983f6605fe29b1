"""DBAClassifier: scikit-learn's estimator checks, Pipeline and GridSearchCV, and agreement with train()."""
import pickle

import numpy as np
import pytest
from helpers import assert_within_rounding, softmax_sum_rounding
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from dba_ref import MLP, dba, sgd
from dba_ref.data import load_dataset, make_split
from dba_ref.estimator import DBAClassifier
from dba_ref.training import train


@pytest.fixture(scope="module")
def digits():
    return make_split(load_dataset("digits"), per_class=15, seed=0)


def test_passes_every_scikit_learn_estimator_check(monkeypatch):
    # check_array_api_input runs only with SCIPY_ARRAY_API=1 (scikit-learn skips it otherwise); it is read when the
    # check runs, so setting it here runs it too (with NumPy inputs, as for every estimator without array API support).
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    results = check_estimator(DBAClassifier(), on_fail=None)
    failed = [(r["check_name"], r["status"], str(r["exception"])[:200]) for r in results
              if r["status"] not in ("passed", "skipped")]
    assert failed == []
    # A skipped check is a check not run: scikit-learn skips the pandas-input checks without pandas, which the
    # dev extra installs. Say so rather than pass on fewer checks.
    skipped = [f"{r['check_name']} ({r['exception']})" for r in results if r["status"] == "skipped"]
    assert not skipped, (f"scikit-learn skipped {len(skipped)} estimator check(s): {'; '.join(skipped)}. A check "
                         "skipped because a package is not installed (pandas) needs the dev extra: "
                         "pip install -e '.[dev]'")
    assert len(results) >= 50


def test_fit_is_train_on_the_encoded_labels(digits):
    """The estimator's steps are train()'s: same model seed, data order and optimizer give the same weights."""
    clf = DBAClassifier(hidden_layer_sizes=(16,), learning_rate=0.2, epochs=3, batch_size=20, shuffle=False,
                        random_state=4).fit(digits.X_train, digits.y_train)
    model = MLP([64, 16, 10], seed=clf.model_.seed)
    history = train(model, dba(sgd(0.2)), digits.X_train, digits.y_train, epochs=3, batch_size=20, shuffle=False,
                    progress=False)
    for a, b in zip(model.weights + model.biases, clf.model_.weights + clf.model_.biases):
        np.testing.assert_array_equal(a, b)
    assert clf.steps_ == history.steps and clf.t_ == len(history.steps["loss"]) and clf.n_iter_ == 3
    assert len(clf.loss_curve_) == 3 and clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_partial_fit_epochs_are_fit_epochs(digits):
    """n calls of partial_fit on the same data continue one another exactly like fit with epochs=n."""
    X, y = digits.X_train, digits.y_train
    fitted = DBAClassifier(epochs=3, random_state=0).fit(X, y)
    partial = DBAClassifier(random_state=0)
    for _ in range(3):
        partial.partial_fit(X, y, classes=np.arange(10))
    np.testing.assert_array_equal(partial.predict_proba(X), fitted.predict_proba(X))
    assert partial.t_ == fitted.t_ and partial.n_iter_ == 3


def test_string_labels_probabilities_and_score(digits):
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = DBAClassifier(epochs=15, random_state=0).fit(digits.X_train, names[digits.y_train])
    assert list(clf.classes_) == sorted(names)
    proba = clf.predict_proba(digits.X_test)
    assert proba.shape == (len(digits.y_test), 10)
    sums = proba.sum(axis=1)
    assert_within_rounding(sums, np.ones(len(sums)), *softmax_sum_rounding(clf.model_.forward(digits.X_test)))
    assert set(clf.predict(digits.X_test)) <= set(names)
    assert np.array_equal(clf.predict(digits.X_test), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(digits.X_test, names[digits.y_test]) > 0.5            # chance: 0.1


@pytest.mark.parametrize("params", [dict(optimizer="adam", learning_rate=1e-2),
                                    dict(optimizer="adadagrad_norm", batch_size=8),
                                    dict(base="momentum", optimizer_params={"momentum": 0.5}, strategy="prefix"),
                                    dict(hidden_layer_sizes=(), dtype="float32")])
def test_other_optimizers_and_settings(digits, params):
    clf = DBAClassifier(epochs=10, random_state=1, **params).fit(digits.X_train, digits.y_train)
    assert clf.score(digits.X_train, digits.y_train) > 0.4                 # chance: 0.1
    if params.get("dtype") == "float32":
        assert clf.model_.weights[0].dtype == np.float32 and clf.predict_proba(digits.X_test).dtype == np.float32


def test_pipeline_and_grid_search(digits):
    pipe = make_pipeline(StandardScaler(), DBAClassifier(hidden_layer_sizes=(16,), epochs=5, random_state=0))
    grid = GridSearchCV(pipe, {"dbaclassifier__learning_rate": [0.01, 0.1],
                               "dbaclassifier__min_size": [2, 0.5]}, cv=3)
    grid.fit(digits.X_train, digits.y_train)
    assert set(grid.best_params_) == {"dbaclassifier__learning_rate", "dbaclassifier__min_size"}
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert grid.score(digits.X_test, digits.y_test) > 0.5
    assert clone(pipe).get_params()["dbaclassifier__epochs"] == 5


def test_pickled_classifier_predicts_and_keeps_training(digits):
    clf = DBAClassifier(epochs=2, random_state=0).fit(digits.X_train, digits.y_train)
    twin = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(twin.predict_proba(digits.X_test), clf.predict_proba(digits.X_test))
    clf.partial_fit(digits.X_train, digits.y_train)
    twin.partial_fit(digits.X_train, digits.y_train)
    np.testing.assert_array_equal(twin.predict_proba(digits.X_test), clf.predict_proba(digits.X_test))


@pytest.mark.parametrize("params,fit_args,error,message", [
    (dict(optimizer="nope"), (), ValueError, "unknown optimizer 'nope'"),
    (dict(optimizer_params={"beta": 1}), (), TypeError, "has no hyper-parameter beta"),
    (dict(epochs=0), (), ValueError, "epochs must be > 0"),
    (dict(batch_size=0), (), ValueError, "batch_size must be > 0"),
    (dict(dtype="float16"), (), TypeError, "dtype must be float32 or float64"),
    (dict(min_size=0), (), ValueError, "min_size must be >= 1"),
    (dict(hidden_layer_sizes=(0,)), (), ValueError, "every layer width must be an integer >= 1"),
    (dict(), ("one class",), ValueError, "at least 2 classes"),
])
def test_bad_parameters_are_named_at_fit(digits, params, fit_args, error, message):
    y = np.zeros_like(digits.y_train) if fit_args else digits.y_train
    with pytest.raises(error, match=message):
        DBAClassifier(**params).fit(digits.X_train, y)


def test_partial_fit_rules(digits):
    X, y = digits.X_train, digits.y_train
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        DBAClassifier().partial_fit(X, y)
    clf = DBAClassifier().partial_fit(X[y < 5], y[y < 5], classes=np.arange(10))        # later classes may come
    clf.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"labels \[10\] that are not in classes_"):
        clf.partial_fit(X[:3], np.array([1, 2, 10]))
    with pytest.raises(ValueError, match="differs from classes_"):
        clf.partial_fit(X, y, classes=np.arange(11))
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:, :3], y)

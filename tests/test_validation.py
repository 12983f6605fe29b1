"""Bad input to the model-facing API gives a ValueError/TypeError that says what is wrong."""
import numpy as np
import pytest

from dba_ref import MLP, backprop, layer_grams, per_sample_grads


@pytest.fixture
def model():
    return MLP([4, 5, 3], seed=0)


GOOD_X = np.ones((2, 4))
GOOD_Y = np.array([0, 2])


@pytest.mark.parametrize("X,y,error,match", [
    (np.array([[np.nan, 0, 0, 0], [0, 0, 0, 0]]), GOOD_Y, ValueError, r"NaN or inf \(first at row 0, column 0\)"),
    (np.array([[0, 0, 0, 0], [0, 0, np.inf, 0]]), GOOD_Y, ValueError, "row 1, column 2"),
    (np.ones(4), GOOD_Y, ValueError, "must be 2-D"),
    (np.ones((2, 5)), GOOD_Y, ValueError, "5 features per sample but the model expects 4"),
    (np.ones((0, 4)), np.zeros(0, int), ValueError, "empty batch"),
    (np.array([["a"] * 4] * 2), GOOD_Y, TypeError, "numeric array"),
    (np.ones((2, 4), complex), GOOD_Y, TypeError, "must be real"),
    ("X", GOOD_Y, TypeError, "2-D numeric array"),
    (GOOD_X, np.array([0, 3]), ValueError, r"label 3 outside \[0, 3\)"),
    (GOOD_X, np.array([-1, 0]), ValueError, "label -1"),
    (GOOD_X, np.array([0.0, 1.0]), TypeError, "integer class labels.*y.astype\\(int\\)"),
    (GOOD_X, np.array([True, False]), TypeError, "integer class labels"),
    (GOOD_X, np.array([0, 1, 2]), ValueError, "3 labels but X has 2 samples"),
    (GOOD_X, np.array([[0], [1]]), ValueError, "must be 1-D"),
])
@pytest.mark.parametrize("fn", [backprop, per_sample_grads, layer_grams])
def test_bad_batches(model, fn, X, y, error, match):
    before = [W.copy() for W in model.weights]
    with pytest.raises(error, match=match):
        fn(model, X, y)
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b)       # nothing was changed


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(sizes=[4]), ValueError, "at least an input and an output"),
    (dict(sizes=[4, 0, 3]), ValueError, "integer >= 1"),
    (dict(sizes=[4, 2.5, 3]), ValueError, "integer >= 1"),
    (dict(sizes=[4, 1]), ValueError, "at least 2 classes"),
    (dict(sizes=[4, 3], activation="gelu"), ValueError, "unknown activation 'gelu'"),
    (dict(sizes=[4, 3], dtype=np.int32), TypeError, "float32 or float64"),
    (dict(sizes=[4, 3], dtype=np.float16), TypeError, "float32 or float64"),
])
def test_bad_models(kwargs, error, match):
    with pytest.raises(error, match=match):
        MLP(**kwargs)


def test_set_params_refuses_bad_parameters(model):
    with pytest.raises(ValueError, match="expected 2"):
        model.set_params(model.params[:1])
    with pytest.raises(ValueError, match=r"layer 0: expected shapes \(5, 4\)"):
        model.set_params([(np.ones((4, 5)), np.ones(5)), model.params[1]])
    bad = model.weights[1].copy()
    bad[0, 0] = np.nan
    before = model.weights[1].copy()
    with pytest.raises(ValueError, match="layer 1: parameters contain NaN or inf"):
        model.set_params([model.params[0], (bad, model.biases[1])])
    np.testing.assert_array_equal(model.weights[1], before)

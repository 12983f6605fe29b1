"""The training loop: determinism, results files, DBA records, float32."""
import json

import numpy as np
import pytest
from helpers import assert_within, assert_within_rounding, replay_training

from dba_ref import MLP, adam, dba, sgd
from dba_ref.data import load_dataset, make_split
from dba_ref.training import History, train


@pytest.fixture(scope="module")
def digits():
    return make_split(load_dataset("digits"), per_class=12, seed=0)


def run(split, optimizer, seed=0, dtype=np.float64, **kwargs):
    model = MLP([64, 24, 10], seed=seed, dtype=dtype)
    history = train(model, optimizer, split.X_train, split.y_train, split.X_test, split.y_test,
                    epochs=kwargs.pop("epochs", 3), batch_size=kwargs.pop("batch_size", 32), seed=seed,
                    progress=False, **kwargs)
    return model, history


def test_same_seed_same_numbers_and_different_seed_different_numbers(digits):
    m1, h1 = run(digits, dba(sgd(0.2)))
    m2, h2 = run(digits, dba(sgd(0.2)))
    m3, h3 = run(digits, dba(sgd(0.2)), seed=1)
    for a, b in zip(m1.weights, m2.weights):
        np.testing.assert_array_equal(a, b)
    assert h1.steps["selected"] == h2.steps["selected"]
    assert h1.final["test_acc"] == h2.final["test_acc"]
    assert not np.array_equal(m1.weights[0], m3.weights[0])


def test_training_reduces_the_loss_and_records_dba_steps(digits):
    model, history = run(digits, dba(sgd(0.3), min_size=4), epochs=8)
    assert history.final["train_loss"] < 0.9 * history.epochs[0]["train_loss"]
    n_steps = 8 * int(np.ceil(120 / 32))
    assert len(history.steps["loss"]) == n_steps
    assert history.steps["batch_size"][:4] == [32, 32, 32, 24]
    for key in ("selected", "full_metric", "selected_metric", "grad_norm", "update_norm"):
        assert len(history.steps[key]) == 2 and len(history.steps[key][0]) == n_steps
    sel = np.array(history.steps["selected"])
    assert sel.min() >= 4 and sel.max() <= 32
    assert np.all(np.array(history.steps["selected_metric"]) <= np.array(history.steps["full_metric"]))  # greedy


def test_plain_optimizer_history_has_no_dba_records(digits):
    _, history = run(digits, adam(1e-2))
    assert "selected" not in history.steps
    assert [row["epoch"] for row in history.epochs] == [0, 1, 2, 3]


def test_results_json_is_written_every_epoch_and_round_trips(tmp_path, digits):
    path = tmp_path / "out" / "results.json"
    _, history = run(digits, dba(sgd(0.1)), results_path=path, config={"note": "test"})
    data = json.loads(path.read_text())
    assert len(data["epochs"]) == 4 and data["config"]["note"] == "test"
    assert data["config"]["optimizer"]["name"] == "dba(sgd)"
    assert History.load(path).to_dict() == json.loads(json.dumps(history.to_dict()))
    assert not list(path.parent.glob("*.tmp"))


def test_full_batch_training(digits):
    _, history = run(digits, sgd(0.5), batch_size=None, epochs=2)
    assert history.steps["batch_size"] == [120, 120]


def test_float32_training_stays_close_to_float64(digits):
    m64, h64 = run(digits, sgd(0.2), epochs=3, shuffle=False)
    m32, h32 = run(digits, sgd(0.2), epochs=3, dtype=np.float32, shuffle=False)
    assert m32.weights[0].dtype == np.float32
    # the float32 run rounds every step in float32: its weights within the rounding the 12 steps add up, its last
    # batch loss within its own rounding and its weights'
    X, y = digits.X_train, digits.y_train
    replayed, rounding, loss_tolerance = replay_training(MLP([64, 24, 10], seed=0), sgd(0.2), X, y, 32, 3, np.float32)
    leaves64, leaves32 = ([p for pair in m.params for p in pair] for m in (m64, m32))
    for p32, p64, r in zip(leaves32, leaves64, rounding):
        assert_within_rounding(p32, p64, r + np.abs(p64), 1, np.float32)       # + |θ|: the initial cast to float32
    assert_within(h32.steps["loss"][-1], h64.steps["loss"][-1], loss_tolerance[-1], "last batch loss")


def test_train_validates_its_inputs(digits):
    model = MLP([64, 10])
    with pytest.raises(TypeError, match="optimizer must be"):
        train(model, "sgd", digits.X_train, digits.y_train)
    with pytest.raises(ValueError, match="epochs must be > 0"):
        train(model, sgd(), digits.X_train, digits.y_train, epochs=0)
    with pytest.raises(ValueError, match="give both X_test and y_test"):
        train(model, sgd(), digits.X_train, digits.y_train, X_test=digits.X_test)
    with pytest.raises(ValueError, match="expects 64"):
        train(model, sgd(), digits.X_train[:, :10], digits.y_train)

"""The training loop: determinism, results files, DBA records, float32."""
import json

import numpy as np
import pytest
from helpers import assert_within, assert_within_rounding, replay_training

from dba_ref import MLP, adam, dba, sgd
from dba_ref.data import load_dataset, make_split
from dba_ref.training import History, Trainer, train
from dba_ref.training.history import HistoryLog


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


def _norms_must_not_be_computed(monkeypatch):
    from dba_ref.optimizers import LayerStep

    def refuse(step):
        raise AssertionError("a norm that is not recorded was computed")
    for name in ("grad_norm", "update_norm"):
        monkeypatch.setattr(LayerStep, name, property(refuse))


def test_diagnostics_not_asked_for_are_neither_recorded_nor_computed(digits, monkeypatch):
    _, everything = run(digits, dba(sgd(0.3), min_size=4))
    _norms_must_not_be_computed(monkeypatch)
    model, history = run(digits, dba(sgd(0.3), min_size=4), diagnostics=["selected", "full_metric"])
    assert {"selected", "full_metric"} <= set(history.steps)
    assert not {"selected_metric", "grad_norm", "update_norm"} & set(history.steps)
    assert history.steps["selected"] == everything.steps["selected"]
    assert history.final == {**everything.final, "seconds": history.final["seconds"]}


def test_a_diagnostic_the_optimizer_does_not_offer_is_not_recorded(digits):
    from dba_ref import adadagrad
    _, history = run(digits, adadagrad(0.1), diagnostics=["selected"])
    assert "batch_test" not in history.steps and "selected" not in history.steps
    _, history = run(digits, adadagrad(0.1), diagnostics=["batch_test"])
    assert len(history.steps["batch_test"]) == len(history.steps["loss"])


@pytest.mark.parametrize("bad, error, message", [
    ("selected", TypeError, r"diagnostics must be a list of names from \['batch_test'"),
    (["selected", "grad_norms"], ValueError, r"unknown diagnostics 'grad_norms'; choose one of"),
])
def test_diagnostics_are_checked(digits, bad, error, message):
    with pytest.raises(error, match=message):
        run(digits, dba(sgd(0.3)), diagnostics=bad)


def test_plain_optimizer_history_has_no_dba_records(digits):
    _, history = run(digits, adam(1e-2))
    assert "selected" not in history.steps
    assert [row["epoch"] for row in history.epochs] == [0, 1, 2, 3]


def test_results_json_is_written_at_the_end_and_round_trips(tmp_path, digits):
    path = tmp_path / "out" / "results.json"
    _, history = run(digits, dba(sgd(0.1)), results_path=path, config={"note": "test"})
    data = json.loads(path.read_text())
    assert len(data["epochs"]) == 4 and data["config"]["note"] == "test"
    assert data["config"]["optimizer"]["name"] == "dba(sgd)"
    assert History.load(path).to_dict() == json.loads(json.dumps(history.to_dict()))
    assert path.read_bytes() == History.from_dict(history.to_dict()).save(tmp_path / "again.json").read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]      # the log is gone, no .tmp left


class LogSpy:
    """Records what every HistoryLog write puts on disk: bytes per line, and the whole files written."""

    def __init__(self, monkeypatch):
        self.lines, self.saves = [], []
        write, save = HistoryLog._write, History.save

        def spy_write(fh, record):
            start = fh.tell()
            write(fh, record)
            self.lines.append(fh.tell() - start)

        def spy_save(history, path):
            self.saves.append(path)
            return save(history, path)

        monkeypatch.setattr(HistoryLog, "_write", staticmethod(spy_write))
        monkeypatch.setattr(History, "save", spy_save)


def test_saving_after_epoch_n_writes_bytes_independent_of_n(tmp_path, digits, monkeypatch):
    spy = LogSpy(monkeypatch)
    epochs = 40
    _, history = run(digits, dba(sgd(0.1)), epochs=epochs, results_path=tmp_path / "results.json")
    per_epoch = spy.lines[2:]                     # line 0: the config; line 1: epoch 0 (no steps yet)
    assert len(per_epoch) == epochs
    # every epoch appends its own rows and steps (4 steps here): the 40th writes no more than the 2nd, up to the
    # varying lengths of printed numbers (±25%), where rewriting the whole history would write ~20 times more
    assert max(per_epoch[-5:]) < 1.25 * min(per_epoch[:5])
    assert spy.saves == [tmp_path / "results.json"]                # the whole JSON once, at the end
    assert (tmp_path / "results.json").stat().st_size > 20 * max(per_epoch)


def test_a_crashed_run_leaves_a_log_of_every_evaluation(tmp_path, digits, monkeypatch):
    _, history = run(digits, dba(sgd(0.1)))
    per_epoch = len(history.steps["loss"]) // 3
    # a hard crash (no Python exception reaches train: SIGKILL, power loss) while epoch 2 is being logged
    append, calls = HistoryLog.append, []

    def crash_at_epoch_2(self):
        calls.append(self)
        if len(calls) == 3:
            with open(self.log, "a") as fh:
                fh.write('{"epochs": [{"epoch": 2, "st')                # the line the crash cut short
            raise SystemExit("killed")
        append(self)

    monkeypatch.setattr(HistoryLog, "append", crash_at_epoch_2)
    monkeypatch.setattr(HistoryLog, "finish", lambda self: None)        # the process is gone: nothing more runs
    with pytest.raises(SystemExit):
        run(digits, dba(sgd(0.1)), results_path=tmp_path / "results.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]
    logged = History.load(tmp_path / "results.jsonl")
    assert [row["epoch"] for row in logged.epochs] == [0, 1]
    assert [{**row, "seconds": 0} for row in logged.epochs] == [{**row, "seconds": 0} for row in history.epochs[:2]]
    assert logged.steps["loss"] == history.steps["loss"][:per_epoch]
    assert logged.steps["selected"] == [layer[:per_epoch] for layer in history.steps["selected"]]
    assert logged.config == json.loads(json.dumps(history.config))


def test_a_run_ended_by_an_exception_writes_its_results_up_to_the_last_evaluation(tmp_path, digits, monkeypatch):
    _, history = run(digits, dba(sgd(0.1)))
    per_epoch = len(history.steps["loss"]) // 3
    fit_batch, steps = Trainer.fit_batch, []

    def interrupted(self, X, y):
        steps.append(1)
        if len(steps) == per_epoch + 2:                                   # the 2nd step of epoch 2
            raise KeyboardInterrupt
        return fit_batch(self, X, y)

    monkeypatch.setattr(Trainer, "fit_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(digits, dba(sgd(0.1)), results_path=tmp_path / "results.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    saved = History.load(tmp_path / "results.json")
    assert [row["epoch"] for row in saved.epochs] == [0, 1]
    assert saved.steps["loss"] == history.steps["loss"][:per_epoch]        # not the step of epoch 2 it took
    assert saved.steps["selected"] == [layer[:per_epoch] for layer in history.steps["selected"]]


def test_the_test_set_is_evaluated_every_test_every_epochs_and_after_the_last(digits):
    _, every = run(digits, dba(sgd(0.1)), epochs=7)
    _, sampled = run(digits, dba(sgd(0.1)), epochs=7, test_every=3)
    assert sampled.config["test_every"] == 3 and every.config["test_every"] == 1
    assert [row["epoch"] for row in sampled.epochs if "test_acc" in row] == [0, 3, 6, 7]
    assert [row["epoch"] for row in sampled.epochs] == list(range(8))
    for a, b in zip(every.epochs, sampled.epochs):                      # sampling changes no number
        assert {k: v for k, v in a.items() if k in b and k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert sampled.steps == every.steps
    with pytest.raises(ValueError, match="test_every"):
        run(digits, sgd(0.1), test_every=0)


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


def test_a_results_path_with_the_log_suffix_is_refused(tmp_path, digits):
    with pytest.raises(ValueError, match="suffix of the log"):
        run(digits, sgd(0.1), results_path=tmp_path / "results.jsonl")
    assert not list(tmp_path.iterdir())


def test_a_run_resumes_with_another_test_every(tmp_path, digits):
    model = MLP([64, 24, 10], seed=0)
    kwargs = dict(batch_size=32, progress=False, checkpoint_dir=tmp_path / "ck", resume=True)
    train(model, sgd(0.1), digits.X_train, digits.y_train, digits.X_test, digits.y_test, epochs=2, **kwargs)
    history = train(model, sgd(0.1), digits.X_train, digits.y_train, digits.X_test, digits.y_test, epochs=6,
                    test_every=4, **kwargs)
    assert history.config["test_every"] == 4
    assert [row["epoch"] for row in history.epochs if "test_acc" in row] == [0, 1, 2, 4, 6]

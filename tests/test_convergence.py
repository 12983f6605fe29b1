"""The convergence-speed claim: targets, times to them in four units, censoring, the comparisons and the verdict."""
import math

import numpy as np
import pytest

from dba_ref.reproduction import Method, full_protocol
from dba_ref.reproduction.collect import CellResult, MethodResult
from dba_ref.reproduction.convergence import (Speed, Target, compare, informative_seeds, pairings, targets,
                                              time_to_target)
from dba_ref.reproduction.protocol import CONVERGENCE_TARGETS
from dba_ref.reproduction.statements import convergence_statements, unit_verdict
from dba_ref.reproduction.tables import format_time

N_TRAIN, EPOCHS, BATCH = 100, 10, 64        # 2 steps an epoch


def record(seed, val_acc, train_loss, *, step=None, seconds=None, total_seconds=5.0, steps=None, test_acc=0.8):
    """A final run's record with the given per-epoch curves (epoch 0 first), as the runner writes it."""
    curves = {"epoch": list(range(len(val_acc))), "val_acc": list(val_acc), "train_loss": list(train_loss)}
    if step is not None:
        curves["step"] = list(step)
    if seconds is not None:
        curves["seconds"] = list(seconds)
    return {"seed": seed, "n_train": N_TRAIN, "curves": curves,
            "budget": {"epochs": EPOCHS, "batch_size": BATCH, "steps": steps or 2 * EPOCHS,
                       "samples_processed": N_TRAIN * EPOCHS},
            "result": {"train_seconds": total_seconds, "test_acc": test_acc, "val_acc": val_acc[-1],
                       "train_loss": train_loss[-1], "diverged": False},
            "environment": {"load_average_before": 0.5, "load_average_after": 0.7, "cpus": 2}}


def rising(reach_epoch, final=0.80):
    """A validation-accuracy curve that first reaches ``final - 0.005`` at ``reach_epoch`` (never if None)."""
    curve = np.linspace(0.1, 0.7, EPOCHS + 1)
    if reach_epoch is not None:
        curve[reach_epoch:] = final
    return curve


def falling(reach_epoch, level=0.01):
    """A training-loss curve that first reaches ``level`` at ``reach_epoch`` (never if None)."""
    curve = np.geomspace(2.0, 0.05, EPOCHS + 1)
    if reach_epoch is not None:
        curve[reach_epoch:] = level
    return curve


def method(m, epochs_acc, epochs_loss, val=0.8, **kwargs):
    finals = [record(s, rising(a), falling(b), **kwargs) for s, (a, b) in enumerate(zip(epochs_acc, epochs_loss))]
    return MethodResult(m, [0.1], 1, {0.1: (val, 0.0)}, 0.1, finals)


def cell_of(methods, reading="main"):
    cell = next(c for c in full_protocol(datasets=("mnist5k",)).cells if c.reading == reading)
    return CellResult(cell, methods, planned=10, finished=10)


def test_the_targets_come_from_the_best_baseline_as_the_protocol_fixes_them():
    base = method(Method("sgd"), [5] * 5, [8] * 5)
    c = cell_of([base, method(Method("sgd", dba=True), [5] * 5, [8] * 5, val=0.7)])
    acc, loss = targets(c)
    assert (acc.name, acc.curve, loss.name, loss.curve) == ("accuracy", "val_acc", "loss", "train_loss")
    assert acc.level == pytest.approx(0.80 + CONVERGENCE_TARGETS["accuracy"][2]) and loss.level == pytest.approx(0.01)
    assert acc.describe() == "validation accuracy ≥ 79.00%" and loss.describe() == "training loss ≤ 0.01"
    assert targets(cell_of([base], reading="hidden")) == []        # a cell the claim is not measured on


def test_time_to_target_in_four_units_recorded_or_derived():
    target = Target("accuracy", "val_acc", +1, 0.79)
    derived = time_to_target(record(0, rising(4), falling(None), total_seconds=5.0), target)
    assert derived.reached and derived.time == {"epochs": 4, "steps": 8, "gradients": 400, "seconds": 2.0}
    recorded = time_to_target(record(0, rising(4), falling(None), step=[0, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21],
                                     seconds=np.arange(11) * 0.3), target)
    assert recorded.time == {"epochs": 4, "steps": 9, "gradients": 400, "seconds": pytest.approx(1.2)}
    # an adaptive batch (steps not epochs × ⌈n/B⌉) in a record without its step curve: steps unknown
    adaptive = time_to_target(record(0, rising(4), falling(None), steps=13), target)
    assert math.isnan(adaptive.time["steps"]) and adaptive.time["epochs"] == 4


def test_a_run_that_never_reaches_a_target_is_censored_at_its_budget_not_dropped():
    target = Target("loss", "train_loss", -1, 0.01)
    never = time_to_target(record(3, rising(2), falling(None), total_seconds=7.0), target)
    assert not never.reached and never.time == {"epochs": EPOCHS, "steps": 20, "gradients": 1000, "seconds": 7.0}
    nan = record(4, rising(2), [math.nan] * (EPOCHS + 1))
    assert not time_to_target(nan, target).reached                  # a diverged curve never meets a target
    diverged = record(5, rising(2), falling(1), total_seconds=3.0)
    del diverged["curves"]                                          # a run that raised keeps no curve
    assert time_to_target(diverged, target) == time_to_target(
        record(5, rising(2), falling(None), total_seconds=3.0), target)
    m = method(Method("sgd"), [2] * 3, [3, 5, None])
    speed = Speed.of(m, target)
    assert speed.reached == 2 and len(speed.hits) == 3
    assert speed.mean_std("epochs")[0] == pytest.approx((3 + 5 + EPOCHS) / 3)
    assert format_time(speed, "epochs").startswith("≥ 6.0 ± ")


def test_only_seeds_that_say_which_is_sooner_enter_the_test():
    target = Target("loss", "train_loss", -1, 0.01)
    dba = Speed.of(method(Method("sgd", dba=True), [2] * 4, [3, None, None, 4], total_seconds=2.0), target)
    base = Speed.of(method(Method("sgd"), [2] * 4, [6, 7, None, 9], total_seconds=10.0), target)
    assert informative_seeds(dba, base, "epochs") == [0, 1, 3]     # seed 2: neither reached
    # seed 1 in seconds: DBA censored at 2 s, the baseline reached at 7 s: which is sooner is unknown
    assert informative_seeds(dba, base, "seconds") == [0, 3]
    result = compare(dba, base, "epochs")
    assert result.n == 3 and result.dba == pytest.approx((3 + 10 + 4) / 3) and result.base == pytest.approx(22 / 3)


@pytest.mark.parametrize("sooner, later, tested, verdict", [
    (4, 0, 6, "reproduced"), (3, 0, 6, "mixed"), (2, 1, 6, "mixed"), (1, 6, 20, "not reproduced"),
    (0, 0, 5, "not reproduced"), (0, 0, 0, "untested")])
def test_the_unit_verdict_rule(sooner, later, tested, verdict):
    assert unit_verdict(sooner, later, tested) == verdict


@pytest.mark.parametrize("dba_epochs, verdict", [
    ([2, 3, 2, 3, 2], "**In short: the convergence-speed claim is reproduced**"),
    ([8, 9, 8, 9, 8], "**In short: the convergence-speed claim is not reproduced**"),
])
def test_the_convergence_statement_follows_the_numbers(dba_epochs, verdict):
    base = method(Method("sgd"), [5, 6, 5, 6, 5], [5, 6, 5, 6, 5], total_seconds=5.0)
    dba = method(Method("sgd", dba=True), dba_epochs, dba_epochs, val=0.7, total_seconds=5.0)
    c = cell_of([base, dba])
    assert [label for label, _, _ in pairings(c)] == ["best DBA vs best baseline", "best DBA(SGD) vs SGD"]
    text = "\n".join(convergence_statements([c]))
    assert verdict in text
    assert "In epochs: DBA reaches the target" in text and "Not measured" not in text


def test_a_cell_without_runs_is_listed_as_not_measured():
    text = "\n".join(convergence_statements([cell_of([], reading="full-data")]))
    assert "In short" not in text and "Not measured: full-data: mnist5k-pc400" in text


def test_the_full_data_cells_take_every_training_image_with_the_same_tuning():
    protocol = full_protocol()
    whole = {c.setting.dataset: c for c in protocol.cells if c.reading == "full-data"}
    assert set(whole) == {"mnist5k", "fashion-mnist"}
    mnist, fashion = whole["mnist5k"].setting, whole["fashion-mnist"].setting
    assert (mnist.per_class + mnist.val_per_class, fashion.per_class + fashion.val_per_class) == (450, 6000)
    assert {m.key for m in whole["mnist5k"].methods} == {"sgd", "adam", "dba-sgd-mean_variance-greedy-m2-t0",
                                                        "dba-adam-mean_variance-greedy-m2-t0"}
    assert protocol.cell_runs(whole["mnist5k"]) == 4 * (protocol.tuning_budget + len(protocol.final_seeds))
    from dba_ref.data import load_dataset, make_split

    split = make_split(load_dataset("mnist5k"), per_class=mnist.per_class, seed=0, val_per_class=mnist.val_per_class)
    assert (split.X_train.shape[0], split.X_val.shape[0], split.X_test.shape[0]) == (4000, 500, 500)

"""Checkpoints: exact and safe files, refused when corrupt or foreign; resume is bit-identical; divergence stops cleanly."""
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays, boolean_dtypes, complex_number_dtypes, floating_dtypes, integer_dtypes
from hypothesis.extra.numpy import unsigned_integer_dtypes

from dba_ref import MLP, adam, backprop, dba, make_optimizer, sgd
from dba_ref.checkpoint import CheckpointError, atomic_write, decode, encode, read_checkpoint, write_checkpoint
from dba_ref.data import load_dataset, make_split
from dba_ref.optimizers import OPTIMIZERS, WRAPPABLE
from dba_ref.optimizers.tree import tree_leaves
from dba_ref.training import CHECKPOINT_FILE, BatchSampler, Trainer, TrainingDiverged, train

from helpers import random_batch


@pytest.fixture(scope="module")
def digits():
    return make_split(load_dataset("digits"), per_class=10, seed=0)


# ---------------------------------------------------------------------------------------------------------------
# The state tree: exact round trips
# ---------------------------------------------------------------------------------------------------------------
def same(a, b) -> bool:
    """Equal in type, structure and bits (NaN equals NaN with the same payload)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (np.ndarray, np.generic)):
        return a.dtype == b.dtype and np.shape(a) == np.shape(b) and np.asarray(a).tobytes() == np.asarray(b).tobytes()
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


dtypes = boolean_dtypes() | integer_dtypes() | unsigned_integer_dtypes() | floating_dtypes() | complex_number_dtypes()
leaves = (st.none() | st.booleans() | st.integers(-(1 << 130), 1 << 130) | st.floats(allow_nan=True) | st.text(max_size=5)
          | arrays(dtypes, st.integers(0, 3)) | dtypes.flatmap(lambda d: arrays(d, ())).map(lambda a: a[()]))
keys = st.none() | st.integers(-5, 5) | st.text(max_size=3) | st.tuples(st.integers(-2, 2), st.none() | st.integers(0, 3))
trees = st.recursive(leaves, lambda children: st.lists(children, max_size=4) | st.lists(children, max_size=4).map(tuple)
                     | st.dictionaries(keys, children, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(tree=trees)
def test_any_state_tree_round_trips_exactly(tree):
    arrays_: list = []
    encoded = json.loads(json.dumps(encode(tree, arrays_)))
    back = decode(encoded, {str(i): a for i, a in enumerate(arrays_)})
    assert same(back, tree)


def test_a_dba_checkpoint_leaves_out_the_record_of_the_last_step(tmp_path, rng):
    """``DBAState.last`` (each layer's mean gradient and update) is not stored: only the base state's arrays are."""
    model = MLP([5, 7, 3], seed=2)
    optimizer = dba(adam(1e-2))
    _, state = optimizer.update(None, optimizer.init(model.params), model.params,
                                signals=backprop(model, *random_batch(rng, model, 9)))
    assert len(state.last) == 2
    stored, base_only = [], []
    encode(state, stored)
    encode(state.base, base_only)
    assert len(stored) == len(base_only)
    restored = read_checkpoint(write_checkpoint(tmp_path / "c", {"state": state}))["state"]
    assert restored.last == ()


def optimizers_to_check():
    """Every optimizer of the registry, and DBA around the ones it can wrap (with every strategy once)."""
    opts = [make_optimizer(name) for name in OPTIMIZERS]
    strategies = ["greedy", "prefix", "exhaustive", "all"]
    opts += [dba(make_optimizer(name), strategy=strategies[i % 4]) for i, name in enumerate(WRAPPABLE)]
    return opts


@pytest.mark.parametrize("optimizer", optimizers_to_check(), ids=lambda o: f"{o.name}-{o.hyperparams.get('strategy', '')}")
def test_every_optimizer_state_survives_a_checkpoint_and_continues_bit_for_bit(tmp_path, rng, optimizer):
    model = MLP([5, 7, 3], seed=2)
    batches = [random_batch(rng, model, 9) for _ in range(4)]

    def step(state, params, X, y):
        return optimizer.update(None, state, params, signals=backprop(model, X, y))

    state = optimizer.init(model.params)
    for X, y in batches[:2]:
        _, state = step(state, model.params, X, y)
    restored = read_checkpoint(write_checkpoint(tmp_path / "c", {"state": state}))["state"]
    arrays_a, arrays_b = [], []
    assert encode(restored, arrays_b) == encode(state, arrays_a)
    assert all(same(a, b) for a, b in zip(arrays_a, arrays_b))
    for X, y in batches[2:]:
        updates, state = step(state, model.params, X, y)
        updates_r, restored = step(restored, model.params, X, y)
        for a, b in zip(tree_leaves(updates), tree_leaves(updates_r)):
            np.testing.assert_array_equal(a, b)


def test_what_cannot_be_stored_exactly_and_safely_is_refused_by_name():
    for state, where, what in (({"fn": lambda: 0}, "state['fn']", "function"),
                               ({"w": np.array([object()])}, "state['w']", "dtype object"),
                               ({"x": [1, {2}]}, "state['x'][1]", "set"),
                               ((MLP([2, 2]),), "state[0]", "MLP")):
        with pytest.raises(TypeError, match="cannot checkpoint") as exc:
            encode(state, [])
        assert str(exc.value).startswith(where + ":") and what in str(exc.value)


# ---------------------------------------------------------------------------------------------------------------
# Files: atomic, checked
# ---------------------------------------------------------------------------------------------------------------
def test_corrupt_truncated_and_foreign_files_are_refused(tmp_path):
    path = write_checkpoint(tmp_path / "c", {"w": np.arange(100.0)})
    raw = path.read_bytes()
    cases = {
        "truncated": (raw[:-10], "truncated"),
        "padded": (raw + b"x", "truncated or padded"),
        "flipped": (raw[:-50] + bytes([raw[-50] ^ 1]) + raw[-49:], "checksum"),
        "empty": (b"", "not a dba-ref checkpoint"),
        "other": (b"PK\x03\x04 something else\n", "not a dba-ref checkpoint"),
        "future": (raw.replace(b"CHECKPOINT 1 ", b"CHECKPOINT 9 ", 1), "format 9"),
    }
    for name, (content, message) in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(CheckpointError, match=message):
            read_checkpoint(bad)
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(tmp_path / "missing")
    assert issubclass(CheckpointError, ValueError)


def test_a_checkpoint_naming_a_foreign_class_is_refused_not_executed(tmp_path, monkeypatch):
    """A well-formed file (valid checksum) whose tree names os.system: refused before anything is called."""
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    import hashlib
    import io
    for name in ("os:system", "dba_ref.training:train", "dba_ref.__main__:main"):
        tree = {"$": "dataclass", "class": name, "fields": {}}
        buffer = io.BytesIO()
        np.savez(buffer, **{"tree.json": np.frombuffer(json.dumps(tree).encode(), np.uint8)})
        payload = buffer.getvalue()
        header = b"DBA-REF-CHECKPOINT 1 %d %s\n" % (len(payload), hashlib.sha256(payload).hexdigest().encode())
        (tmp_path / "evil").write_bytes(header + payload)
        with pytest.raises(CheckpointError, match="not a dba_ref state class"):
            read_checkpoint(tmp_path / "evil")
    assert called == []


def test_a_crash_while_writing_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "c", {"step": 1})
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))

    def crash(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(path, {"step": 2})
    assert synced, "the new data is flushed to disk before the rename"
    assert read_checkpoint(path) == {"step": 1}
    monkeypatch.undo()
    atomic_write(path, b"x")
    assert path.read_bytes() == b"x" and not (tmp_path / "c.tmp").exists()


# ---------------------------------------------------------------------------------------------------------------
# Resuming train()
# ---------------------------------------------------------------------------------------------------------------
class Killed(Exception):
    pass


def interrupt_at(monkeypatch, step):
    """Make the next training run die just before optimizer step ``step``."""
    real = Trainer.fit_batch

    def fit_batch(self, X, y):
        if self.step + 1 == step:
            raise Killed
        return real(self, X, y)
    monkeypatch.setattr(Trainer, "fit_batch", fit_batch)


def fit(split, optimizer, directory=None, epochs=3, **kwargs):
    model = MLP([64, 12, 10], seed=0)
    history = train(model, optimizer, split.X_train, split.y_train, split.X_test, split.y_test, epochs=epochs,
                    batch_size=kwargs.pop("batch_size", 16), seed=3, progress=False, checkpoint_dir=directory, **kwargs)
    return model, history


def assert_same_run(a, b):
    (m1, h1), (m2, h2) = a, b
    for x, y in zip(m1.weights + m1.biases, m2.weights + m2.biases):
        np.testing.assert_array_equal(x, y)
    assert h1.steps == h2.steps
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in h1.epochs] == \
           [{k: v for k, v in row.items() if k != "seconds"} for row in h2.epochs]


@pytest.mark.parametrize("make", [lambda: dba(sgd(0.2)), lambda: dba(adam(1e-2), strategy="prefix"),
                                  lambda: make_optimizer("adadagrad_norm", eta=1.0),
                                  lambda: make_optimizer("enhanced_sgd"), lambda: make_optimizer("adan")],
                         ids=["dba-sgd", "dba-adam-prefix", "adadagrad_norm", "enhanced_sgd", "adan"])
@pytest.mark.parametrize("kill_at", [6, 8])               # mid-epoch, and right after epoch 1's last step (7)
def test_an_interrupted_run_resumed_is_the_uninterrupted_run(tmp_path, monkeypatch, digits, make, kill_at):
    reference = fit(digits, make(), tmp_path / "ref", checkpoint_every=4)
    assert len(reference[1].steps["loss"]) > kill_at
    with monkeypatch.context() as m:
        interrupt_at(m, kill_at)
        with pytest.raises(Killed):
            fit(digits, make(), tmp_path / "run", checkpoint_every=4)
    assert read_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)["step"] < kill_at
    assert_same_run(fit(digits, make(), tmp_path / "run", checkpoint_every=4, resume=True), reference)


def test_resume_can_extend_a_finished_run(tmp_path, digits):
    fit(digits, dba(sgd(0.2)), tmp_path / "a", epochs=2)
    extended = fit(digits, dba(sgd(0.2)), tmp_path / "a", epochs=4, resume=True)
    assert_same_run(extended, fit(digits, dba(sgd(0.2)), epochs=4))
    again = fit(digits, dba(sgd(0.2)), tmp_path / "a", epochs=4, resume=True)      # nothing left to do
    assert_same_run(again, extended)
    with pytest.raises(CheckpointError, match="already trained 4 epochs"):
        fit(digits, dba(sgd(0.2)), tmp_path / "a", epochs=3, resume=True)


def test_resume_without_a_checkpoint_starts_afresh(tmp_path, digits):
    assert_same_run(fit(digits, sgd(0.2), tmp_path / "new", resume=True), fit(digits, sgd(0.2)))


def test_a_checkpoint_of_another_run_is_refused_naming_the_difference(tmp_path, digits):
    fit(digits, dba(sgd(0.2)), tmp_path / "a", epochs=1)
    other = make_split(load_dataset("digits"), per_class=10, seed=1)
    for kwargs, message in ((dict(optimizer=dba(sgd(0.3))), "optimizer.base.learning_rate: 0.2 in the checkpoint, 0.3"),
                            (dict(optimizer=dba(sgd(0.2), min_size=3)), "optimizer.min_size"),
                            (dict(optimizer=adam()), "optimizer.name"),
                            (dict(optimizer=dba(sgd(0.2)), batch_size=8), "batch_size: 16 in the checkpoint, 8 now"),
                            (dict(optimizer=dba(sgd(0.2)), split=other), "data.train")):
        split = kwargs.pop("split", digits)
        with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
            fit(split, kwargs.pop("optimizer"), tmp_path / "a", resume=True, **kwargs)
    before = (tmp_path / "a" / CHECKPOINT_FILE).read_bytes()
    with pytest.raises(ValueError, match="pass resume=True"):
        fit(digits, dba(sgd(0.2)), tmp_path / "a")
    assert (tmp_path / "a" / CHECKPOINT_FILE).read_bytes() == before          # refused runs write nothing
    with pytest.raises(ValueError, match="need checkpoint_dir"):
        fit(digits, sgd(), None, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every must be > 0"):
        fit(digits, sgd(), tmp_path / "b", checkpoint_every=0)


def test_a_corrupt_checkpoint_is_refused_by_train(tmp_path, digits):
    fit(digits, sgd(0.2), tmp_path / "a", epochs=1)
    path = tmp_path / "a" / CHECKPOINT_FILE
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="truncated"):
        fit(digits, sgd(0.2), tmp_path / "a", resume=True)


def test_sampler_state_continues_the_epoch_in_progress():
    a = BatchSampler(23, 4, np.random.default_rng(7))
    expected = [idx for _ in range(3) for idx in a.epoch()]
    b = BatchSampler(23, 4, np.random.default_rng(7))
    it = b.epoch()
    got = [next(it) for _ in range(3)]
    saved = b.state_dict()
    c = BatchSampler(23, 4, np.random.default_rng(999))
    c.load_state_dict(saved)
    got += list(c.epoch()) + list(c.epoch()) + list(c.epoch())
    assert len(got) == len(expected) and all(np.array_equal(x, y) for x, y in zip(got, expected))
    with pytest.raises(ValueError, match="another data set size"):
        BatchSampler(10, 4, np.random.default_rng(0)).load_state_dict(saved)


# ---------------------------------------------------------------------------------------------------------------
# Divergence
# ---------------------------------------------------------------------------------------------------------------
def test_divergence_names_step_and_layer_and_keeps_the_last_good_state(tmp_path, digits):
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as exc:
        fit(digits, sgd(1e155), tmp_path / "a", checkpoint_every=1)
    err = exc.value
    assert isinstance(err, ValueError) and "NaN or inf" in str(err)
    assert f"step {err.step}" in str(err) and f"layer {err.layer}" in str(err) and 1 <= err.layer <= 2
    saved = read_checkpoint(tmp_path / "a" / CHECKPOINT_FILE)
    assert saved["step"] == err.step - 1 and all(np.all(np.isfinite(p)) for pair in saved["params"] for p in pair)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as again:       # resuming meets it again
        fit(digits, sgd(1e155), tmp_path / "a", checkpoint_every=1, resume=True)
    assert (again.value.step, again.value.layer) == (err.step, err.layer)


def test_an_update_that_breaks_one_layer_is_named(digits):
    from dba_ref.optimizers import gradient_optimizer

    def update(grads, state, params, elementwise):   # finite for layer 1, inf in layer 2's bias on the third step
        bad = state == 2
        return [(-0.1 * gW, -0.1 * gb + (np.inf if bad and l == 1 else 0.0)) for l, (gW, gb) in enumerate(grads)], state + 1
    broken = gradient_optimizer(lambda params: 0, update, "broken", {})
    model = MLP([64, 12, 10], seed=0)
    with pytest.raises(TrainingDiverged, match="step 3: the update gives layer 2 parameters that are NaN or inf") as exc:
        train(model, broken, digits.X_train, digits.y_train, epochs=1, batch_size=16, progress=False)
    assert (exc.value.step, exc.value.layer) == (3, 2) and np.all(np.isfinite(model.biases[1]))


def test_a_diverging_step_leaves_the_model_at_its_last_finite_parameters(digits):
    model = MLP([64, 12, 10], seed=0)
    trainer = Trainer(model, sgd(1e300))
    X, y = digits.X_train[:16], digits.y_train[:16]
    with np.errstate(all="ignore"):
        for _ in range(5):
            before = [p.copy() for pair in model.params for p in pair]
            try:
                trainer.fit_batch(X, y)
            except TrainingDiverged as exc:
                assert exc.step == trainer.step + 1
                break
        else:
            pytest.fail("sgd(1e300) should diverge within 5 steps")
    assert all(np.array_equal(a, b) for a, b in zip(before, [p for pair in model.params for p in pair]))


# ---------------------------------------------------------------------------------------------------------------
# A real kill: SIGKILL to a training process, then resume
# ---------------------------------------------------------------------------------------------------------------
RUN = textwrap.dedent("""
    import sys
    import numpy as np
    from dba_ref import MLP, adam, dba
    from dba_ref.data import load_dataset, make_split
    from dba_ref.training import train
    split = make_split(load_dataset("digits"), per_class=40, seed=0)
    model = MLP([64, 32, 10], seed=0)
    train(model, dba(adam(1e-2)), split.X_train, split.y_train, split.X_test, split.y_test, epochs=8, batch_size=8,
          seed=1, progress=False, checkpoint_dir=sys.argv[1], checkpoint_every=3, resume=True,
          results_path=sys.argv[1] + "/results.json")
    np.savez(sys.argv[2], *model.weights, *model.biases)
""")


def run_to_end(directory, weights):
    proc = subprocess.run([sys.executable, "-c", RUN, str(directory), str(weights)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    with np.load(weights) as archive:
        return [archive[k] for k in sorted(archive.files)]


def test_a_killed_training_process_resumes_to_the_same_weights(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(killed), str(tmp_path / "unused.npz")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint, step = killed / CHECKPOINT_FILE, 0
    deadline = time.monotonic() + 120
    while proc.poll() is None and step < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
        if checkpoint.exists():
            step = read_checkpoint(checkpoint)["step"]          # complete at every moment: written atomically
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    at_kill = read_checkpoint(checkpoint)["step"]
    assert 30 <= at_kill < 8 * 50
    resumed = run_to_end(killed, tmp_path / "resumed.npz")
    reference = run_to_end(tmp_path / "reference", tmp_path / "reference.npz")
    for a, b in zip(resumed, reference):
        np.testing.assert_array_equal(a, b)
    r, ref = (json.loads((d / "results.json").read_text()) for d in (killed, tmp_path / "reference"))
    assert r["steps"] == ref["steps"] and len(r["epochs"]) == len(ref["epochs"]) == 9


# ---------------------------------------------------------------------------------------------------------------
# The CLI options
# ---------------------------------------------------------------------------------------------------------------
def test_cli_checkpoint_options(tmp_path):
    import argparse

    from dba_ref.cli import _checkpointing

    parser = argparse.ArgumentParser()
    _checkpointing.add_arguments(parser)
    none = parser.parse_args([])
    assert _checkpointing.train_kwargs(none, tmp_path) == {"checkpoint_dir": None, "checkpoint_every": None,
                                                           "resume": False}
    args = parser.parse_args(["--resume", "--checkpoint-every", "5"])
    assert _checkpointing.train_kwargs(args, tmp_path) == {"checkpoint_dir": tmp_path / "checkpoint",
                                                           "checkpoint_every": 5, "resume": True}
    args = parser.parse_args(["--checkpoint-dir", str(tmp_path / "x")])
    assert _checkpointing.train_kwargs(args, tmp_path)["checkpoint_dir"] == str(tmp_path / "x")
    with pytest.raises(SystemExit):
        parser.parse_args(["--checkpoint-every", "0"])


def test_cli_train_resume(tmp_path, capsys):
    from dba_ref.cli import main

    argv = ["train", "--dataset", "digits", "--per-class", "10", "--hidden", "16", "--epochs", "2", "--batch-size",
            "25", "--quiet", "--no-plot", "--out", str(tmp_path / "run"), "--checkpoint-every", "3"]
    try:
        code = main(argv)
    except SystemExit:
        pytest.skip("dba-ref train does not have the checkpoint options yet (dba_ref/cli/_checkpointing.py is not "
                    "called by dba_ref/cli/train.py)")
    assert code == 0 and (tmp_path / "run" / "checkpoint" / CHECKPOINT_FILE).exists()
    first = json.loads((tmp_path / "run" / "results.json").read_text())
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err                   # refuses to overwrite
    assert main(argv[:8] + ["3"] + argv[9:] + ["--resume"]) == 0                        # one more epoch
    longer = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(longer["epochs"]) == 4 and longer["steps"]["loss"][:len(first["steps"]["loss"])] == first["steps"]["loss"]
    assert main(argv + ["--resume", "--lr", "0.5"]) == 2
    assert "belongs to another run" in capsys.readouterr().err

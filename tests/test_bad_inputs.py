"""A corpus of bad inputs across the public API and the CLI.

Every case must fail the way a user can act on: a ``ValueError`` or
``TypeError`` whose message names what is wrong (the API), or a one-line
``dba-ref ...: error: ...`` with a non-zero exit status (the CLI). And none
may damage anything: the model every API case is given keeps its parameters,
and files that exist before a failing command (a results file, a checkpoint,
a conformance results file) are byte for byte the same after it.
"""
import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from dba_ref import MLP, adam, backprop, dba, dba_step, gram, make_optimizer, mean_grad, select, sgd
from dba_ref.checkpoint import read_checkpoint, write_checkpoint
from dba_ref.cli import main
from dba_ref.conformance import load_npz
from dba_ref.data import load_dataset, load_mnist5k, make_split, read_idx
from dba_ref.estimator import DBAClassifier
from dba_ref.metrics import subset_stats
from dba_ref.training import History, train

GOOD_X = np.arange(8.0).reshape(2, 4) / 8
GOOD_Y = np.array([0, 2])


def with_value(array, index, value):
    out = np.array(array, dtype=float)
    out[index] = value
    return out


def write_idx(path, array, magic=None, cut=0):
    """An IDX file of ``array`` (uint8); ``magic`` replaces the first 4 bytes; ``cut`` drops bytes from the end."""
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    raw = header + b"".join(int(n).to_bytes(4, "big") for n in array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(raw[:len(raw) - cut] if cut else raw)
    return path


def idx_folder(folder, images=None, labels=None):
    """The four MNIST IDX files in ``folder`` (small and valid unless replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    for name, content in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        if content is not None:
            (folder / name).write_bytes(content)
    return folder


# ---------------------------------------------------------------------------------------------------------------
# The API: (id, call(model, tmp_path), exception, message)
# ---------------------------------------------------------------------------------------------------------------
API_CASES = [
    # X
    ("X NaN", lambda m, t: m.forward(with_value(GOOD_X, (1, 2), np.nan)), ValueError,
     r"X contains NaN or inf \(first at row 1, column 2\)"),
    ("X inf", lambda m, t: backprop(m, with_value(GOOD_X, (0, 0), np.inf), GOOD_Y), ValueError, "X contains NaN or inf"),
    ("X 1-D", lambda m, t: m.forward(GOOD_X[0]), ValueError, r"X must be 2-D \(samples x features\), got shape \(4,\)"),
    ("X 3-D", lambda m, t: m.forward(GOOD_X[None]), ValueError, "X must be 2-D"),
    ("X wrong width", lambda m, t: m.forward(GOOD_X[:, :3]), ValueError, "3 features per sample but the model expects 4"),
    ("X strings", lambda m, t: m.forward(np.array([["a"] * 4])), TypeError, "X must be a numeric array"),
    ("X complex", lambda m, t: m.forward(GOOD_X + 1j), TypeError, "X must be real"),
    ("X None", lambda m, t: m.forward(None), TypeError, "X must be a 2-D numeric array"),
    ("empty batch", lambda m, t: backprop(m, np.zeros((0, 4)), np.zeros(0, int)), ValueError, "empty batch"),
    # y
    ("label negative", lambda m, t: backprop(m, GOOD_X, np.array([0, -1])), ValueError, r"label -1 outside \[0, 3\)"),
    ("label too large", lambda m, t: m.losses(GOOD_X, np.array([3, 0])), ValueError, r"label 3 outside \[0, 3\)"),
    ("labels float", lambda m, t: m.evaluate(GOOD_X, np.array([0.0, 1.0])), TypeError,
     r"integer class labels.*y.astype\(int\)"),
    ("labels bool", lambda m, t: m.losses(GOOD_X, np.array([True, False])), TypeError, "integer class labels"),
    ("labels 2-D", lambda m, t: m.losses(GOOD_X, GOOD_Y[:, None]), ValueError, "y must be 1-D"),
    ("labels count", lambda m, t: m.losses(GOOD_X, np.array([0, 1, 2])), ValueError, "3 labels but X has 2 samples"),
    # weights
    ("weights NaN", lambda m, t: m.set_params([(with_value(m.weights[0], (0, 0), np.nan), m.biases[0]),
                                               *m.params[1:]]), ValueError, "layer 0: parameters contain NaN or inf"),
    ("bias inf", lambda m, t: m.set_params([m.params[0], (m.weights[1], with_value(m.biases[1], 1, -np.inf))]),
     ValueError, "layer 1: parameters contain NaN or inf"),
    ("weights shape", lambda m, t: m.set_params([(m.weights[0].T, m.biases[0]), *m.params[1:]]), ValueError,
     r"layer 0: expected shapes \(5, 4\)"),
    ("weights count", lambda m, t: m.set_params(m.params[:1]), ValueError, "expected 2 .W, b. pairs, got 1"),
    ("train NaN weights", lambda m, t: train(nan_model(), sgd(), GOOD_X, GOOD_Y, progress=False), ValueError,
     "layer 2 has NaN or inf parameters"),
    # the model's own settings
    ("sizes", lambda m, t: MLP([4]), ValueError, "at least an input and an output width"),
    ("width 0", lambda m, t: MLP([4, 0, 3]), ValueError, "every layer width must be an integer >= 1"),
    ("one class", lambda m, t: MLP([4, 1]), ValueError, "at least 2 classes"),
    ("dtype", lambda m, t: MLP([4, 3], dtype=np.float16), TypeError, "dtype must be float32 or float64"),
    ("activation", lambda m, t: MLP([4, 3], activation="gelu"), ValueError, "unknown activation 'gelu'"),
    # selection
    ("min_size > B", lambda m, t: select(np.eye(3), min_size=4), ValueError, r"min_size=4 is larger than the batch"),
    ("min_size 0", lambda m, t: select(np.eye(3), min_size=0), ValueError, "min_size must be >= 1"),
    ("min_size fraction", lambda m, t: select(np.eye(3), min_size=1.5), ValueError, r"fraction must lie in \(0, 1\]"),
    ("min_size str", lambda m, t: select(np.eye(3), min_size="2"), TypeError, "min_size must be an int count"),
    ("min_size bool", lambda m, t: select(np.eye(3), min_size=True), TypeError, "not a bool"),
    ("K not square", lambda m, t: select(np.ones((2, 3))), ValueError, r"square \(B, B\) Gram matrix"),
    ("K NaN", lambda m, t: select(with_value(np.eye(3), (0, 1), np.nan)), ValueError, "K contains NaN or inf"),
    ("K empty", lambda m, t: select(np.zeros((0, 0))), ValueError, "K is empty"),
    ("tol", lambda m, t: select(np.eye(3), tol=1.0), ValueError, r"tol must lie in \[0, 1\)"),
    ("exhaustive B", lambda m, t: select(np.eye(21), strategy="exhaustive"), ValueError, "only for B <= 20"),
    # selections of samples (a batch of 2, GOOD_X's rows as A)
    ("gram of two batches", lambda m, t: gram(GOOD_X[:1], GOOD_X), ValueError, "A has 1 row and D has 2"),
    ("gram of a 1-D array", lambda m, t: gram(GOOD_X[0], GOOD_X), ValueError, "A must be 2-D"),
    ("selection repeated", lambda m, t: mean_grad(GOOD_X, GOOD_X, [1, 1]), ValueError,
     r"indices holds 1 more than once.*np.unique"),
    ("selection out of range", lambda m, t: mean_grad(GOOD_X, GOOD_X, [0, 2]), ValueError,
     r"indices holds 2, outside \[0, 2\) for a batch of 2"),
    ("selection negative", lambda m, t: mean_grad(GOOD_X, GOOD_X, [-1]), ValueError, "negative indices are not accepted"),
    ("selection empty", lambda m, t: mean_grad(GOOD_X, GOOD_X, []), ValueError, "selects no sample"),
    ("selection float", lambda m, t: mean_grad(GOOD_X, GOOD_X, [0.0]), TypeError, r"convert whole numbers with .astype"),
    ("selection mask length", lambda m, t: mean_grad(GOOD_X, GOOD_X, [True, False, True]), ValueError,
     "boolean mask of length 3 for a batch of 2"),
    ("selection rows differ", lambda m, t: mean_grad(GOOD_X, GOOD_X[:1], [0]), ValueError, "A has 2 rows and D has 1"),
    ("subset_stats repeated", lambda m, t: subset_stats(np.eye(3), [2, 2]), ValueError, "indices holds 2 more than once"),
    # names
    ("metric name", lambda m, t: select(np.eye(3), metric="var"), ValueError, "unknown metric 'var'; choose one of"),
    ("strategy name", lambda m, t: dba(sgd(), strategy="best"), ValueError, "unknown strategy 'best'"),
    ("backend name", lambda m, t: dba_step(m, GOOD_X, GOOD_Y, sgd(0.1), backend="gpu"), ValueError, "unknown backend 'gpu'"),
    ("search kernels", lambda m, t: select(np.eye(3), kernels="numba"), TypeError, "kernels must be"),
    ("optimizer name", lambda m, t: make_optimizer("adamw"), ValueError, "unknown optimizer 'adamw'"),
    ("hyper-parameter", lambda m, t: make_optimizer("adam", beta=0.9), TypeError, "has no hyper-parameter beta"),
    ("learning rate", lambda m, t: sgd(-1.0), ValueError, "learning_rate must be > 0"),
    ("beta1", lambda m, t: adam(beta1=1.0), ValueError, r"beta1 must lie in \[0, 1\)"),
    ("dba of dba", lambda m, t: dba(dba(sgd())), ValueError, "which already wraps"),
    ("dba of a name", lambda m, t: dba("sgd"), TypeError, "base must be an Optimizer"),
    # training
    ("train NaN X", lambda m, t: train(m, sgd(), with_value(GOOD_X, (0, 1), np.nan), GOOD_Y, progress=False),
     ValueError, "X contains NaN or inf"),
    ("train epochs", lambda m, t: train(m, sgd(), GOOD_X, GOOD_Y, epochs=0, progress=False), ValueError,
     "epochs must be > 0"),
    ("train test half", lambda m, t: train(m, sgd(), GOOD_X, GOOD_Y, X_test=GOOD_X, progress=False), ValueError,
     "give both X_test and y_test"),
    ("train optimizer", lambda m, t: train(m, "sgd", GOOD_X, GOOD_Y), TypeError, "optimizer must be a dba_ref Optimizer"),
    # files
    ("IDX magic", lambda m, t: read_idx(write_idx(t / "f", np.zeros((2, 2)), magic=b"\x08\x03\x00\x00")), ValueError,
     "not an IDX file .bad magic number 08030000"),
    ("IDX empty", lambda m, t: read_idx(write_idx(t / "f", np.zeros(0), cut=8)), ValueError, "bad magic number empty"),
    ("IDX header cut", lambda m, t: read_idx(write_idx(t / "f", np.zeros((2, 2, 2)), cut=14)), ValueError,
     "truncated IDX header"),
    ("IDX data cut", lambda m, t: read_idx(write_idx(t / "f", np.zeros((3, 4)), cut=1)), ValueError,
     r"11 bytes, the header promises 12 .shape \(3, 4\)."),
    ("IDX gzip corrupt", lambda m, t: read_idx(corrupt_gzip(t / "f.gz")), ValueError, "cannot read IDX file"),
    ("IDX is a folder", lambda m, t: read_idx(t), ValueError, "cannot read IDX file"),
    ("IDX missing", lambda m, t: load_dataset("mnist", t / "none"), FileNotFoundError, "expected the IDX files"),
    ("mnist5k truncated", lambda m, t: truncated_mnist5k(t), ValueError, "unreadable or truncated"),
    ("dataset name", lambda m, t: load_dataset("cifar"), ValueError, "unknown dataset 'cifar'"),
    ("per_class too large", lambda m, t: make_split(load_dataset("digits"), per_class=500), ValueError,
     "only 1\\d\\d samples available, 500 were asked for"),
    ("checkpoint truncated", lambda m, t: read_checkpoint(cut_file(write_checkpoint(t / "c", {"w": np.ones(9)}), 5)),
     ValueError, "truncated"),
    ("results JSON truncated", lambda m, t: History.load(cut_file(History().save(t / "r.json"), 3)), ValueError,
     "Expecting"),
    ("results npz truncated", lambda m, t: load_npz(cut_file(npz_file(t / "r.npz"), 20)), ValueError,
     "not a readable .npz file"),
    # the estimator
    ("estimator NaN", lambda m, t: DBAClassifier().fit(with_value(GOOD_X, (0, 0), np.nan), GOOD_Y), ValueError,
     "Input X contains NaN"),
    ("estimator continuous y", lambda m, t: DBAClassifier().fit(GOOD_X, np.array([0.5, 1.5])), ValueError,
     "Unknown label type"),
]


def nan_model():
    model = MLP([4, 5, 3], seed=0)
    model.biases[1][0] = np.nan            # poked in directly, past set_params' check
    return model


def corrupt_gzip(path):
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(40))[:-12])
    return path


def truncated_mnist5k(folder):
    from dba_ref.data import bundled_data_dir

    (folder / "mnist5k.npz").write_bytes((bundled_data_dir() / "mnist5k.npz").read_bytes()[:5000])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBA_REF_DATA_DIR", str(folder))
        return load_mnist5k()


def cut_file(path, n):
    path.write_bytes(path.read_bytes()[:-n])
    return path


def npz_file(path):
    np.savez(path, a=np.ones(10))
    return path


def test_the_corpus_is_large():
    assert len(API_CASES) >= 20 and len({case[0] for case in API_CASES}) == len(API_CASES)


@pytest.mark.parametrize("call,error,message", [case[1:] for case in API_CASES], ids=[case[0] for case in API_CASES])
def test_api_case_raises_a_named_error_and_damages_nothing(tmp_path, call, error, message):
    model = MLP([4, 5, 3], seed=0)
    before = [p.copy() for pair in model.params for p in pair]
    with np.errstate(all="ignore"), pytest.raises(error, match=message) as exc:
        call(model, tmp_path)
    assert isinstance(exc.value, (ValueError, TypeError, FileNotFoundError))   # a missing file is FileNotFoundError
    after = [p for pair in model.params for p in pair]
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), "the model was changed"


# ---------------------------------------------------------------------------------------------------------------
# The CLI: one line on stderr, non-zero exit, no file touched
# ---------------------------------------------------------------------------------------------------------------
def cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:                   # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, message):
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("dba-ref"), err


TRAIN = ["train", "--epochs", "1", "--quiet", "--no-plot"]


@pytest.mark.parametrize("images,labels,message", [
    (b"\x01\x02\x08\x03" + bytes(100), None, "not an IDX file (bad magic number 01020803)"),
    (b"\x00\x00\x08\x03" + (30).to_bytes(4, "big") + (28).to_bytes(4, "big"), None, "truncated IDX header"),
    (None, b"\x00\x00\x08\x01" + (30).to_bytes(4, "big") + bytes(29), "the file is truncated or corrupt"),
    (b"", None, "bad magic number empty"),
])
def test_cli_refuses_bad_data_files_in_one_line_and_keeps_the_old_results(tmp_path, capsys, images, labels, message):
    data = idx_folder(tmp_path / "idx", images, labels)
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text('{"earlier": "run"}')
    code, err = cli(TRAIN + ["--dataset", "mnist", "--data-dir", str(data), "--out", str(out), "--overwrite"], capsys)
    assert_one_line_error(code, err, message)
    assert (out / "results.json").read_text() == '{"earlier": "run"}'


@pytest.mark.parametrize("argv,message", [
    (["--lr", "-1"], "learning_rate must be > 0"),
    (["--min-size", "100"], "--min-size 100 is larger than the batch"),
    (["--hidden", "0"], "every layer width must be an integer >= 1"),
    (["--hparam", "momentum=0.8"], "has no hyper-parameter momentum"),
    (["--per-class", "501"], "only 500 samples available"),
    (["--resume"], "--overwrite starts the runs again and --resume continues them: choose one"),
])
def test_cli_refused_overwrite_keeps_the_old_run(tmp_path, capsys, argv, message):
    """--overwrite deletes the old files only once everything else has been checked."""
    out = tmp_path / "run"
    (out / "base").mkdir(parents=True)
    old = {out / "results.json": b'{"earlier": "run"}', out / "base" / "results.json": b'{"earlier": "base"}',
           out / "training.png": b"PNG"}
    for path, content in old.items():
        path.write_bytes(content)
    assert_one_line_error(*cli(TRAIN + ["--out", str(out), "--overwrite", *argv], capsys), message)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == old


def test_cli_trains_on_good_idx_files(tmp_path, capsys):
    """The corpus' IDX writer makes valid files: the failures above come from the damage alone."""
    code, err = cli(TRAIN + ["--dataset", "mnist", "--data-dir", str(idx_folder(tmp_path / "idx")), "--per-class",
                             "2", "--hidden", "4", "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err


@pytest.mark.parametrize("argv,message", [
    (TRAIN + ["--min-size", "1.5"], "min_size as a fraction must lie in (0, 1], got 1.5"),
    (TRAIN + ["--backend", "gpu"], "invalid choice: 'gpu'"),
    (TRAIN + ["--optimizer", "momentum", "--hparam", "momentum=abc"], "momentum must be a real number"),
    (TRAIN + ["--tol", "2"], "tol must lie in [0, 1), got 2.0"),
    (TRAIN + ["--hidden", "16,x"], "expected comma-separated integers"),
    (TRAIN + ["--hidden", "0"], "every layer width must be an integer >= 1"),
    (TRAIN + ["--fraction", "2"], "fraction must lie in (0, 1]"),
    (TRAIN + ["--dtype", "float16"], "invalid choice: 'float16'"),
    (TRAIN + ["--dataset", "fashion-mnist", "--data-dir", "/nonexistent"], "expected the IDX files"),
    (["conformance", "check", "/nonexistent/results.npz"], "does not exist"),
])
def test_cli_bad_options_give_one_line(capsys, argv, message):
    assert_one_line_error(*cli(argv, capsys), message)


def test_cli_conformance_check_refuses_a_truncated_results_file_untouched(tmp_path, capsys):
    path = cut_file(npz_file(tmp_path / "results.npz"), 20)
    content = path.read_bytes()
    assert_one_line_error(*cli(["conformance", "check", str(path)], capsys), "is not a readable .npz file")
    assert path.read_bytes() == content


def test_cli_conformance_check_names_the_missing_keys_and_fails(tmp_path, capsys):
    """A results file with missing keys is a failed check, not a crash: exit 1, the keys listed by name."""
    path = tmp_path / "results.npz"
    np.savez(path, **{"small/losses": np.zeros(3)})
    content = path.read_bytes()
    try:
        code = main(["conformance", "check", str(path), "--max-listed", "2"])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    assert code == 1
    missing = out.out.split("missing keys (")[1]
    assert missing.split(")")[0].isdigit() and "deep/losses" in missing
    assert "small/losses has shape (3,), expected (8,)" in out.out
    assert "conformance: FAIL" in out.out and "Traceback" not in out.err
    assert path.read_bytes() == content


def test_cli_error_in_a_real_process_exits_nonzero_with_one_line(tmp_path):
    data = idx_folder(tmp_path / "idx", images=b"\x01\x02\x08\x03" + bytes(50))
    proc = subprocess.run([sys.executable, "-m", "dba_ref", *TRAIN, "--dataset", "mnist", "--data-dir", str(data),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "bad magic number" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_refused_resume_leaves_checkpoint_and_results_untouched(tmp_path):
    split = make_split(load_dataset("digits"), per_class=5, seed=0)
    model = MLP([64, 8, 10], seed=0)
    kwargs = dict(epochs=1, batch_size=10, progress=False, checkpoint_dir=tmp_path / "ck",
                  results_path=tmp_path / "results.json")
    train(model, sgd(0.1), split.X_train, split.y_train, **kwargs)
    files = {p: p.read_bytes() for p in (tmp_path / "results.json", tmp_path / "ck" / "checkpoint.ckpt")}
    trained = [p.copy() for pair in model.params for p in pair]
    with pytest.raises(ValueError, match="belongs to another run"):
        train(model, sgd(0.2), split.X_train, split.y_train, resume=True, **kwargs)
    assert all(p.read_bytes() == content for p, content in files.items())
    assert all(np.array_equal(a, b) for a, b in zip(trained, [p for pair in model.params for p in pair]))
    assert json.loads((tmp_path / "results.json").read_text())["config"]["optimizer"]["learning_rate"] == 0.1

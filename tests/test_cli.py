"""The dba-ref command line."""
import json
import subprocess
import sys

import pytest

from dba_ref.cli import main


def test_train_end_to_end_writes_results_and_figure(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "dba_ref", "train", "--dataset", "digits", "--per-class", "10",
                           "--hidden", "16", "--epochs", "2", "--batch-size", "25", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "final: train loss" in proc.stdout and "mean selected batch size" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["optimizer"]["name"] == "dba(sgd)"
    assert len(results["epochs"]) == 3
    assert (out / "training.png").stat().st_size > 10_000


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--dataset", "--per-class", "--fraction", "--hidden", "--optimizer", "--base", "--lr", "--metric",
                   "--strategy", "--min-size", "--tol", "--backend", "--epochs", "--batch-size", "--seed", "--out"):
        assert option in text


@pytest.mark.parametrize("argv,message", [
    (["train", "--metric", "var"], "invalid choice: 'var'"),
    (["train", "--min-size", "abc"], "expected an integer count or a fraction"),
    (["train", "--batch-size", "big"], "expected a positive integer or 'full'"),
    (["train", "--batch-size", "0"], "expected a positive integer or 'full'"),
    (["train", "--lr", "-1", "--epochs", "1"], "learning_rate must be > 0"),
    (["train", "--hparam", "beta=1", "--epochs", "1"], "has no hyper-parameter beta"),
    (["train", "--min-size", "0", "--epochs", "1"], "min_size must be >= 1"),
    (["train", "--dataset", "mnist", "--epochs", "1"], "needs the official IDX files"),
    (["train", "--per-class", "501", "--epochs", "1"], "only 500 samples available"),
    (["train", "--epochs", "0"], "expected a positive integer, got 0"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_bad_options_give_a_one_line_error(capsys, argv, message):
    try:
        code = main(argv)
    except SystemExit as exc:       # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err

"""The dba-ref command line: the main job, its learning rates, its output folder, its help and its errors."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dba_ref.cli import _run_folder, _validated, build_parser, main, subcommands
from dba_ref.cli import train as train_cli

REPO = Path(__file__).resolve().parents[1]
#: A small, fast run: 10 digits per class of scikit-learn's 8x8 digits, 2 epochs.
SMALL = ["--dataset", "digits", "--per-class", "10", "--hidden", "16", "--epochs", "2", "--batch-size", "25", "--quiet"]


def replaced(argv, option, value):
    """``argv`` with ``option``'s value replaced."""
    i = argv.index(option)
    return [*argv[:i + 1], value, *argv[i + 2:]]


def cli(argv, capsys):
    """Exit status, stdout and stderr of ``dba-ref ARGV`` run in this process."""
    try:
        code = main(argv)
    except SystemExit as exc:       # argparse's own errors and --help
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def files_of(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------------------------
# The main job: DBA next to its base optimizer
# ---------------------------------------------------------------------------------------------------------------
def test_train_compares_dba_with_its_base_on_the_same_split_seed_and_budget(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "dba_ref", "train", *SMALL, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    dba_run = json.loads((out / "results.json").read_text())
    base_run = json.loads((out / "base" / "results.json").read_text())
    assert dba_run["config"]["optimizer"]["name"] == "dba(adam)" and base_run["config"]["optimizer"]["name"] == "adam"
    assert dba_run["config"]["optimizer"]["strategy"] == "prefix"
    for key in ("epochs", "batch_size", "seed", "n_train", "n_test", "model"):
        assert dba_run["config"][key] == base_run["config"][key], key
    # the same split and initial weights: the evaluation before training is the same number
    assert dba_run["epochs"][0] == {**base_run["epochs"][0], "seconds": dba_run["epochs"][0]["seconds"]}
    assert len(dba_run["epochs"]) == len(base_run["epochs"]) == 3
    assert (out / "training.png").stat().st_size > 10_000
    summary = proc.stdout
    assert "DBA(adam) mean_variance/prefix" in summary and "\nadam " in summary
    assert "layer 1:" in summary and "layer 2:" in summary          # samples DBA kept, per layer
    assert "not settings the reproduction validated" in summary and "97.79% " in summary
    assert summary.count(" s\n") == 2                                  # each run's time
    assert len(summary.splitlines()) <= 8                              # one screen
    assert "the optimizer's default" in summary and "(DBA's)" in summary


def test_no_compare_trains_one_run(tmp_path, capsys):
    code, out, err = cli(["train", *SMALL, "--no-compare", "--no-plot", "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["results.json"]
    assert len([line for line in out.splitlines() if line.startswith("DBA(adam)")]) == 1


def plan(*argv):
    args = build_parser().parse_args(["train", *argv])
    return [(r.label, r.learning_rate, r.rate_source) for r in train_cli.plan_runs(args, Path("out"))]


def test_default_learning_rates_are_the_validated_ones():
    assert plan() == [("DBA(adam) mean_variance/prefix", 0.00316, "validated"), ("adam", 0.000316, "validated")]
    assert plan("--base", "sgd", "--strategy", "greedy") == [("DBA(sgd) mean_variance/greedy", 0.1, "validated"),
                                                             ("sgd", 0.316, "validated")]
    assert plan("--optimizer", "diffgrad") == [("diffgrad", 0.01, "validated")]
    # epochs, seed, dtype and backend do not change which rate was validated
    assert plan("--epochs", "3", "--seed", "7", "--dtype", "float32", "--backend", "numba")[1][1:] == (0.000316,
                                                                                                      "validated")


def test_given_learning_rates_win_and_unknown_settings_fall_back():
    assert plan("--lr", "0.01") == [("DBA(adam) mean_variance/prefix", 0.01, "--lr"), ("adam", 0.000316, "validated")]
    assert plan("--base-lr", "0.002")[1] == ("adam", 0.002, "--base-lr")
    assert plan("--hparam", "learning_rate=0.02")[0][1:] == (0.02, "--lr")
    for other in (["--hidden", "128"], ["--per-class", "10"], ["--batch-size", "32"], ["--hparam", "beta1=0.8"],
                  ["--dataset", "digits"], ["--activation", "tanh"]):
        assert plan(*other) == [("DBA(adam) mean_variance/prefix", 0.001, "the optimizer's default"),
                                ("adam", 0.001, "DBA's")], other
    # a DBA method the cell did not run: its base's default rate, while the base alone keeps its validated one
    assert plan("--min-size", "3") == [("DBA(adam) mean_variance/prefix min 3", 0.001, "the optimizer's default"),
                                       ("adam", 0.000316, "validated")]


def test_validated_rates_are_those_of_the_reproduction():
    path = REPO / "docs" / "reproduction" / "summary.json"
    if not path.exists():
        pytest.skip("docs/reproduction/summary.json is in the source checkout only")
    cells = json.loads(path.read_text())["cells"]
    cell = next(c for c in cells if c["reading"] == "main" and c["setting"] == "mnist5k-pc60-h256-b64-e100-v50")
    recorded = {m["method"]["key"]: _validated.Validated(m["learning_rate"], round(m["mean"], 2), round(m["std"], 2))
                for m in cell["methods"]}
    assert _validated.METHODS == recorded
    report = (REPO / "docs" / "reproduction.md").read_text()
    assert f"### {_validated.CELL}\n" in report
    assert f"| mnist5k | 60/class | {_validated.PAPER_ACCURACY} |" in report


# ---------------------------------------------------------------------------------------------------------------
# The output folder: named by every result-changing option, never replaced silently
# ---------------------------------------------------------------------------------------------------------------
def folder_name(*argv):
    parser = build_parser()
    return _run_folder.default_name(parser.parse_args(["train", *argv]), train_cli.defaults())


def test_default_folder_names_every_option_that_changes_the_results():
    assert folder_name() == "mnist5k-dba-adam-s0"
    assert folder_name("--strategy", "greedy", "--epochs", "20") == "mnist5k-dba-adam-strategy=greedy-epochs=20-s0"
    assert folder_name("--optimizer", "sgd", "--seed", "3") == "mnist5k-sgd-s3"
    assert folder_name("--hparam", "momentum=0.8", "--base", "momentum") == "mnist5k-dba-momentum-momentum=0.8-s0"
    # every option is in the name when it differs from its default, unless it changes nothing computed
    examples = {"--per-class": "10", "--fraction": "0.1", "--hidden": "32,16", "--activation": "tanh",
                "--dtype": "float32", "--lr": "0.01", "--base-lr": "0.01", "--hparam": "beta1=0.8",
                "--no-compare": None, "--metric": "variance", "--strategy": "greedy", "--min-size": "0.5",
                "--tol": "0.05", "--backend": "numba", "--epochs": "3", "--batch-size": "full"}
    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    options = {a.option_strings[0]: a.dest for a in train_parser._actions if a.option_strings}
    assert {o for o, dest in options.items() if dest not in _run_folder.NOT_IN_NAME} - {"-h"} == set(examples)
    names = {option: folder_name(option, *([value] if value else [])) for option, value in examples.items()}
    assert len(set(names.values()) | {folder_name()}) == len(examples) + 1, names


def test_a_second_run_into_the_same_folder_is_refused_and_changes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli(["train", *SMALL], capsys)[0] == 0
    run = tmp_path / "runs" / "digits-dba-adam-per-class=10-hidden=16-epochs=2-batch-size=25-s0"
    assert run.name == folder_name(*SMALL)
    before = files_of(run)
    assert {p.relative_to(run).as_posix() for p in before} == {"results.json", "base/results.json", "training.png"}
    code, out, err = cli(["train", *SMALL], capsys)
    assert code == 2 and "already holds a run" in err and "--overwrite" in err and "--resume" in err
    assert len(err.strip().splitlines()) == 1
    assert files_of(run) == before
    # another strategy is another folder
    assert cli(["train", *SMALL, "--strategy", "greedy", "--no-plot"], capsys)[0] == 0
    assert (run.parent / folder_name(*SMALL, "--strategy", "greedy") / "results.json").exists()
    assert files_of(run) == before
    # --overwrite replaces the run
    code, out, err = cli(["train", *SMALL, "--overwrite", "--seed", "0"], capsys)
    assert code == 0, err
    after = files_of(run)
    assert after.keys() == before.keys() and all(after[p][1] > before[p][1] for p in before)


def test_overwrite_without_a_figure_removes_the_old_one(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", *SMALL, "--out", str(out)], capsys)[0] == 0
    assert cli(["train", *SMALL, "--out", str(out), "--overwrite", "--no-plot"], capsys)[0] == 0
    assert not (out / "training.png").exists()          # a figure of the old run would describe the wrong one


def test_resume_needs_a_checkpoint_and_continues_both_runs(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", *SMALL, "--out", str(out), "--no-plot"], capsys)[0] == 0
    before = files_of(out)
    code, _, err = cli(["train", *SMALL, "--out", str(out), "--no-plot", "--resume"], capsys)
    assert code == 2 and "has no checkpoint to resume from" in err and len(err.strip().splitlines()) == 1
    assert files_of(out) == before
    other = tmp_path / "other"
    assert cli(["train", *SMALL, "--out", str(other), "--no-plot", "--checkpoint-every", "3"], capsys)[0] == 0
    assert (other / "checkpoint" / "checkpoint.ckpt").exists() and (other / "base" / "checkpoint" /
                                                                     "checkpoint.ckpt").exists()
    longer = replaced(SMALL, "--epochs", "3")
    assert cli(["train", *longer, "--out", str(other), "--no-plot", "--checkpoint-every", "3", "--resume"],
               capsys)[0] == 0
    for results in (other / "results.json", other / "base" / "results.json"):
        assert len(json.loads(results.read_text())["epochs"]) == 4


def test_resume_of_a_finished_run_says_it_is_complete_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", *SMALL, "--out", str(out), "--checkpoint-every", "3"], capsys)[0] == 0
    before = files_of(out)
    code, stdout, err = cli(["train", *SMALL, "--out", str(out), "--checkpoint-every", "3", "--resume"], capsys)
    assert code == 0, err
    assert err.strip() == (f"{out}: complete, each run has trained all 2 epochs already; nothing to train, nothing "
                           "rewritten (a larger --epochs with --resume continues it, --overwrite trains it again)")
    assert "training" not in err and "wrote" not in stdout and "test acc" in stdout     # the summary, from disk
    assert files_of(out) == before
    # a checkpoint of other options is still refused, not called complete
    code, _, err = cli(["train", *replaced(SMALL, "--batch-size", "20"), "--out", str(out), "--checkpoint-every",
                        "3", "--resume"], capsys)
    assert code == 2 and "belongs to another run" in err and "complete" not in err
    assert files_of(out) == before
    # a figure that is missing (the command stopped before drawing it) is drawn, and only it
    (out / "training.png").unlink()
    code, stdout, err = cli(["train", *SMALL, "--out", str(out), "--checkpoint-every", "3", "--resume"], capsys)
    assert code == 0 and stdout.strip().endswith(f"wrote {out / 'training.png'}")
    after = files_of(out)
    assert {p: v for p, v in after.items() if p.name != "training.png"} == {
        p: v for p, v in before.items() if p.name != "training.png"}


def test_progress_to_a_file_is_one_line_per_epoch(tmp_path, capsys):
    """stderr is not a terminal here (as with ``dba-ref train 2> log``): no bar redrawn with ``\\r``."""
    argv = ["train", *[a for a in SMALL if a != "--quiet"], "--out", str(tmp_path / "run"), "--no-plot"]
    code, _, err = cli(argv, capsys)
    assert code == 0 and "\r" not in err
    epochs = [line.split(" (")[0] for line in err.splitlines() if ": epoch " in line]
    assert epochs == ["dba(adam): epoch 1/2", "dba(adam): epoch 2/2", "adam: epoch 1/2", "adam: epoch 2/2"]


def test_overwrite_and_resume_together_are_refused(tmp_path, capsys):
    code, _, err = cli(["train", *SMALL, "--out", str(tmp_path), "--overwrite", "--resume"], capsys)
    assert code == 2 and "choose one" in err


def test_explicit_checkpoint_dir_gives_the_comparison_run_its_own_subfolder(tmp_path, capsys):
    code, _, err = cli(["train", *SMALL, "--out", str(tmp_path / "run"), "--no-plot", "--checkpoint-dir",
                        str(tmp_path / "ck")], capsys)
    assert code == 0, err
    assert (tmp_path / "ck" / "checkpoint.ckpt").exists() and (tmp_path / "ck" / "base" / "checkpoint.ckpt").exists()


# ---------------------------------------------------------------------------------------------------------------
# Help and errors
# ---------------------------------------------------------------------------------------------------------------
def subparser(name):
    return build_parser()._subparsers._group_actions[0].choices[name]


def options(parser):
    """Every option of ``parser`` and of its subcommands, as (command, action)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from options(sub)
        elif action.option_strings:
            yield parser.prog, action


@pytest.mark.parametrize("command", [module.NAME for module in subcommands()])
def test_help_gives_every_option_a_default(command):
    """Every option that takes a value says its default (or what happens without it) in --help."""
    for prog, action in options(subparser(command)):
        if action.nargs != 0:
            assert "default" in (action.help or ""), (prog, action.option_strings)


def test_help_documents_every_option(capsys):
    code, out, _ = cli(["train", "--help"], capsys)
    assert code == 0
    for option in ("--dataset", "--per-class", "--fraction", "--hidden", "--optimizer", "--base", "--lr", "--base-lr",
                   "--no-compare", "--metric", "--strategy", "--min-size", "--tol", "--backend", "--epochs",
                   "--batch-size", "--seed", "--out", "--overwrite", "--resume"):
        assert option in out
    assert "(default: prefix, " in out and "(default: mean_variance)" in out and "(default: 100)" in out
    # where the command's defaults differ from the library's, the help says so and why
    flat = " ".join(out.split())
    assert "the library's dba() defaults to greedy" in flat and "(default: adam, " in flat


def test_optimizers_lists_dba(capsys):
    code, out, _ = cli(["optimizers"], capsys)
    assert code == 0 and out.startswith("dba ") and "[per-sample]" in out.splitlines()[0]
    code, out, _ = cli(["optimizers", "dba"], capsys)
    assert code == 0 and "defaults: base, metric='mean_variance', strategy='greedy', min_size=2" in out


def test_checkpoint_options_do_not_import_the_train_command():
    """The import circle _checkpointing <-> train is gone: the shared argument types live in _types."""
    code = "import sys, dba_ref.cli._checkpointing; print('dba_ref.cli.train' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("argv,message", [
    (["train", "--metric", "var"], "invalid choice: 'var'"),
    (["train", "--min-size", "abc"], "expected an integer count or a fraction"),
    (["train", "--batch-size", "big"], "expected a positive integer or 'full'"),
    (["train", "--batch-size", "0"], "expected a positive integer or 'full'"),
    (["train", "--lr", "-1", "--epochs", "1"], "learning_rate must be > 0"),
    (["train", "--base-lr", "0", "--epochs", "1"], "learning_rate must be > 0"),
    (["train", "--hparam", "beta=1", "--epochs", "1"], "has no hyper-parameter beta"),
    (["train", "--hparam", "momentum=0.8", "--epochs", "1"], "optimizer 'adam' has no hyper-parameter momentum"),
    (["train", "--min-size", "0", "--epochs", "1"], "min_size must be >= 1"),
    (["train", "--min-size", "100", "--epochs", "1"], "--min-size 100 is larger than the batch (64 samples)"),
    (["train", "--min-size", "100", "--batch-size", "full", "--per-class", "5", "--epochs", "1"],
     "--min-size 100 is larger than the batch (50 samples)"),
    (["train", "--hidden", "256,,128"], "expected comma-separated integers such as 256,128, got '256,,128'"),
    (["train", "--hidden", "256,"], "expected comma-separated integers"),
    (["train", "--optimizer", "adam", "--metric", "variance", "--epochs", "1"],
     "--metric applies only to --optimizer dba; drop it, or train --optimizer dba --base adam"),
    (["train", "--optimizer", "sgd", "--base-lr", "0.1", "--no-compare", "--epochs", "1"],
     "--base-lr, --no-compare apply only to --optimizer dba"),
    (["train", "--dataset", "mnist", "--epochs", "1"], "needs the official IDX files"),
    (["train", "--per-class", "501", "--epochs", "1"], "only 500 samples available"),
    (["train", "--epochs", "0"], "expected a positive integer, got 0"),
    (["optimizers", "adamw"], "unknown optimizer 'adamw'"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_bad_options_give_a_one_line_error_and_write_nothing(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(argv, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_hidden_layer_list_can_be_empty(capsys, tmp_path):
    """``--hidden ''`` is a model without hidden layer (multinomial logistic regression), not an error."""
    code, _, err = cli(["train", *SMALL, "--hidden", "", "--no-plot", "--no-compare", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "results.json").read_text())["config"]["model"]["sizes"] == [64, 10]


def test_one_epoch_is_counted_in_the_singular(capsys, tmp_path):
    """Issue 11's "keep 1 samples": every count the run prints agrees with its noun."""
    code, out, err = cli(["train", *replaced(SMALL, "--epochs", "1"), "--no-plot", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "1 epoch;" in err and "1 epoch of 100 training images" in out
    assert "1 epochs" not in out + err


# ---------------------------------------------------------------------------------------------------------------
# The figure
# ---------------------------------------------------------------------------------------------------------------
def colour(artist):
    from matplotlib.colors import to_hex

    return to_hex(artist.get_color() if hasattr(artist, "get_color") and not hasattr(artist, "get_edgecolor")
                  else artist.get_edgecolor())


def test_the_figure_explains_every_line_and_counts_epochs_in_integers(tmp_path, capsys):
    from dba_ref.plots import plot_runs
    from dba_ref.training import History

    out = tmp_path / "run"
    assert cli(["train", *SMALL, "--out", str(out), "--no-plot"], capsys)[0] == 0
    runs = {"dba(adam)": History.load(out / "results.json"), "adam": History.load(out / "base" / "results.json")}
    fig = plot_runs(runs)
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"dba(adam): train", "dba(adam): test", "adam: train", "adam: test"} <= legend
    # 100 training images in batches of 25: no truncated batch, so no dip to explain
    assert "batch size" in legend and "kept in layer 1 (thin: each step; thick: mean over the epoch)" in legend
    legend_colours = {colour(handle) for handle in fig.legends[0].legend_handles}
    for ax in fig.axes:
        assert all(float(t).is_integer() for t in ax.get_xticks()), ax.get_xticks()
        for line in [*ax.get_lines(), *ax.patches]:             # every line is named, or drawn in a named colour
            assert line.get_label() in legend or colour(line) in legend_colours, line
    uneven = replaced(SMALL, "--batch-size", "32")                 # 100 = 3 x 32 + 4
    assert cli(["train", *uneven, "--out", str(tmp_path / "uneven"), "--no-plot", "--no-compare"], capsys)[0] == 0
    fig = plot_runs({"dba(adam)": History.load(tmp_path / "uneven" / "results.json")})
    assert any("dips to 4 at each epoch's last batch: 100 = 3×32 + 4" in t.get_text()
               for t in fig.legends[0].get_texts())
    kept_panel = fig.axes[2]
    assert kept_panel.get_yscale() == "log" and np.isclose(kept_panel.get_xlim()[1], 2)


def test_the_test_set_is_evaluated_about_ten_times_a_run_and_the_figure_says_so(tmp_path, capsys):
    from dba_ref.plots import plot_runs
    from dba_ref.training import History

    assert train_cli.test_every(build_parser().parse_args(["train"])) == 10               # the main job: 100 epochs
    assert train_cli.test_every(build_parser().parse_args(["train", "--epochs", "25"])) == 3
    assert train_cli.test_every(build_parser().parse_args(["train", "--epochs", "5"])) == 1
    assert train_cli.test_every(build_parser().parse_args(["train", "--test-every", "4"])) == 4
    run = replaced(SMALL, "--epochs", "7") + ["--test-every", "3", "--no-compare", "--no-plot"]
    code, out, err = cli(["train", *run, "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["test_every"] == 3
    assert [row["epoch"] for row in results["epochs"] if "test_acc" in row] == [0, 3, 6, 7]
    assert f"{100 * results['epochs'][-1]['test_acc']:.2f}%" in out                        # the summary's final test
    fig = plot_runs({"dba(adam)": History.load(tmp_path / "run" / "results.json")})
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"train", "test (every 3 epochs)"} <= legend
    test_line = next(line for line in fig.axes[1].get_lines() if line.get_label() == "test (every 3 epochs)")
    assert list(test_line.get_xdata()) == [0, 3, 6, 7] and test_line.get_marker() == "o"
    assert "test-every" not in str(tmp_path / "run") and "test_every" in _run_folder.NOT_IN_NAME
    code, _, err = cli(["train", *run, "--out", str(tmp_path / "run"), "--test-every", "0"], capsys)
    assert code == 2 and "--test-every" in err


def test_a_run_killed_while_training_leaves_its_log_which_the_folder_rule_protects(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text('{"config": {}, "epochs": [], "steps": {}}\n')       # what a kill leaves
    code, _, err = cli(["train", *SMALL, "--no-compare", "--no-plot", "--out", str(out)], capsys)
    assert code == 2 and "results.jsonl" in err and "--overwrite" in err
    code, _, err = cli(["train", *SMALL, "--no-compare", "--no-plot", "--out", str(out), "--resume"], capsys)
    assert code == 2 and "no checkpoint to resume from" in err
    code, _, err = cli(["train", *SMALL, "--no-compare", "--no-plot", "--out", str(out), "--overwrite"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]

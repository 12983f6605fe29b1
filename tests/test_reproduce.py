"""`dba-ref reproduce`: the smoke run end to end, resuming, fair tuning, the Σ/B reading, the report."""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from dba_ref import MLP, adam, backprop, dba, sgd
from dba_ref.cli import main
from dba_ref.optimizers import OPTIMIZERS
from dba_ref.reproduction import Method, full_protocol, quick_protocol, run_protocol, sum_over_batch
from dba_ref.reproduction import report as report_module
from dba_ref.reproduction.collect import CellResult, MethodResult, collect
from dba_ref.reproduction.figures import accuracy_axis_start
from dba_ref.reproduction.protocol import PAPER, Setting
from dba_ref.reproduction.provenance import read_provenance, this_machine
from dba_ref.reproduction.report import write_report
from dba_ref.reproduction.runner import choose_learning_rate, tuning_runs
from dba_ref.reproduction.runs import run_path, write_json
from dba_ref.reproduction.statements import claim_statements, summary_statement
from dba_ref.reproduction.statistics import rer


def _run_files(out):
    return sorted(p for p in (out / "runs").rglob("*.json"))


def _unique_runs(protocol):
    """Distinct runs the protocol asks for once every tuning has finished (shared runs counted once)."""
    return {(c.setting.key, role, seed, m.key) for c in protocol.cells for m in c.methods
            for role, seeds in (("tune", [(s, lr) for lr in m.learning_rates(protocol.lr_multipliers)
                                          for s in protocol.tune_seeds]),
                                (c.final_role, [(s, None) for s in protocol.final_seeds]))
            for seed in seeds}


@pytest.fixture(scope="module")
def quick_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    assert main(["reproduce", "--quick", "--out", str(out), "--quiet"]) == 0
    return out


def test_quick_in_an_empty_folder_says_which_runs_it_did_not_train(tmp_path, capsys):
    """The Σ/B cell asks again for the main cell's SGD runs: trained once, and said so (not "already finished")."""
    assert main(["reproduce", "--quick", "--out", str(tmp_path), "--quiet"]) == 0
    shared = quick_protocol().n_runs(scheduled=True) - len(_unique_runs(quick_protocol()))
    assert shared == 4
    assert (f"{len(_unique_runs(quick_protocol()))} runs trained, 0 found finished on disk (not redone), "
            f"{shared} asked for by a second cell too (trained once), 0 failed") in capsys.readouterr().out


def test_quick_writes_every_run_and_the_report(quick_out, capsys):
    files = _run_files(quick_out)
    assert len(files) == len(_unique_runs(quick_protocol()))
    for name in ("report.md", "table.md", "summary.json"):
        assert (quick_out / name).is_file()
    figures = sorted(p.name for p in (quick_out / "figures").glob("*.png"))
    assert any(n.startswith("selected-main") for n in figures) and any(n.startswith("accuracy-main") for n in figures)
    report = (quick_out / "report.md").read_text()
    assert "smoke run" in report and "## Plain statement" in report and "nothing: every run" in report
    # the smoke run's own 10-per-class main cell is judged; it has none for 60 per class
    assert "no MNIST-5k main cell for 10 per class" not in report and "**In short:" in report
    assert "Not run: this protocol has no MNIST-5k main cell for 60 per class." in report


def test_quick_accuracy_charts_keep_every_compared_method_on_scale(quick_out):
    for c in collect(quick_protocol(), quick_out):
        start = accuracy_axis_start(c)
        compared = [c.get("sgd"), c.get("adam"), c.best_baseline(), c.best_dba("sgd"), c.best_dba("adam")]
        assert all(m.mean > start for m in compared if m is not None), c.cell.name


def test_report_only_rewrites_the_same_bytes_and_names_the_machine_of_the_runs(quick_out):
    written = {name: (quick_out / name).read_bytes() for name in ("report.md", "table.md", "summary.json")}
    assert this_machine() in written["report.md"].decode().splitlines()[2]
    assert read_provenance(quick_out) == {"machines": [this_machine()], "notes": []}
    assert main(["reproduce", "--quick", "--out", str(quick_out), "--report-only"]) == 0
    assert {name: (quick_out / name).read_bytes() for name in written} == written


def test_notes_are_kept_with_the_runs(quick_out, capsys):
    assert main(["reproduce", "--quick", "--out", str(quick_out), "--report-only", "--note", "Made in a test."]) == 0
    assert main(["reproduce", "--quick", "--out", str(quick_out), "--report-only"]) == 0
    assert "- Made in a test.\n" in (quick_out / "report.md").read_text()
    assert read_provenance(quick_out)["notes"] == ["Made in a test."]


def test_report_only_refuses_a_folder_without_runs_and_writes_nothing(tmp_path, capsys):
    report = tmp_path / "page.md"
    assert main(["reproduce", "--full", "--out", str(tmp_path / "typo"), "--report", str(report), "--report-only"]) == 2
    assert "holds no runs" in capsys.readouterr().err
    assert not report.exists() and not (tmp_path / "typo").exists()


def test_a_damaged_provenance_file_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "provenance.json").write_text('{"machines": "one"}')
    with pytest.raises(ValueError, match="fix or delete it"):
        read_provenance(tmp_path)


def test_the_committed_report_is_rederived_byte_for_byte(tmp_path, monkeypatch):
    """docs/reproduction.md, table.md and summary.json from the committed runs (figures: their links only)."""
    docs = Path(__file__).resolve().parents[1] / "docs"
    out = tmp_path / "reproduction"
    out.mkdir()
    (out / "runs").symlink_to(docs / "reproduction" / "runs")
    shutil.copy(docs / "reproduction" / "provenance.json", out)
    for plot in ("plot_accuracy", "plot_selected", "plot_convergence"):   # drawing takes long; every committed
        monkeypatch.setattr(report_module, plot, lambda cell, path: path)   # cell has its figures
    command = "dba-ref reproduce --full --out docs/reproduction --report docs/reproduction.md"
    write_report(full_protocol(), out, tmp_path / "reproduction.md", command=command)
    assert (tmp_path / "reproduction.md").read_bytes() == (docs / "reproduction.md").read_bytes()
    for name in ("table.md", "summary.json"):
        assert (out / name).read_bytes() == (docs / "reproduction" / name).read_bytes(), name


def test_tuning_never_sees_the_test_set_and_finals_see_it_once(quick_out):
    for path in _run_files(quick_out):
        record = json.loads(path.read_text())
        has_test = "test_acc" in record["result"]
        assert has_test == (record["role"] != "tune"), path
        assert not any(k.startswith("test") for k in record.get("curves", {})), path      # not every epoch


def test_resume_redoes_nothing_and_retrains_only_what_is_missing(quick_out, capsys):
    before = {p: p.stat().st_mtime_ns for p in _run_files(quick_out)}
    assert main(["reproduce", "--quick", "--out", str(quick_out), "--quiet"]) == 0
    assert "0 runs trained" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in _run_files(quick_out)} == before

    victim = next(p for p in before if "final-s1" in p.parts[-2])
    victim.unlink()
    assert main(["reproduce", "--quick", "--out", str(quick_out), "--quiet"]) == 0
    assert "1 runs trained" in capsys.readouterr().out
    assert victim.is_file()


def test_a_stopped_reproduction_reports_what_was_not_run(tmp_path):
    protocol = quick_protocol()
    counts = run_protocol(protocol, tmp_path, progress=False, deadline=0.0)
    assert counts == {"done": 0, "skipped": 0, "shared": 0, "failed": 0, "stopped": "time limit reached"}
    report = write_report(protocol, tmp_path, tmp_path / "report.md", counts=counts).read_text()
    assert "**Not run.**" in report and "stopped early: time limit reached" in report
    assert "nothing: every run" not in report


def test_the_report_lists_only_failures_not_yet_redone(tmp_path):
    protocol = quick_protocol()
    cell, method = protocol.cells[0], protocol.cells[0].methods[0]
    lr = method.learning_rates(protocol.lr_multipliers)[0]
    redone, missing = (run_path(tmp_path, cell.setting, "tune", s, method, lr).relative_to(tmp_path).as_posix()
                       for s in (100, 101))
    write_json(tmp_path / redone, {"result": {"diverged": True, "train_seconds": 1.0}})
    write_json(tmp_path / "failures.json", [{"run": redone, "error": "E: one"}, {"run": missing, "error": "E: two"}])
    report = write_report(protocol, tmp_path, tmp_path / "report.md").read_text()
    assert f"failed (retried by the next invocation): {missing}: E: two" in report and "E: one" not in report


def test_every_method_gets_the_same_tuning_budget_and_new_optimizers_join(monkeypatch):
    monkeypatch.setitem(OPTIMIZERS, "sgd_twin", (sgd, "a registry newcomer"))
    protocol = full_protocol()
    main_cells = [c for c in protocol.cells if c.reading == "main"]
    assert {c.setting.hidden for c in main_cells} == {256}
    assert {c.setting.dataset for c in main_cells} == {"mnist5k", "fashion-mnist"}
    assert {c.setting.per_class for c in main_cells} == set(PAPER) == {10, 60}
    assert len(protocol.final_seeds) >= 5 and not set(protocol.final_seeds) & set(protocol.tune_seeds)
    for cell in protocol.cells:
        per_method = {}
        for method in cell.methods:
            per_method[method.key] = sum(1 for _ in tuning_runs(protocol, cell, method))
        assert set(per_method.values()) == {protocol.tuning_budget}, cell.name
    keys = {m.key for m in main_cells[0].methods}
    assert set(OPTIMIZERS) <= keys
    assert {"dba-sgd-mean_variance-prefix-m2-t0", "dba-adam-normalized_variance-greedy-m2-t0"} <= keys
    assert not any("exhaustive" in k for k in keys)


def _fake_tuning(out, protocol, setting, method, accs):
    for lr, acc in zip(method.learning_rates(protocol.lr_multipliers), accs):
        diverged = acc is None
        write_json(run_path(out, setting, "tune", protocol.tune_seeds[0], method, lr),
                   {"result": {"diverged": diverged, "val_acc": 0.0 if diverged else acc, "val_loss": 1.0}})


def test_learning_rate_is_chosen_on_validation_ties_to_the_smaller_and_never_a_diverged_run(tmp_path):
    protocol = full_protocol(datasets=("mnist5k",))
    setting = Setting("mnist5k", 10, 256, 64, 100, 50)
    method = Method("sgd")
    grid = method.learning_rates(protocol.lr_multipliers)
    _fake_tuning(tmp_path, protocol, setting, method, [0.5, 0.9, 0.9, 0.7, None])
    lr, scores = choose_learning_rate(protocol, setting, method, tmp_path)
    assert lr == grid[1] and scores[grid[4]][0] == -math.inf
    run_path(tmp_path, setting, "tune", protocol.tune_seeds[0], method, grid[0]).unlink()
    assert choose_learning_rate(protocol, setting, method, tmp_path)[0] is None     # tuning incomplete


def test_sum_over_batch_scales_each_layer_by_its_kept_fraction():
    model = MLP([6, 5, 3], seed=1)
    rng = np.random.default_rng(0)
    signals = backprop(model, rng.normal(size=(16, 6)), rng.integers(0, 3, 16))
    reference = dba(sgd(0.1))
    ref_updates, ref_state = reference.update(None, reference.init(model.params), model.params, signals=signals)
    reading = sum_over_batch(dba(sgd(0.1)))
    updates, state = reading.update(None, reading.init(model.params), model.params, signals=signals)
    assert reading.name == "dba(sgd)/B" and reading.hyperparams["normalise"] == "batch"
    two_roundings = 2 * np.finfo(np.float64).eps       # a product and a division, each within ε relative
    for (W, b), (W_ref, b_ref), step in zip(updates, ref_updates, state.last):
        assert 2 <= step.size < 16
        np.testing.assert_allclose(W, W_ref * step.size / 16, rtol=two_roundings, atol=0)
        np.testing.assert_allclose(b, b_ref * step.size / 16, rtol=two_roundings, atol=0)
    with pytest.raises(ValueError, match="plain SGD"):
        sum_over_batch(dba(adam()))
    with pytest.raises(ValueError, match="plain SGD"):
        sum_over_batch(sgd())
    with pytest.raises(TypeError):
        sum_over_batch("dba")


def test_relative_error_reduction_matches_the_paper_arithmetic():
    for claim in PAPER.values():
        # a few operations on percentages below 100: their rounding, ε·100 each, times a safety factor 8
        assert rer(claim["dba"], claim["baseline"]) == pytest.approx(claim["rer"], abs=8 * 100 * np.finfo(float).eps)
    assert rer(90.0, 80.0) == pytest.approx(50.0)


def test_cli_rejects_bad_options(capsys):
    assert main(["reproduce", "--quick", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main(["reproduce", "--quick", "--jobs", "-1"]) == 2
    assert "--jobs must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reproduce", "--quick", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:8786"])
    with pytest.raises(SystemExit):
        main(["reproduce", "--quick", "--full"])


def test_accuracy_axis_clips_only_failures_far_below_the_best():
    cell = next(c for c in full_protocol(datasets=("mnist5k",)).cells if c.reading == "main")
    good = [_fake_method(Method("sgd"), [88.0, 88.4], val=0.88), _fake_method(Method("adam"), [88.5, 88.9], val=0.87),
            _fake_method(Method("sgd", dba=True), [89.0, 89.2], val=0.9)]
    failure = _fake_method(Method("sgd", dba=True, metric="variance"), [10.0, 10.4], val=0.1)
    start = accuracy_axis_start(CellResult(cell, good + [failure], planned=20, finished=20))
    assert failure.mean < start < min(m.mean for m in good) and start == pytest.approx(89.1 - 25)
    # when the failure is the best DBA method, it is kept on scale
    alone = accuracy_axis_start(CellResult(cell, good[:2] + [failure], planned=20, finished=20))
    assert alone == pytest.approx(failure.mean - 2)


def _fake_method(method, accs, val=0.5):
    finals = [{"seed": s, "result": {"test_acc": a / 100, "diverged": False}} for s, a in enumerate(accs)]
    return MethodResult(method, [0.1], 1, {0.1: (val, 0.0)}, 0.1, finals)


@pytest.mark.parametrize("dba_accs, verdicts", [
    ([97.9, 97.6, 97.8, 97.7, 98.0], ("Accuracy claim: **reproduced**", "RER claim: **reproduced**",
                                      "**reproduced**: higher, significant")),
    ([89.5, 89.9, 89.1, 89.7, 89.3], ("Accuracy claim: **not reproduced**: ours is 8.29 points below",
                                      "RER claim: **not reproduced**", "**reproduced**: higher, significant")),
    ([88.1, 87.9, 88.2, 87.6, 88.0], ("Accuracy claim: **not reproduced**", "RER claim: **not reproduced**",
                                      "**not reproduced**")),
])
def test_the_plain_statement_follows_the_numbers(dba_accs, verdicts):
    protocol = full_protocol(datasets=("mnist5k",))
    cell = next(c for c in protocol.cells if c.reading == "main" and c.setting.per_class == 60)
    methods = [_fake_method(Method("sgd"), [87.9, 88.1, 87.7, 88.3, 87.8], val=0.88),
               _fake_method(Method("sgd", dba=True), dba_accs, val=0.9)]
    statement = claim_statements([CellResult(cell, methods, planned=10, finished=10)])[0]
    assert "1% of MNIST" in statement and "incomplete" not in statement
    for verdict in verdicts:
        assert verdict in statement


def test_methods_build_exactly_the_optimizers_of_the_committed_runs():
    """``Method.build`` (through ``make_optimizer``) gives each committed run's optimizer name and hyper-parameters,
    but for the two entries version 0.2 dropped (docs/CHANGELOG.md): DBA's ``backend`` (a run's backend is its
    top-level ``backend`` field) and momentum's ``nesterov`` (momentum and nesterov are two optimizers)."""
    runs = Path(__file__).resolve().parents[1] / "docs" / "reproduction" / "runs"
    protocol = full_protocol(datasets=("mnist5k",))
    cells = [c for c in protocol.cells if c.setting.key == "mnist5k-pc10-h256-b64-e100-v50"
             and c.reading in ("main", "sum-over-batch")]
    methods = {m for c in cells for m in c.methods}
    assert any(m.normalise == "batch" for m in methods) and any(not m.dba for m in methods)
    for method in methods:
        record = json.loads(next((runs / cells[0].setting.key / "final-s0").glob(f"{method.key}-lr*.json")).read_text())
        optimizer = method.build(record["learning_rate"])
        assert optimizer.name == record["optimizer"], method.key
        dropped = {"backend"} if method.dba else {"nesterov"} if method.optimizer in ("momentum", "nesterov") else set()
        expected = {k: v for k, v in record["hyperparams"].items() if k not in dropped}
        assert json.loads(json.dumps(optimizer.hyperparams)) == expected, method.key


def test_the_protocol_description_is_built_from_the_protocol_itself():
    full, quick = full_protocol(), quick_protocol()
    assert "(256 in every main cell; 100 and 1000 as checks)" in full.choices()
    assert "(32 in every main cell)" in quick.choices() and "256" not in " ".join([*quick.describe(), quick.choices()])
    assert "Fashion-MNIST" in full.describe()[1] and "Fashion-MNIST" not in quick.describe()[1]
    assert f"every method gets {quick.tuning_budget} tuning runs" in quick.describe()[2]
    assert f"{quick.n_runs()} runs asked for" in quick.describe()[0]
    with pytest.raises(ValueError, match="dataset"):
        Setting("cifar10", 10, 32, 32, 3, 20)


@pytest.mark.parametrize("sgd_accs, verdict", [
    ([87.9, 88.1, 87.7, 88.3, 87.8], "are matched within 0.09 points by our SGD/Adam"),
    ([70.9, 71.1, 70.7, 71.3, 70.8],
     "are not matched by our better of SGD and Adam (1% of MNIST (60 per class): 16.91 points"),
])
def test_the_summary_says_whether_the_baselines_match_the_paper(sgd_accs, verdict):
    cell = next(c for c in full_protocol(datasets=("mnist5k",)).cells
                if c.reading == "main" and c.setting.per_class == 60)
    methods = [_fake_method(Method("sgd"), sgd_accs, val=0.88),
               _fake_method(Method("sgd", dba=True), [89.5, 89.9, 89.1, 89.7, 89.3], val=0.9)]
    assert verdict in summary_statement([CellResult(cell, methods, planned=10, finished=10)])


def test_a_run_computes_no_diagnostic_its_file_does_not_keep(monkeypatch):
    """A reproduction run records DBA's selections only: the per-step norms are neither recorded nor computed."""
    from dba_ref.optimizers import LayerStep
    from dba_ref.reproduction.runs import DataCache, execute_run

    def refuse(step):
        raise AssertionError("a norm the run file does not keep was computed")
    for name in ("grad_norm", "update_norm"):
        monkeypatch.setattr(LayerStep, name, property(refuse))
    setting = Setting("mnist5k", 5, 16, 16, 2, 5)
    record = execute_run(setting, "final", 0, Method("sgd", dba=True), 0.1, DataCache())
    assert not record["result"]["diverged"]
    assert len(record["selected_per_step"]) == 2 and len(record["selected_per_step"][0]) == record["budget"]["steps"]

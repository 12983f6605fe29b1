"""The conformance checker: ``dba-ref conformance export DIR`` and ``check RESULTS.npz`` (issue 4)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dba_ref.cli import main
from dba_ref.agreement import (AMBIGUITY, array_scale, compare_selection, explicit_gram_ops, max_rel_error, network_ops,
                               rounding_tolerance)
from dba_ref.conformance import (Declaration, check_results, format_report, golden_dir, is_input, load_golden,
                                 load_npz, output_rounding, quantity_of, reference_results, trajectory_key)
from dba_ref.conformance.files import REFERENCE_INPUTS
from dba_ref.conformance.trajectory import reference_trajectory


@pytest.fixture(scope="module")
def golden():
    return load_golden()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, golden):
    directory = tmp_path_factory.mktemp("export")
    assert main(["conformance", "export", str(directory)]) == 0
    return directory


@pytest.fixture(scope="module")
def perfect(golden):
    """What a perfect implementation writes for everything declared: the reference's own outputs."""
    return reference_results(Declaration(), golden)


def check(tmp_path, results, *options):
    path = tmp_path / "results.npz"
    np.savez(path, **results)
    return main(["conformance", "check", str(path), *options])


def test_importing_dba_ref_never_imports_a_framework():
    code = ("import sys, dba_ref, dba_ref.conformance, dba_ref.frameworks, dba_ref.cli; dba_ref.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_export_writes_only_inputs_and_lists_the_outputs(exported, golden, perfect):
    listing = (exported / "OUTPUTS.txt").read_text()
    assert Declaration.read(exported) == Declaration()
    for name, data in golden.items():
        inputs = load_npz(exported / f"{name}.npz")
        assert set(inputs) == ({k for k in data if is_input(k)} - set(REFERENCE_INPUTS)
                               | {"bases", "steps", "step_X", "step_y", "momentum_learning_rate", "momentum_momentum"})
        for key, value in inputs.items():
            if key in data:
                np.testing.assert_array_equal(value, data[key])
        assert f"{name}/gram1  {data['gram1'].dtype}  {data['gram1'].shape}" in listing
        assert f"{name}/sel/mean_variance/greedy/L1/removed  int64  1-D" in listing
        assert f"{name}/dba_momentum/variance/prefix/L1/indices  int64  (1, {data['X'].shape[0]})" in listing
        assert "margins" not in listing and f"{name}/dba_sgd/W1 " not in listing
        # the exported inputs are enough to compute the trajectories
        key = trajectory_key("adam", "normalized_variance", "exhaustive", "W1")
        np.testing.assert_array_equal(reference_trajectory(inputs, "adam", "normalized_variance", "exhaustive", 1)[key],
                                      perfect[f"{name}/{key}"])


def test_reference_outputs_pass(tmp_path, capsys, perfect):
    assert check(tmp_path, perfect) == 0
    out = capsys.readouterr().out
    assert "conformance: PASS" in out and "FAIL" not in out
    lines = out.splitlines()
    assert lines[0].startswith("declared      everything")
    header = next(line for line in lines if line.startswith("quantity")).split()
    assert header[:3] == ["quantity", "dtype", "compared"] and "allowed" in header and "result" in header
    assert "DBA trajectories: 288 of 288 agree at every step judged" in out


def test_torch_implementation_passes(tmp_path, capsys, exported, perfect):
    pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")
    from dba_ref.frameworks import torch_dba

    assert torch_dba.main([str(exported), str(tmp_path / "torch.npz")]) == 0
    assert main(["conformance", "check", str(tmp_path / "torch.npz"), "--inputs", str(exported)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wrote {len(perfect)} arrays for 8 cases to {tmp_path / 'torch.npz'}"
    assert lines[-1] == "conformance: PASS"
    table = lines[lines.index(next(line for line in lines if line.startswith("quantity"))) + 1:][:26]
    assert len(table) == 26 and all("  pass" in line and "FAIL" not in line for line in table)


def test_a_wrong_gradient_fails_by_name(tmp_path, capsys, golden, perfect):
    results = dict(perfect)
    results["deep/grad_W3"] = results["deep/grad_W3"] * (1 + 1e-8)
    assert check(tmp_path, results) == 1
    out = capsys.readouterr().out
    grad_row = next(line for line in out.splitlines() if line.startswith("grad ") and "float64" in line)
    assert "FAIL" in grad_row and "1.00e-08" in grad_row and "deep/grad_W3" in grad_row
    allowed = rounding_tolerance(1.0, network_ops(golden["deep"]["sizes"]))       # relative to the array's magnitude
    assert f"deep/grad_W3: max relative error 1e-08 > {allowed:.3g} allowed" in out
    assert out.rstrip().endswith("conformance: FAIL")


def test_the_tolerances_follow_the_rule_per_key(golden):
    """Each key's allowance is the package's rule for its own scale, operation count and dtype, float32 included."""
    deep, f32 = golden["deep"], golden["float32"]
    scale, tol = output_rounding(deep, "losses")
    assert scale == array_scale(deep["losses"]) and tol == rounding_tolerance(scale, network_ops(deep["sizes"]))
    scale, tol = output_rounding(f32, "dba_adam/W1")
    assert tol == rounding_tolerance(scale, network_ops(f32["sizes"]) + 10, "float32")
    scale, tol = output_rounding(deep, "gram2")
    assert scale.shape == tol.shape == deep["gram2"].shape
    np.testing.assert_allclose(tol / scale, rounding_tolerance(1.0, explicit_gram_ops(deep["sizes"], 2)), rtol=1e-12)
    scale, tol = output_rounding(deep, "sel/mean_variance/greedy/L1/values")
    assert scale.shape == tol.shape == deep["sel/mean_variance/greedy/L1/values"].shape
    scale, tol = output_rounding(f32, "losses")                          # float32: ε = 1.2e-7, not 2.2e-16
    assert tol / scale == pytest.approx(8 * network_ops(f32["sizes"]) * float(np.finfo(np.float32).eps))


def test_missing_keys_and_wrong_shapes_are_named_not_tracebacks(tmp_path, capsys, perfect):
    results = dict(perfect)
    del results["small/gram2"]
    del results["act_tanh/sel/variance/prefix/L3/removed"]
    results["small/grad_b1"] = results["small/grad_b1"].T
    results["float32/sel/variance/greedy/L1/indices"] = np.array([[0, 1]])
    results["float32/losses"] = np.array(["a"] * 10)
    assert check(tmp_path, results) == 1
    out = capsys.readouterr().out
    assert "missing keys (2):" in out
    assert "  small/gram2" in out and "  act_tanh/sel/variance/prefix/L3/removed" in out
    assert "small/grad_b1 has shape (7, 8), expected (8, 7)" in out
    assert "float32/sel/variance/greedy/L1/indices has shape (1, 2), expected 1-D" in out
    assert "float32/losses has dtype <U1, expected real numbers" in out
    assert "Traceback" not in out


def test_a_different_selection_at_a_clear_decision_fails(tmp_path, capsys, golden, perfect):
    results = dict(perfect)
    prefix = "small/sel/mean_variance/greedy/L1"
    removed = results[f"{prefix}/removed"]
    assert len(removed) >= 2 and golden["small"]["sel/mean_variance/greedy/L1/margins"][0] > AMBIGUITY["float64"]
    results[f"{prefix}/removed"] = removed[::-1].copy()
    assert check(tmp_path, results) == 1
    out = capsys.readouterr().out
    assert f"{prefix}/removed: removal step 1: reference removes {removed[0]}, got {removed[-1]}" in out
    removed_row = next(line for line in out.splitlines() if line.startswith("removed ") and "float64" in line)
    assert "1 differ" in removed_row and "FAIL" in removed_row


def test_a_near_tie_decided_differently_is_ambiguous_and_passes(golden, perfect):
    """Golden cases hold no near-tie, so one is made: the reference's first margin is set to 0."""
    small = dict(golden["small"])
    prefix = "sel/variance/greedy/L1"
    small[f"{prefix}/margins"] = np.concatenate([[0.0], small[f"{prefix}/margins"][1:]])
    results = dict(perfect)
    removed = results[f"small/{prefix}/removed"]
    other = next(i for i in range(8) if i not in removed[:1] and i in golden["small"][f"{prefix}/indices"])
    results[f"small/{prefix}/removed"] = np.array([other])
    results[f"small/{prefix}/values"] = results[f"small/{prefix}/values"][:1] * 7.0   # wrong, but not compared
    report = check_results(results, {**golden, "small": small})
    assert report.passed
    text = format_report(report)
    assert "ambiguous: near-ties, not failures (spec §5) (2):" in text
    assert f"small/{prefix}/removed: removal step 1: reference margin 0" in text
    assert "conformance: PASS (2 ambiguous near-ties)" in text


def test_only_and_case_restrict_what_is_required(tmp_path, capsys, perfect):
    grads = {k: v for k, v in perfect.items() if quantity_of(k.split("/", 1)[1]) == "grad"}
    assert check(tmp_path, grads, "--only", "grad") == 0
    out = capsys.readouterr().out
    table = out.splitlines()[out.splitlines().index(next(l for l in out.splitlines() if l.startswith("quantity"))):]
    assert [line.split()[0] for line in table[1:3]] == ["grad", "grad"] and " 0 outside the declaration" in out
    small = {k: v for k, v in perfect.items() if k.startswith("small/")}
    assert check(tmp_path, small, "--case", "small") == 0
    assert check(tmp_path, grads) == 1                       # everything else is missing
    out = capsys.readouterr().out
    assert "missing keys" in out


def test_not_declared_lists_every_undeclared_quantity_but_the_weights_of_undeclared_bases():
    from dba_ref.conformance.report import ConformanceReport, Coverage, format_coverage

    def not_declared(declaration):
        lines = format_coverage(ConformanceReport(coverage=Coverage(declaration)))
        return next(line for line in lines if line.startswith("not declared"))

    line = not_declared(Declaration(quantities=["losses", "dba_sgd"]))
    assert "step_indices, step_removed, dba_momentum, dba_adam" in line
    line = not_declared(Declaration(quantities=["losses", "dba_sgd"], bases=["sgd"]))
    assert "values, step_indices, step_removed; bases momentum, adam" in line and "dba_adam" not in line


def test_nan_and_extra_keys(tmp_path, capsys, perfect):
    results = dict(perfect)
    key = "edge_one_removal/" + trajectory_key("adam", "mean_variance", "greedy", "W2")
    results[key] = np.full_like(results[key], np.nan)
    results["small/my_debug_array"] = np.zeros(3)
    assert check(tmp_path, results) == 1
    out = capsys.readouterr().out
    assert f"{key} step 1: W2[0, 0] = nan, reference" in out
    assert "edge_one_removal DBA(adam) mean_variance/greedy: step 1, layer 2: W2[0, 0] = nan" in out
    assert "unexpected keys (ignored) (1):\n  small/my_debug_array" in out


def test_unreadable_or_missing_results_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    assert main(["conformance", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dba-ref conformance: error:") and "not a readable .npz" in err and len(err.splitlines()) == 1
    assert main(["conformance", "check", str(tmp_path / "none.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["conformance", "check", str(bad), "--golden", str(tmp_path)]) == 2
    assert "golden cases small, deep" in capsys.readouterr().err


def test_golden_cases_are_package_data_unless_the_variable_points_elsewhere(tmp_path, monkeypatch, golden):
    import dba_ref.conformance

    monkeypatch.delenv("DBA_REF_DATA_DIR", raising=False)
    package = Path(dba_ref.conformance.__file__).resolve().parent / "golden"
    assert golden_dir() == package and sorted(p.stem for p in package.glob("*.npz")) == sorted(golden)
    monkeypatch.setenv("DBA_REF_DATA_DIR", str(tmp_path))
    assert golden_dir() == tmp_path / "golden"
    with pytest.raises(FileNotFoundError, match=f"not found in {tmp_path / 'golden'}; dba-ref ships them in"):
        load_golden()


def test_conformance_without_an_action_prints_its_help(capsys):
    assert main(["conformance"]) == 2
    assert "export" in capsys.readouterr().out
    assert main(["conformance", "check", "x.npz", "--max-listed", "-1"]) == 2
    assert "--max-listed must be >= 0" in capsys.readouterr().err


def test_compare_selection_rules():
    ref_indices, ref_removed = np.array([0, 2, 3]), np.array([1, 4])
    # greedy stopped by min_size after two removals: a third removal is a failure, there was no decision
    verdict = compare_selection("greedy", ref_indices, ref_removed, [0.5, 0.5], np.array([0, 2]), np.array([1, 4, 3]))
    assert verdict.status == "differ" and "reference removes nothing (stops)" in verdict.detail
    # stopping one step early where the reference's rejected step... was a clear acceptance
    verdict = compare_selection("greedy", ref_indices, ref_removed, [0.5, 0.5, 0.3], np.array([0, 2, 3, 4]),
                                np.array([1]))
    assert verdict.status == "differ" and verdict.agreed_steps == 1
    # prefix / exhaustive: any decision margin under the threshold makes a difference ambiguous
    assert compare_selection("exhaustive", ref_indices, [], [1e-12], indices=np.array([0, 1, 3])).status == "ambiguous"
    assert compare_selection("exhaustive", ref_indices, [], [1e-3], indices=np.array([0, 1, 3])).status == "differ"
    assert compare_selection("prefix", ref_indices, ref_removed, [0.1], np.array([0, 2, 3]),
                             np.array([1, 4])).status == "agree"


def test_max_rel_error_conventions():
    assert max_rel_error([1.0, 2.0 + 2e-9], [1.0, 2.0]) == pytest.approx(1e-9)
    assert max_rel_error([np.inf, 1.0], [np.inf, 1.0]) == 0.0
    assert max_rel_error([1e300, 1.0], [np.inf, 1.0]) == np.inf
    assert max_rel_error([1e-17], [0.0]) == 1e-17                    # all-zero reference: absolute
    assert max_rel_error([1e-12, 1.0], [0.0, 1.0], scale=[1e-3, 1.0]) == pytest.approx(1e-9)

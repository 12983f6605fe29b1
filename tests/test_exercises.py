"""The autograder: right answers pass, plausible wrong answers fail with the message that names the mistake.

The "students" below are written independently of the reference (NumPy only),
the way a student would write them; each wrong one makes exactly one classic
mistake.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from dba_ref.cli import main
from dba_ref.exercises import (EXERCISES, Case, check, describe_difference, get_exercise, load_student_function,
                               write_stub)
from dba_ref.agreement import greedy_margins
from dba_ref.search import greedy_path

SEEDS = (0, 1, 2)


# ---------------------------------------------------------------- exercise 1
def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def student_error_signals(weights, biases, X, y, *, use_bias=True, transpose=False, divide_by_B=False,
                          with_dphi=True, stable=True):
    A, Zs = X, []
    for W, b in zip(weights, biases):
        Z = A @ W.T + (b if use_bias else 0.0)
        Zs.append(Z)
        A = np.maximum(Z, 0.0)
    if stable:
        P = _softmax(Zs[-1])
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            P = np.exp(Zs[-1]) / np.exp(Zs[-1]).sum(axis=1, keepdims=True)
    D = P - np.eye(P.shape[1])[y]
    if divide_by_B:
        D = D / len(y)
    deltas = [D]
    for l in range(len(weights) - 2, -1, -1):
        W = weights[l + 1].T if transpose else weights[l + 1]
        D = (D @ W) * ((Zs[l] > 0) if with_dphi else 1.0)
        deltas.append(D)
    return deltas[::-1]


# ---------------------------------------------------------------- exercise 2
def student_gram(A, D):
    return (D @ D.T) * (A @ A.T + 1)


# ---------------------------------------------------------------- exercise 3
def student_mean_variance(T, Q, k, *, unbiased=False, guard=True):
    T, Q, k = (np.asarray(a, np.float64) for a in (T, Q, k))
    with np.errstate(divide="ignore", invalid="ignore"):
        if unbiased:
            V = (T - Q / k) / (k - 1)
            value = (V / k) / (Q / k ** 2)
        else:
            value = T / Q - 1 / k
        return np.where(Q > 1e-12 * k * T, value, np.inf) if guard else value


def student_mean_variance_scalars_unbiased(T, Q, k):
    """The unbiased mix-up written with Python floats: it raises at k = 1."""
    V = (T - Q / k) / (k - 1)
    return (V / k) / (Q / k ** 2)


# ---------------------------------------------------------------- exercise 4
def student_greedy(K, min_size, *, stop="right", ties="low", accept="<", return_kept=False):
    """Recomputes every candidate's T and Q from scratch (a different order of arithmetic than the reference)."""
    S = list(range(K.shape[0]))
    removed = []

    def metric(idx):
        sub = K[np.ix_(idx, idx)]
        T, Q, k = np.trace(sub), sub.sum(), len(idx)
        return T / Q - 1 / k if Q > 1e-12 * k * T else np.inf

    current = metric(S)
    keep_going = {"right": lambda n: n > min_size, "one_too_far": lambda n: n >= min_size and n > 1,
                  "one_too_early": lambda n: n > min_size + 1}[stop]
    while keep_going(len(S)):
        values = [(metric([j for j in S if j != i]), i) for i in S]
        best_value = min(v for v, _ in values)
        pick = min if ties == "low" else max
        best = pick(i for v, i in values if v == best_value)
        if not (best_value < current if accept == "<" else best_value <= current):
            break
        S.remove(best)
        removed.append(best)
        current = best_value
    return S if return_kept else removed


RIGHT = {1: student_error_signals, 2: student_gram, 3: student_mean_variance, 4: student_greedy}


# ---------------------------------------------------------------- right answers
@pytest.mark.parametrize("number", sorted(EXERCISES))
@pytest.mark.parametrize("seed", SEEDS)
def test_reference_and_independent_solution_pass(number, seed):
    reference = check(number, EXERCISES[number].reference, seed=seed)
    student = check(number, RIGHT[number], seed=seed)
    assert reference.passed, reference.text()
    assert student.passed, student.text()
    assert "PASSED all" in student.text() and f"seed {seed}" in student.text()


def test_fresh_seed_each_call_and_same_seed_same_cases():
    a, b = check(2, student_gram), check(2, student_gram)
    assert a.passed and b.passed
    cases = [EXERCISES[4].random_case(np.random.default_rng(7)) for _ in range(2)]
    again = [EXERCISES[4].random_case(np.random.default_rng(7)) for _ in range(2)]
    assert cases[0].name == again[0].name and np.array_equal(cases[0].args[0], again[0].args[0])


def test_random_greedy_cases_have_clear_decisions():
    rng = np.random.default_rng(0)
    for _ in range(30):
        K, m = EXERCISES[4].random_case(rng).args
        margins = greedy_margins(K, "mean_variance", greedy_path(K, "mean_variance", m, 0.0)[0], m, 0.0)
        assert margins.size == 0 or margins.min() > 1e-6


def test_edge_cases_have_distinct_names():
    for ex in EXERCISES.values():
        names = [c.name for c in ex.edge_cases(np.random.default_rng(0))]
        assert len(names) == len(set(names)) >= 5


# ---------------------------------------------------------------- wrong answers, named
def _failing(number, function, seed=0):
    report = check(number, function, seed=seed)
    assert not report.passed
    return report.text()


def test_ex1_missing_bias():
    text = _failing(1, lambda W, b, X, y: student_error_signals(W, b, X, y, use_bias=False))
    assert "biases are missing from the forward pass" in text
    assert "(sample " in text and "off by" in text


def test_ex1_transposed_product():
    text = _failing(1, lambda W, b, X, y: student_error_signals(W, b, X, y, transpose=True))
    assert "transposed product" in text


def test_ex1_transposed_product_on_square_weights_is_named_by_value():
    ex = get_exercise(1)
    square = next(c for c in ex.edge_cases(np.random.default_rng(0)) if "square" in c.name)
    got = student_error_signals(*square.args, transpose=True)
    message = ex.grade(got, ex.reference(*square.args), square)
    assert message.startswith("Δ_2[") and "a transposed product" in message


def test_ex1_mean_instead_of_per_sample():
    text = _failing(1, lambda W, b, X, y: student_error_signals(W, b, X, y, divide_by_B=True))
    assert "you divided by B" in text


def test_ex1_missing_activation_derivative():
    text = _failing(1, lambda W, b, X, y: student_error_signals(W, b, X, y, with_dphi=False))
    assert "derivative of the activation is missing" in text


def test_ex1_softmax_overflow_fails_only_the_huge_logits_case():
    report = check(1, lambda W, b, X, y: student_error_signals(W, b, X, y, stable=False), seed=0)
    assert len(report.failures) == 1 and "huge logits" in report.failures[0].case.name
    assert "is nan" in report.text() and "overflow" in report.text()


def test_ex1_wrong_container_and_count():
    assert "return a list" in _failing(1, lambda W, b, X, y: student_error_signals(W, b, X, y)[-1])
    text = _failing(1, lambda W, b, X, y: student_error_signals(W, b, X, y)[-1:])
    assert "layers but you returned 1 array:" in text


def test_ex2_transposed_product():
    text = _failing(2, lambda A, D: (D.T @ D) * (A.T @ A + 1))
    assert "transposed product" in text and "(B, B)" in text


def test_ex2_transposed_product_that_broadcasts_reports_the_shape():
    # in = out makes D.T @ D and A.T @ A the same (out, out) shape: the answer has the wrong shape.
    ex = get_exercise(2)
    rng = np.random.default_rng(0)
    A, D = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    case = Case("B = 5, in = out = 3", (A, D))
    message = ex.grade((D.T @ D) * (A.T @ A + 1), ex.reference(A, D), case)
    assert "K has shape (3, 3), expected (5, 5)" in message and "transposed product" in message


def test_ex2_missing_bias_term():
    text = _failing(2, lambda A, D: (D @ D.T) * (A @ A.T))
    assert "the bias term is missing" in text and "off by" in text


def test_ex2_matrix_instead_of_elementwise_product():
    assert "a matrix product where the identity has an elementwise one" in _failing(
        2, lambda A, D: (D @ D.T) @ (A @ A.T + 1))


def test_ex2_returning_the_explicit_gradients_reports_the_shape():
    def per_sample_gradients(A, D):
        return np.concatenate([np.einsum("bo,bi->boi", D, A).reshape(len(A), -1), D], axis=1)

    text = _failing(2, per_sample_gradients)
    assert "K has shape (1, 8), expected (1, 1)" in text


def test_ex2_one_wrong_entry_is_located():
    ex = get_exercise(2)
    case = ex.edge_cases(np.random.default_rng(0))[5]          # B = 40
    expected = ex.reference(*case.args)
    got = expected.copy()
    got[7, 3] += 0.5
    message = ex.grade(got, expected, case)
    assert message.startswith("K[7, 3] (sample 7, sample 3)") and "off by +0.5" in message
    assert "1 of 1600 entries is wrong" in message
    got[0, 0] += 0.5
    assert "2 of 1600 entries are wrong" in ex.grade(got, expected, case)


def test_ex3_unbiased_variance():
    text = _failing(3, lambda T, Q, k: student_mean_variance(T, Q, k, unbiased=True))
    assert "unbiased variance" in text and "divide by k" in text


def test_ex3_unbiased_variance_on_arrays_only():
    ex = get_exercise(3)
    case = next(c for c in ex.edge_cases(np.random.default_rng(0)) if c.name.startswith("30 random"))
    T, Q, k = case.args
    keep = k > 1
    got = student_mean_variance(T[keep], Q[keep], k[keep], unbiased=True)
    message = ex.grade(got, ex.reference(T[keep], Q[keep], k[keep]), Case("no k = 1", (T[keep], Q[keep], k[keep])))
    assert "you used the unbiased variance (divided by k − 1)" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")       # the array cases divide 0 by 0, as the student's code does
def test_ex3_unbiased_variance_with_python_floats_raises_and_is_explained():
    text = _failing(3, student_mean_variance_scalars_unbiased)
    assert "ZeroDivisionError" in text and "unbiased variance" in text and "line" in text


def test_ex3_missing_guard():
    text = _failing(3, lambda T, Q, k: student_mean_variance(T, Q, k, guard=False))
    assert "the guard is missing or wrong" in text and "expected inf" in text


def test_ex3_other_metrics_are_named():
    ex = get_exercise(3)
    case = next(c for c in ex.edge_cases(np.random.default_rng(0)) if c.name.startswith("30 random"))
    T, Q, k = case.args
    expected = ex.reference(T, Q, k)
    assert "normalized_variance" in ex.grade(k * T / Q - 1, expected, case)
    assert "the variance V = T/k − Q/k² itself" in ex.grade(T / k - Q / k ** 2, expected, case)
    assert "the − 1/k term is missing" in ex.grade(T / Q, expected, case)


def test_ex3_wrong_shape():
    text = _failing(3, lambda T, Q, k: np.atleast_1d(student_mean_variance(T, Q, k)).reshape(-1, 1))
    assert "shape" in text


def test_ex4_off_by_one_going_below_min_size():
    text = _failing(4, lambda K, m: student_greedy(K, m, stop="one_too_far"))
    assert "an off-by-one in the stop" in text and "below min_size" in text
    ex = get_exercise(4)
    case = next(c for c in ex.edge_cases(np.random.default_rng(0)) if "the search reaches min_size" in c.name)
    message = ex.grade(student_greedy(*case.args, stop="one_too_far"), ex.reference(*case.args), case)
    assert "you went on to keep 1 sample, below min_size = 2" in message


def test_ex4_removing_on_ties_names_the_strict_rule():
    """A solution that removes when the best value equals the current one (<= for the spec's <) must fail."""
    ex = get_exercise(4)
    G = np.tile([0.5, -1.0, 2.0], (5, 1))                   # identical gradients: every subset scores exactly 0
    K = G @ G.T
    assert ex.reference(K, 2) == [] and student_greedy(K, 2, accept="<=") == [0, 1, 2]
    text = _failing(4, lambda K, m: student_greedy(K, m, accept="<="))
    assert "identical gradients" in text
    assert "removing sample 0 leaves the metric unchanged (0), yet you removed it" in text
    assert "best < current (not best <= current)" in text


def test_ex4_off_by_one_stopping_early():
    text = _failing(4, lambda K, m: student_greedy(K, m, stop="one_too_early"))
    assert "an off-by-one in the stop" in text and "one more removal is allowed" in text


def test_ex4_ties_to_the_highest_index():
    text = _failing(4, lambda K, m: student_greedy(K, m, ties="high"))
    assert "a tie, and ties go to the lowest original index" in text


def test_ex4_returning_the_kept_samples():
    assert "you returned the samples kept" in _failing(4, lambda K, m: student_greedy(K, m, return_kept=True))


def test_ex4_wrong_metric_is_located_at_the_step():
    def greedy_on_variance(K, m):       # minimises the variance V instead of mean_variance
        S, removed = list(range(K.shape[0])), []
        while len(S) > m:
            values = []
            for i in S:
                idx = [j for j in S if j != i]
                sub = K[np.ix_(idx, idx)]
                values.append((np.trace(sub) / len(idx) - sub.sum() / len(idx) ** 2, i))
            best_value, best = min(values)
            S.remove(best)
            removed.append(best)
        return removed

    report = check(4, greedy_on_variance, seed=0)
    messages = [f.message for f in report.failures]
    assert not report.passed
    assert any("Each step removes the sample whose removal gives the lowest metric" in m for m in messages)
    assert any("although it does not lower the metric" in m for m in messages)


def test_ex4_bad_indices():
    assert "Indices must lie in 0.." in _failing(4, lambda K, m: [K.shape[0]])
    assert "list of ints" in _failing(4, lambda K, m: [0.5])


def test_modifying_an_input_is_reported():
    def gram_in_place(A, D):
        A += 1.0
        return student_gram(A - 1.0, D)

    assert "modified its input A in place" in _failing(2, gram_in_place)


def test_missing_return_and_exception_location():
    assert "did you forget the `return`?" in _failing(2, lambda A, D: None)

    def broken(A, D):
        raise KeyError("oops")

    text = _failing(2, broken)
    assert "your function raised KeyError: 'oops' (in broken, line" in text


# ---------------------------------------------------------------- stubs, loading, CLI
@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_stubs_load_and_are_not_attempted(number):
    ex = EXERCISES[number]
    function = load_student_function(ex.stub_path, number)
    report = check(number, function, seed=0)
    assert report.not_attempted and not report.passed and report.exit_status == 1
    assert "NOT ATTEMPTED" in report.text()
    text = ex.stub_path.read_text()
    assert f"def {ex.function}(" in text and f"dba-ref exercises check {number} {ex.stub}" in text


def run_stub(path):
    return subprocess.run([sys.executable, path.name], cwd=path.parent, capture_output=True, text=True,
                          timeout=300)


def test_a_stub_run_as_a_script_exits_1_until_every_case_passes(tmp_path):
    stub = write_stub(2, tmp_path)
    result = run_stub(stub)
    assert result.returncode == 1 and "NOT ATTEMPTED" in result.stdout
    text = stub.read_text()
    body = '    raise NotImplementedError("write gram")'
    assert body in text
    stub.write_text(text.replace(body, "    return (D @ D.T) * (A @ A.T)"))
    result = run_stub(stub)
    assert result.returncode == 1 and "FAILED" in result.stdout and "bias term is missing" in result.stdout
    stub.write_text(text.replace(body, "    return (D @ D.T) * (A @ A.T + 1)"))
    result = run_stub(stub)
    assert result.returncode == 0 and "PASSED all" in result.stdout


def test_start_writes_the_stub_and_keeps_an_existing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["exercises", "start", "3"]) == 0                       # default: the current folder
    stub = tmp_path / EXERCISES[3].stub
    assert stub.read_bytes() == EXERCISES[3].stub_path.read_bytes()
    assert f"wrote {EXERCISES[3].stub}" in capsys.readouterr().out
    stub.write_text("my work")
    assert main(["exercises", "start", "3"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "already exists" in err and "--force" in err
    assert stub.read_text() == "my work"
    assert main(["exercises", "start", "3", "--force"]) == 0
    assert stub.read_bytes() == EXERCISES[3].stub_path.read_bytes()
    assert main(["exercises", "start", "4", "class/week 3"]) == 0       # a new folder is created
    assert (tmp_path / "class" / "week 3" / EXERCISES[4].stub).is_file()
    assert main(["exercises", "start", "1", str(stub)]) == 2            # a file is not a folder
    assert "not a folder" in capsys.readouterr().err
    assert main(["exercises", "start", "5"]) == 2
    assert "no exercise 5" in capsys.readouterr().err


def test_load_from_a_notebook_skips_magics(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["# my solution"]},
                    {"cell_type": "code", "source": ["%matplotlib inline\n", "import numpy as np\n"]},
                    {"cell_type": "code", "source": "!ls\ndef gram(A, D):\n    return (D @ D.T) * (A @ A.T + 1)\n"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "mine.ipynb"
    path.write_text(json.dumps(nb))
    assert check(2, load_student_function(path, 2), seed=0).passed


def test_load_errors_are_one_line_value_errors(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def gram(A, D)\n    return A\n")
    with pytest.raises(ValueError, match="line 1: syntax error"):
        load_student_function(bad, 2)
    other = tmp_path / "other.py"
    other.write_text("def gramm(A, D):\n    return A\n")
    with pytest.raises(ValueError, match="defines no function gram"):
        load_student_function(other, "gram")
    crash = tmp_path / "crash.py"
    crash.write_text("import numpy\n1 / 0\n")
    with pytest.raises(ValueError, match="ZeroDivisionError"):
        load_student_function(crash, 2)
    with pytest.raises(FileNotFoundError):
        load_student_function(tmp_path / "missing.py", 2)
    with pytest.raises(ValueError, match="no exercise 5"):
        get_exercise(5)
    with pytest.raises(TypeError, match="give the function itself"):
        check(2, "gram")


def test_cli_check_list_and_errors(tmp_path, capsys):
    right = tmp_path / "right.py"
    right.write_text("def gram(A, D):\n    return (D @ D.T) * (A @ A.T + 1)\n")
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def gram(A, D):\n    return (D @ D.T) * (A @ A.T)\n")
    assert main(["exercises", "check", "2", str(right), "--seed", "5"]) == 0
    assert "PASSED all" in capsys.readouterr().out
    assert main(["exercises", "check", "2", str(wrong), "--seed", "5", "--random", "3"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "bias term is missing" in out and "9 cases" in out
    for command in (["exercises"], ["exercises", "list"]):
        assert main(command) == 0
        out = capsys.readouterr().out
        assert all(f"dba-ref exercises start {n}" in out and f"def {ex.signature}" in out
                   for n, ex in EXERCISES.items())
    assert main(["exercises", "check", "7", str(right)]) == 2
    assert "no exercise 7" in capsys.readouterr().err
    assert main(["exercises", "check", "2", str(tmp_path / "nope.py")]) == 2


def test_describe_difference_words():
    assert describe_difference(np.zeros((2, 3)), np.zeros((3, 2)), "X") == "X has shape (2, 3), expected (3, 2)"
    assert describe_difference([1.0, np.nan], [1.0, 2.0], "v", ("entry",)).startswith("v[1] (entry 1) is nan")
    assert describe_difference(np.float32([1, 2]), [1.0, 2.0 + 1e-3], "v").endswith("compute in float64")
    assert describe_difference([np.inf, 1.0], [np.inf, 1.0], "v") is None

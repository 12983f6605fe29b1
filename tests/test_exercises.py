"""The grader's judgement: right answers pass, plausible wrong answers fail with the message that names the mistake.

Two kinds of students: the functions below, written independently of the
reference (NumPy only) the way a student would write them; and, for every
exercise, its model solution (the exercise's source) and two or more wrong
versions of it, each one classic mistake made by a one-line edit. These run
in this process (``check``), which is the judge's logic; the process
boundary, the limits and the hostile submissions are tests/test_exercises_sandbox.py.
"""
import json

import numpy as np
import pytest

from dba_ref.cli import main
from dba_ref.agreement import AMBIGUITY, greedy_margins
from dba_ref.exercises import (EXERCISES, Case, check, describe_difference, get_exercise, make_cases, write_notebook,
                               write_stub)
from dba_ref.exercises.greedy_search import clear_decisions
from dba_ref.exercises.handouts import solution_code, stub_text
from dba_ref.exercises.loading import read_submission

SEEDS = (0, 1, 2)


# ---------------------------------------------------------------- exercise 2 (error_signals)
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


# ---------------------------------------------------------------- exercise 3 (gram_identity)
def student_gram(A, D):
    return (D @ D.T) * (A @ A.T + 1)


# ---------------------------------------------------------------- exercise 4 (mean_variance)
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


# ---------------------------------------------------------------- exercise 6 (greedy_search)
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


RIGHT = {2: student_error_signals, 3: student_gram, 4: student_mean_variance, 6: student_greedy}


# ---------------------------------------------------------------- right answers
@pytest.mark.parametrize("number", sorted(RIGHT))
@pytest.mark.parametrize("seed", SEEDS)
def test_reference_and_independent_solution_pass(number, seed):
    reference = check(number, EXERCISES[number].reference, seed=seed)
    student = check(number, RIGHT[number], seed=seed)
    assert reference.passed, reference.text()
    assert student.passed, student.text()
    assert "PASSED all" in student.text() and f"seed {seed}" in student.text()


def test_fresh_seed_each_call_and_same_seed_same_cases():
    a, b = check(3, student_gram), check(3, student_gram)
    assert a.passed and b.passed
    cases = [EXERCISES[6].random_case(np.random.default_rng(7)) for _ in range(2)]
    again = [EXERCISES[6].random_case(np.random.default_rng(7)) for _ in range(2)]
    assert cases[0].name == again[0].name and np.array_equal(cases[0].args[0], again[0].args[0])


def test_random_greedy_cases_have_clear_decisions():
    rng = np.random.default_rng(0)
    for _ in range(30):
        K, m = EXERCISES[6].random_case(rng).args
        margins = greedy_margins(K, "mean_variance", m, 0.0)
        assert clear_decisions(K, m) and (margins.size == 0 or margins.min() > AMBIGUITY["float64"])


def test_edge_cases_have_distinct_names():
    for ex in EXERCISES.values():
        names = [c.name for c in ex.edge_cases(np.random.default_rng(0))]
        assert len(names) == len(set(names)) >= 4


# ---------------------------------------------------------------- wrong answers, named
def _failing(number, function, seed=0):
    report = check(number, function, seed=seed)
    assert not report.passed
    return report.text()


def test_error_signals_missing_bias():
    text = _failing(2, lambda W, b, X, y: student_error_signals(W, b, X, y, use_bias=False))
    assert "biases are missing from the forward pass" in text
    assert "(sample " in text and "off by" in text


def test_error_signals_transposed_product():
    text = _failing(2, lambda W, b, X, y: student_error_signals(W, b, X, y, transpose=True))
    assert "transposed product" in text


def test_error_signals_transposed_product_on_square_weights_is_named_by_value():
    ex = get_exercise(2)
    square = next(c for c in ex.edge_cases(np.random.default_rng(0)) if "square" in c.name)
    got = student_error_signals(*square.args, transpose=True)
    message = ex.grade(got, ex.reference(*square.args), square)
    assert message.startswith("Δ_2[") and "a transposed product" in message


def test_error_signals_mean_instead_of_per_sample():
    text = _failing(2, lambda W, b, X, y: student_error_signals(W, b, X, y, divide_by_B=True))
    assert "you divided by B" in text


def test_error_signals_missing_activation_derivative():
    text = _failing(2, lambda W, b, X, y: student_error_signals(W, b, X, y, with_dphi=False))
    assert "derivative of the activation is missing" in text


def test_error_signals_softmax_overflow_fails_only_the_huge_logits_case():
    report = check(2, lambda W, b, X, y: student_error_signals(W, b, X, y, stable=False), seed=0)
    assert len(report.failures) == 1 and "huge logits" in report.failures[0].case.name
    assert "is nan" in report.text() and "overflow" in report.text()


def test_error_signals_wrong_container_and_count():
    assert "return a list" in _failing(2, lambda W, b, X, y: student_error_signals(W, b, X, y)[-1])
    text = _failing(2, lambda W, b, X, y: student_error_signals(W, b, X, y)[-1:])
    assert "layers but you returned 1 array:" in text


def test_gram_transposed_product():
    text = _failing(3, lambda A, D: (D.T @ D) * (A.T @ A + 1))
    assert "transposed product" in text and "(B, B)" in text


def test_gram_transposed_product_that_broadcasts_reports_the_shape():
    # in = out makes D.T @ D and A.T @ A the same (out, out) shape: the answer has the wrong shape.
    ex = get_exercise(3)
    rng = np.random.default_rng(0)
    A, D = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    case = Case("B = 5, in = out = 3", (A, D))
    message = ex.grade((D.T @ D) * (A.T @ A + 1), ex.reference(A, D), case)
    assert "K has shape (3, 3), expected (5, 5)" in message and "transposed product" in message


def test_gram_missing_bias_term():
    text = _failing(3, lambda A, D: (D @ D.T) * (A @ A.T))
    assert "the bias term is missing" in text and "off by" in text


def test_gram_matrix_instead_of_elementwise_product():
    assert "a matrix product where the identity has an elementwise one" in _failing(
        3, lambda A, D: (D @ D.T) @ (A @ A.T + 1))


def test_gram_returning_the_explicit_gradients_reports_the_shape():
    def per_sample_gradients(A, D):
        return np.concatenate([np.einsum("bo,bi->boi", D, A).reshape(len(A), -1), D], axis=1)

    text = _failing(3, per_sample_gradients)
    assert "K has shape (1, 8), expected (1, 1)" in text


def test_gram_one_wrong_entry_is_located():
    ex = get_exercise(3)
    case = ex.edge_cases(np.random.default_rng(0))[5]          # B = 40
    expected = ex.reference(*case.args)
    got = expected.copy()
    got[7, 3] += 0.5
    message = ex.grade(got, expected, case)
    assert message.startswith("K[7, 3] (sample 7, sample 3)") and "off by +0.5" in message
    assert "1 of 1600 entries is wrong" in message
    got[0, 0] += 0.5
    assert "2 of 1600 entries are wrong" in ex.grade(got, expected, case)


def test_mean_variance_unbiased_variance():
    text = _failing(4, lambda T, Q, k: student_mean_variance(T, Q, k, unbiased=True))
    assert "unbiased variance" in text and "divide by k" in text


def test_mean_variance_unbiased_variance_on_arrays_only():
    ex = get_exercise(4)
    case = next(c for c in ex.edge_cases(np.random.default_rng(0)) if c.name.startswith("30 random"))
    T, Q, k = case.args
    keep = k > 1
    got = student_mean_variance(T[keep], Q[keep], k[keep], unbiased=True)
    message = ex.grade(got, ex.reference(T[keep], Q[keep], k[keep]), Case("no k = 1", (T[keep], Q[keep], k[keep])))
    assert "you used the unbiased variance (divided by k − 1)" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")       # the array cases divide 0 by 0, as the student's code does
def test_mean_variance_unbiased_variance_with_python_floats_raises_and_is_explained():
    text = _failing(4, student_mean_variance_scalars_unbiased)
    assert "ZeroDivisionError" in text and "unbiased variance" in text and "line" in text


def test_mean_variance_missing_guard():
    text = _failing(4, lambda T, Q, k: student_mean_variance(T, Q, k, guard=False))
    assert "the guard is missing or wrong" in text and "expected inf" in text


def test_mean_variance_other_metrics_are_named():
    ex = get_exercise(4)
    case = next(c for c in ex.edge_cases(np.random.default_rng(0)) if c.name.startswith("30 random"))
    T, Q, k = case.args
    expected = ex.reference(T, Q, k)
    assert "normalized_variance" in ex.grade(k * T / Q - 1, expected, case)
    assert "the variance V = T/k − Q/k² itself" in ex.grade(T / k - Q / k ** 2, expected, case)
    assert "the − 1/k term is missing" in ex.grade(T / Q, expected, case)


def test_mean_variance_wrong_shape():
    text = _failing(4, lambda T, Q, k: np.atleast_1d(student_mean_variance(T, Q, k)).reshape(-1, 1))
    assert "shape" in text


def test_greedy_off_by_one_going_below_min_size():
    text = _failing(6, lambda K, m: student_greedy(K, m, stop="one_too_far"))
    assert "an off-by-one in the stop" in text and "below min_size" in text
    ex = get_exercise(6)
    case = next(c for c in ex.edge_cases(np.random.default_rng(0)) if "the search reaches min_size" in c.name)
    message = ex.grade(student_greedy(*case.args, stop="one_too_far"), ex.reference(*case.args), case)
    assert "you went on to keep 1 sample, below min_size = 2" in message


def test_greedy_removing_on_ties_names_the_strict_rule():
    """A solution that removes when the best value equals the current one (<= for the spec's <) must fail."""
    ex = get_exercise(6)
    G = np.tile([0.5, -1.0, 2.0], (5, 1))                   # identical gradients: every subset scores exactly 0
    K = G @ G.T
    assert ex.reference(K, 2) == [] and student_greedy(K, 2, accept="<=") == [0, 1, 2]
    text = _failing(6, lambda K, m: student_greedy(K, m, accept="<="))
    assert "identical gradients" in text
    assert "removing sample 0 leaves the metric unchanged (0), yet you removed it" in text
    assert "best < current (not best <= current)" in text


def test_greedy_off_by_one_stopping_early():
    text = _failing(6, lambda K, m: student_greedy(K, m, stop="one_too_early"))
    assert "an off-by-one in the stop" in text and "one more removal is allowed" in text


def test_greedy_ties_to_the_highest_index():
    text = _failing(6, lambda K, m: student_greedy(K, m, ties="high"))
    assert "a tie, and ties go to the lowest original index" in text


def test_greedy_returning_the_kept_samples():
    assert "you returned the samples kept" in _failing(6, lambda K, m: student_greedy(K, m, return_kept=True))


def test_greedy_wrong_metric_is_located_at_the_step():
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

    report = check(6, greedy_on_variance, seed=0)
    messages = [f.message for f in report.failures]
    assert not report.passed
    assert any("Each step removes the sample whose removal gives the lowest metric" in m for m in messages)
    assert any("although it does not lower the metric" in m for m in messages)


def test_greedy_bad_indices():
    assert "Indices must lie in 0.." in _failing(6, lambda K, m: [K.shape[0]])
    assert "list of ints" in _failing(6, lambda K, m: [0.5])


def test_modifying_an_input_is_reported():
    def gram_in_place(A, D):
        A += 1.0
        return student_gram(A - 1.0, D)

    assert "modified its input A in place" in _failing(3, gram_in_place)


def test_missing_return_and_exception_location():
    assert "did you forget the `return`?" in _failing(3, lambda A, D: None)

    def broken(A, D):
        raise KeyError("oops")

    text = _failing(3, broken)
    assert "your function raised KeyError: 'oops' (in broken, line" in text


# ---------------------------------------------------------------- every exercise: its model solution and its mistakes
def _namespace(number, edits=()):
    """The model solution of exercise ``number`` with ``edits`` ``(old, new)`` applied (each must apply once)."""
    code = solution_code(EXERCISES[number])
    for old, new in edits:
        assert code.count(old) == 1, f"exercise {number}: {old!r} is not in its solution exactly once"
        code = code.replace(old, new)
    namespace = {}
    exec(compile(code, EXERCISES[number].stub, "exec"), namespace)  # noqa: S102 — our own solutions
    return namespace


def _functions(number, namespace):
    ex = EXERCISES[number]
    return namespace[ex.function] if len(ex.functions) == 1 else namespace


#: For every exercise, one-line mistakes ``(old, new)`` and the words the report must use for each.
MISTAKES = {
    1: [([("Z = A @ W.T + b", "Z = A @ W.T")], "the biases are missing"),
        ([("A = np.maximum(Z, 0.0) if l < len(weights) - 1 else Z", "A = np.maximum(Z, 0.0)")],
         "a ReLU on the last layer"),
        ([("return -log_p[np.arange(len(y)), y]", "return -log_p[np.arange(len(y)), y].mean()")], "maybe their mean"),
        ([("shifted = Z - Z.max(axis=1, keepdims=True)", "shifted = Z")], "exp overflowed"),
        ([("    P[np.arange(len(y)), y] -= 1.0\n", "    P[np.arange(len(y)), y] -= 1.0\n    P = P / len(y)\n")],
         "you divided by B"),
        ([("grad[idx] = (f(plus) - f(minus)) / (2 * h)", "grad[idx] = (f(plus) - f(Z)) / h")], "a forward difference"),
        ([("grad[idx] = (f(plus) - f(minus)) / (2 * h)", "grad[idx] = (f(plus) - f(minus)) / h")],
         "you divided by h instead of 2h")],
    2: [([("Z = A @ W.T + b", "Z = A @ W.T")], "the biases are missing"),
        ([("D = (D @ weights[l + 1]) * (pre[l] > 0)", "D = D @ weights[l + 1]")],
         "the derivative of the activation is missing"),
        ([("return deltas[::-1]", "return [d / len(y) for d in deltas[::-1]]")], "you divided by B")],
    3: [([("(A @ A.T + 1)", "(A @ A.T)")], "the bias term is missing"),
        ([("(D @ D.T) * (A @ A.T + 1)", "(D @ D.T) @ (A @ A.T + 1)")], "a matrix product where the identity has")],
    4: [([("np.where(Q > 1e-12 * k * T, T / Q - 1 / k, np.inf)", "T / Q - 1 / k")], "the guard is missing or wrong"),
        ([("T / Q - 1 / k, np.inf", "T / Q, np.inf")], "the − 1/k term is missing")],
    5: [([("return variance,", "return np.where(ok, variance, np.inf),")], "the variance needs no guard"),
        ([("k * T / Q - 1,", "k * T / Q,")], "the − 1 is missing"),
        ([("np.where(ok, k * T / Q - 1, np.inf), np.where(ok, T / Q - 1 / k, np.inf)",
           "np.where(ok, T / Q - 1 / k, np.inf), np.where(ok, k * T / Q - 1, np.inf)")], "must come in the order")],
    6: [([("if not values[best] < current:", "if not values[best] <= current:")], "(not best <= current)"),
        ([("while k > min_size:", "while k >= min_size and k > 1:")], "an off-by-one in the stop"),
        ([("return removed", "return sorted(set(range(B)) - set(removed))")], "you returned the samples kept")],
    7: [([('order = np.argsort(-c, kind="stable")', 'order = np.argsort(c, kind="stable")')], "upside down"),
        ([("c = np.divide(r, norms, out=np.zeros(B), where=norms > 0)", "c = r")], "you ranked by r_i"),
        ([("sizes = np.arange(B, min_size - 1, -1)", "sizes = np.arange(min_size, B + 1)")], "keep the longest")],
    8: [([("if len(S) < min_size:", "if len(S) < 1:")], "smaller than min_size"),
        ([("key = (value, -k, S)", "key = (value, k, S)")], "keep the largest subset")],
    9: [([("            return G\n", "            return np.ones((B, 2))\n")], "no subset of at least min_size"),
        ([("            return G\n", "            return G.T\n")], "return one gradient per sample")],
    10: [([("k = A_S.shape[0]", "k = A.shape[0]")], "you divided by B"),
         ([("D_S.T @ A_S / k", "A_S.T @ D_S / k")], "a transposed product"),
         ([("D_S.sum(axis=0) / k", "D.sum(axis=0) / A.shape[0]")], "the mask was not applied")],
    11: [([("(m_ / (1 - b1 ** t)) / (np.sqrt(v_ / (1 - b2 ** t)) + eps)", "m_ / (np.sqrt(v_) + eps)")],
          "the bias correction is missing"),
         ([("np.sqrt(v_ / (1 - b2 ** t)) + eps", "np.sqrt(v_ / (1 - b2 ** t) + eps)")], "ε belongs outside"),
         ([("updates = [-learning_rate", "updates = [learning_rate")], "the sign is flipped"),
         ([("        m = [b1 * m_ + (1 - b1) * g for m_, g in zip(state.m, grads)]\n",
            "        m = state.m\n        for m_, g in zip(m, grads):\n            m_ *= b1\n"
            "            m_ += (1 - b1) * g\n")], "modified an earlier state in place")],
    12: [([("/ (B - 1)", "/ B")], "the biased variance"),
         ([("if statistic <= eta ** 2:", "if statistic <= eta:")], "you compared with η"),
         ([("math.ceil(", "math.floor(")], "rounded down")],
}


def test_every_exercise_has_a_solution_and_named_mistakes():
    assert sorted(MISTAKES) == sorted(EXERCISES) and len(EXERCISES) >= 10
    assert all(len(m) >= 2 for m in MISTAKES.values())


@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_the_model_solution_passes(number):
    for seed in (0, 1):
        report = check(number, _functions(number, _namespace(number)), seed=seed)
        assert report.passed, report.text()


@pytest.mark.parametrize("number, edits, words",
                         [(n, edits, words) for n, mistakes in MISTAKES.items() for edits, words in mistakes],
                         ids=[f"{EXERCISES[n].slug}-{i}" for n, mistakes in MISTAKES.items()
                              for i in range(len(mistakes))])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")      # overflowing softmaxes and 0/0, as the mistakes compute
def test_a_mistake_fails_and_is_named(number, edits, words):
    report = check(number, _functions(number, _namespace(number, edits)), seed=0)
    assert not report.passed and report.score < 100
    assert words in report.text(all_failures=True), report.text(all_failures=True)


def test_greedy_not_optimal_names_min_size_and_other_metrics():
    ex = get_exercise("greedy_not_optimal")
    case = Case("B = 5, min_size = 2", (5, 2))
    G = ex.reference(5, 2)
    assert ex.grade(G, None, case) is None
    assert "no subset of at least min_size = 2 samples does better" in ex.grade(np.ones((5, 2)), None, case)
    assert "shape" in ex.grade(np.ones((4, 2)), None, case) and "inf or NaN" in ex.grade(np.full((5, 2), np.nan),
                                                                                       None, case)


def test_adam_state_must_be_its_named_tuple():
    from dba_ref.exercises.harness import NamedTupleValue

    ex = get_exercise("adam")
    case = ex.edge_cases(np.random.default_rng(0))[0]
    expected = ex.expected(case)
    steps = {"updates": expected["updates"], "states_at_end": [],
             "states": [NamedTupleValue("AdamState", ("count", "m", "v"), s) for s in expected["states"]]}
    as_tuple = ex.grade({**steps, "init": expected["init"]}, expected, case)
    assert "must be an AdamState(count, m, v)" in as_tuple and "you returned tuple" in as_tuple
    renamed = ex.grade({**steps, "init": NamedTupleValue("State", ("t", "mu", "nu"), expected["init"])}, expected, case)
    assert "you returned a NamedTuple State('t', 'mu', 'nu')" in renamed
    right = {**steps, "init": NamedTupleValue("AdamState", ("count", "m", "v"), expected["init"])}
    assert ex.grade({**right, "states_at_end": [right["init"], *right["states"]]}, expected, case) is None


def test_a_multi_function_exercise_takes_a_namespace():
    namespace = _namespace(1)
    assert check("forward_loss", namespace, seed=3).passed
    with pytest.raises(TypeError, match="give a dict of them"):
        check("forward_loss", namespace["forward"])
    partial = {k: v for k, v in namespace.items() if k != "numerical_gradient"}
    report = check("forward_loss", partial, seed=3)
    assert not report.passed and "no function numerical_gradient" in report.text(all_failures=True)


def test_exercises_by_number_name_and_function():
    assert [ex.number for ex in EXERCISES.values()] == list(range(1, 13))
    assert get_exercise("gram_identity") is get_exercise(3) is get_exercise("3") is get_exercise("gram")
    assert get_exercise("greedy_removals").slug == "greedy_search"
    with pytest.raises(ValueError, match="no exercise 13"):
        get_exercise(13)
    with pytest.raises(ValueError, match="gram_identity"):
        get_exercise("gramm")


def test_cases_are_drawn_from_the_seed():
    a, b = make_cases(6, seed=4), make_cases(6, seed=4)
    assert [c.name for c in a.cases] == [c.name for c in b.cases]
    assert all(np.array_equal(x.args[0], y.args[0]) for x, y in zip(a.cases, b.cases))
    assert a.n_edge + a.n_random == len(a.cases) and a.n_random == EXERCISES[6].n_random
    with pytest.raises(ValueError, match="n_random"):
        make_cases(6, n_random=-1)


# ---------------------------------------------------------------- hand-outs
@pytest.mark.parametrize("number", sorted(EXERCISES))
def test_stub_and_notebook_hand_outs(number, tmp_path):
    ex = EXERCISES[number]
    text = stub_text(ex)
    assert "BEGIN SOLUTION" not in text and "NotImplementedError" in text
    assert "Task\n----" in text and "Hints\n-----" in text and f"dba-ref exercises check {number} {ex.stub}" in text
    assert f"Read first: notebook {ex.reads_first}." in text and f"About {ex.minutes} minutes." in text
    assert all(f"def {name}(" in text for name in ex.function_names)
    stub = write_stub(number, tmp_path)
    report = check(number, _functions(number, _namespace_of(stub)), seed=0)
    assert report.not_attempted and not report.passed and report.exit_status == 1 and "NOT ATTEMPTED" in report.text()
    notebook = write_notebook(number, tmp_path)
    nb = json.loads(notebook.read_text())
    assert nb["nbformat"] == 4 and [c["cell_type"] for c in nb["cells"]] == ["markdown", "markdown", "code",
                                                                             "markdown", "code"]
    submission = read_submission(notebook)            # the self-check cell (it imports dba_ref) is not graded
    assert submission.problem is None and not submission.forbidden and "dba_ref" not in submission.source


def _namespace_of(path):
    namespace = {"__name__": "stub"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 — our own stub
    return namespace


def test_notebook_hand_out_runs_its_self_check(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    path = write_notebook("gram_identity", tmp_path)
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].source = nb.cells[2].source.replace('raise NotImplementedError("write gram")',
                                                    "return (D @ D.T) * (A @ A.T + 1)")
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}})
    client.execute()
    output = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in nb.cells[4].outputs)
    assert "PASSED all" in output and "a self-check" in output


# ---------------------------------------------------------------- the command line (grading: test_exercises_sandbox.py)
def test_start_writes_the_stub_and_keeps_an_existing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["exercises", "start", "3"]) == 0                       # default: the current folder
    stub = tmp_path / EXERCISES[3].stub
    assert stub.read_text() == stub_text(EXERCISES[3])
    assert f"wrote {EXERCISES[3].stub}" in capsys.readouterr().out
    stub.write_text("my work")
    assert main(["exercises", "start", "gram_identity"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "already exists" in err and "--force" in err
    assert stub.read_text() == "my work"
    assert main(["exercises", "start", "3", "--force"]) == 0
    assert stub.read_text() == stub_text(EXERCISES[3])
    assert main(["exercises", "start", "6", "class/week 3"]) == 0       # a new folder is created
    assert (tmp_path / "class" / "week 3" / EXERCISES[6].stub).is_file()
    assert main(["exercises", "start", "adam", "nb", "--notebook"]) == 0
    assert (tmp_path / "nb" / "ex11_adam.ipynb").is_file()
    assert main(["exercises", "start", "1", str(stub)]) == 2            # a file is not a folder
    assert "not a folder" in capsys.readouterr().err
    assert main(["exercises", "start", "13"]) == 2
    assert "no exercise 13" in capsys.readouterr().err


def test_list_shows_the_course_in_order(capsys):
    for command in (["exercises"], ["exercises", "list"]):
        assert main(command) == 0
        lines = capsys.readouterr().out.splitlines()
        rows = [line for line in lines[1:] if line[:2].strip().isdigit()]
        assert [int(row.split()[0]) for row in rows] == list(range(1, 13))
        assert all(ex.slug in row and ex.reads_first in row and f"{ex.minutes} min" in row
                   for ex, row in zip(EXERCISES.values(), rows))


def test_help_shows_the_limits_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["exercises", "grade", "--help"])
    out = capsys.readouterr().out
    assert "--time-limit" in out and "(default: 20.0)" in out and "--memory-limit" in out and "(default: 1024)" in out


def test_describe_difference_words():
    assert describe_difference(np.zeros((2, 3)), np.zeros((3, 2)), "X", 1e-12) == "X has shape (2, 3), expected (3, 2)"
    assert describe_difference([1.0, np.nan], [1.0, 2.0], "v", 1e-12, ("entry",)).startswith("v[1] (entry 1) is nan")
    assert describe_difference(np.float32([1, 2]), [1.0, 2.0 + 1e-3], "v", 1e-12).endswith("compute in float64")
    assert describe_difference([np.inf, 1.0], [np.inf, 1.0], "v", 1e-12) is None
    assert describe_difference([1.0 + 1e-13], [1.0], "v", 1e-12) is None

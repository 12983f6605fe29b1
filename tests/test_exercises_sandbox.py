"""The grader cannot be fooled or hung: submissions run in a process of their own, only plain numbers come back.

A corpus of submissions (tests/exercise_submissions/, each with the result it
must get on its first line) is graded as a class, the way a teacher does:
only the right ones pass, the hostile ones fail with a clear message or score
0, and a looping one costs its time limit and no more. Time limits here are a
couple of seconds.
"""
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dba_ref.cli import main
from dba_ref.exercises import Limits, check_file, make_cases, write_notebook, write_stub
from dba_ref.exercises import harness
from dba_ref.exercises.classroom import CSV_COLUMNS, grade_folder, submissions_in, summary
from dba_ref.exercises.loading import read_submission
from dba_ref.exercises.sandbox import run_submission

CORPUS = Path(__file__).parent / "exercise_submissions"
#: The corpus's time limit: long enough for a right answer on a busy machine, short for a loop.
LIMITS = Limits(seconds=3.0)


def expectation(path: Path) -> str:
    """What the first line of a corpus file says its grade must be."""
    if path.suffix == ".ipynb":
        return "pass" if "correct" in path.stem else "forbidden"
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} does not say what it expects"
    return first[len("# expect: "):]


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    """The corpus, plus the untouched stub, a right notebook hand-out and a file with a syntax error."""
    folder = tmp_path_factory.mktemp("submissions")
    for path in CORPUS.glob("*.py"):
        shutil.copy(path, folder)
    stub = write_stub(3, folder)
    stub.rename(folder / "untouched_stub.py")
    (folder / "untouched_stub.py").write_text("# expect: not attempted\n" + (folder / "untouched_stub.py").read_text())
    notebook = write_notebook(3, folder)
    nb = json.loads(notebook.read_text())
    cell = nb["cells"][2]
    cell["source"] = "".join(cell["source"]).replace('raise NotImplementedError("write gram")',
                                                     "return (D @ D.T) * (A @ A.T + 1)")
    notebook.rename(folder / "correct_notebook.ipynb")
    (folder / "correct_notebook.ipynb").write_text(json.dumps(nb))
    (folder / "syntax_error.py").write_text("# expect: fail: syntax error at line 2\ndef gram(A, D)\n    return A\n")
    (folder / "notes.txt").write_text("not a submission")
    return folder


@pytest.fixture(scope="module")
def graded(class_folder):
    start = time.monotonic()
    results = grade_folder(3, class_folder, seed=11, limits=LIMITS, jobs=2)
    return results, time.monotonic() - start


def test_every_submission_gets_the_result_it_must(graded, class_folder):
    results, _ = graded
    students = {student: path for student, path in submissions_in(class_folder)}
    assert set(results.reports) == set(students) and "notes" not in students
    for student, report in results.reports.items():
        want = expectation(students[student])
        text = report.text()
        if want == "pass":
            assert report.passed and report.score == 100, f"{student}:\n{text}"
            continue
        assert not report.passed and report.exit_status == 1, f"{student} passed:\n{text}"
        if want == "forbidden":
            assert report.forbidden and report.score == 0 and "FORBIDDEN IMPORT, score 0" in text, f"{student}:\n{text}"
            assert "dba_ref" in report.first_message
        elif want == "not attempted":
            assert report.not_attempted and report.score == 0 and "NOT ATTEMPTED" in text
        else:
            words = want[len("fail: "):]
            said = f"{report.first_message} | {report.label}"
            assert report.score < 100 and words in said, f"{student}: {said}"


def test_only_the_right_submissions_pass(graded):
    results, _ = graded
    passed = sorted(s for s, r in results.reports.items() if r.passed)
    assert passed == ["correct", "correct_explicit", "correct_notebook", "correct_prints"]


def test_a_loop_costs_its_time_limit_and_no_more(graded):
    results, seconds = graded
    for student in ("looping", "looping_at_import"):
        assert LIMITS.seconds <= results.reports[student].seconds < LIMITS.seconds + 1.5
    n = len(results.reports)
    # Two at a time: the two loops cost their limit, the other submissions about a second each at most.
    assert seconds < 2 * LIMITS.seconds + n * 1.5


def test_printed_text_is_shown_but_ignored(graded):
    results, _ = graded
    fake = results.reports["fake_pass"]
    assert not fake.passed and "PASSED all 26 cases" in fake.printed
    assert "Your code printed (the grader ignores it):" in fake.text()
    assert results.reports["correct_prints"].passed


def test_a_hidden_import_is_caught_at_run_time_and_a_plain_one_before(graded):
    results, _ = graded
    assert "line 2: from dba_ref.gram import gram" in results.reports["import_dba_ref"].first_message
    assert "tried to import dba_ref while running" in results.reports["import_dba_ref_hidden"].first_message


def test_the_class_csv_feedback_summary_and_figure(graded, tmp_path, capsys):
    from dba_ref.exercises.classroom import plot_class, write_csv, write_feedback

    results, _ = graded
    csv_path = write_csv(results, tmp_path / "grades.csv")
    rows = list(csv.reader(csv_path.open()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 1 + len(results.reports)
    by_student = {row[0]: row for row in rows[1:]}
    assert by_student["correct"][1:5] == ["gram_identity", "26", "26", "100.0"] and by_student["correct"][5] == ""
    assert by_student["import_dba_ref"][4] == "0.0" and "dba_ref" in by_student["import_dba_ref"][5]
    assert "bias term is missing" in by_student["wrong_bias"][5] and "\n" not in by_student["wrong_bias"][5]
    feedback = write_feedback(results, tmp_path / "feedback")
    assert sorted(p.stem for p in feedback.iterdir()) == sorted(results.reports)
    assert "Likely cause: the bias term is missing" in (feedback / "wrong_bias.txt").read_text()
    text = summary(results)
    assert f"passed every case: 4 of {len(results.reports)}" in text and "most common first failures" in text
    assert "imports dba_ref (score 0): import_dba_ref" in text
    assert len(text.splitlines()) <= 25                     # one screen
    figure = plot_class(results, tmp_path / "grades.png")
    assert figure.stat().st_size > 10_000


def test_grade_command(class_folder, tmp_path, capsys):
    small = tmp_path / "small"
    small.mkdir()
    for name in ("correct.py", "wrong_bias.py", "looping.py", "os_exit.py"):
        shutil.copy(class_folder / name, small)
    out = tmp_path / "out" / "week3.csv"
    assert main(["exercises", "grade", "gram_identity", str(small), "--csv", str(out), "--time-limit", "2",
                 "--seed", "5", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "4 submissions graded" in printed and "passed every case: 1 of 4" in printed
    assert out.is_file() and (tmp_path / "out" / "week3.png").is_file()
    assert sorted(p.name for p in (tmp_path / "out" / "week3_feedback").iterdir()) == [
        "correct.txt", "looping.txt", "os_exit.txt", "wrong_bias.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["exercises", "grade", "3", str(empty), "--csv", str(tmp_path / "g.csv")]) == 2
    assert "no .py or .ipynb file" in capsys.readouterr().err


def test_check_command_runs_the_file_apart(tmp_path, capsys):
    right = tmp_path / "right.py"
    right.write_text((CORPUS / "correct.py").read_text())
    wrong = tmp_path / "wrong.py"
    wrong.write_text((CORPUS / "wrong_bias.py").read_text())
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(0)\n")
    assert main(["exercises", "check", "3", str(right), "--seed", "5"]) == 0
    assert "PASSED all" in capsys.readouterr().out
    assert main(["exercises", "check", "gram_identity", str(wrong), "--seed", "5", "--random", "3"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "bias term is missing" in out and "9 cases" in out and "--seed 5 --random 3" in out
    assert main(["exercises", "check", "3", str(exits)]) == 1          # exiting 0 is not passing
    assert "SystemExit" in capsys.readouterr().out
    assert main(["exercises", "check", "13", str(right)]) == 2
    assert "no exercise 13" in capsys.readouterr().err
    assert main(["exercises", "check", "3", str(tmp_path / "nope.py")]) == 2


def test_a_stub_run_as_a_script_grades_itself_apart(tmp_path):
    stub = write_stub(3, tmp_path)
    run = lambda: subprocess.run([sys.executable, stub.name], cwd=tmp_path, capture_output=True, text=True,
                                 timeout=120)
    result = run()
    assert result.returncode == 1 and "NOT ATTEMPTED" in result.stdout
    text = stub.read_text()
    body = '    raise NotImplementedError("write gram")'
    stub.write_text(text.replace(body, "    return (D @ D.T) * (A @ A.T)"))
    result = run()
    assert result.returncode == 1 and "FAILED" in result.stdout and "bias term is missing" in result.stdout
    stub.write_text(text.replace(body, "    return (D @ D.T) * (A @ A.T + 1)"))
    result = run()
    assert result.returncode == 0 and "PASSED all" in result.stdout


def test_the_child_has_numpy_and_not_dba_ref(tmp_path):
    source = ("import sys, os\nimport numpy as np\n"
              "def probe(x):\n"
              "    found = []\n"
              "    for name in ('dba_ref', 'scipy', 'grading', 'sandbox', 'harness_missing'):\n"
              "        try:\n            __import__(name)\n            found.append(name)\n"
              "        except ImportError:\n            pass\n"
              "    return [len(found), len(os.listdir('.')), int(np.__version__ > '')]\n")
    cases = [("call", "probe", harness.encode([np.zeros(2)], inputs := {}))]
    run = run_submission(source, "probe.py", ["probe"], cases, inputs, LIMITS, forbidden_modules=())
    assert run.load is None and isinstance(run.outcomes[0].value, list)
    assert run.outcomes[0].value == [0, 0, 1]                # nothing importable, an empty working folder


def test_memory_and_output_limits(tmp_path):
    path = tmp_path / "greedy_memory.py"
    path.write_text("import numpy as np\nwaste = []\ndef gram(A, D):\n    waste.append(np.ones(20 * 2 ** 20))\n"
                    "    return (D @ D.T) * (A @ A.T + 1)\n")
    report = check_file(path, 3, seed=0, limits=Limits(seconds=5, memory_mb=400))
    assert not report.passed and report.n_passed >= 1 and "ran out of memory" in report.text(all_failures=True)
    with pytest.raises(ValueError, match="Limits.seconds"):
        Limits(seconds=0)


def test_plain_values_round_trip_and_nothing_else_comes_back():
    from collections import namedtuple

    Pair = namedtuple("Pair", "a b")
    value = [np.arange(3), (1, 2.5, True, None, "x"), {"k": np.float32(2)}, Pair(np.eye(2), [np.int8(1)])]
    arrays = {}
    back = harness.decode(harness.encode(value, arrays), arrays)
    assert np.array_equal(back[0], np.arange(3)) and back[1] == (1, 2.5, True, None, "x")
    assert isinstance(back[2]["k"], np.float32) and back[3].fields == ("a", "b")
    odd = [np.array([object()], dtype=object), np.eye(2).view(np.matrix), 1 + 2j, object(), 2 ** 70]
    arrays = {}
    back = harness.decode(harness.encode(odd, arrays), arrays)
    assert all(isinstance(v, harness.Unsupported) for v in back) and arrays == {}
    with pytest.raises(harness.BadFormat):
        harness.decode({"t": "array", "k": "a0"}, {"a0": np.array(["text"])})
    with pytest.raises(harness.BadFormat):
        harness.decode({"t": "eval", "v": "__import__('os')"}, {})


def test_every_exercise_runs_its_model_solution_apart(tmp_path):
    """The same machinery for all twelve: the model solution passes under the default limits, the untouched stub
    is not attempted."""
    from dba_ref.exercises import EXERCISES
    from dba_ref.exercises.handouts import solution_code

    for number, ex in EXERCISES.items():
        path = tmp_path / ex.stub
        path.write_text(solution_code(ex))
        report = check_file(path, number, seed=2, n_random=2)             # the default limits
        assert report.passed, report.text()
        stub = write_stub(number, tmp_path / "stubs")
        assert check_file(stub, number, seed=2, n_random=2).not_attempted


def test_read_submission_finds_imports_but_not_in_the_main_guard(tmp_path):
    path = tmp_path / "s.py"
    path.write_text('"""Do not use dba_ref."""\nimport numpy as np\nif __name__ == "__main__":\n    import dba_ref\n\n'
                    "def f():\n    import dba_ref.search as s\n    return __import__('dba_ref')\n")
    submission = read_submission(path)
    assert submission.forbidden == ("line 7: import dba_ref.search as s", "line 8: __import__('dba_ref')")
    cases = make_cases(3, seed=0)
    assert len(cases.specs) == len(cases.cases) and set(cases.inputs) == {f"a{i}" for i in range(len(cases.inputs))}

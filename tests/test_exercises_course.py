"""The exported course, graded by otter-grader itself: a right notebook gets full marks, a wrong one part of them.

``dba-ref exercises export-course`` writes otter's master notebook and runs
``otter assign``; ``otter run`` then grades a student's notebook with the
autograder zip, locally, without Docker or a network.
"""
import json

import pytest

from dba_ref.cli import main
from dba_ref.exercises import EXERCISES, make_cases
from dba_ref.exercises.course import autograder_zip, master_notebook


def test_master_notebook_has_one_test_per_case_and_hides_the_random_ones():
    nb = master_notebook("metrics", seed=3)
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert sources[0].startswith("# ASSIGNMENT CONFIG") and '"name": "metrics"' in sources[0]
    assert "# BEGIN SOLUTION" in sources and "# END QUESTION" == sources[-1]
    tests = [s for s in sources if "BEGIN TEST CONFIG" in s]
    cases = make_cases("metrics", seed=3)
    assert len(tests) == len(cases.cases)
    assert sum("hidden: false" in t for t in tests) == cases.n_edge
    assert all(f'check_case("metrics", metrics, seed=3, case={i})' in t for i, t in enumerate(tests))
    assert "globals()" in "".join(master_notebook("forward_loss", seed=0)["cells"][-3]["source"])


def _student_notebook(folder, old, new, path):
    nb = json.loads((folder / "student" / f"{folder.name}.ipynb").read_text())
    answer = next(c for c in nb["cells"] if "otter_answer_cell" in c.get("metadata", {}).get("tags", []))
    source = "".join(answer["source"])
    assert old in source, source
    answer["source"] = source.replace(old, new)
    path.write_text(json.dumps(nb))
    return path


def _otter_score(zip_path, notebook):
    """otter's own grading of ``notebook`` with the autograder (``otter run``, in this process)."""
    from otter.run import main as otter_run

    result = otter_run(str(notebook), autograder=str(zip_path), output_dir=None, no_logo=True).results["mean_variance"]
    return result.score, result.possible


@pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")     # otter's own use of pandas
def test_otter_grades_a_right_notebook_fully_and_a_wrong_one_partly(tmp_path, capsys):
    pytest.importorskip("otter", reason="otter-grader is in the classroom and dev extras")
    assert main(["exercises", "export-course", str(tmp_path / "course"), "--exercises", "mean_variance",
                 "--seed", "7", "--no-verify"]) == 0         # otter's run of the right notebook below verifies
    assert "wrote 1 exercises" in capsys.readouterr().out
    folder = tmp_path / "course" / "ex04_mean_variance"
    assert (tmp_path / "course" / "README.md").is_file() and (folder / "source" / "ex04_mean_variance.ipynb").is_file()
    released = (folder / "student" / "ex04_mean_variance.ipynb").read_text()
    assert "np.where(Q > 1e-12 * k * T" not in released            # the solution stays with the teacher
    ag = autograder_zip(folder)
    right = _student_notebook(folder, "    ...", "    T, Q, k = (np.asarray(a, dtype=np.float64) for a in (T, Q, k))\n"
                              "    with np.errstate(divide='ignore', invalid='ignore'):\n"
                              "        return np.where(Q > 1e-12 * k * T, T / Q - 1 / k, np.inf)",
                              tmp_path / "right.ipynb")
    wrong = _student_notebook(folder, "    ...", "    T, Q, k = (np.asarray(a, dtype=np.float64) for a in (T, Q, k))\n"
                              "    return T / Q - 1 / k       # no guard", tmp_path / "wrong.ipynb")
    n_cases = len(make_cases("mean_variance", seed=7).cases)
    assert _otter_score(ag, right) == (n_cases, n_cases)
    score, total = _otter_score(ag, wrong)
    assert total == n_cases and 0 < score < total
    assert main(["exercises", "export-course", str(tmp_path / "course"), "--exercises", "4"]) == 2   # kept
    assert "already exists" in capsys.readouterr().err


def test_export_course_lists_every_exercise_in_its_readme():
    from dba_ref.exercises.course import _readme

    text = _readme(list(EXERCISES.values()), 0, "dba-ref")
    assert all(f"`{ex.stub[:-3]}/`" in text for ex in EXERCISES.values())

"""A whole class at once: a folder of submissions graded into a grade sheet, feedback files and a summary.

:func:`grade_folder` takes every ``.py`` and ``.ipynb`` file of a folder as
one student's submission (the student named by the file's stem), grades all
of them on the same cases (one seed for the class) with
:func:`~dba_ref.exercises.grading.grade_submission`, several at a time, each
in its own process under its own limits, and writes:

- a CSV grade sheet, one row per student: ``student, exercise, cases_passed,
  cases_total, score, first_failure`` (:data:`CSV_COLUMNS`);
- one feedback file per student, ``<student>.txt``: the report with every
  failing case;
- a figure of the class: the scores and the most common mistakes.

:func:`summary` is the one-screen text of the class. A submission that
crashes, loops, exits or patches what it can reach costs its own time limit
and its own grade, never another's.
"""
from __future__ import annotations

import csv
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._text import columns, plural
from .catalogue import get_exercise
from .grading import Failure, Report, grade_submission, make_cases
from .loading import SUFFIXES, read_submission
from .sandbox import Limits

CSV_COLUMNS = ("student", "exercise", "cases_passed", "cases_total", "score", "first_failure")


@dataclass(frozen=True)
class ClassResults:
    """The reports of a class, by student, in the order of their names, and what was graded."""

    exercise: object
    seed: int
    reports: dict
    seconds: float

    def scores(self) -> np.ndarray:
        return np.array([r.score for r in self.reports.values()], np.float64)


def submissions_in(folder) -> list:
    """``(student, path)`` for every ``.py``/``.ipynb`` file of ``folder`` (not hidden, not in subfolders);
    two files of one stem are told apart by their suffix (``alice.py``, ``alice.ipynb``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder: give the folder that holds the submissions")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith("."))
    stems = Counter(p.stem for p in files)
    return [(p.stem if stems[p.stem] == 1 else p.name, p) for p in files]


def _grade_one(path: Path, cases, limits: Limits) -> Report:
    try:
        return grade_submission(read_submission(path), cases, limits)
    except Exception as exc:  # noqa: BLE001 — a grader bug on one file must not stop the class
        every = tuple(Failure(case, "not graded") for case in cases.cases)
        return Report(cases.exercise, cases.seed, cases.n_edge, cases.n_random, every, sandboxed=True,
                      problem=f"the grader failed on this file ({type(exc).__name__}: {exc}); tell the teacher")


def grade_folder(exercise, folder, seed: int | None = None, n_random: int | None = None, limits: Limits = Limits(),
                 jobs: int | None = None, progress: bool = False) -> ClassResults:
    """Grade every submission in ``folder`` for ``exercise``; ``jobs`` submissions at a time (default: the
    number of CPU cores). Nothing is written (see :func:`write_csv`, :func:`write_feedback`, :func:`plot_class`)."""
    ex = get_exercise(exercise)
    found = submissions_in(folder)
    if not found:
        raise FileNotFoundError(f"{folder} holds no .py or .ipynb file to grade")
    cases = make_cases(ex, seed, n_random)
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    start = time.monotonic()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(found), desc=f"grading exercise {ex.number}", unit="submission")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {student: pool.submit(_grade_one, path, cases, limits) for student, path in found}
        reports = {}
        for student, future in futures.items():
            reports[student] = future.result()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return ClassResults(ex, cases.seed, reports, time.monotonic() - start)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def write_csv(results: ClassResults, path) -> Path:
    """The grade sheet: one row per student (:data:`CSV_COLUMNS`); ``score`` in percent, 0 for a forbidden
    import or a stub not attempted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for student, r in results.reports.items():
            writer.writerow([student, results.exercise.slug, r.n_passed if not r.forbidden else 0, r.n_cases,
                             f"{r.score:.1f}", _one_line(r.first_message)])
    return path


def write_feedback(results: ClassResults, folder) -> Path:
    """One text file per student, ``<student>.txt``: the report with every failing case."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for student, r in results.reports.items():
        head = f"Feedback for {student}: score {r.score:.1f} ({r.n_passed} of {r.n_cases} cases)\n\n"
        (folder / f"{student}.txt").write_text(head + r.text(all_failures=True) + "\n", encoding="utf-8")
    return folder


def common_mistakes(results: ClassResults, top: int = 8) -> list:
    """``[(label, count)]`` of what went wrong first in each failing submission, the most common first."""
    labels = Counter(r.label for r in results.reports.values() if not r.passed)
    return labels.most_common(top)


def summary(results: ClassResults) -> str:
    """The class on one screen: how many passed, the scores, the most common mistakes."""
    ex, reports = results.exercise, results.reports
    scores = results.scores()
    n = len(reports)
    passed = sum(r.passed for r in reports.values())
    any_report = next(iter(reports.values()))
    lines = [f"Exercise {ex.number} · {ex.title}: {plural(n, 'submission')} graded in {results.seconds:.1f} s "
             f"(seed {results.seed}, {any_report.n_cases} cases each)",
             f"passed every case: {passed} of {n} · mean score {scores.mean():.1f} · median {np.median(scores):.1f}"]
    edges = [0, 20, 40, 60, 80, 100, 100.01]
    counts = np.histogram(scores, bins=edges)[0]
    names = ["0-19", "20-39", "40-59", "60-79", "80-99", "100"]
    width = max(counts.max(), 1)
    lines.append("scores:")
    lines += [f"  {name:>5}  {'#' * int(round(20 * c / width)):<20} {c}" for name, c in zip(names, counts)]
    mistakes = common_mistakes(results)
    if mistakes:
        lines.append("most common first failures:")
        lines += ["  " + row for row in columns([(str(c), label) for label, c in mistakes])]
    forbidden = [s for s, r in reports.items() if r.forbidden]
    if forbidden:
        lines.append(f"imports dba_ref (score 0): {', '.join(forbidden)}")
    return "\n".join(lines)


def plot_class(results: ClassResults, path) -> Path:
    """A figure of the class: the histogram of scores and the most common first failures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    ex = results.exercise
    mistakes = common_mistakes(results)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.4]})
    left.hist(results.scores(), bins=np.linspace(0, 100, 11), color="#4C72B0", edgecolor="white")
    left.set_xlabel("score (% of cases passed)")
    left.set_ylabel("submissions")
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_title(f"Exercise {ex.number} · {ex.title}: {len(results.reports)} submissions")
    if mistakes:
        labels = [label if len(label) <= 45 else label[:44] + "…" for label, _ in mistakes][::-1]
        right.barh(labels, [c for _, c in mistakes][::-1], color="#C44E52")
        right.set_xlabel("submissions")
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_title("most common first failures")
    else:
        right.text(0.5, 0.5, "every submission passed", ha="center", va="center")
        right.set_axis_off()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

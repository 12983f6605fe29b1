"""Classroom exercises, their hand-outs and a grader that runs students' code apart from itself.

Twelve exercises that rebuild one DBA step, in course order, then an
optimizer and AdAdaGrad's batch test. Each asks for one or a few functions,
written with NumPy alone; its stub (the task, the equations, hints and the
functions to fill in) comes as a ``.py`` file (``dba-ref exercises start N``,
:func:`write_stub`) or a notebook (``--notebook``, :func:`write_notebook`).

==  ==================  =========================================  ======================================
N   name                the student writes                         reference
==  ==================  =========================================  ======================================
1   forward_loss        ``forward``, ``cross_entropy``,            :class:`dba_ref.MLP`,
                        ``cross_entropy_grad``,                    :func:`dba_ref.model.cross_entropy`
                        ``numerical_gradient``
2   error_signals       ``error_signals(weights, biases, X, y)``   :func:`dba_ref.backprop.backprop`
3   gram_identity       ``gram(A, D)``                             :func:`dba_ref.gram.gram`
4   mean_variance       ``mean_variance(T, Q, k)``                 :func:`dba_ref.metrics.mean_variance`
5   metrics             ``metrics(T, Q, k)``                       :mod:`dba_ref.metrics`
6   greedy_search       ``greedy_removals(K, min_size)``           :func:`dba_ref.search.greedy_path`
7   prefix_search       ``prefix_search(K, min_size)``             :func:`dba_ref.search.prefix_path`
8   exhaustive_search   ``exhaustive_search(K, min_size)``         :func:`dba_ref.search.exhaustive_search`
9   greedy_not_optimal  ``greedy_not_optimal(B, min_size)``        greedy vs exhaustive on the batch
10  dba_update          ``dba_update(A, D, keep)``                 :func:`dba_ref.backprop.mean_grad`
11  adam                ``adam(learning_rate, b1, b2, eps)``       :func:`dba_ref.optimizers.adam`
12  norm_test           ``norm_test(G, eta)``                      :func:`~dba_ref.optimizers.adaptive_batch.norm_test`
==  ==================  =========================================  ======================================

Grading. :func:`check_file` (``dba-ref exercises check N FILE``) grades a
``.py`` file or a notebook: the student's code runs in a process of its own,
in an empty folder, without ``dba_ref``, under a time and a memory limit
(:mod:`~dba_ref.exercises.sandbox`); only plain arrays come back, and they
are judged here against the reference on fixed edge cases and fresh random
cases (:mod:`~dba_ref.exercises.grading`). The report says what is wrong: the
shape, which entry and by how much, and, where the answer matches a classic
mistake (a transposed product, a missing bias term, the unbiased variance,
an off-by-one in the greedy stop, ...), which mistake.
:func:`~dba_ref.exercises.classroom.grade_folder` (``dba-ref exercises grade``)
does it for a whole class, and :func:`~dba_ref.exercises.course.export_course`
(``dba-ref exercises export-course``) writes the set for otter-grader.
:func:`check` runs the same cases on a function of the caller's own session,
a quick self-check in a notebook, not a grade::

    >>> from dba_ref.exercises import check
    >>> from dba_ref.gram import gram
    >>> check("gram_identity", gram, seed=0).passed
    True

The modules: :mod:`~dba_ref.exercises.catalogue` (the exercises),
:mod:`~dba_ref.exercises.definitions` (what an exercise is),
:mod:`~dba_ref.exercises.handouts` (stubs and notebooks from one source),
:mod:`~dba_ref.exercises.loading` (a submission read as text),
:mod:`~dba_ref.exercises.harness` (the student's side of a run),
:mod:`~dba_ref.exercises.sandbox` (the process and its limits),
:mod:`~dba_ref.exercises.grading` (the judge and the report),
:mod:`~dba_ref.exercises.differences` and :mod:`~dba_ref.exercises.tolerances`
(a wrong answer in words, and how far a right one may be off),
:mod:`~dba_ref.exercises.classroom` (a class at once),
:mod:`~dba_ref.exercises.course` (the otter-grader export), and one module
per exercise with its cases and its catalogue of mistakes.
"""
from .catalogue import EXERCISES, get_exercise, write_notebook, write_stub
from .definitions import Case, Exercise
from .differences import describe_difference
from .error_signals import reference_error_signals
from .grading import Report, check, check_case, check_file, make_cases
from .greedy_search import reference_greedy_removals
from .sandbox import Limits

__all__ = ["check", "check_file", "check_case", "make_cases", "Report", "Limits", "Exercise", "Case", "EXERCISES",
           "get_exercise", "write_stub", "write_notebook", "describe_difference", "reference_error_signals",
           "reference_greedy_removals"]

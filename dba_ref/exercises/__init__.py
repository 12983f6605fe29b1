"""Classroom exercises and their autograder.

Each exercise asks a student for one function. Its stub (the task, the
equations, hints, and the function to fill in) ships with the package; a
student gets it with ``dba-ref exercises start N`` (:func:`write_stub`). The
reference answers are the package's own functions:

==  ======================  ============================================  =======================================
N   topic                   the student writes                            reference
==  ======================  ============================================  =======================================
1   per-sample error        ``error_signals(weights, biases, X, y)``      :func:`dba_ref.backprop.backprop`
    signals                 ``-> [Δ_1, ..., Δ_L]``
2   the Gram identity       ``gram(A, D) -> K``                           :func:`dba_ref.gram.gram`
3   a metric from T, Q, k   ``mean_variance(T, Q, k)``                    :func:`dba_ref.metrics.mean_variance`
4   the greedy search       ``greedy_removals(K, min_size)``              :func:`dba_ref.search.greedy_path`
==  ======================  ============================================  =======================================

:func:`check` runs a student's function on fixed edge cases and on fresh
random cases, compares every answer with the reference and returns a
:class:`Report` that says, in words, what is wrong: the shape, which entry and
by how much, and, where the answer matches a common mistake (a transposed
product, a missing bias term, an off-by-one in the greedy stop, the unbiased
variance instead of the biased one, ...), which mistake::

    >>> from dba_ref.exercises import check
    >>> from dba_ref.gram import gram
    >>> check(2, gram, seed=0).passed
    True

From a shell, ``dba-ref exercises check 2 ex2_gram.py`` loads the function from
a ``.py`` file or a notebook (:func:`load_student_function`) and prints the
same report; running a stub, ``python ex2_gram.py``, does the same for the
function in it. Both exit with status 0 only when every case passes.
Loading a file runs it: grade only files you are willing to run.

The modules: :mod:`~dba_ref.exercises.grading` (:func:`check`, :class:`Report`),
:mod:`~dba_ref.exercises.differences` (a wrong answer described in words),
:mod:`~dba_ref.exercises.loading` (a student's file or notebook),
:mod:`~dba_ref.exercises.catalogue` (the exercises and their stubs), and one
module per exercise with its cases and its catalogue of mistakes:
:mod:`~dba_ref.exercises.error_signals`, :mod:`~dba_ref.exercises.gram_identity`,
:mod:`~dba_ref.exercises.mean_variance`, :mod:`~dba_ref.exercises.greedy_search`.
"""
from .catalogue import EXERCISES, get_exercise, write_stub
from .definitions import Case, Exercise
from .differences import describe_difference
from .error_signals import reference_error_signals
from .grading import N_RANDOM, Report, check
from .greedy_search import reference_greedy_removals
from .loading import load_student_function

__all__ = ["check", "Report", "Exercise", "Case", "EXERCISES", "N_RANDOM", "get_exercise", "write_stub",
           "load_student_function", "describe_difference", "reference_error_signals", "reference_greedy_removals"]

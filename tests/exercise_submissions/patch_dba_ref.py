# expect: forbidden
import numpy as np

import dba_ref.exercises.grading as grading

grading.judge = lambda *args, **kwargs: None


def gram(A, D):
    return A

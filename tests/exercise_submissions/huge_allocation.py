# expect: fail: ran out of memory
import numpy as np


def gram(A, D):
    waste = np.ones((10 ** 6, 10 ** 5))
    return waste[: len(A), : len(A)]

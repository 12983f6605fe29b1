# expect: fail: is nan, expected
import numpy as np


def gram(A, D):
    return np.full((len(A), len(A)), np.nan)

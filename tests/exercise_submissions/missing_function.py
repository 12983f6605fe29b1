# expect: fail: your file defines no function gram
import numpy as np


def gramm(A, D):
    return (D @ D.T) * (A @ A.T + 1)

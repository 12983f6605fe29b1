# expect: fail: transposed product
import numpy as np


def gram(A, D):
    return (D.T @ D) * (A.T @ A + 1)

# expect: fail: the bias term is missing
import numpy as np


def gram(A, D):
    return (D @ D.T) * (A @ A.T)

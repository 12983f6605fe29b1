# expect: pass
import numpy as np


def gram(A, D):
    return (D @ D.T) * (A @ A.T + 1)

# expect: fail: only NumPy and the standard library
import scipy.linalg


def gram(A, D):
    return A

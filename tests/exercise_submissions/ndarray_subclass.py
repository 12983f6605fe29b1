# expect: fail: a subclass of numpy.ndarray
import numpy as np


class AlwaysEqual(np.ndarray):
    def __eq__(self, other):
        return True

    def __array__(self, *args, **kwargs):
        return np.zeros(self.shape)


def gram(A, D):
    return ((D @ D.T) * (A @ A.T)).view(AlwaysEqual)

# expect: fail: wrong values of K
# Makes every NumPy comparison say "equal": the judge does not compare in this process.
import numpy as np

np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), bool)
np.testing.assert_allclose = lambda *a, **k: None


def gram(A, D):
    return np.zeros((A.shape[0], A.shape[0]))

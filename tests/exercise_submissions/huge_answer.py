# expect: fail: your answer could not be sent back
import numpy as np


def gram(A, D):
    return np.ones((3000, 1000))        # 24 MB, more than a submission may write

# expect: fail: an object of type submission.Matrix
class Matrix:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("never called by the judge")


def gram(A, D):
    return Matrix()

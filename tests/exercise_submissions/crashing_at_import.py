# expect: fail: running your file raised KeyError
settings = {}
scale = settings["scale"]


def gram(A, D):
    return (D @ D.T) * (A @ A.T + 1)

# expect: pass
# Printing is allowed and ignored.
import numpy as np

print("loading my solution")


def gram(A, D):
    print("shapes", A.shape, D.shape)
    return (D @ D.T) * (A @ A.T + 1)

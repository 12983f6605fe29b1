# expect: fail: the grader's files were removed
# Removes what the grader exchanges with its process, then answers right: nothing comes back, nothing passes.
import glob
import os


def gram(A, D):
    for path in glob.glob("../io/*"):
        os.remove(path)
    return (D @ D.T) * (A @ A.T + 1)

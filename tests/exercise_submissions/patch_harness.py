# expect: fail: could not read back
# Replaces what writes the answers back: the grader cannot read them, so the cases fail.
import sys

import numpy as np

harness = sys.modules.get("__main__")
if harness is not None and hasattr(harness, "encode"):
    harness.encode = lambda value, arrays, depth=0: {"t": "array", "k": "nowhere"}


def gram(A, D):
    return (D @ D.T) * (A @ A.T)

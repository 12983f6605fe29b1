# expect: fail: your code called sys.exit(0)
import sys

import numpy as np


def gram(A, D):
    sys.exit(0)

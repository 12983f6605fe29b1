# expect: fail: your code ended the process during this case (exit status 0)
import os


def gram(A, D):
    os._exit(0)

# expect: fail: your function raised ZeroDivisionError
def gram(A, D):
    return 1 / 0

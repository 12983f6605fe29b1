# expect: fail: time limit
def gram(A, D):
    while True:
        pass
